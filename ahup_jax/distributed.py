"""Joining a multi-process JAX job, and the few process-aware helpers the jobs need (docs/MULTIHOST.md).

Every process runs the same command; `jax.distributed.initialize` connects them so that `jax.devices()` lists
the devices of all processes and one `Mesh` spans them. Files shared by the job (results, SPA poses, exports'
configs) are written by process 0 only, followed by a `barrier` so the others read what it wrote.
"""
from __future__ import annotations

import jax
from absl import logging


def initialize(*, coordinator_address: str = "", num_processes: int | None = None, process_id: int | None = None,
               mode: str = "none", timeout_s: int = 300) -> None:
  """Joins the job described by the flags, or does nothing for a single-process run.

  Either all three of coordinator_address (HOST:PORT of process 0), num_processes and process_id are given, or
  none; `mode="auto"` leaves them to `jax.distributed.initialize()`'s cluster detection (Cloud TPU VMs, SLURM,
  Open MPI, or the JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID variables). On CPU the
  cross-process collectives are gloo's. Must run before anything touches a JAX device.
  """
  given = {"--coordinator_address": coordinator_address or None, "--num_processes": num_processes,
           "--process_id": process_id}
  present = [name for name, value in given.items() if value is not None]
  if mode not in ("none", "auto"):
    raise ValueError(f"--distributed must be 'none' or 'auto', got '{mode}'")
  if mode == "auto" and present:
    raise ValueError(f"--distributed=auto detects the cluster itself; drop {', '.join(present)} (or drop "
                     "--distributed=auto and give all three of --coordinator_address, --num_processes, --process_id)")
  if present and len(present) < 3:
    missing = [name for name in given if name not in present]
    raise ValueError(f"a multi-process run needs all three of --coordinator_address=HOST:PORT, --num_processes=N "
                     f"and --process_id=I; got {', '.join(present)} but not {', '.join(missing)}")
  if not present and mode == "none":
    return
  if present:
    if ":" not in coordinator_address:
      raise ValueError(f"--coordinator_address must be HOST:PORT (process 0's address), got '{coordinator_address}'")
    if num_processes < 1 or not 0 <= process_id < num_processes:
      raise ValueError(f"--process_id={process_id} must be in [0, --num_processes={num_processes})")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")  # used only where the CPU is the backend
  if present:
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id, initialization_timeout=timeout_s)
  else:
    jax.distributed.initialize(initialization_timeout=timeout_s)
  logging.info("process %d of %d: %d local of %d devices", jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())


def is_primary() -> bool:
  """Whether this process writes the job's shared files (process 0)."""
  return jax.process_index() == 0


def barrier(name: str) -> None:
  """Waits until every process has reached `barrier(name)` (same name everywhere); free for one process."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)
