r"""The ablation of paper Table 1 on the embedded dataset: rows × seeds → docs/results/ablation.{md,json} + figures.

  ./run.sh ablation [--seeds N] [--steps N] [--quick]     # python -m ahup_jax.ablation --config=configs/ablation.py
  ./run.sh ablation --gap_table [--seeds N]                # source only with each domain gap closed → gaps.{md,json}
  ./run.sh ablation --gaps_closed=skeleton                 # every row on data with the skeleton gap closed
  ./run.sh ablation --gaps_widened=appearance              # every row on data whose real images look harsher
  ./run.sh ablation --d_probe [--rows=...]                 # can D tell the domains apart? (ahup_jax/d_probe.py)
  ./run.sh ablation --pretrained_from=rotation             # every G from a self-supervised G (train/pretrain.py)

Each (row, seed) trains one model in WORKDIR/<row slug>/seed_<n> (configs/ablation.py: a configs/saa.py variant
plus the shared budget), evaluates it on the Human36M-format test (S9, S11) and on the held-out training subject
(validation), fits and applies SPA where the row asks, and writes `results.json` there. A run whose results.json
exists is skipped on a rerun, an interrupted one resumes from its last checkpoint (loop.train), so the command is
resumable; `--previous=<ablation.json>` adds new rows to an earlier report without retraining its runs. The summary
holds mean ± std over seeds per row (MPJPE, PA-MPJPE, 3DPCK, AUC), the per-seed values, the share of the source-only
→ target-supervised gap each row closes, the predicted vs GT shoulder width and left/right sign agreement, the
source-domain test, and paired per-seed differences (`PAIRED`): SAA + Jo2D (± SPA) − source only, and each
discriminator row − the same batch without D.
The gap table (issue #18, deliverable 1) splits the source-only → target-supervised gap over the generator's domain
gaps (appearance, skeleton, proportions, pose, camera) by retraining source only with each closed in turn.
"""
from __future__ import annotations

if __name__ == "__main__":  # before jax loads: restart once with the fast malloc (ahup_jax/allocator.py)
  from ahup_jax import allocator
  allocator.restart_with_fast_malloc()

import json
import math
import os
import re
import time

import jax
import ml_collections
import numpy as np

from configs import ablation as ablation_configs
from configs import saa
from data_pipelines.synth import domains

METRICS = ("mpjpe", "pa_mpjpe", "pck150", "auc")
LOWER_IS_BETTER = {"mpjpe": True, "pa_mpjpe": True, "pck150": False, "auc": False}
SOURCE_ROW, TARGET_ROW, FULL_ROW = "source only", "target-supervised", "SAA + Jo2D"
NO_D_ROW, JO2D_NO_D_ROW = "source + 2D, no D", "source + 2D labels, no D"  # the batches of SAA / SAA + Jo2D, no D
# (row, baseline) pairs compared seed by seed: the method and SPA against source only, and each discriminator row
# against the same batch composition without D (what D itself adds, with and without the 2D labels).
PAIRED = ((FULL_ROW, SOURCE_ROW), (f"{FULL_ROW} + SPA", SOURCE_ROW), (f"{SOURCE_ROW} + SPA", SOURCE_ROW),
          (FULL_ROW, JO2D_NO_D_ROW), ("C", NO_D_ROW), ("C1", NO_D_ROW), ("SAA", NO_D_ROW),
          *((row, JO2D_NO_D_ROW if row.startswith(FULL_ROW) else NO_D_ROW) for row in ablation_configs.D_VARIANTS),
          *(pair for row in ablation_configs.D_VARIANTS if row.startswith("SAA (")
            for pair in ((row, "SAA"), (row, SOURCE_ROW))))
L_SHOULDER, R_SHOULDER = 11, 14  # skeleton.JOINT_NAMES
SELF_SUPERVISED = "rotation"  # --pretrained_from value: G pretrained by rotation prediction, not by a row's run
SOURCE_TESTSET = "ScanAva"  # every model is also tested on the source domain: how far the target test lags it
SOURCE_KEYS = ("source_mpjpe", "source_pa_mpjpe")
SPA_DIAGNOSTICS = ("descriptor_l1_to_target_before", "descriptor_l1_to_target_after", "descriptor_l1_to_test_gt_before",
                   "descriptor_l1_to_test_gt_after", "descriptor_l1_test_gt_to_target", "shoulder_hm_before",
                   "shoulder_hm_after", "shoulder_hm_gt")


def slug(row: str) -> str:
  """'SAA + Jo2D' → 'saa_jo2d' (the run folder of a row)."""
  return re.sub(r"[^a-z0-9]+", "_", row.lower()).strip("_")


def gap_label(gaps) -> str:
  """('appearance',) → 'appearance'; every gap → 'all' (the suffix of the generated data folder)."""
  return "all" if set(gaps) == set(domains.GAPS) else "_".join(gaps)


def data_variant(cfg: ml_collections.ConfigDict) -> list[str]:
  """['widened_<gaps>', 'closed_<gaps>'] for the generator settings that differ from the default data (each part
  present only when set): the suffix of the generated data folder and of the run folders."""
  parts = [f"widened_{gap_label(cfg.gaps_widened)}"] if cfg.gaps_widened else []
  return parts + ([f"closed_{gap_label(cfg.gaps_closed)}"] if cfg.gaps_closed else [])


def run_dir(cfg: ml_collections.ConfigDict, row: str, seed: int) -> str:
  """WORKDIR[/widened_<gaps>][/closed_<gaps>][/pretrained_<row>]/<row slug>/seed_<n>: runs on other data or from
  another initial G never mix."""
  pretrained = [f"pretrained_{slug(cfg.pretrained_from)}"] if cfg.pretrained_from else []
  return os.path.join(cfg.workdir, *data_variant(cfg), *pretrained, slug(row), f"seed_{seed}")


def rotation_dir(cfg: ml_collections.ConfigDict, seed: int) -> str:
  """WORKDIR[/widened_<gaps>][/closed_<gaps>]/rotation_pretraining/seed_<n>: the self-supervised G of one seed."""
  return os.path.join(cfg.workdir, *data_variant(cfg), "rotation_pretraining", f"seed_{seed}")


def pretrained_export(cfg: ml_collections.ConfigDict, seed: int) -> str:
  """Where `pretrained_backbone` keeps the initial G of `seed`'s runs (written or not)."""
  base = cfg.copy_and_resolve_references()
  base.pretrained_from = ""
  if cfg.pretrained_from == SELF_SUPERVISED:
    return os.path.join(rotation_dir(base, seed), "export_G")
  return os.path.join(run_dir(base, cfg.pretrained_from, seed), "export_G")


def pretrained_backbone(cfg: ml_collections.ConfigDict, seed: int) -> str:
  """The export holding the initial G of `seed`'s runs, written once to <its folder>/export_G; returns that folder.

  `cfg.pretrained_from` a row: G of that row's run of `seed` (same data and budget, G from scratch; trained first
  when not finished). SELF_SUPERVISED: G pretrained by rotation prediction (ahup_jax/train/pretrain.py) on the crops
  of SAA's training sets, no labels, the runs' budget and batches.
  """
  from ahup_jax import checkpoint
  base = cfg.copy_and_resolve_references()
  base.pretrained_from = ""
  path = pretrained_export(cfg, seed)
  workdir = os.path.dirname(path)
  if cfg.pretrained_from == SELF_SUPERVISED:
    if not os.path.isdir(path):
      from ahup_jax import jobs
      from ahup_jax.train import pretrain
      config = row_config(base, NO_D_ROW, seed)  # SAA's sets and batches; their labels are not read
      jobs.ensure_synth_data(config)
      g = pretrain.pretrain(config, workdir)
      checkpoint.save_export(path, {k: {"G": g[k]} for k in ("params", "batch_stats")})
    return path
  if not os.path.isdir(path):
    run_one(base, cfg.pretrained_from, seed)
    from ahup_jax import jobs
    variables = jobs.restore_variables(row_config(base, cfg.pretrained_from, seed), workdir)
    checkpoint.save_export(path, jax.device_get({k: {"G": variables[k]["G"]} for k in ("params", "batch_stats")}))
  return path


# ----------------------------------------------------------------------------------------------- configs
def row_config(cfg: ml_collections.ConfigDict, row: str, seed: int) -> ml_collections.ConfigDict:
  """The training config of one (row, seed): the row's configs/saa.py variant on `cfg.preset`, the shared budget."""
  if row not in ablation_configs.ROWS:
    raise ValueError(f"unknown ablation row {row!r}; expected one of {list(ablation_configs.ROWS)}")
  variant, overrides, _ = ablation_configs.ROWS[row]
  c = saa.get_config(",".join(filter(None, (cfg.preset, variant))))
  for key, value in overrides.items():
    section, field = key.split(".")
    c[section][field] = value
  c.seed = int(seed)
  c.data.root = cfg.data_root or c.data.root
  variant = data_variant(cfg)
  if variant:  # generated next to the unchanged data
    c.synth.gaps_closed, c.synth.gaps_widened = tuple(cfg.gaps_closed), tuple(cfg.gaps_widened)
    c.data.root = "_".join([c.data.root.rstrip("/"), *variant])
  c.data.h36m_holdout_subjects = (int(cfg.val_subject),)
  t = cfg.train
  epochs = 4 if t.steps >= 4 else 1
  size = int(t.input_size)
  c.model.input_size, c.model.depth_bins = size, size // 4
  c.model.dtype = str(t.dtype)
  c.train.update(epochs=epochs, iters_per_epoch=max(1, int(t.steps) // epochs), batch_size=int(t.batch_size),
                 lr=float(t.lr), epoch_regZ=min(1, epochs - 1), lr_dec_epochs=(max(1, epochs - 1),),
                 checkpoint_every_steps=10 ** 9, save_every_epochs=10 ** 6, keep_checkpoints=1,
                 log_every_steps=max(1, int(t.steps) // 40), sample_images_every_epochs=0)
  c.eval.flip_test = bool(cfg.flip_test)
  c.eval.in_loop_split = ""  # no in-loop look at the test subjects (readers reject the split: validation off)
  c.spa.update(epochs=int(cfg.spa_epochs), pose_scale=64 / c.model.depth_bins, seed=int(seed))
  return c


# ----------------------------------------------------------------------------------------------- one run
def shoulder_stats(pred_cam: np.ndarray, gt_cam: np.ndarray) -> dict:
  """Left/right separation of root-relative poses [N, 17, 3] mm: mean 3D shoulder width of prediction and GT,
  and how often the sign of x(L_Shoulder) − x(R_Shoulder) (which way the person faces) is right."""
  def width(p):
    return float(np.linalg.norm(p[:, L_SHOULDER] - p[:, R_SHOULDER], axis=-1).mean())
  dx_pred = pred_cam[:, L_SHOULDER, 0] - pred_cam[:, R_SHOULDER, 0]
  dx_gt = gt_cam[:, L_SHOULDER, 0] - gt_cam[:, R_SHOULDER, 0]
  return {"width_pred_mm": width(pred_cam), "width_gt_mm": width(gt_cam),
          "lr_sign_agreement": float(np.mean(np.sign(dx_pred) == np.sign(dx_gt)))}


def validation_records(config: ml_collections.ConfigDict, subject: int, every: int = 1):
  """Human36M training-split records of the held-out subject (the validation split), every `every`-th."""
  from data_pipelines import readers
  from data_pipelines.readers import human36m
  data = config.data.copy_and_resolve_references()
  data.h36m_holdout_subjects = ()
  records = readers.load("Human36M", data, "train")
  return records.subset(np.flatnonzero(human36m.subject_mask(records, (subject,)))[::max(1, int(every))])


def _pick(metrics: dict) -> dict:
  return {k: float(metrics[k]) for k in (*METRICS, "count") if k in metrics}


def spa_diagnostics(workdir: str, target_poses_path: str) -> dict:
  """How SPA moved one model's test predictions (WORKDIR/eval, tags '' and '_spa'): the L1 distance of their mean
  skeletal descriptor (SPEC §7.2) to the target descriptor SPA was fitted to and to the test GT's, and the mean
  shoulder width (hm px: the descriptor's denominator), before and after; the per-joint error [17] mm too."""
  from ahup_jax.spa import data as spa_data
  from ahup_jax.spa import descriptor
  target = spa_data.target_descriptor_from(target_poses_path)
  with np.load(os.path.join(workdir, "eval", "pred_hm.npz")) as hm:
    gt = hm["gt"]
  gt_descriptor = descriptor.mean_descriptor(gt)
  out = {}
  for when, tag in (("before", ""), ("after", "_spa")):
    with np.load(os.path.join(workdir, "eval", f"pred_hm{tag}.npz")) as hm:
      pred = hm["pred"]
    mean = descriptor.mean_descriptor(pred)
    out[f"descriptor_l1_to_target_{when}"] = float(np.abs(mean - target).sum())
    out[f"descriptor_l1_to_test_gt_{when}"] = float(np.abs(mean - gt_descriptor).sum())
    out[f"shoulder_hm_{when}"] = float(np.linalg.norm(pred[:, L_SHOULDER] - pred[:, R_SHOULDER], axis=-1).mean())
    with np.load(os.path.join(workdir, "eval", f"pred_cam{tag}.npz")) as cam:
      out[f"joint_error_mm_{when}"] = np.linalg.norm(cam["pred"] - cam["gt"], axis=-1).mean(0).tolist()
  out["shoulder_hm_gt"] = float(np.linalg.norm(gt[:, L_SHOULDER] - gt[:, R_SHOULDER], axis=-1).mean())
  out["descriptor_l1_test_gt_to_target"] = float(np.abs(gt_descriptor - target).sum())
  return out


def _target_poses_path(config: ml_collections.ConfigDict, workdir: str) -> str:
  from ahup_jax import jobs
  return os.path.join(workdir, "poses", f"{jobs.SPA_TARGET_SOURCE[config.data.testset]}_hm.json")


def run_one(cfg: ml_collections.ConfigDict, row: str, seed: int) -> dict:
  """Trains, evaluates (test, source test, validation, + SPA when the row asks) one (row, seed); results.json in
  its folder. An existing results.json is returned as is (resumability)."""
  workdir = run_dir(cfg, row, seed)
  path = os.path.join(workdir, "results.json")
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  from ahup_jax import jobs, sharding
  from ahup_jax.evaluation import protocols
  from ahup_jax.train import loop
  config = row_config(cfg, row, seed)
  jobs.ensure_synth_data(config)
  if cfg.pretrained_from:
    config.model.pretrained_backbone = pretrained_backbone(cfg, seed)
  os.makedirs(workdir, exist_ok=True)
  start = time.time()
  state = loop.train(config, workdir)
  variables = loop.inference_variables(state)
  train_s = time.time() - start
  result = {"row": row, "seed": int(seed), "trainset": list(config.data.trainset), "steps": int(state.step),
            "batch_size": int(config.train.batch_size), "input_size": int(config.model.input_size),
            "train_s": train_s, "pretrained_backbone": config.model.pretrained_backbone}
  result["test"] = _pick(jobs.evaluate(config, workdir, variables=variables))
  with np.load(os.path.join(workdir, "eval", "pred_cam.npz")) as cam:
    result["shoulder"] = shoulder_stats(cam["pred"], cam["gt"])
  result["source_test"] = _pick(jobs.evaluate(config, workdir, variables=variables, testset=SOURCE_TESTSET))
  val = protocols.run_evaluation(config, variables, validation_records(config, cfg.val_subject, cfg.val_every),
                                 sharding.make_mesh(config.mesh), os.path.join(workdir, "eval_val"))
  result["val"] = _pick(val)
  if ablation_configs.ROWS[row][2]:
    spa_variables = jobs.fit_spa(config, workdir)
    result["spa_test"] = _pick(jobs.evaluate(config, workdir, variables=variables, spa_variables=spa_variables,
                                             tag="_spa"))
    with np.load(os.path.join(workdir, "eval", "pred_cam_spa.npz")) as cam:
      result["spa_shoulder"] = shoulder_stats(cam["pred"], cam["gt"])
    result["spa_diagnostics"] = spa_diagnostics(workdir, _target_poses_path(config, workdir))
  from ahup_jax import figures
  curves = figures.read_scalars(os.path.join(workdir, "tensorboard"))
  result["final_train"] = {tag.split("/", 1)[1]: float(v[-1]) for tag, (_, v) in curves.items()
                           if tag.startswith("train/")}
  result["total_s"] = time.time() - start
  with open(path, "w") as f:
    json.dump(result, f, indent=1)
  return result


# ----------------------------------------------------------------------------------------------- summary
def _mean_std(values: list[float]) -> tuple[float, float]:
  values = np.asarray(values, np.float64)
  return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def table_rows(runs: dict[str, list[dict]]) -> dict[str, list[dict]]:
  """{table row: per-seed [{metric: value, shoulder…}]}: each trained row, plus '<row> + SPA' where SPA ran."""
  out = {}
  for row, results in runs.items():
    out[row] = [{**r["test"], **r["shoulder"], "seed": r["seed"], **(
        {f"source_{k}": v for k, v in r["source_test"].items()} if "source_test" in r else {})} for r in results]
    if all("spa_test" in r for r in results) and results:
      out[f"{row} + SPA"] = [{**r["spa_test"], **r["spa_shoulder"], "seed": r["seed"]} for r in results]
  return out


def summarize(runs: dict[str, list[dict]]) -> dict:
  """Mean ± std per table row, per-seed values, gap shares and the paired comparisons (see the module doc)."""
  rows = table_rows(runs)
  summary = {"rows": {}, "paired": {}}
  for name, per_seed in rows.items():
    keys = (*METRICS, "width_pred_mm", "width_gt_mm", "lr_sign_agreement",
            *(k for k in SOURCE_KEYS if all(k in r for r in per_seed)))
    entry = {"seeds": [r["seed"] for r in per_seed], "per_seed": {k: [r[k] for r in per_seed] for k in keys}}
    entry.update({k: dict(zip(("mean", "std"), _mean_std(entry["per_seed"][k]))) for k in keys})
    if name in runs:
      entry["val"] = {k: dict(zip(("mean", "std"), _mean_std([r["val"][k] for r in runs[name]]))) for k in METRICS}
    summary["rows"][name] = entry
  source, target = summary["rows"].get(SOURCE_ROW), summary["rows"].get(TARGET_ROW)
  for name, entry in summary["rows"].items():
    entry["gap_closed"] = {}
    for k in METRICS:
      if source and target and abs(target[k]["mean"] - source[k]["mean"]) > 1e-9:
        entry["gap_closed"][k] = (source[k]["mean"] - entry[k]["mean"]) / (source[k]["mean"] - target[k]["mean"])
  for name, baseline in PAIRED:
    if name not in rows or baseline not in rows:
      continue
    base = {r["seed"]: r for r in rows[baseline]}
    pairs = [(r, base[r["seed"]]) for r in rows[name] if r["seed"] in base]
    summary["paired"][f"{name} − {baseline}"] = {
        k: {"differences": [a[k] - b[k] for a, b in pairs],
            **dict(zip(("mean", "std"), _mean_std([a[k] - b[k] for a, b in pairs])))} for k in METRICS}
  return summary


def markdown_table(summary: dict) -> str:
  """The results table (mean ± std over seeds, gap share, shoulder width) and the paired comparison."""
  def ms(entry, k, digits=1):
    return f"{entry[k]['mean']:.{digits}f} ± {entry[k]['std']:.{digits}f}"
  lines = ["| row | seeds | MPJPE | PA-MPJPE | 3DPCK | AUC | gap closed (MPJPE / PA) | shoulder width pred / GT (mm) "
           "| L/R sign right | val MPJPE / PA (S held out) | source test MPJPE / PA |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  for name, e in summary["rows"].items():
    gap = e["gap_closed"]
    gap_text = (f"{100 * gap['mpjpe']:.0f} % / {100 * gap['pa_mpjpe']:.0f} %" if "mpjpe" in gap else "–")
    val = f"{e['val']['mpjpe']['mean']:.1f} / {e['val']['pa_mpjpe']['mean']:.1f}" if "val" in e else "–"
    lines.append(f"| {name} | {len(e['seeds'])} | {ms(e, 'mpjpe')} | {ms(e, 'pa_mpjpe')} | {ms(e, 'pck150')} | "
                 f"{ms(e, 'auc')} | {gap_text} | {e['width_pred_mm']['mean']:.0f} / {e['width_gt_mm']['mean']:.0f} | "
                 f"{100 * e['lr_sign_agreement']['mean']:.0f} % | {val} | {_source_cell(e)} |")
  lines += ["", "Per-seed values (MPJPE / PA-MPJPE, mm):", "", "| row | " + " | ".join(
      f"seed {s}" for s in next(iter(summary["rows"].values()))["seeds"]) + " |",
            "|---|" + "---|" * len(next(iter(summary["rows"].values()))["seeds"])]
  for name, e in summary["rows"].items():
    cells = [f"{a:.1f} / {b:.1f}" for a, b in zip(e["per_seed"]["mpjpe"], e["per_seed"]["pa_mpjpe"])]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  if summary["paired"]:
    lines += ["", "Paired per-seed differences (row − baseline, same seed; negative MPJPE = better):", "",
              "| comparison | ΔMPJPE | ΔPA-MPJPE | Δ3DPCK | ΔAUC | per-seed ΔPA-MPJPE |", "|---|---|---|---|---|---|"]
    for name, p in summary["paired"].items():
      lines.append(f"| {name} | " + " | ".join(f"{p[k]['mean']:+.1f} ± {p[k]['std']:.1f}" for k in METRICS)
                   + " | " + ", ".join(f"{d:+.1f}" for d in p["pa_mpjpe"]["differences"]) + " |")
  return "\n".join(lines) + "\n"


def _source_cell(entry: dict) -> str:
  if "source_pa_mpjpe" not in entry:
    return "–"
  return f"{entry['source_mpjpe']['mean']:.1f} / {entry['source_pa_mpjpe']['mean']:.1f}"


# ----------------------------------------------------------------------------------------------- the job
def _setup_cache(cfg: ml_collections.ConfigDict) -> None:
  """One persistent XLA cache for every run: after the first run, each compile is a cache hit."""
  os.makedirs(cfg.out_dir, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", os.path.abspath(os.path.join(cfg.workdir, "jax_cache")))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def run_many(todo: list[tuple[ml_collections.ConfigDict, str, int]], tag: str = "ablation") -> list[dict]:
  """run_one for each (config, row, seed), skipping finished ones, with progress and time left on stdout."""
  def finished(c, row, seed):
    return os.path.exists(os.path.join(run_dir(c, row, seed), "results.json"))
  start, fresh, results = time.time(), 0, []
  for k, (c, row, seed) in enumerate(todo, 1):
    where = f"[{tag} {k}/{len(todo)}] {row}{gap_note(c)}, seed {seed}"
    done_before = finished(c, row, seed)
    print(f"{where}: " + ("done before, skipped" if done_before else f"training {c.train.steps} steps…"), flush=True)
    t0 = time.time()
    result = run_one(c, row, seed)
    results.append(result)
    if not done_before:
      fresh += 1
      eta = (time.time() - start) / fresh * sum(not finished(*job) for job in todo[k:])
      spa = f", + SPA PA-MPJPE {result['spa_test']['pa_mpjpe']:.1f}" if "spa_test" in result else ""
      print(f"{where}: {time.time() - t0:.0f} s; test MPJPE {result['test']['mpjpe']:.1f}, PA-MPJPE "
            f"{result['test']['pa_mpjpe']:.1f}{spa}; about {eta / 60:.0f} min left", flush=True)
  return results


def gap_note(cfg: ml_collections.ConfigDict) -> str:
  notes = [f"{gap_label(cfg.gaps_widened)} gap widened"] if cfg.gaps_widened else []
  notes += [f"source with the {gap_label(cfg.gaps_closed)} gap closed"] if cfg.gaps_closed else []
  notes += [f"G from '{cfg.pretrained_from}'"] if cfg.pretrained_from else []
  return f" ({'; '.join(notes)})" if notes else ""


# What must match for an earlier run to stand in a table with new ones: the data, the budget and the evaluation.
COMPARABLE = ("preset", "data_root", "val_subject", "val_every", "flip_test", "spa_epochs", "gaps_closed",
              "gaps_widened", "pretrained_from", "train")


def adopt_previous(cfg: ml_collections.ConfigDict, path: str) -> list[tuple[str, int]]:
  """Copies the finished runs of an earlier report (its ablation.json) into `cfg`'s run folders as results.json, so
  new rows join a table without retraining the old ones. Only rows in cfg.rows and seeds < cfg.seeds; runs already
  in the folders win. ValueError naming the setting when the earlier report was made with other data, budget or
  evaluation. Returns the (row, seed) pairs adopted. Figures need the run folders: adopted rows have none."""
  with open(path) as f:
    previous = json.load(f)
  if "config" not in previous or "runs" not in previous:
    raise ValueError(f"{path}: not an ablation.json (expected the keys 'config' and 'runs')")
  def plain(value):
    return json.loads(json.dumps(value.to_dict() if hasattr(value, "to_dict") else value, default=_plain))
  defaults = ablation_configs.get_config()
  for key in COMPARABLE:
    old, new = previous["config"].get(key, plain(defaults[key])), plain(cfg[key])  # absent: added since
    if isinstance(old, dict):  # settings added since that report held their default value then
      old = {**plain(defaults[key]), **old}
    if old != new:
      raise ValueError(f"{path}: config.{key} was {old!r} there but is {new!r} now; its runs are not comparable "
                       "(rerun them, or pass the same settings)")
  adopted = []
  for row in cfg.rows:
    for result in previous["runs"].get(row, []):
      seed = int(result["seed"])
      target = os.path.join(run_dir(cfg, row, seed), "results.json")
      if seed >= cfg.seeds or os.path.exists(target):
        continue
      os.makedirs(os.path.dirname(target), exist_ok=True)
      with open(target, "w") as f:
        json.dump(result, f, indent=1)
      adopted.append((row, seed))
  print(f"adopted {len(adopted)} finished run(s) from {path}", flush=True)
  return adopted


def run(cfg: ml_collections.ConfigDict) -> dict:
  """Every (row, seed) of `cfg` (skipping finished ones), then the summary, the report and the figures."""
  _setup_cache(cfg)
  if cfg.get("previous"):
    adopt_previous(cfg, cfg.previous)
  todo = [(cfg, row, seed) for row in cfg.rows for seed in range(cfg.seeds)]
  runs: dict[str, list[dict]] = {row: [] for row in cfg.rows}
  for (_, row, _), result in zip(todo, run_many(todo)):
    runs[row].append(result)
  summary = summarize(runs)
  summary["config"] = cfg.to_dict()
  summary["runs"] = runs
  with open(os.path.join(cfg.out_dir, "ablation.json"), "w") as f:
    json.dump(summary, f, indent=1, default=_plain)
  figures_written = []
  if cfg.figures:
    from ahup_jax import figures
    figures_written = figures.ablation_figures(cfg, summary)
  write_report(cfg, summary, figures_written)
  print(markdown_table(summary), flush=True)
  return summary


# ----------------------------------------------------------------------------------------------- gap table
def gap_configs(cfg: ml_collections.ConfigDict) -> dict[str, ml_collections.ConfigDict]:
  """{gap: ablation config whose source data have that gap closed} for cfg.gap_table ('all' = every gap)."""
  out = {}
  for gap in cfg.gap_table:
    c = cfg.copy_and_resolve_references()
    c.gaps_closed = tuple(domains.GAPS) if gap == "all" else (gap,)
    out[gap] = c
  return out


def run_gap_table(cfg: ml_collections.ConfigDict) -> dict:
  """Source only trained with each domain gap closed in turn (the generator gives the source the target's setting),
  against source only and target-supervised on the unchanged data (the ablation's own runs when they exist):
  how much of the source-only → target-supervised gap each domain gap accounts for → gaps.md, gaps.json."""
  if cfg.gaps_closed:
    raise ValueError("the gap table closes the gaps itself; run it without config.gaps_closed")
  _setup_cache(cfg)
  seeds = range(cfg.seeds)
  entries = {"none (source only)": (cfg, SOURCE_ROW), **{gap: (c, SOURCE_ROW) for gap, c in gap_configs(cfg).items()},
             TARGET_ROW: (cfg, TARGET_ROW)}
  todo = [(c, row, seed) for c, row in entries.values() for seed in seeds]
  results = iter(run_many(todo, tag="gaps"))
  runs = {name: [next(results) for _ in seeds] for name in entries}
  summary = summarize_gaps(runs)
  summary["config"] = cfg.to_dict()
  summary["runs"] = runs
  with open(os.path.join(cfg.out_dir, "gaps.json"), "w") as f:
    json.dump(summary, f, indent=1, default=_plain)
  write_gap_report(cfg, summary)
  print(gap_markdown_table(summary), flush=True)
  return summary


def summarize_gaps(runs: dict[str, list[dict]]) -> dict:
  """Per entry: mean ± std of the target-test metrics, the source test and L/R sign; the paired per-seed change
  against source only, and the share of the source-only → target-supervised gap it closes (of the means)."""
  base_name = "none (source only)"
  base = {r["seed"]: r for r in runs[base_name]}
  rows = {}
  for name, results in runs.items():
    values = {k: [r["test"][k] for r in results] for k in METRICS}
    values["source_pa_mpjpe"] = [r["source_test"]["pa_mpjpe"] for r in results]
    values["lr_sign_agreement"] = [r["shoulder"]["lr_sign_agreement"] for r in results]
    entry = {"seeds": [r["seed"] for r in results], "per_seed": values}
    entry.update({k: dict(zip(("mean", "std"), _mean_std(v))) for k, v in values.items()})
    entry["paired"] = {k: dict(zip(("mean", "std"), _mean_std(
        [r["test"][k] - base[r["seed"]]["test"][k] for r in results if r["seed"] in base]))) for k in METRICS}
    if all("spa_diagnostics" in r for r in results):  # SPA on this model: same-seed change and why
      entry["spa"] = {f"delta_{k}": dict(zip(("mean", "std"), _mean_std(
          [r["spa_test"][k] - r["test"][k] for r in results]))) for k in METRICS}
      entry["spa"].update({k: dict(zip(("mean", "std"), _mean_std([r["spa_diagnostics"][k] for r in results])))
                           for k in SPA_DIAGNOSTICS})
    rows[name] = entry
  for entry in rows.values():
    entry["gap_closed"] = {}
    for k in METRICS:
      total = rows[base_name][k]["mean"] - rows[TARGET_ROW][k]["mean"]
      if abs(total) > 1e-9:
        entry["gap_closed"][k] = (rows[base_name][k]["mean"] - entry[k]["mean"]) / total
  return {"rows": rows}


def gap_markdown_table(summary: dict) -> str:
  def ms(entry, k):
    return f"{entry[k]['mean']:.1f} ± {entry[k]['std']:.1f}"
  lines = ["| source trained with … closed | seeds | MPJPE | PA-MPJPE | Δ MPJPE / Δ PA-MPJPE vs source only (paired) "
           "| share of the gap closed (MPJPE / PA) | L/R sign right | source test PA-MPJPE |",
           "|---|---|---|---|---|---|---|---|"]
  for name, e in summary["rows"].items():
    label = "target-supervised (trained on the target)" if name == TARGET_ROW else name
    gap = e["gap_closed"]
    lines.append(f"| {label} | {len(e['seeds'])} | {ms(e, 'mpjpe')} | {ms(e, 'pa_mpjpe')} | "
                 f"{e['paired']['mpjpe']['mean']:+.1f} ± {e['paired']['mpjpe']['std']:.1f} / "
                 f"{e['paired']['pa_mpjpe']['mean']:+.1f} ± {e['paired']['pa_mpjpe']['std']:.1f} | "
                 f"{_percent(gap.get('mpjpe', 0))} / {_percent(gap.get('pa_mpjpe', 0))} | "
                 f"{100 * e['lr_sign_agreement']['mean']:.0f} % | {ms(e, 'source_pa_mpjpe')} |")
  spa_rows = {name: e["spa"] for name, e in summary["rows"].items() if "spa" in e}
  if spa_rows:
    lines += ["", "SPA applied to these source-only models (same seed, after − before; descriptor = mean skeletal "
              "descriptor of the test predictions, L1 over its 16 entries; shoulder width in heatmap px):", "",
              "| source trained with … closed | Δ MPJPE | Δ PA-MPJPE | descriptor L1 to SPA's target: before → after "
              "| to the test GT: before → after | test GT to SPA's target | shoulder width before → after (GT) |",
              "|---|---|---|---|---|---|---|"]
    for name, e in spa_rows.items():
      mean = {k: v["mean"] for k, v in e.items()}
      lines.append(f"| {name} | {ms(e, 'delta_mpjpe')} | {ms(e, 'delta_pa_mpjpe')} | "
                   f"{mean['descriptor_l1_to_target_before']:.2f} → {mean['descriptor_l1_to_target_after']:.2f} | "
                   f"{mean['descriptor_l1_to_test_gt_before']:.2f} → {mean['descriptor_l1_to_test_gt_after']:.2f} | "
                   f"{mean['descriptor_l1_test_gt_to_target']:.2f} | {mean['shoulder_hm_before']:.2f} → "
                   f"{mean['shoulder_hm_after']:.2f} ({mean['shoulder_hm_gt']:.2f}) |")
  return "\n".join(lines) + "\n"


def _percent(share: float) -> str:
  return f"{100 * share + 0.0:.0f} %".replace("-0 %", "0 %")


def write_gap_report(cfg: ml_collections.ConfigDict, summary: dict) -> str:
  """gaps.md: how it was run and the table; a hand-written reading after '## Reading' is kept."""
  t = cfg.train
  steps = next(r["steps"] for results in summary["runs"].values() for r in results)
  head = ["# Domain gaps of the embedded dataset: source-only error with each gap closed", "",
          f"Generated by `./run.sh ablation --gap_table` (`ahup_jax/ablation.py`). Preset `{cfg.preset}`, "
          f"{cfg.seeds} training seed(s) per entry, {steps} steps of batch {t.batch_size} at {t.input_size}² "
          "(ResNet-18 from scratch, the ablation's schedule). Each entry trains the `source only` row on data "
          "generated with one of the generator's domain gaps closed (`python -m data_pipelines.synth "
          "--close-gaps GAP`: the ScanAva-format source takes the Human36M-format target's setting for it; the "
          "target and its test are unchanged), "
          "and is tested on the target test (S9 + S11). 'share of the gap' = (source only − entry) / (source only − "
          "target-supervised) of the seed means; Δ columns pair each seed with source only's same seed. "
          "'source test' = the model on the source's own test split.", "", gap_markdown_table(summary)]
  return _write_keeping(os.path.join(cfg.out_dir, "gaps.md"), "\n".join(head), "\n## Reading")


def _write_keeping(path: str, generated: str, marker: str) -> str:
  """Writes `generated` to `path`, keeping the hand-written text from `marker` on of the file already there."""
  kept = ""
  if os.path.exists(path):
    with open(path) as f:
      text = f.read()
    if marker in text:
      kept = text[text.index(marker):]
  with open(path, "w") as f:
    f.write(generated + (kept or f"{marker}\n\n(not written yet)\n"))
  return path


def _plain(value):
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  if isinstance(value, (tuple, set)):
    return list(value)
  raise TypeError(f"not JSON serialisable: {type(value)}")


REPORT_TOP = "<!-- ablation: generated table below, verdict kept -->"


def write_report(cfg: ml_collections.ConfigDict, summary: dict, figures_written: list[str]) -> str:
  """ablation.md: how it was run, the table, the figures; a hand-written verdict after '## Verdict' is kept."""
  runs = summary["runs"]
  any_run = next(r for results in runs.values() for r in results)
  total = sum(r["total_s"] for results in runs.values() for r in results)
  t = cfg.train
  init = "ResNet-18 from scratch"
  if cfg.pretrained_from == SELF_SUPERVISED:
    init = ("ResNet-18 initialised from G pretrained by rotation prediction on the crops of the source and 2D sets "
            "(no labels, the same budget and batches; ahup_jax/train/pretrain.py) — the domain-general stand-in "
            "for ImageNet init; T and D from scratch")
  elif cfg.pretrained_from:
    init = (f"ResNet-18 initialised from G of the same seed's finished '{cfg.pretrained_from}' run on the same "
            "data and budget — the stand-in for ImageNet init; T and D from scratch")
  head = [
      "# Ablation on the embedded dataset (paper Table 1 in miniature)", "",
      "Generated by `./run.sh ablation` (`ahup_jax/ablation.py`, `configs/ablation.py`). "
      f"Preset `{cfg.preset}`{gap_note(cfg)}, "
      f"{cfg.seeds} training seed(s) per row (same generated data), {any_run['steps']} steps of batch "
      f"{t.batch_size} at "
      f"{t.input_size}² ({init}, Adam {t.lr:g}, ×0.1 for the last quarter), SPA {cfg.spa_epochs} "
      f"epochs. Human36M-format test = S9 + S11 ({int(any_run['test']['count'])} crops, "
      f"{'flip test' if cfg.flip_test else 'no flip test'}, rigid PA); "
      f"S{cfg.val_subject} is held out of every training split as the validation split (val column). "
      f"Sum of the runs' wall times: {total / 60:.1f} min.", "",
      "Rows: **target-supervised** = trained on the target's own 3D training subjects (the 'Sun et al.' upper "
      "bound); **source only** = ScanAva-format 3D alone (`noadapt_only`); **source + 2D, no D** = the 2D sets "
      "in the batch without labels or D (`noadapt`); **source + 2D labels, no D** = Jo2D without a discriminator "
      "(`noadapt_jo2d`, the control for SAA + Jo2D's D); **C**, **C1**, **SAA** = the discriminators without Jo2D; "
      f"**SAA + Jo2D** = the default (λ_D {saa.get_config().adapt.lmd_D:g}; 'X (λ_D v)' = row X with λ_D = v; "
      "'X (kn_D 3)' = row X with D's 3x3 kernels instead of 1x1; 'X (5 D steps)' = row X with 5 D updates per "
      "iteration on the same features; 'X (adv. SGD η v)' = row X with G's adversarial gradient applied by plain SGD "
      "at rate v beside Adam's step on L_coord). "
      "'+ SPA' rows apply the SPA head fitted to the held-in target training poses. 'gap closed' = (source only "
      "− row) / (source only − target-supervised) of the seed means. Shoulder width = mean 3D distance L–R "
      "shoulder of the root-relative poses; 'L/R sign right' = share of test crops where x(L_Shoulder) − "
      "x(R_Shoulder) has the GT's sign (50 % = which way the person faces is a coin toss).", "",
      REPORT_TOP, "", markdown_table(summary)]
  if figures_written:
    head += ["Figures:", ""] + [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in figures_written] + [""]
  return _write_keeping(os.path.join(cfg.out_dir, "ablation.md"), "\n".join(head), "\n## Verdict")


def main(argv) -> None:
  from absl import app, flags
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  values = flags.FLAGS
  cfg = ablation_configs.get_config("quick") if values.quick else _CONFIG.value
  cfg = cfg.copy_and_resolve_references()
  for name in ("seeds", "workdir", "out_dir", "data_root", "figures", "previous"):
    if values[name].present or (name == "figures" and not values.figures):
      cfg[name] = values[name].value
  if values.steps is not None:
    cfg.train.steps = values.steps
  if values.rows:
    cfg.rows = tuple(values.rows)
  if values.gaps_closed:
    cfg.gaps_closed = tuple(values.gaps_closed)
  if values.gaps_widened:
    cfg.gaps_widened = tuple(values.gaps_widened)
  if values.pretrained_from:
    if values.pretrained_from not in (*ablation_configs.ROWS, SELF_SUPERVISED):
      raise app.UsageError(f"--pretrained_from={values.pretrained_from!r}: expected '{SELF_SUPERVISED}' or a "
                           f"row, one of {list(ablation_configs.ROWS)}")
    cfg.pretrained_from = values.pretrained_from
  if values.d_probe:
    from ahup_jax import d_probe
    d_probe.run(cfg, values.d_probe_steps, [float(v) for v in values.d_probe_lmd])
  else:
    run_gap_table(cfg) if values.gap_table else run(cfg)


if __name__ == "__main__":
  from absl import app, flags
  from ml_collections import config_flags
  _CONFIG = config_flags.DEFINE_config_file("config", "configs/ablation.py", "configs/ablation.py[:quick].")
  flags.DEFINE_bool("quick", False, "configs/ablation.py:quick (synth_tiny, 2 rows, 1 seed, a few steps); "
                    "--config.* overrides then do not apply, the flags below do.")
  flags.DEFINE_integer("seeds", 3, "training seeds per row (overrides config.seeds when given).")
  flags.DEFINE_integer("steps", None, "SAA steps per run (overrides config.train.steps).")
  flags.DEFINE_list("rows", [], "rows to run (default config.rows), e.g. 'source only,SAA + Jo2D'.")
  flags.DEFINE_string("workdir", "", "run folders (overrides config.workdir when given).")
  flags.DEFINE_string("out_dir", "", "report, JSON and figures (overrides config.out_dir when given).")
  flags.DEFINE_string("data_root", "", "embedded data folder (overrides config.data_root when given).")
  flags.DEFINE_bool("figures", True, "write the figures (--nofigures: only the table and JSON).")
  flags.DEFINE_string("previous", "", "an earlier report's ablation.json: its finished runs join this table "
                      "without retraining (same data, budget and evaluation, or an error says which setting differs).")
  flags.DEFINE_list("gaps_closed", [], f"train every row on data whose source has these gaps closed (of "
                    f"{', '.join(domains.GAPS)}), generated into <preset folder>_closed_<gaps>.")
  flags.DEFINE_list("gaps_widened", [], f"train every row on data whose real-looking domains (target and 2D sets) "
                    f"have these gaps made harsher (of {', '.join(domains.WIDER)}), generated into "
                    "<preset folder>_widened_<gaps>.")
  flags.DEFINE_string("pretrained_from", "", "a row (e.g. 'source only'): every run's G starts from that row's "
                      "finished run of the same seed (trained first when missing), a stand-in for ImageNet init; "
                      f"'{SELF_SUPERVISED}': from G pretrained by rotation prediction on the source and 2D crops "
                      "(no labels; ahup_jax/train/pretrain.py); runs go to WORKDIR/…/pretrained_<row>/.")
  flags.DEFINE_bool("gap_table", False, "instead of the rows: source only with each domain gap closed in turn "
                    "(config.gap_table), against source only and target-supervised → gaps.md, gaps.json.")
  flags.DEFINE_bool("d_probe", False, "instead of training: probe the discriminator of the rows' finished runs "
                    "(a fresh D on G frozen, and inside the continued training step; ahup_jax/d_probe.py) → "
                    "d_probe.md, d_probe.json, d_probe.png.")
  flags.DEFINE_integer("d_probe_steps", 200, "steps of each D probe.")
  flags.DEFINE_list("d_probe_lmd", [], "--d_probe: also probe D inside the continued training step at these λ_D "
                    "(e.g. 0.0001,0.001): where G stops winning the game.")
  app.run(main)
