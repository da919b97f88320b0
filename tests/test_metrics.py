"""Metrics (SPEC §6.3): Procrustes invariances, PCK/AUC on hand-built errors, a slow per-sample reference, and
the published / precomputed values of /work/shared/realdata/metric_fixtures."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ahup_jax import skeleton
from ahup_jax.evaluation import metrics


def _random_rotations(rng, n):
  q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
  q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
  q[np.linalg.det(q) < 0, :, 0] *= -1  # proper rotations only
  return q


def _poses(rng, n, j=17):
  return rng.normal(scale=300.0, size=(n, j, 3))


def test_pa_of_rotated_translated_copy_is_zero():
  rng = np.random.default_rng(0)
  gt = _poses(rng, 8)
  pred = np.einsum("nik,njk->nji", _random_rotations(rng, 8), gt) + rng.normal(scale=500.0, size=(8, 1, 3))
  for scale in (False, True):
    np.testing.assert_allclose(metrics.rigid_align(pred, gt, scale=scale), gt, atol=1e-8)


def test_scaled_copy_is_zero_only_with_similarity():
  rng = np.random.default_rng(1)
  gt = _poses(rng, 4)
  pred = 1.3 * np.einsum("nik,njk->nji", _random_rotations(rng, 4), gt)
  np.testing.assert_allclose(metrics.rigid_align(pred, gt, scale=True), gt, atol=1e-8)
  rigid_error = metrics.mpjpe(metrics.rigid_align(pred, gt), gt)
  assert rigid_error > 10.0


def _signed_volume(poses):
  """Orientation of the first four joints: det of three edge vectors, per sample."""
  edges = poses[:, 1:4] - poses[:, :1]
  return np.linalg.det(edges)


def test_reflection_is_not_used_to_fit():
  """pred = mirror image of gt: the best *rotation* cannot undo it, and the fit keeps pred's handedness."""
  rng = np.random.default_rng(2)
  gt = _poses(rng, 6)
  pred = gt * np.array([-1.0, 1.0, 1.0])
  aligned = metrics.rigid_align(pred, gt)
  assert np.all(np.sign(_signed_volume(aligned)) == np.sign(_signed_volume(pred)))
  assert np.all(np.sign(_signed_volume(aligned)) != np.sign(_signed_volume(gt)))
  assert metrics.mpjpe(aligned, gt) > 1.0
  # Distances between joints are preserved: a proper rigid motion of pred.
  np.testing.assert_allclose(np.linalg.norm(aligned[:, 3] - aligned[:, 7], axis=-1),
                             np.linalg.norm(pred[:, 3] - pred[:, 7], axis=-1), rtol=1e-10)


def test_pck_auc_hand_built():
  # strictly below τ: 150 itself fails PCK@150; 0 passes every τ ≥ 5 (30 of 31), 5 passes τ ≥ 10 (29),
  # 149.999 passes only τ = 150 (1): AUC = (30 + 29 + 1) / 5 / 31 = 12 / 31.
  pck, auc = metrics.pck_auc(np.array([0.0, 5.0, 149.999, 150.0, 151.0]))
  assert pck == pytest.approx(60.0)
  assert auc == pytest.approx(100.0 * 12 / 31)
  pck, auc = metrics.pck_auc(np.zeros((3, 17)))
  assert (pck, auc) == (pytest.approx(100.0), pytest.approx(100.0 * 30 / 31))
  pck, auc = metrics.pck_auc(np.full(4, 1e4))
  assert (pck, auc) == (0.0, 0.0)


def _slow_reference(pred, gt, joints, scale):
  """Per-sample loops over an obviously-correct Kabsch / Umeyama fit."""
  mpjpe, pa, dz, dz_pa, signed = [], [], [], [], []
  for p, g in zip(pred, gt):
    p, g = p - p[0], g - g[0]
    signed.append(np.mean([p[j] - g[j] for j in range(1, 17)], axis=0))
    p, g = p[joints], g[joints]
    a, b = p - p.mean(0), g - g.mean(0)
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    c = (s[0] + s[1] + d * s[2]) / (a ** 2).sum() if scale else 1.0
    aligned = np.array([c * rotation @ x for x in a]) + g.mean(0)
    for j in range(len(joints)):
      mpjpe.append(np.linalg.norm(p[j] - g[j]))
      pa.append(np.linalg.norm(aligned[j] - g[j]))
      dz.append(abs(p[j, 2] - g[j, 2]))
      dz_pa.append(abs(aligned[j, 2] - g[j, 2]))
  pa = np.array(pa)
  return {"mpjpe": np.mean(mpjpe), "pa_mpjpe": pa.mean(), "z_err": np.mean(dz), "z_err_pa": np.mean(dz_pa),
          "pck150": 100 * np.mean(pa < 150), "auc": 100 * np.mean([np.mean(pa < t) for t in range(0, 151, 5)]),
          "mean_signed_error": np.mean(signed, axis=0)}


@pytest.mark.parametrize("bone_type,scale", [("h36m", False), ("scanava", True), ("cmJoints", False)])
def test_evaluate_matches_slow_reference(bone_type, scale):
  rng = np.random.default_rng(3)
  gt = _poses(rng, 40) + np.array([0.0, 0.0, 4000.0])
  pred = gt + rng.normal(scale=80.0, size=gt.shape) + rng.normal(scale=200.0, size=(40, 1, 3))
  result = metrics.evaluate(pred, gt, bone_type=bone_type, pa_scale=scale, with_pa=True)
  expected = _slow_reference(pred, gt, list(skeleton.EVAL_JOINTS[bone_type]), scale)
  for key, value in expected.items():
    np.testing.assert_allclose(result[key], value, rtol=1e-9, atol=1e-9, err_msg=key)
  assert result["count"] == 40 and result["bone_type"] == bone_type


def test_groups_pool_samples_and_overall_is_not_a_mean_of_means():
  rng = np.random.default_rng(4)
  gt = _poses(rng, 10)
  pred = gt + rng.normal(scale=50.0, size=gt.shape)
  pred[7:] += 400.0 * rng.normal(size=(3, 17, 3))  # group 1 (3 samples) is much worse than group 0 (7)
  groups = np.array([0] * 7 + [1] * 3)
  result = metrics.evaluate(pred, gt, groups=groups, group_names=("a", "b", "empty"))
  for name, mask in (("a", groups == 0), ("b", groups == 1)):
    alone = metrics.evaluate(pred[mask], gt[mask])
    for key in ("mpjpe", "pa_mpjpe", "pck150", "auc", "z_err"):
      assert result["groups"][name][key] == pytest.approx(alone[key])
    assert result["groups"][name]["count"] == mask.sum()
  a, b = result["groups"]["a"], result["groups"]["b"]
  assert result["mpjpe"] == pytest.approx((7 * a["mpjpe"] + 3 * b["mpjpe"]) / 10)
  assert result["mpjpe"] != pytest.approx((a["mpjpe"] + b["mpjpe"]) / 2)
  assert result["groups"]["empty"]["count"] == 0 and np.isnan(result["groups"]["empty"]["mpjpe"])


def test_without_pa_reports_mpjpe_only():
  rng = np.random.default_rng(5)
  gt = _poses(rng, 3)
  result = metrics.evaluate(gt + 10.0 * rng.normal(size=gt.shape), gt, with_pa=False)
  assert "pa_mpjpe" not in result and "pck150" not in result and result["pa"] == "none"
  assert result["mpjpe"] > 0
  with pytest.raises(ValueError, match="bone_type"):
    metrics.evaluate(gt, gt, bone_type="coco")


def test_rescale_bones_takes_gt_lengths_and_keeps_directions():
  rng = np.random.default_rng(6)
  gt = metrics.root_align(_poses(rng, 5))
  pred = metrics.root_align(_poses(rng, 5))
  mapped = metrics.rescale_bones(pred, gt)
  for joint, parent in metrics.MUPOTS_OFFICIAL_TREE:
    np.testing.assert_allclose(np.linalg.norm(mapped[:, joint] - mapped[:, parent], axis=-1),
                               np.linalg.norm(gt[:, joint] - gt[:, parent], axis=-1), rtol=1e-10)
    direction = pred[:, joint] - pred[:, parent]
    new = mapped[:, joint] - mapped[:, parent]
    np.testing.assert_allclose(np.cross(direction, new), 0.0, atol=1e-6)
    assert np.all(np.einsum("ni,ni->n", direction, new) > 0)
  np.testing.assert_allclose(metrics.rescale_bones(gt, gt), gt, atol=1e-9)


def test_mupots_official_averages_sequences():
  rng = np.random.default_rng(7)
  gt = _poses(rng, 6)
  pred = gt.copy()
  pred[4:] = _poses(rng, 2)  # sequence 1 (2 samples) wrong, sequence 0 (4 samples) perfect
  result = metrics.evaluate_mupots_official(pred, gt, np.array([0, 0, 0, 0, 1, 1]), ("TS1", "TS2", "TS3"))
  assert result["groups"]["TS1"]["pck150"] == pytest.approx(100.0)
  seq2 = result["groups"]["TS2"]["pck150"]
  assert result["pck150"] == pytest.approx((100.0 + seq2) / 2)  # mean over the non-empty sequences
  errors = metrics.joint_errors(metrics.rescale_bones(metrics.root_align(pred), metrics.root_align(gt)),
                                metrics.root_align(gt))[:, list(metrics.MUPOTS_OFFICIAL_JOINTS)]
  assert result["pck150_pooled"] == pytest.approx(metrics.pck_auc(errors)[0])
  assert result["groups"]["TS3"]["count"] == 0


# ------------------------------------------------------------------------------------------- shared fixtures
@pytest.fixture
def fixtures(realdata):
  with open(realdata / "metric_fixtures" / "metric_fixtures.json") as f:
    return json.load(f)


def test_mmpose_published_mpjpe_values(fixtures):
  """No root alignment; Procrustes fitted on all joints, the mask only selects what is averaged."""
  case = fixtures["mmpose_keypoint_mpjpe_unit_test"]
  pred, gt, mask = (np.array(case[k]) for k in ("pred", "gt", "mask"))
  expected = case["expected_published"]
  assert metrics.joint_errors(pred, gt)[mask].mean() == pytest.approx(expected["mpjpe_alignment_none"], abs=1e-6)
  similarity = metrics.joint_errors(metrics.rigid_align(pred, gt, scale=True), gt)[mask].mean()
  assert similarity == pytest.approx(expected["mpjpe_alignment_procrustes_similarity"], abs=1e-6)
  rigid = metrics.joint_errors(metrics.rigid_align(pred, gt), gt)[mask].mean()
  assert rigid == pytest.approx(case["extra_computed_here"]["mpjpe_alignment_procrustes_rigid_no_scale"], abs=1e-6)


def test_mmhuman3d_pck_auc_conventions(fixtures):
  cases = fixtures["mmhuman3d_pck_auc_conventions"]["cases"]
  rng = np.random.default_rng(8)
  gt = rng.normal(scale=300.0, size=(2, 17, 3))
  perfect = metrics.evaluate(gt, gt)
  assert perfect["pck150"] == pytest.approx(cases[0]["expected_pck150"])
  assert perfect["auc"] == pytest.approx(cases[0]["expected_auc"])
  errors = np.zeros((2, 5))
  errors[0, 3] = np.linalg.norm([1000.0, 1000.0, 1000.0])
  assert metrics.pck_auc(errors)[0] == pytest.approx(cases[1]["expected_pck150"])
  shifted = metrics.evaluate(gt + 2000.0, gt)
  assert shifted["auc"] == pytest.approx(cases[3]["expected_auc"])
  turned = metrics.rigid_align(gt * np.array([1.0, -1.0, -1.0]), gt)
  assert metrics.mpjpe(turned, gt) == pytest.approx(cases[4]["expected_mpjpe"], abs=1e-9)


def test_real_h36m_pose_pairs(fixtures):
  case = fixtures["real_h36m_pose_pairs_computed_here"]
  pred, gt = np.array(case["pred"]), np.array(case["gt"])
  expected, per_sample = case["expected"], case["expected_per_sample"]
  rigid = metrics.evaluate(pred, gt, bone_type="h36m", pa_scale=False)
  assert rigid["mpjpe"] == pytest.approx(expected["mpjpe"], abs=1e-5)
  assert rigid["pa_mpjpe"] == pytest.approx(expected["pa_mpjpe_rigid"], abs=1e-5)
  assert rigid["pck150"] == pytest.approx(expected["pck150_on_rigid_pa"], abs=1e-6)
  assert rigid["auc"] == pytest.approx(expected["auc_on_rigid_pa"], abs=1e-6)
  similarity = metrics.evaluate(pred, gt, pa_scale=True)
  assert similarity["pa_mpjpe"] == pytest.approx(expected["pa_mpjpe_similarity"], abs=1e-5)
  per_rigid = metrics.joint_errors(metrics.rigid_align(pred, gt), gt).mean(axis=1)
  np.testing.assert_allclose(per_rigid, per_sample["per_sample_pa_rigid"], atol=1e-5)
  per_similarity = metrics.joint_errors(metrics.rigid_align(pred, gt, scale=True), gt).mean(axis=1)
  np.testing.assert_allclose(per_similarity, per_sample["per_sample_pa_similarity"], atol=1e-5)
