"""Mesh and shardings; the SAA step on 1 vs 8 simulated devices and on two jax.distributed processes.

Other device layouts need their own process (the device count is fixed when JAX starts): they run
tests/multiprocess_worker.py in subprocesses, always killed on the way out.
"""
from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time

import jax
import ml_collections
import numpy as np
import pytest
from jax.sharding import Mesh

from ahup_jax import sharding

WORKER = pathlib.Path(__file__).with_name("multiprocess_worker.py")
REPO = WORKER.parents[1]


def worker_env(device_count: int) -> dict:
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env.update(XLA_FLAGS=f"--xla_force_host_platform_device_count={device_count}", JAX_PLATFORMS="cpu",
             PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
  return env


def run_workers(commands: list[list[str]], device_count: int, timeout: float) -> None:
  """Starts every command at once and waits for all; any failure or timeout kills the ones still running."""
  procs = [subprocess.Popen([sys.executable, str(WORKER), *cmd], cwd=REPO, env=worker_env(device_count),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for cmd in commands]
  deadline = time.monotonic() + timeout
  try:
    for proc in procs:
      output, _ = proc.communicate(timeout=max(deadline - time.monotonic(), 1.0))
      assert proc.returncode == 0, f"worker {proc.args[2:]} failed:\n{output[-4000:]}"
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def mesh_config(data: int, model: int = 1) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(data=data, model=model))


def test_make_mesh_uses_every_device_and_rejects_bad_shapes():
  n = jax.device_count()
  mesh = sharding.make_mesh(mesh_config(-1))
  assert mesh.axis_names == ("data", "model") and mesh.devices.shape == (n, 1)
  with pytest.raises(ValueError, match="mesh.data"):
    sharding.make_mesh(mesh_config(n + 1))
  with pytest.raises(ValueError, match="mesh.model"):
    sharding.make_mesh(mesh_config(-1, n + 1))


def test_shardings_split_the_batch_and_replicate_the_state():
  mesh = sharding.make_mesh(mesh_config(-1))
  assert sharding.batch_sharding(mesh).spec == jax.sharding.PartitionSpec("data")
  assert sharding.replicated(mesh).is_fully_replicated
  state = {"params": {"w": np.zeros(3)}, "step": np.zeros(())}
  assert all(s.is_fully_replicated for s in jax.tree.leaves(sharding.state_sharding(state, mesh)))
  batch = sharding.to_global({"x": np.arange(6.0).reshape(3, 2)}, mesh)
  np.testing.assert_array_equal(np.asarray(batch["x"]), np.arange(6.0).reshape(3, 2))
  assert batch["x"].sharding == sharding.batch_sharding(mesh)


def _state_copies(compiled_text: str) -> int:
  """Copies of the step's state parameters in a compiled program (XLA names the entry parameters state_...)."""
  return compiled_text.count("copy(%state_")


def test_cpu_train_step_skips_the_state_copies_with_identical_results():
  """`jit_train_step` on CPU compiles with `CPU_COMPILER_OPTIONS` (copy insertion by region analysis): no copy of a
  donated state buffer, where the plain jit copies parameters and Adam moments; two steps agree bit for bit."""
  from benchmarks import train_step as bench
  from configs import saa
  from ahup_jax.train import saa_step, state as train_state

  config = saa.get_config("synth_tiny")  # res18 96², batch 6
  mesh = sharding.make_mesh(config.mesh)
  assert sharding.compiler_options(mesh) == sharding.CPU_COMPILER_OPTIONS
  step = saa_step.make_train_step(config)
  state_sh = sharding.state_sharding(jax.eval_shape(lambda: train_state.create_train_state(config, jax.random.key(0))),
                                     mesh)
  make_state = lambda: jax.device_put(train_state.create_train_state(config, jax.random.key(0)), state_sh)  # noqa: E731
  batches = [sharding.to_global(bench.fake_batch(config, seed), mesh) for seed in range(2)]
  ours = sharding.jit_train_step(step, mesh, make_state())
  plain = jax.jit(step, in_shardings=(state_sh, sharding.batch_sharding(mesh)),
                  out_shardings=(state_sh, sharding.replicated(mesh)), donate_argnums=0)
  compiled = {name: jitted.lower(make_state(), batches[0]).compile() for name, jitted in
              (("ours", ours), ("plain", plain))}
  assert _state_copies(compiled["plain"].as_text()) > 0  # the control: this test can fail
  assert _state_copies(compiled["ours"].as_text()) == 0
  results = []
  for program in compiled.values():
    state = make_state()
    for batch in batches:
      state, metrics = program(state, batch)
    results.append(jax.device_get((state, metrics)))
  for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1])):
    np.testing.assert_array_equal(a, b)


def test_batchnorm_statistics_cover_the_global_batch(tmp_path):
  """8 simulated devices, batch split on "data": running stats and gradients equal the 1-device ones, i.e. the
  statistics are over the global batch (per-shard statistics would differ)."""
  out = tmp_path / "bn.npz"
  run_workers([["batchnorm", "--out", str(out)]], device_count=8, timeout=180)
  r = np.load(out)
  assert int(r["device_count"]) == 8
  np.testing.assert_allclose(r["all/mean"], 0.5 * r["global_mean"], rtol=1e-5, atol=1e-6)  # momentum 0.5
  np.testing.assert_allclose(r["all/mean"], r["one/mean"], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(r["all/var"], r["one/var"], rtol=1e-5)
  np.testing.assert_allclose(r["all/grad"], r["one/grad"], rtol=1e-4, atol=1e-5 * np.abs(r["one/grad"]).max())
  assert np.abs(r["first_shard_mean"] - r["global_mean"]).max() > 0.1


@pytest.fixture(scope="module")
def one_device_run():
  """3 SAA steps on the pytest process's first device (the reference layout)."""
  import multiprocess_worker
  mesh = Mesh(np.asarray(jax.devices()[:1]).reshape(1, 1), ("data", "model"))
  return multiprocess_worker.run_steps(mesh, slice(None), steps=3)


def assert_same_run(got, want):
  """Same losses per step, same BatchNorm statistics and (nearly) the same parameters after the first step.

  Exact parameter equality is not a property of Adam: its first update is ≈ −lr·sign(g), so gradient entries
  near 0 flip sign with the float summation order of a different layout (0.05–0.2 % of the entries here), and
  those ±lr differences make later steps drift apart elementwise (losses by ~1e-4 relative at step 3). The first
  step must match to float precision; a BatchNorm computed per device, or gradients not summed over devices,
  would miss by far more than the later steps' tolerances.
  """
  np.testing.assert_array_equal(want["metric/z_on"], [0.0, 0.0, 1.0])  # z supervision switches on at step 2
  for key in ("loss", "loss_coord", "loss_adv", "loss_d", "grad_norm_gt", "grad_norm_d"):
    np.testing.assert_allclose(got[f"metric/{key}"][0], want[f"metric/{key}"][0], rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(got[f"metric/{key}"], want[f"metric/{key}"], rtol=1e-2 if "norm" in key else 2e-3,
                               err_msg=key)
  np.testing.assert_array_equal(got["metric/d_acc_real"], want["metric/d_acc_real"])
  state_keys = [k for k in want if not k.startswith("metric/")]
  for key in state_keys:
    if key.startswith("['batch_stats']"):  # after step 1: a function of the initial params and the batch only
      np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-5, err_msg=key)
    else:
      diff = np.abs(got[key] - want[key])
      assert diff.max() <= 2.2e-3, key  # at most a flipped Adam step (2·lr)
  params = [k for k in state_keys if k.startswith("['params']")]
  off = sum(int(np.sum(np.abs(got[k] - want[k]) > 1e-5)) for k in params)
  assert off <= 1e-2 * sum(want[k].size for k in params), off  # seen: 0.05 % (8 devices), 0.16 % (2 processes)


@pytest.mark.slow
def test_eight_devices_match_one_device(one_device_run, tmp_path):
  """The same 3 steps with the batch split over 8 simulated devices: same losses, statistics and parameters."""
  out = tmp_path / "devices.npz"
  run_workers([["devices", "--out", str(out)]], device_count=8, timeout=540)
  got = np.load(out)
  assert int(got["device_count"]) == 8
  assert_same_run(got, one_device_run)


@pytest.mark.slow
def test_two_processes_match_one_process(one_device_run, tmp_path):
  """Two jax.distributed processes (CPU, gloo), each feeding half of the global batch: the 3 steps of the
  single-process run, in both processes (the worker also checks where each process's rows land)."""
  port = free_port()
  outs = [tmp_path / f"process{i}.npz" for i in range(2)]
  run_workers([["process", "--process_id", str(i), "--num_processes", "2", "--port", str(port), "--steps", "3",
                "--out", str(outs[i])] for i in range(2)], device_count=1, timeout=540)
  for out in outs:
    got = np.load(out)
    assert int(got["device_count"]) == 2
    assert_same_run(got, one_device_run)
