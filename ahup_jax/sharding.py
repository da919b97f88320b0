"""Device mesh and shardings: batch split along "data", parameters replicated (room for a "model" axis)."""
from __future__ import annotations

from typing import Any, Callable

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh(mesh_cfg: ml_collections.ConfigDict) -> Mesh:
  """A ("data", "model") mesh over all devices of all processes; data = −1 takes what `model` leaves."""
  devices = jax.devices()
  model = int(mesh_cfg.model)
  data = len(devices) // model if int(mesh_cfg.data) == -1 else int(mesh_cfg.data)
  if data * model != len(devices):
    raise ValueError(f"mesh data={data} × model={model} does not match the {len(devices)} devices")
  return Mesh(np.asarray(devices).reshape(data, model), ("data", "model"))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over "data"."""
  return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def state_sharding(state: Any, mesh: Mesh) -> Any:
  """Replicates every leaf of the train state (the default strategy; ResNet-50 + head fit one device)."""
  return jax.tree.map(lambda _: replicated(mesh), state)


def jit_train_step(train_step: Callable, mesh: Mesh, state: Any) -> Callable:
  """Compiles the step once over the mesh; the incoming state's buffers are donated."""
  state_sh = state_sharding(state, mesh)
  return jax.jit(train_step, in_shardings=(state_sh, batch_sharding(mesh)),
                 out_shardings=(state_sh, replicated(mesh)), donate_argnums=0)


def to_global(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """This process's slice of the batch → global arrays sharded along "data" (multi-host safe)."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local_batch.items()}
