"""Convolution building block shared by G, T and D: `nn.Conv` whose 1x1 kernels run as matrix products.

A 1x1 convolution is a matmul over the channel axis; written as `lax.dot_general` its gradients are matmuls
too, whereas XLA:CPU computes the kernel gradient of a 1x1 `conv_general_dilated` as a convolution over
transposed copies of the activations (2–4x slower for ResNet-50's 1x1 layers, see BENCHMARKS.md). The
parameters (`kernel` [kh, kw, C_in, C_out]) and the result are those of `nn.Conv`; only the lowering differs.
"""
from __future__ import annotations

import functools

import jax
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
  return jax.lax.dot_general(lhs, rhs[0, 0], (((3,), (0,)), ((), ())), precision=precision,
                             preferred_element_type=preferred_element_type)


Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated)
