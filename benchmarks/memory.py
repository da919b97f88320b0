"""Does the paper's training configuration fit in accelerator memory? A compile-only estimate from XLA.

  python -m benchmarks.memory                          # ResNet-50 256², global batch 120, remat_head off/on
  python -m benchmarks.memory --backbone=res18 --size=96 --batch=12 --devices=1,2

The SAA train step is compiled (never run) for one device at per-device batches B and B / max(devices); the
compiled executable's buffer assignment gives its peak bytes (arguments + outputs − donated + temporaries). Under
n-way data parallelism each device runs the same program at batch B / n (state replicated, batch split), so the
per-device peak at n devices is interpolated linearly in the per-device batch between those two compiles (exact
at n = 1 and n = max). XLA:CPU's buffer assignment stands in for the accelerator's: GPU/TPU fusion and
convolution workspaces differ, so treat the figures as ±20 %; JAX preallocates 75 % of HBM by default.
"""
from __future__ import annotations

import argparse
import json

from benchmarks import timing, train_step

HBM_GB = (16, 80)


def peak_bytes(backbone: str, size: int, batch: int, remat_head: bool) -> tuple[int, float]:
  """(peak bytes, compile seconds) of the one-device train step at `batch`, compiled from abstract inputs."""
  config = train_step.bench_config(backbone, size, batch, remat_head=remat_head)
  config.mesh.data = 1
  jitted, state, batch_arrays = train_step.build(config, abstract=True)
  compiled, seconds = timing.compile_aot(jitted, state, batch_arrays)
  return timing.memory_bytes(compiled)["peak"], seconds


def run(backbone: str = "res50", size: int = 256, batch: int = 120, devices: tuple[int, ...] = (1, 2, 4, 8),
        remat: tuple[bool, ...] = (False, True)) -> list[dict]:
  """One row per (remat_head, data-parallel devices): per-device batch, peak GB and its fraction of each HBM."""
  rows = []
  for remat_head in remat:
    small = batch // max(devices)
    full_peak, full_s = peak_bytes(backbone, size, batch, remat_head)
    small_peak, small_s = peak_bytes(backbone, size, small, remat_head) if small != batch else (full_peak, 0.0)
    per_sample = (full_peak - small_peak) / max(batch - small, 1)
    for n in devices:
      per_device = batch / n
      peak = small_peak + per_sample * (per_device - small)
      row = {"backbone": backbone, "input": size, "global_batch": batch, "remat_head": remat_head, "devices": n,
             "per_device_batch": per_device, "peak_gb": peak / 1e9, "compile_s": full_s + small_s,
             "measured": n in (1, max(devices))}
      row.update({f"of_{hbm}gb": peak / (hbm * 1e9) for hbm in HBM_GB})
      rows.append(row)
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  train_step.add_model_flags(parser, "res50", 256)
  parser.add_argument("--batch", type=int, default=120, help="global batch")
  parser.add_argument("--devices", default="1,2,4,8", help="data-parallel device counts, comma-separated")
  parser.add_argument("--remat", default="off,on", help="remat_head settings to compile: off, on or off,on")
  args = parser.parse_args()
  devices = tuple(int(d) for d in args.devices.split(","))
  remat = tuple(r == "on" for r in args.remat.split(","))
  print(json.dumps(run(args.backbone, args.size, args.batch, devices, remat), indent=1))


if __name__ == "__main__":
  main()
