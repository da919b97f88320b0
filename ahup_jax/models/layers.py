"""Layers the models share, drop-in for their flax.linen namesakes but cheaper on the hot paths.

`Conv`: `nn.Conv` whose 1x1 kernels run as matrix products. A 1x1 convolution is a matmul over the channel axis;
written as `lax.dot_general` its gradients are matmuls too, whereas XLA:CPU computes the kernel gradient of a 1x1
`conv_general_dilated` as a convolution over transposed copies of the activations (1.5–3x slower fwd+bwd for
ResNet-50's 1x1 layers on a 2-core CPU; `python -m benchmarks.profile` shows where a step's time goes). The kernel
gradient is written out (`pointwise`) so that the matmul transposes the thinner of its two operands. The
parameters (`kernel` [kh, kw, C_in, C_out]) and the result are those of `nn.Conv`; only the lowering differs.

`Dropout`: `nn.Dropout` drawing only the random bits a mask needs (1 bit per unit at rate 0.5) instead of a
32-bit uniform per unit; generating those uniforms was a fifth of the SPA fit's epoch time on a 2-core CPU.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn


def _is_pointwise(lhs, rhs, padding, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
                  batch_group_count) -> bool:
  """Whether the convolution is an NHWC x HWIO 1x1 kernel without padding, dilation or groups."""
  if lhs.ndim != 4 or rhs.shape[:2] != (1, 1) or feature_group_count != 1 or batch_group_count != 1:
    return False
  nhwc = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
  if jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) != nhwc:
    return False
  unpadded = padding in ("SAME", "VALID") or all(tuple(p) == (0, 0) for p in padding)  # 1x1 SAME pads 0
  return unpadded and all(d == 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1, precision=None,
                         preferred_element_type=None):
  """`lax.conv_general_dilated`, except an NHWC x HWIO 1x1 kernel without padding or dilation: a dot.

  lhs [B, H, W, C_in], rhs [1, 1, C_in, C_out] → [B, ⌈H/s⌉, ⌈W/s⌉, C_out] (stride s = a strided slice first).
  """
  if not _is_pointwise(lhs, rhs, padding, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
                       batch_group_count):
    return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                                        feature_group_count=feature_group_count,
                                        batch_group_count=batch_group_count, precision=precision,
                                        preferred_element_type=preferred_element_type)
  sh, sw = window_strides
  if (sh, sw) != (1, 1):
    lhs = lhs[:, ::sh, ::sw]
  if precision is not None or preferred_element_type is not None:
    return jax.lax.dot_general(lhs, rhs[0, 0], _OVER_CHANNELS, precision=precision,
                               preferred_element_type=preferred_element_type)
  return pointwise(lhs, rhs[0, 0])


_OVER_CHANNELS = (((3,), (0,)), ((), ()))
_OVER_POSITIONS = (((0, 1, 2), (0, 1, 2)), ((), ()))


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


Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated)


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
