"""Target descriptors from tailor measurements: a hand-written YAML/JSON of limb lengths in millimetres.

The descriptor (SPEC §7.2) is every skeleton edge's length divided by the shoulder width, so only ratios of the
measurements matter and their unit cancels. Conversion and its assumptions:

* Each of the 16 edges needs a length. Entries (mm): `shoulder_width` (L–R shoulder joint distance, required),
  `lower_spine` (pelvis–torso), `upper_spine` (torso–thorax), `neck` (thorax–neck joint), `head` (neck joint–head
  joint), `upper_arm`, `forearm`, `thigh`, `shin`, `hip_width` (L–R hip joint distance); optional `collar`
  (thorax–shoulder joint, default shoulder_width/2: the thorax sits midway between the shoulders) and side-specific
  `left_upper_arm`, `right_shin`, … overriding the symmetric value.
* The pelvis is taken as the midpoint of the hips, so each pelvis–hip edge is hip_width/2.
* The descriptor of network poses is measured in hm units, where x, y are crop pixels and z depth bins (31.25 mm).
  These are isotropic only when the crop spans the 2 m depth extent (e.g. a 1.25×-enlarged box of a ~1.6 m person);
  a tailor descriptor is the isotropic (metric) one, so for crops far from that size SPA pulls the skeleton toward
  slightly different proportions than the measurements say. Measure joint-centre to joint-centre distances, and use
  the same joint conventions as the target test set (e.g. Human3.6M's "Head" is near the head centre).
"""
from __future__ import annotations

import json
import os

import numpy as np
import yaml

SYMMETRIC = ("upper_arm", "forearm", "thigh", "shin", "collar")
REQUIRED = ("shoulder_width", "lower_spine", "upper_spine", "neck", "head", "upper_arm", "forearm", "thigh", "shin",
            "hip_width")
# The 16 reference edges (ahup_jax.skeleton.EDGES order) as measurement names.
EDGE_MEASUREMENTS = ("lower_spine", "upper_spine", "neck", "head", "right_collar", "right_upper_arm",
                     "right_forearm", "left_collar", "left_upper_arm", "left_forearm", "right_hip", "right_thigh",
                     "right_shin", "left_hip", "left_thigh", "left_shin")


def read_measurements(path: str) -> dict[str, float]:
  """Reads and validates a tailor file; errors name the file and the entry."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"tailor measurement file not found: {path}")
  with open(path) as f:
    data = yaml.safe_load(f) if path.endswith((".yaml", ".yml")) else json.load(f)
  if not isinstance(data, dict):
    raise ValueError(f"{path}: expected a mapping of measurement name → length in mm, got {type(data).__name__}")
  missing = [k for k in REQUIRED if k not in data]
  if missing:
    raise ValueError(f"{path}: missing measurement(s) {missing}; required: {list(REQUIRED)} (mm)")
  known = set(REQUIRED) | {"collar"} | {f"{s}_{n}" for s in ("left", "right") for n in SYMMETRIC}
  unknown = sorted(set(data) - known)
  if unknown:
    raise ValueError(f"{path}: unknown measurement(s) {unknown}; known: {sorted(known)}")
  out = {}
  for key, value in data.items():
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      raise ValueError(f"{path}: '{key}' must be a number (mm), got {value!r}")
    if not value > 0:
      raise ValueError(f"{path}: '{key}' must be a positive length in mm, got {value}")
    out[key] = float(value)
  return out


def edge_lengths(measurements: dict[str, float]) -> np.ndarray:
  """[16] edge lengths (mm) in `EDGE_MEASUREMENTS` order."""
  m = dict(measurements)
  m.setdefault("collar", m["shoulder_width"] / 2)
  for side in ("left", "right"):
    for name in SYMMETRIC:
      m.setdefault(f"{side}_{name}", m[name])
    m[f"{side}_hip"] = m["hip_width"] / 2
  return np.array([m[name] for name in EDGE_MEASUREMENTS], np.float32)


def tailor_descriptor(path: str) -> np.ndarray:
  """Target descriptor [16] from a tailor measurement file (see the module docstring)."""
  measurements = read_measurements(path)
  return edge_lengths(measurements) / np.float32(measurements["shoulder_width"])
