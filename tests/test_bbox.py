"""Bounding-box conventions (SPEC §4.1): hand-computed cases and the official per-box loop as reference."""
from __future__ import annotations

import numpy as np

from data_pipelines import bbox as bbox_lib


def _official_square(box, scale):
  """The official per-box code path (aspect ratio 1): grow the short side, scale, re-centre."""
  x, y, w, h = box
  cx, cy = x + w / 2.0, y + h / 2.0
  if w > h:
    h = w
  elif w < h:
    w = h
  return [cx - w * scale / 2, cy - h * scale / 2, w * scale, h * scale]


def test_sanitize_clips_to_the_image_and_flags_empty_boxes():
  boxes = np.array([[-10, 5, 50, 20],    # clipped left and right
                    [50, 5, 10, 10],     # starts right of a 40-wide image → x2 < x1
                    [3, 3, 1, 5],        # one pixel wide: x2 == x1
                    [10, 10, 0.5, 8]])   # w < 1: max(0, w − 1) = 0
  clipped, keep = bbox_lib.sanitize(boxes, 40, 30)
  np.testing.assert_allclose(clipped[0], [0, 5, 39, 19])
  np.testing.assert_allclose(clipped[2], [3, 3, 0, 4])
  np.testing.assert_allclose(clipped[3], [10, 10, 0, 7])
  np.testing.assert_array_equal(keep, [True, False, True, True])
  _, strict = bbox_lib.sanitize(boxes, 40, 30, strict=True)
  np.testing.assert_array_equal(strict, [True, False, False, False])


def test_sanitize_takes_per_box_image_sizes():
  clipped, keep = bbox_lib.sanitize(np.array([[0, 0, 100, 100], [0, 0, 100, 100]]), np.array([50, 200]),
                                    np.array([60, 200]))
  np.testing.assert_allclose(clipped, [[0, 0, 49, 59], [0, 0, 99, 99]])
  assert keep.all()


def test_square_by_hand_and_against_the_official_loop():
  np.testing.assert_allclose(bbox_lib.square(np.array([[0, 0, 40, 20]]), 1.25), [[-5, -15, 50, 50]])
  np.testing.assert_allclose(bbox_lib.square(np.array([[10, 0, 10, 30]]), 1.0), [[0, 0, 30, 30]])
  boxes = np.random.default_rng(0).uniform([-50, -50, 1, 1], [500, 500, 300, 300], (200, 4))
  for scale in (1.0, 1.25):
    expected = [_official_square(box, scale) for box in boxes]
    np.testing.assert_allclose(bbox_lib.square(boxes, scale), expected, rtol=1e-12)


def test_square_keeps_the_centre_and_aspect_two():
  boxes = np.array([[0, 0, 10, 10], [0, 0, 30, 10]])
  out = bbox_lib.square(boxes, 1.0, aspect=2.0)
  np.testing.assert_allclose(out, [[-5, 0, 20, 10], [0, -2.5, 30, 15]])
  np.testing.assert_allclose(out[:, :2] + out[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2)


def test_tight_from_joints():
  joints = np.array([[[10, 20], [30, 60], [25, 40]]], np.float64)
  # extent 20 × 40 → w' = 19, h' = 39 → 22.8 × 46.8 around the centre (20, 40)
  np.testing.assert_allclose(bbox_lib.tight_from_joints(joints), [[8.6, 16.6, 22.8, 46.8]])
  np.testing.assert_allclose(bbox_lib.tight_from_joints(joints, 1.0), [[10.5, 20.5, 19, 39]])
