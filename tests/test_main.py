"""The main job as a user runs it: subprocesses of `python -m ahup_jax.main` on the tiny embedded dataset.

Covers resume after SIGKILL (also during a checkpoint write) with identical final parameters, export → load in a
fresh process → identical predictions, config override errors, the missing-dataset message, and a train+eval smoke.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from tests.conftest import REPO, final_params, subprocess_env

TRAIN_FLAGS = ["--config=configs/saa.py:synth_tiny", "--config.train.epochs=3", "--config.train.iters_per_epoch=4",
               "--config.train.checkpoint_every_steps=2", "--config.train.sample_images_every_epochs=0"]


_env = subprocess_env


def _main(*args, check=True, timeout=600) -> subprocess.CompletedProcess:
  proc = subprocess.run([sys.executable, "-m", "ahup_jax.main", *args], cwd=REPO, env=_env(),
                        capture_output=True, text=True, timeout=timeout)
  if check and proc.returncode != 0:
    raise AssertionError(f"main {args} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
  return proc


@pytest.fixture(scope="module")
def reference_run(synth_root, tmp_path_factory) -> str:
  workdir = str(tmp_path_factory.mktemp("reference"))
  _main(*TRAIN_FLAGS, f"--config.data.root={synth_root}", f"--workdir={workdir}", "--mode=train")
  return workdir


def test_train_then_eval_writes_metrics_and_tables(reference_run):
  assert os.path.exists(os.path.join(reference_run, "eval", "metrics.json"))
  assert os.path.exists(os.path.join(reference_run, "eval", "tables.md"))
  assert glob.glob(os.path.join(reference_run, "tensorboard", "events.out.tfevents.*"))
  pred = np.load(os.path.join(reference_run, "eval", "pred_hm.npz"))
  assert pred["pred"].shape == pred["gt"].shape and pred["pred"].shape[1:] == (17, 3)


@pytest.mark.parametrize("kill_during_write", [False, True])
def test_resume_after_sigkill_gives_identical_params(synth_root, reference_run, tmp_path, kill_during_write):
  workdir = str(tmp_path / "resumed")
  cmd = [sys.executable, "-m", "ahup_jax.main", *TRAIN_FLAGS, f"--config.data.root={synth_root}",
         f"--workdir={workdir}", "--mode=train"]
  proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  ckpt_dir = os.path.join(workdir, "checkpoints")
  deadline = time.time() + 300
  try:
    while time.time() < deadline and proc.poll() is None:
      names = os.listdir(ckpt_dir) if os.path.isdir(ckpt_dir) else []
      writing = [n for n in names if "tmp" in n]
      done = [n for n in names if n.isdigit()]
      if (writing if kill_during_write else done):
        proc.send_signal(signal.SIGKILL)
        break
      time.sleep(0.005)
    proc.wait(timeout=60)
  finally:
    if proc.poll() is None:
      proc.kill()
  assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
  killed_at = max([int(n) for n in os.listdir(ckpt_dir) if n.isdigit()], default=0)
  assert killed_at < 12
  _main(*TRAIN_FLAGS, f"--config.data.root={synth_root}", f"--workdir={workdir}", "--mode=train")
  step_ref, params_ref = final_params(reference_run)
  step_res, params_res = final_params(workdir)
  assert step_ref == step_res == 12
  for a, b in zip(jax.tree.leaves(params_ref), jax.tree.leaves(params_res)):
    np.testing.assert_array_equal(a, b)
  # docs/NUMERICS.md's determinism claim: same machine, jaxlib and threads give the same metrics, bit for bit.
  def metrics(workdir):
    with open(os.path.join(workdir, "eval", "metrics.json")) as f:
      return json.load(f)

  assert metrics(workdir) == metrics(reference_run)
  np.testing.assert_array_equal(np.load(os.path.join(workdir, "eval", "pred_hm.npz"))["pred"],
                                np.load(os.path.join(reference_run, "eval", "pred_hm.npz"))["pred"])


def test_export_loads_in_fresh_process_with_identical_predictions(synth_root, reference_run, tmp_path):
  _main(*TRAIN_FLAGS, f"--config.data.root={synth_root}", f"--workdir={reference_run}", "--mode=export")
  other = str(tmp_path / "from_export")
  _main(*TRAIN_FLAGS, f"--config.data.root={synth_root}", f"--workdir={other}", "--mode=eval",
        f"--export_dir={os.path.join(reference_run, 'export')}")
  ours = np.load(os.path.join(reference_run, "eval", "pred_hm.npz"))["pred"]
  theirs = np.load(os.path.join(other, "eval", "pred_hm.npz"))["pred"]
  np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-5)
  # --mode=eval draws its figures; an export has no training logs, so no curves
  assert sorted(os.listdir(os.path.join(other, "eval"))) == sorted(
      ["metrics.json", "pred_cam.npz", "pred_hm.npz", "tables.md", "poses_pca.png", "skeletons.png"])
  for name in ("poses_pca.png", "skeletons.png"):
    assert _drawn(os.path.join(other, "eval", name)) > 0.02, name


def test_eval_mode_figures_include_the_training_curves(synth_root, reference_run, tmp_path):
  workdir = tmp_path / "eval_again"
  shutil.copytree(reference_run, workdir, ignore=shutil.ignore_patterns("eval"))
  _main(*TRAIN_FLAGS, f"--config.data.root={synth_root}", f"--workdir={workdir}", "--mode=eval")
  curves = workdir / "eval" / "training_curves.png"
  assert curves.exists() and _drawn(str(curves)) > 0.02
  np.testing.assert_array_equal(np.load(workdir / "eval" / "pred_hm.npz")["pred"],
                                np.load(os.path.join(reference_run, "eval", "pred_hm.npz"))["pred"])


def _drawn(path: str) -> float:
  """Share of pixels that are not (near) white."""
  import matplotlib.image
  pixels = matplotlib.image.imread(path)[..., :3]
  return float(np.mean(np.any(pixels < 0.95, axis=-1)))


def test_predict_on_image_folder(synth_root, reference_run, tmp_path):
  images = sorted(glob.glob(os.path.join(synth_root, "Human36M", "images", "*", "*.jpg")))[:3]
  folder = tmp_path / "photos"
  folder.mkdir()
  for path in images:
    (folder / os.path.basename(path)).write_bytes(open(path, "rb").read())
  if not os.path.isdir(os.path.join(reference_run, "export")):
    _main(*TRAIN_FLAGS, f"--config.data.root={synth_root}", f"--workdir={reference_run}", "--mode=export")
  import json
  boxes = tmp_path / "dets.json"
  boxes.write_text(json.dumps([{"file_name": os.path.basename(p), "bbox": [20, 10, 40 + k, 60], "score": 0.8}
                               for k, p in enumerate(images)] + [{"file_name": os.path.basename(images[0]),
                                                                  "bbox": [0, 0, 30, 30], "score": 0.1}]))
  out = tmp_path / "pred.json"
  _main(f"--workdir={reference_run}", "--mode=predict", f"--images={folder}", f"--out={out}", f"--boxes={boxes}",
        "--min_score=0.5", "--focal_px=500", "--render")
  result = json.loads(out.read_text())
  assert [e["file"] for e in result["images"]] == sorted(os.path.basename(p) for p in images)
  for k, entry in enumerate(result["images"]):
    (person,) = entry["persons"]  # the 0.1-scored box is below --min_score
    assert person["box"] == [20, 10, 40 + k, 60] and entry["camera"]["focal_px"] == [500, 500]
    assert np.asarray(person["pose_mm"]).shape == (17, 3) and person["pose_mm"][0] == [0.0, 0.0, 0.0]
  assert result["skipped"] == []
  assert len(glob.glob(str(tmp_path / "pred_render" / "*.png"))) == 4  # 3 images + the contact sheet


def test_unknown_config_key_is_an_error():
  proc = _main("--config=configs/saa.py:synth_tiny", "--config.train.batch_sizee=3", "--mode=train", check=False)
  assert proc.returncode != 0 and "batch_sizee" in proc.stderr


def test_unknown_variant_is_an_error():
  proc = _main("--config=configs/saa.py:nonsense", "--mode=train", check=False)
  assert proc.returncode != 0 and "unknown configs/saa.py variant 'nonsense'" in proc.stderr


def test_missing_dataset_names_folder_and_remedy(tmp_path):
  proc = _main("--config=configs/saa.py", f"--config.data.root={tmp_path / 'nowhere'}", "--mode=train",
               f"--workdir={tmp_path / 'w'}", check=False)
  assert proc.returncode != 0
  assert "nowhere" in proc.stderr and "configs/saa.py:synth" in proc.stderr
