"""The native max pool (`ahup_jax/native/max_pool.cc`) against `layers.max_pool_xla`: the same arithmetic, so the
forward (values and first-maximum indices) and the gradient must agree bit for bit — on random floats with the ties
a ReLU leaves, at the stem shapes of every input size we train, in float32 and bfloat16, and on the edge cases
(odd sides, NaN, −inf, windows without padding). Plus: `layers.max_pool` calls the native kernels where it should."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ahup_jax.models import layers
from ahup_jax.native import max_pool as native

pytestmark = pytest.mark.skipif(not layers.onednn.available(), reason=(
    "the native library is not built (ahup_jax/native: no C++ compiler or onednn wheels; "
    "`python -m ahup_jax.native.onednn` says why)"))

STEM = ((3, 3), (2, 2), ((1, 1), (1, 1)))


def _post_relu(rng, shape, dtype):
  """Half the entries exactly zero (tied maxima), the rest random floats."""
  return jnp.asarray(np.maximum(rng.normal(size=shape), 0), dtype)


def _both(x, grad, window, strides, pads):
  """(native, XLA) as ((out, first), ∂L/∂x), each jitted."""
  results = []
  for forward, pool in ((native._forward, native.max_pool), (layers._max_pool_fwd, layers.max_pool_xla)):
    out, (first, _) = jax.jit(lambda x: forward(x, window, strides, pads))(x)
    vjp = jax.jit(lambda x, g: jax.vjp(lambda x: pool(x, window, strides, pads), x)[1](g)[0])
    results.append(((out, first), vjp(x, grad)))
  return results


def _assert_same(a, b):
  a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
  assert a.shape == b.shape
  same = (a == b) | (np.isnan(a) & np.isnan(b))
  assert same.all(), (f"{(~same).sum()} of {a.size} differ, first at {np.argwhere(~same)[0]}: "
                      f"{a[~same][0]} vs {b[~same][0]}")


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("shape", [
    (4, 32, 32, 64),  # ResNet's stem pool at 64² input (batch 4)
    (2, 48, 48, 64),  # 96²
    (1, 64, 64, 64),  # 128²
    (1, 128, 128, 64),  # 256²
    (3, 33, 31, 5),  # odd sides: the last row/column in one window only; channels not a vector width
])
def test_native_max_pool_equals_xla_bitwise(shape, dtype):
  rng = np.random.default_rng(sum(shape))
  x = _post_relu(rng, shape, dtype)
  out_shape = jax.eval_shape(lambda x: layers.max_pool_xla(x, *STEM), x).shape
  grad = jnp.asarray(rng.normal(size=out_shape), dtype)
  (native_fwd, native_grad), (xla_fwd, xla_grad) = _both(x, grad, *STEM)
  for a, b in zip(native_fwd, xla_fwd):
    _assert_same(a, b)
  assert native_grad.dtype == xla_grad.dtype == dtype
  _assert_same(native_grad, xla_grad)
  assert np.count_nonzero(np.asarray(native_fwd[1]) != 0) > 0  # the first index varies: not all windows' tap 0


@pytest.mark.parametrize("window,strides,pads", [
    ((3, 3), (2, 2), ((1, 1), (1, 1))),
    ((2, 2), (2, 2), ((0, 0), (0, 0))),  # no padding, no overlap
    ((3, 2), (1, 2), ((1, 0), (0, 1))),  # asymmetric window, strides and pads; overlapping rows
])
def test_native_max_pool_edge_values(window, strides, pads):
  """NaN (propagates; its window's gradient goes where XLA's goes), −inf (ties with the −inf padding: the first
  maximum may be a padding tap, whose gradient is dropped), exact ties between nonzero values."""
  rng = np.random.default_rng(7)
  x = np.maximum(rng.integers(-2, 3, (2, 9, 8, 3)), 0).astype(np.float32)
  x[0, 0, 0, 0] = np.nan
  x[1, 0, :, 1] = -np.inf
  x[1, :, 0, 2] = -np.inf
  x = jnp.asarray(x)
  out_shape = jax.eval_shape(lambda x: layers.max_pool_xla(x, window, strides, pads), x).shape
  grad = jnp.asarray(rng.normal(size=out_shape), jnp.float32)
  (native_fwd, native_grad), (xla_fwd, xla_grad) = _both(x, grad, window, strides, pads)
  for a, b in zip(native_fwd, xla_fwd):
    _assert_same(a, b)
  _assert_same(native_grad, xla_grad)
  assert np.isnan(np.asarray(native_fwd[0])).any()


def test_max_pool_uses_native_kernels_on_cpu(monkeypatch):
  """`layers.max_pool` lowers to the native calls where `onednn.enabled()` and to XLA's ops otherwise (other
  platforms, several devices, float64 — the gradient checks)."""
  x = jnp.zeros((2, 8, 8, 4), jnp.float32)

  def lowered(x):
    return jax.jit(jax.grad(lambda x: jnp.sum(layers.max_pool(x, *STEM)))).lower(x).as_text()

  if layers.onednn.enabled():
    assert "AhupMaxPoolFwd" in lowered(x) and "AhupMaxPoolBwd" in lowered(x)
  with jax.enable_x64(True):
    assert "AhupMaxPool" not in lowered(x.astype(jnp.float64))
  monkeypatch.setattr(layers.onednn, "enabled", lambda: False)
  assert "AhupMaxPool" not in lowered(x)


def test_native_max_pool_rejects_other_types():
  with pytest.raises(TypeError, match="float32 or bfloat16"):
    native.max_pool(jnp.zeros((1, 4, 4, 1), jnp.float16), *STEM)
