"""Can the discriminator tell the domains apart? Probes of a trained run's D (issue #18's explanation).

  ./run.sh ablation --d_probe [--rows=...] [--seeds N]    # the rows' finished runs → d_probe.{md,json,png}
  ./run.sh ablation --d_probe --d_probe_lmd=0.0001,0.001   # … and G training at these λ_D too

Every probe trains a *fresh* D — the run's architecture, loss (`losses.d_loss`) and optimizer — for a few hundred steps
on new training batches (SAA's three sets, from the run's last step on) and record its accuracy on each batch before
it trains on it, so every figure is on batches D has not seen:

* **G frozen**: D on the features of G fixed at the run's final checkpoint. Says whether G's features at the joints'
  cells still carry the domain — what a trained D *could* read.
* **initial G** (with `--pretrained_from`): the G-frozen probe of the G every run of a seed starts from — is the
  domain readable before any row trains?
* **G training** (runs with a D only): the same fresh D inside the trainer's own step, continued from the final
  checkpoint at the run's λ_D, so G and T train and G answers D as in training. Says whether G keeps D from reading
  what the frozen probe can.
* **G training, λ_D ≈ 0** (runs with a D only): the same with λ_D = 1e-12 — the trainer's D update as is, G and T
  training on L_coord alone. The control that separates "G answers D" from anything else the step does.
* **G training at λ_D = v** (`--d_probe_lmd`): where between the two G stops winning.

A D near the frozen probe's accuracy in training means the domains stay apart and G does not fight it; a D at the
base rate while the frozen probe separates the domains means G fools each step's D without removing the domain
from its features (the adversarial game chases instead of aligning).
"""
from __future__ import annotations

import itertools
import json
import os
from typing import Iterable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ahup_jax import models
from ahup_jax.train import saa_step
from configs import ablation as ablation_configs

CURVES = ("loss_d", "d_acc_real", "d_acc_syn")
PROBES = ("frozen", "adversarial", "ignored")
PROBE_TITLES = {"in_training": "D in training (last quarter)", "frozen": "fresh D, G frozen",
                "adversarial": "fresh D, G training", "ignored": "fresh D, G training, λ_D ≈ 0"}


def fresh_discriminator(config: ml_collections.ConfigDict, feats_shape: tuple[int, ...], seed: int):
  """(D module, {"params", "batch_stats"}, D's optimizer, its state) initialised as the trainer does."""
  from ahup_jax.train import state as state_lib
  disc = models.build_discriminator(config.model, config.adapt)
  d_vars = disc.init(jax.random.key(seed), jnp.zeros(feats_shape, jnp.float32), train=False)
  variables = {"params": d_vars["params"], "batch_stats": d_vars.get("batch_stats", {})}
  _, tx_d = state_lib.make_optimizers(config)
  return disc, variables, tx_d, tx_d.init(variables["params"])


def fit_discriminator(config: ml_collections.ConfigDict, feature_batches: Iterable[dict], seed: int) -> dict:
  """Trains a fresh D (the trainer's D update, `saa_step.discriminator_update`) on `feature_batches`, each
  {"feats" [B, h, w, C] float32, "is_synthetic" [B], "joint_cells" [B, J, 2] int32}.

  Returns {name: [steps] float array} for CURVES, each entry measured on its batch before D trains on it.
  """
  batches = iter(feature_batches)
  first = next(batches, None)
  if first is None:
    raise ValueError("fit_discriminator: no feature batches")
  disc, variables, tx_d, opt_state = fresh_discriminator(config, first["feats"].shape, seed)

  @jax.jit
  def step(variables, opt_state, feats, is_syn, cells):
    params, stats, opt_state, metrics = saa_step.discriminator_update(
        disc, tx_d, config.adapt, variables["params"], variables["batch_stats"], opt_state, feats, is_syn, cells)
    return {"params": params, "batch_stats": stats}, opt_state, metrics

  history = {name: [] for name in CURVES}
  for batch in itertools.chain([first], batches):
    variables, opt_state, metrics = step(variables, opt_state, batch["feats"], batch["is_synthetic"],
                                         batch["joint_cells"])
    for name in CURVES:
      history[name].append(metrics[name])
  return {name: np.asarray(jax.device_get(values), np.float64) for name, values in history.items()}


def _one_device_mesh():
  from ahup_jax import sharding
  return sharding.make_mesh(ml_collections.ConfigDict(dict(data=1, model=1)))


def _restore_state(config: ml_collections.ConfigDict, workdir: str, mesh):
  """The run's full train state at its latest checkpoint, replicated on `mesh`."""
  from ahup_jax import checkpoint, sharding
  from ahup_jax.train import state as state_lib
  ckpt = checkpoint.TrainCheckpointer(os.path.join(workdir, "checkpoints"), keep=config.train.keep_checkpoints)
  step = ckpt.latest_step()
  if step is None:
    raise FileNotFoundError(f"no training checkpoint in {ckpt.directory}: train the run before probing its D")
  replicated = sharding.replicated(mesh)
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
                          jax.eval_shape(lambda: state_lib.create_train_state(config, jax.random.key(0))))
  state, _ = ckpt.restore(step, abstract)
  ckpt.close()
  return state


def _host_batches(config: ml_collections.ConfigDict, start_step: int, steps: int) -> Iterator[dict]:
  from data_pipelines import pivot, readers
  records = [readers.load(name, config.data, "train") for name in config.data.trainset]
  return pivot.make_train_dataset(records, config, start_step=start_step, data_shards=1).take(steps) \
      .as_numpy_iterator()


def frozen_probe(config: ml_collections.ConfigDict, g_variables: dict, start_step: int, steps: int,
                 seed: int) -> dict:
  """A fresh D on the features of G fixed at `g_variables` ({"params", "batch_stats"}), G in train mode (batch
  statistics of each batch, as D sees G in training). `config` gives the batches and D (it must have a D)."""
  backbone, _ = models.build_pose_net(config.model)

  @jax.jit
  def features(images):
    feats, _ = backbone.apply(g_variables, images, train=True, mutable=["batch_stats"])
    return feats.astype(jnp.float32)

  batches = ({"feats": features(b["image"]), "is_synthetic": b["is_synthetic"], "joint_cells": b["joint_cells"]}
             for b in _host_batches(config, start_step, steps))
  return fit_discriminator(config, batches, seed)


IGNORED_LMD_D = 1e-12  # λ_D of the control probe: D stays in the step (λ_D 0 would remove it), G ignores it


def adversarial_probe(config: ml_collections.ConfigDict, workdir: str, steps: int, seed: int,
                      lmd_d: float | None = None) -> dict:
  """A fresh D inside the trainer's step (`saa_step.make_train_step`; λ_D = `lmd_d`, default the run's), continued
  from the run's final checkpoint: G, T and their optimizer as trained, D and its optimizer new (so D's learning rate
  restarts at the schedule's first value while G's stays where training left it). Same return as
  `fit_discriminator`, plus the step's "loss_coord"."""
  from ahup_jax import sharding
  from ahup_jax.train import saa_step
  from ahup_jax.train import state as state_lib
  if lmd_d is not None:
    config = config.copy_and_resolve_references()
    config.adapt.lmd_D = float(lmd_d)
  mesh = _one_device_mesh()
  state = _restore_state(config, workdir, mesh)
  fresh = state_lib.create_train_state(config, jax.random.key(seed))
  state = state.replace(params=dict(state.params, D=fresh.params["D"]),
                        batch_stats=dict(state.batch_stats, D=fresh.batch_stats["D"]), opt_state_d=fresh.opt_state_d)
  state = jax.device_put(state, sharding.state_sharding(state, mesh))
  train_step = sharding.jit_train_step(saa_step.make_train_step(config), mesh, state)
  history = {name: [] for name in (*CURVES, "loss_coord")}  # L_coord: what answering D costs G's pose
  for batch in _host_batches(config, int(state.step), steps):
    state, metrics = train_step(state, sharding.to_global(batch, mesh))
    for name, values in history.items():
      values.append(metrics[name])
  return {name: np.asarray(jax.device_get(values), np.float64) for name, values in history.items()}


def settled(curves: dict, share: float = 0.5) -> dict:
  """Mean of each curve over its last `share` of steps: the probe's accuracy once D had time to learn."""
  return {name: float(np.mean(values[int(len(values) * (1 - share)):])) for name, values in curves.items()}


# ----------------------------------------------------------------------------------------------- the ablation's runs
def sweep_key(lmd_d: float) -> str:
  """The result key of the G-training probe at λ_D = `lmd_d` (`--d_probe_lmd`)."""
  return f"lmd_D {lmd_d:g}"


def probe_run(cfg: ml_collections.ConfigDict, row: str, seed: int, steps: int, lmd_sweep=()) -> dict:
  """The probes of one finished (row, seed) run — G frozen; where the row trains a D also G training at the run's
  λ_D, at λ_D ≈ 0 and at each λ_D of `lmd_sweep` — with the D accuracy the run logged over its last quarter.
  Kept in d_probe.json in the run folder: a rerun with the same `steps` computes only the probes it lacks."""
  from ahup_jax import ablation, figures
  from ahup_jax.train import state as state_lib
  workdir = ablation.run_dir(cfg, row, seed)
  path = os.path.join(workdir, "d_probe.json")
  row_config = ablation.row_config(cfg, row, seed)
  has_d = state_lib.d_enabled(row_config)
  wanted = [*PROBES, *(sweep_key(v) for v in lmd_sweep)] if has_d else ["frozen"]
  result = {"row": row, "seed": int(seed), "steps": int(steps)}
  if os.path.exists(path):
    with open(path) as f:
      cached = json.load(f)
    if cached["steps"] == steps:
      result = cached
  missing = [probe for probe in wanted if probe not in result]
  if not missing:
    return result
  probe_seed = seed + 1000
  for probe in missing:
    if probe == "frozen":  # rows without a D: SAA's batches and discriminator, so every G gets the same question
      state = _restore_state(row_config, workdir, _one_device_mesh())
      g = {"params": state.params["G"], "batch_stats": state.batch_stats["G"]}
      config = row_config if has_d else ablation.row_config(cfg, "SAA", seed)
      curves = frozen_probe(config, g, int(state.step), steps, probe_seed)
    else:  # None: the run's own λ_D
      lmd_d = None if probe == "adversarial" else IGNORED_LMD_D if probe == "ignored" else float(probe.split()[-1])
      curves = adversarial_probe(row_config, workdir, steps, probe_seed, lmd_d=lmd_d)
    result[probe] = settled(curves)
    result[f"{probe}_curves"] = {name: v.tolist() for name, v in curves.items()}
  if has_d:
    logged = {tag.split("/", 1)[1]: values for tag, (_, values) in
              figures.read_scalars(os.path.join(workdir, "tensorboard")).items() if tag.startswith("train/")}
    result["in_training"] = settled({name: logged[name] for name in CURVES if name in logged}, share=0.25)
  with open(path, "w") as f:
    json.dump(result, f)
  return result


def initial_g_row(cfg: ml_collections.ConfigDict) -> str:
  return f"initial G ({cfg.pretrained_from})"


def probe_initial_g(cfg: ml_collections.ConfigDict, seed: int, steps: int) -> dict:
  """The G-frozen probe of the G that every run of `seed` starts from (`cfg.pretrained_from`'s export), with SAA's
  batches and D from step 0: how readable the domain is before any row trains. Kept in d_probe.json beside the
  export."""
  from ahup_jax import ablation, convert_torch
  export = ablation.pretrained_export(cfg, seed)
  path = os.path.join(os.path.dirname(export), "d_probe.json")
  if os.path.exists(path):
    with open(path) as f:
      cached = json.load(f)
    if cached["steps"] == steps:
      return cached
  curves = frozen_probe(ablation.row_config(cfg, "SAA", seed), convert_torch.load_pretrained_backbone(export), 0,
                        steps, seed + 1000)
  result = {"row": initial_g_row(cfg), "seed": int(seed), "steps": int(steps), "frozen": settled(curves),
            "frozen_curves": {name: v.tolist() for name, v in curves.items()}}
  with open(path, "w") as f:
    json.dump(result, f)
  return result


def _probes_of(result: dict) -> list[str]:
  """The keys of `result` holding a probe's settled accuracies (not its "<probe>_curves")."""
  return [key for key, value in result.items()
          if isinstance(value, dict) and "d_acc_real" in value and not key.endswith("_curves")]


def summarize(results: list[dict]) -> dict:
  """Per row: mean ± std over seeds and the per-seed values of each probe's settled accuracies (and L_coord of the
  probes inside the training step)."""
  rows: dict[str, dict] = {}
  for result in results:
    entry = rows.setdefault(result["row"], {"seeds": []})
    entry["seeds"].append(result["seed"])
    for probe in _probes_of(result):
      for name in ("d_acc_real", "d_acc_syn", "loss_coord"):
        if name in result[probe]:
          entry.setdefault(probe, {}).setdefault(name, []).append(result[probe][name])
  for entry in rows.values():
    for probe in (key for key in entry if key != "seeds"):
      for name, values in entry[probe].items():
        entry[probe][name] = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1
                              else 0.0, "per_seed": values}
  return rows


def markdown_table(rows: dict) -> str:
  def cell(entry, probe):
    if probe not in entry:
      return "–"
    real, syn = entry[probe]["d_acc_real"], entry[probe]["d_acc_syn"]
    return f"{real['mean']:.2f} ± {real['std']:.2f} / {syn['mean']:.2f} ± {syn['std']:.2f}"
  columns = ("in_training", *PROBES)
  lines = ["| row | seeds | " + " | ".join(PROBE_TITLES[c] for c in columns) + " |",
           "|---|---|" + "---|" * len(columns)]
  for row, entry in rows.items():
    lines.append(f"| {row} | {len(entry['seeds'])} | " + " | ".join(cell(entry, c) for c in columns) + " |")
  sweep = [(row, key) for row, entry in rows.items() for key in entry if key.startswith("lmd_D ")]
  if sweep:
    lines += ["", "G training, fresh D, at other λ_D (`--d_probe_lmd`):", "",
              "| row | λ_D | seeds | D accuracy real / synthetic |", "|---|---|---|---|"]
    for row, key in sorted(sweep, key=lambda item: (item[0], float(item[1].split()[-1]))):
      seeds = len(rows[row][key]["d_acc_real"]["per_seed"])
      lines.append(f"| {row} | {key.split()[-1]} | {seeds} | {cell(rows[row], key)} |")
  return "\n".join(lines)


def curves_figure(results: list[dict], path: str) -> str:
  """D's accuracy on synthetic and on real crops against probe step, per row and probe (mean over seeds)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
  groups: dict[tuple[str, str], list[dict]] = {}
  for result in results:
    for probe in PROBES:
      if f"{probe}_curves" in result:
        groups.setdefault((result["row"], probe), []).append(result[f"{probe}_curves"])
  for ax, name, title in ((axes[0], "d_acc_syn", "synthetic crops"), (axes[1], "d_acc_real", "real crops")):
    for (row, probe), curves in groups.items():
      values = np.mean([c[name] for c in curves], axis=0)
      smooth = np.convolve(values, np.ones(10) / 10, mode="valid") if len(values) >= 10 else values
      style = {"frozen": "-", "adversarial": "--", "ignored": ":"}[probe]
      ax.plot(np.arange(len(smooth)), smooth, label=f"{row}: {PROBE_TITLES[probe]}", linestyle=style)
    ax.set_title(f"fresh D's accuracy on {title} (before each update)")
    ax.set_xlabel("probe step")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel("accuracy")
  axes[1].legend(fontsize=8, loc="lower right")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def run(cfg: ml_collections.ConfigDict, steps: int, lmd_sweep=()) -> dict:
  """Probes every finished (row, seed) of `cfg` (skipping runs not trained yet, with a message), and with
  `cfg.pretrained_from` the initial G of each seed first → d_probe.{json,md,png} in cfg.out_dir. Returns the summary."""
  from ahup_jax import ablation
  unknown = [row for row in cfg.rows if row not in ablation_configs.ROWS]
  if unknown:
    raise ValueError(f"--d_probe: unknown rows {unknown}; expected rows of {list(ablation_configs.ROWS)} (a row "
                     "with a comma in its name is quoted: --rows='SAA,\"source + 2D, no D\"')")
  results = []
  for seed in range(int(cfg.seeds)) if cfg.pretrained_from else ():
    if os.path.isdir(ablation.pretrained_export(cfg, seed)):
      print(f"[d_probe] {initial_g_row(cfg)}, seed {seed}: probing D for {steps} steps…", flush=True)
      results.append(probe_initial_g(cfg, seed, steps))
  for row in cfg.rows:
    for seed in range(int(cfg.seeds)):
      workdir = ablation.run_dir(cfg, row, seed)
      if not os.path.exists(os.path.join(workdir, "results.json")):
        print(f"[d_probe] {row}, seed {seed}: no finished run in {workdir}, skipped", flush=True)
        continue
      print(f"[d_probe] {row}, seed {seed}: probing D for {steps} steps…", flush=True)
      results.append(probe_run(cfg, row, seed, steps, lmd_sweep))
  if not results:
    raise FileNotFoundError(f"--d_probe: none of the rows {list(cfg.rows)} has a finished run under {cfg.workdir}")
  rows = summarize(results)
  os.makedirs(cfg.out_dir, exist_ok=True)
  with open(os.path.join(cfg.out_dir, "d_probe.json"), "w") as f:
    json.dump({"steps": steps, "rows": rows}, f, indent=1)
  table = markdown_table(rows)
  with open(os.path.join(cfg.out_dir, "d_probe.md"), "w") as f:
    f.write(f"# D probes ({steps} steps){ablation.gap_note(cfg)}\n\nEach cell: D's accuracy on real / synthetic crops "
            "(mean ± std over seeds); the probes' accuracies are their last half's mean, each batch scored before D "
            "trains on it. See ahup_jax/d_probe.py.\n\n" + table + "\n\n![D probe curves](d_probe.png)\n")
  curves_figure(results, os.path.join(cfg.out_dir, "d_probe.png"))
  print(table, flush=True)
  return rows
