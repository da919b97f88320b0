"""MSCOCO (real, 2D): person keypoints + derived Thorax and Pelvis (SPEC §4.5). Training split only."""
from __future__ import annotations

import os

import numpy as np

from data_pipelines import joints as joints_lib
from data_pipelines.readers import coco_style
from data_pipelines.records import DataError, DatasetInfo, Records

_, _DEFINED = joints_lib.reference_index(joints_lib.MSCOCO)
INFO = DatasetInfo("MSCOCO", is_synthetic=False, have_depth=False, joint_defined=_DEFINED)


def with_derived_joints(kp: np.ndarray) -> np.ndarray:
  """[N, 17, 3] (x, y, v) → [N, 19, 3] adding Thorax = mid shoulders, Pelvis = mid hips (v = product of flags)."""
  def mid(a, b):
    xy = (kp[:, a, :2] + kp[:, b, :2]) / 2
    return np.concatenate([xy, kp[:, a, 2:] * kp[:, b, 2:]], -1)
  return np.concatenate([kp, mid(5, 6)[:, None], mid(11, 12)[:, None]], 1)


def read(root: str, data_cfg, split: str) -> Records:
  if split != "train":
    raise DataError("MSCOCO has only a training split in AHuP (its test set gives qualitative outputs only)")
  paths, boxes, kp, ids = coco_style.read_persons(
      os.path.join(root, "annotations", "person_keypoints_train2017.json"), os.path.join(root, "train2017"), 17,
      "MSCOCO")
  kp = with_derived_joints(kp)
  return two_d_records(INFO, joints_lib.MSCOCO, paths, boxes, kp, (kp[..., 2] > 0) * float(data_cfg.jo2d), ids)


def two_d_records(info, names, paths, boxes, kp, vis, ids) -> Records:
  n = len(paths)
  joint_img = np.concatenate([kp[..., :2], np.zeros_like(kp[..., :1])], -1)
  zeros3, zeros2 = np.zeros((n, 17, 3), np.float32), np.zeros((n, 2), np.float32)
  return Records(info, paths, boxes.astype(np.float32),
                 joints_lib.to_reference(joint_img, names).astype(np.float32),
                 joints_lib.to_reference(vis.astype(np.float32), names), zeros3, np.zeros((n, 3), np.float32),
                 zeros2, zeros2.copy(), -np.ones(n, np.int32), ids)
