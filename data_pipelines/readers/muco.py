"""MuCo-3DHP (real, 3D; SPA target for MuPoTS and a baseline training set), SPEC §4.3. Training split only."""
from __future__ import annotations

import os

import numpy as np

from data_pipelines import bbox as bbox_lib
from data_pipelines import joints as joints_lib
from data_pipelines.readers import common
from data_pipelines.records import Records

INFO = common.info_for("MuCo", is_synthetic=False, have_depth=True)
ROOT = joints_lib.MUCO.index("Pelvis")
MIN_DISTANCE_MM = 500.0


def select_people(image_index: np.ndarray, roots: np.ndarray) -> np.ndarray:
  """Kept annotations of multi-person images (SPEC §4.3): per image the person closest to the camera (smallest
  root depth) plus every person whose root is ≥ 500 mm from every other person's, both in camera-XY and in 3D.

  image_index: [M] int, the image of each annotation; roots: [M, 3] root (pelvis) camera coordinates, mm.
  Returns annotation indices [K], ordered by image index, the closest person first, then annotation order.
  """
  order = np.argsort(image_index, kind="stable")
  images, start, count = np.unique(image_index[order], return_index=True, return_counts=True)
  slot = np.arange(len(order)) - np.repeat(start, count)
  group = np.repeat(np.arange(len(images)), count)
  padded = np.full((len(images), count.max(initial=0), 3), np.nan)  # [G, P, 3]
  padded[group, slot] = roots[order]
  present = ~np.isnan(padded[..., 0])
  diff = padded[:, :, None] - padded[:, None, :]  # [G, P, P, 3]
  apart = ((np.linalg.norm(diff[..., :2], axis=-1) >= MIN_DISTANCE_MM)
           & (np.linalg.norm(diff, axis=-1) >= MIN_DISTANCE_MM))
  apart |= ~present[:, None, :] | np.eye(padded.shape[1], dtype=bool)
  closest = np.argmin(np.where(present, padded[..., 2], np.inf), axis=1)
  is_closest = np.zeros_like(present)
  is_closest[np.arange(len(images)), closest] = True
  kept = present & (apart.all(axis=2) | is_closest)
  g, p = np.nonzero(kept)
  rank = np.lexsort((p, ~is_closest[g, p], g))
  return order[start[g] + p][rank]


def read(folder: str, data_cfg, split: str) -> Records:
  """The selected people of every image; boxes sanitised (w·h > 0, strict) then square×1.25; no sub-sampling."""
  common.require_split("MuCo", split, ("train",), "MuPoTS-3D is its test set")
  path = os.path.join(folder, "MuCo-3DHP.json")
  images, annotations = common.read_coco_lists(path)
  image_of = common.images_of(annotations, common.entries_by_id(images, path, "image"), path)
  try:  # only the roots of everyone; the full arrays of the selected people below
    roots = np.array([a["keypoints_cam"][ROOT] for a in annotations], np.float64).reshape(len(annotations), 3)
  except (KeyError, TypeError, ValueError, IndexError):
    roots = common.column(annotations, "keypoints_cam", (21, 3), path,
                          common.annotation_label(annotations, image_of))[:, ROOT]
  position = {image["id"]: k for k, image in enumerate(images)}
  selected = select_people(np.array([position[image["id"]] for image in image_of], np.int64), roots)
  annotations = [annotations[k] for k in selected]
  image_of = [image_of[k] for k in selected]
  describe, describe_image = common.annotation_label(annotations, image_of), common.image_label(image_of)
  joint_cam = common.column(annotations, "keypoints_cam", (21, 3), path, describe)
  joint_xy = common.column(annotations, "keypoints_img", (21, 2), path, describe)
  boxes = common.column(annotations, "bbox", (4,), path, describe)
  width, height = (common.column(image_of, key, (), path, describe_image) for key in ("width", "height"))
  f, c = (common.column(image_of, key, (2,), path, describe_image) for key in ("f", "c"))
  file_name = np.asarray(common.values(image_of, "file_name", path, describe_image), dtype=object)
  image_id = np.array([image["id"] for image in image_of], np.int64)
  boxes_clipped, keep = bbox_lib.sanitize(boxes, width, height, strict=True)
  keep &= boxes[:, 2] * boxes[:, 3] > 0
  return common.make_records(
      INFO, joints_lib.MUCO, img_path=[os.path.join(folder, name) for name in file_name[keep]],
      bbox=bbox_lib.square(boxes_clipped[keep], 1.25), joint_xy=joint_xy[keep],
      joint_vis=np.ones((int(keep.sum()), 21)), joint_cam=joint_cam[keep], f=f[keep], c=c[keep],
      image_id=image_id[keep])
