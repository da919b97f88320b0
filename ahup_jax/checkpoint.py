"""Orbax checkpoints: the full train state with its data position (resume), and inference-only exports.

Training checkpoints hold `{"state": SAAState-as-pytree, "meta": {"step", "epoch", "seed", ...}}`; the input pipeline is a pure
function of (seed, step), so the step *is* the data position. Orbax writes into a temporary directory and renames it when
complete, so a run killed during a write resumes from the previous checkpoint.

Export (what inference needs; also what `convert_torch` writes):

    from ahup_jax import checkpoint
    variables, config = checkpoint.load_export("runs/synth/export")
    pred_hm = ahup_jax.evaluation.inference.make_predict_fn(config)(variables, {"image": images})
"""
from __future__ import annotations

import json
import os
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp


class TrainCheckpointer:
  """Keeps the last `keep` step checkpoints plus every `keep_period`-th step (e.g. every 3 epochs) for good."""

  def __init__(self, directory: str, *, keep: int, keep_period: int | None = None, async_save: bool = True):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, keep_period=keep_period, create=True,
        enable_async_checkpointing=async_save)
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, meta: dict) -> None:
    """Saves asynchronously; arrays may be sharded (each process writes its shards)."""
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)

  def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
    """Restores onto the shardings of `abstract_state` (a pytree of jax.ShapeDtypeStruct with `.sharding`)."""
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    return restored["state"], restored["meta"]

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def abstract_like(tree: Any) -> Any:
  """ShapeDtypeStructs (with shardings) of a pytree of arrays: the restore target for `TrainCheckpointer.restore`."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)), tree)


def save_export(directory: str, variables: dict, config: ml_collections.ConfigDict | None = None) -> None:
  """Writes an inference-only checkpoint: `variables` ({"params", "batch_stats", optional "spa"}) + `config.json`."""
  directory = os.path.abspath(directory)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(directory, "variables"), jax.device_get(variables), force=True)
  checkpointer.wait_until_finished()
  if config is not None and jax.process_index() == 0:
    with open(os.path.join(directory, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True))


def load_export(directory: str) -> tuple[dict, ml_collections.ConfigDict | None]:
  """Loads `save_export`'s output: (variables as host arrays, the config or None)."""
  directory = os.path.abspath(directory)
  path = os.path.join(directory, "variables")
  if not os.path.isdir(path):
    raise FileNotFoundError(f"{directory} is not an ahup_jax export (no 'variables' checkpoint inside); "
                            "write one with `--mode=export` or `python -m ahup_jax.convert_torch`")
  variables = ocp.StandardCheckpointer().restore(path)
  variables = jax.tree.map(jax.device_get, variables)
  config = None
  config_path = os.path.join(directory, "config.json")
  if os.path.exists(config_path):
    with open(config_path) as f:
      config = ml_collections.ConfigDict(json.load(f))
  return variables, config
