"""`./run.sh bench`: every instrument on this machine → BENCHMARKS.md + benchmarks/results.json.

  python -m benchmarks.run_all             # full size (~15 min on 2 CPU cores); rewrites BENCHMARKS.md, results.json
  python -m benchmarks.run_all --quick     # tiny sizes, a smoke test; writes under $TMPDIR/ahup_bench_quick
  python -m benchmarks.run_all --only=ceilings,spa_fit   # some instruments; writes under $TMPDIR/ahup_bench_full

Instruments (one script each, runnable alone; shared helpers in benchmarks/timing.py): ceilings (fp32 matmul,
3x3 conv, dense layer), train_step, torch_side (the same SAA step and SPA epoch in PyTorch, timed beside ours),
profile (op-by-op breakdown of the ResNet-50 step), inference (+ SPA head overhead), input_pipeline, spa_fit,
scaling (1–8 simulated devices), memory (does ResNet-50 256² batch 120 fit 16 / 80 GB). The Targets section
compares the figures with the speed targets.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402

from ahup_jax import allocator, machine  # noqa: E402
from benchmarks import (ceilings, inference, input_pipeline, memory, profile, report, scaling, spa_fit,  # noqa: E402
                        timing, torch_side, train_step)

HERE = os.path.dirname(os.path.abspath(__file__))
INSTRUMENTS = ("ceilings", "train_step", "torch_side", "profile", "inference", "input_pipeline", "spa_fit", "scaling",
               "memory")

# Per size: the arguments of each instrument. Train rows: (backbone, input, batch, dtype); the first is the feed
# reference.
SIZES = {
    "full": {
        "ceilings": dict(matmul_n=2048, conv_batch=32, repeats=10),
        "train_step": dict(rows=[("res18", 96, 18, "float32"), ("res18", 128, 32, "float32"),
                                 ("res50", 256, 8, "float32"), ("res50", 256, 8, "bfloat16")], repeats=10, warmup=2),
        "torch_side": dict(rows=("res18-64", "res18-96", "res18-128", "res50-256", "spa-epoch"), rounds=2, repeats=5,
                           min_seconds=60, jax_dtypes=("float32", "bfloat16")),
        "profile": dict(backbone="res50", size=256, batch=8, top=12),
        "inference": dict(rows=[("res18", 96, 64), ("res50", 256, 4)], repeats=10, spa=("res50", 256)),
        "input_pipeline": dict(sizes=(96, 128, 256), image_size=512, batch_size=30, steps=20, warmup_steps=3,
                               num_images=32, rounds=3),
        "spa_fit": dict(num_poses=100_000, batch=256, epochs=3),
        "scaling": dict(backbone="res18", size=96, per_device_batch=4, devices=(1, 2, 4, 8), repeats=10),
        "memory": dict(backbone="res50", size=256, batch=120, devices=(1, 2, 4, 8), remat=(False, True)),
    },
    "quick": {
        "ceilings": dict(matmul_n=512, conv_batch=4, repeats=3),
        "train_step": dict(rows=[("res18", 96, 6, "float32")], repeats=3, warmup=1),
        "torch_side": dict(rows=("res18-64", "spa-epoch"), rounds=1, repeats=2, warmup=1, spa_poses=2048,
                           jax_dtypes=("float32", "bfloat16")),
        "profile": dict(backbone="res18", size=96, batch=6, top=5),
        "inference": dict(rows=[("res18", 96, 4)], repeats=3, spa=("res18", 96)),
        "input_pipeline": dict(sizes=(96,), image_size=192, batch_size=6, steps=3, warmup_steps=1, num_images=6,
                               rounds=2),
        "spa_fit": dict(num_poses=2048, batch=256, epochs=2),
        "scaling": dict(backbone="res18", size=96, per_device_batch=2, devices=(1, 2), repeats=2),
        "memory": dict(backbone="res18", size=96, batch=8, devices=(1, 2), remat=(True,)),
    },
}


def measure(name: str, sizes: dict) -> object:
  """Runs instrument `name` with its arguments in `sizes` (one entry of SIZES)."""
  cfg, c = sizes[name], sizes["ceilings"]
  conv_ceiling = lambda: ceilings.conv3x3(  # noqa: E731
      c["conv_batch"], repeats=c["repeats"], passes=("forward",))["gflops"]
  matmul_ceiling = lambda: ceilings.matmul(c["matmul_n"], c["repeats"])["gflops"]  # noqa: E731
  if name == "ceilings":
    return ceilings.run(**cfg)
  if name == "train_step":  # each row between two conv-ceiling measurements (timing.bracketed)
    return [timing.bracketed(lambda: train_step.run(b, s, n, dtype=dtype, repeats=cfg["repeats"],
                                                    warmup=cfg["warmup"]), conv_ceiling)
            for b, s, n, dtype in cfg["rows"]]
  if name == "torch_side":
    return torch_side.run(**cfg)
  if name == "profile":
    return profile.run(**cfg)
  if name == "inference":
    return {"steps": [inference.run(b, s, n, flip, cfg["repeats"]) for b, s, n in cfg["rows"]
                      for flip in (False, True)],
            "spa_overhead": inference.spa_overhead(*cfg["spa"])}
  if name == "input_pipeline":
    args = {k: v for k, v in cfg.items() if k != "sizes"}
    return [input_pipeline.run(input_size=size, **args) for size in cfg["sizes"]]
  if name == "spa_fit":  # between two matmul-ceiling measurements (timing.bracketed)
    return timing.bracketed(lambda: spa_fit.run(**cfg), matmul_ceiling)
  if name == "scaling":
    return scaling.run(**cfg)
  if name == "memory":
    return memory.run(**cfg)
  raise ValueError(f"unknown instrument {name!r}; one of {INSTRUMENTS}")


def feed_ratio(results: dict, train_row: tuple) -> dict | None:
  """Input-pipeline images/s at the train reference row's crop size ÷ the images/s that train step consumes."""
  backbone, size, batch = train_row
  trains = [t for t in results.get("train_step", []) if (t["backbone"], t["input"], t["batch"]) == train_row]
  feeds = [p for p in results.get("input_pipeline", []) if p["input_size"] == size]
  if not trains or not feeds:
    return None
  train, feed = trains[0]["images_per_s"], feeds[0]["images_per_s"]
  return {"config": f"{backbone} {size}² batch {batch}", "train_images_per_s": train,
          "pipeline_images_per_s": feed, "ratio": feed / train}


def main() -> None:
  allocator.restart_with_fast_malloc()  # the step's speed depends on it (ahup_jax/allocator.py)
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, a few minutes); "
                      "writes to a temporary folder unless --markdown / --json are given")
  parser.add_argument("--only", default=",".join(INSTRUMENTS), help="instruments to run, comma-separated")
  parser.add_argument("--markdown", default=None,
                      help="output markdown (default BENCHMARKS.md; with --quick or --only a temporary folder)")
  parser.add_argument("--json", default=None,
                      help="output JSON (default benchmarks/results.json; with --quick or --only a temporary folder)")
  args = parser.parse_args()
  size = "quick" if args.quick else "full"
  only = args.only.split(",")
  # Only a full run of every instrument replaces the committed BENCHMARKS.md / results.json by default.
  partial = args.quick or set(only) != set(INSTRUMENTS)
  out_dir = os.path.join(tempfile.gettempdir(), f"ahup_bench_{size}") if partial else None
  if out_dir:
    os.makedirs(out_dir, exist_ok=True)
  md_path = args.markdown or (os.path.join(out_dir, "BENCHMARKS.md") if out_dir else
                              os.path.join(os.path.dirname(HERE), "BENCHMARKS.md"))
  json_path = args.json or os.path.join(out_dir or HERE, "results.json")

  start = time.perf_counter()
  command = "python -m benchmarks.run_all " + " ".join(sys.argv[1:])
  results = {"meta": machine.describe() | {"size": size, "command": command}}
  for name in only:
    tick = time.perf_counter()
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    results[name] = measure(name, SIZES[size])
    print(f"[bench] {name}: {time.perf_counter() - tick:.0f} s", file=sys.stderr, flush=True)
    with open(json_path, "w") as f:  # after every instrument: a killed run keeps what it measured
      json.dump(results, f, indent=1, default=float)
  results["meta"]["seconds"] = time.perf_counter() - start
  results["feed"] = feed_ratio(results, SIZES[size]["train_step"]["rows"][0][:3])
  if "ceilings" in results:
    results["targets"] = report.targets(results)
  with open(json_path, "w") as f:
    json.dump(results, f, indent=1, default=float)
  if set(INSTRUMENTS) <= set(results):
    with open(md_path, "w") as f:
      f.write(report.markdown(results) + "\n")
    print(f"[bench] wrote {md_path}", file=sys.stderr)
  print(f"[bench] wrote {json_path}", file=sys.stderr)
  for target in results.get("targets", []):
    print(f"{target['status']:>12}  {target['target']}: {target['detail']}")


if __name__ == "__main__":
  main()
