"""MSCOCO reader (SPEC §4.5) on the real COCO keypoint file and images of `realdata` (mmpose/coco)."""
from __future__ import annotations

import json
import logging
import os
import shutil

import numpy as np
import pytest

from configs import common as config_common
from data_pipelines import readers
from data_pipelines.records import DataError

MISSING_IMAGE = "000000040083.jpg"  # left out of train2017/: its 2 labelled people are skipped with a warning


def _config(root, **overrides):
  config = config_common.data()
  config.root = str(root)
  config.update(overrides)
  return config


def _write(realdata, root, content=None):
  coco = realdata / "mmpose" / "coco"
  os.makedirs(root / "MSCOCO" / "annotations")
  os.makedirs(root / "MSCOCO" / "train2017")
  content = content or json.load(open(coco / "test_coco.json"))
  with open(root / "MSCOCO" / "annotations" / "person_keypoints_train2017.json", "w") as f:
    json.dump(content, f)
  for image in content["images"]:
    if image["file_name"] != MISSING_IMAGE:
      shutil.copy(coco / image["file_name"], root / "MSCOCO" / "train2017")
  return content


def _expected(content):
  """The official per-annotation loop: filters, sanitise (area > 0), square×1.25; keypoints [17, 3]."""
  images = {im["id"]: im for im in content["images"]}
  kept = []
  for ann in content["annotations"]:
    image = images[ann["image_id"]]
    if ann["iscrowd"] or ann["num_keypoints"] == 0 or image["file_name"] == MISSING_IMAGE:
      continue
    x, y, w, h = ann["bbox"]
    x1, y1 = max(0, x), max(0, y)
    x2, y2 = min(image["width"] - 1, x1 + max(0, w - 1)), min(image["height"] - 1, y1 + max(0, h - 1))
    if not (ann["area"] > 0 and x2 >= x1 and y2 >= y1):
      continue
    w, h = x2 - x1, y2 - y1
    side = max(w, h) * 1.25
    kept.append((image, [x1 + w / 2 - side / 2, y1 + h / 2 - side / 2, side, side],
                 np.reshape(ann["keypoints"], (17, 3))))
  return kept


def test_real_coco_file(realdata, tmp_path, caplog):
  content = _write(realdata, tmp_path)
  with caplog.at_level(logging.WARNING):
    records = readers.load("MSCOCO", _config(tmp_path), "train")
  assert "skipped 2 of 12 person annotations whose image is missing" in caplog.text
  expected = _expected(content)
  assert len(records) == len(expected) == 10  # 14 people − 2 without keypoints − 2 in the missing image
  np.testing.assert_allclose(records.bbox, [box for _, box, _ in expected], rtol=1e-6)
  kp = np.stack([k for _, _, k in expected]).astype(np.float64)
  # reference ← COCO (realdata README): R_Hip 12, R_Knee 14, R_Ankle 16, L_Hip 11, L_Knee 13, L_Ankle 15,
  # L_Shoulder 5, L_Elbow 7, L_Wrist 9, R_Shoulder 6, R_Elbow 8, R_Wrist 10
  ref = [1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16]
  coco = [12, 14, 16, 11, 13, 15, 5, 7, 9, 6, 8, 10]
  np.testing.assert_allclose(records.joint_img[:, ref, :2], kp[:, coco, :2])
  np.testing.assert_array_equal(records.joint_vis[:, ref], kp[:, coco, 2] > 0)
  np.testing.assert_allclose(records.joint_img[:, 0, :2], (kp[:, 11, :2] + kp[:, 12, :2]) / 2)  # Pelvis
  np.testing.assert_array_equal(records.joint_vis[:, 0], kp[:, 11, 2] * kp[:, 12, 2] > 0)
  np.testing.assert_allclose(records.joint_img[:, 8, :2], (kp[:, 5, :2] + kp[:, 6, :2]) / 2)  # Thorax
  np.testing.assert_array_equal(records.joint_vis[:, 8], kp[:, 5, 2] * kp[:, 6, 2] > 0)
  undefined = [7, 9, 10]  # Torso, Neck, Head
  np.testing.assert_array_equal(records.info.joint_defined, np.isin(np.arange(17), undefined, invert=True))
  assert not records.joint_img[:, undefined].any() and not records.joint_vis[:, undefined].any()
  assert not records.joint_img[..., 2].any() and not records.joint_cam.any() and not records.info.have_depth
  np.testing.assert_array_equal(records.image_id, [image["id"] for image, _, _ in expected])
  np.testing.assert_allclose(records.c, [[image["width"] / 2, image["height"] / 2] for image, _, _ in expected])
  np.testing.assert_array_equal(records.f, 1500)
  assert records.img_path[0] == os.path.join(tmp_path, "MSCOCO", "train2017", "000000000785.jpg")


def test_jo2d_off_zeroes_the_visibilities(realdata, tmp_path):
  _write(realdata, tmp_path)
  records = readers.load("MSCOCO", _config(tmp_path, jo2d=False), "train")
  assert len(records) == 10 and not records.joint_vis.any() and records.joint_img[:, 1:7, :2].any()


def test_crowd_and_empty_boxes_are_skipped(realdata, tmp_path):
  content = json.load(open(realdata / "mmpose" / "coco" / "test_coco.json"))
  content["annotations"][0]["iscrowd"] = 1
  content["annotations"][4]["area"] = 0.0
  content["annotations"][9]["bbox"] = [5000.0, 10.0, 50.0, 50.0]  # right of the image
  _write(realdata, tmp_path, content)
  assert len(readers.load("MSCOCO", _config(tmp_path), "train")) == 7


def test_malformed_keypoints_name_the_file_annotation_and_field(realdata, tmp_path):
  content = json.load(open(realdata / "mmpose" / "coco" / "test_coco.json"))
  content["annotations"][4]["keypoints"] = content["annotations"][4]["keypoints"][:-3]
  _write(realdata, tmp_path, content)
  ann = content["annotations"][4]
  with pytest.raises(DataError, match=rf"person_keypoints_train2017\.json: annotation {ann['id']} \(image id "
                                      rf"{ann['image_id']}\) field 'keypoints' has shape \(48,\), expected 51 numbers"):
    readers.load("MSCOCO", _config(tmp_path), "train")


def test_only_a_training_split(realdata, tmp_path):
  _write(realdata, tmp_path)
  with pytest.raises(ValueError, match="MSCOCO has no 'test' split"):
    readers.load("MSCOCO", _config(tmp_path), "test")
