"""The inference step: G+T in inference mode, flip test (SPEC §6.1), optional SPA head (SPEC §7)."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections

from ahup_jax import models, skeleton

_FLIP_PERM = jnp.asarray(skeleton.flip_permutation())


def make_predict_fn(config: ml_collections.ConfigDict, with_spa: bool = False) -> Callable[[dict, dict], jax.Array]:
  """predict(variables, batch) → hm poses [B, 17, 3]. variables = {"params": {"G", "T"}, "batch_stats": {"G", "T"}
  [, "spa": {"params", "batch_stats"}]}; batch = {"image" [B, S, S, 3][, "image_flip"]}."""
  backbone, head = models.build_pose_net(config.model)
  hm_width = config.model.input_size // 4
  flip_test = bool(config.eval.flip_test)
  spa = models.SPANet(residual=int(config.spa.mode) == 2) if with_spa else None

  def pose(variables, images):
    g = {"params": variables["params"]["G"], "batch_stats": variables["batch_stats"]["G"]}
    t = {"params": variables["params"]["T"], "batch_stats": variables["batch_stats"]["T"]}
    return models.soft_argmax(head.apply(t, backbone.apply(g, images, train=False), train=False))

  def predict(variables, batch):
    pred = pose(variables, batch["image"])
    if flip_test:
      flipped = pose(variables, batch["image_flip"])
      flipped = flipped.at[..., 0].set(hm_width - 1 - flipped[..., 0])  # 63 − x at 64 (faithful, SPEC §9 #21)
      pred = (pred + flipped[:, _FLIP_PERM]) / 2
    if spa is not None:
      pred = spa.apply(variables["spa"], pred, train=False)
    return pred

  return predict
