"""COCO-style 2D person keypoint files (MSCOCO, 3DMPPE's MPII conversion): filtering and boxes (SPEC §4.5–4.6)."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
from absl import logging

from data_pipelines import bbox as bbox_lib
from data_pipelines.readers import common

NOMINAL_FOCAL = 1500.0  # 3DMPPE's camera for COCO images (f = 1500 px, c = image centre); unused in 2D training


@dataclasses.dataclass(frozen=True)
class Persons:
  """The usable person annotations of one file."""
  img_path: np.ndarray   # [N] object, absolute image paths
  bbox: np.ndarray       # [N, 4] px, sanitised then square×1.25
  keypoints: np.ndarray  # [N, K, 3] (x px, y px, v)
  image_id: np.ndarray   # [N] int64
  image_size: np.ndarray  # [N, 2] (width, height) px

  def nominal_camera(self) -> tuple[np.ndarray, np.ndarray]:
    """(f, c) [N, 2]: f = 1500 px, c = image centre."""
    return np.full((len(self.img_path), 2), NOMINAL_FOCAL), self.image_size / 2


def read_persons(path: str, image_dir: str, num_keypoints: int, *, skip_missing_images: bool) -> Persons:
  """Person annotations of the COCO-style file `path`, images under `image_dir`.

  Skips crowd annotations, those with num_keypoints = 0 and those whose box fails the sanitise test (area > 0,
  x2 ≥ x1, y2 ≥ y1); with `skip_missing_images` also those whose image file is missing, counted and warned about
  once. A malformed field raises DataError naming the file, the annotation and the field.
  """
  images, annotations = common.read_coco_lists(path)
  image_of = common.images_of(annotations, common.entries_by_id(images, path, "image"), path)
  describe = common.annotation_label(annotations, image_of)
  crowd = common.column(annotations, "iscrowd", (), path, describe) > 0
  labelled = common.column(annotations, "num_keypoints", (), path, describe) > 0
  keep = ~crowd & labelled
  annotations = [a for a, k in zip(annotations, keep) if k]
  image_of = [im for im, k in zip(image_of, keep) if k]
  describe, describe_image = common.annotation_label(annotations, image_of), common.image_label(image_of)
  file_name = common.values(image_of, "file_name", path, describe_image)
  img_path = np.array([os.path.join(image_dir, name) for name in file_name], dtype=object)
  present = np.ones(len(img_path), bool)
  if skip_missing_images:
    exists = {p: os.path.isfile(p) for p in set(img_path)}
    present = np.array([exists[p] for p in img_path], bool)
    if not present.all():
      logging.warning("%s: skipped %d of %d person annotations whose image is missing under %s (e.g. %s)", path,
                      int((~present).sum()), len(present), image_dir, img_path[~present][0])
  size = np.stack([common.column(image_of, key, (), path, describe_image) for key in ("width", "height")], -1)
  boxes = common.column(annotations, "bbox", (4,), path, describe)
  area = common.column(annotations, "area", (), path, describe)
  keypoints = common.column(annotations, "keypoints", (num_keypoints * 3,), path, describe)
  boxes, box_ok = bbox_lib.sanitize(boxes, size[:, 0], size[:, 1])
  usable = present & box_ok & (area > 0)
  logging.info("%s: %d usable person annotations (%d crowd, %d without keypoints, %d missing images, %d bad boxes)",
               path, int(usable.sum()), int(crowd.sum()), int((~crowd & ~labelled).sum()), int((~present).sum()),
               int((present & ~(box_ok & (area > 0))).sum()))
  image_id = np.array([image["id"] for image in image_of], np.int64)
  return Persons(img_path[usable], bbox_lib.square(boxes[usable], 1.25),
                 keypoints[usable].reshape(-1, num_keypoints, 3), image_id[usable], size[usable])
