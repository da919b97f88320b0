"""Back-projection (SPEC §6.2): hand-computed values, agreement with the data pipeline's joint transform, and a
round trip camera → crop → hm → camera on real Human3.6M cameras and 3D poses."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ahup_jax.evaluation import backproject


def _square_boxes(joints_px: np.ndarray, enlarge: float = 1.25) -> np.ndarray:
  """Square boxes ×1.25 around the joints' extent [N, 4] (x, y, w, h)."""
  low, high = joints_px.min(axis=1), joints_px.max(axis=1)
  centre, side = (low + high) / 2, (high - low).max(axis=1) * enlarge
  return np.concatenate([centre - side[:, None] / 2, side[:, None], side[:, None]], axis=1)


def _project(joint_cam, f, c):
  return joint_cam[..., :2] / joint_cam[..., 2:] * f[:, None] + c[:, None]


def test_hand_computed_values():
  # box [100, 50, 200, 200], hm 64, 64 bins, 2000 mm: hm (32, 16, 48) → image (200, 100), Z = root + 500 mm.
  cam = backproject.hm_to_camera(np.array([[[32.0, 16.0, 48.0]]]), np.array([[100.0, 50.0, 200.0, 200.0]]),
                                 np.array([4500.0]), np.array([[1000.0, 1000.0]]), np.array([[150.0, 100.0]]),
                                 hm_size=64, depth_bins=64)
  np.testing.assert_allclose(cam, [[[(200 - 150) / 1000 * 5000, 0.0, 5000.0]]])
  back = backproject.camera_to_hm(np.concatenate([np.array([[[0.0, 0.0, 4500.0]]]), cam], axis=1),
                                  np.array([[100.0, 50.0, 200.0, 200.0]]), np.array([[1000.0, 1000.0]]),
                                  np.array([[150.0, 100.0]]), hm_size=64, depth_bins=64)
  np.testing.assert_allclose(back[0, 1], [32.0, 16.0, 48.0])
  np.testing.assert_allclose(back[0, 0, 2], 32.0)  # the root sits in the middle depth bin


def test_root_align():
  poses = np.arange(2 * 17 * 3, dtype=np.float64).reshape(2, 17, 3)
  aligned = backproject.root_align(poses)
  np.testing.assert_array_equal(aligned[:, 0], 0.0)
  np.testing.assert_array_equal(aligned[:, 5], poses[:, 5] - poses[:, 0])


def test_forward_direction_matches_the_pipeline_joint_transform():
  """camera_to_hm = data_pipelines.augment.gt_hm_poses (the image path's §5.3 transform, no augmentation)."""
  from data_pipelines import augment
  from data_pipelines.records import DatasetInfo, Records
  from configs import saa

  rng = np.random.default_rng(0)
  n = 6
  joint_cam = rng.normal(scale=250.0, size=(n, 17, 3)) + np.array([100.0, -50.0, 4500.0])
  f, c = np.full((n, 2), 1100.0), np.tile([500.0, 510.0], (n, 1))
  joints_px = _project(joint_cam, f, c)
  bbox = _square_boxes(joints_px)
  joint_img = np.concatenate([joints_px, joint_cam[..., 2:] - joint_cam[:, :1, 2:]], axis=-1)
  records = Records(DatasetInfo("Human36M", False, True, np.ones(17, bool)), np.array(["x.jpg"] * n, object),
                    bbox.astype(np.float32), joint_img.astype(np.float32), np.ones((n, 17), np.float32),
                    joint_cam.astype(np.float32), joint_cam[:, 0].astype(np.float32), f.astype(np.float32),
                    c.astype(np.float32), np.zeros(n, np.int32), np.arange(n, dtype=np.int64))
  config = saa.get_config()
  pipeline_hm, _ = augment.gt_hm_poses(records, config.model)
  ours = backproject.camera_to_hm(records.joint_cam, records.bbox, records.f, records.c, hm_size=64,
                                  depth_bins=64, depth_extent_mm=config.model.bbox_3d_depth_mm)
  np.testing.assert_allclose(ours, pipeline_hm, atol=2e-3)


def _real_scenes(realdata):
  """Real H36M 3D poses in front of the real H36M cameras: the 4 absolute GT frames as they are, plus 14,702
  real root-relative poses, turned upright with a random yaw and put at those frames' real pelvis positions."""
  with open(realdata / "karfly_h36m_camera_parameters" / "camera-parameters.json") as f:
    intrinsics = json.load(f)["intrinsics"]
  frames = np.load(realdata / "h36m_expmap_dmgnn" / "gt_frames_h36m17.npz")
  absolute = ~frames["root_relative_only"]
  gt_cam = frames["joints_cam_mm"][absolute]
  cameras = [np.array(intrinsics[str(cam)]["calibration_matrix"]) for cam in frames["camera"][absolute]]
  poses = np.load(realdata / "h36m_expmap_dmgnn" / "h36m17_rootrel_mm_stride25.npz")["poses"].astype(np.float64)
  rng = np.random.default_rng(0)
  yaw = rng.uniform(-np.pi, np.pi, len(poses))
  cos, sin = np.cos(yaw), np.sin(yaw)
  turn = np.zeros((len(poses), 3, 3))
  turn[:, 0, 0], turn[:, 0, 2], turn[:, 1, 1], turn[:, 2, 0], turn[:, 2, 2] = cos, sin, 1.0, -sin, cos
  upright = np.einsum("nik,njk->nji", turn, poses * np.array([1.0, -1.0, -1.0]))
  which = rng.integers(0, len(gt_cam), len(poses))
  joint_cam = np.concatenate([gt_cam, upright + gt_cam[which, :1]])
  k = np.stack(cameras)[np.concatenate([np.arange(len(gt_cam)), which])]
  return joint_cam, k[:, [0, 1], [0, 1]], k[:, :2, 2]


@pytest.mark.parametrize("input_size,depth_bins", [(256, 64), (64, 16)])
def test_round_trip_on_real_h36m_cameras_and_poses(realdata, input_size, depth_bins):
  joint_cam, f, c = _real_scenes(realdata)
  assert len(joint_cam) > 14000 and np.all(joint_cam[..., 2] > 1000)
  bbox = _square_boxes(_project(joint_cam, f, c))
  hm_size = input_size / 4
  hm = backproject.camera_to_hm(joint_cam, bbox, f, c, hm_size=hm_size, depth_bins=depth_bins)
  assert np.all((hm[..., :2] > 0) & (hm[..., :2] < hm_size))  # the ×1.25 box holds every joint
  back = backproject.hm_to_camera(hm, bbox, joint_cam[:, 0, 2], f, c, hm_size=hm_size, depth_bins=depth_bins)
  assert np.abs(back - joint_cam).max() < 1e-3
  # Metric-level check: what the evaluation compares (root-aligned) is the GT too.
  np.testing.assert_allclose(backproject.root_align(back), backproject.root_align(joint_cam), atol=1e-3)
