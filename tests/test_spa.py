"""SPA: descriptor values and invariances, tailor files, pose files and applying the head (the fit: test_spa_fit.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ahup_jax import skeleton
from ahup_jax.spa import apply, data, descriptor, fit, tailor
from configs import saa


def t_pose() -> np.ndarray:
  """A hand-built skeleton [17, 3] (hm units) with known edge lengths."""
  p = np.zeros((17, 3), np.float32)
  j = skeleton.JOINT_INDEX
  p[j["Pelvis"]] = (32, 40, 32)
  p[j["Torso"]] = (32, 34, 32)
  p[j["Thorax"]] = (32, 28, 32)
  p[j["Neck"]] = (32, 26, 32)
  p[j["Head"]] = (32, 23, 32)
  p[j["R_Shoulder"]], p[j["L_Shoulder"]] = (28, 28, 32), (36, 28, 32)
  p[j["R_Elbow"]], p[j["L_Elbow"]] = (23, 28, 32), (41, 28, 32)
  p[j["R_Wrist"]], p[j["L_Wrist"]] = (19, 28, 32), (45, 28, 32)
  p[j["R_Hip"]], p[j["L_Hip"]] = (30, 40, 32), (34, 40, 32)
  p[j["R_Knee"]], p[j["L_Knee"]] = (30, 47, 32), (34, 47, 32)
  p[j["R_Ankle"]], p[j["L_Ankle"]] = (30, 54, 32), (34, 54, 32)
  return p


def test_descriptor_known_values_and_invariances():
  pose = t_pose()
  d = np.asarray(descriptor.skeletal_descriptor(pose))
  # shoulder width 8: spine 6/8, 6/8, neck 2/8, head 3/8, collars 4/8, upper arms 5/8, forearms 4/8, hips 2/8,
  # thighs 7/8, shins 7/8 (edge order of skeleton.EDGES)
  want = np.array([6, 6, 2, 3, 4, 5, 4, 4, 5, 4, 2, 7, 7, 2, 7, 7], np.float32) / 8
  np.testing.assert_allclose(d, want, rtol=1e-6)
  np.testing.assert_allclose(descriptor.skeletal_descriptor(pose + np.float32([5, -3, 2])), want, rtol=1e-5)
  np.testing.assert_allclose(descriptor.skeletal_descriptor(pose * 2.5), want, rtol=1e-5)
  np.testing.assert_allclose(descriptor.mean_descriptor(np.stack([pose, pose * 2])), want, rtol=1e-5)


def test_tailor_example_and_errors(tmp_path):
  d = tailor.tailor_descriptor("configs/tailor_example.yaml")
  assert d.shape == (16,) and d[4] == pytest.approx(0.5)  # collar defaults to half the shoulder width
  measurements = tailor.read_measurements("configs/tailor_example.yaml")
  del measurements["thigh"]
  bad = tmp_path / "missing.json"
  bad.write_text(json.dumps(measurements))
  with pytest.raises(ValueError, match=r"missing.json.*thigh"):
    tailor.tailor_descriptor(str(bad))
  measurements["thigh"] = -3
  bad.write_text(json.dumps(measurements))
  with pytest.raises(ValueError, match=r"'thigh' must be a positive length"):
    tailor.tailor_descriptor(str(bad))
  assert np.allclose(data.target_descriptor_from("configs/tailor_example.yaml"), d)


def _population(n: int, seed: int, leg_scale: float = 1.0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  base = t_pose()
  legs = [skeleton.JOINT_INDEX[k] for k in ("R_Knee", "L_Knee", "R_Ankle", "L_Ankle")]
  base[legs, 1] = 40 + (base[legs, 1] - 40) * leg_scale
  return (base[None] + rng.normal(0, 0.3, (n, 17, 3)) + rng.normal(0, 2, (n, 1, 3))).astype(np.float32)


def _spa_config(**overrides):
  cfg = saa.get_config().spa
  cfg.update(dict(epochs=20, batch_size=32, lr=1e-3, lr_gamma=1.0), **overrides)
  return cfg


def test_adapt_file_adapts_pred_and_keeps_gt(tmp_path):
  """The file path of the Table 2 use (SPEC §7.5–7.6): `pred` adapted exactly like adapt_poses, `gt` untouched."""
  source, target_gt = _population(96, 0, leg_scale=1.4), _population(96, 1)
  cfg = _spa_config(epochs=2)
  variables, history = fit.fit_spa(source, descriptor.mean_descriptor(target_gt), cfg, seed=0, progress=False)
  assert history[-1]["selected"] and len(history) == 2
  adapted = apply.adapt_poses(variables, source, cfg)
  path = tmp_path / "pred_hm.npz"
  np.savez(path, pred=source, gt=target_gt)
  apply.adapt_file(variables, str(path), str(tmp_path / "pred_hm_spa.npz"), cfg)
  out = np.load(tmp_path / "pred_hm_spa.npz")
  np.testing.assert_allclose(out["pred"], adapted, atol=1e-5)
  np.testing.assert_array_equal(out["gt"], target_gt)


def test_without_skeleton_term_the_head_stays_near_identity():
  source = _population(256, 2)
  cfg = _spa_config(lmd_skel=0.0)
  variables, _ = fit.fit_spa(source, descriptor.mean_descriptor(source), cfg, seed=0, progress=False)
  adapted = apply.adapt_poses(variables, source, cfg)
  assert np.abs(adapted - source).mean() < 1.0


def test_pose_files_round_trip_and_shape_errors(tmp_path):
  poses = _population(5, 3)
  path = tmp_path / "Src_hm.json"
  data.save_poses_json(str(path), poses)
  np.testing.assert_allclose(data.load_poses(str(path)), poses, atol=1e-4)
  (tmp_path / "bad_hm.json").write_text(json.dumps([[1, 2, 3]]))
  with pytest.raises(ValueError, match="bad_hm.json"):
    data.load_poses(str(tmp_path / "bad_hm.json"))
  np.testing.assert_allclose(data.target_poses_from(str(path)), poses, atol=1e-4)
  with pytest.raises(ValueError, match=r"tailor measurements.*needs target poses"):
    data.target_poses_from("configs/tailor_example.yaml")


def test_spa_job_with_pose_discriminator_reads_target_poses(tmp_path):
  """`--mode=spa` with spa.lmd_D > 0: the job hands the target file's poses to the pose D; a tailor target is an
  error naming the file."""
  from ahup_jax import checkpoint, jobs
  source_path, target_path = str(tmp_path / "Src_hm.json"), str(tmp_path / "Tar_hm.json")
  data.save_poses_json(source_path, _population(80, 0, leg_scale=1.4))
  data.save_poses_json(target_path, _population(60, 1))
  config = saa.get_config()
  config.spa.update(dict(epochs=2, batch_size=32, lmd_D=0.5, source=source_path, target=target_path))
  variables = jobs.fit_spa(config, str(tmp_path / "work"))
  restored = checkpoint.load_export(str(tmp_path / "work" / "spa"))[0]["spa"]
  np.testing.assert_allclose(restored["params"]["w1"]["kernel"], variables["params"]["w1"]["kernel"])
  history = json.loads((tmp_path / "work" / "spa" / "history.json").read_text())
  assert len(history) == 2 and all(np.isfinite(h["loss"]) for h in history)
  config.spa.target = "configs/tailor_example.yaml"
  with pytest.raises(ValueError, match="tailor_example.yaml.*target poses"):
    jobs.fit_spa(config, str(tmp_path / "work2"))
