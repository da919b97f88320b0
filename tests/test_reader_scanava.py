"""ScanAva+ reader (SPEC §4.7) on a pooled `scanava_raw.npy` written as the preparation script does (object array
of dicts; 3×14 arrays; metres in the renderer frame; absolute paths of another machine)."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from configs import common as config_common
from data_pipelines import readers
from data_pipelines.readers import scanava
from data_pipelines.records import DataError

TRAIN_SCAN, TEST_SCAN, OTHER_SCAN = scanava.SCANS[0], scanava.SCANS[36], "SYN_RR_nobody_G20200101_0000_P2000_A00"
# reference joint ← ScanAva+ labelled index (None = derived: Pelvis, Torso, Neck)
LABELLED_OF_REFERENCE = (None, 2, 1, 0, 3, 4, 5, None, 12, None, 13, 9, 10, 11, 8, 7, 6)


def _config(root, **overrides):
  config = config_common.data()
  config.root = str(root)
  config.update(overrides)
  return config


def _camera_joints(rng) -> np.ndarray:
  """14 joints [14, 3] in the image frame (mm, y down, z forward), a person ~3 m in front of the camera."""
  return rng.uniform([-400, -800, -150], [400, 800, 150], (14, 3)) + [0, 0, 3000]


def _record(k: int, scan: str, joint_cam_mm: np.ndarray, **extra) -> dict:
  f, c = np.array([600.0, 600.0]), np.array([256.0, 256.0])
  uv = joint_cam_mm[:, :2] / joint_cam_mm[:, 2:] * f + c
  return {"img_path": f"/scratch/prep/ScanAva_1119/{scan}/images/image_{k:06d}.jpg", "img_id": None,
          "bbox": np.zeros(4), "joint_img": np.concatenate([uv, np.ones((14, 1))], 1).T,
          "joint_cam": (joint_cam_mm * [1, -1, -1] / 1000.0).T, "joint_vis": np.ones((14, 1)),
          "root_cam": np.zeros(3), "F": f, "C": c, **extra}


def _write(root, records: list[dict]) -> None:
  os.makedirs(root / "ScanAva_1119", exist_ok=True)
  pooled = np.empty(len(records), dtype=object)
  pooled[:] = records
  np.save(root / "ScanAva_1119" / "scanava_raw.npy", pooled, allow_pickle=True)


def _pool(root, n=45):
  """Record i belongs to the train scan (i % 3 == 0), the test scan (1) or an unknown scan (2)."""
  rng = np.random.default_rng(0)
  joints = [_camera_joints(rng) for _ in range(n)]
  _write(root, [_record(i, (TRAIN_SCAN, TEST_SCAN, OTHER_SCAN)[i % 3], joints[i]) for i in range(n)])
  return np.stack(joints)


@pytest.mark.parametrize("split,rt_syn,expected", [
    ("train", 1, list(range(0, 45, 3))), ("train", 2, list(range(0, 45, 6))), ("test", 1, list(range(1, 45, 3))),
    ("testInLoop", 1, [40])])
def test_scan_split_and_subsampling(tmp_path, caplog, split, rt_syn, expected):
  _pool(tmp_path)
  with caplog.at_level(logging.WARNING):
    records = readers.load("ScanAva", _config(tmp_path, rt_SYN=rt_syn), split)
  assert "15 of 45 records belong to none of the 41 ScanAva+ scans" in caplog.text
  np.testing.assert_array_equal(records.image_id, expected)
  scan = TRAIN_SCAN if split == "train" else TEST_SCAN
  assert records.img_path[0] == os.path.join(tmp_path, "ScanAva_1119", scan, "images", f"image_{expected[0]:06d}.jpg")


def test_joints_cameras_and_derived_joints(tmp_path):
  joints = _pool(tmp_path)[0:45:3]
  records = readers.load("ScanAva", _config(tmp_path), "train")
  assert records.info.is_synthetic and records.info.have_depth and records.info.joint_defined.all()
  labelled = [r for r, s in enumerate(LABELLED_OF_REFERENCE) if s is not None]
  source = [s for s in LABELLED_OF_REFERENCE if s is not None]
  np.testing.assert_allclose(records.joint_cam[:, labelled], joints[:, source], atol=1e-3)
  pinhole = records.joint_cam[..., :2] / records.joint_cam[..., 2:] * records.f[:, None] + records.c[:, None]
  np.testing.assert_allclose(pinhole[:, labelled], records.joint_img[:, labelled, :2], atol=1e-3)
  pelvis = (joints[:, 2] + joints[:, 3]) / 2
  np.testing.assert_allclose(records.joint_cam[:, 0], pelvis, atol=1e-3)
  np.testing.assert_allclose(records.joint_cam[:, 7], (pelvis + joints[:, 12]) / 2, atol=1e-3)  # Torso
  np.testing.assert_allclose(records.joint_cam[:, 9], joints[:, 12] + (joints[:, 13] - joints[:, 12]) / 3, atol=1e-3)
  np.testing.assert_allclose(records.root_cam, pelvis, atol=1e-3)
  np.testing.assert_allclose(records.joint_img[..., 2], records.joint_cam[..., 2] - pelvis[:, None, 2], atol=1e-3)
  uv = records.joint_img[..., :2]
  np.testing.assert_allclose(uv[:, 0], (uv[:, 1] + uv[:, 4]) / 2, atol=1e-3)  # 2D Pelvis = mid of the 2D hips
  np.testing.assert_array_equal(records.joint_vis, 1)
  np.testing.assert_array_equal(records.f, 600)


def test_tight_boxes_and_the_whole_image(tmp_path):
  joint_cam = np.tile([[0.0, 0.0, 3000.0]], (14, 1))
  joint_cam[0], joint_cam[13] = [-500, -1000, 3000], [500, 1000, 3000]  # image extent (156..356, 56..456)
  _write(tmp_path, [_record(0, TRAIN_SCAN, joint_cam), _record(1, TRAIN_SCAN, joint_cam, img_shape=[256, 320])])
  records = readers.load("ScanAva", _config(tmp_path), "train")
  # tight: 199 × 399 ×1.2 = 238.8 × 478.8 from (136.6, 16.6) → sanitise: 237.8 × 477.8 (centre 255.5, 255.5)
  # → square ×1.0 (no 1.25)
  np.testing.assert_allclose(records.bbox[0], [16.6, 16.6, 477.8, 477.8], rtol=1e-6)
  whole = readers.load("ScanAva", _config(tmp_path, tight_bbox_scanava=False), "train")
  np.testing.assert_allclose(whole.bbox, [[0, 0, 512, 512], [0, -32, 320, 320]])  # per-record img_shape (h, w)


def test_malformed_record_names_the_file_record_and_field(tmp_path):
  rng = np.random.default_rng(0)
  bad = _record(1, TRAIN_SCAN, _camera_joints(rng))
  bad["joint_cam"] = bad["joint_cam"][:, :13]
  _write(tmp_path, [_record(0, TRAIN_SCAN, _camera_joints(rng)), bad])
  with pytest.raises(DataError, match=rf"scanava_raw\.npy: record 1 \({TRAIN_SCAN}/images/image_000001\.jpg\) "
                                      r"field 'joint_cam' has shape \(3, 13\), expected 3×14 numbers"):
    readers.load("ScanAva", _config(tmp_path), "train")
  np.save(tmp_path / "ScanAva_1119" / "scanava_raw.npy", np.array([1.0, 2.0]))
  with pytest.raises(DataError, match="expected a NumPy object array of dicts .*, got float64"):
    readers.load("ScanAva", _config(tmp_path), "train")
  _write(tmp_path, [_record(0, TRAIN_SCAN, _camera_joints(rng)), [1.0]])
  with pytest.raises(DataError, match="record 1 is a list, expected a dict"):
    readers.load("ScanAva", _config(tmp_path), "train")
  os.remove(tmp_path / "ScanAva_1119" / "scanava_raw.npy")
  with pytest.raises(DataError, match="annotation file not found: .*ScanAva_1119/scanava_raw.npy"):
    readers.load("ScanAva", _config(tmp_path), "train")
