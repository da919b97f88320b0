"""Where a train step's time goes, op by op: a jax.profiler trace of one or more steps mapped onto the compiled HLO.

  python -m benchmarks.profile                                  # ResNet-50 256², batch 8, fp32
  python -m benchmarks.profile --backbone=res18 --size=96 --batch=18 --top=20
  python -m benchmarks.profile --backbone=res18 --size=64 --batch=32 --dtype=bfloat16 --steps=5   # mean of 5 steps

Each executed HLO op (a fusion, a conv, a dot, a copy) is timed by the trace and classified by what it computes
(conv, matmul, layout copy, reduction, elementwise) and by where it comes from (the op's `op_name` metadata: G, T,
D, the code between them — soft-argmax, losses —, optimizer; forward or backward). Shares are of the summed op
time, which exceeds the step's wall time when independent ops run side by side on the CPU's threads.
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import re
import tempfile

import jax
from jax.profiler import ProfileData

from ahup_jax import allocator
from benchmarks import train_step

_INSTRUCTION = re.compile(r"\s*(?:ROOT )?%([\w.\-]+) = (\([^=]*?\)|\S+) ([\w\-]+)\(")  # shape: array or tuple
_COMPUTATION = re.compile(r"^%([\w.\-]+) .*?\{\n(.*?)\n\}", re.S | re.M)
_OP_NAME = re.compile(r'op_name="([^"]+)"')
REGIONS = (("ResNet", "G"), ("VolumetricHead", "T"), ("ConvD", "D"))


def hlo_ops(hlo_text: str) -> dict[str, dict]:
  """Compiled HLO text → {instruction name: {"shape", "kinds" (set of conv|dot|reduce|transpose|copy inside it;
  max_pool for the native pool's FFI calls), "opcode", "op_name" (its jax metadata, "" if none)}}, fusions looked
  into."""
  bodies = {m.group(1): m.group(2) for m in _COMPUTATION.finditer(hlo_text)}
  ops = {}
  for line in hlo_text.splitlines():
    m = _INSTRUCTION.match(line)
    if not m:
      continue
    name, shape, opcode = m.groups()
    called = re.search(r"calls=%([\w.\-]+)", line)
    body = bodies.get(called.group(1), "") if called else ""
    kinds = set(re.findall(r"= \S+ (convolution|dot|reduce|transpose|copy)\(", body))
    if opcode in ("convolution", "dot", "reduce", "transpose", "copy"):
      kinds.add(opcode)
    if 'custom_call_target="AhupMaxPool' in line:
      kinds.add("max_pool")
    op_name = _OP_NAME.search(line) or _OP_NAME.search(body)
    ops[name] = {"shape": shape, "kinds": kinds, "opcode": opcode, "op_name": op_name.group(1) if op_name else ""}
  return ops


def kind(name: str, op: dict) -> str:
  """What the op computes: conv (XLA's), conv (oneDNN), matmul, layout copy (a fusion whose output is a
  transposed/copied layout), reduction or elementwise."""
  if "convolution" in op["kinds"]:
    return "conv"
  if op.get("opcode") == "custom-call":  # the only custom calls in our programs: the FFI calls of ahup_jax/native
    return "max pool (native)" if "max_pool" in op["kinds"] else "conv (oneDNN)"
  if "dot" in op["kinds"]:
    return "matmul"
  if name.startswith(("transpose", "copy")):
    return "layout copy"
  if "reduce" in op["kinds"]:
    return "reduction"
  return "elementwise"


def region(op: dict) -> str:
  """Where it comes from: "G forward", "T backward", ..., from the jax metadata (XLA drops it on the kernel
  gradients of convolutions, which are backward by construction)."""
  op_name = op["op_name"]
  if not op_name:
    return "kernel gradients (no metadata)" if "convolution" in op["kinds"] else "other"
  direction = "backward" if "transpose(" in op_name else "forward"
  for marker, part in REGIONS:
    if marker in op_name:
      return f"{part} {direction}"
  if "jvp()" in op_name:  # differentiated code outside the flax modules: soft-argmax, the losses
    return f"soft-argmax + losses {direction}"
  return "optimizer + rest"


def op_seconds(trace_dir: str, module: str) -> dict[str, float]:
  """Summed seconds per HLO op of `module` over the trace written under `trace_dir`."""
  seconds = collections.Counter()
  for path in glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True):
    for plane in ProfileData.from_file(path).planes:
      for line in plane.lines:
        for event in line.events:
          stats = dict(event.stats)
          if stats.get("hlo_module") == module and "hlo_op" in stats:
            seconds[stats["hlo_op"]] += event.duration_ns * 1e-9
  return dict(seconds)


def run(backbone: str = "res50", size: int = 256, batch: int = 8, dtype: str = "float32", steps: int = 1,
        top: int = 15) -> dict:
  """Traces `steps` train steps after two warm-up steps; returns the summed op time by kind and by region (seconds
  per step) and the `top` ops."""
  config = train_step.bench_config(backbone, size, batch, "SA", dtype)
  jitted, state, data = train_step.build(config)
  ops = hlo_ops(jitted.lower(state, data).compile().as_text())
  for _ in range(2):
    state, metrics = jitted(state, data)
  jax.block_until_ready(metrics)
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir)
    for _ in range(steps):
      state, metrics = jitted(state, data)
    jax.block_until_ready(metrics)
    jax.profiler.stop_trace()
    seconds = op_seconds(trace_dir, "jit_train_step")
  seconds = {name: s / steps for name, s in seconds.items() if name in ops}
  by_kind, by_region = collections.Counter(), collections.Counter()
  for name, s in seconds.items():
    by_kind[kind(name, ops[name])] += s
    by_region[region(ops[name])] += s
  ranked = sorted(seconds.items(), key=lambda item: -item[1])[:top]
  return {**train_step.describe(config), "op_seconds": sum(seconds.values()), "by_kind": dict(by_kind.most_common()),
          "by_region": dict(by_region.most_common()),
          "top": [{"op": n, "seconds": s, "kind": kind(n, ops[n]), "shape": ops[n]["shape"],
                   "source": ops[n]["op_name"].removeprefix("jit(train_step)/")} for n, s in ranked]}


def main() -> None:
  allocator.restart_with_fast_malloc()  # the step's speed depends on it (ahup_jax/allocator.py)
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  train_step.add_model_flags(parser, backbone="res50", size=256)
  parser.add_argument("--batch", type=int, default=8, help="global batch")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="compute dtype")
  parser.add_argument("--top", type=int, default=15, help="how many of the slowest ops to list")
  parser.add_argument("--steps", type=int, default=1,
                      help="steps traced; op times are their mean (one step can be noisy)")
  args = parser.parse_args()
  print(json.dumps(run(args.backbone, args.size, args.batch, args.dtype, steps=args.steps, top=args.top), indent=1))


if __name__ == "__main__":
  main()
