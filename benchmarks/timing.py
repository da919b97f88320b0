"""Shared measuring helpers of the benchmarks: synchronised timing, XLA cost / memory analysis, compile counts.

Every timing is the median of `repeats` (≥ 10 by default) synchronised calls after `warmup` calls; FLOPs are
XLA's count for the compiled program (multiply and add counted separately), memory the compiled executable's
buffer assignment (per device for an SPMD program).
"""
from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time
from typing import Any, Callable, Iterator

import jax
from jax import monitoring

REPEATS = 10
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # jax._src.dispatch, once per compile
WARMUP = 2


@dataclasses.dataclass(frozen=True)
class Timing:
  """Seconds per call: median, min and max over `repeats` synchronised calls."""
  median_s: float
  min_s: float
  max_s: float
  repeats: int

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def timed(fn: Callable, *args, repeats: int = REPEATS, warmup: int = WARMUP, carry: bool = False) -> tuple[Timing, Any]:
  """Times `fn(*args)`, blocking on every result; returns (Timing, the last call's output).

  carry: `fn` returns (new first argument, outputs) and the new first argument is fed to the next call — how a
  train step with a donated state is run repeatedly (the donated buffers of one call are dead after it).
  """
  out = None

  def call(args):
    nonlocal out
    out = jax.block_until_ready(fn(*args))
    return (out[0], *args[1:]) if carry else args

  for _ in range(warmup):
    args = call(args)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    args = call(args)
    times.append(time.perf_counter() - start)
  return Timing(statistics.median(times), min(times), max(times), repeats), out


def compile_aot(jitted: Callable, *args) -> tuple[jax.stages.Compiled, float]:
  """(`jitted.lower(*args).compile()`, compile seconds). Arguments may be arrays or ShapeDtypeStructs.

  The executable lands in `jitted`'s own cache: calling `jitted(*args)` afterwards does not compile again.
  """
  start = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  return compiled, time.perf_counter() - start


def xla_flops(compiled: jax.stages.Compiled) -> float:
  """XLA's FLOP count of a compiled program. A while loop's (scan's) body is counted once, not per trip."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
    cost = cost[0]
  return float(cost.get("flops", 0.0))


def memory_bytes(compiled: jax.stages.Compiled) -> dict:
  """Per-device buffer sizes of a compiled program (bytes): arguments, outputs, aliased (donated), temporaries,
  and peak = arguments + outputs − aliased + temporaries (what must be resident while the program runs)."""
  stats = compiled.memory_analysis()
  sizes = {k: int(getattr(stats, f"{k}_size_in_bytes")) for k in ("argument", "output", "alias", "temp")}
  sizes["peak"] = sizes["argument"] + sizes["output"] - sizes["alias"] + sizes["temp"]
  return sizes


@contextlib.contextmanager
def count_compiles() -> Iterator[dict[str, int]]:
  """Counts XLA backend compilations while the block runs: {"jit(<function name>)": count}.

  Uses the compile-duration event JAX emits once per backend compilation (a cache hit emits none).
  """
  counts: dict[str, int] = {}

  def listener(event: str, duration: float, **kwargs) -> None:
    del duration
    if event == BACKEND_COMPILE_EVENT:
      name = str(kwargs.get("fun_name", "?"))
      counts[name] = counts.get(name, 0) + 1

  monitoring.register_event_duration_secs_listener(listener)
  try:
    yield counts
  finally:
    monitoring.unregister_event_duration_listener(listener)


def gflops(flops: float, seconds: float) -> float:
  return flops / seconds / 1e9


def bracketed(workload: Callable[[], dict], ceiling: Callable[[], float]) -> dict:
  """`workload()`'s result with `ceiling_gflops` = [the ceiling (GFLOP/s) measured just before it, just after it].

  A shared 2-core VM's speed drifts by ±10 % between minutes, so a ratio to a ceiling measured at the start of a
  long run mixes that drift in; the ratio to the mean of the two bracketing measurements does not.
  """
  before = ceiling()
  result = workload()
  return {**result, "ceiling_gflops": [before, ceiling()]}
