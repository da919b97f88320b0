"""Device mesh and shardings: the batch split along "data", parameters replicated (room for a "model" axis).

Under `jax.jit` with these shardings XLA (GSPMD) computes BatchNorm statistics over the global batch, as the
official single-GPU runs did (SPEC §1.5); tests/test_sharding.py checks 1 vs 8 devices and 2 processes.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh(mesh_cfg: ml_collections.ConfigDict) -> Mesh:
  """A ("data", "model") mesh over the devices of all processes (`config.mesh`: data, model).

  data = −1 takes every device the model axis leaves (data · model must equal the device count).
  """
  devices = jax.devices()
  model = int(mesh_cfg.model)
  if model < 1 or len(devices) % model:
    raise ValueError(f"mesh.model={model} must be a positive divisor of the {len(devices)} devices")
  data = len(devices) // model if int(mesh_cfg.data) == -1 else int(mesh_cfg.data)
  if data * model != len(devices):
    raise ValueError(f"mesh.data={data} × mesh.model={model} does not match the {len(devices)} devices")
  return Mesh(np.asarray(devices).reshape(data, model), ("data", "model"))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over "data", replicated over "model"."""
  return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  """A full copy on every device."""
  return NamedSharding(mesh, P())


def state_sharding(state: Any, mesh: Mesh) -> Any:
  """Shardings for every leaf of a train state: all replicated (ResNet-50 + head fit one device)."""
  return jax.tree.map(lambda _: replicated(mesh), state)


# XLA:CPU's copy insertion by region analysis. Without it XLA copies each donated parameter and Adam first moment that
# two ops of the step read (one of which then writes it in place): 106 MB a step for ResNet-18 + head. Same fusions,
# same results bit for bit (tests/test_sharding.py); 1.03x at res18 64² b32 float32, neutral at 96² and in
# bfloat16 (lockstep, 2-core AMD Zen 4, docs/SPEED.md 2026-12-06 (7)). Other backends compile with XLA's defaults.
CPU_COMPILER_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}


def compiler_options(mesh: Mesh) -> dict | None:
  """XLA options for the train step compiled for `mesh`'s devices (CPU_COMPILER_OPTIONS on CPU, else none)."""
  return dict(CPU_COMPILER_OPTIONS) if mesh.devices.flat[0].platform == "cpu" else None


def jit_train_step(train_step: Callable, mesh: Mesh, state: Any) -> Callable:
  """Compiles train_step(state, batch) → (state, metrics) for `mesh`; the incoming state's buffers are donated.

  `state` only provides the tree structure for the shardings; batches must be sharded like `batch_sharding`.
  """
  state_sh = state_sharding(state, mesh)
  return jax.jit(train_step, in_shardings=(state_sh, batch_sharding(mesh)),
                 out_shardings=(state_sh, replicated(mesh)), donate_argnums=0,
                 compiler_options=compiler_options(mesh))


def to_global(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """This process's rows of the batch ([B / process_count, ...] each) → global [B, ...] arrays sharded on "data".

  Process p supplies global rows p·B/P … (p+1)·B/P − 1 (processes in `jax.process_index` order).
  """
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local_batch.items()}
