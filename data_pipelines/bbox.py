"""Bounding-box conventions of the dataset readers (SPEC §4.1), vectorised over [N, 4] x, y, w, h boxes."""
from __future__ import annotations

import numpy as np


def sanitize(boxes: np.ndarray, width, height, *, strict: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """Clip to the image; returns (boxes [N, 4], keep [N] bool). `strict` requires x2 > x1 and y2 > y1 (MuCo)."""
  boxes = np.asarray(boxes, np.float64)
  x, y, w, h = boxes.T
  x1, y1 = np.maximum(0, x), np.maximum(0, y)
  x2 = np.minimum(np.asarray(width) - 1, x1 + np.maximum(0, w - 1))
  y2 = np.minimum(np.asarray(height) - 1, y1 + np.maximum(0, h - 1))
  keep = (x2 > x1) & (y2 > y1) if strict else (x2 >= x1) & (y2 >= y1)
  return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1).astype(np.float32), keep


def square(boxes: np.ndarray, scale: float, aspect: float = 1.0) -> np.ndarray:
  """Grow the short side to `aspect`, then scale both sides by `scale` about the centre ("square×s")."""
  boxes = np.asarray(boxes, np.float64)
  x, y, w, h = boxes.T
  cx, cy = x + w / 2, y + h / 2
  h = np.where(w > h * aspect, w / aspect, h)
  w = np.where(w < h * aspect, h * aspect, w)
  w, h = w * scale, h * scale
  return np.stack([cx - w / 2, cy - h / 2, w, h], axis=1).astype(np.float32)


def tight_from_joints(joints_xy: np.ndarray, scale: float = 1.2) -> np.ndarray:
  """Box centred on the joints' extent, (extent − 1)·scale wide and high. joints_xy: [N, J, 2] px → [N, 4]."""
  lo, hi = joints_xy.min(axis=1), joints_xy.max(axis=1)
  size = (hi - lo - 1) * scale
  centre = (lo + hi) / 2
  return np.concatenate([centre - size / 2, size], axis=1).astype(np.float32)
