"""SAA train step throughput: images/s, step time, XLA FLOPs per step and achieved GFLOP/s.

  python -m benchmarks.train_step                                   # the embedded config: res18 96², batch 18
  python -m benchmarks.train_step --backbone=res50 --size=256 --batch=8 --mode_D=SA --dtype=float32

The step is the trainer's (saa_step.make_train_step jitted by sharding.jit_train_step, state donated); the returned
state is fed to the next call. The epoch is shortened so that the z-supervision switch (epoch_regZ = 1) falls
inside the timed calls, and the step's compilations are counted over them (one expected).
"""
from __future__ import annotations

import argparse
import json

import jax
import ml_collections
import numpy as np

from ahup_jax import allocator, losses, model_report, sharding
from ahup_jax.models.resnet import STAGES
from ahup_jax.train import saa_step
from ahup_jax.train import state as state_lib
from benchmarks import timing
from configs import saa

D_MODES = ("SA", "C", "C1", "SA1", "none")  # none: λ_D = 0, no D


def bench_config(backbone: str = "res18", size: int = 96, batch: int = 18, mode_d: str = "SA",
                 dtype: str = "float32", remat_head: bool = False) -> ml_collections.ConfigDict:
  """configs/saa.py:synth (z supervision from epoch 1) with the model, global batch and D mode replaced."""
  config = saa.get_config("synth")
  config.model.backbone, config.model.input_size, config.model.depth_bins = backbone, size, size // 4
  config.model.dtype, config.model.remat_head = dtype, remat_head
  config.train.batch_size = batch
  if mode_d == "none":
    config.adapt.lmd_D = 0.0
  else:
    config.adapt.mode_D = mode_d
  return config


def fake_batch(config: ml_collections.ConfigDict, seed: int = 0) -> dict[str, np.ndarray]:
  """A host batch as the pivoted pipeline emits it (docs/ARCHITECTURE.md): one third synthetic with depth."""
  size, batch, joints = config.model.input_size, config.train.batch_size, config.model.num_joints
  rng = np.random.default_rng(seed)
  joints_hm = rng.uniform(1, size // 4 - 1, (batch, joints, 3)).astype(np.float32)
  synthetic = (np.arange(batch) % 3 == 0).astype(np.float32)
  return {"image": rng.normal(size=(batch, size, size, 3)).astype(np.float32), "joints_hm": joints_hm,
          "vis": (rng.uniform(size=(batch, joints)) > 0.2).astype(np.float32),
          "joint_cells": np.asarray(losses.joint_cells(joints_hm, grid=size // 32)),
          "have_depth": synthetic, "is_synthetic": synthetic}


def build(config: ml_collections.ConfigDict, abstract: bool = False):
  """(jitted step, state, global batch) on the mesh of `config.mesh`, as the trainer builds them.

  abstract: state and batch as ShapeDtypeStructs (for compile-only measurements; nothing is initialised).
  """
  mesh = sharding.make_mesh(config.mesh)
  if abstract:
    state = jax.eval_shape(lambda: state_lib.create_train_state(config, jax.random.key(0)))
    batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in fake_batch(config).items()}
  else:
    state = state_lib.create_train_state(config, jax.random.key(0))
    state = jax.device_put(state, sharding.state_sharding(state, mesh))
    batch = sharding.to_global(fake_batch(config), mesh)
  return sharding.jit_train_step(saa_step.make_train_step(config), mesh, state), state, batch


def describe(config: ml_collections.ConfigDict) -> dict:
  """The row's identifying fields."""
  mode_d = config.adapt.mode_D if state_lib.d_enabled(config) else "none"
  return {"backbone": config.model.backbone, "input": config.model.input_size, "batch": config.train.batch_size,
          "mode_D": mode_d, "dtype": config.model.dtype, "remat_head": bool(config.model.remat_head)}


def measure(config: ml_collections.ConfigDict, repeats: int = timing.REPEATS, warmup: int = timing.WARMUP) -> dict:
  """Compiles and times the train step of `config` (global batch `config.train.batch_size` over all devices).

  The epoch is shortened to (warmup + repeats) // 2 steps, so that the z-supervision switch (epoch_regZ = 1)
  falls inside the calls; every call reuses one batch. Returns step_s (median), min_s, max_s, images_per_s,
  gflop_per_step (XLA's count of the global program, as XLA's own convolutions), achieved_gflops, compile_s, memory
  (per-device bytes), step_compiles (over the compile and all calls) and z_switch_seen (the switch happened inside
  the calls).
  """
  config = config.copy_and_resolve_references()
  config.train.iters_per_epoch = max(1, (warmup + repeats) // 2)
  jitted, state, batch = build(config)
  with timing.count_compiles() as compiles:
    compiled, compile_s = timing.compile_aot(jitted, state, batch)
    t, (state, metrics) = timing.timed(jitted, state, batch, repeats=repeats, warmup=warmup, carry=True)
  flops = model_report.xla_flops(jitted, state, batch)  # the global (unpartitioned) program
  regz_step = state_lib.iters_per_epoch(config.train) * config.train.epoch_regZ
  return {**describe(config), "devices": jax.device_count(), "step_s": t.median_s, "min_s": t.min_s,
          "max_s": t.max_s, "repeats": t.repeats, "images_per_s": config.train.batch_size / t.median_s,
          "gflop_per_step": flops / 1e9, "achieved_gflops": timing.gflops(flops, t.median_s),
          "compile_s": compile_s, "memory": timing.memory_bytes(compiled),
          "step_compiles": compiles.get("jit(train_step)", 0),
          "z_switch_seen": bool(0 < regz_step < warmup + repeats and float(metrics["z_on"]) == 1.0)}


def run(backbone: str = "res18", size: int = 96, batch: int = 18, mode_d: str = "SA", dtype: str = "float32",
        repeats: int = timing.REPEATS, warmup: int = timing.WARMUP) -> dict:
  """`measure` of `bench_config(...)`."""
  return measure(bench_config(backbone, size, batch, mode_d, dtype), repeats, warmup)


def add_model_flags(parser: argparse.ArgumentParser, backbone: str = "res18", size: int = 96) -> None:
  """--backbone and --size, shared by the instruments that build the pose net."""
  parser.add_argument("--backbone", default=backbone, choices=tuple(STAGES), help="G (SPEC §2.2)")
  parser.add_argument("--size", type=int, default=size, help="input crop side (px)")


def add_flags(parser: argparse.ArgumentParser) -> None:
  add_model_flags(parser)
  parser.add_argument("--batch", type=int, default=18, help="global batch")
  parser.add_argument("--mode_D", default="SA", choices=D_MODES, help="discriminator mode; none: λ_D = 0")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="compute dtype")
  parser.add_argument("--repeats", type=int, default=timing.REPEATS, help="timed calls (after the warm-up)")


def main() -> None:
  allocator.restart_with_fast_malloc()  # the step's speed depends on it (ahup_jax/allocator.py)
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  add_flags(parser)
  args = parser.parse_args()
  print(json.dumps(run(args.backbone, args.size, args.batch, args.mode_D, args.dtype, args.repeats), indent=1))


if __name__ == "__main__":
  main()
