"""Applies a fitted SPA head to poses: any model's hm predictions (SPEC §7.5–7.6)."""
from __future__ import annotations

import functools

import jax
import ml_collections
import numpy as np

from ahup_jax import models
from ahup_jax.spa import data


@functools.lru_cache(maxsize=4)
def _jitted(residual: bool):
  net = models.SPANet(residual=residual)
  return jax.jit(lambda variables, poses: net.apply(variables, poses, train=False))


def adapt_poses(variables: dict, poses: np.ndarray, spa_cfg: ml_collections.ConfigDict,
                batch_size: int = 4096) -> np.ndarray:
  """[N, 17, 3] hm → adapted [N, 17, 3] (inference mode), in fixed-size batches (one compilation)."""
  poses = np.asarray(poses, np.float32)
  fn = _jitted(int(spa_cfg.mode) == 2)
  out = np.empty_like(poses)
  for start in range(0, len(poses), batch_size):
    chunk = poses[start:start + batch_size]
    padded = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - len(chunk), 0)]) if len(
        chunk) < batch_size else chunk
    out[start:start + len(chunk)] = np.asarray(fn(variables, padded))[:len(chunk)]
  return out


def adapt_file(variables: dict, in_path: str, out_path: str, spa_cfg: ml_collections.ConfigDict) -> str:
  """Adapts the `pred` of a pred_hm .npz, keeping its `gt`; writes out_path (same layout)."""
  pred = data.load_poses(in_path, key="pred")
  with np.load(in_path) as source:
    extra = {k: source[k] for k in source.files if k != "pred"}
  np.savez(out_path, pred=adapt_poses(variables, pred, spa_cfg), **extra)
  return out_path
