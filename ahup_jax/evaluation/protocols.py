"""Named evaluation protocols (SPEC §6.3) and the evaluation run: predict → back-project → metrics → files.

`run_evaluation` writes into its out_dir (tag-suffixed): `pred_hm.npz` (pred, gt: N×17×3 hm, the SPA inputs),
`pred_cam.npz` (pred, gt: root-aligned camera mm), `metrics.json` and `tables.md`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging
from jax.sharding import Mesh
from tqdm import tqdm

from ahup_jax import distributed, sharding, skeleton
from ahup_jax.evaluation import backproject, inference, metrics, tables
from data_pipelines import augment, pivot
from data_pipelines.records import DataError, Records


@dataclasses.dataclass(frozen=True)
class Protocol:
  """A named protocol: the test set, its `config.data` overrides, the metric variant and the per-group table."""
  name: str
  testset: str                                 # reader name (data_pipelines.readers)
  description: str
  data: tuple[tuple[str, Any], ...] = ()       # config.data overrides, e.g. the Human3.6M subjects
  official_mupots: bool = False                # MATLAB-style MuPoTS metrics (metrics.evaluate_mupots_official)
  group_metrics: tuple[str, ...] = ()          # rows of the per-group table: Table 4 / Table 5 shape


_H36M_TABLE4 = ("mpjpe", "pa_mpjpe")
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("h36m_p1", "Human36M", "Human3.6M protocol #1: test S11 (train S1, S5-S9), every 64th frame, "
             "17 joints, GT box and root depth, flip test", (("h36m_protocol", 1),), group_metrics=_H36M_TABLE4),
    Protocol("h36m_p2", "Human36M", "Human3.6M protocol #2 (the paper's): test S9, S11, every 64th frame, "
             "17 joints, GT box and root depth, flip test", (("h36m_protocol", 2),), group_metrics=_H36M_TABLE4),
    Protocol("mupots", "MuPoTS", "MuPoTS-3D, the official code's protocol: 20 sequences, all valid persons, "
             "17 joints incl. pelvis, PA-aligned 3DPCK@150 mm / AUC pooled", group_metrics=("pck150",)),
    Protocol("mupots_official", "MuPoTS", "MuPoTS-3D MATLAB-style: 14 joints, no Procrustes, predicted bone "
             "lengths rescaled to the GT, 3DPCK / AUC averaged over sequences (no detection matching, no "
             "universal skeleton)", official_mupots=True, group_metrics=("pck150",)),
    Protocol("scanava", "ScanAva", "ScanAva+ test split, the code's metrics, no groups"),
    Protocol("surreal", "SURREAL", "SURREAL test split, the code's metrics, no groups"),
    Protocol("synth", "Human36M", "the embedded dataset (data_pipelines.synth, written in Human3.6M format): "
             "protocol #2 subjects and metrics", (("h36m_protocol", 2),), group_metrics=_H36M_TABLE4),
)}
_DEFAULT_FOR = {"MuPoTS": "mupots", "ScanAva": "scanava", "SURREAL": "surreal"}


def apply_protocol(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """A copy of `config` set up for protocol `name`: data.testset, its data overrides and eval.protocol."""
  if name not in PROTOCOLS:
    raise ValueError(f"unknown evaluation protocol '{name}'; expected one of {sorted(PROTOCOLS)}")
  protocol = PROTOCOLS[name]
  config = ml_collections.ConfigDict(config.to_dict())
  config.data.testset = protocol.testset
  for key, value in protocol.data:
    config.data[key] = value
  config.eval.protocol = name
  return config


def protocol_for(config: ml_collections.ConfigDict, dataset: str) -> Protocol:
  """The protocol for evaluating `dataset`: `config.eval.protocol` when it names this dataset, else its default
  (Human3.6M: `synth` for the embedded data, else h36m_p{data.h36m_protocol}); other sets get a plain one."""
  requested = config.eval.get("protocol", "") or ""
  if requested:
    if requested not in PROTOCOLS:
      raise ValueError(f"eval.protocol must be one of {sorted(PROTOCOLS)} or empty, got '{requested}'")
    if PROTOCOLS[requested].testset == dataset:
      return PROTOCOLS[requested]
  if dataset == "Human36M":
    if config.get("synth") is not None and config.synth.get("preset"):
      return PROTOCOLS["synth"]
    if int(config.data.h36m_protocol) not in (1, 2):
      raise ValueError(f"data.h36m_protocol must be 1 or 2, got {config.data.h36m_protocol}")
    return PROTOCOLS[f"h36m_p{int(config.data.h36m_protocol)}"]
  if dataset in _DEFAULT_FOR:
    return PROTOCOLS[_DEFAULT_FOR[dataset]]
  return Protocol(dataset.lower(), dataset, f"{dataset} test split, the code's metrics")


def _eval_batch_size(config: ml_collections.ConfigDict, mesh: Mesh) -> int:
  """config.eval.batch_size rounded up to a multiple of the mesh's "data" size (results do not depend on it)."""
  data = mesh.shape["data"]
  return math.ceil(int(config.eval.batch_size) / data) * data


_EVAL_STEPS: dict = {}


def _eval_step(config: ml_collections.ConfigDict, mesh: Mesh, with_spa: bool):
  """`inference.make_eval_step`, one per (config, mesh, with_spa): the in-loop evaluations of every epoch and the
  jobs after training reuse one compiled step instead of compiling their own."""
  key = (config.to_json_best_effort(sort_keys=True), mesh, with_spa)
  if key not in _EVAL_STEPS:
    _EVAL_STEPS[key] = inference.make_eval_step(config, mesh, with_spa=with_spa)
  return _EVAL_STEPS[key]


def predict_records(config: ml_collections.ConfigDict, variables: dict, records: Records, mesh: Mesh, *,
                    with_spa: bool = False, desc: str = "eval") -> np.ndarray:
  """hm predictions [N, 17, 3] float32 for every record (SPEC §6.1): fixed-size batches from
  `pivot.make_eval_dataset`, global arrays along "data", the jitted step of `inference.make_eval_step`."""
  batch_size = _eval_batch_size(config, mesh)
  step = _eval_step(config, mesh, with_spa)
  variables = jax.device_put(variables, sharding.replicated(mesh))
  # The flip test mirrors the crop on the device (inference.make_predict_fn), so no `image_flip` is decoded.
  dataset = pivot.make_eval_dataset(records, config, batch_size, flip_test=False)
  pred = np.full((len(records), skeleton.NUM_JOINTS, 3), np.nan, np.float32)

  def store(out):
    out = jax.device_get(out)
    keep = out["valid"] > 0
    pred[out["index"][keep]] = out["pred"][keep]

  pending = None  # one batch in flight while the next is read and sent
  for host_batch in tqdm(dataset.as_numpy_iterator(), total=max(1, math.ceil(len(records) / batch_size)),
                         desc=desc, unit="batch", leave=False, disable=jax.process_index() != 0):
    out = step(variables, sharding.to_global({k: host_batch[k] for k in ("image", "index", "valid")}, mesh))
    if pending is not None:
      store(pending)
    pending = out
  if pending is not None:
    store(pending)
  missing = np.isnan(pred).any(axis=(1, 2))
  if missing.any():
    raise RuntimeError(f"{records.info.name}: no prediction for {int(missing.sum())} of {len(records)} records "
                       f"(first index {int(np.argmax(missing))}); the eval dataset did not cover every record")
  return pred


def score(pred_hm: np.ndarray, records: Records, config: ml_collections.ConfigDict, protocol: Protocol, *,
          split: str = "test") -> tuple[dict, np.ndarray, np.ndarray]:
  """Back-projects hm predictions with the records' boxes, root depths and intrinsics (SPEC §6.2) and computes
  the protocol's metrics against records.joint_cam → (metrics, pred_cam, gt_cam), both root-aligned mm.

  `split="testInLoop"` computes MPJPE only (PA is skipped during training, SPEC §9 #26).
  """
  if not records.info.have_depth:
    raise DataError(f"{records.info.name} has no 3D ground truth (joint_cam); it cannot be evaluated in 3D")
  model = config.model
  pred_cam = backproject.hm_to_camera(pred_hm, records.bbox, records.root_cam[:, 2], records.f, records.c,
                                      hm_size=model.input_size / 4, depth_bins=model.depth_bins,
                                      depth_extent_mm=model.bbox_3d_depth_mm)
  pred_cam, gt_cam = backproject.root_align(pred_cam), backproject.root_align(records.joint_cam)
  with_pa = split == "test"
  if protocol.official_mupots and with_pa:
    result = metrics.evaluate_mupots_official(pred_cam, gt_cam, records.group, records.info.group_names)
  else:
    result = metrics.evaluate(pred_cam, gt_cam, bone_type=config.eval.bone_type, pa_scale=config.eval.pa_scale,
                              with_pa=with_pa, groups=records.group, group_names=records.info.group_names)
  header = {"dataset": records.info.name, "protocol": protocol.name, "split": split}
  return {**header, **result}, pred_cam, gt_cam


def _json_ready(value):
  """NaN → None (JSON null), NumPy scalars → Python numbers, recursively."""
  if isinstance(value, dict):
    return {k: _json_ready(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_ready(v) for v in value]
  if isinstance(value, (float, np.floating)):
    return None if math.isnan(value) else float(value)
  if isinstance(value, np.integer):
    return int(value)
  return value


def write_outputs(out_dir: str, tag: str, result: dict, protocol: Protocol, **arrays: dict) -> None:
  """metrics{tag}.json, tables{tag}.md and one `<stem>{tag}.npz` per keyword, written by process 0; every
  process returns once they are written (the next job may read them)."""
  if distributed.is_primary():
    os.makedirs(out_dir, exist_ok=True)
    for stem, content in arrays.items():
      np.savez(os.path.join(out_dir, f"{stem}{tag}.npz"), **content)
    with open(os.path.join(out_dir, f"metrics{tag}.json"), "w") as f:
      json.dump(_json_ready(result), f, indent=1)
    with open(os.path.join(out_dir, f"tables{tag}.md"), "w") as f:
      f.write(tables.evaluation_report(result, f"{result['dataset']}{tag}", protocol.group_metrics))
  distributed.barrier(f"write_outputs/{out_dir}/{tag}")


def run_evaluation(config: ml_collections.ConfigDict, variables: dict, records: Records, mesh: Mesh, out_dir: str,
                   *, split: str = "test", spa_variables: dict | None = None, tag: str = "") -> dict:
  """Evaluates G+T (`variables`, optionally + the SPA head) on `records` of `split`; writes pred_hm, pred_cam,
  metrics and tables (suffixed with `tag`) into out_dir and returns the metrics (SPEC §6)."""
  protocol = protocol_for(config, records.info.name)
  if spa_variables is not None:
    variables = {**variables, "spa": spa_variables}
  pred_hm = predict_records(config, variables, records, mesh, with_spa="spa" in variables,
                            desc=f"eval {records.info.name}{tag}")
  result, pred_cam, gt_cam = score(pred_hm, records, config, protocol, split=split)
  gt_hm, _ = augment.gt_hm_poses(records, config.model)
  write_outputs(out_dir, tag, result, protocol, pred_hm={"pred": pred_hm, "gt": gt_hm},
                pred_cam={"pred": pred_cam.astype(np.float32), "gt": gt_cam.astype(np.float32)})
  logging.info("%s %s%s: MPJPE %.1f mm over %d samples", records.info.name, protocol.name, tag, result["mpjpe"],
               result["count"])
  return result


def evaluate_hm_file(pred_hm_path: str, records: Records, config: ml_collections.ConfigDict, out_dir: str,
                     tag: str = "") -> dict:
  """Evaluates a pred_hm .npz (`pred` [N, 17, 3] hm) — SPA-adapted, a baseline or another model's (Table 2) —
  with the same back-projection and metrics; writes pred_cam, metrics and tables (tag-suffixed) to out_dir."""
  with np.load(pred_hm_path) as content:
    if "pred" not in content.files:
      raise DataError(f"{pred_hm_path}: no 'pred' array (found {content.files}); expected pred [N, 17, 3] hm")
    pred = np.asarray(content["pred"], np.float32)
  expected = (len(records), skeleton.NUM_JOINTS, 3)
  if pred.shape != expected:
    raise DataError(f"{pred_hm_path}: 'pred' has shape {pred.shape}, expected {expected} "
                    f"(one pose per {records.info.name} test record)")
  protocol = protocol_for(config, records.info.name)
  result, pred_cam, gt_cam = score(pred, records, config, protocol, split="test")
  write_outputs(out_dir, tag, result, protocol,
                pred_cam={"pred": pred_cam.astype(np.float32), "gt": gt_cam.astype(np.float32)})
  return result
