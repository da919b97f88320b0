"""Bounding-box conventions of the dataset readers (SPEC §4.1), vectorised over [N, 4] (x, y, w, h) px boxes."""
from __future__ import annotations

import numpy as np


def sanitize(boxes: np.ndarray, width, height, *, strict: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """Clips boxes to a width × height image (SPEC §4.1 "sanitise").

  x1 = max(0, x), y1 = max(0, y), x2 = min(W−1, x1 + max(0, w−1)), y2 = min(H−1, y1 + max(0, h−1)).
  boxes: [N, 4] px; width, height: scalars or [N]. Returns (boxes [N, 4] float64 = (x1, y1, x2−x1, y2−y1),
  keep [N] bool = x2 ≥ x1 and y2 ≥ y1, or x2 > x1 and y2 > y1 when `strict` (MuCo)). Any area condition
  (COCO `area` > 0, MuCo/MuPoTS w·h > 0) is the caller's.
  """
  x, y, w, h = np.asarray(boxes, np.float64).T
  x1, y1 = np.maximum(0, x), np.maximum(0, y)
  x2 = np.minimum(np.asarray(width, np.float64) - 1, x1 + np.maximum(0, w - 1))
  y2 = np.minimum(np.asarray(height, np.float64) - 1, y1 + np.maximum(0, h - 1))
  keep = (x2 > x1) & (y2 > y1) if strict else (x2 >= x1) & (y2 >= y1)
  return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1), keep


def square(boxes: np.ndarray, scale: float, aspect: float = 1.0) -> np.ndarray:
  """SPEC §4.1 "square×s": keeps the centre, grows the short side to the aspect ratio w/h = `aspect`, then scales
  both sides by `scale`. [N, 4] px → [N, 4] float64 px."""
  x, y, w, h = np.asarray(boxes, np.float64).T
  cx, cy = x + w / 2, y + h / 2
  w, h = np.where(w < h * aspect, h * aspect, w), np.where(w > h * aspect, w / aspect, h)
  w, h = w * scale, h * scale
  return np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)


def tight_from_joints(joints_xy: np.ndarray, scale: float = 1.2) -> np.ndarray:
  """SPEC §4.1 "tight-from-joints": centred on the joints' extent, `scale`·(extent − 1) px wide and high.
  joints_xy: [N, J, 2] px → [N, 4] float64 px."""
  lo, hi = joints_xy.min(axis=1), joints_xy.max(axis=1)
  size = (hi - lo - 1) * scale
  return np.concatenate([(lo + hi) / 2 - size / 2, size], axis=1)
