"""The max pool as two native CPU kernels (`max_pool.cc`, in the library `onednn.py` builds): the forward gives the
pooled values and each window's first-maximum index (int8), the backward routes ∂L/∂out to those indices.

The arithmetic is `layers.max_pool_xla`'s exactly (padding counts as −inf, ties go to the first maximum in row-major
window order, each input element sums what reaches it in tap order in float32), so the results are bit for bit the
same; the difference is that the index is computed once and kept: inside XLA:CPU's fusions the bfloat16 stem pool's
backward recomputed it from nine slices of the padded input for every tap (docs/SPEED.md, 2026-12-06 (5)).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ahup_jax.native import onednn


def _attributes(window, strides, pads) -> dict:
  (kh, kw), (sh, sw), ((pt, _), (pl, _)) = window, strides, pads
  return {name: np.int64(value) for name, value in zip(("kh", "kw", "sh", "sw", "pt", "pl"), (kh, kw, sh, sw, pt, pl))}


def _target(part: str, dtype) -> str:
  if np.dtype(dtype) not in onednn.DTYPE_SUFFIX:
    raise TypeError(f"AhupMaxPool{part}: needs float32 or bfloat16, got {dtype}")
  if not onednn.available():  # loads and registers the FFI targets on first use
    raise RuntimeError("the native max pool is not available (`python -m ahup_jax.native.onednn` says why); use "
                       "layers.max_pool_xla instead")
  return f"AhupMaxPool{part}{onednn.DTYPE_SUFFIX[np.dtype(dtype)]}"


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def max_pool(x, window, strides, pads):
  """x [B, H, W, C] (float32 or bfloat16) → [B, ho, wo, C]: `nn.max_pool(x, window, strides, pads)` with pads
  ((top, bottom), (left, right)), computed natively (CPU only; a RuntimeError where `onednn.available()` is False)."""
  return _forward(x, window, strides, pads)[0]


def _forward(x, window, strides, pads):
  (kh, kw), (b, h, w, c) = window, x.shape
  if kh * kw > 127:
    raise ValueError(f"max_pool: the window's tap index is int8, so at most 127 taps, got {window}")
  ho, wo = [(n + sum(pad) - k) // s + 1 for n, pad, k, s in zip((h, w), pads, window, strides)]
  out, first = jax.ffi.ffi_call(_target("Fwd", x.dtype), (jax.ShapeDtypeStruct((b, ho, wo, c), x.dtype),
                                                          jax.ShapeDtypeStruct((b, ho, wo, c), jnp.int8)))(
      x, **_attributes(window, strides, pads))
  return out, (first, x.shape)


def _backward(window, strides, pads, residuals, grad):
  first, shape = residuals
  dx = jax.ffi.ffi_call(_target("Bwd", grad.dtype), jax.ShapeDtypeStruct(shape, jnp.float32))(
      first, grad, **_attributes(window, strides, pads))
  return (dx.astype(grad.dtype),)  # the float32 sums rounded once for bfloat16


max_pool.defvjp(_forward, _backward)
