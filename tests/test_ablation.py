"""The ablation job: the summary arithmetic on fixed per-seed results, and `./run.sh ablation --quick` end to end
(tiny embedded data, 2 rows, 1 seed, 4 real jitted steps each, SPA, evaluation, report, JSON, every figure), then
the rerun that skips the finished runs, and the D probes of those runs (`--d_probe`)."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import jax
import matplotlib.image
import numpy as np
import pytest

from ahup_jax import ablation
from configs import ablation as ablation_configs
from data_pipelines.readers import human36m
from tests.conftest import REPO


def _result(row, seed, mpjpe, pa, spa_pa=None):
  metrics = {"mpjpe": mpjpe, "pa_mpjpe": pa, "pck150": 100 - pa / 2, "auc": 50 - pa / 4, "count": 10}
  out = {"row": row, "seed": seed, "test": metrics, "val": metrics, "total_s": 1.0,
         "shoulder": {"width_pred_mm": 100.0 + seed, "width_gt_mm": 300.0, "lr_sign_agreement": 0.5}}
  if spa_pa is not None:
    out["spa_test"] = dict(metrics, pa_mpjpe=spa_pa)
    out["spa_shoulder"] = out["shoulder"]
  return out


def test_summary_gap_share_and_paired_differences():
  runs = {"target-supervised": [_result("t", s, 100.0 + s, 80.0 + s) for s in range(3)],
          "source only": [_result("s", s, 200.0 + s, 180.0 + 2 * s, spa_pa=170.0) for s in range(3)],
          "source + 2D labels, no D": [_result("j", s, 160.0, 140.0 - s) for s in range(3)],
          "SAA + Jo2D": [_result("f", s, 150.0 + 2 * s, 130.0, spa_pa=120.0 + s) for s in range(3)]}
  summary = ablation.summarize(runs)
  rows = summary["rows"]
  assert list(rows) == ["target-supervised", "source only", "source only + SPA", "source + 2D labels, no D",
                        "SAA + Jo2D", "SAA + Jo2D + SPA"]
  full = rows["SAA + Jo2D"]
  assert full["mpjpe"]["mean"] == pytest.approx(152.0)
  assert full["mpjpe"]["std"] == pytest.approx(2.0)  # sample std of 150, 152, 154
  assert full["per_seed"]["mpjpe"] == [150.0, 152.0, 154.0]
  assert full["gap_closed"]["mpjpe"] == pytest.approx((201 - 152) / (201 - 101))
  assert rows["target-supervised"]["gap_closed"]["pa_mpjpe"] == pytest.approx(1.0)
  assert rows["source only"]["gap_closed"]["auc"] == pytest.approx(0.0)
  paired = summary["paired"]["SAA + Jo2D − source only"]["pa_mpjpe"]
  assert paired["differences"] == pytest.approx([-50.0, -52.0, -54.0])
  assert paired["mean"] == pytest.approx(-52.0) and paired["std"] == pytest.approx(2.0)
  assert summary["paired"]["SAA + Jo2D + SPA − source only"]["pa_mpjpe"]["differences"] == pytest.approx(
      [-60.0, -61.0, -62.0])
  control = summary["paired"]["SAA + Jo2D − source + 2D labels, no D"]["pa_mpjpe"]  # what D adds to Jo2D
  assert control["differences"] == pytest.approx([-10.0, -9.0, -8.0])
  assert "SAA − source + 2D, no D" not in summary["paired"]  # neither row was run
  table = ablation.markdown_table(summary)
  assert "| SAA + Jo2D | 3 | 152.0 ± 2.0 | 130.0 ± 0.0 |" in table
  assert "-52.0 ± 2.0" in table


def test_gap_table_summary_pairs_seeds_and_splits_the_gap():
  def runs_of(offset, pa_offset):
    out = [_result("s", s, 200.0 + offset + s, 180.0 + pa_offset) for s in range(2)]
    for r in out:
      r["source_test"] = {"mpjpe": 90.0, "pa_mpjpe": 70.0 + r["seed"]}
      r["spa_test"] = dict(r["test"], pa_mpjpe=r["test"]["pa_mpjpe"] + 3.0 + r["seed"])
      r["spa_diagnostics"] = {k: 1.0 + r["seed"] for k in ablation.SPA_DIAGNOSTICS}
    return out
  runs = {"none (source only)": runs_of(0.0, 0.0), "appearance": runs_of(-30.0, -5.0),
          "skeleton": runs_of(10.0, 2.0), "target-supervised": runs_of(-100.0, -20.0)}
  rows = ablation.summarize_gaps(runs)["rows"]
  assert rows["appearance"]["gap_closed"]["mpjpe"] == pytest.approx(0.3)
  assert rows["appearance"]["gap_closed"]["pa_mpjpe"] == pytest.approx(0.25)
  assert rows["skeleton"]["gap_closed"]["mpjpe"] == pytest.approx(-0.1)  # closing it made things worse
  assert rows["appearance"]["paired"]["mpjpe"]["mean"] == pytest.approx(-30.0)
  assert rows["appearance"]["paired"]["mpjpe"]["std"] == pytest.approx(0.0)  # same seed offset on both seeds
  assert rows["skeleton"]["source_pa_mpjpe"]["mean"] == pytest.approx(70.5)
  table = ablation.gap_markdown_table({"rows": rows})
  assert "| appearance | 2 | 170.5 ± 0.7 | 175.0 ± 0.0 | -30.0 ± 0.0 / -5.0 ± 0.0 | 30 % / 25 % |" in table
  assert "| target-supervised (trained on the target) | 2 |" in table
  spa = rows["skeleton"]["spa"]
  assert spa["delta_pa_mpjpe"]["mean"] == pytest.approx(3.5) and spa["delta_mpjpe"]["mean"] == pytest.approx(0.0)
  assert spa["shoulder_hm_after"]["mean"] == pytest.approx(1.5)
  assert "| skeleton | 0.0 ± 0.0 | 3.5 ± 0.7 | 1.50 → 1.50 |" in table


def test_gap_configs_point_each_gap_at_its_own_generated_folder():
  cfg = ablation_configs.get_config()
  cfg.data_root = "/data/synth_small/"
  configs = ablation.gap_configs(cfg)
  assert list(configs) == list(cfg.gap_table) and configs["all"].gaps_closed == ablation.domains.GAPS
  pose = ablation.row_config(configs["pose"], "source only", 1)
  assert pose.data.root == "/data/synth_small_closed_pose" and tuple(pose.synth.gaps_closed) == ("pose",)
  assert ablation.row_config(configs["all"], "source only", 0).data.root == "/data/synth_small_closed_all"
  assert ablation.run_dir(configs["pose"], "source only", 1).endswith("closed_pose/source_only/seed_1")
  assert ablation.row_config(cfg, "source only", 0).data.root == "/data/synth_small/"
  cfg.gaps_widened = ("appearance",)
  widened = ablation.row_config(cfg, "SAA", 2)
  assert widened.data.root == "/data/synth_small_widened_appearance"
  assert tuple(widened.synth.gaps_widened) == ("appearance",) and tuple(widened.synth.gaps_closed) == ()
  both = ablation.gap_configs(cfg)["appearance"]
  root = ablation.row_config(both, "source only", 0).data.root
  assert root == "/data/synth_small_widened_appearance_closed_appearance"
  assert ablation.run_dir(both, "SAA", 0).endswith("widened_appearance/closed_appearance/saa/seed_0")
  assert ablation.gap_note(both) == " (appearance gap widened; source with the appearance gap closed)"
  assert ablation.gap_note(ablation_configs.get_config()) == ""  # the report header names only non-default data


def test_previous_report_runs_join_the_table_only_when_comparable(tmp_path):
  cfg = ablation_configs.get_config("quick")
  cfg.workdir, cfg.seeds, cfg.rows = str(tmp_path / "runs"), 2, ("source only", "SAA")
  config = json.loads(json.dumps(cfg.to_dict(), default=ablation._plain))
  del config["train"]["dtype"]  # a report from before a setting existed: it held the default then
  del config["gaps_widened"]
  runs = {"source only": [_result("source only", s, 200.0 + s, 150.0) for s in range(3)],
          "C": [_result("C", 0, 190.0, 140.0)]}
  path = tmp_path / "ablation.json"
  path.write_text(json.dumps({"config": config, "runs": runs}))
  kept = pathlib.Path(ablation.run_dir(cfg, "source only", 1), "results.json")
  kept.parent.mkdir(parents=True)
  kept.write_text(json.dumps(_result("source only", 1, 111.0, 99.0)))

  adopted = ablation.adopt_previous(cfg, str(path))
  assert adopted == [("source only", 0)]  # seed 2 ≥ cfg.seeds, seed 1 already here, C not asked for
  written = json.loads(pathlib.Path(ablation.run_dir(cfg, "source only", 0), "results.json").read_text())
  assert written == runs["source only"][0]
  assert json.loads(kept.read_text())["test"]["mpjpe"] == 111.0

  cfg.train.steps += 1
  with pytest.raises(ValueError, match=r"ablation.json: config.train was .*'steps': 4.* but is .*'steps': 5"):
    ablation.adopt_previous(cfg, str(path))
  path.write_text(json.dumps({"rows": {}}))
  with pytest.raises(ValueError, match="not an ablation.json"):
    ablation.adopt_previous(cfg, str(path))


def test_embedded_data_generated_with_other_settings_is_refused(tmp_path):
  from ahup_jax import jobs
  (tmp_path / "DONE").write_text("tiny\n")
  (tmp_path / "synth_info.json").write_text(json.dumps({"preset": "tiny", "seed": 0, "gaps_closed": []}))
  cfg = ablation_configs.get_config("quick")
  cfg.data_root = str(tmp_path)
  jobs.ensure_synth_data(ablation.row_config(cfg, "source only", 0))  # matches: nothing to do
  cfg.gaps_closed, cfg.data_root = ("skeleton",), ""
  config = ablation.row_config(cfg, "source only", 0)
  config.data.root = str(tmp_path)
  with pytest.raises(ValueError, match=r"synth_info.json says .*'gaps_closed': \[\].*asks for .*'skeleton'"):
    jobs.ensure_synth_data(config)


def test_spa_diagnostics_on_written_predictions(tmp_path):
  from ahup_jax.spa import data as spa_data
  from ahup_jax.spa import descriptor
  rng = np.random.default_rng(0)
  gt = rng.normal(size=(5, 17, 3)) * 3
  gt[:, ablation.L_SHOULDER], gt[:, ablation.R_SHOULDER] = [2.0, 0, 0], [-2.0, 0, 0]  # shoulders 4 px apart
  before = gt + rng.normal(size=gt.shape) * 0.1
  after = gt.copy()  # SPA made the predictions exact
  (tmp_path / "eval").mkdir()
  for tag, pred in (("", before), ("_spa", after)):
    np.savez(tmp_path / "eval" / f"pred_hm{tag}.npz", pred=pred, gt=gt)
    np.savez(tmp_path / "eval" / f"pred_cam{tag}.npz", pred=pred * 10, gt=gt * 10)
  spa_data.save_poses_json(str(tmp_path / "target_hm.json"), gt[:3])
  out = ablation.spa_diagnostics(str(tmp_path), str(tmp_path / "target_hm.json"))
  target = descriptor.mean_descriptor(np.round(gt[:3], 4))
  assert out["descriptor_l1_to_test_gt_after"] == pytest.approx(0.0, abs=1e-5)
  assert out["descriptor_l1_to_target_after"] == pytest.approx(
      float(np.abs(descriptor.mean_descriptor(gt) - target).sum()), rel=1e-5)
  assert out["descriptor_l1_to_test_gt_before"] > 0
  assert out["shoulder_hm_gt"] == pytest.approx(4.0) and out["shoulder_hm_after"] == pytest.approx(4.0)
  assert out["joint_error_mm_after"] == pytest.approx([0.0] * 17)
  expected = np.linalg.norm((before - gt) * 10, axis=-1).mean(0)
  assert out["joint_error_mm_before"] == pytest.approx(expected.tolist(), rel=1e-6)


def test_shoulder_stats():
  gt = np.zeros((4, 17, 3))
  gt[:, ablation.L_SHOULDER, 0], gt[:, ablation.R_SHOULDER, 0] = 150.0, -150.0
  pred = gt.copy()
  pred[:2, ablation.L_SHOULDER, 0], pred[:2, ablation.R_SHOULDER, 0] = -50.0, 50.0  # facing the wrong way
  stats = ablation.shoulder_stats(pred, gt)
  assert stats["width_gt_mm"] == pytest.approx(300.0)
  assert stats["width_pred_mm"] == pytest.approx(200.0)
  assert stats["lr_sign_agreement"] == pytest.approx(0.5)


def test_row_config_holds_out_the_validation_subject():
  cfg = ablation_configs.get_config()
  target = ablation.row_config(cfg, "target-supervised", 2)
  assert tuple(target.data.trainset) == ("Human36M",) and target.seed == 2
  assert tuple(target.data.h36m_holdout_subjects) == (8,)
  assert target.adapt.lmd_D == 0.0
  full = ablation.row_config(cfg, "SAA + Jo2D", 0)
  assert tuple(full.data.trainset) == ("ScanAva", "MSCOCO", "MPII") and full.data.jo2d and full.adapt.lmd_D > 0
  assert full.model.input_size == cfg.train.input_size and full.model.depth_bins == cfg.train.input_size // 4
  assert full.train.epochs * full.train.iters_per_epoch == cfg.train.steps
  assert ablation.row_config(cfg, "C1", 0).adapt.mode_D == "C1"
  control = ablation.row_config(cfg, "source + 2D labels, no D", 0)  # SAA + Jo2D without its discriminator
  assert tuple(control.data.trainset) == tuple(full.data.trainset) and control.data.jo2d
  assert control.adapt.lmd_D == 0.0
  assert ablation.row_config(cfg, "SAA + Jo2D (λ_D 0.5)", 0).adapt.lmd_D == 0.5  # the sweep, named by --rows only
  assert "SAA + Jo2D (λ_D 0.5)" not in cfg.rows and "SAA + Jo2D" in cfg.rows
  with pytest.raises(ValueError, match="unknown ablation row"):
    ablation.row_config(cfg, "nope", 0)


def test_subject_of():
  assert human36m.subject_of("/x/images/s_08_act_02_subact_01_ca_01/s_08_act_02_subact_01_ca_01_000001.jpg") == 8
  assert human36m.subject_of("tfds:human36m/train[3]#s_11_act_05_subact_02_ca_04_000064.jpg") == 11
  assert human36m.subject_of("other.jpg") == -1


def _png_drawn(path) -> float:
  pixels = matplotlib.image.imread(path)[..., :3]
  return float(np.mean(np.any(pixels < 0.95, axis=-1)))


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> str:
  root = tmp_path_factory.mktemp("synth_tiny")
  env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
  subprocess.run([sys.executable, "-m", "data_pipelines.synth", "--out", str(root), "--preset", "tiny", "--seed", "0"],
                 cwd=REPO, env=env, check=True, capture_output=True, timeout=300)
  (root / "DONE").write_text("tiny\n")
  return str(root)


def test_holdout_subject_leaves_the_training_split(tiny_root):
  from data_pipelines import readers
  cfg = ablation_configs.get_config("quick")
  cfg.data_root = tiny_root
  config = ablation.row_config(cfg, "target-supervised", 0)
  train = readers.load("Human36M", config.data, "train")
  subjects = {human36m.subject_of(p) for p in train.img_path}
  assert 8 not in subjects and subjects == {1, 5, 6, 7}
  val = ablation.validation_records(config, 8)
  assert len(val) > 0 and {human36m.subject_of(p) for p in val.img_path} == {8}


def test_quick_ablation_end_to_end_and_resume(tiny_root, tmp_path):
  workdir, out = tmp_path / "runs", tmp_path / "results"
  args = [sys.executable, "-m", "ahup_jax.ablation", "--quick", f"--data_root={tiny_root}",
          f"--workdir={workdir}", f"--out_dir={out}"]
  env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-4000:]
  assert "[ablation 1/2] source only, seed 0: training" in proc.stdout
  summary = json.loads((out / "ablation.json").read_text())
  assert list(summary["rows"]) == ["source only", "source only + SPA", "SAA + Jo2D", "SAA + Jo2D + SPA"]
  for entry in summary["rows"].values():
    assert np.isfinite(entry["mpjpe"]["mean"]) and 0 < entry["pa_mpjpe"]["mean"] <= entry["mpjpe"]["mean"] + 1e-6
    assert len(entry["per_seed"]["auc"]) == 1
  assert set(summary["paired"]) == {"SAA + Jo2D − source only", "SAA + Jo2D + SPA − source only",
                                    "source only + SPA − source only"}
  run = summary["runs"]["SAA + Jo2D"][0]
  assert run["steps"] == 4 and "d_acc_syn" in run["final_train"] and run["val"]["count"] > 0
  report = (out / "ablation.md").read_text()
  assert "| SAA + Jo2D + SPA | 1 |" in report and "## Verdict" in report
  pngs = sorted(p.name for p in out.glob("*.png"))
  assert pngs == ["ablation_bars.png", "ablation_features_tsne.png", "ablation_poses_pca.png",
                  "ablation_skeletons.png", "ablation_training_curves.png"]
  for name in pngs:
    assert _png_drawn(str(out / name)) > 0.02, name
    assert f"]({name})" in report

  # a kept verdict and skipped finished runs on the rerun
  (out / "ablation.md").write_text(report.replace("(not written yet)", "hand-written verdict"))
  stamp = os.path.getmtime(workdir / "saa_jo2d" / "seed_0" / "results.json")
  again = subprocess.run(args + ["--nofigures"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert again.returncode == 0, again.stderr[-4000:]
  assert again.stdout.count("done before, skipped") == 2
  assert os.path.getmtime(workdir / "saa_jo2d" / "seed_0" / "results.json") == stamp
  assert "hand-written verdict" in (out / "ablation.md").read_text()

  # the D probes of the two finished runs: G frozen for both, the two in-training probes for the row with a D
  probe_args = args + ["--d_probe", "--d_probe_steps=6"]
  probed = subprocess.run(probe_args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert probed.returncode == 0, probed.stderr[-4000:]
  assert probed.stdout.count("probing D for 6 steps") == 2
  rows = json.loads((out / "d_probe.json").read_text())["rows"]
  assert set(rows["source only"]) == {"seeds", "frozen"}
  assert set(rows["SAA + Jo2D"]) == {"seeds", "in_training", "frozen", "adversarial", "ignored"}
  for entry in rows.values():
    for probe, accuracies in entry.items():
      if probe != "seeds":
        assert all(0.0 <= accuracies[k]["mean"] <= 1.0 for k in ("d_acc_real", "d_acc_syn")), (probe, accuracies)
  cached = json.loads((workdir / "saa_jo2d" / "seed_0" / "d_probe.json").read_text())
  assert len(cached["ignored_curves"]["d_acc_syn"]) == 6 and cached["steps"] == 6
  assert np.isfinite(cached["adversarial"]["loss_coord"]) and "loss_coord" not in cached["frozen"]
  assert np.isfinite(rows["SAA + Jo2D"]["ignored"]["loss_coord"]["mean"])
  assert "| SAA + Jo2D | 1 |" in (out / "d_probe.md").read_text()
  assert _png_drawn(str(out / "d_probe.png")) > 0.02
  stamp = os.path.getmtime(workdir / "saa_jo2d" / "seed_0" / "d_probe.json")
  again = subprocess.run(probe_args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert again.returncode == 0, again.stderr[-4000:]
  assert os.path.getmtime(workdir / "saa_jo2d" / "seed_0" / "d_probe.json") == stamp  # cached, not probed again

  # G pretrained as the finished 'source only' run (the ImageNet stand-in): its G is exported once, the new run
  # trains from it in its own folder and records where its G came from
  pre_args = args + ["--nofigures", "--rows=SAA + Jo2D", "--pretrained_from=source only", f"--out_dir={out}_pre"]
  pre = subprocess.run(pre_args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert pre.returncode == 0, pre.stderr[-4000:]
  assert "[ablation 1/1] SAA + Jo2D (G from 'source only'), seed 0: training" in pre.stdout
  export = workdir / "source_only" / "seed_0" / "export_G"
  result = json.loads((workdir / "pretrained_source_only" / "saa_jo2d" / "seed_0" / "results.json").read_text())
  assert result["pretrained_backbone"] == str(export) and result["steps"] == 4
  from ahup_jax import jobs
  from ahup_jax.train import loop
  cfg = ablation_configs.get_config("quick")
  cfg.data_root, cfg.workdir = tiny_root, str(workdir)
  config = ablation.row_config(cfg, "SAA + Jo2D", 0)
  config.model.pretrained_backbone = str(export)
  loaded = loop.load_backbone(config)
  trained = jobs.restore_variables(ablation.row_config(cfg, "source only", 0), str(workdir / "source_only" / "seed_0"))
  want = jax.tree.leaves({k: trained[k]["G"] for k in ("params", "batch_stats")})
  got = jax.tree.leaves({k: loaded[k] for k in ("params", "batch_stats")})
  assert len(got) == len(want) > 0 and all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(want, got))
  assert "initialised from G of the same seed's finished 'source only' run" in (
      pathlib.Path(f"{out}_pre") / "ablation.md").read_text()

  # G pretrained by rotation prediction (the domain-general stand-in): pretrained once per seed for the runs' budget,
  # exported, and the run starts from exactly that G
  rot_args = args + ["--nofigures", "--rows=source only", "--pretrained_from=rotation", f"--out_dir={out}_rot"]
  rot = subprocess.run(rot_args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert rot.returncode == 0, rot.stderr[-4000:]
  pre_dir = workdir / "rotation_pretraining" / "seed_0"
  log = [json.loads(line) for line in (pre_dir / "pretrain.jsonl").read_text().splitlines()]
  assert log[-1]["step"] == 4 and all(np.isfinite(e["loss"]) and 0 <= e["accuracy"] <= 1 for e in log)
  result = json.loads((workdir / "pretrained_rotation" / "source_only" / "seed_0" / "results.json").read_text())
  assert result["pretrained_backbone"] == str(pre_dir / "export_G") and result["steps"] == 4
  config.model.pretrained_backbone = result["pretrained_backbone"]
  rotation_g = jax.tree.leaves(loop.load_backbone(config))
  assert len(rotation_g) == len(want) and not all(np.array_equal(a, b) for a, b in zip(rotation_g, got))
  assert "pretrained by rotation prediction" in (pathlib.Path(f"{out}_rot") / "ablation.md").read_text()
  probed = subprocess.run(rot_args + ["--d_probe", "--d_probe_steps=4"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
  assert probed.returncode == 0, probed.stderr[-4000:]
  rows = json.loads((pathlib.Path(f"{out}_rot") / "d_probe.json").read_text())["rows"]
  assert set(rows) == {"initial G (rotation)", "source only"} and set(rows["initial G (rotation)"]) == {"seeds", "frozen"}
  assert len(json.loads((pre_dir / "d_probe.json").read_text())["frozen_curves"]["d_acc_syn"]) == 4


@pytest.mark.slow
def test_quick_gap_table_end_to_end(tiny_root, tmp_path):
  """`--gap_table --quick`: source only, source only on the skeleton-closed data (generated next to the tiny root)
  and target-supervised → gaps.{md,json}. Slow: three tiny trainings and a data generation (~3 min on 2 cores);
  the summary's arithmetic is checked by the default tests."""
  workdir, out = tmp_path / "runs", tmp_path / "results"
  args = [sys.executable, "-m", "ahup_jax.ablation", "--quick", "--gap_table", "--nofigures",
          f"--data_root={tiny_root}", f"--workdir={workdir}", f"--out_dir={out}"]
  env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
  gaps = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
  assert gaps.returncode == 0, gaps.stderr[-4000:]
  assert "[gaps 1/3] source only, seed 0: training" in gaps.stdout
  assert "[gaps 2/3] source only (source with the skeleton gap closed), seed 0: training" in gaps.stdout
  info = json.loads((pathlib.Path(f"{tiny_root}_closed_skeleton") / "synth_info.json").read_text())
  assert info["gaps_closed"] == ["skeleton"] and info["preset"] == "tiny"
  table = json.loads((out / "gaps.json").read_text())
  assert list(table["rows"]) == ["none (source only)", "skeleton", "target-supervised"]
  assert table["rows"]["target-supervised"]["gap_closed"]["mpjpe"] == pytest.approx(1.0)
  assert all(np.isfinite(e["source_pa_mpjpe"]["mean"]) for e in table["rows"].values())
  assert "| skeleton | 1 |" in (out / "gaps.md").read_text() and "## Reading" in (out / "gaps.md").read_text()
