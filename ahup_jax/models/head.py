"""T: the volumetric ("integral") heatmap head and soft-argmax (SPEC §2.3, §2.4)."""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from ahup_jax.models import initializers


class VolumetricHead(nn.Module):
  """features [B, h, w, C] → logits [B, J, D, 8h, 8w]: 3 stride-2 deconvs (BN, ReLU) + a 1x1 conv.

  Output layout: the final conv has J·D channels with channel c = j·D + k (joint-major, SPEC §2.3); this
  module returns them reshaped to `[B, J, D, H, W]` with H = W = 8·h. `D` (depth bins) = `depth_bins`.
  Names mirror the official `deconv_layers.{0,1,3,4,6,7}` / `final_layer` Sequential indices.
  """
  num_joints: int = 17
  depth_bins: int = 64
  channels: int = 256
  dtype: Any = jnp.float32
  init_scheme: str = "xavier_0.02"

  @nn.compact
  def __call__(self, x, train: bool):
    kernel_init = initializers.kernel_init(self.init_scheme)
    scale_init = (nn.initializers.ones if self.init_scheme == "normal_0.001" else initializers.bn_scale_normal)
    norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                             epsilon=1e-5, dtype=self.dtype, scale_init=scale_init)
    x = x.astype(self.dtype)
    for i in range(3):
      # PyTorch ConvTranspose2d(k=4, s=2, p=1) == transposed conv with padding k-1-p = 2: output 2x input.
      x = nn.ConvTranspose(self.channels, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)),
                           use_bias=False, dtype=self.dtype, kernel_init=kernel_init,
                           name=f"deconv_layers_{3 * i}")(x)
      x = nn.relu(norm(name=f"deconv_layers_{3 * i + 1}")(x))
    x = nn.Conv(self.num_joints * self.depth_bins, (1, 1), dtype=self.dtype, kernel_init=kernel_init,
                bias_init=nn.initializers.zeros, name="final_layer")(x)
    b, h, w, _ = x.shape
    x = x.reshape(b, h, w, self.num_joints, self.depth_bins)
    return jnp.transpose(x, (0, 3, 4, 1, 2))  # [B, J, D, H, W]


def soft_argmax(logits: jax.Array) -> jax.Array:
  """Integral regression: logits [B, J, D, H, W] → coordinates [B, J, 3] = (x, y, z), float32.

  One softmax per joint over all D·H·W entries, computed in float32 whatever the input dtype.
  Index convention (SPEC §2.4): x = Σ u·p_x(u) over columns u ∈ {0..W-1} (image x), y over rows
  v ∈ {0..H-1} (image y), z over depth bins k ∈ {0..D-1}; all in hm units.
  """
  logits = logits.astype(jnp.float32)
  b, j, d, h, w = logits.shape
  flat = logits.reshape(b, j, d * h * w)
  p = jax.nn.softmax(flat, axis=-1).reshape(b, j, d, h, w)
  px = p.sum(axis=(2, 3))  # [B, J, W]
  py = p.sum(axis=(2, 4))  # [B, J, H]
  pz = p.sum(axis=(3, 4))  # [B, J, D]
  x = px @ jnp.arange(w, dtype=jnp.float32)
  y = py @ jnp.arange(h, dtype=jnp.float32)
  z = pz @ jnp.arange(d, dtype=jnp.float32)
  return jnp.stack([x, y, z], axis=-1)
