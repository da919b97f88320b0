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


def test_native_calls_are_told_apart():
  """The native max pool's FFI calls are not counted as oneDNN convolutions; where the native library is not used
  (not built, or several devices) both programs are XLA's own ops and no op is classified as native."""
  from ahup_jax.models import layers
  pool = jax.jit(jax.grad(lambda x: layers.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1))).sum()))
  conv = jax.jit(jax.grad(lambda x, w: layers.conv(x, w, (1, 1), ((1, 1), (1, 1))).sum(), argnums=1))
  x, w = jnp.ones((2, 16, 16, 8)), jnp.ones((3, 3, 8, 8))
  pool_kinds = {profile.kind(n, op) for n, op in profile.hlo_ops(pool.lower(x).compile().as_text()).items()}
  conv_kinds = {profile.kind(n, op) for n, op in profile.hlo_ops(conv.lower(x, w).compile().as_text()).items()}
  if layers.onednn.enabled():
    assert "max pool (native)" in pool_kinds and "conv (oneDNN)" not in pool_kinds
    assert "conv (oneDNN)" in conv_kinds and "max pool (native)" not in conv_kinds
  else:
    assert not {"max pool (native)", "conv (oneDNN)"} & (pool_kinds | conv_kinds), (pool_kinds, conv_kinds)
