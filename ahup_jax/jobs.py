"""The jobs `ahup_jax.main` dispatches to: train + test, evaluate, SPA fit / adapt, export, all (predict:
`ahup_jax/predict.py`).

Each job reads and writes fixed places under the workdir, so they chain (the `all` job is them in sequence):

  checkpoints/  train state (orbax)          eval/       pred_hm.npz, pred_cam.npz, metrics.json, tables.md
  tensorboard/  scalars, sample images       poses/      <Name>_hm.json SPA source/target poses
  samples/      crops with skeletons         spa/        SPA head (orbax export layout)
  export/       inference-only checkpoint    results.md  the final table of the `all` job
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from ahup_jax import checkpoint, distributed, machine, sharding
from ahup_jax.evaluation import protocols, tables
from ahup_jax.native import onednn
from ahup_jax.spa import apply as spa_apply
from ahup_jax.spa import data as spa_data
from ahup_jax.spa import descriptor as spa_descriptor
from ahup_jax.spa import fit as spa_fit
from ahup_jax.train import loop
from ahup_jax.train import state as state_lib
from data_pipelines import augment, readers

# Which training split provides the target descriptor of each test set (SPEC §7.2, §9 #15).
SPA_TARGET_SOURCE = {"Human36M": "Human36M", "MuPoTS": "MuCo", "ScanAva": "ScanAva", "SURREAL": "SURREAL"}


# ----------------------------------------------------------------------------------------------- train / eval
def ensure_synth_data(config) -> None:
  """Generates the embedded dataset of `config.synth` (preset, seed, gaps_closed, gaps_widened) into
  config.data.root unless it is already there; a folder generated with other settings is an error, not silently
  reused. Process 0 generates, the others wait for it: the folder must be on a filesystem every process sees."""
  root = config.data.root
  done = os.path.join(root, "DONE")
  want = {"preset": config.synth.preset, "seed": int(config.synth.seed),
          "gaps_closed": sorted(config.synth.get("gaps_closed", ())),
          "gaps_widened": sorted(config.synth.get("gaps_widened", ()))}
  if distributed.is_primary() and not os.path.exists(done):
    logging.info("generating the embedded dataset %s into %s", want, root)
    subprocess.run([sys.executable, "-m", "data_pipelines.synth", "--out", root, "--preset", want["preset"],
                    "--seed", str(want["seed"]), "--close-gaps", ",".join(want["gaps_closed"]),
                    "--widen-gaps", ",".join(want["gaps_widened"])], check=True)
    with open(done, "w") as f:
      f.write(" ".join(f"{k}={v}" for k, v in want.items()) + "\n")
  distributed.barrier("ensure_synth_data")
  if not os.path.exists(done):
    raise FileNotFoundError(f"process 0 generated the embedded dataset into {os.path.abspath(root)}, but this "
                            "process does not see it there: config.data.root must be on a filesystem shared by "
                            "every process (or generate it on every host first, docs/MULTIHOST.md)")
  info_path = os.path.join(root, "synth_info.json")
  if os.path.exists(info_path):
    with open(info_path) as f:
      info = json.load(f)
    have = {"preset": info.get("preset"), "seed": info.get("seed"), "gaps_closed": sorted(info.get("gaps_closed", [])),
            "gaps_widened": sorted(info.get("gaps_widened", []))}
    if have != want:
      raise ValueError(f"{os.path.abspath(info_path)} says the embedded dataset there was generated with {have}, "
                       f"but config.synth asks for {want}; point config.data.root at another folder or delete it")


def train_and_test(config: ml_collections.ConfigDict, workdir: str) -> dict:
  state = loop.train(config, workdir)
  return evaluate(config, workdir, variables=loop.inference_variables(state))


def restore_variables(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """G+T variables of the latest training checkpoint in `workdir`."""
  ckpt = checkpoint.TrainCheckpointer(os.path.join(workdir, "checkpoints"), keep=config.train.keep_checkpoints)
  step = ckpt.latest_step()
  if step is None:
    raise FileNotFoundError(f"no training checkpoint in {ckpt.directory}; train first (--mode=train) "
                            "or pass --export_dir")
  abstract = jax.eval_shape(lambda: state_lib.create_train_state(config, jax.random.key(0)))
  mesh = sharding.make_mesh(config.mesh)
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding.replicated(mesh)),
                          abstract)
  state, _ = ckpt.restore(step, abstract)
  ckpt.close()
  logging.info("restored step %d from %s", step, ckpt.directory)
  return loop.inference_variables(state)


def evaluate(config: ml_collections.ConfigDict, workdir: str, *, variables: dict | None = None,
             export_dir: str = "", spa_variables: dict | None = None, tag: str = "",
             testset: str | None = None, figures: bool = False) -> dict:
  """Evaluates on the test split of `testset` (default config.data.testset) → WORKDIR/eval[_<testset>]; with
  `figures`, also the evaluation's PNGs there (figures.evaluation_figures: 3D skeletons, pose PCA, curves)."""
  if variables is None:
    variables = (checkpoint.load_export(export_dir)[0] if export_dir else restore_variables(config, workdir))
  testset = testset or config.data.testset
  records = readers.load(testset, config.data, "test")
  out_dir = os.path.join(workdir, "eval" if testset == config.data.testset else f"eval_{testset}")
  metrics = protocols.run_evaluation(config, variables, records, sharding.make_mesh(config.mesh), out_dir,
                                     spa_variables=spa_variables, tag=tag)
  logging.info("%s%s: %s", testset, tag, {k: v for k, v in metrics.items() if not isinstance(v, dict)})
  if figures and distributed.is_primary():
    from ahup_jax import figures as figures_lib  # matplotlib only when asked
    written = figures_lib.evaluation_figures(config, variables, records, out_dir, tag=tag,
                                             tensorboard_dir=os.path.join(workdir, "tensorboard"))
    logging.info("figures: %s", ", ".join(written))
  return metrics


# ----------------------------------------------------------------------------------------------- SPA
def _gt_poses(config, name: str, workdir: str) -> str:
  """GT hm poses (all 17 joints visible) of `name`'s training split → WORKDIR/poses/<name>_hm.json."""
  path = os.path.join(workdir, "poses", f"{name}_hm.json")
  if distributed.is_primary() and not os.path.exists(path):
    records = readers.load(name, config.data, "train")
    poses, all_visible = augment.gt_hm_poses(records, config.model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    spa_data.save_poses_json(path, np.asarray(poses)[np.asarray(all_visible)])
  distributed.barrier(f"gt_poses/{name}")
  return path


def fit_spa(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Fits the SPA head (SPEC §7) and saves it to WORKDIR/spa; returns its variables."""
  source = config.spa.source or _gt_poses(config, config.data.trainset[0], workdir)
  target = config.spa.target or _gt_poses(config, SPA_TARGET_SOURCE[config.data.testset], workdir)
  source_poses = spa_data.load_poses(source)
  target_descriptor = spa_data.target_descriptor_from(target)
  target_poses = spa_data.target_poses_from(target) if config.spa.lmd_D > 0 else None  # the pose D's "target"
  eval_poses = eval_gt = None
  if config.spa.select_best_on_test:  # the authors' (test-set) model selection, SPEC §9 #11
    pred = np.load(os.path.join(workdir, "eval", "pred_hm.npz"))
    eval_poses, eval_gt = pred["pred"], pred["gt"]
  logging.info("SPA: %d source poses from %s; target descriptor from %s", len(source_poses), source, target)
  start = time.time()
  variables, history = spa_fit.fit_spa(source_poses, target_descriptor, config.spa, target_poses=target_poses,
                                       seed=config.spa.seed, eval_poses=eval_poses, eval_gt=eval_gt)
  logging.info("SPA fit: %d epochs in %.1f s", len(history), time.time() - start)
  checkpoint.save_export(os.path.join(workdir, "spa"), {"spa": variables}, config)
  if distributed.is_primary():
    with open(os.path.join(workdir, "spa", "history.json"), "w") as f:
      json.dump(jax.tree.map(float, history), f, indent=1)
  return variables


def load_spa(workdir: str) -> dict:
  return checkpoint.load_export(os.path.join(workdir, "spa"))[0]["spa"]


def adapt(config: ml_collections.ConfigDict, workdir: str, pred_hm_path: str) -> dict:
  """SPA-adapts a pred_hm file (any model's predictions, SPEC §7.6) and evaluates the result."""
  out_path = pred_hm_path.replace(".npz", "_spa.npz")
  if distributed.is_primary():
    spa_apply.adapt_file(load_spa(workdir), pred_hm_path, out_path, config.spa)
  distributed.barrier("adapt")
  records = readers.load(config.data.testset, config.data, "test")
  return protocols.evaluate_hm_file(out_path, records, config, os.path.dirname(out_path), tag="_adapted")


# ----------------------------------------------------------------------------------------------- export
def export(config: ml_collections.ConfigDict, workdir: str, variables: dict | None = None) -> str:
  """Writes G+T (+ SPA when WORKDIR/spa exists) and the config to WORKDIR/export."""
  variables = dict(variables or restore_variables(config, workdir))
  if os.path.isdir(os.path.join(workdir, "spa")):
    variables["spa"] = load_spa(workdir)
  path = os.path.join(workdir, "export")
  checkpoint.save_export(path, jax.device_get(variables), config)
  logging.info("exported %s to %s", sorted(variables), path)
  return path


# ----------------------------------------------------------------------------------------------- all
def mean_pose_baseline(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Predicts the source training set's mean hm pose for every test crop: the floor any model must beat."""
  source = spa_data.load_poses(_gt_poses(config, config.data.trainset[0], workdir))
  gt = np.load(os.path.join(workdir, "eval", "pred_hm.npz"))["gt"]
  path = os.path.join(workdir, "eval", "pred_hm_mean_pose.npz")
  if distributed.is_primary():
    np.savez(path, pred=np.broadcast_to(source.mean(0), gt.shape).astype(np.float32), gt=gt)
  distributed.barrier("mean_pose_baseline")
  records = readers.load(config.data.testset, config.data, "test")
  return protocols.evaluate_hm_file(path, records, config, os.path.dirname(path), tag="_mean_pose")


def run_all(config: ml_collections.ConfigDict, workdir: str) -> str:
  """The whole AHuP pipeline end to end; returns (and prints) the results table."""
  start = time.time()
  state = loop.train(config, workdir)
  variables = loop.inference_variables(state)
  rows = {"mean pose (baseline)": None, "SAA": None, "SAA + SPA": None}
  rows["SAA"] = evaluate(config, workdir, variables=variables, figures=True)
  rows["mean pose (baseline)"] = mean_pose_baseline(config, workdir)
  spa_variables = fit_spa(config, workdir)
  rows["SAA + SPA"] = evaluate(config, workdir, variables=variables, spa_variables=spa_variables, tag="_spa",
                               figures=True)
  source_test = evaluate(config, workdir, variables=variables, testset=config.data.trainset[0])
  export(config, workdir, variables)
  table = tables.results_table(rows, title=f"{config.data.testset} test ({'+'.join(config.data.trainset)} → "
                                           f"{config.data.testset})")
  gap = (f"\nSame model on held-out {config.data.trainset[0]} (source-domain) test images: "
         f"MPJPE {source_test['mpjpe']:.1f} mm, PA-MPJPE {source_test['pa_mpjpe']:.1f} mm\n")
  ablation = ("\nSource only, C, C1, SAA and target-supervised rows with 3 seeds each (the adaptation effect): "
              "docs/results/ablation.md, made by `./run.sh ablation`; each domain gap's share: docs/results/gaps.md.\n")
  convolutions = "oneDNN's" if onednn.enabled() else "XLA's"
  text = (table + gap + ablation + f"\nMachine: {machine.one_line()}, {convolutions} convolutions (float32 results are "
          "bitwise reproducible on the same CPU family, jaxlib, core count and convolution library; docs/NUMERICS.md)\n"
          f"workdir: {os.path.abspath(workdir)}  (total {time.time() - start:.0f} s)\n")
  if distributed.is_primary():
    with open(os.path.join(workdir, "results.md"), "w") as f:
      f.write(text)
    print(text)
  return text
