"""MuCo-3DHP (real, 3D; SPA target for MuPoTS and a baseline training set), SPEC §4.3. Training split only."""
from __future__ import annotations

import os

import numpy as np

from ahup_jax import skeleton
from data_pipelines import bbox as bbox_lib
from data_pipelines import joints as joints_lib
from data_pipelines.readers import field, read_json
from data_pipelines.records import DataError, DatasetInfo, Records

_, _DEFINED = joints_lib.reference_index(joints_lib.MUCO)
INFO = DatasetInfo("MuCo", is_synthetic=False, have_depth=True, joint_defined=_DEFINED)
ROOT = joints_lib.MUCO.index("Pelvis")


def select_people(roots: np.ndarray) -> np.ndarray:
  """Indices kept in one image: the closest person, plus every person ≥ 500 mm (XY and 3D) from all others."""
  closest = int(np.argmin(roots[:, 2]))
  keep = [closest]
  for i in range(len(roots)):
    if i == closest:
      continue
    others = np.delete(roots, i, axis=0)
    d_xy = np.linalg.norm(others[:, :2] - roots[i, :2], axis=1)
    d_3d = np.linalg.norm(others - roots[i], axis=1)
    if np.all(d_xy >= 500) and np.all(d_3d >= 500):
      keep.append(i)
  return np.array(sorted(keep))


def read(root: str, data_cfg, split: str) -> Records:
  if split != "train":
    raise DataError("MuCo has only a training split (MuPoTS is its test set)")
  path = os.path.join(root, "MuCo-3DHP.json")
  data = read_json(path)
  by_image: dict[int, list] = {}
  for ann in data["annotations"]:
    by_image.setdefault(ann["image_id"], []).append(ann)
  rows = []
  for image in data["images"]:
    anns = by_image.get(image["id"], [])
    if not anns:
      continue
    cams = np.stack([field(a, "keypoints_cam", path, (21, 3), "annotation") for a in anns])
    for i in select_people(cams[:, ROOT]):
      ann = anns[i]
      box, keep = bbox_lib.sanitize(field(ann, "bbox", path, (4,), "annotation")[None], image["width"],
                                    image["height"], strict=True)
      if not keep[0] or box[0, 2] * box[0, 3] <= 0:
        continue
      kp_img = field(ann, "keypoints_img", path, (21, 2), "annotation")
      rows.append((os.path.join(root, image["file_name"]), box[0], kp_img, cams[i],
                   field(image, "f", path, (2,), "image"), field(image, "c", path, (2,), "image"), image["id"]))
  if not rows:
    raise DataError(f"{path}: no usable annotations")
  paths, boxes, kp_img, cams, f, c, ids = map(np.array, zip(*rows))
  return three_d_records(INFO, joints_lib.MUCO, ROOT, paths, bbox_lib.square(boxes, 1.25), kp_img, cams, f, c,
                         -np.ones(len(paths), np.int32), ids)


def three_d_records(info, names, root_index, paths, boxes, kp_img, cams, f, c, groups, ids) -> Records:
  n = len(paths)
  depth = cams[..., 2:] - cams[:, root_index, None, 2:]
  joint_cam = joints_lib.to_reference(cams.astype(np.float32), names)
  return Records(info, np.asarray(paths, object), boxes.astype(np.float32),
                 joints_lib.to_reference(np.concatenate([kp_img, depth], -1), names).astype(np.float32),
                 joints_lib.to_reference(np.ones((n, len(names)), np.float32), names), joint_cam,
                 joint_cam[:, skeleton.ROOT].copy(), f.astype(np.float32), c.astype(np.float32),
                 np.asarray(groups, np.int32), np.asarray(ids, np.int64))
