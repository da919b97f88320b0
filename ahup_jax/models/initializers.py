"""Weight initialisers of the official code (SPEC §2.6, §7.3), as Flax initialiser functions."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

# Xavier-normal with gain 0.02, untruncated: std = 0.02 * sqrt(2 / (fan_in + fan_out)).
# (NOT nn.initializers.glorot_normal, which is truncated and has gain 1.)
xavier_002 = nn.initializers.variance_scaling(0.02**2, "fan_avg", "normal")

# 3DMPPE head initialisation N(0, 0.001) (`head_init=normal_0.001`).
normal_0001 = nn.initializers.normal(0.001)

# Kaiming-normal (fan_in, gain sqrt 2) of the SPA network's linears, and the common ResNet-from-scratch
# choice (`backbone_init=he_normal`).
he_normal = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def bn_scale_normal(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
  """BatchNorm2d scale ~ N(1, 0.02) (official `init_weights`)."""
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def torch_linear_bias(fan_in: int):
  """PyTorch's default Linear bias init U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / fan_in**0.5

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


KERNEL_INITS = {"xavier_0.02": xavier_002, "normal_0.001": normal_0001, "he_normal": he_normal}


def kernel_init(name: str):
  """Looks up a kernel initialiser by its config name."""
  try:
    return KERNEL_INITS[name]
  except KeyError:
    raise ValueError(f"unknown init '{name}', expected one of {sorted(KERNEL_INITS)}") from None
