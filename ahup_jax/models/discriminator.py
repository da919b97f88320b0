"""D: feature-wise discriminators on G's features (SPEC §2.5). Raw scores, never a sigmoid layer."""
from __future__ import annotations

import functools
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from ahup_jax.models import initializers, layers


def _trunk(x, *, n_layers, kernel, ndf, norm, conv):
  """Conv(→ndf) LReLU, then n_layers-1 × [Conv, BN, LReLU] doubling channels up to 8·ndf."""
  x = nn.leaky_relu(conv(ndf, name="conv_0")(x), 0.2)
  for i in range(1, n_layers):
    x = conv(ndf * min(2**i, 8), name=f"conv_{i}")(x)
    x = nn.leaky_relu(norm(name=f"bn_{i}")(x), 0.2)
  return x


class ConvD(nn.Module):
  """features [B, h, w, C] → per-cell scores [B, h, w, ch_out] (ch_out = J for SA, 1 for C)."""
  ch_out: int = 17
  n_layers: int = 3
  kernel: int = 1
  ndf: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    conv = functools.partial(layers.Conv, kernel_size=(self.kernel, self.kernel), padding="SAME",
                             dtype=self.dtype, kernel_init=initializers.xavier_002)
    norm = functools.partial(layers.BatchNorm, use_running_average=not train, dtype=self.dtype,
                             scale_init=initializers.bn_scale_normal)
    x = _trunk(x.astype(self.dtype), n_layers=self.n_layers, kernel=self.kernel, ndf=self.ndf,
               norm=norm, conv=conv)
    return layers.at_least_float32(conv(self.ch_out, name="conv_out")(x))


class ConvDC1(nn.Module):
  """ConvD_C1 (modes C1, SA1): trunk + extra Conv→ndf, BN, LReLU; returns (patch [B,h,w,ch_out], image [B,1]).

  C1 uses only the image-level head; SA1 sums the losses of both heads (SPEC §2.5, §3.3).
  """
  ch_out: int = 1
  n_layers: int = 3
  kernel: int = 1
  ndf: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    conv = functools.partial(layers.Conv, kernel_size=(self.kernel, self.kernel), padding="SAME",
                             dtype=self.dtype, kernel_init=initializers.xavier_002)
    norm = functools.partial(layers.BatchNorm, use_running_average=not train, dtype=self.dtype,
                             scale_init=initializers.bn_scale_normal)
    x = _trunk(x.astype(self.dtype), n_layers=self.n_layers, kernel=self.kernel, ndf=self.ndf,
               norm=norm, conv=conv)
    x = conv(self.ndf, name=f"conv_{self.n_layers}")(x)
    x = nn.leaky_relu(norm(name=f"bn_{self.n_layers}")(x), 0.2)
    patch = layers.at_least_float32(conv(self.ch_out, name="conv_out")(x))
    # Image head: flatten in PyTorch's (C, H, W) order so ported Linear weights line up.
    flat = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)
    y = nn.Dense(20, dtype=self.dtype, kernel_init=initializers.xavier_002, name="fc_0")(flat)
    y = layers.BatchNorm(use_running_average=not train, dtype=self.dtype, name="fc_bn")(y)
    y = nn.leaky_relu(y, 0.2)
    image = nn.Dense(1, dtype=self.dtype, kernel_init=initializers.xavier_002, name="fc_1")(y)
    return patch, layers.at_least_float32(image)


def make_discriminator(mode: str, *, num_joints: int, n_layers: int, kernel: int, ndf: int,
                       dtype=jnp.float32) -> nn.Module:
  """D for `mode_D` ∈ {SA, C, C1, SA1} (SPEC §1.2)."""
  ch_out = num_joints if mode in ("SA", "SA1") else 1
  if mode in ("SA", "C"):
    return ConvD(ch_out, n_layers, kernel, ndf, dtype)
  if mode in ("C1", "SA1"):
    return ConvDC1(ch_out, n_layers, kernel, ndf, dtype)
  raise ValueError(f"mode_D must be one of SA, C, C1, SA1; got '{mode}'")
