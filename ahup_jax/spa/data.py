"""SPA's pose files (SPEC §7.5): `<Name>_hm.json` lists and `pred_hm*.npz` (pred, gt), and target descriptors."""
from __future__ import annotations

import json
import os

import numpy as np

from ahup_jax.spa import descriptor, tailor


def _check(poses: np.ndarray, path: str, what: str) -> np.ndarray:
  if poses.ndim != 3 or poses.shape[1:] != (17, 3) or not len(poses):
    raise ValueError(f"{path}: {what} has shape {poses.shape}, expected [N, 17, 3] hm poses with N > 0")
  return poses.astype(np.float32)


def load_poses(path: str, key: str = "pred") -> np.ndarray:
  """[N, 17, 3] hm poses from a `_hm.json` list or from array `key` of a pred_hm `.npz`."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"pose file not found: {path}")
  if path.endswith(".npz"):
    with np.load(path) as data:
      if key not in data:
        raise ValueError(f"{path}: no array '{key}' (has {sorted(data.files)})")
      return _check(data[key], path, f"'{key}'")
  with open(path) as f:
    return _check(np.asarray(json.load(f), np.float32), path, "the pose list")


def save_poses_json(path: str, poses: np.ndarray) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(np.round(np.asarray(poses, np.float64), 4).tolist(), f)


def _is_tailor_file(path: str) -> bool:
  if path.endswith((".yaml", ".yml")):
    return True
  if path.endswith(".json") and os.path.exists(path):
    with open(path) as f:
      return isinstance(json.load(f), dict)
  return False


def target_poses_from(path: str) -> np.ndarray:
  """[M, 17, 3] target poses (hm) for the pose discriminator (SPEC §7.4): a `_hm.json` list or a pred_hm `.npz`'s
  `gt`. A tailor file gives only a descriptor, so it is an error here."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"target file not found: {path}")
  if _is_tailor_file(path):
    raise ValueError(f"{path} holds tailor measurements (a descriptor only); the SPA pose discriminator "
                     "(spa.lmd_D > 0) needs target poses: a `<Name>_hm.json` pose list or a pred_hm .npz")
  return load_poses(path, key="gt")


def target_descriptor_from(path: str) -> np.ndarray:
  """[16] target descriptor from a tailor file (.yaml/.yml, or .json holding a mapping), a `_hm.json` pose list
  (mean descriptor of its poses) or a pred_hm `.npz` (mean descriptor of its `gt` poses)."""
  if _is_tailor_file(path):
    return tailor.tailor_descriptor(path)
  return descriptor.mean_descriptor(load_poses(path, key="gt"))
