"""Human3.6M (real, 3D; the test set and SPA target source), both 3DMPPE annotation releases (SPEC §4.2).

Per subject, `annotations/` holds either the current release (`Human36M_subject{S}_data.json` with images and
boxes, `_camera.json` {cam_idx: {R, t, f, c}}, `_joint_3d.json` {action: {subaction: {frame: 17×3 world mm}}};
camera = R·X_world + t) or the older one (`Human36M_subject{S}.json` with `cam_param` per image and
`keypoints_cam` per annotation); the current one wins where both exist.
"""
from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from ahup_jax import skeleton
from data_pipelines import bbox as bbox_lib
from data_pipelines import joints as joints_lib
from data_pipelines.readers import common
from data_pipelines.records import DataError, Records

SUBJECTS = {1: {"train": (1, 5, 6, 7, 8, 9), "test": (11,)}, 2: {"train": (1, 5, 6, 7, 8), "test": (9, 11)}}
SAMPLING = {"train": 5, "test": 64, "testInLoop": 640}  # keep frame_idx % r == 0
INFO = common.info_for("Human36M", is_synthetic=False, have_depth=True, group_names=skeleton.H36M_ACTIONS)
BBOX_ROOT_FILE = os.path.join("bbox_root", "bbox_root_human36m_output.json")
_ACTION = re.compile(r"act_(\d+)")
_SUBJECT = re.compile(r"s_(\d+)_act")


def subject_of(img_path: str) -> int:
  """Subject number of an image path (`s_09_act_02_..._000001.jpg` → 9); −1 if the name carries none."""
  match = _SUBJECT.search(os.path.basename(str(img_path)))
  return int(match.group(1)) if match else -1


def subject_mask(records: Records, subjects) -> np.ndarray:
  """[N] bool: records whose image belongs to one of `subjects`."""
  return np.isin([subject_of(p) for p in records.img_path], np.asarray(tuple(subjects), np.int64))


def select(records: Records, data_cfg, split: str) -> Records:
  """Drops the training subjects in `data_cfg.h36m_holdout_subjects` (a validation split, e.g. S8) from `train`."""
  holdout = tuple(data_cfg.get("h36m_holdout_subjects", ()) or ())
  if split != "train" or not holdout:
    return records
  return records.subset(np.flatnonzero(~subject_mask(records, holdout)))


def action_index(file_name: str) -> int:
  """Action index = the number after `act_` in the file NAME minus 2 (SPEC §4.2, §9 #32); −1 if there is none."""
  match = _ACTION.search(os.path.basename(file_name))
  return int(match.group(1)) - 2 if match else -1


def _action_indices(file_names: np.ndarray, folder: str) -> np.ndarray:
  """[n] action indices of image file names; DataError for a name without `act_NN`, NN in 02..16."""
  group = np.array([action_index(name) for name in file_names], np.int32)
  bad = (group < 0) | (group >= len(skeleton.H36M_ACTIONS))
  if bad.any():
    raise DataError(f"{folder}/annotations: image file_name {file_names[np.flatnonzero(bad)[0]]!r} has no action "
                    "number: expected a name like s_09_act_02_subact_01_ca_01_000001.jpg (act_02..act_16)")
  return group


def read(folder: str, data_cfg, split: str) -> Records:
  """Records of `split`: protocol `data_cfg.h36m_protocol` subjects, every 5th / 64th / 640th frame (SPEC §4.2)."""
  protocol = data_cfg.h36m_protocol
  if protocol not in SUBJECTS:
    raise ValueError(f"data.h36m_protocol must be 1 or 2, got {protocol!r}")
  subjects = SUBJECTS[protocol]["train" if split == "train" else "test"]
  parts = [_read_subject(os.path.join(folder, "annotations"), s, SAMPLING[split]) for s in subjects]
  file_name, image_id, bbox, joint_cam, f, c = (np.concatenate(column) for column in zip(*parts))
  n = len(file_name)
  records = common.make_records(
      INFO, joints_lib.H36M, img_path=[os.path.join(folder, "images", name) for name in file_name],
      bbox=bbox_lib.square(bbox, 1.25),  # the official code does not sanitise H36M boxes (SPEC §9 #30)
      joint_xy=common.project(joint_cam, f, c), joint_vis=np.ones((n, 17)), joint_cam=joint_cam, f=f, c=c,
      image_id=image_id, group=_action_indices(file_name, folder))
  if split != "train" and not data_cfg.use_gt_info:
    records = with_detected_boxes(records, os.path.join(folder, BBOX_ROOT_FILE))
  return records


def _read_subject(ann_dir: str, subject: int, every: int):
  """One subject's annotations with frame_idx % every == 0 → (file_name [n], image_id [n], bbox [n, 4] px,
  joint_cam [n, 17, 3] mm, f [n, 2], c [n, 2])."""
  current = os.path.join(ann_dir, f"Human36M_subject{subject}_data.json")
  older = os.path.join(ann_dir, f"Human36M_subject{subject}.json")
  if not os.path.isfile(current) and not os.path.isfile(older):
    raise DataError(f"no annotations for subject S{subject} in {ann_dir}: expected Human36M_subject{subject}_data.json "
                    f"(+ _camera.json, _joint_3d.json; current 3DMPPE release) or Human36M_subject{subject}.json "
                    "(older release)")
  path = current if os.path.isfile(current) else older
  images, annotations = common.read_coco_lists(path)
  images = common.images_of(annotations, common.entries_by_id(images, path, "image"), path)
  frame = common.column(images, "frame_idx", (), path, common.image_label(images)).astype(np.int64)
  images = [im for im, f in zip(images, frame) if f % every == 0]
  annotations = [a for a, f in zip(annotations, frame) if f % every == 0]
  describe_image, describe_ann = common.image_label(images), common.annotation_label(annotations, images)
  bbox = common.column(annotations, "bbox", (4,), path, describe_ann)
  file_name = np.asarray(common.values(images, "file_name", path, describe_image), dtype=object)
  image_id = np.array([im["id"] for im in images], np.int64)
  if path == current:
    joint_cam, f, c = _current_release_cameras(ann_dir, subject, images)
  else:
    joint_cam = common.column(annotations, "keypoints_cam", (17, 3), path, describe_ann)
    cams = common.values(images, "cam_param", path, describe_image)
    f, c = (common.column(cams, key, (2,), path, lambda i: f"image id {images[i]['id']} cam_param")
            for key in ("f", "c"))
  return file_name, image_id, bbox, joint_cam, f, c


def _current_release_cameras(ann_dir: str, subject: int, images: list):
  """Camera-frame joints of the current release: world joints (_joint_3d.json) → R·X + t with the image's camera
  (_camera.json). Returns joint_cam [n, 17, 3] mm, f [n, 2], c [n, 2]."""
  base = os.path.join(ann_dir, f"Human36M_subject{subject}")
  cam_path, joint_path, data_path = f"{base}_camera.json", f"{base}_joint_3d.json", f"{base}_data.json"
  cameras, world = common.read_json(cam_path), common.read_json(joint_path)
  if not isinstance(cameras, dict) or not cameras:
    raise DataError(f"{cam_path}: expected a JSON object {{cam_idx: {{R, t, f, c}}}}")
  keys = list(cameras)
  entries = [cameras[k] for k in keys]
  rotation, translation, f, c = (common.column(entries, key, shape, cam_path, lambda i: f"camera '{keys[i]}'")
                                 for key, shape in (("R", (3, 3)), ("t", (3,)), ("f", (2,)), ("c", (2,))))
  ids = {key: common.column(images, key, (), data_path, common.image_label(images)).astype(np.int64)
         for key in ("cam_idx", "action_idx", "subaction_idx", "frame_idx")}
  position = {str(k): i for i, k in enumerate(keys)}
  try:
    cam = np.array([position[str(k)] for k in ids["cam_idx"]], np.int64)
  except KeyError as error:
    raise DataError(f"{cam_path}: no camera {error.args[0]!r} (expected keys for every cam_idx of "
                    f"{os.path.basename(data_path)})") from None
  frames = []
  for i, (a, s, fr) in enumerate(zip(ids["action_idx"], ids["subaction_idx"], ids["frame_idx"])):
    try:
      frames.append(world[str(a)][str(s)][str(fr)])
    except (KeyError, TypeError):
      raise DataError(f"{joint_path}: no joints for action {a}, subaction {s}, frame {fr} (image id "
                      f"{images[i]['id']}); expected {{action: {{subaction: {{frame: 17×3 world mm}}}}}}") from None
  joint_world = common.stack(frames, "joints", (17, 3), joint_path,
                             lambda i: f"action {ids['action_idx'][i]} subaction {ids['subaction_idx'][i]} "
                                       f"frame {ids['frame_idx'][i]}")
  joint_cam = np.einsum("nij,nkj->nki", rotation[cam], joint_world) + translation[cam][:, None]
  return joint_cam, f[cam], c[cam]


def with_detected_boxes(records: Records, path: str) -> Records:
  """Test boxes and roots from a detector file (`use_gt_info` off): list of {image_id, bbox, root_cam}, boxes
  already processed (SPEC §4.2). joint_img keeps its GT root-relative depth, as in the official code."""
  entries = common.read_json(path)
  if not isinstance(entries, list):
    raise DataError(f"{path}: expected a JSON list of {{image_id, bbox, root_cam}}")
  image_id, bbox, root = (common.column(entries, key, shape, path, lambda i: f"entry #{i}")
                          for key, shape in (("image_id", ()), ("bbox", (4,)), ("root_cam", (3,))))
  image_id = image_id.astype(np.int64)
  position = {int(k): i for i, k in enumerate(image_id)}
  index = np.array([position.get(int(k), -1) for k in records.image_id], np.int64)
  if (index < 0).any():
    missing = int(np.flatnonzero(index < 0)[0])
    raise DataError(f"{path}: no entry for image_id {records.image_id[missing]} ({records.img_path[missing]}); "
                    f"{int((index < 0).sum())} of {len(records)} test images lack a box and root")
  return dataclasses.replace(records, bbox=bbox[index].astype(np.float32), root_cam=root[index].astype(np.float32))
