"""Flax modules of AHuP: G (ResNet), T (volumetric head + soft-argmax), D, and the SPA net f."""
from __future__ import annotations

import jax.numpy as jnp
import ml_collections

from ahup_jax.models.discriminator import ConvD, ConvDC1, make_discriminator
from ahup_jax.models.head import VolumetricHead, soft_argmax
from ahup_jax.models.resnet import ResNet, feature_channels
from ahup_jax.models.spa_net import SPANet

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

# H = input/4 heatmaps over input/32 features: one feature cell spans 8 heatmap pixels (SPEC §3.2).
HM_PER_FEATURE_CELL = 8


def compute_dtype(name: str):
  """Compute dtype from its config name; params always stay float32."""
  try:
    return DTYPES[name]
  except KeyError:
    raise ValueError(f"model.dtype must be one of {sorted(DTYPES)}, got '{name}'") from None


def build_pose_net(model_cfg: ml_collections.ConfigDict) -> tuple[ResNet, VolumetricHead]:
  """G and T for a `config.model` (fields: backbone, depth_bins, num_joints, dtype, *_init)."""
  dtype = compute_dtype(model_cfg.dtype)
  backbone = ResNet(model_cfg.backbone, dtype=dtype, init_scheme=model_cfg.backbone_init)
  head = VolumetricHead(model_cfg.num_joints, model_cfg.depth_bins, dtype=dtype,
                        init_scheme=model_cfg.head_init)
  return backbone, head


def build_discriminator(model_cfg: ml_collections.ConfigDict, adapt_cfg: ml_collections.ConfigDict):
  """D for `config.adapt` (mode_D, n_layers_D, kn_D, ndf)."""
  return make_discriminator(adapt_cfg.mode_D, num_joints=model_cfg.num_joints,
                            n_layers=adapt_cfg.n_layers_D, kernel=adapt_cfg.kn_D,
                            ndf=adapt_cfg.ndf, dtype=compute_dtype(model_cfg.dtype))


__all__ = [
    "ConvD", "ConvDC1", "ResNet", "SPANet", "VolumetricHead", "build_discriminator", "build_pose_net",
    "compute_dtype", "feature_channels", "make_discriminator", "soft_argmax", "HM_PER_FEATURE_CELL",
]
