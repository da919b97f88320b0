"""The inference step: G+T in inference mode, soft-argmax, flip test (SPEC §6.1), optional SPA head (SPEC §7).

`make_predict_fn` is a pure function of (variables, batch); `make_eval_step` compiles it over a mesh with the
batch split along "data" and the variables replicated.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import Mesh

from ahup_jax import models, sharding, skeleton

_FLIP_PERM = skeleton.flip_permutation()


def mirror_hm(poses: jax.Array, hm_width: int) -> jax.Array:
  """Maps a prediction on the mirrored crop back: x ← hm_width − 1 − x, then swap left/right joints [B, 17, 3].

  hm_width − 1 − x (63 − x at 64) is the official mapping; mirroring the crop's pixel array exactly corresponds
  to hm_width − 0.25 − x (63.75 − x), kept faithful on purpose (SPEC §6.1, §9 #21).
  """
  mirrored = poses.at[..., 0].set(hm_width - 1 - poses[..., 0])
  return mirrored[:, _FLIP_PERM]


def make_predict_fn(config: ml_collections.ConfigDict, with_spa: bool = False) -> Callable[[dict, dict], jax.Array]:
  """predict(variables, batch) → hm poses [B, 17, 3] float32 (x, y heatmap px, z depth bin).

  variables = {"params": {"G", "T"}, "batch_stats": {"G", "T"}[, "spa": {"params", "batch_stats"}]};
  batch = {"image": [B, S, S, 3] float32, normalised crops}. With `config.eval.flip_test` the result is the mean of
  the prediction and `mirror_hm` of the prediction on the crop mirrored along its width — the official flip test
  mirrors the normalised patch array itself (`flip(img_patch, dims=3)`), not a re-cropped flipped image; a batch
  `image_flip` entry is therefore not read. With `with_spa` the SPA net f (`config.spa.mode` 2: y + f(y),
  1: f(y)) is applied to that mean.
  """
  backbone, head = models.build_pose_net(config.model)
  hm_width = config.model.input_size // 4
  flip_test = bool(config.eval.flip_test)
  if with_spa and int(config.spa.mode) not in (1, 2):
    raise ValueError(f"spa.mode must be 1 (direct) or 2 (residual), got {config.spa.mode}")
  spa = models.SPANet(residual=int(config.spa.mode) == 2) if with_spa else None

  def pose(variables, images):
    g = {"params": variables["params"]["G"], "batch_stats": variables["batch_stats"]["G"]}
    t = {"params": variables["params"]["T"], "batch_stats": variables["batch_stats"]["T"]}
    return models.soft_argmax(head.apply(t, backbone.apply(g, images, train=False), train=False))

  def predict(variables, batch):
    pred = pose(variables, batch["image"])
    if flip_test:
      mirrored = jnp.flip(batch["image"], axis=2)
      pred = (pred + mirror_hm(pose(variables, mirrored), hm_width)) / 2
    if spa is not None:
      pred = spa.apply(variables["spa"], pred, train=False)
    return pred

  return predict


EvalStep = Callable[[dict, dict], dict]


def make_eval_step(config: ml_collections.ConfigDict, mesh: Mesh, with_spa: bool = False) -> EvalStep:
  """Jitted step over `mesh`: (variables, global batch of image, index, valid) →
  {"pred" [B, 17, 3], "index" [B], "valid" [B]}, replicated so every process can read the whole batch."""
  predict = make_predict_fn(config, with_spa=with_spa)

  def step(variables, batch):
    return {"pred": predict(variables, batch), "index": batch["index"], "valid": batch["valid"]}

  return jax.jit(step, in_shardings=(sharding.replicated(mesh), sharding.batch_sharding(mesh)),
                 out_shardings=sharding.replicated(mesh))
