"""MPII (real, 2D): 3DMPPE's COCO-style conversion + derived Torso (SPEC §4.6). Training split only."""
from __future__ import annotations

import os

import numpy as np

from data_pipelines import joints as joints_lib
from data_pipelines.readers import coco_style
from data_pipelines.readers.mscoco import two_d_records
from data_pipelines.records import DataError, DatasetInfo, Records

_, _DEFINED = joints_lib.reference_index(joints_lib.MPII)
INFO = DatasetInfo("MPII", is_synthetic=False, have_depth=False, joint_defined=_DEFINED)


def read(root: str, data_cfg, split: str) -> Records:
  if split != "train":
    raise DataError("MPII has only a training split in AHuP")
  paths, boxes, kp, ids = coco_style.read_persons(os.path.join(root, "annotations", "train.json"), root, 16, "MPII")
  thorax, pelvis = kp[:, 7], kp[:, 6]
  if data_cfg.mpii_torso_vis == "faithful":  # forced to 1 even if a source joint is unlabelled (SPEC §9 #17)
    torso_v = np.ones_like(thorax[:, 2:])
  elif data_cfg.mpii_torso_vis == "product":
    torso_v = thorax[:, 2:] * pelvis[:, 2:]
  else:
    raise ValueError(f"data.mpii_torso_vis must be 'faithful' or 'product', got '{data_cfg.mpii_torso_vis}'")
  torso = np.concatenate([(thorax[:, :2] + pelvis[:, :2]) / 2, torso_v], -1)
  kp = np.concatenate([kp, torso[:, None]], 1)
  return two_d_records(INFO, joints_lib.MPII, paths, boxes, kp, (kp[..., 2] > 0) * float(data_cfg.jo2d), ids)
