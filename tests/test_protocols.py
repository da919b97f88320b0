"""Protocol presets and the evaluation run (SPEC §6): records with real image files → pred_hm / pred_cam /
metrics / tables, a perfect prediction file scoring zero error, and the same run on 4 simulated devices."""
from __future__ import annotations

from tests.conftest import random_variables  # noqa: F401  (shared fixture builder)

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from ahup_jax import models, sharding, skeleton
from ahup_jax.evaluation import inference, metrics, protocols, tables
from configs import saa
from data_pipelines import augment, pivot
from data_pipelines.records import DataError, DatasetInfo, Records


def tiny_config(batch_size: int = 4):
  config = saa.get_config("synth_tiny")  # res18, 64×64 crops, 16×16×16 heatmaps
  config.eval.batch_size = batch_size
  return config




def make_records(folder: pathlib.Path, n: int = 5, name: str = "Human36M",
                 group_names: tuple[str, ...] = skeleton.H36M_ACTIONS, seed: int = 0) -> Records:
  """n people 4 m in front of a 500 px camera, PNG images 96×80 written into `folder`, square ×1.25 GT boxes."""
  rng = np.random.default_rng(seed)
  offsets = rng.normal(scale=250.0, size=(n, 17, 3))
  offsets[:, 0] = 0.0
  joint_cam = offsets + rng.normal(scale=100.0, size=(n, 1, 3)) + np.array([0.0, 0.0, 4000.0])
  f, c = np.full((n, 2), 500.0), np.tile([48.0, 40.0], (n, 1))
  px = joint_cam[..., :2] / joint_cam[..., 2:] * f[:, None] + c[:, None]
  low, high = px.min(1), px.max(1)
  side = (high - low).max(1) * 1.25
  bbox = np.concatenate([(low + high) / 2 - side[:, None] / 2, side[:, None], side[:, None]], 1)
  paths = []
  for i in range(n):
    path = folder / f"img_{i:03d}.png"
    Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(path)
    paths.append(str(path))
  joint_img = np.concatenate([px, joint_cam[..., 2:] - joint_cam[:, :1, 2:]], -1)
  info = DatasetInfo(name, False, True, np.ones(17, bool), group_names)
  f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
  return Records(info, np.array(paths, object), f32(bbox), f32(joint_img), np.ones((n, 17), np.float32),
                 f32(joint_cam), f32(joint_cam[:, 0]), f32(f), f32(c), (np.arange(n) % 3).astype(np.int32),
                 np.arange(n, dtype=np.int64))


# ------------------------------------------------------------------------------------------- presets
def test_protocol_resolution():
  config = tiny_config()
  assert protocols.protocol_for(config, "Human36M").name == "synth"  # the embedded data (synth preset)
  config.synth.preset = ""
  assert protocols.protocol_for(config, "Human36M").name == "h36m_p2"
  config.data.h36m_protocol = 1
  assert protocols.protocol_for(config, "Human36M").name == "h36m_p1"
  assert protocols.protocol_for(config, "MuPoTS").name == "mupots"
  assert protocols.protocol_for(config, "MuCo").name == "muco"  # any other 3D set: plain metrics
  config.eval.protocol = "mupots_official"
  assert protocols.protocol_for(config, "MuPoTS").official_mupots
  assert protocols.protocol_for(config, "ScanAva").name == "scanava"  # a preset applies to its own test set only
  config.eval.protocol = "h36m_p3"
  with pytest.raises(ValueError, match="eval.protocol"):
    protocols.protocol_for(config, "Human36M")


def test_apply_protocol():
  config = protocols.apply_protocol(saa.get_config(), "h36m_p1")
  assert (config.data.testset, config.data.h36m_protocol, config.eval.protocol) == ("Human36M", 1, "h36m_p1")
  config = protocols.apply_protocol(config, "mupots_official")
  assert (config.data.testset, config.eval.protocol) == ("MuPoTS", "mupots_official")
  with pytest.raises(ValueError, match="unknown evaluation protocol"):
    protocols.apply_protocol(config, "coco")


def test_paper_shaped_tables():
  saa_m = {"mpjpe": 134.54, "pa_mpjpe": 85.06, "pck150": 90.2, "auc": 47.9,
           "groups": {"TS1": {"pck150": 90.6, "mpjpe": 1.0}, "TS2": {"pck150": float("nan")}}}
  table1 = tables.ablation_table({"ScanAva+ + SAA": {"Human36M": saa_m}, "ScanAva+": None}, ["Human36M", "MuPoTS"])
  assert "| Human36M PA-MPJPE | Human36M 3DPCK | Human36M AUC | Human36M MPJPE | MuPoTS PA-MPJPE |" in table1
  assert "| ScanAva+ + SAA | 85.1 | 90.2 | 47.9 | 134.5 | – | – | – | – |" in table1
  assert "| ScanAva+ | – | – |" in table1
  table5 = tables.group_table({"AHuP": saa_m, "none": None}, metrics=("pck150",))
  assert "| Method | S1 | S2 | Avg | AUC |" in table5 and "| AHuP | 90.6 | – | 90.2 | 47.9 |" in table5
  table4 = tables.group_table({"SAA": saa_m}, metrics=("mpjpe", "pa_mpjpe"))
  assert "| SAA | 1.0 | – | 134.5 |" in table4 and "| SAA PA | – | – | 85.1 |" in table4
  assert tables.results_table({"mean pose": None}).splitlines()[-1] == "| mean pose | – | – | – | – |"


# ------------------------------------------------------------------------------------------- the run
@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  folder = tmp_path_factory.mktemp("images")
  config = tiny_config()
  return config, make_records(folder), random_variables(config)


def _reference_predictions(config, records, variables):
  """The same crops, one batch, straight through the jitted predict function."""
  batch = next(pivot.make_eval_dataset(records, config, len(records), False, 0, 1).as_numpy_iterator())
  return np.asarray(jax.jit(inference.make_predict_fn(config))(variables, {"image": batch["image"]}))


def test_run_evaluation_writes_consistent_outputs(setup, tmp_path):
  config, records, variables = setup
  mesh = sharding.make_mesh(config.mesh)
  result = protocols.run_evaluation(config, variables, records, mesh, str(tmp_path))  # 5 records, batches of 4
  pred_hm = np.load(tmp_path / "pred_hm.npz")
  np.testing.assert_allclose(pred_hm["pred"], _reference_predictions(config, records, variables), atol=1e-4)
  np.testing.assert_allclose(pred_hm["gt"], augment.gt_hm_poses(records, config.model)[0])
  pred_cam = np.load(tmp_path / "pred_cam.npz")
  np.testing.assert_allclose(pred_cam["gt"], records.joint_cam - records.joint_cam[:, :1], atol=1e-3)
  np.testing.assert_array_equal(pred_cam["pred"][:, 0], 0.0)
  again = metrics.evaluate(pred_cam["pred"], pred_cam["gt"], groups=records.group,
                           group_names=records.info.group_names)
  for key in ("mpjpe", "pa_mpjpe", "pck150", "auc"):
    assert result[key] == pytest.approx(again[key], rel=1e-5)
  assert (result["dataset"], result["protocol"], result["split"], result["count"]) == ("Human36M", "synth", "test", 5)
  with open(tmp_path / "metrics.json") as f:
    stored = json.load(f)
  assert stored["mpjpe"] == pytest.approx(result["mpjpe"])
  assert stored["groups"]["Greeting"]["mpjpe"] is None  # empty group: NaN → null
  table = (tmp_path / "tables.md").read_text()
  assert "| Dir | Dis | Eat |" in table and "| Human36M PA |" in table


def test_run_evaluation_with_spa_and_in_loop(setup, tmp_path):
  config, records, variables = setup
  mesh = sharding.make_mesh(config.mesh)
  spa = models.SPANet()
  spa_vars = jax.jit(lambda k: spa.init(k, jnp.zeros((2, 17, 3)), train=False))(jax.random.key(0))
  with_spa = protocols.run_evaluation(config, variables, records, mesh, str(tmp_path), spa_variables=spa_vars,
                                      tag="_spa")
  adapted = np.load(tmp_path / "pred_hm_spa.npz")["pred"]
  expected = spa.apply(spa_vars, _reference_predictions(config, records, variables), train=False)
  np.testing.assert_allclose(adapted, expected, atol=1e-3)
  assert os.path.exists(tmp_path / "metrics_spa.json") and os.path.exists(tmp_path / "tables_spa.md")
  in_loop = protocols.run_evaluation(config, variables, records, mesh, str(tmp_path / "loop"), split="testInLoop")
  assert "pa_mpjpe" not in in_loop and in_loop["mpjpe"] > 0 and with_spa["mpjpe"] != in_loop["mpjpe"]


def test_evaluate_hm_file_perfect_and_bad_files(setup, tmp_path):
  config, records, _ = setup
  gt_hm, _ = augment.gt_hm_poses(records, config.model)
  path = str(tmp_path / "pred_hm_gt.npz")
  np.savez(path, pred=gt_hm, gt=gt_hm)
  result = protocols.evaluate_hm_file(path, records, config, str(tmp_path), tag="_gt")
  assert result["mpjpe"] < 1e-2 and result["pa_mpjpe"] < 1e-2
  assert result["pck150"] == pytest.approx(100.0) and result["auc"] == pytest.approx(100.0 * 30 / 31)
  assert os.path.exists(tmp_path / "pred_cam_gt.npz") and not os.path.exists(tmp_path / "pred_hm_gt_gt.npz")
  np.savez(path, pred=gt_hm[:-1])
  with pytest.raises(DataError, match="expected \\(5, 17, 3\\)"):
    protocols.evaluate_hm_file(path, records, config, str(tmp_path))
  np.savez(path, poses=gt_hm)
  with pytest.raises(DataError, match="no 'pred'"):
    protocols.evaluate_hm_file(path, records, config, str(tmp_path))


def test_mupots_official_option_on_a_perfect_file(tmp_path):
  config = tiny_config()
  config.eval.protocol = "mupots_official"
  records = make_records(tmp_path, n=4, name="MuPoTS", group_names=tuple(f"TS{i}" for i in range(1, 21)))
  gt_hm, _ = augment.gt_hm_poses(records, config.model)
  path = str(tmp_path / "pred_hm.npz")
  np.savez(path, pred=gt_hm)
  result = protocols.evaluate_hm_file(path, records, config, str(tmp_path))
  assert result["protocol"] == "mupots_official" and result["bone_type"] == "mupots14"
  assert result["pck150"] == pytest.approx(100.0) and result["mpjpe"] < 1e-2
  assert "| S1 | S2 |" in (tmp_path / "tables.md").read_text()


_MULTI_DEVICE = """
import os, sys, pathlib
sys.path[:0] = [{tests!r}, {repo!r}]
import numpy as np, jax
from ahup_jax import sharding
from ahup_jax.evaluation import protocols
import test_protocols as t
config = t.tiny_config(batch_size=4)
records = t.make_records(pathlib.Path({folder!r}))
mesh = sharding.make_mesh(config.mesh)
assert mesh.shape["data"] == 4, mesh.shape
protocols.run_evaluation(config, t.random_variables(config), records, mesh, {out!r})
"""


@pytest.mark.slow
def test_run_evaluation_on_four_simulated_devices(setup, tmp_path):
  """The batch split over 4 devices (host → global arrays along "data") gives the same predictions."""
  config, records, variables = setup
  folder = pathlib.Path(records.img_path[0]).parent
  tests = pathlib.Path(__file__).resolve().parent
  script = _MULTI_DEVICE.format(tests=str(tests), repo=str(tests.parent), folder=str(folder), out=str(tmp_path))
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
  done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  # 4-way sharded convs reduce in another order: a few soft-argmax outputs move by up to ~1e-3 hm px (0.03 mm)
  np.testing.assert_allclose(np.load(tmp_path / "pred_hm.npz")["pred"],
                             _reference_predictions(config, records, variables), atol=2e-3)
