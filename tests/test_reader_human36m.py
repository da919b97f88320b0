"""Human3.6M reader (SPEC §4.2) on both annotation releases, written in their real formats; the real frames and
cameras of `realdata` check the camera convention (world → R·X + t) against an independent conversion."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ahup_jax import skeleton
from configs import common as config_common
from data_pipelines import readers
from data_pipelines.readers import common, human36m
from data_pipelines.records import DataError

REAL_CAMERAS = {"54138969": 1, "55011271": 2, "58860488": 3, "60457274": 4}  # camera id → cam_idx


def _config(root, **overrides):
  config = config_common.data()
  config.root = str(root)
  config.update(overrides)
  return config


def _file_name(frame: dict) -> str:
  seq = "s_{subject:02d}_act_{action:02d}_subact_{subaction:02d}_ca_{cam:02d}".format(**frame)
  return f"{seq}/{seq}_{frame['frame_idx'] + 1:06d}.jpg"


def _write(root, subject: int, frames: list[dict], cameras: dict, release: str) -> None:
  """One subject's annotation file(s). frames: dicts of subject, action, subaction, cam, frame_idx, world (17×3
  mm), bbox, width, height; cameras: {cam_idx: {R, t (mm), f, c}}."""
  folder = os.path.join(root, "Human36M", "annotations")
  os.makedirs(folder, exist_ok=True)
  images, annotations, joints = [], [], {}
  for k, frame in enumerate(frames):
    image = {"id": frame.get("id", 100 * subject + k), "file_name": _file_name(frame), "width": frame["width"],
             "height": frame["height"], "subject": subject, "action_idx": frame["action"],
             "subaction_idx": frame["subaction"], "cam_idx": frame["cam"], "frame_idx": frame["frame_idx"]}
    annotation = {"id": image["id"], "image_id": image["id"], "bbox": frame["bbox"], "iscrowd": 0}
    cam = cameras[frame["cam"]]
    if release == "older":
      image["cam_param"] = cam
      world = np.asarray(frame["world"])
      annotation["keypoints_cam"] = (world @ np.asarray(cam["R"]).T + np.asarray(cam["t"])).tolist()
    else:
      joints.setdefault(str(frame["action"]), {}).setdefault(str(frame["subaction"]), {})[
          str(frame["frame_idx"])] = np.asarray(frame["world"]).tolist()
    images.append(image)
    annotations.append(annotation)
  content = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
  base = os.path.join(folder, f"Human36M_subject{subject}")
  if release == "older":
    files = {f"{base}.json": content}
  else:
    files = {f"{base}_data.json": content, f"{base}_joint_3d.json": joints,
             f"{base}_camera.json": {str(k): v for k, v in cameras.items()}}
  for path, value in files.items():
    with open(path, "w") as f:
      json.dump(value, f)


def _real_frames(realdata):
  """The 4 real frames (S1, S5, S7, S8) with world joints (mm), their real cameras (karfly JSON) and mmpose's
  independent camera-frame joints (mm) and official 2D labels (px)."""
  coco = json.load(open(realdata / "mmpose/h36m/h36m_coco.json"))
  body = np.load(realdata / "mmpose/h36m/test_h36m_body3d.npz")
  karfly = json.load(open(realdata / "karfly_h36m_camera_parameters/camera-parameters.json"))
  frames, cameras = [], {}
  for image, annotation, name in zip(coco["images"], coco["annotations"], body["imgname"]):
    assert os.path.basename(str(name)) == image["file_name"]
    subject_action, camera_frame = image["file_name"][:-len(".jpg")].split(".")
    subject, action = subject_action.split("_")[:2]
    camera_id, number = camera_frame.split("_")
    subject = int(subject[1:])
    cameras[subject] = {}
    for cid, cam_idx in REAL_CAMERAS.items():
      k = np.array(karfly["intrinsics"][cid]["calibration_matrix"])
      extrinsic = karfly["extrinsics"][f"S{subject}"][cid]
      cameras[subject][cam_idx] = {"R": extrinsic["R"], "t": np.ravel(extrinsic["t"]).tolist(),
                                   "f": [k[0, 0], k[1, 1]], "c": [k[0, 2], k[1, 2]]}
    frames.append({"subject": subject, "action": skeleton.H36M_ACTIONS.index(action) + 2,
                   "subaction": 2 if subject_action.endswith("_1") else 1, "cam": REAL_CAMERAS[camera_id],
                   "frame_idx": int(number) - 1, "width": image["width"], "height": image["height"],
                   "bbox": annotation["bbox"], "id": annotation["image_id"],
                   "world": np.asarray(annotation["keypoints_3d"]).reshape(17, 4)[:, :3] * 1000.0})
  return frames, cameras, body["S"][..., :3] * 1000.0, body["part"][..., :2]


def _write_real(realdata, root, release: str):
  frames, cameras, joint_cam, part = _real_frames(realdata)
  for subject in (1, 5, 6, 7, 8):  # protocol 2 training subjects; S6 has no real frame here
    _write(root, subject, [f for f in frames if f["subject"] == subject], cameras.get(subject, cameras[1]), release)
  return frames, joint_cam, part


@pytest.mark.parametrize("release", ["current", "older"])
def test_real_frames_give_the_real_camera_frame_and_labels(realdata, tmp_path, release):
  frames, joint_cam, part = _write_real(realdata, tmp_path, release)
  records = readers.load("Human36M", _config(tmp_path), "train")  # frames 0, 2060, 395, 25: all % 5 == 0
  assert len(records) == 4 and records.info.have_depth and not records.info.is_synthetic
  np.testing.assert_allclose(records.joint_cam, joint_cam, atol=0.02)  # mmpose's R^T(X − T) in metres
  np.testing.assert_allclose(records.root_cam, joint_cam[:, 0], atol=0.02)
  pinhole = joint_cam[..., :2] / joint_cam[..., 2:] * records.f[:, None] + records.c[:, None]
  np.testing.assert_allclose(records.joint_img[..., :2], pinhole, atol=1e-3)
  assert np.abs(records.joint_img[..., :2] - part).max() < 2.5  # official 2D includes lens distortion
  np.testing.assert_allclose(records.joint_img[..., 2], joint_cam[..., 2] - joint_cam[:, :1, 2], atol=0.02)
  np.testing.assert_array_equal(records.joint_vis, 1)
  np.testing.assert_array_equal(records.group, [0, 8, 3, 13])  # Directions, SittingDown, Greeting, WalkDog
  assert records.info.group_names[13] == "WalkDog"
  box = np.array(frames[0]["bbox"])  # square already: ×1.25 about the centre
  np.testing.assert_allclose(records.bbox[0], [*(box[:2] - 0.125 * box[2:]), *(1.25 * box[2:])], rtol=1e-6)
  np.testing.assert_array_equal(records.image_id, [f["id"] for f in frames])
  assert records.img_path[1] == os.path.join(
      tmp_path, "Human36M", "images", "s_05_act_10_subact_01_ca_01", "s_05_act_10_subact_01_ca_01_002061.jpg")


def test_both_releases_give_identical_records(realdata, tmp_path):
  _write_real(realdata, tmp_path / "current", "current")
  _write_real(realdata, tmp_path / "older", "older")
  current = readers.load("Human36M", _config(tmp_path / "current"), "train")
  older = readers.load("Human36M", _config(tmp_path / "older"), "train")
  for field in ("bbox", "joint_img", "joint_vis", "joint_cam", "root_cam", "f", "c", "group", "image_id"):
    np.testing.assert_allclose(getattr(current, field), getattr(older, field), atol=1e-3, err_msg=field)


def _toy_camera():
  return {1: {"R": np.eye(3).tolist(), "t": [0.0, 0.0, 5000.0], "f": [1000.0, 1000.0], "c": [500.0, 500.0]}}


def _toy_subject(root, subject, frame_indices, release="current"):
  world = np.random.default_rng(subject).uniform(-500, 500, (17, 3))
  frames = [{"subject": subject, "action": 2 + k % 15, "subaction": 1, "cam": 1, "frame_idx": f, "width": 1000,
             "height": 1000, "bbox": [400, 300, 200, 400], "world": world + k} for k, f in enumerate(frame_indices)]
  _write(root, subject, frames, _toy_camera(), release)


@pytest.mark.parametrize("protocol,split,count", [(2, "train", 5 * 4), (2, "test", 2 * 4), (2, "testInLoop", 2 * 3),
                                                  (1, "train", 6 * 4), (1, "test", 4), (1, "testInLoop", 3)])
def test_protocol_subjects_and_subsampling(tmp_path, protocol, split, count):
  for subject in (1, 5, 6, 7, 8, 9, 11):  # S9 in the older release: releases mix per subject
    _toy_subject(tmp_path, subject, [0, 5, 7, 64, 640, 1280], "older" if subject == 9 else "current")
  records = readers.load("Human36M", _config(tmp_path, h36m_protocol=protocol), split)
  assert len(records) == count
  every = human36m.SAMPLING[split]
  frame = np.array([int(p[-10:-4]) - 1 for p in records.img_path])
  assert (frame % every == 0).all()
  subjects = {int(os.path.basename(p)[2:4]) for p in records.img_path}
  assert subjects == set(human36m.SUBJECTS[protocol]["train" if split == "train" else "test"])
  np.testing.assert_allclose(records.bbox[0], [250, 250, 500, 500])  # 200×400 at (500, 500) → 400² → ×1.25


def test_detected_boxes_and_roots_replace_the_gt_ones_at_test(tmp_path):
  for subject in (9, 11):
    _toy_subject(tmp_path, subject, [0, 64])
  gt = readers.load("Human36M", _config(tmp_path), "test")
  entries = [{"image_id": int(i), "bbox": [float(i), 0, 10, 10], "root_cam": [1.0, 2.0, float(i)]}
             for i in gt.image_id]
  os.makedirs(tmp_path / "Human36M" / "bbox_root")
  with open(tmp_path / "Human36M" / human36m.BBOX_ROOT_FILE, "w") as f:
    json.dump(entries[::-1], f)
  detected = readers.load("Human36M", _config(tmp_path, use_gt_info=False), "test")
  np.testing.assert_array_equal(detected.bbox[:, 0], gt.image_id)
  np.testing.assert_array_equal(detected.root_cam[:, 2], gt.image_id)
  np.testing.assert_array_equal(detected.joint_img, gt.joint_img)
  with open(tmp_path / "Human36M" / human36m.BBOX_ROOT_FILE, "w") as f:
    json.dump(entries[1:], f)
  with pytest.raises(DataError, match=f"bbox_root_human36m_output.json: no entry for image_id {gt.image_id[0]}"):
    readers.load("Human36M", _config(tmp_path, use_gt_info=False), "test")


def test_action_index_reads_the_file_name_only():
  assert human36m.action_index("react_07/s_01_act_03_subact_01_ca_01_000001.jpg") == 1
  assert human36m.action_index("s_11_act_16_subact_02_ca_04/s_11_act_16_subact_02_ca_04_000321.jpg") == 14


def test_missing_folder_says_how_to_point_at_the_data(tmp_path):
  with pytest.raises(DataError) as error:
    readers.load("Human36M", _config(tmp_path), "train")
  message = str(error.value)
  assert os.path.join(str(tmp_path), "Human36M") in message
  assert "--config.data.root" in message and "--config=configs/saa.py:synth" in message


def test_malformed_annotations_name_the_file_record_and_field(tmp_path):
  for subject in (9, 11):
    _toy_subject(tmp_path, subject, [0, 64])
  path = tmp_path / "Human36M" / "annotations" / "Human36M_subject11_data.json"
  content = json.load(open(path))
  content["annotations"][1]["bbox"] = [1, 2, 3]
  json.dump(content, open(path, "w"))
  with pytest.raises(DataError, match=r"subject11_data\.json: annotation 1101 \(image id 1101\) field 'bbox' has "
                                      r"shape \(3,\), expected 4 numbers"):
    readers.load("Human36M", _config(tmp_path), "test")
  _toy_subject(tmp_path, 11, [0, 64])
  joints_path = tmp_path / "Human36M" / "annotations" / "Human36M_subject11_joint_3d.json"
  joints = json.load(open(joints_path))
  del joints["3"]["1"]["64"]
  json.dump(joints, open(joints_path, "w"))
  with pytest.raises(DataError, match=r"subject11_joint_3d\.json: no joints for action 3, subaction 1, frame 64"):
    readers.load("Human36M", _config(tmp_path), "test")
  os.remove(joints_path)
  with pytest.raises(DataError, match="annotation file not found: .*subject11_joint_3d.json"):
    readers.load("Human36M", _config(tmp_path), "test")
  for name in os.listdir(tmp_path / "Human36M" / "annotations"):
    if "subject11" in name:
      os.remove(tmp_path / "Human36M" / "annotations" / name)
  with pytest.raises(DataError, match="no annotations for subject S11"):
    readers.load("Human36M", _config(tmp_path), "test")
  with pytest.raises(ValueError, match="h36m_protocol"):
    readers.load("Human36M", _config(tmp_path, h36m_protocol=3), "test")


def test_column_reports_type_and_finiteness(tmp_path):
  describe = lambda i: f"record {i}"  # noqa: E731
  with pytest.raises(DataError, match="f.npy: record 1 field 'F' is not numeric"):
    common.column([{"F": [1, 2]}, {"F": "wide"}], "F", (2,), "f.npy", describe)
  with pytest.raises(DataError, match="record 0 field 'F' has non-finite values"):
    common.column([{"F": [1, None]}], "F", (2,), "f.npy", describe)
  with pytest.raises(DataError, match="record 1 lacks field 'F'"):
    common.column([{"F": [1, 2]}, {}], "F", (2,), "f.npy", describe)
  assert common.column([], "F", (2,), "f.npy", describe).shape == (0, 2)
