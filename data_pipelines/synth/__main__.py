"""Command line of the embedded dataset generator.

  python -m data_pipelines.synth --out DIR --preset tiny|small|full --seed N [--close-gaps appearance,pose]
      [--widen-gaps appearance]
"""
from __future__ import annotations

import argparse
import os
import shutil
import time

from data_pipelines import synth
from data_pipelines.synth import domains


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(prog="python -m data_pipelines.synth", description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True, help="output folder (the readers' data root)")
  parser.add_argument("--preset", default="tiny", choices=sorted(synth.PRESETS))
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--close-gaps", default="",
                      help=f"comma-separated subset of {','.join(domains.GAPS)}: give the source the lab's setting")
  parser.add_argument("--widen-gaps", default="",
                      help=f"comma-separated subset of {','.join(domains.WIDER)}: give the lab and wild domains a "
                      "harsher setting (applied before --close-gaps)")
  parser.add_argument("--workers", type=int, default=None, help="render processes (default: all CPUs)")
  parser.add_argument("--force", action="store_true", help="delete the dataset folders already in --out first")
  args = parser.parse_args(argv)
  if args.force:
    for folder in synth.DATASET_FOLDERS:
      shutil.rmtree(os.path.join(args.out, folder), ignore_errors=True)
  os.makedirs(args.out, exist_ok=True)
  start = time.perf_counter()
  labels = synth.generate(args.out, args.preset, args.seed, workers=args.workers,
                          gaps_closed=tuple(filter(None, args.close_gaps.split(","))),
                          gaps_widened=tuple(filter(None, args.widen_gaps.split(","))))
  summary = ", ".join(f"{name} {len(inst)}" for name, inst in labels.items())
  print(f"wrote {args.out} ({args.preset}, seed {args.seed}): {summary} instances in "
        f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
  main()
