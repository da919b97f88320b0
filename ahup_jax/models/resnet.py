"""G: ResNet backbone in the torchvision v1.5 layout, returning the stride-32 feature map (SPEC §2.2).

Submodule names follow torchvision's state_dict (`conv1`, `bn1`, `layer1_0/conv1`, `layer2_0/downsample_0`,
...) so PyTorch weights map onto them mechanically ("." → "_"; see `ahup_jax.convert_torch`).
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import jax.numpy as jnp
from flax import linen as nn

from ahup_jax.models import initializers, layers

STAGES: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "res18": ("basic", (2, 2, 2, 2)),
    "res34": ("basic", (3, 4, 6, 3)),
    "res50": ("bottleneck", (3, 4, 6, 3)),
    "res101": ("bottleneck", (3, 4, 23, 3)),
    "res152": ("bottleneck", (3, 8, 36, 3)),
}


def feature_channels(backbone: str) -> int:
  """Channels of G's output: 512 for BasicBlock ResNets, 2048 for Bottleneck ones."""
  return 512 if STAGES[backbone][0] == "basic" else 2048


class BasicBlock(nn.Module):
  """Two 3x3 convs with an identity/projection shortcut (res18/34)."""
  features: int
  stride: int
  conv: Callable[..., Any]
  norm: Callable[..., Any]
  expansion = 1

  @nn.compact
  def __call__(self, x):
    y = self.conv(self.features, (3, 3), (self.stride, self.stride), padding=1, name="conv1")(x)
    y = nn.relu(self.norm(name="bn1")(y))
    y = self.conv(self.features, (3, 3), padding=1, name="conv2")(y)
    y = self.norm(name="bn2")(y)
    if x.shape[-1] != self.features or self.stride != 1:
      x = self.conv(self.features, (1, 1), (self.stride, self.stride), name="downsample_0")(x)
      x = self.norm(name="downsample_1")(x)
    return nn.relu(x + y)


class Bottleneck(nn.Module):
  """1x1 → 3x3 (stride here: "v1.5") → 1x1 (x4) with shortcut (res50/101/152)."""
  features: int
  stride: int
  conv: Callable[..., Any]
  norm: Callable[..., Any]
  expansion = 4

  @nn.compact
  def __call__(self, x):
    out = self.features * self.expansion
    y = nn.relu(self.norm(name="bn1")(self.conv(self.features, (1, 1), name="conv1")(x)))
    y = self.conv(self.features, (3, 3), (self.stride, self.stride), padding=1, name="conv2")(y)
    y = nn.relu(self.norm(name="bn2")(y))
    y = self.norm(name="bn3")(self.conv(out, (1, 1), name="conv3")(y))
    if x.shape[-1] != out or self.stride != 1:
      x = self.conv(out, (1, 1), (self.stride, self.stride), name="downsample_0")(x)
      x = self.norm(name="downsample_1")(x)
    return nn.relu(x + y)


class ResNet(nn.Module):
  """ResNet without pooling/FC. images [B, H, W, 3] → features [B, H/32, W/32, C] (C = 512 or 2048)."""
  backbone: str = "res50"
  dtype: Any = jnp.float32
  init_scheme: str = "xavier_0.02"

  @nn.compact
  def __call__(self, x, train: bool):
    block_kind, stage_sizes = STAGES[self.backbone]
    block = BasicBlock if block_kind == "basic" else Bottleneck
    conv = functools.partial(layers.Conv, use_bias=False, dtype=self.dtype,
                             kernel_init=initializers.kernel_init(self.init_scheme))
    norm = functools.partial(layers.BatchNorm, use_running_average=not train, dtype=self.dtype,
                             scale_init=initializers.bn_scale_normal)
    x = conv(64, (7, 7), (2, 2), padding=3, name="conv1")(x.astype(self.dtype))
    x = nn.relu(norm(name="bn1")(x))
    x = layers.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
    for stage, num_blocks in enumerate(stage_sizes):
      for i in range(num_blocks):
        stride = 2 if (i == 0 and stage > 0) else 1
        x = block(64 * 2**stage, stride, conv, norm, name=f"layer{stage + 1}_{i}")(x)
    return x
