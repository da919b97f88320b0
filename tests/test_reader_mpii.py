"""MPII reader (SPEC §4.6) on the 5 real MPII annotations of `realdata` (mmpose/mpii), written as 3DMPPE's
COCO-style `annotations/train.json`."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from configs import common as config_common
from data_pipelines import readers

# reference joint ← MPII index (realdata README): Pelvis 6, R_Hip 2, R_Knee 1, R_Ankle 0, L_Hip 3, L_Knee 4,
# L_Ankle 5, Torso = mid(6, 7), Thorax 7, Neck 8, Head 9, L_Shoulder 13, L_Elbow 14, L_Wrist 15, R_Shoulder 12,
# R_Elbow 11, R_Wrist 10
MPII_OF_REFERENCE = (6, 2, 1, 0, 3, 4, 5, None, 7, 8, 9, 13, 14, 15, 12, 11, 10)


def _config(root, **overrides):
  config = config_common.data()
  config.root = str(root)
  config.update(overrides)
  return config


def _write(realdata, root, unlabel_pelvis_of_first=False):
  """The real annotations as 3DMPPE's conversion: keypoints (x, y, v), box = the person's scale·200 square."""
  people = json.load(open(realdata / "mmpose" / "mpii" / "test_mpii.json"))
  images, annotations = [], []
  for k, person in enumerate(people):
    width, height = Image.open(realdata / "mmpose" / "mpii" / person["image"]).size
    joints = np.concatenate([np.asarray(person["joints"]), np.asarray(person["joints_vis"])[:, None]], -1)
    if unlabel_pelvis_of_first and k == 0:
      joints[6] = 0
    side = person["scale"] * 200
    box = [person["center"][0] - side / 2, person["center"][1] - side / 2, side, side]
    images.append({"id": k + 1, "file_name": f"images/{person['image']}", "width": width, "height": height})
    annotations.append({"id": k + 1, "image_id": k + 1, "iscrowd": 0, "num_keypoints": int(joints[:, 2].sum()),
                        "keypoints": joints.reshape(-1).tolist(), "bbox": box, "area": side * side})
  os.makedirs(root / "MPII" / "annotations")
  with open(root / "MPII" / "annotations" / "train.json", "w") as f:
    json.dump({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}, f)
  return people, images


def test_real_mpii_annotations(realdata, tmp_path):
  people, images = _write(realdata, tmp_path)
  records = readers.load("MPII", _config(tmp_path), "train")  # images are not opened: none are copied
  assert len(records) == 5 and records.info.joint_defined.all() and not records.info.have_depth
  joints = np.stack([np.asarray(p["joints"]) for p in people])
  vis = np.stack([np.asarray(p["joints_vis"]) for p in people])
  assert not vis.all()  # real unlabelled joints (ankles): vis 0, and the Torso's still 1 (faithful)
  for ref, mpii in enumerate(MPII_OF_REFERENCE):
    expected = (joints[:, 6] + joints[:, 7]) / 2 if mpii is None else joints[:, mpii]
    np.testing.assert_allclose(records.joint_img[:, ref, :2], expected, rtol=1e-6)
    np.testing.assert_array_equal(records.joint_vis[:, ref], 1 if mpii is None else vis[:, mpii])
  # every box is clipped to the image (sanitise) and then squared ×1.25 about the clipped box's centre
  person, (width, height) = people[0], (images[0]["width"], images[0]["height"])
  side = person["scale"] * 200
  x1, y1 = max(0, person["center"][0] - side / 2), max(0, person["center"][1] - side / 2)
  x2, y2 = min(width - 1, x1 + side - 1), min(height - 1, y1 + side - 1)
  grown = max(x2 - x1, y2 - y1) * 1.25
  np.testing.assert_allclose(records.bbox[0], [(x1 + x2) / 2 - grown / 2, (y1 + y2) / 2 - grown / 2, grown, grown],
                             rtol=1e-6)
  assert records.img_path[0] == os.path.join(tmp_path, "MPII", "images", people[0]["image"])


@pytest.mark.parametrize("mode,torso_vis", [("faithful", 1.0), ("product", 0.0)])
def test_torso_visibility_modes(realdata, tmp_path, mode, torso_vis):
  _write(realdata, tmp_path, unlabel_pelvis_of_first=True)
  records = readers.load("MPII", _config(tmp_path, mpii_torso_vis=mode), "train")
  assert records.joint_vis[0, 0] == 0 and records.joint_vis[0, 7] == torso_vis
  np.testing.assert_array_equal(records.joint_vis[1:, 7], 1)


def test_jo2d_off_and_splits(realdata, tmp_path):
  _write(realdata, tmp_path)
  assert not readers.load("MPII", _config(tmp_path, jo2d=False), "train").joint_vis.any()
  with pytest.raises(ValueError, match="MPII has no 'testInLoop' split"):
    readers.load("MPII", _config(tmp_path), "testInLoop")
