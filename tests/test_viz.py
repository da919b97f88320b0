"""viz: sample grids draw only visible GT edges inside the crop; figures encode to PNG."""
from __future__ import annotations

import numpy as np

from ahup_jax import skeleton, viz


def _grid_lines(gt_vis):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 255, (2, 32, 32, 3), np.uint8)
  pred = rng.random((2, 17, 3)).astype(np.float32) * 8
  gt = rng.random((2, 17, 3)).astype(np.float32) * 8
  gt[:, skeleton.JOINT_INDEX["Head"]] = (-40.0, -40.0, 0.0)  # a joint the dataset lacks, far outside the crop
  fig = viz.skeleton_grid(images, pred, gt, gt_vis=gt_vis, columns=2)
  axes = fig.axes[:2]
  return fig, [len(ax.lines) for ax in axes], [(ax.get_xlim(), ax.get_ylim()) for ax in axes]


def test_skeleton_grid_skips_invisible_gt_edges_and_keeps_the_crop_frame():
  vis = np.ones((2, 17), np.float32)
  vis[:, skeleton.JOINT_INDEX["Head"]] = 0
  fig, lines, limits = _grid_lines(vis)
  edges = len(skeleton.EDGES)
  head_edges = sum(skeleton.JOINT_INDEX["Head"] in edge for edge in skeleton.EDGES)
  assert lines == [2 * edges - head_edges] * 2  # every predicted edge, the GT ones without the head
  for xlim, ylim in limits:
    assert xlim == (-0.5, 31.5) and ylim == (31.5, -0.5)  # image rows grow downwards; no zoom-out to (−160, −160)
  png = viz.to_png(fig)
  assert png[:8] == b"\x89PNG\r\n\x1a\n"
  _, lines_all, _ = _grid_lines(None)
  assert lines_all == [2 * edges] * 2


def test_skeleton_3d_plots_every_edge_of_each_pose():
  poses = [np.random.default_rng(k).normal(size=(17, 3)) * 100 for k in range(2)]
  fig = viz.skeleton_3d(poses, ["pred", "gt"], title="t")
  assert len(fig.axes[0].lines) == 2 * len(skeleton.EDGES)
  assert viz.to_png(fig)[:4] == b"\x89PNG"
