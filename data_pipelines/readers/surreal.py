"""SURREAL (synthetic, 3D): the pooled `surreal_annotations_raw.npy` of frames from cmu/train clips (SPEC §4.8)."""
from __future__ import annotations

import os

import numpy as np
from absl import logging

from data_pipelines import bbox as bbox_lib
from data_pipelines import joints as joints_lib
from data_pipelines.readers import common
from data_pipelines.records import Records

INFO = common.info_for("SURREAL", is_synthetic=True, have_depth=True)
WIDTH, HEIGHT = 320, 240
FOCAL, CENTRE = (600.0, 600.0), (160.0, 120.0)
TEST_FRACTION = 0.05  # the last ⌊0.05·N⌋ records (sorted by image path) are the test split
SAMPLING = {"train": 3, "test": 1, "testInLoop": 10}  # on the record's sorted index; `select` then keeps
                                                     # every (3·data.rt_SYN)-th training record


def camera_joints(joints3d_m: np.ndarray, cam_dist_m: np.ndarray) -> np.ndarray:
  """The official approximate camera frame (SPEC §4.8, §9 #19), valid root-relative only.

  joints3d_m: [N, 3, 24] world metres; cam_dist_m: [N]. Columns (x, y, z) → (z, y, x), ×1000, the new y negated,
  camDist·1000 added to the new z, then every left/right pair swapped to agree with the 2D labelling.
  Returns [N, 24, 3] mm in the order of `joints_lib.SURREAL[:24]`.
  """
  xyz = joints3d_m.transpose(0, 2, 1)[..., ::-1] * np.array([1000.0, -1000.0, 1000.0])
  xyz[..., 2] += cam_dist_m[:, None] * 1000.0
  swap = np.arange(24)
  for right, left in joints_lib.flip_pairs(joints_lib.SURREAL[:24]):
    swap[right], swap[left] = left, right
  return xyz[:, swap]


def read(folder: str, data_cfg, split: str) -> Records:
  """Records sorted by image path (SPEC §9 #18), split 95/5 by index, sub-sampled by index (train: every 3rd,
  see `select` for data.rt_SYN); 25 joints (Head
  extrapolated), vis 1, f = 600, c = (160, 120); bbox tight ×1.2 → sanitise to 320×240 → square×1.0."""
  path = os.path.join(folder, "surreal_annotations_raw.npy")
  raw = common.load_pooled_npy(path)
  image = [str(p) for p in common.values(raw, "image", path, lambda i: f"record {i} (file order)")]
  order = np.array(sorted(range(len(raw)), key=image.__getitem__), np.int64)
  first_test = len(raw) - int(TEST_FRACTION * len(raw))
  every = SAMPLING[split]
  index = np.arange(first_test) if split == "train" else np.arange(first_test, len(raw))
  index = index[index % every == 0]
  records = [raw[i] for i in order[index]]

  def describe(k: int) -> str:
    return f"record {image[order[index[k]]]}"

  joints_2d = common.column(records, "joints2D", (2, 24), path, describe)
  joints_3d = common.column(records, "joints3D", (3, 24), path, describe)
  cam_dist = common.column(records, "camDist", (), path, describe, any_layout=True)
  joint_xy = joints_lib.add_surreal_head(joints_2d.transpose(0, 2, 1))
  joint_cam = joints_lib.add_surreal_head(camera_joints(joints_3d, cam_dist))
  boxes, inside = bbox_lib.sanitize(bbox_lib.tight_from_joints(joint_xy), WIDTH, HEIGHT)
  if not inside.all():
    logging.warning("%s: skipped %d %s records whose joints lie outside the image", path, int((~inside).sum()), split)
  n = int(inside.sum())
  return common.make_records(
      INFO, joints_lib.SURREAL, img_path=[os.path.join(folder, image[i]) for i in order[index[inside]]],
      bbox=bbox_lib.square(boxes[inside], 1.0), joint_xy=joint_xy[inside], joint_vis=np.ones((n, 25)),
      joint_cam=joint_cam[inside], f=np.tile(FOCAL, (n, 1)), c=np.tile(CENTRE, (n, 1)), image_id=index[inside])


def select(records: Records, data_cfg, split: str) -> Records:
  """Training sub-sampling (SPEC §4.8): sorted index (= image_id) % (3·data.rt_SYN) == 0."""
  every = SAMPLING["train"] * common.positive_int(data_cfg.rt_SYN, "data.rt_SYN")
  return common.every_nth(records, every) if split == "train" else records
