"""XLA throughput ceilings on this machine: a large fp32 matmul, a ResNet-like 3x3 conv, an MLP layer, all jitted.

  python -m benchmarks.ceilings                    # matmul 2048², conv 32×28×28×128 → 128, dense 256×1024 → 1024
  python -m benchmarks.ceilings --matmul=4096 --conv_batch=64

The other instruments divide their achieved GFLOP/s by these, measured in the same run.
"""
from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp

from benchmarks import timing


def matmul(n: int = 2048, repeats: int = timing.REPEATS) -> dict:
  """GFLOP/s of an [n, n] @ [n, n] fp32 matmul (2n³ FLOPs)."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
  t, _ = timing.timed(jax.jit(jnp.matmul), a, b, repeats=repeats)
  return {"shape": f"{n}x{n} @ {n}x{n}", "step_s": t.median_s, "gflops": timing.gflops(2 * n**3, t.median_s)}


def conv3x3(batch: int = 32, side: int = 28, channels: int = 128, repeats: int = timing.REPEATS,
            passes: tuple[str, ...] = ("forward", "grad_input", "grad_kernel")) -> dict:
  """GFLOP/s of a stride-1 'SAME' 3x3 conv, NHWC [batch, side, side, C] → C (2·9·C²·batch·side² FLOPs), and of
  its two gradients (w.r.t. the input and the kernel, the same FLOPs each): a training step's convs run as all three.
  """
  x = jax.random.normal(jax.random.key(0), (batch, side, side, channels), jnp.float32)
  w = jax.random.normal(jax.random.key(1), (3, 3, channels, channels), jnp.float32)

  def conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

  flops = 2 * 9 * channels**2 * batch * side**2
  kernels = {"forward": conv, "grad_input": jax.grad(lambda x, w: conv(x, w).sum()),
             "grad_kernel": jax.grad(lambda x, w: conv(x, w).sum(), argnums=1)}
  seconds = {name: timing.timed(jax.jit(kernels[name]), x, w, repeats=repeats)[0].median_s for name in passes}
  per_kernel = {name: timing.gflops(flops, t) for name, t in seconds.items()}
  result = {"shape": f"{batch}x{side}x{side}x{channels} * 3x3x{channels}x{channels}", "step_s": seconds["forward"],
            "gflops": per_kernel["forward"], "gflops_by_pass": per_kernel}
  if len(passes) == 3:  # forward + both gradients, equal FLOPs each: the rate a conv-bound training step could reach
    result["training_gflops"] = 3 * flops / sum(seconds.values()) / 1e9
  return result


def dense_layer(batch: int = 256, width: int = 1024, calls: int = 16, repeats: int = timing.REPEATS) -> dict:
  """GFLOP/s of the three products of a Dense layer's training step at the SPA net's shape (SPEC §7.3):
  forward y = x·W [B, K] @ [K, K], input gradient g·Wᵀ, kernel gradient xᵀ·g (2·B·K² FLOPs each).

  The three are different matmul kernels (the transposed operands change the memory access); each is timed as
  `calls` independent products in one program, as the scanned SPA epoch runs them back to back without a
  dispatch per product (a single small product per call would mostly time the call).
  """
  keys = jax.random.split(jax.random.key(0), 2 * calls + 1)
  xs = [jax.random.normal(k, (batch, width), jnp.float32) for k in keys[:calls]]
  gs = [jax.random.normal(k, (batch, width), jnp.float32) for k in keys[calls:2 * calls]]
  w = jax.random.normal(keys[-1], (width, width), jnp.float32)
  contract = {"forward": (((1,), (0,)), ((), ())), "grad_input": (((1,), (1,)), ((), ())),
              "grad_kernel": (((0,), (0,)), ((), ()))}
  operands = {"forward": (xs, [w] * calls), "grad_input": (gs, [w] * calls), "grad_kernel": (xs, gs)}

  def products(dims):
    return jax.jit(lambda lhs, rhs: [jax.lax.dot_general(a, b, dims) for a, b in zip(lhs, rhs)])

  flops = 2 * batch * width**2 * calls
  seconds = {name: timing.timed(products(contract[name]), *operands[name], repeats=repeats)[0].median_s
             for name in contract}
  per_pass = {name: timing.gflops(flops, t) for name, t in seconds.items()}
  return {"shape": f"{batch}x{width} @ {width}x{width}", "step_s": seconds["forward"] / calls,
          "gflops": per_pass["forward"], "gflops_by_pass": per_pass,
          "training_gflops": 3 * flops / sum(seconds.values()) / 1e9}


def run(matmul_n: int = 2048, conv_batch: int = 32, repeats: int = timing.REPEATS) -> dict:
  """{"matmul": ..., "conv3x3": ..., "dense": ...}, each with shape, step_s, gflops."""
  return {"matmul": matmul(matmul_n, repeats), "conv3x3": conv3x3(conv_batch, repeats=repeats),
          "dense": dense_layer(repeats=repeats)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--matmul", type=int, default=2048, help="matmul side n")
  parser.add_argument("--conv_batch", type=int, default=32, help="batch of the 28×28×128 conv")
  parser.add_argument("--repeats", type=int, default=timing.REPEATS)
  args = parser.parse_args()
  print(json.dumps(run(args.matmul, args.conv_batch, args.repeats), indent=1))


if __name__ == "__main__":
  main()
