"""MuCo-3DHP reader (SPEC §4.3): the person-selection rule against the official loop, and a `MuCo-3DHP.json`
built from two real MPI-INF-3DHP training frames of `realdata` (MuCo composites 3DHP people)."""
from __future__ import annotations

import json
import math
import os
import pickle

import numpy as np
import pytest

from configs import common as config_common
from data_pipelines import readers
from data_pipelines.readers import muco

MUCO_OF_REFERENCE = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)


def _config(root, **overrides):
  config = config_common.data()
  config.root = str(root)
  config.update(overrides)
  return config


def _official_selection(roots):
  """The official per-image loop: the closest person, then everyone ≥ 500 mm (XY and 3D) from all others."""
  depths = [r[2] for r in roots]
  closest = depths.index(min(depths))
  picked = [closest]
  for i in range(len(roots)):
    if i == closest:
      continue
    far = True
    for j in range(len(roots)):
      if i != j:
        d = (np.asarray(roots[i]) - np.asarray(roots[j])) ** 2
        if math.sqrt(d[:2].sum()) < 500 or math.sqrt(d.sum()) < 500:
          far = False
    if far:
      picked.append(i)
  return picked


def test_selection_matches_the_official_loop():
  rng = np.random.default_rng(0)
  image_index = rng.integers(0, 40, 150)
  roots = rng.uniform([-1500, -300, 2000], [1500, 300, 6000], (150, 3))
  roots[image_index == 3, 2] = 4000.0  # a tie: the first annotation counts as the closest
  expected = []
  for image in np.unique(image_index):
    members = np.flatnonzero(image_index == image)
    expected += [members[k] for k in _official_selection(list(roots[members]))]
  np.testing.assert_array_equal(muco.select_people(image_index, roots), expected)


def _person(joints_mm, f, c, shift=(0.0, 0.0, 0.0), part=None):
  """One annotation: 21 joints (the 17 + hands = wrists, toes = ankles), shifted in 3D and re-projected."""
  cam = np.concatenate([joints_mm, joints_mm[[4, 7, 10, 13]]]) + np.asarray(shift)
  uv = cam[:, :2] / cam[:, 2:] * f + c if part is None else np.concatenate([part, part[[4, 7, 10, 13]]])
  return {"keypoints_cam": cam.tolist(), "keypoints_img": uv.tolist(),
          "bbox": [*uv.min(0) - 10, *(uv.max(0) - uv.min(0) + 20)]}


def _write(realdata, root):
  folder = realdata / "mmpose" / "mpi_inf_3dhp"
  frames = np.load(folder / "test_3dhp_train.npz")
  cameras = pickle.load(open(folder / "cameras_train.pkl", "rb"))
  images, annotations = [], []
  for k, name in enumerate(frames["imgname"]):  # S4_Seq2_Cam0_001033.jpg, S8_Seq1_Cam8_002165.jpg
    cam = cameras[str(name).rsplit("_", 1)[0]]
    f, c = np.ravel(cam["f"]), np.ravel(cam["c"])
    images.append({"id": 7 + k, "file_name": f"unaugmented_set/{k + 1}/{name}", "width": 2048, "height": 2048,
                   "f": f.tolist(), "c": c.tolist()})
    real = _person(frames["S"][k, :, :3] * 1000, f, c, part=frames["part"][k, :, :2])
    if k == 0:  # a near neighbour 300 mm away in X (dropped), the real person, a far one (kept)
      people = [_person(frames["S"][k, :, :3] * 1000, f, c, shift=(300, 0, 100)), real,
                _person(frames["S"][k, :, :3] * 1000, f, c, shift=(1500, 0, 800))]
    else:
      people = [real]
    annotations += [dict(p, id=len(annotations) + i, image_id=7 + k) for i, p in enumerate(people)]
  images.append({"id": 99, "file_name": "augmented_set/empty.jpg", "width": 2048, "height": 2048, "f": [1, 1],
                 "c": [0, 0]})  # no annotation: no record
  os.makedirs(root / "MuCo")
  with open(root / "MuCo" / "MuCo-3DHP.json", "w") as f:
    json.dump({"images": images, "annotations": annotations}, f)
  return frames, images, annotations


def test_real_frames_with_composited_people(realdata, tmp_path):
  frames, images, annotations = _write(realdata, tmp_path)
  records = readers.load("MuCo", _config(tmp_path), "train")
  kept = [annotations[1], annotations[2], annotations[3]]  # image 7: the real (closest) one first, the far one
  np.testing.assert_array_equal(records.image_id, [7, 7, 8])
  cams = np.array([a["keypoints_cam"] for a in kept])
  np.testing.assert_allclose(records.joint_cam, cams[:, MUCO_OF_REFERENCE], atol=1e-3)
  np.testing.assert_allclose(records.joint_img[..., :2], np.array([a["keypoints_img"] for a in kept])[:,
                             MUCO_OF_REFERENCE], atol=1e-3)
  np.testing.assert_allclose(records.joint_img[..., 2], cams[:, MUCO_OF_REFERENCE, 2] - cams[:, 14:15, 2], atol=1e-3)
  np.testing.assert_allclose(records.root_cam, frames["S"][[0, 0, 1], 14, :3] * 1000 + [[0, 0, 0], [1500, 0, 800],
                                                                                          [0, 0, 0]], atol=1e-3)
  pinhole = records.joint_cam[..., :2] / records.joint_cam[..., 2:] * records.f[:, None] + records.c[:, None]
  np.testing.assert_allclose(pinhole[1], records.joint_img[1, :, :2], atol=1e-3)  # the composited person: exact
  box = kept[0]["bbox"]  # inside the image: ×1.25 about the (sanitised) box
  w, h = box[2] - 1, box[3] - 1
  side = 1.25 * max(w, h)
  np.testing.assert_allclose(records.bbox[0], [box[0] + w / 2 - side / 2, box[1] + h / 2 - side / 2, side, side],
                             rtol=1e-5)
  np.testing.assert_array_equal(records.joint_vis, 1)
  assert records.img_path[2] == os.path.join(tmp_path, "MuCo", "unaugmented_set", "2", "S8_Seq1_Cam8_002165.jpg")


@pytest.mark.parametrize("box", [[10.0, 10.0, 0.0, 50.0], [10.0, 10.0, 1.0, 50.0]])  # w·h = 0; x2 == x1 (strict)
def test_degenerate_boxes_are_dropped(realdata, tmp_path, box):
  _write(realdata, tmp_path)
  content = json.load(open(tmp_path / "MuCo" / "MuCo-3DHP.json"))
  content["annotations"][3]["bbox"] = box
  json.dump(content, open(tmp_path / "MuCo" / "MuCo-3DHP.json", "w"))
  np.testing.assert_array_equal(readers.load("MuCo", _config(tmp_path), "train").image_id, [7, 7])


def test_only_a_training_split(realdata, tmp_path):
  _write(realdata, tmp_path)
  with pytest.raises(ValueError, match="MuCo has no 'test' split"):
    readers.load("MuCo", _config(tmp_path), "test")
