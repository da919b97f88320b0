"""The same SAA step and SPA epoch in PyTorch, timed beside ours in one time window (issue: speed vs PyTorch).

  python -m benchmarks.torch_side                       # every row, 2 alternating rounds
  python -m benchmarks.torch_side --rows=res18-64 --rounds=3
  python -m benchmarks.torch_side --min_seconds=60       # rounds until each row has run a minute (./run.sh bench)
  python -m benchmarks.torch_side --jax_dtypes=float32,bfloat16   # ours also with model.dtype="bfloat16"
  python -m benchmarks.torch_side --torch_malloc=ours   # PyTorch on our malloc (mimalloc) too, not glibc's

PyTorch side (`benchmarks/torch_reference.py`, the official layout): G + T forward, soft-argmax, a D update on
detached features (SA, LSGAN), then G+T with L1 + λ_D·LSGAN-SA (pivot sdt) through the updated D, two Adams (b1 0.5);
fp32, NCHW, `torch.set_num_threads(threads)`. Ours: the trainer's compiled step (`benchmarks.train_step.build`),
on the same batch values. Both sides run on the same cores with the same thread count; the rounds alternate
PyTorch and JAX so that the machine's drift hits both. Each side runs in its own worker process, built and warmed up
before the first round and idle while the other computes: in one process, PyTorch ran 1.5–2.5x slower after our
oneDNN convolutions had run (both load an OpenMP runtime named libgomp.so.1; 2-core Intel Xeon), which would have
flattered our ratio. The SPA row runs one epoch of f (100k random poses, batch 256, Adam, clipping, dropout, the
descriptor loss) on each side. Needs the optional `requirements-torch.txt` extra.

`--jax_dtypes=float32,bfloat16` adds a third worker: our step with `model.dtype="bfloat16"` (oneDNN's bfloat16
convolutions, AMX / AVX512-BF16 where the CPU has them) against the same fp32 PyTorch step — a speed lever whose
accuracy cost is measured in docs/SPEED.md, reported in its own column, never in place of the fp32 ratio.
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

ROWS = {  # name: (backbone, input, batch)
    "res18-64": ("res18", 64, 32),
    "res18-96": ("res18", 96, 18),
    "res18-128": ("res18", 128, 32),
    "res50-256": ("res50", 256, 8),
}
SPA_ROW = "spa-epoch"
LMD_D = 0.02


def torch_available() -> str:
  """'' when PyTorch can be imported, else the reason (the message a skipped row shows)."""
  try:
    import torch  # noqa: F401
  except ImportError as error:
    return f"PyTorch not installed ({error}); pip install -r requirements-torch.txt"
  return ""


def torch_saa_step(backbone: str, size: int, batch_np: dict, threads: int):
  """A closure running one PyTorch SAA iteration on `batch_np` (numpy, NHWC images), as the official code."""
  import torch
  from benchmarks import torch_reference as ref
  torch.set_num_threads(threads)
  torch.manual_seed(0)
  depth = size // 4
  g = ref.resnet(backbone)
  t = ref.HeadNet(g.out_channels, depth)
  d = ref.ConvD(g.out_channels, ref.J)
  opt_gt = torch.optim.Adam(list(g.parameters()) + list(t.parameters()), lr=1e-3, betas=(0.5, 0.999))
  opt_d = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.999))
  image = torch.from_numpy(batch_np["image"]).permute(0, 3, 1, 2).contiguous()
  target, vis = torch.from_numpy(batch_np["joints_hm"]), torch.from_numpy(batch_np["vis"])
  have_depth, is_syn = torch.from_numpy(batch_np["have_depth"]), torch.from_numpy(batch_np["is_synthetic"])
  cells = torch.from_numpy(batch_np["joint_cells"]).long()
  ones = torch.ones_like(is_syn)

  def step():
    feats = g(image)
    coords = ref.soft_argmax(t(feats), depth)
    for p in d.parameters():
      p.requires_grad_(True)
    loss_d = ref.sa_lsgan_loss(d(feats.detach()), cells, is_syn, ones)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    for p in d.parameters():  # G's step goes through the updated D without accumulating D gradients
      p.requires_grad_(False)
    loss = (ref.coord_loss(coords, target, vis, have_depth, 1.0)
            + LMD_D * ref.sa_lsgan_loss(d(feats), cells, 0.5 * ones, ones))
    opt_gt.zero_grad(set_to_none=True)
    loss.backward()
    opt_gt.step()
    return float(loss)

  return step


def jax_saa_step(backbone: str, size: int, batch: int, dtype: str = "float32"):
  """(closure running one step of our compiled SAA step in compute `dtype`, the numpy batch it uses)."""
  import jax
  from benchmarks import train_step
  config = train_step.bench_config(backbone, size, batch, dtype=dtype)
  config.adapt.lmd_D = LMD_D
  batch_np = train_step.fake_batch(config)
  jitted, state, global_batch = train_step.build(config)
  holder = {"state": state}

  def step():
    holder["state"], metrics = jitted(holder["state"], global_batch)
    jax.block_until_ready(metrics)

  return step, batch_np


def torch_spa_epoch(num_poses: int, batch: int, threads: int, lmd_skel: float = 50.0):
  """A closure running one PyTorch SPA epoch (shuffle, batches, dropout, L1 + λ_skel·MSE descriptor, clip, Adam)."""
  import numpy as np
  import torch
  from ahup_jax import skeleton
  from benchmarks import torch_reference as ref
  torch.set_num_threads(threads)
  torch.manual_seed(0)
  net = ref.PAnet()
  opt = torch.optim.Adam(net.parameters(), lr=1e-4)
  rng = np.random.default_rng(0)
  poses = torch.from_numpy((rng.random((num_poses, 17, 3)) * 40 + 10).astype(np.float32))
  edges = torch.as_tensor(np.asarray(skeleton.EDGES))
  target = torch.ones(len(edges))

  def descriptor(p):
    lengths = (p[:, edges[:, 0]] - p[:, edges[:, 1]]).norm(dim=-1)
    return lengths / (p[:, skeleton.L_SHOULDER] - p[:, skeleton.R_SHOULDER]).norm(dim=-1, keepdim=True)

  def epoch():
    net.train()
    order = torch.randperm(num_poses)
    for start in range(0, num_poses, batch):
      x = poses[order[start:start + batch]]
      out = net(x.reshape(len(x), -1)).reshape(x.shape)
      loss = (out - x).abs().mean() + lmd_skel * ((descriptor(out) - target) ** 2).mean()
      opt.zero_grad(set_to_none=True)
      loss.backward()
      torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
      opt.step()

  return epoch


def jax_spa_epoch(num_poses: int, batch: int):
  import jax
  from benchmarks import spa_fit
  from configs import saa
  spa_cfg = saa.get_config().spa
  spa_cfg.batch_size = batch
  run_epoch, args = spa_fit.epoch_inputs(spa_cfg, num_poses)
  holder = {"args": args}

  def epoch():
    state, metrics = run_epoch(*holder["args"])
    holder["args"] = (state, *holder["args"][1:])
    jax.block_until_ready(metrics)

  return epoch


# Worker sides: PyTorch, ours in float32, ours in bfloat16 (`--jax_dtypes`).
JAX_SIDES = {"float32": "jax", "bfloat16": "jax-bf16"}


def _build(side: str, row: str, threads: int, spa_poses: int, spa_batch: int):
  """The callable one worker times: `side` ("torch", "jax" or "jax-bf16") of `row`."""
  if row == SPA_ROW:
    return torch_spa_epoch(spa_poses, spa_batch, threads) if side == "torch" else jax_spa_epoch(spa_poses, spa_batch)
  backbone, size, batch = ROWS[row]
  if side != "torch":
    return jax_saa_step(backbone, size, batch, {v: k for k, v in JAX_SIDES.items()}[side])[0]
  from benchmarks import train_step
  return torch_saa_step(backbone, size, train_step.fake_batch(train_step.bench_config(backbone, size, batch)),
                        threads)


def worker(side: str, row: str, threads: int, spa_poses: int, spa_batch: int, warmup: int) -> None:
  """Build and warm up one side, print "ready", then for each line "N" on stdin time N calls and print their
  seconds as a JSON list."""
  fn = _build(side, row, threads, spa_poses, spa_batch)
  for _ in range(warmup):
    fn()
  print("ready", flush=True)
  for line in sys.stdin:
    times = []
    for _ in range(int(line)):
      start = time.perf_counter()
      fn()
      times.append(time.perf_counter() - start)
    print(json.dumps(times), flush=True)


def side_by_side(row: str, items: int, rounds: int, repeats: int, warmup: int, threads: int, spa_poses: int,
                 spa_batch: int, jax_dtypes=("float32",), torch_malloc: str = "glibc", min_seconds: float = 0.0) -> dict:
  """Both sides of `row` in worker processes, in alternating rounds (PyTorch then JAX, in each of `jax_dtypes`):
  `rounds` rounds, and more while the rounds so far took under `min_seconds` (so fast rows get more samples of this
  machine's drift; the rule looks at the clock only, never at the results); median seconds per call of each round
  → items/s and the ratio of the sides' medians (`ratio`: float32;
  `ratio_bf16`: ours in bfloat16 against PyTorch's fp32). PyTorch's worker runs on glibc's malloc as its users run
  it (`torch_malloc="glibc"`), or on the malloc ours runs on ("ours": mimalloc, ahup_jax/allocator.py)."""
  command = [sys.executable, "-m", "benchmarks.torch_side", f"--rows={row}", f"--threads={threads}",
             f"--spa_poses={spa_poses}", f"--spa_batch={spa_batch}", f"--warmup={warmup}"]
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  torch_env = os.environ if torch_malloc == "ours" else allocator.without_mimalloc(dict(os.environ))
  workers = {side: subprocess.Popen([*command, f"--worker={side}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True, cwd=root, env=torch_env if side == "torch" else None)
             for side in ("torch", *(JAX_SIDES[d] for d in jax_dtypes))}
  try:
    for side, proc in workers.items():
      if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"torch_side: the {side} worker of {row} failed to start (exit {proc.wait()})")
    medians = {side: [] for side in workers}
    start = time.perf_counter()
    while len(medians["torch"]) < rounds or time.perf_counter() - start < min_seconds:
      for side, proc in workers.items():
        proc.stdin.write(f"{repeats}\n")
        proc.stdin.flush()
        medians[side].append(statistics.median(json.loads(proc.stdout.readline())))
  finally:
    for proc in workers.values():
      proc.stdin.close()
      proc.wait()
  rates = {side: [items / s for s in values] for side, values in medians.items()}
  out = {"torch_per_s": rates["torch"]}
  for side, suffix in (("jax", ""), ("jax-bf16", "_bf16")):
    if side in rates:
      out[f"jax{suffix}_per_s"] = rates[side]
      out[f"ratio{suffix}"] = statistics.median(rates[side]) / statistics.median(rates["torch"])
  return out


def run(rows=tuple(ROWS) + (SPA_ROW,), rounds: int = 2, repeats: int = 5, warmup: int = 2, threads: int = 0,
        spa_poses: int = 100_000, spa_batch: int = 256, jax_dtypes=("float32",), torch_malloc: str = "glibc",
        min_seconds: float = 0.0) -> dict:
  """Every row side by side (the SAA rows ours in each of `jax_dtypes`, the SPA epoch in float32), each for at least
  `rounds` rounds and `min_seconds` of rounds; {"skipped": reason} when PyTorch is missing."""
  reason = torch_available()
  if reason:
    return {"skipped": reason}
  import torch
  threads = threads or os.cpu_count()
  library = allocator.mimalloc_library()
  ours = "mimalloc" if library and os.environ.get("LD_PRELOAD") == library else "glibc"
  out = {"threads": threads, "torch": torch.__version__, "malloc": {"ahup_jax": ours,
                                                                    "torch": ours if torch_malloc == "ours" else "glibc"},
         "rows": []}
  for name in rows:
    if name == SPA_ROW:
      result = side_by_side(name, spa_poses, rounds, 1, 1, threads, spa_poses, spa_batch, torch_malloc=torch_malloc,
                            min_seconds=min_seconds)
      config, unit = f"SPA epoch, {spa_poses} poses, batch {spa_batch}", "poses/s"
    else:
      backbone, size, batch = ROWS[name]
      result = side_by_side(name, batch, rounds, repeats, warmup, threads, spa_poses, spa_batch, jax_dtypes,
                            torch_malloc, min_seconds)
      config, unit = f"{backbone} {size}² batch {batch}", "images/s"
    out["rows"].append({"row": name, "config": config, "unit": unit, **result})
    print(json.dumps(out["rows"][-1]), flush=True)
  return out


def main() -> None:
  allocator.restart_with_fast_malloc()  # the step's speed depends on it (ahup_jax/allocator.py)
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--rows", default=",".join((*ROWS, SPA_ROW)), help=f"comma-separated of {(*ROWS, SPA_ROW)}")
  parser.add_argument("--rounds", type=int, default=2, help="alternating PyTorch/JAX rounds (at least)")
  parser.add_argument("--min_seconds", type=float, default=0.0,
                      help="more rounds while a row's rounds so far took less than this (cheap rows get more)")
  parser.add_argument("--repeats", type=int, default=5, help="timed calls per round and side")
  parser.add_argument("--warmup", type=int, default=2, help="untimed calls of each side before the first round")
  parser.add_argument("--threads", type=int, default=0, help="PyTorch threads (default: all cores, as XLA)")
  parser.add_argument("--spa_poses", type=int, default=100_000)
  parser.add_argument("--spa_batch", type=int, default=256)
  parser.add_argument("--jax_dtypes", default="float32",
                      help="our step's compute dtypes, comma-separated of float32,bfloat16 (SAA rows)")
  parser.add_argument("--torch_malloc", default="glibc", choices=("glibc", "ours"),
                      help="PyTorch's malloc: glibc (as its users run it) or ours (mimalloc, ahup_jax/allocator.py)")
  parser.add_argument("--worker", choices=("torch", *JAX_SIDES.values()), help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker:
    worker(args.worker, args.rows, args.threads, args.spa_poses, args.spa_batch, args.warmup)
    return
  print(json.dumps(run(args.rows.split(","), args.rounds, args.repeats, args.warmup, args.threads, args.spa_poses,
                       args.spa_batch, tuple(args.jax_dtypes.split(",")), args.torch_malloc, args.min_seconds),
                   indent=1))


if __name__ == "__main__":
  main()
