"""MuPoTS-3D (real, 3D; test only), SPEC §4.4. Groups = sequences TS1..TS20."""
from __future__ import annotations

import os
import re

import numpy as np

from data_pipelines import bbox as bbox_lib
from data_pipelines import joints as joints_lib
from data_pipelines.readers import field, read_json
from data_pipelines.readers.human36m import _apply_bbox_root
from data_pipelines.readers.muco import three_d_records
from data_pipelines.records import DataError, DatasetInfo, Records

_, _DEFINED = joints_lib.reference_index(joints_lib.MUPOTS)
INFO = DatasetInfo("MuPoTS", is_synthetic=False, have_depth=True, joint_defined=_DEFINED,
                   group_names=tuple(f"TS{i}" for i in range(1, 21)))
ROOT = joints_lib.MUPOTS.index("Pelvis")


def sequence_index(file_name: str) -> int:
  match = re.search(r"(\d+)", file_name)
  return int(match.group(1)) - 1 if match else -1


def read(root: str, data_cfg, split: str) -> Records:
  if split == "train":
    raise DataError("MuPoTS is a test set; train on MuCo (its official training set)")
  path = os.path.join(root, "MuPoTS-3D.json")
  data = read_json(path)
  images = {im["id"]: im for im in data["images"]}
  rows = []
  for ann in data["annotations"]:
    if not ann.get("is_valid", 0):
      continue
    image = images[ann["image_id"]]
    box, keep = bbox_lib.sanitize(field(ann, "bbox", path, (4,), "annotation")[None], image["width"],
                                  image["height"])
    if not keep[0] or box[0, 2] * box[0, 3] <= 0:
      continue
    intrinsic = field(image, "intrinsic", path, (4,), "image")
    rows.append((os.path.join(root, "MultiPersonTestSet", image["file_name"]), box[0],
                 field(ann, "keypoints_img", path, (17, 2), "annotation"),
                 field(ann, "keypoints_cam", path, (17, 3), "annotation"), intrinsic[:2], intrinsic[2:],
                 sequence_index(image["file_name"]), image["id"]))
  if not rows:
    raise DataError(f"{path}: no valid annotations")
  paths, boxes, kp_img, cams, f, c, groups, ids = map(np.array, zip(*rows))
  records = three_d_records(INFO, joints_lib.MUPOTS, ROOT, paths, bbox_lib.square(boxes, 1.25), kp_img, cams, f, c,
                            groups, ids)
  if not data_cfg.use_gt_info:
    records = _apply_bbox_root(records, os.path.join(root, "bbox_root", "bbox_mupots_output.json"))
  return records
