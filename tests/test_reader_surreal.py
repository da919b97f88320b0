"""SURREAL reader (SPEC §4.8) on a pooled `surreal_annotations_raw.npy` in the official format (object array of
dicts built from the clips' _info.mat: joints2D 2×24 px, joints3D 3×24 world m, camDist 1×1, …)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from configs import common as config_common
from data_pipelines import bbox as bbox_lib
from data_pipelines import readers
from data_pipelines.readers import surreal
from data_pipelines.records import DataError

# reference joint ← SURREAL index in the 2D (right-first) order; 24 = the extrapolated Head
SURREAL_OF_REFERENCE = (0, 1, 4, 7, 2, 5, 8, 9, 12, 15, 24, 17, 19, 21, 16, 18, 20)
LEFT_RIGHT = ((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21), (22, 23))


def _config(root, **overrides):
  config = config_common.data()
  config.root = str(root)
  config.update(overrides)
  return config


def _record(image: str, joints_mm: np.ndarray, cam_dist_m: float) -> dict:
  """A record whose 3D joints follow the official assumption (camera on the world x axis looking at the origin),
  so that the official conversion recovers `joints_mm` [24, 3] (camera frame, 2D labelling order) exactly."""
  stored = joints_mm.copy()
  for right, left in LEFT_RIGHT:  # 3D joints are stored left-first
    stored[[right, left]] = joints_mm[[left, right]]
  world = np.stack([(stored[:, 2] - 1000 * cam_dist_m) / 1000, -stored[:, 1] / 1000, stored[:, 0] / 1000])
  uv = joints_mm[:, :2] / joints_mm[:, 2:] * 600 + [160, 120]
  return {"image": image, "joints2D": uv.T, "joints3D": world, "camDist": np.array([[cam_dist_m]]),
          "light": np.zeros(9), "bg": "bg.jpg", "pose": np.zeros(72), "zrot": 0.0, "cloth": "c.jpg",
          "shape": np.zeros(10)}


def _write(root, records: list[dict]) -> None:
  os.makedirs(root / "train_surreal_images", exist_ok=True)
  pooled = np.empty(len(records), dtype=object)
  pooled[:] = records
  np.save(root / "train_surreal_images" / "surreal_annotations_raw.npy", pooled, allow_pickle=True)


def _pool(root, n=41):
  """n records in shuffled file order; sorted by path, record k is `run0/seq{k}/...`."""
  rng = np.random.default_rng(0)
  joints = rng.uniform([-300, -600, -150], [300, 600, 150], (n, 24, 3)) + [0, 0, 5000]
  paths = [f"run0/seq{k:03d}/seq{k:03d}_c0001/seq{k:03d}_c0001_{30 * k:03d}.png" for k in range(n)]
  order = rng.permutation(n)
  _write(root, [_record(paths[k], joints[k], rng.uniform(4, 8)) for k in order])
  return joints, paths


@pytest.mark.parametrize("split,rt_syn,expected", [
    ("train", 1, list(range(0, 39, 3))), ("train", 2, list(range(0, 39, 6))), ("test", 1, [39, 40]),
    ("testInLoop", 1, [40])])
def test_sorted_split_and_subsampling(tmp_path, split, rt_syn, expected):
  _, paths = _pool(tmp_path)  # 41 records: ⌊0.05·41⌋ = 2 test records
  records = readers.load("SURREAL", _config(tmp_path, rt_SYN=rt_syn), split)
  np.testing.assert_array_equal(records.image_id, expected)
  assert list(records.img_path) == [os.path.join(tmp_path, "train_surreal_images", paths[k]) for k in expected]


def test_camera_frame_reprojects_onto_the_2d_labels(tmp_path):
  joints, _ = _pool(tmp_path)
  records = readers.load("SURREAL", _config(tmp_path), "test")
  truth = joints[[39, 40]]
  with_head = np.concatenate([truth, (truth[:, 15] + 2 * (truth[:, 15] - truth[:, 12]))[:, None]], 1)
  np.testing.assert_allclose(records.joint_cam, with_head[:, SURREAL_OF_REFERENCE], atol=1e-2)
  np.testing.assert_allclose(records.root_cam, truth[:, 0], atol=1e-2)
  pinhole = records.joint_cam[..., :2] / records.joint_cam[..., 2:] * records.f[:, None] + records.c[:, None]
  labelled = [r for r in range(17) if r != 10]  # the Head is extrapolated separately in 2D and 3D
  np.testing.assert_allclose(pinhole[:, labelled], records.joint_img[:, labelled, :2], atol=1e-3)
  uv = records.joint_img[:, :, :2]
  np.testing.assert_allclose(uv[:, 10], uv[:, 9] + 2 * (uv[:, 9] - uv[:, 8]), atol=1e-3)  # 2D Head
  np.testing.assert_allclose(records.joint_img[..., 2], records.joint_cam[..., 2] - truth[:, :1, 2], atol=1e-2)
  np.testing.assert_array_equal(records.joint_vis, 1)
  np.testing.assert_array_equal(records.f, 600)
  np.testing.assert_array_equal(records.c, [[160, 120]] * 2)
  all_2d = np.concatenate([truth[..., :2] / truth[..., 2:] * 600 + [160, 120],
                           (uv[:, 9] + 2 * (uv[:, 9] - uv[:, 8]))[:, None]], 1)
  expected_box = bbox_lib.square(bbox_lib.sanitize(bbox_lib.tight_from_joints(all_2d), 320, 240)[0], 1.0)
  np.testing.assert_allclose(records.bbox, expected_box, rtol=1e-5)


def test_official_axes_by_hand():
  joints3d = np.zeros((1, 3, 24))
  joints3d[0, :, 0] = [0.1, 0.2, 0.3]   # Pelvis, world metres
  joints3d[0, :, 2] = [1.0, 0.0, -0.5]  # stored index 2 (left-first: the left hip) → the 2D order's R_Hip
  cam = surreal.camera_joints(joints3d, np.array([5.0]))
  np.testing.assert_allclose(cam[0, 0], [300, -200, 5100])  # (z, −y, x + camDist) · 1000
  np.testing.assert_allclose(cam[0, 1], [-500, 0, 6000])
  np.testing.assert_allclose(cam[0, 2], [0, 0, 5000])


def test_malformed_camdist_names_the_record(tmp_path):
  rng = np.random.default_rng(0)
  records = [_record(f"run0/a/a_{k}.png", rng.uniform(-300, 300, (24, 3)) + [0, 0, 5000], 5.0) for k in range(3)]
  records[0]["camDist"] = "far"  # (train reads records 0, 3, …)
  _write(tmp_path, records)
  with pytest.raises(DataError, match=r"surreal_annotations_raw\.npy: record run0/a/a_0\.png field 'camDist' is "
                                      r"not numeric \(expected a number\)"):
    readers.load("SURREAL", _config(tmp_path), "train")
