"""hm-space poses ↔ camera-space millimetres through the un-augmented crop (SPEC §6.2, §5.3).

`hm_to_camera` is the evaluation's back-projection; `camera_to_hm` is the forward direction (joints → crop → hm,
no augmentation) that the round-trip tests invert. Computed in float64 (depths of metres, sub-µm round trips).
"""
from __future__ import annotations

import numpy as np

from ahup_jax import skeleton


def hm_to_camera(pred_hm: np.ndarray, bbox: np.ndarray, root_depth: np.ndarray, f: np.ndarray,
                 c: np.ndarray, *, hm_size: float, depth_bins: int, depth_extent_mm: float = 2000.0) -> np.ndarray:
  """hm poses → camera coordinates (SPEC §6.2); float64 [N, J, 3] mm.

  pred_hm [N, J, 3]: x, y heatmap px of a crop of side `hm_size` (= input_size / 4), z depth bin of `depth_bins`;
  bbox [N, 4] crop boxes x, y, w, h (px); root_depth [N] mm (GT pelvis depth by default); f, c [N, 2] px.
  x_img = x/hm·w + b_x, y_img = y/hm·h + b_y, Z = (z/bins·2 − 1)·extent/2 + Z_root, X = (x_img − c_x)/f_x·Z, ...
  """
  pred_hm = np.asarray(pred_hm, np.float64)
  bbox = np.asarray(bbox, np.float64)[:, None]
  f = np.asarray(f, np.float64)[:, None]
  c = np.asarray(c, np.float64)[:, None]
  x_img = pred_hm[..., 0] / hm_size * bbox[..., 2] + bbox[..., 0]
  y_img = pred_hm[..., 1] / hm_size * bbox[..., 3] + bbox[..., 1]
  z = (pred_hm[..., 2] / depth_bins * 2.0 - 1.0) * (depth_extent_mm / 2.0)
  z = z + np.asarray(root_depth, np.float64)[:, None]
  return np.stack([(x_img - c[..., 0]) / f[..., 0] * z, (y_img - c[..., 1]) / f[..., 1] * z, z], axis=-1)


def camera_to_hm(joint_cam: np.ndarray, bbox: np.ndarray, f: np.ndarray, c: np.ndarray, *, hm_size: float,
                 depth_bins: int, depth_extent_mm: float = 2000.0, root: int = skeleton.ROOT) -> np.ndarray:
  """Camera joints [N, J, 3] mm → hm poses [N, J, 3] through the crop `bbox` [N, 4] without augmentation.

  Projection x = X/Z·f_x + c_x (SPEC §4.2), crop x_hm = (x − b_x)/w·hm_size (§5.2–5.3 with s = 1, r = 0),
  depth z_hm = ((Z − Z_root)/(extent/2) + 1)/2·bins with Z_root the depth of joint `root`. float64.
  """
  joint_cam = np.asarray(joint_cam, np.float64)
  bbox = np.asarray(bbox, np.float64)[:, None]
  f = np.asarray(f, np.float64)[:, None]
  c = np.asarray(c, np.float64)[:, None]
  depth = joint_cam[..., 2]
  x_img = joint_cam[..., 0] / depth * f[..., 0] + c[..., 0]
  y_img = joint_cam[..., 1] / depth * f[..., 1] + c[..., 1]
  z_rel = depth - depth[:, root:root + 1]
  return np.stack([(x_img - bbox[..., 0]) / bbox[..., 2] * hm_size,
                   (y_img - bbox[..., 1]) / bbox[..., 3] * hm_size,
                   (z_rel / (depth_extent_mm / 2.0) + 1.0) / 2.0 * depth_bins], axis=-1)


def root_align(poses: np.ndarray, root: int = skeleton.ROOT) -> np.ndarray:
  """[N, J, 3] → float64 poses with joint `root` (Pelvis) at the origin (SPEC §6.2)."""
  poses = np.asarray(poses, np.float64)
  return poses - poses[:, root:root + 1]
