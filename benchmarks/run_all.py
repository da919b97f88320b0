"""`./run.sh bench`: measures the hot paths on this machine and rewrites BENCHMARKS.md + benchmarks/results.json.

Instruments: XLA ceilings measured in the same run (large fp32 matmul, 3x3 conv), the SAA train step (images/s,
XLA-counted FLOPs, achieved GFLOP/s and ratio to the conv ceiling), the tf.data input pipeline with full augmentation
(benchmarks/input_pipeline.py) and a SPA fit. Timings are medians of synchronised repetitions after warm-up.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from ahup_jax import sharding
from ahup_jax.train import saa_step
from ahup_jax.train import state as state_lib
from configs import saa

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(fn, *args, repeats: int = 10, warmup: int = 2) -> float:
  """Median seconds of `fn(*args)` (results blocked on) over `repeats` runs after `warmup` runs."""
  for _ in range(warmup):
    jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def flops_of(fn, *args) -> float:
  return float(jax.jit(fn).lower(*args).cost_analysis()["flops"])


def ceilings() -> dict:
  a = jnp.ones((2048, 2048), jnp.float32)
  matmul = jax.jit(lambda a: a @ a)
  x, w = jnp.ones((32, 28, 28, 128), jnp.float32), jnp.ones((3, 3, 128, 128), jnp.float32)
  conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                           dimension_numbers=("NHWC", "HWIO", "NHWC")))
  return {"matmul_gflops": 2 * 2048**3 / timed(matmul, a) / 1e9,
          "conv3x3_gflops": 2 * 32 * 28 * 28 * 9 * 128 * 128 / timed(conv, x, w) / 1e9}


def train_step(backbone: str, size: int, batch: int, variant: str = "synth") -> dict:
  config = saa.get_config(variant)
  config.model.backbone, config.model.input_size, config.model.depth_bins = backbone, size, size // 4
  config.train.batch_size = batch
  mesh = sharding.make_mesh(config.mesh)
  state = state_lib.create_train_state(config, jax.random.key(0))
  state = jax.device_put(state, sharding.state_sharding(state, mesh))
  step_fn = saa_step.make_train_step(config)
  rng = np.random.default_rng(0)
  host = {"image": rng.normal(size=(batch, size, size, 3)).astype(np.float32),
          "joints_hm": (rng.random((batch, 17, 3)) * size / 4).astype(np.float32),
          "vis": np.ones((batch, 17), np.float32),
          "joint_cells": rng.integers(0, size // 32, (batch, 17, 2)).astype(np.int32),
          "have_depth": (np.arange(batch) % 3 == 0).astype(np.float32),
          "is_synthetic": (np.arange(batch) % 3 == 0).astype(np.float32)}
  batch_arrays = sharding.to_global(host, mesh)
  flops = flops_of(step_fn, state, batch_arrays)
  jitted = jax.jit(step_fn)  # no donation here: the same state is reused across repetitions
  seconds = timed(lambda s, b: jitted(s, b)[1], state, batch_arrays, repeats=5)
  return {"backbone": backbone, "input": size, "batch": batch, "step_s": seconds, "images_per_s": batch / seconds,
          "gflop_per_step": flops / 1e9, "achieved_gflops": flops / seconds / 1e9}


def spa_fit(num_poses: int = 20_000, epochs: int = 3) -> dict:
  from ahup_jax.spa import fit
  config = saa.get_config().spa
  config.epochs = epochs
  poses = (np.random.default_rng(0).random((num_poses, 17, 3)) * 40 + 10).astype(np.float32)
  fit.fit_spa(poses[:512], np.ones(16, np.float32), config, progress=False)  # compile at another size: warm caches
  start = time.perf_counter()
  fit.fit_spa(poses, np.ones(16, np.float32), config, progress=False)
  seconds = time.perf_counter() - start
  return {"num_poses": num_poses, "epochs": epochs, "seconds": seconds, "seconds_per_epoch_incl_compile": seconds / epochs,
          "estimated_70_epochs_100k_s": seconds / epochs * 70 * 100_000 / num_poses}


def main() -> None:
  from benchmarks import input_pipeline
  results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                        f"jax {jax.__version__} on {jax.default_backend()}"}
  results["ceilings"] = ceilings()
  results["train_step"] = [train_step("res18", 96, 18), train_step("res18", 128, 32), train_step("res50", 256, 8)]
  for row in results["train_step"]:
    row["fraction_of_conv_ceiling"] = row["achieved_gflops"] / results["ceilings"]["conv3x3_gflops"]
  results["input_pipeline"] = [input_pipeline.run(input_size=96, steps=8), input_pipeline.run(input_size=256, steps=8)]
  results["spa_fit"] = spa_fit()
  with open(os.path.join(HERE, "results.json"), "w") as f:
    json.dump(results, f, indent=1, default=float)
  write_markdown(results)
  print(json.dumps(results, indent=1, default=float))


def write_markdown(r: dict) -> None:
  c = r["ceilings"]
  lines = ["# Benchmarks", "", f"Machine: {r['machine']}. Date: {r['date']}. Reproduce: `./run.sh bench` "
           "(rewrites this file and `benchmarks/results.json`).", "",
           f"Ceilings measured in the same run: fp32 matmul 2048² {c['matmul_gflops']:.0f} GFLOP/s, "
           f"3x3 conv {c['conv3x3_gflops']:.0f} GFLOP/s.", "", "## SAA train step (fp32, D mode SA)", "",
           "| backbone | input | batch | step (s) | images/s | GFLOP/step (XLA) | GFLOP/s | of conv ceiling |",
           "|---|---|---|---|---|---|---|---|"]
  for t in r["train_step"]:
    lines.append(f"| {t['backbone']} | {t['input']}² | {t['batch']} | {t['step_s']:.2f} | {t['images_per_s']:.1f} | "
                 f"{t['gflop_per_step']:.1f} | {t['achieved_gflops']:.1f} | {t['fraction_of_conv_ceiling']:.0%} |")
  lines += ["", "## Input pipeline (full augmentation, 512² JPEGs)", "", "| crop | images/s |", "|---|---|"]
  for p in r["input_pipeline"]:
    lines.append(f"| {p.get('input_size')}² | {p.get('images_per_s', float('nan')):.0f} |")
  s = r["spa_fit"]
  lines += ["", "## SPA fit", "", f"{s['epochs']} epochs on {s['num_poses']} poses: {s['seconds']:.1f} s "
            f"(incl. compilation); extrapolated 70 epochs on 100k poses: {s['estimated_70_epochs_100k_s']:.0f} s.", ""]
  with open(os.path.join(os.path.dirname(HERE), "BENCHMARKS.md"), "w") as f:
    f.write("\n".join(lines))


if __name__ == "__main__":
  main()
