"""SAA train state: G+T and D parameters, BatchNorm statistics and two optax optimizers (SPEC §1.3–1.4)."""
from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from ahup_jax import models


@flax.struct.dataclass
class SAAState:
  """step: scalar int32; params/batch_stats: {"G", "T"[, "D"]}; one optimizer state for G+T, one for D."""
  step: jax.Array
  params: dict
  batch_stats: dict
  opt_state_gt: Any
  opt_state_d: Any


def d_enabled(config: ml_collections.ConfigDict) -> bool:
  """λ_D = 0 or a single training set disables D entirely (no module, no D step; SPEC §1.2)."""
  return config.adapt.lmd_D > 0 and len(config.data.trainset) > 1


def steps_per_epoch(config: ml_collections.ConfigDict) -> int:
  if config.train.iters_per_epoch <= 0:
    raise ValueError("train.iters_per_epoch must be resolved to a positive number before building the step "
                     "(data_pipelines.pivot.iters_per_epoch does it from the leading dataset)")
  return config.train.iters_per_epoch


def lr_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """Multi-step schedule as a pure function of the step: ×factor after each epoch in lr_dec_epochs (SPEC §1.4)."""
  iters = steps_per_epoch(config)
  boundaries = {int(e) * iters: config.train.lr_dec_factor for e in config.train.lr_dec_epochs}
  return optax.piecewise_constant_schedule(config.train.lr, boundaries)


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam(b1 0.5, b2 0.999, eps 1e-8) or NAdam(b1 0.9); G+T and D each get their own instance."""
  schedule = lr_schedule(config)
  if config.train.optimizer == "adam":
    return optax.adam(schedule, b1=0.5, b2=0.999, eps=1e-8)
  if config.train.optimizer == "nadam":
    return optax.nadam(schedule, b1=0.9, b2=0.999, eps=1e-8)
  raise ValueError(f"train.optimizer must be 'adam' or 'nadam', got '{config.train.optimizer}'")


def _check_same_structure(name: str, loaded, expected) -> None:
  want = jax.tree_util.tree_flatten_with_path(expected)[0]
  got = dict(jax.tree_util.tree_flatten_with_path(loaded)[0])
  for path, leaf in want:
    if path not in got:
      raise ValueError(f"pretrained backbone lacks {name}{jax.tree_util.keystr(path)}")
    if tuple(got[path].shape) != tuple(leaf.shape):
      raise ValueError(f"pretrained backbone {name}{jax.tree_util.keystr(path)} has shape {got[path].shape}, "
                       f"expected {leaf.shape} (config.model.backbone={name!r}?)")


def create_train_state(config: ml_collections.ConfigDict, rng: jax.Array,
                       backbone_variables: dict | None = None) -> SAAState:
  """Initialises G, T (and D when enabled) and both optimizers; `backbone_variables` overwrite G's init."""
  backbone, head = models.build_pose_net(config.model)
  size = config.model.input_size
  g_rng, t_rng, d_rng = jax.random.split(rng, 3)
  g_vars = backbone.init(g_rng, jnp.zeros((1, size, size, 3), jnp.float32), train=False)
  if backbone_variables is not None:
    for key in ("params", "batch_stats"):
      _check_same_structure(key, backbone_variables[key], g_vars[key])
    g_vars = jax.tree.map(jnp.asarray, {k: backbone_variables[k] for k in ("params", "batch_stats")})
  feats = jax.eval_shape(lambda v: backbone.apply(v, jnp.zeros((1, size, size, 3)), train=False), g_vars)
  t_vars = head.init(t_rng, jnp.zeros(feats.shape, jnp.float32), train=False)
  params = {"G": g_vars["params"], "T": t_vars["params"]}
  batch_stats = {"G": g_vars["batch_stats"], "T": t_vars["batch_stats"]}
  opt_state_d = None
  if d_enabled(config):
    disc = models.build_discriminator(config.model, config.adapt)
    d_vars = disc.init(d_rng, jnp.zeros(feats.shape, jnp.float32), train=False)
    params["D"], batch_stats["D"] = d_vars["params"], d_vars["batch_stats"]
    opt_state_d = make_optimizer(config).init(params["D"])
  opt_state_gt = make_optimizer(config).init({"G": params["G"], "T": params["T"]})
  return SAAState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                  opt_state_gt=opt_state_gt, opt_state_d=opt_state_d)
