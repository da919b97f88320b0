"""benchmarks/profile.py: the compiled HLO is parsed into ops with kinds and sources, and a real trace times them."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from benchmarks import profile


def conv_then_dense(x, kernel, weight):
  y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return jnp.tanh(y.reshape(y.shape[0], -1) @ weight).sum()


def test_ops_are_classified_and_timed(tmp_path):
  args = (jnp.ones((4, 16, 16, 8)), jnp.ones((3, 3, 8, 8)) * 0.01, jnp.ones((16 * 16 * 8, 32)) * 0.01)
  jitted = jax.jit(jax.grad(conv_then_dense, argnums=(1, 2)))
  ops = profile.hlo_ops(jitted.lower(*args).compile().as_text())
  kinds = {name: profile.kind(name, op) for name, op in ops.items()}
  assert "conv" in kinds.values() and "matmul" in kinds.values()
  regions = {profile.region(op) for op in ops.values()}  # no flax module here: all of it is "between modules"
  assert {"soft-argmax + losses forward", "soft-argmax + losses backward"} <= regions
  assert regions <= {"soft-argmax + losses forward", "soft-argmax + losses backward", "kernel gradients (no metadata)",
                     "other", "optimizer + rest"}
  jax.block_until_ready(jitted(*args))
  jax.profiler.start_trace(str(tmp_path))
  jax.block_until_ready(jitted(*args))
  jax.profiler.stop_trace()
  seconds = profile.op_seconds(str(tmp_path), "jit_conv_then_dense")
  timed = {kinds[name] for name in seconds if name in kinds}
  assert {"conv", "matmul"} <= timed, (seconds, kinds)
  assert all(s >= 0 for s in seconds.values()) and sum(seconds.values()) > 0
