"""The skeletal descriptor s(y) (SPEC §7.2): 16 limb lengths divided by the shoulder width."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ahup_jax import skeleton

_EDGES = np.asarray(skeleton.EDGES)


def skeletal_descriptor(poses):
  """poses [..., 17, 3] (hm units, raw) → [..., 16] edge lengths in `skeleton.EDGES` order ÷ |L_Sho − R_Sho|.

  Differentiable (jnp). Translation- and scale-invariant; hm units are anisotropic (SPEC §9 #13), so it is not
  rotation-invariant in hm space.
  """
  poses = jnp.asarray(poses)
  lengths = jnp.linalg.norm(poses[..., _EDGES[:, 0], :] - poses[..., _EDGES[:, 1], :], axis=-1)
  shoulder = jnp.linalg.norm(poses[..., skeleton.L_SHOULDER, :] - poses[..., skeleton.R_SHOULDER, :], axis=-1)
  return lengths / shoulder[..., None]


def mean_descriptor(poses) -> np.ndarray:
  """Mean descriptor of [N, 17, 3] poses → [16] (the target of SPEC §7.2, `if_skel_av = y`)."""
  poses = np.asarray(poses, np.float32)
  if poses.ndim != 3 or poses.shape[1:] != (17, 3) or not len(poses):
    raise ValueError(f"expected poses of shape [N, 17, 3] with N > 0, got {poses.shape}")
  return np.asarray(skeletal_descriptor(poses)).mean(0)
