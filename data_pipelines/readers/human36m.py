"""Human3.6M (real, 3D; the test set and SPA target source), both 3DMPPE annotation releases (SPEC §4.2)."""
from __future__ import annotations

import os
import re

import numpy as np

from ahup_jax import skeleton
from data_pipelines import bbox as bbox_lib
from data_pipelines.readers import field, project, read_json
from data_pipelines.records import DataError, DatasetInfo, Records

SUBJECTS = {1: {"train": (1, 5, 6, 7, 8, 9), "test": (11,)}, 2: {"train": (1, 5, 6, 7, 8), "test": (9, 11)}}
SAMPLING = {"train": 5, "test": 64, "testInLoop": 640}
INFO = DatasetInfo("Human36M", is_synthetic=False, have_depth=True, joint_defined=np.ones(17, bool),
                   group_names=skeleton.H36M_ACTIONS)


def action_index(file_name: str) -> int:
  """Action index = the number after `act_` in the file NAME minus 2 (SPEC §4.2, §9 #32)."""
  match = re.search(r"act_(\d+)", os.path.basename(file_name))
  return int(match.group(1)) - 2 if match else -1


def _subject_instances(ann_dir: str, subject: int):
  """Yields (image, annotation, joint_cam [17, 3], R, t, f, c) of one subject, whichever release is present."""
  newer = os.path.join(ann_dir, f"Human36M_subject{subject}_data.json")
  older = os.path.join(ann_dir, f"Human36M_subject{subject}.json")
  if os.path.exists(newer):
    data = read_json(newer)
    cam_path = os.path.join(ann_dir, f"Human36M_subject{subject}_camera.json")
    joint_path = os.path.join(ann_dir, f"Human36M_subject{subject}_joint_3d.json")
    cameras, joints = read_json(cam_path), read_json(joint_path)
    images = {im["id"]: im for im in data["images"]}
    for ann in data["annotations"]:
      image = images[ann["image_id"]]
      cam = cameras.get(str(image["cam_idx"]))
      if cam is None:
        raise DataError(f"{cam_path}: no camera '{image['cam_idx']}' (image {image['id']})")
      try:
        world = joints[str(image["action_idx"])][str(image["subaction_idx"])][str(image["frame_idx"])]
      except KeyError:
        raise DataError(f"{joint_path}: no joints for action {image['action_idx']} subaction "
                        f"{image['subaction_idx']} frame {image['frame_idx']}") from None
      world = field({"joints": world}, "joints", joint_path, (17, 3), "frame")
      r, t = field(cam, "R", cam_path, (3, 3), "camera"), field(cam, "t", cam_path, (3,), "camera")
      yield image, ann, world @ r.T + t, field(cam, "f", cam_path, (2,), "camera"), field(cam, "c", cam_path, (2,),
                                                                                           "camera"), newer
  elif os.path.exists(older):
    data = read_json(older)
    images = {im["id"]: im for im in data["images"]}
    for ann in data["annotations"]:
      image = images[ann["image_id"]]
      cam = image.get("cam_param")
      if cam is None:
        raise DataError(f"{older}: image {image['id']} lacks field 'cam_param'")
      yield (image, ann, field(ann, "keypoints_cam", older, (17, 3), "annotation"),
             field(cam, "f", older, (2,), "cam_param"), field(cam, "c", older, (2,), "cam_param"), older)
  else:
    raise DataError(f"no annotations for subject S{subject} in {ann_dir}: expected "
                    f"Human36M_subject{subject}_data.json (+ _camera.json, _joint_3d.json) or "
                    f"Human36M_subject{subject}.json")


def read(root: str, data_cfg, split: str) -> Records:
  protocol = int(data_cfg.h36m_protocol)
  if protocol not in SUBJECTS:
    raise ValueError(f"data.h36m_protocol must be 1 or 2, got {protocol}")
  subjects = SUBJECTS[protocol]["train" if split == "train" else "test"]
  every = SAMPLING[split]
  rows = []
  for subject in subjects:
    for image, ann, joint_cam, f, c, path in _subject_instances(os.path.join(root, "annotations"), subject):
      if int(image["frame_idx"]) % every:
        continue
      rows.append((os.path.join(root, "images", image["file_name"]), field(ann, "bbox", path, (4,), "annotation"),
                   joint_cam, f, c, action_index(image["file_name"]), image["id"]))
  if not rows:
    return _records([], [], np.zeros((0, 17, 3)), np.zeros((0, 2)), np.zeros((0, 2)), [], [])
  paths, boxes, joint_cam, f, c, groups, ids = map(list, zip(*rows))
  records = _records(paths, bbox_lib.square(np.array(boxes), 1.25), np.array(joint_cam), np.array(f),
                     np.array(c), groups, ids)
  if not data_cfg.use_gt_info and split != "train":
    records = _apply_bbox_root(records, os.path.join(root, "bbox_root", "bbox_root_human36m_output.json"))
  return records


def _records(paths, boxes, joint_cam, f, c, groups, ids) -> Records:
  n = len(paths)
  joint_cam = np.asarray(joint_cam, np.float32).reshape(n, 17, 3)
  f, c = np.asarray(f, np.float32).reshape(n, 2), np.asarray(c, np.float32).reshape(n, 2)
  root = joint_cam[:, skeleton.ROOT]
  joint_img = np.concatenate([project(joint_cam, f, c), joint_cam[..., 2:] - root[:, None, 2:]], -1)
  return Records(INFO, np.array(paths, object), np.asarray(boxes, np.float32).reshape(n, 4),
                 joint_img.astype(np.float32), np.ones((n, 17), np.float32), joint_cam, root.copy(), f, c,
                 np.asarray(groups, np.int32), np.asarray(ids, np.int64))


def _apply_bbox_root(records: Records, path: str) -> Records:
  """Test boxes and roots from a detector output file (`use_gt_info=False`): list of {image_id, bbox, root_cam}."""
  entries = {e["image_id"]: e for e in read_json(path)}
  boxes, roots = records.bbox.copy(), records.root_cam.copy()
  for i, image_id in enumerate(records.image_id):
    if int(image_id) not in entries:
      raise DataError(f"{path}: no entry for image_id {image_id}")
    boxes[i] = field(entries[int(image_id)], "bbox", path, (4,))
    roots[i] = field(entries[int(image_id)], "root_cam", path, (3,))
  records.bbox, records.root_cam = boxes, roots
  return records
