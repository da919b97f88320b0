"""The on-disk formats the readers expect (SPEC §4.2, §4.5–4.7), written byte-for-byte reproducibly.

JPEGs with fixed encoder settings, JSON with sorted keys and no timestamps, the ScanAva+ pooled `.npy` as a
pickled object array of dicts (plain Python / float64 values, so equal content gives equal bytes).
"""
from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

SCANAVA_DIR = "ScanAva_1119"
# The pooled ScanAva+ file stores absolute paths of the machine it was built on; readers re-root the part after
# `ScanAva_1119/` (SPEC §4.7), which this foreign prefix exercises.
SCANAVA_ORIGIN = "/scratch/ScanAva_prep"


def save_jpeg(path: str, image: np.ndarray, quality: int) -> None:
  """[H, W, 3] uint8 → baseline JPEG, 4:2:0, no metadata."""
  Image.fromarray(image, "RGB").save(path, format="JPEG", quality=int(quality), subsampling=2, optimize=False)


def write_json(path: str, content) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(content, f, sort_keys=True, separators=(",", ":"))


def scanava_image_path(scan: str, k: int) -> str:
  """Path of the k-th (1-based) image of `scan`, relative to the dataset root folder's parent."""
  return f"{SCANAVA_DIR}/{scan}/images/image_{k:06d}.jpg"


def scanava_record(rel_path: str, joint_img: np.ndarray, joint_cam_m: np.ndarray, bbox: np.ndarray,
                   f: np.ndarray, c: np.ndarray, image_shape: tuple[int, int]) -> dict:
  """One pooled ScanAva+ record. joint_img [14, 3] (x px, y px, flag); joint_cam_m [14, 3] metres in the renderer
  frame (x right, y up, z backward); stored transposed (3×14) as in the original .mat sources. `img_shape`
  (height, width) is an addition: the original images are all 512², ours are smaller."""
  return {
      "img_shape": [int(image_shape[0]), int(image_shape[1])],
      "img_path": f"{SCANAVA_ORIGIN}/{rel_path}", "img_id": None,
      "bbox": np.asarray(bbox, np.float64), "joint_img": np.asarray(joint_img, np.float64).T.copy(),
      "joint_cam": np.asarray(joint_cam_m, np.float64).T.copy(), "joint_vis": np.ones((14, 1)),
      "root_cam": np.asarray(joint_cam_m, np.float64)[2:4].mean(0),
      "F": np.asarray(f, np.float64), "C": np.asarray(c, np.float64),
  }


def write_scanava(out_dir: str, records: list[dict]) -> None:
  path = os.path.join(out_dir, SCANAVA_DIR, "scanava_raw.npy")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  pooled = np.empty(len(records), dtype=object)
  pooled[:] = records
  np.save(path, pooled, allow_pickle=True)


def h36m_sequence(subject: int, action: int, subaction: int, camera: int) -> str:
  return f"s_{subject:02d}_act_{action:02d}_subact_{subaction:02d}_ca_{camera:02d}"


def h36m_file_name(subject: int, action: int, subaction: int, camera: int, frame: int) -> str:
  """Relative to Human36M/images/. As in the 3DMPPE release, file numbers start at 1 for frame_idx 0."""
  sequence = h36m_sequence(subject, action, subaction, camera)
  return f"{sequence}/{sequence}_{frame + 1:06d}.jpg"


def write_h36m_subject(out_dir: str, subject: int, images: list[dict], annotations: list[dict],
                       cameras: dict, joints: dict) -> None:
  """The three files of one subject (current 3DMPPE release): _data.json, _camera.json, _joint_3d.json."""
  base = os.path.join(out_dir, "Human36M", "annotations", f"Human36M_subject{subject}")
  write_json(f"{base}_data.json", {"images": images, "annotations": annotations,
                                   "categories": [{"id": 1, "name": "person"}]})
  write_json(f"{base}_camera.json", cameras)
  write_json(f"{base}_joint_3d.json", joints)


def write_coco_style(path: str, images: list[dict], annotations: list[dict], keypoint_names: tuple[str, ...],
                     skeleton: tuple[tuple[int, int], ...]) -> None:
  """COCO keypoint annotation file (also the 3DMPPE MPII conversion). skeleton: 1-based joint pairs."""
  write_json(path, {
      "images": images, "annotations": annotations,
      "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(keypoint_names),
                      "skeleton": [list(e) for e in skeleton]}],
  })
