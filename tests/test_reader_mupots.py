"""MuPoTS-3D reader (SPEC §4.4) on two real MPI-INF-3DHP test frames of `realdata` (TS1, TS2; the MuPoTS joint
set), written as `MuPoTS-3D.json`."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from configs import common as config_common
from data_pipelines import readers
from data_pipelines.readers import mupots
from data_pipelines.records import DataError

# reference joint ← MPI-INF-3DHP / MuPoTS index (realdata README)
MUPOTS_OF_REFERENCE = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)


def _config(root, **overrides):
  config = config_common.data()
  config.root = str(root)
  config.update(overrides)
  return config


def _official_box(box, width, height):
  x, y, w, h = box
  x1, y1 = max(0, x), max(0, y)
  x2, y2 = min(width - 1, x1 + max(0, w - 1)), min(height - 1, y1 + max(0, h - 1))
  w, h = x2 - x1, y2 - y1
  side = max(w, h) * 1.25
  return [x1 + w / 2 - side / 2, y1 + h / 2 - side / 2, side, side]


def _write(realdata, root):
  folder = realdata / "mmpose" / "mpi_inf_3dhp"
  frames = np.load(folder / "test_3dhp_test.npz")
  cameras = pickle.load(open(folder / "cameras_test.pkl", "rb"))
  images, annotations = [], []
  for k, name in enumerate(frames["imgname"]):  # TS1_002001.jpg, TS2_001850.jpg
    sequence, number = str(name)[:-4].split("_")
    cam = cameras[sequence]
    images.append({"id": k + 1, "file_name": f"{sequence}/img_{int(number) - 1:06d}.jpg", "width": 2048,
                   "height": 2048, "intrinsic": [*np.ravel(cam["f"]), *np.ravel(cam["c"])]})
    part = frames["part"][k, :, :2]
    box = [*part.min(0) - 20, *(part.max(0) - part.min(0) + 40)]
    annotations.append({"id": 10 + k, "image_id": k + 1, "keypoints_cam": (frames["S"][k, :, :3] * 1000).tolist(),
                        "keypoints_img": part.tolist(), "bbox": box, "is_valid": 1})
  annotations.append(dict(annotations[0], id=20, is_valid=0))
  annotations.append(dict(annotations[1], id=21, bbox=[5000.0, 10.0, 100.0, 100.0]))  # outside: x2 < x1
  os.makedirs(root / "MuPoTS")
  with open(root / "MuPoTS" / "MuPoTS-3D.json", "w") as f:
    json.dump({"images": images, "annotations": annotations}, f)
  return frames, images, annotations


def test_real_mupots_frames(realdata, tmp_path):
  frames, images, annotations = _write(realdata, tmp_path)
  for split in ("test", "testInLoop"):  # the same: all valid people
    records = readers.load("MuPoTS", _config(tmp_path), split)
    assert len(records) == 2 and records.info.joint_defined.all()
    joint_cam = frames["S"][..., :3] * 1000
    np.testing.assert_allclose(records.joint_cam, joint_cam[:, MUPOTS_OF_REFERENCE], atol=1e-3)
    np.testing.assert_allclose(records.root_cam, joint_cam[:, 14], atol=1e-3)
    np.testing.assert_allclose(records.joint_img[..., :2], frames["part"][:, MUPOTS_OF_REFERENCE, :2], atol=1e-3)
    np.testing.assert_allclose(records.joint_img[..., 2], joint_cam[:, MUPOTS_OF_REFERENCE, 2] - joint_cam[:, 14:15, 2],
                               atol=1e-3)
    pinhole = records.joint_cam[..., :2] / records.joint_cam[..., 2:] * records.f[:, None] + records.c[:, None]
    assert np.abs(pinhole - records.joint_img[..., :2]).max() < 2.0  # README: 1.2–1.9 px from the labels
    np.testing.assert_allclose(records.f, [im["intrinsic"][:2] for im in images], rtol=1e-6)
    np.testing.assert_allclose(records.bbox, [_official_box(a["bbox"], 2048, 2048) for a in annotations[:2]],
                               rtol=1e-6)
    np.testing.assert_array_equal(records.group, [0, 1])
    assert records.info.group_names[:2] == ("TS1", "TS2") and len(records.info.group_names) == 20
    assert records.img_path[1] == os.path.join(tmp_path, "MuPoTS", "MultiPersonTestSet", "TS2", "img_001849.jpg")


@pytest.mark.parametrize("file_name", mupots.BBOX_ROOT_FILES)
def test_detected_people_without_gt_info(realdata, tmp_path, file_name):
  _write(realdata, tmp_path)
  config = _config(tmp_path, use_gt_info=False)
  with pytest.raises(DataError, match="bbox_mupots_output.json or .*bbox_root_mupots_output.json"):
    readers.load("MuPoTS", config, "test")
  detections = [{"image_id": 1, "bbox": [1, 2, 300, 300], "root_cam": [0, 0, 3000], "score": 0.9},
                {"image_id": 2, "bbox": [5, 6, 200, 200], "root_cam": [10, 0, 4000], "score": 0.8},
                {"image_id": 1, "bbox": [900, 2, 300, 300], "root_cam": [500, 0, 5000], "score": 0.7}]
  os.makedirs(tmp_path / "MuPoTS" / "bbox_root")
  with open(tmp_path / "MuPoTS" / file_name, "w") as f:
    json.dump(detections, f)
  records = readers.load("MuPoTS", config, "test")
  np.testing.assert_allclose(records.bbox, [d["bbox"] for d in detections])
  np.testing.assert_allclose(records.root_cam, [d["root_cam"] for d in detections])
  np.testing.assert_array_equal(records.group, [0, 1, 0])
  assert not records.joint_vis.any() and not records.joint_cam.any()


def test_splits_and_malformed_fields(realdata, tmp_path):
  _, _, annotations = _write(realdata, tmp_path)
  with pytest.raises(ValueError, match="MuPoTS has no 'train' split"):
    readers.load("MuPoTS", _config(tmp_path), "train")
  content = json.load(open(tmp_path / "MuPoTS" / "MuPoTS-3D.json"))
  del content["images"][1]["intrinsic"]
  json.dump(content, open(tmp_path / "MuPoTS" / "MuPoTS-3D.json", "w"))
  with pytest.raises(DataError, match=r"MuPoTS-3D\.json: image id 2 lacks field 'intrinsic'"):
    readers.load("MuPoTS", _config(tmp_path), "test")
