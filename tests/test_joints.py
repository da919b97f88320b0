"""Joint tables and the mapping onto the 17-joint reference (SPEC §4.9), checked against index tables written
independently (SPEC §4.3–4.8 and the realdata README's COCO / MPII / MPI-INF-3DHP → H36M-17 tables)."""
from __future__ import annotations

import numpy as np
import pytest

from ahup_jax import skeleton
from data_pipelines import joints as joints_lib

# Reference joint r ← dataset index (None = missing; "mid" = derived), in the order of skeleton.JOINT_NAMES:
# Pelvis R_Hip R_Knee R_Ankle L_Hip L_Knee L_Ankle Torso Thorax Neck Head L_Sho L_Elb L_Wri R_Sho R_Elb R_Wri
SOURCE = {
    "MuPoTS": (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4),
    "MuCo": (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4),
    "MSCOCO": (18, 12, 14, 16, 11, 13, 15, None, 17, None, None, 5, 7, 9, 6, 8, 10),
    "MPII": (6, 2, 1, 0, 3, 4, 5, 16, 7, 8, 9, 13, 14, 15, 12, 11, 10),
    "ScanAva": (14, 2, 1, 0, 3, 4, 5, 15, 12, 16, 13, 9, 10, 11, 8, 7, 6),
    "SURREAL": (0, 1, 4, 7, 2, 5, 8, 9, 12, 15, 24, 17, 19, 21, 16, 18, 20),
    "Human36M": tuple(range(17)),
}
# Dataset-order flip pairs as SPEC §4.2–4.8 / the official dataset classes list them.
FLIP_PAIRS = {
    "Human36M": ((1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13)),
    "MuCo": ((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (17, 18), (19, 20)),
    "MuPoTS": ((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13)),
    "MSCOCO": ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    "MPII": ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    "ScanAva": ((2, 3), (1, 4), (0, 5), (8, 9), (7, 10), (6, 11)),
    "SURREAL": ((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21), (22, 23)),
}


@pytest.mark.parametrize("dataset", sorted(SOURCE))
def test_to_reference_matches_the_independent_tables(dataset):
  names = joints_lib.DATASET_JOINTS[dataset]
  values = np.random.default_rng(0).normal(size=(3, len(names), 3))
  expected = np.stack([values[:, s] if s is not None else np.zeros((3, 3)) for s in SOURCE[dataset]], 1)
  np.testing.assert_array_equal(joints_lib.to_reference(values, names), expected)
  index, defined = joints_lib.reference_index(names)
  np.testing.assert_array_equal(defined, [s is not None for s in SOURCE[dataset]])


@pytest.mark.parametrize("dataset", sorted(FLIP_PAIRS))
def test_flip_pairs_and_mapping_commute_with_the_reference_flip(dataset):
  names = joints_lib.DATASET_JOINTS[dataset]
  pairs = joints_lib.flip_pairs(names)
  assert {frozenset(p) for p in pairs} == {frozenset(p) for p in FLIP_PAIRS[dataset]}
  assert all(names[r].startswith("R_") and names[l].startswith("L_") for r, l in pairs)
  swap = np.arange(len(names))
  for r, l in pairs:
    swap[r], swap[l] = l, r
  values = np.random.default_rng(1).normal(size=(2, len(names), 3))
  np.testing.assert_array_equal(joints_lib.to_reference(values[:, swap], names),
                                joints_lib.to_reference(values, names)[:, skeleton.flip_permutation()])


def test_reference_flip_pairs_are_skeleton_flip_pairs():
  assert joints_lib.flip_pairs(joints_lib.H36M) == skeleton.FLIP_PAIRS


def test_mscoco_derived_joints_and_flags():
  kp = np.zeros((2, 17, 3))
  kp[:, 5], kp[:, 6] = [10, 20, 2], [30, 40, 1]     # L/R shoulder
  kp[:, 11], kp[:, 12] = [0, 100, 2], [20, 120, 0]  # L/R hip, right unlabelled
  out = joints_lib.add_mscoco_joints(kp)
  assert out.shape == (2, 19, 3)
  np.testing.assert_array_equal(out[0, 17], [20, 30, 2])   # Thorax: v = 2·1
  np.testing.assert_array_equal(out[0, 18], [10, 110, 0])  # Pelvis: v = 2·0


def test_mpii_torso_visibility_modes():
  kp = np.zeros((1, 16, 3))
  kp[0, 6], kp[0, 7] = [0, 100, 0], [10, 20, 1]  # Pelvis unlabelled, Thorax labelled
  np.testing.assert_array_equal(joints_lib.add_mpii_torso(kp, "faithful")[0, 16], [5, 60, 1])
  np.testing.assert_array_equal(joints_lib.add_mpii_torso(kp, "product")[0, 16], [5, 60, 0])
  with pytest.raises(ValueError, match="mpii_torso_vis"):
    joints_lib.add_mpii_torso(kp, "always")


def test_scanava_and_surreal_derived_joints():
  labelled = np.zeros((1, 14, 3))
  labelled[0, 2], labelled[0, 3] = [-100, 0, 10], [100, 0, 30]   # R/L hip
  labelled[0, 12], labelled[0, 13] = [0, -600, 0], [0, -900, 30]  # Thorax, Head
  out = joints_lib.add_scanava_joints(labelled)
  np.testing.assert_allclose(out[0, 14:], [[0, 0, 20], [0, -300, 10], [0, -700, 10]])  # Pelvis, Torso, Neck
  smpl = np.zeros((1, 24, 2))
  smpl[0, 12], smpl[0, 15] = [50, 40], [52, 30]  # Thorax (SMPL neck), Neck (SMPL head)
  np.testing.assert_allclose(joints_lib.add_surreal_head(smpl)[0, 24], [56, 10])
