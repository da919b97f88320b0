"""MSCOCO (real, 2D): person keypoints + derived Thorax and Pelvis (SPEC §4.5). Training split only."""
from __future__ import annotations

import os

from data_pipelines import joints as joints_lib
from data_pipelines.readers import coco_style, common
from data_pipelines.records import Records

INFO = common.info_for("MSCOCO", is_synthetic=False, have_depth=False)


def read(folder: str, data_cfg, split: str) -> Records:
  """train2017 persons; vis = (v > 0) (× jo2d in `select`); annotations of missing images are skipped."""
  common.require_split("MSCOCO", split, ("train",),
                       "its val2017 outputs are qualitative only (run `predict` on a folder of images instead)")
  persons = coco_style.read_persons(os.path.join(folder, "annotations", "person_keypoints_train2017.json"),
                                    os.path.join(folder, "train2017"), 17, skip_missing_images=True)
  keypoints = joints_lib.add_mscoco_joints(persons.keypoints)
  f, c = persons.nominal_camera()
  return common.make_records(
      INFO, joints_lib.MSCOCO, img_path=persons.img_path, bbox=persons.bbox, joint_xy=keypoints[..., :2],
      joint_vis=keypoints[..., 2] > 0, joint_cam=None, f=f, c=c,
      image_id=persons.image_id)


def select(records: Records, data_cfg, split: str) -> Records:
  """vis × data.jo2d (`if_ylB`, SPEC §1.2): without it the 2D labels supervise nothing."""
  return common.weigh_2d_labels(records, data_cfg.jo2d)
