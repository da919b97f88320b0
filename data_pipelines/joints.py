"""Per-dataset joint tables (AHuP naming) and the name-based mapping onto the 17-joint reference (SPEC §4.9)."""
from __future__ import annotations

import numpy as np

from ahup_jax import skeleton

H36M = skeleton.JOINT_NAMES  # the reference order is Human3.6M's own (with AHuP's Thorax/Neck renaming)

MUCO = ("Head", "Thorax", "R_Shoulder", "R_Elbow", "R_Wrist", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Hip",
        "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Pelvis", "Torso", "Neck", "R_Hand", "L_Hand",
        "R_Toe", "L_Toe")
MUPOTS = MUCO[:17]

# COCO's 17 keypoints + Thorax (mid shoulders) + Pelvis (mid hips).
MSCOCO = ("Nose", "L_Eye", "R_Eye", "L_Ear", "R_Ear", "L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow", "L_Wrist",
          "R_Wrist", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle", "R_Ankle", "Thorax", "Pelvis")

# MPII's 16 + Torso (mid Thorax–Pelvis).
MPII = ("R_Ankle", "R_Knee", "R_Hip", "L_Hip", "L_Knee", "L_Ankle", "Pelvis", "Thorax", "Neck", "Head", "R_Wrist",
        "R_Elbow", "R_Shoulder", "L_Shoulder", "L_Elbow", "L_Wrist", "Torso")

# ScanAva+ labels 14 LSP-like joints; Pelvis, Torso, Neck are derived.
SCANAVA_LABELLED = ("R_Ankle", "R_Knee", "R_Hip", "L_Hip", "L_Knee", "L_Ankle", "R_Wrist", "R_Elbow", "R_Shoulder",
                    "L_Shoulder", "L_Elbow", "L_Wrist", "Thorax", "Head")
SCANAVA = SCANAVA_LABELLED + ("Pelvis", "Torso", "Neck")

# SURREAL: the 24 SMPL joints in the 2D annotation's order (AHuP naming) + the extrapolated Head.
SURREAL = ("Pelvis", "R_Hip", "L_Hip", "Spine1", "R_Knee", "L_Knee", "Spine2", "R_Ankle", "L_Ankle", "Torso",
           "R_Foot", "L_Foot", "Thorax", "R_Collar", "L_Collar", "Neck", "R_Shoulder", "L_Shoulder", "R_Elbow",
           "L_Elbow", "R_Wrist", "L_Wrist", "R_Hand", "L_Hand", "Head")
SURREAL_LR_PAIRS = tuple((SURREAL.index(f"R_{p}"), SURREAL.index(f"L_{p}"))
                         for p in ("Hip", "Knee", "Ankle", "Foot", "Collar", "Shoulder", "Elbow", "Wrist", "Hand"))


def reference_index(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
  """(source index [17] int, defined [17] bool): reference joint r is `names[index[r]]` where defined."""
  lookup = {n: i for i, n in enumerate(names)}
  index = np.array([lookup.get(n, 0) for n in skeleton.JOINT_NAMES], np.int64)
  defined = np.array([n in lookup for n in skeleton.JOINT_NAMES])
  return index, defined


def to_reference(values: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
  """[N, J_ds, ...] in dataset order → [N, 17, ...] in reference order; undefined joints are zero."""
  index, defined = reference_index(names)
  out = values[:, index]
  out[:, ~defined] = 0
  return out
