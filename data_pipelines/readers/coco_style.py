"""Shared reading of COCO-style 2D keypoint files (MSCOCO, MPII; SPEC §4.5–4.6)."""
from __future__ import annotations

import os

import numpy as np
from absl import logging

from data_pipelines import bbox as bbox_lib
from data_pipelines.readers import field, read_json
from data_pipelines.records import DataError


def read_persons(ann_path: str, image_dir: str, num_keypoints: int, dataset: str):
  """Valid person annotations → (paths, boxes [N, 4] sanitised + square×1.25, keypoints [N, K, 3], image ids).

  Skips crowd annotations, ones without keypoints and ones whose image file is missing (counted, warned).
  """
  data = read_json(ann_path)
  for key in ("images", "annotations"):
    if key not in data:
      raise DataError(f"{ann_path}: lacks top-level field '{key}'")
  images = {im["id"]: im for im in data["images"]}
  paths, boxes, keypoints, ids, sizes = [], [], [], [], []
  missing = 0
  for ann in data["annotations"]:
    if ann.get("iscrowd", 0) or ann.get("num_keypoints", 0) == 0:
      continue
    image = images.get(ann["image_id"])
    if image is None:
      raise DataError(f"{ann_path}: annotation {ann.get('id')} refers to unknown image_id {ann['image_id']}")
    path = os.path.join(image_dir, image["file_name"])
    if not os.path.exists(path):
      missing += 1
      continue
    if field(ann, "area", ann_path, (), "annotation") <= 0:
      continue
    paths.append(path)
    boxes.append(field(ann, "bbox", ann_path, (4,), "annotation"))
    keypoints.append(field(ann, "keypoints", ann_path, (num_keypoints * 3,), "annotation").reshape(-1, 3))
    ids.append(image["id"])
    sizes.append((image["width"], image["height"]))
  if missing:
    logging.warning("%s: skipped %d annotations whose image is missing under %s", dataset, missing, image_dir)
  n = len(paths)
  if n == 0:
    raise DataError(f"{ann_path}: no usable person annotations (images under {image_dir}?)")
  sizes = np.array(sizes, np.float64)
  boxes, keep = bbox_lib.sanitize(np.array(boxes), sizes[:, 0], sizes[:, 1])
  keep_idx = np.flatnonzero(keep)
  return (np.array(paths, object)[keep_idx], bbox_lib.square(boxes[keep_idx], 1.25),
          np.array(keypoints)[keep_idx], np.array(ids, np.int64)[keep_idx])
