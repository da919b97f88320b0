"""Data-parallel scaling of the SAA train step over 1, 2, 4, 8 simulated CPU devices at a fixed per-device batch.

  python -m benchmarks.scaling                                   # res18 96², 4 images per device
  python -m benchmarks.scaling --devices=1,2 --per_device_batch=2 --repeats=3

Each device count runs in its own process (XLA_FLAGS=--xla_force_host_platform_device_count=N must be set before
JAX starts) and reports step time, images/s, per-device images/s and per-device memory of the compiled SPMD
executable. The simulated devices share this machine's cores, so per-device throughput falls with N here by
construction: the figures check the sharded program (one compilation, memory per device constant at a fixed
per-device batch), not accelerator scaling.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import jax

from benchmarks import train_step  # XLA_FLAGS come from the environment this process was started with

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker(backbone: str, size: int, per_device_batch: int, repeats: int) -> dict:
  """Runs inside the N-device process: `train_step.measure` at global batch N × per_device_batch."""
  devices = jax.device_count()
  config = train_step.bench_config(backbone, size, per_device_batch * devices)
  row = train_step.measure(config, repeats=repeats, warmup=1)
  row.update(per_device_batch=per_device_batch, images_per_s_per_device=row["images_per_s"] / devices)
  return row


def run(backbone: str = "res18", size: int = 96, per_device_batch: int = 4, devices: tuple[int, ...] = (1, 2, 4, 8),
        repeats: int = 10, timeout_s: float = 600) -> list[dict]:
  """One row per device count (each from a fresh process), with `efficiency` = per-device images/s ÷ N = 1's."""
  rows = []
  for n in devices:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu",
               PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, "-m", "benchmarks.scaling", "--worker", f"--backbone={backbone}", f"--size={size}",
           f"--per_device_batch={per_device_batch}", f"--repeats={repeats}"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode:
      raise RuntimeError(f"scaling worker with {n} devices failed:\n{done.stderr[-3000:]}")
    rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
  base = rows[0]["images_per_s_per_device"]
  for row in rows:
    row["efficiency"] = row["images_per_s_per_device"] / base
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  train_step.add_model_flags(parser)
  parser.add_argument("--per_device_batch", type=int, default=4)
  parser.add_argument("--devices", default="1,2,4,8", help="simulated device counts, comma-separated")
  parser.add_argument("--repeats", type=int, default=10, help="timed steps per device count")
  parser.add_argument("--worker", action="store_true", help="internal: measure in this process and print JSON")
  args = parser.parse_args()
  if args.worker:
    print(json.dumps(worker(args.backbone, args.size, args.per_device_batch, args.repeats)))
    return
  devices = tuple(int(d) for d in args.devices.split(","))
  for row in run(args.backbone, args.size, args.per_device_batch, devices, args.repeats):
    print(json.dumps(row))


if __name__ == "__main__":
  main()
