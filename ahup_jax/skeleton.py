"""The 17-joint reference skeleton every output, loss and metric uses (SPEC §4.1, §6.3)."""
from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Torso", "Thorax",
    "Neck", "Head", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Shoulder", "R_Elbow", "R_Wrist",
)
NUM_JOINTS = len(JOINT_NAMES)
ROOT = 0  # Pelvis
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}

# (right, left) index pairs swapped by a horizontal flip.
FLIP_PAIRS: tuple[tuple[int, int], ...] = ((1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13))

# The 16 skeleton edges, in the order SPA's descriptor uses (SPEC §4.1, §7.2).
EDGES: tuple[tuple[int, int], ...] = (
    (0, 7), (7, 8), (8, 9), (9, 10), (8, 14), (14, 15), (15, 16), (8, 11), (11, 12), (12, 13),
    (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6),
)
L_SHOULDER, R_SHOULDER = 11, 14

# Evaluated joint subsets (`bone_type`, SPEC §6.3), as reference indices.
EVAL_JOINTS: dict[str, tuple[int, ...]] = {
    "h36m": tuple(range(NUM_JOINTS)),
    "scanava": tuple(JOINT_INDEX[n] for n in (
        "R_Ankle", "R_Knee", "R_Hip", "L_Hip", "L_Knee", "L_Ankle", "R_Wrist", "R_Elbow",
        "R_Shoulder", "L_Shoulder", "L_Elbow", "L_Wrist", "Thorax", "Head", "Pelvis")),
    "cmJoints": tuple(JOINT_INDEX[n] for n in (
        "R_Knee", "R_Hip", "L_Hip", "L_Knee", "R_Wrist", "R_Elbow", "R_Shoulder", "L_Shoulder",
        "L_Elbow", "L_Wrist", "Thorax", "Pelvis", "Torso")),
}

# Human3.6M actions, index = action number in the path minus 2 (SPEC §4.2).
H36M_ACTIONS: tuple[str, ...] = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Purchases", "Sitting",
    "SittingDown", "Smoking", "Photo", "Waiting", "Walking", "WalkDog", "WalkTogether",
)


def flip_permutation() -> np.ndarray:
  """[J] int: index permutation that swaps every left/right pair (an involution)."""
  perm = np.arange(NUM_JOINTS)
  for r, l in FLIP_PAIRS:
    perm[r], perm[l] = l, r
  return perm
