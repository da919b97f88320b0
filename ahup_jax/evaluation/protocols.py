"""Evaluation protocols (SPEC §6.3) and the run that writes pred_hm / metrics / tables for a test split."""
from __future__ import annotations

import json
import os

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from ahup_jax import sharding
from ahup_jax.evaluation import backproject, inference, metrics as metrics_lib, tables
from data_pipelines import augment, pivot
from data_pipelines.records import Records

# Named presets: which test set, protocol and options (all share the code's metric definitions).
PROTOCOLS = {
    "h36m_p1": dict(testset="Human36M", h36m_protocol=1),
    "h36m_p2": dict(testset="Human36M", h36m_protocol=2),
    "mupots": dict(testset="MuPoTS"),  # the official code's protocol: PA-aligned PCK, 17 joints incl. pelvis
    "scanava": dict(testset="ScanAva"),
    "surreal": dict(testset="SURREAL"),
    "synth": dict(testset="Human36M", h36m_protocol=2),  # the embedded dataset is written in Human3.6M format
}


def apply_protocol(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """A copy of `config` set up for protocol `name`."""
  if name not in PROTOCOLS:
    raise ValueError(f"unknown protocol '{name}'; expected one of {sorted(PROTOCOLS)}")
  config = ml_collections.ConfigDict(config.to_dict())
  preset = dict(PROTOCOLS[name])
  config.data.testset = preset.pop("testset")
  for key, value in preset.items():
    config.data[key] = value
  return config


def predict_records(config, variables: dict, records: Records, mesh, *, spa_variables=None,
                    desc: str = "eval") -> np.ndarray:
  """Flip-tested hm predictions [N, 17, 3] for every record, batched over the mesh."""
  with_spa = spa_variables is not None
  if with_spa:
    variables = dict(variables, spa=spa_variables)
  predict = jax.jit(inference.make_predict_fn(config, with_spa=with_spa),
                    in_shardings=(sharding.replicated(mesh), sharding.batch_sharding(mesh)))
  devices = mesh.devices.size
  batch_size = -(-config.eval.batch_size // devices) * devices
  flip = bool(config.eval.flip_test)
  keys = ("image", "image_flip") if flip else ("image",)
  pred = np.zeros((len(records), 17, 3), np.float32)
  dataset = pivot.make_eval_dataset(records, config, batch_size, flip)
  for batch in tqdm(dataset.as_numpy_iterator(), total=-(-len(records) // batch_size), desc=desc, unit="batch",
                    leave=False, disable=jax.process_index() != 0):
    out = predict(variables, sharding.to_global({k: batch[k] for k in keys}, mesh))
    out = np.asarray(multihost_utils.process_allgather(out, tiled=True))
    index = np.asarray(multihost_utils.process_allgather(batch["index"], tiled=True))
    valid = np.asarray(multihost_utils.process_allgather(batch["valid"], tiled=True)) > 0
    pred[index[valid]] = out[valid]
  return pred


def score(pred_hm: np.ndarray, records: Records, config, *, with_pa: bool) -> tuple[dict, np.ndarray]:
  """Back-projects hm predictions with the records' boxes / roots / intrinsics and computes the metrics."""
  pred_cam = backproject.hm_to_camera(pred_hm, records.bbox, records.root_cam[:, 2], records.f, records.c,
                                      hm_size=config.model.input_size / 4, depth_bins=config.model.depth_bins,
                                      depth_extent_mm=config.model.bbox_3d_depth_mm)
  result = metrics_lib.evaluate(pred_cam, records.joint_cam, bone_type=config.eval.bone_type,
                                pa_scale=config.eval.pa_scale, with_pa=with_pa, groups=records.group,
                                group_names=records.info.group_names)
  return result, pred_cam


def _write(out_dir: str, tag: str, name: str, result: dict, **arrays) -> None:
  if jax.process_index() != 0:
    return
  os.makedirs(out_dir, exist_ok=True)
  for stem, value in arrays.items():
    np.savez(os.path.join(out_dir, f"{stem}{tag}.npz"), **value)
  with open(os.path.join(out_dir, f"metrics{tag}.json"), "w") as f:
    json.dump(result, f, indent=1)
  with open(os.path.join(out_dir, f"tables{tag}.md"), "w") as f:
    f.write(tables.evaluation_report(result, name))


def run_evaluation(config, variables: dict, records: Records, mesh, out_dir: str, *, split: str = "test",
                   spa_variables: dict | None = None, tag: str = "") -> dict:
  """Evaluates `variables` on `records`; writes pred_hm, pred_cam, metrics and tables (tag-suffixed) to out_dir.

  `split="testInLoop"` computes MPJPE only (PA is skipped during training, SPEC §9 #26).
  """
  pred_hm = predict_records(config, variables, records, mesh, spa_variables=spa_variables,
                            desc=f"eval {records.info.name}{tag}")
  gt_hm, _ = augment.gt_hm_poses(records, config.model)
  result, pred_cam = score(pred_hm, records, config, with_pa=split == "test")
  _write(out_dir, tag, f"{records.info.name}{tag}", result, pred_hm={"pred": pred_hm, "gt": gt_hm},
         pred_cam={"pred": pred_cam.astype(np.float32), "gt": records.joint_cam})
  return result


def evaluate_hm_file(path: str, records: Records, config, out_dir: str, tag: str = "") -> dict:
  """Evaluates a pred_hm .npz (`pred` [N, 17, 3]) — e.g. SPA-adapted or another model's — on `records`."""
  pred = np.load(path)["pred"]
  if pred.shape != (len(records), 17, 3):
    raise ValueError(f"{path}: 'pred' has shape {pred.shape}, expected ({len(records)}, 17, 3) for "
                     f"{records.info.name}")
  result, pred_cam = score(pred, records, config, with_pa=True)
  _write(out_dir, tag, f"{records.info.name}{tag}", result,
         pred_cam={"pred": pred_cam.astype(np.float32), "gt": records.joint_cam})
  return result
