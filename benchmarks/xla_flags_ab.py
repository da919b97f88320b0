"""Two settings timed in lockstep: the trainer's SAA step in two worker processes that take turns.

  python -m benchmarks.xla_flags_ab --b="--xla_cpu_use_onednn=true" --backbone=res18 --size=96 --batch=18
  python -m benchmarks.xla_flags_ab --a="" --b="--xla_cpu_prefer_vector_width=512" --rounds=8
  python -m benchmarks.xla_flags_ab --b_set=ahup_jax.models.layers.IM2COL_MAX_IN_CHANNELS=0 --size=64 --batch=32
  python -m benchmarks.xla_flags_ab --a_env="LD_PRELOAD=;GLIBC_TUNABLES=glibc.malloc.hugetlb=1"   # glibc vs mimalloc
  python -m benchmarks.xla_flags_ab --dtype=bfloat16 --a_set=ahup_jax.models.layers.ONEDNN_MIN_POSITIONS_BFLOAT16=16

A side is its XLA_FLAGS, optional extra environment variables (`--a_env`/`--b_env`) and optional module constants
set before the step is built (`--a_set`/`--b_set`, comma-separated `module.NAME=int` or `module.NAME=@module.attr`),
e.g. the conv lowering thresholds of `ahup_jax.models.layers`, or a layer against the one it replaced; `--dtype`
is both sides' model.dtype.

XLA flags are fixed per process, so A and B cannot share one process; instead each worker compiles the step once
with its flags, then the parent asks A, then B, then A, ... for `--steps` steps at a time. Only one worker computes
at any moment and both see the same minutes of the machine's drift, so the ratio of their median step times is
comparable even where absolute figures are not (a loaded or throttled machine). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from ahup_jax import allocator


def _resolve(dotted: str):
  """The object `package.module.attr` names."""
  import importlib
  module, name = dotted.rsplit(".", 1)
  mod = importlib.import_module(module)
  if not hasattr(mod, name):
    raise ValueError(f"--*_set: {module} has no {name}")
  return mod, name


def _apply(assignments: str) -> None:
  """Sets each `package.module.NAME=VALUE` of a comma-separated list: VALUE an int, or `@package.module.attr` for
  another object (e.g. `ahup_jax.models.layers.max_pool=@flax.linen.max_pool`, to time a code path against the one
  it replaced)."""
  for item in filter(None, assignments.split(",")):
    target, value = item.split("=")
    mod, name = _resolve(target)
    setattr(mod, name, getattr(*_resolve(value[1:])) if value.startswith("@") else int(value))


def worker(backbone: str, size: int, batch: int, dtype: str, assignments: str) -> None:
  """Compile and warm up, then for each line "N" on stdin run N steps and print their total seconds."""
  from benchmarks.torch_side import jax_saa_step
  _apply(assignments)
  step, _ = jax_saa_step(backbone, size, batch, dtype)
  step()
  step()
  print("ready", flush=True)
  for line in sys.stdin:
    start = time.perf_counter()
    for _ in range(int(line)):
      step()
    print(f"{time.perf_counter() - start:.6f}", flush=True)


def _start(flags: str, assignments: str, environ: str, args) -> subprocess.Popen:
  env = dict(os.environ, XLA_FLAGS=flags, TF_CPP_MIN_LOG_LEVEL="2")
  env.update(item.split("=", 1) for item in filter(None, environ.split(";")))
  cmd = [sys.executable, "-m", "benchmarks.xla_flags_ab", "--worker", f"--backbone={args.backbone}",
         f"--size={args.size}", f"--batch={args.batch}", f"--dtype={args.dtype}", f"--set={assignments}"]
  proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
  return proc


def _wait_ready(proc: subprocess.Popen, name: str) -> None:
  line = proc.stdout.readline().strip()
  if line != "ready":
    raise RuntimeError(f"worker {name} failed to start (got {line!r}); run it alone to see its error")


def _timed(proc: subprocess.Popen, steps: int) -> float:
  proc.stdin.write(f"{steps}\n")
  proc.stdin.flush()
  return float(proc.stdout.readline()) / steps


def main() -> None:
  allocator.restart_with_fast_malloc()  # the step's speed depends on it (ahup_jax/allocator.py)
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--a", default="", help="XLA_FLAGS of side A (default: none)")
  parser.add_argument("--b", default="", help="XLA_FLAGS of side B")
  parser.add_argument("--a_set", default="", help="module constants of side A: module.NAME=int|@module.attr,...")
  parser.add_argument("--b_set", default="", help="module constants of side B: module.NAME=int|@module.attr,...")
  parser.add_argument("--a_env", default="", help="extra environment of side A: NAME=VALUE;... (e.g. "
                      "LD_PRELOAD=;GLIBC_TUNABLES=glibc.malloc.hugetlb=0: glibc's malloc without huge pages)")
  parser.add_argument("--b_env", default="", help="extra environment of side B")
  parser.add_argument("--set", default="", help=argparse.SUPPRESS)
  parser.add_argument("--backbone", default="res18")
  parser.add_argument("--size", type=int, default=96)
  parser.add_argument("--batch", type=int, default=18)
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="model.dtype of both sides")
  parser.add_argument("--rounds", type=int, default=6, help="A/B turns")
  parser.add_argument("--steps", type=int, default=2, help="steps per turn")
  parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker:
    worker(args.backbone, args.size, args.batch, args.dtype, args.set)
    return
  procs = {"A": _start(args.a, args.a_set, args.a_env, args), "B": _start(args.b, args.b_set, args.b_env, args)}
  try:
    for name, proc in procs.items():  # both compile at once; the timed turns start when both are ready
      _wait_ready(proc, name)
    times = {"A": [], "B": []}
    for _ in range(args.rounds):
      for name in ("A", "B"):
        times[name].append(_timed(procs[name], args.steps))
  finally:
    for proc in procs.values():
      proc.kill()
  median = {k: statistics.median(v) for k, v in times.items()}
  print(json.dumps({"config": f"{args.backbone} {args.size}² batch {args.batch} {args.dtype}",
                    "a": [args.a, args.a_set, args.a_env], "b": [args.b, args.b_set, args.b_env],
                    "step_s": times, "images_per_s": {k: args.batch / v for k, v in median.items()},
                    "speedup_b_over_a": median["A"] / median["B"], "load_at_end": os.getloadavg()}))


if __name__ == "__main__":
  main()
