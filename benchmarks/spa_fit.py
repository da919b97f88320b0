"""SPA fit speed (SPEC §7.4, §8.1 "< 20 minutes"): seconds per epoch, 70-epoch extrapolation, matmul-ceiling share.

  python -m benchmarks.spa_fit                             # N = 100k poses, batch 256, 3 timed epochs
  python -m benchmarks.spa_fit --num_poses=20000 --epochs=2

Times spa.fit.make_trainer's compiled epoch (one lax.scan of Adam steps) after its compilation, the donated state
threaded through as fit_spa does. XLA's cost analysis counts a scan body once, so an epoch's FLOPs are those of
the N-pose program plus (steps − 1) × those of a one-step (N = batch) program.
"""
from __future__ import annotations

import argparse
import json
import math

import jax
import numpy as np

from ahup_jax.spa import fit
from benchmarks import timing
from configs import saa

EPOCHS = 70  # the paper's schedule
FULL_POSES = 100_000  # the estimate scales the measured epoch linearly to this N


def epoch_inputs(spa_cfg, num_poses: int, seed: int = 0):
  """(run_epoch, its arguments (state, key, poses, target descriptor)) for `num_poses` random hm poses."""
  trainer = fit.make_trainer(spa_cfg, num_poses)
  rng = np.random.default_rng(seed)
  poses = jax.device_put((rng.random((num_poses, 17, 3)) * 40 + 10).astype(np.float32))
  state = trainer.init(jax.random.key(seed), poses[:2])
  return trainer.run_epoch, (state, jax.random.key(seed), poses, jax.device_put(np.ones(16, np.float32)))


def one_step_flops(spa_cfg) -> float:
  """XLA FLOPs of the epoch program at N = batch (one Adam step), compile only."""
  run_epoch, args = epoch_inputs(spa_cfg, int(spa_cfg.batch_size))
  return timing.xla_flops(timing.compile_aot(run_epoch, *args)[0])


def run(num_poses: int = 100_000, batch: int = 256, epochs: int = 3) -> dict:
  """Seconds per epoch (median of `epochs` epochs run after compilation), GFLOP/s, and the time of
  70 epochs on 100k poses (the epoch time scaled linearly in N when `num_poses` differs)."""
  spa_cfg = saa.get_config().spa
  spa_cfg.batch_size = batch
  steps = math.ceil(num_poses / batch)
  run_epoch, args = epoch_inputs(spa_cfg, num_poses)
  compiled, compile_s = timing.compile_aot(run_epoch, *args)
  flops = timing.xla_flops(compiled) + (steps - 1) * one_step_flops(spa_cfg)

  t, _ = timing.timed(run_epoch, *args, repeats=epochs, warmup=0, carry=True)  # compiled above; state donated
  return {"num_poses": num_poses, "batch": batch, "steps_per_epoch": steps, "epochs_timed": epochs,
          "epoch_s": t.median_s, "min_s": t.min_s, "compile_s": compile_s, "gflop_per_epoch": flops / 1e9,
          "achieved_gflops": timing.gflops(flops, t.median_s),
          f"estimated_{EPOCHS}_epochs_100k_s": t.median_s * EPOCHS * FULL_POSES / num_poses}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--num_poses", type=int, default=100_000)
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after compilation)")
  args = parser.parse_args()
  print(json.dumps(run(args.num_poses, args.batch, args.epochs), indent=1))


if __name__ == "__main__":
  main()
