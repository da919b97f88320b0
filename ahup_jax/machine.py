"""What machine made a result: CPU model, cores, jax/jaxlib and backend (printed beside every table and benchmark).

Float32 results are bitwise reproducible only on the same CPU family, jaxlib and thread count (docs/NUMERICS.md),
so every results table names the machine that made it.
"""
from __future__ import annotations

import datetime
import os
import platform

import jax


def cpu_model() -> str:
  """The CPU's marketing name from /proc/cpuinfo (Linux), else what `platform` knows."""
  try:
    with open("/proc/cpuinfo") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()


def describe() -> dict:
  """{cpu, cores, jax, backend, devices, load_at_start, date}."""
  return {"cpu": cpu_model(), "cores": os.cpu_count(), "jax": jax.__version__, "backend": jax.default_backend(),
          "devices": jax.device_count(), "load_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
          "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def one_line() -> str:
  """E.g. 'AMD EPYC 7571, 2 cores, jax 0.10.2 on cpu (1 device)'."""
  m = describe()
  devices = f"{m['devices']} device" + ("s" if m["devices"] > 1 else "")
  return f"{m['cpu']}, {m['cores']} cores, jax {m['jax']} on {m['backend']} ({devices})"
