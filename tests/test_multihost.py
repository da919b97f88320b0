"""`python -m ahup_jax.main` as a two-process job (docs/MULTIHOST.md): 2 local processes × 1 CPU device, gloo
collectives, loopback coordinator, against 1 process × 2 simulated devices on the same global batch.

Both layouts run the same SPMD program on a 2-device "data" axis and see the same global batch row for row
(`pivot.make_train_dataset` lays it out per data shard, not per process), so the only difference is who adds the
two devices' partial sums: XLA's in-process all-reduce or gloo's. A sum of two floats does not depend on the
order, so parameters and metrics must be *identical*, not just close; the tests assert exact equality.

Cost: compiling the SAA step, the eval steps and the SPA epoch in 3 processes at once dominates; on a 2-core machine
under a load of ~15 the module took 18 min (fixture 810 s, resume test 287 s with the persistent compilation cache
that the fixture's 2-process run fills).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from tests.conftest import REPO, final_params, subprocess_env
from tests.test_sharding import free_port

# 2 epochs of 2 steps (global batch 6: 3 rows per process), a checkpoint every step; eval batch 10 leaves the last
# test batch uneven: Human36M (16) → rows 10–15 valid of 10–19, ScanAva (12) → process 1's half all padding.
FLAGS = ["--config=configs/saa.py:synth_tiny", "--config.train.epochs=2", "--config.train.iters_per_epoch=2",
         "--config.train.checkpoint_every_steps=1", "--config.eval.batch_size=10", "--config.spa.epochs=1"]
FINAL_STEP = 4
TIMEOUT_S = 900


def _command(synth_root: str, workdir: str, mode: str, *extra: str) -> list[str]:
  return [sys.executable, "-m", "ahup_jax.main", *FLAGS, f"--config.data.root={synth_root}",
          f"--workdir={workdir}", f"--mode={mode}", *extra]


def _start(synth_root: str, workdir: str, mode: str, processes: int, devices: int = 1) -> list[subprocess.Popen]:
  """One `ahup_jax.main` per process (a single one without the distributed flags), output to WORKDIR/logs; all
  share the tests' compilation cache (later launches of the same program skip compiling)."""
  env = subprocess_env(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  logs = os.path.join(workdir, "logs")
  os.makedirs(logs, exist_ok=True)
  launch = len(os.listdir(logs))  # a relaunch gets new log files
  port = free_port()
  procs = []
  for i in range(processes):
    extra = ([f"--coordinator_address=127.0.0.1:{port}", f"--num_processes={processes}", f"--process_id={i}"]
             if processes > 1 else [])
    log = os.path.join(logs, f"{mode}_{launch}_process{i}.log")
    with open(log, "w") as f:
      proc = subprocess.Popen(_command(synth_root, workdir, mode, *extra), cwd=REPO, env=env, stdout=f,
                              stderr=subprocess.STDOUT)
    proc.log = log
    procs.append(proc)
  return procs


def _wait(procs: list[subprocess.Popen], timeout: float = TIMEOUT_S) -> None:
  """Waits for all; a failure or the timeout kills the others and shows the failed process's log tail."""
  deadline = time.monotonic() + timeout
  try:
    for proc in procs:
      proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
      if proc.returncode != 0:
        with open(proc.log) as f:
          tail = f.read()[-4000:]
        raise AssertionError(f"{proc.args[3:]} exited with {proc.returncode}:\n{tail}")
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()


def _metrics(workdir: str) -> dict:
  names = ("eval/metrics.json", "eval/metrics_spa.json", "eval/metrics_mean_pose.json", "eval_ScanAva/metrics.json")
  return {name: json.load(open(os.path.join(workdir, name))) for name in names}


@pytest.fixture(scope="module")
def runs(synth_root, tmp_path_factory) -> dict[str, str]:
  """`--mode=all` on 1 process × 2 devices and on 2 processes × 1 device, side by side."""
  workdirs = {"one": str(tmp_path_factory.mktemp("one_process")), "two": str(tmp_path_factory.mktemp("two"))}
  procs = _start(synth_root, workdirs["one"], "all", 1, devices=2) + _start(synth_root, workdirs["two"], "all", 2)
  _wait(procs)
  return workdirs


def test_two_processes_match_one_process_with_two_devices(runs):
  step_one, params_one = final_params(runs["one"])
  step_two, params_two = final_params(runs["two"])
  assert step_one == step_two == FINAL_STEP
  leaves_one, leaves_two = jax.tree.leaves(params_one), jax.tree.leaves(params_two)
  assert len(leaves_one) == len(leaves_two) > 0
  for a, b in zip(leaves_one, leaves_two):
    np.testing.assert_array_equal(a, b)
  metrics_one, metrics_two = _metrics(runs["one"]), _metrics(runs["two"])
  assert metrics_two == metrics_one
  # every test sample exactly once, although the last batch of 10 does not divide over the 2 processes
  assert metrics_two["eval/metrics.json"]["count"] == 16 and metrics_two["eval_ScanAva/metrics.json"]["count"] == 12
  two = runs["two"]
  pred = np.load(os.path.join(two, "eval", "pred_hm.npz"))
  np.testing.assert_array_equal(pred["pred"], np.load(os.path.join(runs["one"], "eval", "pred_hm.npz"))["pred"])
  # process 0 alone writes the shared files: one TensorBoard event file, the results table, the export
  assert len([n for n in os.listdir(os.path.join(two, "tensorboard")) if n.startswith("events.out")]) == 1
  logs = sorted(os.listdir(os.path.join(two, "logs")))
  assert "SAA + SPA" in open(os.path.join(two, "results.md")).read()
  assert ["SAA + SPA" in open(os.path.join(two, "logs", name)).read() for name in logs] == [True, False]
  assert os.path.exists(os.path.join(two, "export", "config.json"))


def test_two_processes_killed_mid_run_resume_to_the_same_params(synth_root, runs, tmp_path):
  """SIGKILL both processes once a step checkpoint is complete, restart both: the params of the uninterrupted run."""
  workdir = str(tmp_path / "resumed")
  procs = _start(synth_root, workdir, "train", 2)
  ckpt_dir = os.path.join(workdir, "checkpoints")
  deadline = time.monotonic() + TIMEOUT_S
  try:
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
      if any(n.isdigit() for n in (os.listdir(ckpt_dir) if os.path.isdir(ckpt_dir) else [])):
        for proc in procs:
          proc.send_signal(signal.SIGKILL)
        break
      time.sleep(0.005)
    for proc in procs:
      proc.wait(timeout=60)
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
  assert [p.returncode for p in procs] == [-signal.SIGKILL] * 2, "the run finished before it could be killed"
  killed_at = max(int(n) for n in os.listdir(ckpt_dir) if n.isdigit())
  assert killed_at < FINAL_STEP
  _wait(_start(synth_root, workdir, "train", 2))
  step, params = final_params(workdir)
  step_ref, params_ref = final_params(runs["two"])
  assert step == step_ref == FINAL_STEP
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(params_ref)):
    np.testing.assert_array_equal(a, b)
  assert json.load(open(os.path.join(workdir, "eval", "metrics.json"))) == _metrics(runs["two"])["eval/metrics.json"]


@pytest.mark.parametrize("flags, message", [
    (dict(num_processes=2, process_id=0), "got --num_processes, --process_id but not --coordinator_address"),
    (dict(coordinator_address="127.0.0.1", num_processes=2, process_id=0), "must be HOST:PORT"),
    (dict(coordinator_address="h:1", num_processes=2, process_id=2), "must be in [0, --num_processes=2)"),
    (dict(coordinator_address="h:1", mode="auto"), "--distributed=auto detects the cluster itself"),
])
def test_incomplete_or_inconsistent_distributed_flags_are_errors(flags, message):
  from ahup_jax import distributed
  with pytest.raises(ValueError) as error:
    distributed.initialize(**flags)
  assert message in str(error.value)
  distributed.initialize()  # no flags: a single-process run, nothing to join
  assert jax.process_count() == 1


def test_main_reports_missing_distributed_flags(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "ahup_jax.main", "--config=configs/saa.py:synth_tiny",
                         f"--workdir={tmp_path}", "--process_id=1"], cwd=REPO, env=subprocess_env(),
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0
  assert "needs all three of --coordinator_address=HOST:PORT, --num_processes=N and --process_id=I" in proc.stderr
