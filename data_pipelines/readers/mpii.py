"""MPII (real, 2D): 3DMPPE's COCO-style conversion + derived Torso (SPEC §4.6). Training split only."""
from __future__ import annotations

import os

from data_pipelines import joints as joints_lib
from data_pipelines.readers import coco_style, common
from data_pipelines.records import Records

INFO = common.info_for("MPII", is_synthetic=False, have_depth=False)


def read(folder: str, data_cfg, split: str) -> Records:
  """annotations/train.json persons (file names relative to the MPII folder); vis = v (SPEC §4.6; × jo2d in
  `select`); the Torso's visibility follows `data_cfg.mpii_torso_vis` (SPEC §9 #17). f, c: the nominal COCO camera."""
  common.require_split("MPII", split, ("train",), "AHuP uses MPII for 2D training only")
  persons = coco_style.read_persons(os.path.join(folder, "annotations", "train.json"), folder, 16,
                                    skip_missing_images=False)
  keypoints = joints_lib.add_mpii_torso(persons.keypoints, data_cfg.mpii_torso_vis)
  f, c = persons.nominal_camera()
  return common.make_records(
      INFO, joints_lib.MPII, img_path=persons.img_path, bbox=persons.bbox, joint_xy=keypoints[..., :2],
      joint_vis=keypoints[..., 2], joint_cam=None, f=f, c=c, image_id=persons.image_id)


def select(records: Records, data_cfg, split: str) -> Records:
  """vis × data.jo2d (`if_ylB`, SPEC §1.2): without it the 2D labels supervise nothing."""
  return common.weigh_2d_labels(records, data_cfg.jo2d)
