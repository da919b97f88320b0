"""MuPoTS-3D (real, 3D; test only), SPEC §4.4. Groups = the sequences TS1..TS20."""
from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from data_pipelines import bbox as bbox_lib
from data_pipelines import joints as joints_lib
from data_pipelines.readers import common
from data_pipelines.records import DataError, Records

NUM_SEQUENCES = 20
INFO = common.info_for("MuPoTS", is_synthetic=False, have_depth=True,
                       group_names=tuple(f"TS{i}" for i in range(1, NUM_SEQUENCES + 1)))
# SPEC §4.4 names the detector file bbox_mupots_output.json; the official code reads bbox_root_mupots_output.json.
BBOX_ROOT_FILES = (os.path.join("bbox_root", "bbox_mupots_output.json"),
                   os.path.join("bbox_root", "bbox_root_mupots_output.json"))


def sequence_index(file_name: str) -> int:
  """Sequence index = the first number in the relative image path minus 1 (`TS3/img_000010.jpg` → 2); −1 if none."""
  match = re.search(r"\d+", file_name)
  return int(match.group()) - 1 if match else -1


def read(folder: str, data_cfg, split: str) -> Records:
  """All valid annotations for `test` and `testInLoop` alike (no sub-sampling). With `use_gt_info` off: one
  record per detection of the bbox_root file (box, root; zero joints, vis 0), as the official code."""
  common.require_split("MuPoTS", split, ("test", "testInLoop"), "train on MuCo-3DHP, its training set")
  path = os.path.join(folder, "MuPoTS-3D.json")
  images, annotations = common.read_coco_lists(path)
  images_by_id = common.entries_by_id(images, path, "image")
  if data_cfg.use_gt_info:
    return _annotated_people(folder, path, images_by_id, annotations)
  return _detected_people(folder, path, images_by_id)


def _annotated_people(folder: str, path: str, images_by_id: dict, annotations: list) -> Records:
  """GT boxes sanitised (w·h > 0) then square×1.25; root = GT pelvis."""
  image_of = common.images_of(annotations, images_by_id, path)
  valid = common.column(annotations, "is_valid", (), path, common.annotation_label(annotations, image_of)) > 0
  annotations = [a for a, v in zip(annotations, valid) if v]
  image_of = [im for im, v in zip(image_of, valid) if v]
  describe, describe_image = common.annotation_label(annotations, image_of), common.image_label(image_of)
  joint_cam = common.column(annotations, "keypoints_cam", (17, 3), path, describe)
  joint_xy = common.column(annotations, "keypoints_img", (17, 2), path, describe)
  boxes = common.column(annotations, "bbox", (4,), path, describe)
  width, height = (common.column(image_of, key, (), path, describe_image) for key in ("width", "height"))
  intrinsic = common.column(image_of, "intrinsic", (4,), path, describe_image)
  file_name = np.asarray(common.values(image_of, "file_name", path, describe_image), dtype=object)
  image_id = np.array([image["id"] for image in image_of], np.int64)
  boxes_clipped, keep = bbox_lib.sanitize(boxes, width, height)
  keep &= boxes[:, 2] * boxes[:, 3] > 0
  return common.make_records(
      INFO, joints_lib.MUPOTS, img_path=[os.path.join(folder, "MultiPersonTestSet", n) for n in file_name[keep]],
      bbox=bbox_lib.square(boxes_clipped[keep], 1.25), joint_xy=joint_xy[keep],
      joint_vis=np.ones((int(keep.sum()), 17)), joint_cam=joint_cam[keep], f=intrinsic[keep, :2],
      c=intrinsic[keep, 2:], image_id=image_id[keep], group=_sequence_indices(file_name[keep], path))


def _detected_people(folder: str, path: str, images_by_id: dict) -> Records:
  """One record per entry {image_id, bbox (processed), root_cam} of the detector file."""
  candidates = [os.path.join(folder, name) for name in BBOX_ROOT_FILES]
  bbox_path = next((p for p in candidates if os.path.isfile(p)), None)
  if bbox_path is None:
    raise DataError(f"data.use_gt_info is off but no detector boxes were found: expected {' or '.join(candidates)} "
                    "(list of {image_id, bbox, root_cam})")
  entries = common.read_json(bbox_path)
  if not isinstance(entries, list):
    raise DataError(f"{bbox_path}: expected a JSON list of {{image_id, bbox, root_cam}}")
  image_of = common.images_of(entries, images_by_id, bbox_path)
  describe, describe_image = (lambda i: f"entry #{i}"), common.image_label(image_of)
  intrinsic = common.column(image_of, "intrinsic", (4,), path, describe_image)
  file_name = np.asarray(common.values(image_of, "file_name", path, describe_image), dtype=object)
  n = len(entries)
  records = common.make_records(
      INFO, joints_lib.MUPOTS, img_path=[os.path.join(folder, "MultiPersonTestSet", name) for name in file_name],
      bbox=common.column(entries, "bbox", (4,), bbox_path, describe), joint_xy=np.zeros((n, 17, 2)),
      joint_vis=np.zeros((n, 17)), joint_cam=None, f=intrinsic[:, :2], c=intrinsic[:, 2:],
      image_id=[image["id"] for image in image_of], group=_sequence_indices(file_name, path))
  return dataclasses.replace(records, root_cam=common.column(entries, "root_cam", (3,), bbox_path, describe))


def _sequence_indices(file_names: np.ndarray, path: str) -> np.ndarray:
  """[n] sequence indices; DataError for a file name that does not start with TS1..TS20."""
  group = np.array([sequence_index(name) for name in file_names], np.int32)
  bad = (group < 0) | (group >= NUM_SEQUENCES)
  if bad.any():
    raise DataError(f"{path}: image file_name {file_names[np.flatnonzero(bad)[0]]!r} names no sequence: expected "
                    "TS<k>/img_<frame>.jpg with k in 1..20")
  return group
