"""hm-space predictions → camera-space millimetres (SPEC §6.2)."""
from __future__ import annotations

import numpy as np

from ahup_jax import skeleton


def hm_to_camera(pred_hm: np.ndarray, bbox: np.ndarray, root_depth: np.ndarray, f: np.ndarray, c: np.ndarray, *,
                 hm_size: float, depth_bins: int, depth_extent_mm: float = 2000.0) -> np.ndarray:
  """pred_hm [N, J, 3] (x, y heatmap px; z depth bin) with the crop boxes [N, 4], root depths [N] (mm) and
  intrinsics f, c [N, 2] → camera coordinates [N, J, 3] mm."""
  pred_hm = np.asarray(pred_hm, np.float64)
  bbox = np.asarray(bbox, np.float64)
  x = pred_hm[..., 0] / hm_size * bbox[:, None, 2] + bbox[:, None, 0]
  y = pred_hm[..., 1] / hm_size * bbox[:, None, 3] + bbox[:, None, 1]
  z = (pred_hm[..., 2] / depth_bins * 2 - 1) * (depth_extent_mm / 2) + np.asarray(root_depth, np.float64)[:, None]
  f, c = np.asarray(f, np.float64), np.asarray(c, np.float64)
  return np.stack([(x - c[:, None, 0]) / f[:, None, 0] * z, (y - c[:, None, 1]) / f[:, None, 1] * z, z], -1)


def root_align(poses: np.ndarray, root: int = skeleton.ROOT) -> np.ndarray:
  """Subtract the root joint: [N, J, 3] → [N, J, 3]."""
  return poses - poses[:, root:root + 1]
