"""Runs SAA steps (or a BatchNorm probe) on a chosen device layout and saves the results, for tests/test_sharding.py.

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/multiprocess_worker.py devices --out r.npz
  python tests/multiprocess_worker.py process --process_id 0 --num_processes 2 --port 12345 --out r0.npz
  XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/multiprocess_worker.py batchnorm --out r.npz

The device count is fixed when JAX starts, hence one process per layout. `run_steps` is also imported by the
test to compute the single-device reference in the pytest process.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh  # noqa: E402

GLOBAL_BATCH = 8
STEPS = 3
SIZE = 96  # 3×3 features, 24×24 heatmaps


def tiny_config():
  from configs import saa
  config = saa.get_config("synth_tiny")  # res18, SA D on 3 training sets
  config.model.backbone, config.model.input_size, config.model.depth_bins = "res18", SIZE, SIZE // 4
  config.train.iters_per_epoch, config.train.epoch_regZ, config.train.lr_dec_epochs = 1, 2, (10,)  # z on at step 2
  config.adapt.lmd_D = 0.5
  # A 1-layer D has no conv bias in front of a BatchNorm: such biases have zero true gradient, so Adam turns
  # float noise into ±lr steps and runs on different layouts drift apart by ~lr after one step.
  config.adapt.n_layers_D = 1
  return config


def global_batch() -> dict[str, np.ndarray]:
  """A fixed [8, ...] batch: 4 synthetic samples with depth, 4 real 2D ones."""
  from ahup_jax import losses
  rng = np.random.default_rng(0)
  joints = rng.uniform(1, SIZE // 4 - 1, (GLOBAL_BATCH, 17, 3)).astype(np.float32)
  domain = np.array([1, 0, 1, 0, 1, 0, 1, 0], np.float32)
  return {"image": rng.normal(size=(GLOBAL_BATCH, SIZE, SIZE, 3)).astype(np.float32), "joints_hm": joints,
          "vis": (rng.uniform(size=(GLOBAL_BATCH, 17)) > 0.2).astype(np.float32),
          "joint_cells": np.asarray(losses.joint_cells(jnp.asarray(joints), grid=SIZE // 32)),
          "have_depth": domain, "is_synthetic": domain}


def host_value(x: jax.Array) -> np.ndarray:
  """A replicated array's value, also when it spans devices of other processes."""
  return np.asarray(x.addressable_data(0))


def run_steps(mesh: Mesh, rows: slice, steps: int = STEPS) -> dict[str, np.ndarray]:
  """`steps` jitted SAA steps over `mesh`, this process feeding global batch rows `rows`.

  Returns metrics as "metric/<name>" [steps] arrays and the params / batch_stats after the first step as
  "<keystr>" arrays (later steps are compared through their losses: see tests/test_sharding.py).
  """
  from ahup_jax import sharding
  from ahup_jax.train import saa_step
  from ahup_jax.train import state as state_lib
  config = tiny_config()
  state = state_lib.create_train_state(config, jax.random.key(0))
  state = jax.device_put(state, sharding.state_sharding(state, mesh))
  step = sharding.jit_train_step(saa_step.make_train_step(config), mesh, state)
  local = {k: v[rows] for k, v in global_batch().items()}
  history, out = [], {}
  for i in range(steps):
    state, metrics = step(state, sharding.to_global(local, mesh))
    history.append({k: float(host_value(v)) for k, v in metrics.items()})
    if i == 0:
      for path, leaf in jax.tree_util.tree_flatten_with_path({"params": state.params,
                                                              "batch_stats": state.batch_stats})[0]:
        out[jax.tree_util.keystr(path)] = host_value(leaf)
  out.update({f"metric/{k}": np.array([m[k] for m in history]) for k in history[0]})
  return out


def batchnorm_probe() -> dict[str, np.ndarray]:
  """Conv + BatchNorm (train mode) on an [8, 4, 4, 3] batch: new running stats and gradients, jitted over all
  devices with the batch split on "data" and over one device. Also the per-shard statistics, for contrast."""
  from flax import linen as nn
  from ahup_jax import sharding

  class ConvBN(nn.Module):
    @nn.compact
    def __call__(self, x):
      y = nn.Conv(5, (3, 3), use_bias=False)(x)
      return nn.BatchNorm(use_running_average=False, momentum=0.5)(y), y

  model = ConvBN()
  x = np.random.default_rng(0).normal(size=(GLOBAL_BATCH, 4, 4, 3)).astype(np.float32) * np.arange(1, 9)[:, None,
                                                                                                         None, None]
  variables = model.init(jax.random.key(0), x)

  def step(variables, x):
    def loss(params):
      (y, _), updates = model.apply({**variables, "params": params}, x, mutable=["batch_stats"])
      return jnp.sum(y ** 3), updates["batch_stats"]
    grads, stats = jax.grad(loss, has_aux=True)(variables["params"])
    return grads, stats

  out = {}
  for name, devices in (("all", jax.devices()), ("one", jax.devices()[:1])):
    mesh = Mesh(np.asarray(devices).reshape(-1, 1), ("data", "model"))
    jitted = jax.jit(step, in_shardings=(sharding.replicated(mesh), sharding.batch_sharding(mesh)),
                     out_shardings=sharding.replicated(mesh))
    grads, stats = jitted(jax.device_put(variables, sharding.replicated(mesh)),
                          jax.device_put(x, sharding.batch_sharding(mesh)))
    out[f"{name}/mean"], out[f"{name}/var"] = np.asarray(stats["BatchNorm_0"]["mean"]), np.asarray(
        stats["BatchNorm_0"]["var"])
    out[f"{name}/grad"] = np.asarray(grads["Conv_0"]["kernel"])
  conv = np.asarray(model.apply(variables, x, mutable=["batch_stats"])[0][1])  # [8, 4, 4, 5]
  out["global_mean"] = conv.mean(axis=(0, 1, 2))
  out["first_shard_mean"] = conv[:1].mean(axis=(0, 1, 2))
  out["device_count"] = np.array(jax.device_count())
  return out


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("mode", choices=["devices", "process", "batchnorm"])
  parser.add_argument("--out", required=True)
  parser.add_argument("--process_id", type=int, default=0)
  parser.add_argument("--num_processes", type=int, default=2)
  parser.add_argument("--port", type=int, default=0)
  parser.add_argument("--steps", type=int, default=STEPS)
  args = parser.parse_args()
  if args.mode == "batchnorm":
    np.savez(args.out, **batchnorm_probe())
    return
  from ahup_jax import sharding
  from configs import saa
  rows = slice(None)
  if args.mode == "process":
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{args.port}", num_processes=args.num_processes,
                               process_id=args.process_id, initialization_timeout=120)
    share = GLOBAL_BATCH // args.num_processes
    rows = slice(args.process_id * share, (args.process_id + 1) * share)
  mesh = sharding.make_mesh(saa.get_config().mesh)  # data = −1: every device of every process
  result = run_steps(mesh, rows, args.steps)
  if args.mode == "process":  # process p's rows land at global rows p·B/P … (p+1)·B/P − 1
    from jax.experimental import multihost_utils
    local = {k: v[rows] for k, v in global_batch().items()}
    gathered = multihost_utils.process_allgather(sharding.to_global(local, mesh)["joints_hm"], tiled=True)
    np.testing.assert_array_equal(gathered, global_batch()["joints_hm"])
  result["device_count"] = np.array(jax.device_count())
  np.savez(args.out, **result)
  if args.mode == "process":
    jax.distributed.shutdown()


if __name__ == "__main__":
  main()
