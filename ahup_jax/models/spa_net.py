"""f: the SPA pose adapter ("PAnet", SPEC §7.3), a residual MLP on flattened hm poses; and its optional pose D."""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from ahup_jax.models import initializers, layers


class SPANet(nn.Module):
  """poses [B, J, 3] (hm units) → adapted poses [B, J, 3]; mode 2: y + f(y), mode 1: f(y).

  51 → 1024 (BN, ReLU, Dropout) → 2 residual blocks of two 1024-linears (BN, ReLU, Dropout) → 51.
  Dropout draws from the 'dropout' RNG stream when `train`. `mask` [B] (optional) keeps padding rows out of the
  BatchNorm batch statistics, so a padded last batch behaves like the smaller real one.
  """
  hidden: int = 1024
  num_blocks: int = 2
  dropout: float = 0.5
  residual: bool = True  # SPA mode 2 (`PA_G_mode`=2)
  dtype: Any = jnp.float32

  def _dense(self, features: int, fan_in: int, name: str):
    return nn.Dense(features, dtype=self.dtype, kernel_init=initializers.he_normal,
                    bias_init=initializers.torch_linear_bias(fan_in), name=name)

  @nn.compact
  def __call__(self, poses, train: bool, mask=None):
    b, j, _ = poses.shape
    y = poses.reshape(b, j * 3).astype(jnp.float32)

    bn_mask = None if mask is None else jnp.broadcast_to(mask[:, None] > 0, (b, self.hidden))

    def bn_relu_drop(x, name):
      x = layers.BatchNorm(use_running_average=not train, dtype=self.dtype, name=name)(x, mask=bn_mask)
      return layers.Dropout(self.dropout, deterministic=not train)(nn.relu(x))

    x = bn_relu_drop(self._dense(self.hidden, j * 3, "w1")(y.astype(self.dtype)), "batch_norm1")
    for s in range(self.num_blocks):
      h = bn_relu_drop(self._dense(self.hidden, self.hidden, f"stage_{s}_w1")(x), f"stage_{s}_bn1")
      h = bn_relu_drop(self._dense(self.hidden, self.hidden, f"stage_{s}_w2")(h), f"stage_{s}_bn2")
      x = x + h
    out = self._dense(j * 3, self.hidden, "w2")(x).astype(jnp.float32)
    if self.residual:
      out = out + y
    return out.reshape(b, j, 3)


class PoseDiscriminator(nn.Module):
  """The optional SPA pose discriminator (SPEC §7.4): poses [B, J, 3] (hm) → logits [B] (source 1, target 0).

  Linear 51→100 → BN → ReLU → Linear 100→50 → BN → ReLU → Linear 50→1, initialised like f (§7.3). It is only
  used in training mode (batch statistics); `mask` [B] keeps padding rows out of them.
  """
  widths: tuple[int, ...] = (100, 50)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, poses, train: bool = True, mask=None):
    b = poses.shape[0]
    x = poses.reshape(b, -1).astype(self.dtype)
    for i, width in enumerate(self.widths):
      x = nn.Dense(width, dtype=self.dtype, kernel_init=initializers.he_normal,
                   bias_init=initializers.torch_linear_bias(x.shape[-1]), name=f"w{i + 1}")(x)
      bn_mask = None if mask is None else jnp.broadcast_to(mask[:, None] > 0, (b, width))
      x = nn.relu(layers.BatchNorm(use_running_average=not train, dtype=self.dtype,
                                   name=f"batch_norm{i + 1}")(x, mask=bn_mask))
    out = nn.Dense(1, dtype=self.dtype, kernel_init=initializers.he_normal,
                   bias_init=initializers.torch_linear_bias(x.shape[-1]), name=f"w{len(self.widths) + 1}")(x)
    return out[:, 0].astype(jnp.float32)
