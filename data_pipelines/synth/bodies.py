"""Procedural bodies: subject proportions, forward kinematics to anatomical landmarks, dataset label conventions.

Body frame (metres): x = the person's left, y = up, z = forward (the way the person faces); right-handed.
`forward_kinematics` turns joint angles (poses.py) and dimensions into landmarks (anatomical points, the same
for every dataset) and three segment frames (pelvis, chest, head). `labels` then places each dataset's joints on
those landmarks under a `SkeletonConvention` — the skeleton-definition gap: the same body gets a different
"Head", "Ankle", hip and shoulder width depending on whose annotation convention is used.
"""
from __future__ import annotations

import numpy as np

from data_pipelines.synth.domains import Proportions, SkeletonConvention

DIMENSIONS = ("hip_half", "thigh", "shin", "spine_lower", "spine_upper", "neck", "head", "shoulder_half",
              "upper_arm", "forearm", "girth")

# Dataset joint lists (dataset order), as label keys understood by `labels`.
H36M_JOINTS = ("pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax", "face",
               "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist")
SCANAVA_JOINTS = ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow", "r_shoulder",
                  "l_shoulder", "l_elbow", "l_wrist", "thorax", "head")
COCO_JOINTS = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
               "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")
MPII_JOINTS = ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax", "upper_neck", "head",
               "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist")

PARTS = ("head", "neck", "chest", "belly", "hips", "upper_arm", "forearm", "hand", "thigh", "shin", "foot")

# Head geometry relative to the head frame, in units of the head half-height.
HEAD_CENTRE = np.array([0.0, 0.67, 0.16])      # from the upper neck
HEAD_RADII = np.array([0.72, 1.0, 0.9])
FOOT_HEEL = np.array([0.0, -0.05, -0.05])      # metres from the ankle centre, foot frame
FOOT_TOE = np.array([0.0, -0.06, 0.14])
FOOT_RADIUS = 0.03
HEEL_BACK = np.array([0.0, -0.035, -0.055])    # Human3.6M's "ankle": the back of the heel, foot frame (metres)
ACROMION = np.array([0.025, 0.035, 0.0])       # outer top of the shoulder from its joint centre, chest frame


def sample_dimensions(prior: Proportions, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
  """Per-subject body dimensions {name: [n] metres} (girth: a multiplier) drawn from `prior`."""
  stature = 1.0 + prior.stature_cv * rng.standard_normal(n)
  dims = {}
  for name in DIMENSIONS:
    value = getattr(prior, name) * (1.0 + prior.dim_cv * rng.standard_normal(n))
    dims[name] = value if name == "girth" else value * stature
  return dims


def _rotation(axis: int, degrees: np.ndarray) -> np.ndarray:
  """[n, 3, 3] right-handed rotations about body axis 0 (x), 1 (y) or 2 (z)."""
  a = np.deg2rad(np.asarray(degrees, np.float64))
  c, s = np.cos(a), np.sin(a)
  i, j = [(1, 2), (2, 0), (0, 1)][axis]
  r = np.zeros(a.shape + (3, 3))
  r[..., axis, axis] = 1.0
  r[..., i, i], r[..., i, j], r[..., j, i], r[..., j, j] = c, -s, s, c
  return r


def _apply(r: np.ndarray, v) -> np.ndarray:
  """[n, 3, 3] @ [3] or [n, 3] -> [n, 3]."""
  return np.einsum("nij,nj->ni", r, np.broadcast_to(v, r.shape[:-1]))


def forward_kinematics(pose: dict[str, np.ndarray], dims: dict[str, np.ndarray]):
  """Landmarks {name: [n, 3]} and frames {pelvis, chest, head: [n, 3, 3]} in the body frame (metres), standing
  on the floor y = 0, pelvis above the origin. pose: {angle: [n] degrees} (poses.ANGLES); dims: [n] each."""
  up, down = np.array([0.0, 1.0, 0.0]), np.array([0.0, -1.0, 0.0])
  rx, ry, rz = (lambda a, k=k: _rotation(k, a) for k in range(3))
  root = ry(pose["yaw"]) @ rx(pose["pitch"]) @ rz(pose["roll"])
  spine = root @ rx(0.4 * pose["spine_flex"]) @ rz(0.4 * pose["spine_side"]) @ ry(0.4 * pose["spine_twist"])
  chest = spine @ rx(0.6 * pose["spine_flex"]) @ rz(0.6 * pose["spine_side"]) @ ry(0.6 * pose["spine_twist"])
  head = chest @ rx(pose["neck_flex"]) @ rz(pose["neck_side"]) @ ry(pose["neck_turn"])
  n = root.shape[0]
  p = {"pelvis": np.zeros((n, 3))}
  p["spine"] = p["pelvis"] + dims["spine_lower"][:, None] * _apply(spine, up)
  p["thorax"] = p["spine"] + dims["spine_upper"][:, None] * _apply(chest, up)
  p["upper_neck"] = p["thorax"] + dims["neck"][:, None] * _apply(head, up)
  p["head_centre"] = p["upper_neck"] + dims["head"][:, None] * _apply(head, HEAD_CENTRE)
  for side, sign in (("l", 1.0), ("r", -1.0)):
    hip_flex, knee = pose[f"{side}_hip_flex"], pose[f"{side}_knee"]
    thigh = root @ rz(sign * pose[f"{side}_hip_abd"]) @ rx(-hip_flex) @ ry(sign * pose[f"{side}_hip_twist"])
    shin = thigh @ rx(knee)
    foot = shin @ rx(np.clip(hip_flex - knee, -35, 35))  # keeps the sole roughly level
    zeros = np.zeros(n)
    p[f"{side}_hip"] = _apply(root, np.stack([sign * dims["hip_half"], zeros, zeros], -1))
    p[f"{side}_knee"] = p[f"{side}_hip"] + dims["thigh"][:, None] * _apply(thigh, down)
    p[f"{side}_ankle"] = p[f"{side}_knee"] + dims["shin"][:, None] * _apply(shin, down)
    p[f"{side}_heel"] = p[f"{side}_ankle"] + _apply(foot, FOOT_HEEL)
    p[f"{side}_toe"] = p[f"{side}_ankle"] + _apply(foot, FOOT_TOE)
    p[f"{side}_heel_back"] = p[f"{side}_ankle"] + _apply(foot, HEEL_BACK)
    shoulder_offset = np.stack([sign * dims["shoulder_half"], -0.15 * dims["shoulder_half"], zeros], -1)
    p[f"{side}_shoulder"] = p["thorax"] + _apply(chest, shoulder_offset)
    p[f"{side}_acromion"] = p[f"{side}_shoulder"] + _apply(chest, ACROMION * [sign, 1.0, 1.0])
    upper = chest @ rz(sign * pose[f"{side}_sh_abd"]) @ rx(-pose[f"{side}_sh_flex"]) @ ry(
        sign * pose[f"{side}_sh_twist"])
    fore = upper @ rx(-pose[f"{side}_elbow"])
    p[f"{side}_elbow"] = p[f"{side}_shoulder"] + dims["upper_arm"][:, None] * _apply(upper, down)
    p[f"{side}_wrist"] = p[f"{side}_elbow"] + dims["forearm"][:, None] * _apply(fore, down)
    p[f"{side}_hand"] = p[f"{side}_wrist"] + 0.3 * dims["forearm"][:, None] * _apply(fore, down)
  floor = np.minimum.reduce([p[k][:, 1] for k in ("l_heel", "r_heel", "l_toe", "r_toe")]) - FOOT_RADIUS
  for key in p:
    p[key] = p[key] - np.stack([np.zeros(n), floor, np.zeros(n)], -1)
  return p, {"pelvis": root, "chest": chest, "head": head}


def labels(points: dict, frames: dict, dims: dict, convention: SkeletonConvention,
           keys: tuple[str, ...]) -> np.ndarray:
  """[n, len(keys), 3] labelled joints (same frame as `points`) under `convention`; keys as in *_JOINTS."""
  head, r_head = dims["head"][:, None], frames["head"]

  def on_head(offset):  # offset in head half-heights from the head centre, head frame
    return points["head_centre"] + head * _apply(r_head, np.asarray(offset))

  out = []
  for key in keys:
    side = key[:2] if key[:2] in ("l_", "r_") else ""
    part = key[len(side):]
    if part == "hip":
      value = points["pelvis"] + convention.hip_scale * (points[key] - points["pelvis"])
    elif part == "ankle":
      value = points[key] if convention.ankle == "centre" else points[f"{side}heel_back"]
    elif part == "shoulder":
      value = points[key] if convention.shoulder == "joint" else points[f"{side}acromion"]
    elif key == "head":
      value = on_head([0, 1.0, 0] if convention.head == "top" else [0, 0.62, 0])
    elif key == "face":  # Human3.6M's "Nose" (AHuP "Neck"): inside the lower face
      value = on_head([0, -0.43, 0.29])
    elif key == "nose":  # the tip of the nose (COCO)
      value = on_head([0, -0.15, HEAD_RADII[2] + 0.12])
    elif part == "eye":
      value = on_head([(0.3 if side == "l_" else -0.3), 0.12, 0.8])
    elif part == "ear":
      value = on_head([(HEAD_RADII[0] if side == "l_" else -HEAD_RADII[0]), 0.0, -0.05])
    else:
      value = points[key]
    out.append(value)
  return np.stack(out, 1)


def primitives(points: dict, frames: dict, dims: dict):
  """Render primitives of n bodies, in the frame of `points` and `frames`.

  Returns (capsules, ellipsoids): capsules = (a [n, C, 3], b [n, C, 3], radius [n, C], part [C]);
  ellipsoids = (centre [n, E, 3], axes [n, E, 3, 3] (columns), radii [n, E, 3], part [E]); parts index PARTS.
  """
  g = dims["girth"][:, None]
  segments = [("l_shoulder", "l_elbow", 0.045, "upper_arm"), ("r_shoulder", "r_elbow", 0.045, "upper_arm"),
              ("l_elbow", "l_wrist", 0.036, "forearm"), ("r_elbow", "r_wrist", 0.036, "forearm"),
              ("l_wrist", "l_hand", 0.034, "hand"), ("r_wrist", "r_hand", 0.034, "hand"),
              ("l_hip", "l_knee", 0.072, "thigh"), ("r_hip", "r_knee", 0.072, "thigh"),
              ("l_knee", "l_ankle", 0.05, "shin"), ("r_knee", "r_ankle", 0.05, "shin"),
              ("l_heel", "l_toe", FOOT_RADIUS / 1.1, "foot"), ("r_heel", "r_toe", FOOT_RADIUS / 1.1, "foot"),
              ("thorax", "upper_neck", 0.05, "neck")]
  cap_a = np.stack([points[a] for a, _, _, _ in segments], 1)
  cap_b = np.stack([points[b] for _, b, _, _ in segments], 1)
  cap_r = np.stack([np.full(len(g), r) for _, _, r, _ in segments], 1) * g
  cap_part = np.array([PARTS.index(p) for _, _, _, p in segments])

  head = dims["head"]
  chest_centre = points["spine"] + 0.55 * (points["thorax"] - points["spine"])
  belly_centre = points["pelvis"] + 0.55 * (points["spine"] - points["pelvis"])
  ell_c = np.stack([points["head_centre"], chest_centre, belly_centre, points["pelvis"]], 1)
  ell_axes = np.stack([frames["head"], frames["chest"], frames["pelvis"], frames["pelvis"]], 1)
  ones = np.ones_like(head)
  ell_r = np.stack([
      head[:, None] * HEAD_RADII,
      np.stack([dims["shoulder_half"] * 0.95, 0.62 * dims["spine_upper"], 0.105 * ones], -1) * g,
      np.stack([dims["hip_half"] + 0.05, 0.7 * dims["spine_lower"], 0.1 * ones], -1) * g,
      np.stack([dims["hip_half"] + 0.07, 0.11 * ones, 0.105 * ones], -1) * g,
  ], 1)
  ell_part = np.array([PARTS.index(p) for p in ("head", "chest", "belly", "hips")])
  return (cap_a, cap_b, cap_r, cap_part), (ell_c, ell_axes, ell_r, ell_part)


