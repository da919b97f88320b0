"""SURREAL (synthetic, 3D): pooled `surreal_annotations_raw.npy` of frames from cmu/train clips (SPEC §4.8)."""
from __future__ import annotations

import os

import numpy as np

from ahup_jax import skeleton
from data_pipelines import bbox as bbox_lib
from data_pipelines import joints as joints_lib
from data_pipelines.readers import field, load_npy_records
from data_pipelines.records import DatasetInfo, Records

_, _DEFINED = joints_lib.reference_index(joints_lib.SURREAL)
INFO = DatasetInfo("SURREAL", is_synthetic=True, have_depth=True, joint_defined=_DEFINED)
WIDTH, HEIGHT = 320, 240
FOCAL, CENTRE = (600.0, 600.0), (160.0, 120.0)
_NAME = {n: i for i, n in enumerate(joints_lib.SURREAL)}


def camera_joints(joints3d_m: np.ndarray, cam_dist: np.ndarray) -> np.ndarray:
  """The official approximate camera frame: [N, 3, 24] world metres → [N, 24, 3] mm, left/right swapped."""
  xyz = np.transpose(joints3d_m, (0, 2, 1))[..., ::-1] * 1000.0
  xyz = xyz * np.array([1.0, -1.0, 1.0])
  xyz[..., 2] += cam_dist[:, None] * 1000.0
  swapped = xyz.copy()
  for r, l in joints_lib.SURREAL_LR_PAIRS:
    swapped[:, [r, l]] = xyz[:, [l, r]]
  return swapped


def with_head(joints: np.ndarray) -> np.ndarray:
  """Append Head = Neck + 2·(Neck − Thorax): [N, 24, D] → [N, 25, D]."""
  neck, thorax = joints[:, _NAME["Neck"]], joints[:, _NAME["Thorax"]]
  return np.concatenate([joints, (neck + 2 * (neck - thorax))[:, None]], 1)


def read(root: str, data_cfg, split: str) -> Records:
  path = os.path.join(root, "surreal_annotations_raw.npy")
  raw = sorted(load_npy_records(path), key=lambda r: str(r.get("image", "")))  # deterministic (SPEC §9 #18)
  n_all = len(raw)
  first_test = n_all - int(0.05 * n_all)
  if split == "train":
    index = [i for i in range(first_test) if i % (3 * int(data_cfg.rt_SYN)) == 0]
  else:
    index = [i for i in range(first_test, n_all) if split == "test" or i % 10 == 0]
  sel = [raw[i] for i in index]
  what = lambda i: f"record {index[i]} ({sel[i].get('image')})"  # noqa: E731
  j2d = np.stack([field(r, "joints2D", path, (2, 24), what(i)).T for i, r in enumerate(sel)])
  j3d = np.stack([field(r, "joints3D", path, (3, 24), what(i)) for i, r in enumerate(sel)])
  cam_dist = np.array([float(np.ravel(field(r, "camDist", path, None, what(i)))[0]) for i, r in enumerate(sel)])
  joint_cam = with_head(camera_joints(j3d, cam_dist))
  xy = with_head(j2d)
  depth = joint_cam[..., 2:] - joint_cam[:, _NAME["Pelvis"], None, 2:]
  boxes, _ = bbox_lib.sanitize(bbox_lib.tight_from_joints(xy), WIDTH, HEIGHT)
  n = len(sel)
  joint_cam_ref = joints_lib.to_reference(joint_cam, joints_lib.SURREAL).astype(np.float32)
  return Records(INFO, np.array([os.path.join(root, r["image"]) for r in sel], object),
                 bbox_lib.square(boxes, 1.0),
                 joints_lib.to_reference(np.concatenate([xy, depth], -1), joints_lib.SURREAL).astype(np.float32),
                 np.ones((n, 17), np.float32), joint_cam_ref, joint_cam_ref[:, skeleton.ROOT].copy(),
                 np.tile(np.float32(FOCAL), (n, 1)), np.tile(np.float32(CENTRE), (n, 1)), -np.ones(n, np.int32),
                 np.array(index, np.int64))
