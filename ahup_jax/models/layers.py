"""Layers the models share, drop-in for their flax.linen namesakes but cheaper on the hot paths.

`Conv`: `nn.Conv` with the same parameters (`kernel` [kh, kw, C_in, C_out]) and results, lowered for speed (the
kernel reaches the lowering uncast, which casts it to the activations' dtype: oneDNN while reordering it):
- 1x1 kernels: on CPU, output planes from 16x16 up as oneDNN's convolutions (`pointwise_lowering`; 1.1–1.6x the
  matmuls fwd+bwd for most of ResNet-50's, `python -m benchmarks.conv_lowerings --pointwise`), the rest as matrix
  products (`pointwise`). XLA:CPU computes the kernel gradient of a 1x1 `conv_general_dilated` as a convolution
  over transposed copies of the activations (1.5–3x slower fwd+bwd for ResNet-50's 1x1 layers on a 2-core CPU);
  the written-out kernel gradient also lets the matmul transpose the thinner of its two operands.
- larger kernels (`conv`, per `lowering`): on CPU, output planes from 4x4 up (bfloat16: all) as oneDNN's
  convolutions (`native.onednn`, when it is built); smaller planes, and without oneDNN the RGB stem, as one im2col
  matmul (XLA:CPU's convolutions there run at a few GFLOP/s); the rest as XLA's, large ones with their kernel
  gradient as one matmul per kernel tap (without oneDNN); other platforms keep XLA's convolutions.
  `python -m benchmarks.conv_lowerings` times every shape under each lowering, `python -m benchmarks.profile` shows
  where a step's time goes.

`PointwiseConv`: `nn.Conv(features, (1, 1))` with bias (T's final layer), the bias added by `add_bias`, whose
gradient is a float32 sum.

`max_pool`: `nn.max_pool` with the gradient to each window's first maximum, as two native kernels on CPU (the
first-maximum index kept between them; XLA:CPU's fusions recomputed it per tap) and as `max_pool_xla` elsewhere.

`BatchNorm`: flax's, with PyTorch's settings and two-pass variance (see its comment).

`Dropout`: `nn.Dropout` drawing only the random bits a mask needs (1 bit per unit at rate 0.5) instead of a
32-bit uniform per unit; generating those uniforms was a fifth of the SPA fit's epoch time on a 2-core CPU.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax.linen.dtypes import promote_dtype

from ahup_jax.native import max_pool as native_max_pool
from ahup_jax.native import onednn

_NHWC = ("NHWC", "HWIO", "NHWC")
_OVER_CHANNELS = (((3,), (0,)), ((), ()))  # dot_general: [B, H, W, C] x [C, F]
_OVER_POSITIONS = (((0, 1, 2), (0, 1, 2)), ((), ()))  # dot_general: [B, H, W, C] x [B, H, W, F] → [C, F]


@jax.custom_vjp
def pointwise(x, kernel):
  """x [B, H, W, C_in] @ kernel [C_in, C_out] → [B, H, W, C_out]; the gradients are the usual two matmuls."""
  return jax.lax.dot_general(x, kernel, _OVER_CHANNELS)


def _pointwise_fwd(x, kernel):
  return pointwise(x, kernel), (x, kernel)


def _pointwise_bwd(residuals, grad):
  """∂L/∂x = g·Kᵀ; ∂L/∂K = Σ over positions of xᵀ·g. The kernel gradient contracts both operands over their major
  (position) axes, so the matmul needs one of them transposed, and XLA:CPU transposes the left one: putting the
  operand with fewer channels on the left copies less (JAX's own rule puts g there, e.g. 4x the bytes of x for
  the head's 256 → 17·64 final layer, whose fwd + bwd then took 2.5x as long on a 2-core CPU)."""
  x, kernel = residuals
  x_grad = jax.lax.dot_general(grad, kernel, (((3,), (1,)), ((), ())))
  if x.shape[-1] <= grad.shape[-1]:
    kernel_grad = jax.lax.dot_general(x, grad, _OVER_POSITIONS)
  else:
    kernel_grad = jax.lax.dot_general(grad, x, _OVER_POSITIONS).T
  return x_grad.astype(x.dtype), kernel_grad.astype(kernel.dtype)


pointwise.defvjp(_pointwise_fwd, _pointwise_bwd)


def _conv(lhs, rhs, strides, pads):
  return jax.lax.conv_general_dilated(lhs, rhs, strides, pads, dimension_numbers=_NHWC)


def _kernel_grad_by_taps(lhs, grad, kernel_hw, strides, pads):
  """∂L/∂kernel [kh, kw, C_in, C_out] of an NHWC conv as one matmul per kernel tap: ∂L/∂out [B, ho, wo, C_out]
  contracted over B, ho, wo with the window of the padded input that tap (i, j) multiplies, [B, ho, wo, C_in].
  ∂L/∂out is the left operand of every tap, so XLA:CPU transposes it once for all of them. (Products with the zero
  padding are computed too: slicing them off per tap made ∂L/∂out a different operand per tap, and slower.)"""
  (kh, kw), (sh, sw), (ho, wo) = kernel_hw, strides, grad.shape[1:3]
  padded = jnp.pad(lhs, ((0, 0), pads[0], pads[1], (0, 0)))
  taps = [[jax.lax.dot_general(grad, padded[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw],
                               _OVER_POSITIONS) for j in range(kw)] for i in range(kh)]  # each [C_out, C_in]
  return jnp.swapaxes(jnp.stack([jnp.stack(row) for row in taps]), 2, 3)


def _kernel_grad_by_transpose(lhs, grad, kernel, strides, pads):
  """∂L/∂kernel as XLA derives it (the convolution's own transpose)."""
  return jax.linear_transpose(lambda w: _conv(lhs, w, strides, pads), kernel)(grad)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_tapwise_kernel_grad(lhs, rhs, strides, pads):
  """NHWC x HWIO convolution (pads ((top, bottom), (left, right))) whose kernel gradient is computed on CPU as one
  matmul per kernel tap (`_kernel_grad_by_taps`); on other platforms, and for the input gradient, as XLA derives it.
  XLA:CPU runs the kernel-gradient convolutions of ResNet's 64² and 32² layers and of the head's deconvolution
  phases at 40–60 GFLOP/s, the per-tap matmuls at 55–140 (2-core CPU, `benchmarks/profile.py`).
  """
  return _conv(lhs, rhs, strides, pads)


def _conv_fwd(lhs, rhs, strides, pads):
  return _conv(lhs, rhs, strides, pads), (lhs, rhs)


def _conv_bwd(strides, pads, residuals, grad):
  lhs, rhs = residuals
  input_grad = jax.linear_transpose(lambda x: _conv(x, rhs, strides, pads), lhs)(grad)[0]
  kernel_grad = jax.lax.platform_dependent(
      lhs, grad, rhs, cpu=lambda x, g, w: _kernel_grad_by_taps(x, g, w.shape[:2], strides, pads),
      default=lambda x, g, w: _kernel_grad_by_transpose(x, g, w, strides, pads))
  return input_grad, kernel_grad.astype(rhs.dtype)


conv_tapwise_kernel_grad.defvjp(_conv_fwd, _conv_bwd)

# Output planes from which the per-tap kernel gradient is used: at 32² and more (ResNet-50 256²'s layer1, layer2, last
# deconvolution) XLA:CPU's kernel-gradient convolution measured 1.4–3x slower than the per-tap matmuls; at 16² and
# below about as fast, and the per-tap form also multiplies the zero padding (5 % more FLOPs for ResNet-18 96²).
TAPWISE_MIN_POSITIONS = 32 * 32


def conv_im2col(lhs, rhs, strides, pads):
  """NHWC x HWIO convolution as one matmul: the kh·kw shifted windows of the padded input side by side along the
  channels ([B, ho, wo, kh·kw·C_in] patches, tap-major) times the kernel as [kh·kw·C_in, C_out] (`pointwise`).

  Autodiff gives the input gradient as one matmul plus the sum of the windows' shifted gradients, and the kernel
  gradient as one matmul over positions. For small planes this is what XLA:CPU's own convolutions miss: ResNet-18's
  layer4 3x3 convs on 2x2 planes ran at ~4 GFLOP/s forward and backward (`benchmarks/conv_lowerings.py`).
  """
  (kh, kw, c_in, c_out), (sh, sw) = rhs.shape, strides
  padded = jnp.pad(lhs, ((0, 0), pads[0], pads[1], (0, 0)))
  ho, wo = (padded.shape[1] - kh) // sh + 1, (padded.shape[2] - kw) // sw + 1
  windows = [padded[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] for i in range(kh) for j in range(kw)]
  return pointwise(jnp.concatenate(windows, axis=-1), rhs.reshape(kh * kw * c_in, c_out))


def conv_im2col_float32(lhs, rhs, strides, pads):
  """`conv_im2col` computed in float32 at least (bfloat16 operands widened exactly, the result rounded back to lhs's
  dtype; a float32 kernel's gradient stays float32): XLA:CPU's bfloat16 matmuls ran these im2col products 1.4–2x
  slower than float32 ones (ResNet-18's 2² and 3² planes, 2-core Intel Xeon, docs/SPEED.md)."""
  wide = jnp.promote_types(lhs.dtype, jnp.float32)
  return conv_im2col(lhs.astype(wide), rhs.astype(wide), strides, pads).astype(lhs.dtype)


# On CPU, convolutions with output planes of at most this many positions, or with this few input channels (the
# stem's RGB), run as im2col matmuls: XLA:CPU's own convolutions ran ResNet-18's 2x2 and 3x3 planes and the stem at
# 1–5 GFLOP/s forward and backward (`benchmarks/conv_lowerings.py`).
IM2COL_MAX_POSITIONS = 4 * 4
IM2COL_MAX_IN_CHANNELS = 4
# On CPU, float32 convolutions with output planes of at least this many positions run as oneDNN's (the stem
# included) when `onednn.enabled()`. Forward + both gradients (`benchmarks/conv_lowerings.py`): 2.2x XLA:CPU's at
# 24² (ResNet-18 96²'s layer1), 2.6x at 32², 1.5x for the stem, 1.0–1.5x at 12² (2-core Intel Xeon); 1.2–1.4x at
# 8², 6², 4², 1.1x against im2col at 3², 0.7x at 2² (2-core AMD Zen 4). Whole steps in lockstep on the Zen 4
# (`python -m benchmarks.xla_flags_ab --b_set=ahup_jax.models.layers.ONEDNN_MIN_POSITIONS=...`), 4² against 12²:
# 1.06 and 1.11x at ResNet-18 64² b32, 1.02x at 96² b18, 1.05x at 128² b32; 2² too (64²): 1.00x against 12²;
# 3² too (96²): 1.03 and 1.04x against 12².
ONEDNN_MIN_POSITIONS = 4 * 4
# bfloat16 convolutions run as oneDNN's from 3² planes up (4² on Intel): 1.2–3x XLA's and im2col's bfloat16 at
# ResNet-18's 8² to 3² (2-core AMD Zen 4), whole bfloat16 steps against 12² and up (`xla_flags_ab --dtype=bfloat16`):
# 1.15x at 64² b32, 1.11x at 96² b18, 1.15x at 128² b32. 2² planes run as float32 im2col (`conv_im2col_float32`):
# 2.2x oneDNN's bfloat16 AMX kernels there per shape on a 2-core Intel Xeon (0.94x the time on the Zen 4), the
# bfloat16 ResNet-18 64² b32 step 1.34x (Intel, 48 of 48 lockstep turns). On Intel CPUs 3² planes as well: the
# bfloat16 96² b18 step 1.06x and 1.11x (30 of 40, 45 of 48 turns; oneDNN capped to AVX512-BF16 lost there too),
# where on the Zen 4 oneDNN ran 3² 1.7x faster than float32 im2col per shape (docs/SPEED.md, 2026-12-06 (8)).
ONEDNN_MIN_POSITIONS_BFLOAT16 = 4 * 4 if onednn.cpu_vendor() == "GenuineIntel" else 3 * 3


def lowering(out_positions: int, in_channels: int, dtype=jnp.float32) -> str:
  """Which lowering `conv` uses on CPU for an output plane of `out_positions`, `in_channels` input channels and
  `dtype`: "onednn", "im2col", "tapwise" or "xla" (other platforms always use XLA's own convolution)."""
  smallest = ONEDNN_MIN_POSITIONS_BFLOAT16 if jnp.dtype(dtype) == jnp.bfloat16 else ONEDNN_MIN_POSITIONS
  if out_positions >= smallest and jnp.dtype(dtype) in onednn.DTYPE_SUFFIX and onednn.enabled():
    return "onednn"
  if out_positions <= IM2COL_MAX_POSITIONS or in_channels <= IM2COL_MAX_IN_CHANNELS:
    return "im2col"
  return "tapwise" if out_positions >= TAPWISE_MIN_POSITIONS else "xla"


# On CPU, float32 and bfloat16 1x1 convolutions with output planes of at least this many positions run as oneDNN's
# when `onednn.enabled()`, smaller ones as `pointwise` matmuls: fwd + both gradients 0.96–1.6x the matmuls for
# ResNet-50 256²'s 1x1s from 16² up (the whole step 1.09x), 0.4–0.86x at 8² and below (2-core Intel Xeon, float32).
ONEDNN_POINTWISE_MIN_POSITIONS = 16 * 16


def pointwise_lowering(out_positions: int, dtype=jnp.float32) -> str:
  """Which lowering an unpadded 1x1 convolution uses on CPU: "onednn" or "matmul" (`pointwise`)."""
  if (out_positions >= ONEDNN_POINTWISE_MIN_POSITIONS and jnp.dtype(dtype) in onednn.DTYPE_SUFFIX
      and onednn.enabled()):
    return "onednn"
  return "matmul"


def conv(lhs, rhs, strides, pads):
  """NHWC x HWIO convolution with pads ((top, bottom), (left, right)) computed in lhs's dtype (rhs cast to it, by
  oneDNN while reordering it where oneDNN runs it), lowered per `lowering`: `onednn.conv` or `conv_im2col` (CPU
  only), `conv_tapwise_kernel_grad` (whose kernel gradient is per-tap on CPU only) or `lax.conv_general_dilated`."""
  strides, pads = tuple(strides), tuple(pads)
  out_hw = [(size + sum(pad) - k) // s + 1 for size, pad, k, s in zip(lhs.shape[1:3], pads, rhs.shape[:2], strides)]
  choice = lowering(out_hw[0] * out_hw[1], lhs.shape[-1], lhs.dtype)
  if choice == "onednn":
    return jax.lax.platform_dependent(lhs, rhs, cpu=lambda x, w: onednn.conv(x, w, strides, pads),
                                      default=lambda x, w: _conv(x, w.astype(x.dtype), strides, pads))
  if choice == "im2col":
    return jax.lax.platform_dependent(lhs, rhs, cpu=lambda x, w: conv_im2col_float32(x, w, strides, pads),
                                      default=lambda x, w: _conv(x, w.astype(x.dtype), strides, pads))
  rhs = rhs.astype(lhs.dtype)
  if choice == "tapwise":
    return conv_tapwise_kernel_grad(lhs, rhs, strides, pads)
  return _conv(lhs, rhs, strides, pads)


def _rewritable_pads(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                     feature_group_count, batch_group_count, precision, preferred_element_type):
  """((top, bottom), (left, right)) of an NHWC x HWIO conv without dilation, groups or precision requests; None
  for any other convolution (those stay `lax.conv_general_dilated`)."""
  if (lhs.ndim != 4 or feature_group_count != 1 or batch_group_count != 1 or precision is not None
      or preferred_element_type is not None or any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
      or jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
      != jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)):
    return None
  if isinstance(padding, str):
    return tuple(jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding))
  pads = tuple((int(low), int(high)) for low, high in padding)
  return pads if min(p for pair in pads for p in pair) >= 0 else None


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1, precision=None,
                         preferred_element_type=None):
  """`lax.conv_general_dilated` computed in lhs's dtype (rhs cast to it: `Conv` leaves kernels uncast); an NHWC x HWIO
  kernel without dilation, groups or precision requests runs as `pointwise` when it is 1x1 and unpadded, else as
  `conv`.

  lhs [B, H, W, C_in], rhs [kh, kw, C_in, C_out] → [B, ho, wo, C_out] (a 1x1 stride s: a strided slice first).
  """
  pads = _rewritable_pads(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                          feature_group_count, batch_group_count, precision, preferred_element_type)
  if pads is None:
    return jax.lax.conv_general_dilated(lhs, rhs.astype(lhs.dtype), window_strides, padding,
                                        lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
                                        dimension_numbers=dimension_numbers,
                                        feature_group_count=feature_group_count,
                                        batch_group_count=batch_group_count, precision=precision,
                                        preferred_element_type=preferred_element_type)
  if rhs.shape[:2] != (1, 1) or any(pads[0] + pads[1]):
    return conv(lhs, rhs, tuple(window_strides), pads)
  sh, sw = (int(s) for s in window_strides)

  def as_matmul(x, w):  # a 1x1 stride s: a strided slice first
    return pointwise(x[:, ::sh, ::sw] if (sh, sw) != (1, 1) else x, w[0, 0].astype(x.dtype))

  out_positions = -(-lhs.shape[1] // sh) * -(-lhs.shape[2] // sw)
  if pointwise_lowering(out_positions, lhs.dtype) == "onednn":
    return jax.lax.platform_dependent(
        lhs, rhs, cpu=lambda x, w: onednn.conv(x, w, (sh, sw), ((0, 0), (0, 0))), default=as_matmul)
  return as_matmul(lhs, rhs)


def _promote_all_but_kernel(inputs, kernel, bias, dtype=None):
  """flax's `promote_dtype` for `Conv`, leaving the kernel in its parameter dtype for `conv_general_dilated` to
  cast: oneDNN rounds a float32 kernel to bfloat16 in the reorder it makes anyway, and returns its gradient in
  float32 (XLA's cast and the gradient's rounding and cast back were ~12 ms of a 0.23 s bfloat16 ResNet-18 64² step
  on a 2-core CPU, docs/SPEED.md)."""
  inputs, _, bias = promote_dtype(inputs, kernel, bias, dtype=dtype)
  return inputs, kernel, bias


Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated, promote_dtype=_promote_all_but_kernel)


@jax.custom_vjp
def add_bias(y, bias):
  """y [..., F] + bias [F] (cast to y's dtype); ∂L/∂bias is ∂L/∂y summed over all but the last axis in float32,
  returned in bias's dtype. Autodiff's sum of a bfloat16 ∂L/∂y became an XLA loop fusion in the bfloat16 train step
  (4 ms at ResNet-18 64² b32 on a 2-core CPU) where this one is a YNNPACK reduction (docs/SPEED.md)."""
  return y + bias.astype(y.dtype)


def _add_bias_fwd(y, bias):
  return add_bias(y, bias), bias


def _add_bias_bwd(bias, grad):
  return grad, jnp.sum(grad, axis=tuple(range(grad.ndim - 1)), dtype=jnp.float32).astype(bias.dtype)


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)


class PointwiseConv(nn.Module):
  """A 1x1 convolution with bias: `nn.Conv(features, (1, 1))`'s parameters (`kernel` [1, 1, C, F], `bias` [F], same
  names, shapes and initial values) and results, computed in `dtype` by `conv_general_dilated` with the bias added
  by `add_bias`. [B, H, W, C] → [B, H, W, F]."""
  features: int
  dtype: Any = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()
  bias_init: Any = nn.initializers.zeros

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", self.kernel_init, (1, 1, x.shape[-1], self.features), jnp.float32)
    bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
    y = conv_general_dilated(x.astype(self.dtype), kernel, (1, 1), "VALID", dimension_numbers=_NHWC)
    return add_bias(y, bias)


def _pool_windows(x, window, strides, pads):
  """The kh·kw strided windows of x padded with −inf, tap-major: a list of [B, ho, wo, C] arrays."""
  (kh, kw), (sh, sw) = window, strides
  padded = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
  ho, wo = (padded.shape[1] - kh) // sh + 1, (padded.shape[2] - kw) // sw + 1
  return [padded[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] for i in range(kh) for j in range(kw)]


def max_pool(x, window, strides, pads):
  """`nn.max_pool(x, window, strides, pads)` for x [B, H, W, C] (pads ((top, bottom), (left, right))), gradient to
  each window's first maximum: on CPU in float32 or bfloat16 with `onednn.enabled()` the native kernels
  (`native.max_pool`), elsewhere `max_pool_xla`; both compute the same numbers bit for bit. The native ones keep the
  windows' first-maximum index, which XLA:CPU's fusions recompute per tap: the bfloat16 ResNet-18 64² b32 step 1.06x
  in lockstep (2-core AMD Zen 4, docs/SPEED.md 2026-12-06 (5))."""
  if jnp.dtype(x.dtype) in onednn.DTYPE_SUFFIX and onednn.enabled():
    return jax.lax.platform_dependent(x, cpu=lambda x: native_max_pool.max_pool(x, window, strides, pads),
                                      default=lambda x: max_pool_xla(x, window, strides, pads))
  return max_pool_xla(x, window, strides, pads)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def max_pool_xla(x, window, strides, pads):
  """`nn.max_pool(x, window, strides, pads)` for x [B, H, W, C] (pads ((top, bottom), (left, right))), whose
  gradient routes ∂L/∂out to the first maximum of each window in row-major order — as XLA's select-and-scatter and
  PyTorch's max_pool2d do (ties are common after a ReLU) — written as kh·kw where-selects placed by interior-padded
  `lax.pad`s that XLA fuses into one pass. XLA:CPU's select-and-scatter materialised four s32 iotas of the padded
  input per step: ~8 % of ResNet-18 96²'s op time on a 2-core CPU (`python -m benchmarks.profile`)."""
  return _max_pool_fwd(x, window, strides, pads)[0]


def _max_pool_fwd(x, window, strides, pads):
  # Taps and gradient in float32 even for bfloat16 x, rounding once (a maximum rounds nothing): XLA:CPU ran the
  # bfloat16 version's backward, a rounding after every partial sum, ~20x slower (docs/SPEED.md, 2026-12-06 (2)).
  taps = _pool_windows(at_least_float32(x), window, strides, pads)
  out = functools.reduce(jnp.maximum, taps).astype(x.dtype)  # compared below as cast: 2x faster than the float32 max
  first = jnp.full(out.shape, len(taps) - 1, jnp.int8)  # index of the first tap equal to the window's maximum
  for t in reversed(range(len(taps) - 1)):
    first = jnp.where(taps[t] == out, jnp.int8(t), first)
  return out, (first, x.shape)


def _max_pool_bwd(window, strides, pads, residuals, grad):
  first, (_, h, w, _) = residuals
  (kh, kw), (sh, sw), (ho, wo) = window, strides, grad.shape[1:3]
  hp, wp = h + sum(pads[0]), w + sum(pads[1])
  dtype, grad = grad.dtype, at_least_float32(grad)
  zero = jnp.zeros((), grad.dtype)
  padded_grad = sum(
      jax.lax.pad(jnp.where(first == i * kw + j, grad, zero), zero,
                  ((0, 0, 0), (i, hp - i - sh * (ho - 1) - 1, sh - 1), (j, wp - j - sw * (wo - 1) - 1, sw - 1),
                   (0, 0, 0)))
      for i in range(kh) for j in range(kw))
  return (padded_grad[:, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + w].astype(dtype),)


max_pool_xla.defvjp(_max_pool_fwd, _max_pool_bwd)


# BatchNorm as every model here uses it: PyTorch's momentum 0.1 (= flax 0.9) and eps 1e-5. Train-mode variance as
# mean((x − mean)²), like PyTorch: flax's default E[x²] − E[x]² cancels when a channel's mean is large against its
# spread (post-ReLU activations), losing ~ε·(mean/std)² of the variance; that put 3e-4 relative errors into every
# gradient below ResNet-18's layer4 (tests/test_gradients.py, docs/NUMERICS.md).
BatchNorm = functools.partial(nn.BatchNorm, momentum=0.9, epsilon=1e-5, use_fast_variance=False)


def at_least_float32(x: jax.Array) -> jax.Array:
  """x in float32, or kept in float64 when it already is (the float64 gradient checks run the models in float64)."""
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def mask_bits(keep: float) -> int:
  """Fewest random bits b ≤ 8 per unit with keep·2^b an integer: the mask is then exact. ValueError otherwise."""
  for bits in range(1, 9):
    if float(keep * 2**bits).is_integer():
      return bits
  raise ValueError(f"Dropout: keep probability {keep} is not a multiple of 1/256 (rate must be k/256)")


class Dropout(nn.Module):
  """Inverted dropout (units kept with probability 1 − rate, scaled by 1 / (1 − rate)), as `nn.Dropout`.

  The mask packs 32 // b units into each 32-bit random word (b = `mask_bits`): unit i is kept when its b-bit field
  is < keep·2^b, so P(keep) is exactly 1 − rate for rates that are multiples of 1/256 (others are refused).
  """
  rate: float
  deterministic: bool = False
  rng_collection: str = "dropout"

  @nn.compact
  def __call__(self, x):
    if self.deterministic or self.rate == 0.0:
      return x
    keep = 1.0 - self.rate
    if keep == 0.0:
      return jnp.zeros_like(x)
    bits = mask_bits(keep)
    per_word = 32 // bits
    words = jax.random.bits(self.make_rng(self.rng_collection), (-(-x.size // per_word),), jnp.uint32)
    fields = (words[:, None] >> (jnp.arange(per_word, dtype=jnp.uint32) * bits)) & (2**bits - 1)
    kept = fields.reshape(-1)[:x.size].reshape(x.shape) < int(keep * 2**bits)
    return jnp.where(kept, x / keep, jnp.zeros_like(x))
