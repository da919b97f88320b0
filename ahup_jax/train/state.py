"""SAA train state: G, T (and D) parameters, BatchNorm statistics and two optax optimizers (SPEC §1.3–1.4)."""
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
  """One SAA run's trainable state.

  step: [] int32, iterations done; params / batch_stats: {"G", "T"} plus "D" when D is enabled;
  opt_state_gt: the G+T optimizer's state over {"G", "T"}; opt_state_d: D's optimizer state, None without D.
  """
  step: jax.Array
  params: dict
  batch_stats: dict
  opt_state_gt: Any
  opt_state_d: Any


def d_enabled(config: ml_collections.ConfigDict) -> bool:
  """λ_D = 0 or a single training set disables D entirely: no module, no D step (SPEC §1.2)."""
  return config.adapt.lmd_D > 0 and len(config.data.trainset) > 1


def iters_per_epoch(train_cfg: ml_collections.ConfigDict) -> int:
  """`train.iters_per_epoch`, which must be resolved (> 0) before a schedule or step is built."""
  if train_cfg.iters_per_epoch <= 0:
    raise ValueError(f"train.iters_per_epoch must be resolved to a positive number before building the step, "
                     f"got {train_cfg.iters_per_epoch} (data_pipelines.pivot.iters_per_epoch derives it)")
  return int(train_cfg.iters_per_epoch)


def lr_schedule(train_cfg: ml_collections.ConfigDict) -> optax.Schedule:
  """Multi-step LR as a pure function of the iteration: lr × factor^(number of lr_dec_epochs ≤ epoch) (SPEC §1.4).

  Iteration s uses lr · 0.1^#{e ∈ lr_dec_epochs : s ≥ e · iters_per_epoch}; defaults: 1e-3 for iterations
  0..27 499, 1e-4 from 27 500, 1e-5 from 32 500. A resumed run gets the exact LR (fixes SPEC §9 #22).
  """
  iters = iters_per_epoch(train_cfg)
  boundaries = {int(e) * iters: float(train_cfg.lr_dec_factor) for e in train_cfg.lr_dec_epochs}
  if len(boundaries) != len(train_cfg.lr_dec_epochs):
    raise ValueError(f"train.lr_dec_epochs has repeated epochs: {train_cfg.lr_dec_epochs}")
  return optax.piecewise_constant_schedule(float(train_cfg.lr), boundaries)


def make_optimizers(config: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation,
                                                                optax.GradientTransformation]:
  """(tx_gt, tx_d): two optimizers with identical settings, for {"G", "T"} and for D (SPEC §1.4).

  `train.optimizer`: adam = Adam(b1 0.5, b2 0.999, eps 1e-8), nadam = NAdam(b1 0.9, b2 0.999, eps 1e-8);
  no weight decay; both follow `lr_schedule` of the iteration (D's counts `adapt.d_steps` updates per iteration).
  Adam is per-parameter, so one instance over G and T equals the official separate G and T optimizers.
  """
  def make(schedule) -> optax.GradientTransformation:
    if config.train.optimizer == "adam":
      return optax.adam(schedule, b1=0.5, b2=0.999, eps=1e-8)
    if config.train.optimizer == "nadam":
      return optax.nadam(schedule, b1=0.9, b2=0.999, eps=1e-8)
    raise ValueError(f"train.optimizer must be 'adam' or 'nadam', got {config.train.optimizer!r}")

  return make(lr_schedule(config.train)), make(d_lr_schedule(config))


def d_lr_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """`lr_schedule` as a function of D's update count: `adapt.d_steps` updates per iteration."""
  schedule, d_steps = lr_schedule(config.train), int(config.adapt.get("d_steps", 1))
  return schedule if d_steps == 1 else lambda count: schedule(count // d_steps)


def check_backbone_variables(loaded: dict, expected: dict) -> dict:
  """Pretrained G variables {"params", "batch_stats"} in the tree and dtypes of G's initialised `expected` ones.

  Raises ValueError naming the missing / unexpected leaves or the first leaf whose shape differs.
  """
  loaded = {k: loaded[k] for k in ("params", "batch_stats") if k in loaded}
  want_leaves, treedef = jax.tree_util.tree_flatten_with_path(expected)
  want = dict(want_leaves)
  got = dict(jax.tree_util.tree_flatten_with_path(loaded)[0])
  missing = [jax.tree_util.keystr(p) for p in want if p not in got]
  extra = [jax.tree_util.keystr(p) for p in got if p not in want]
  if missing or extra:
    raise ValueError(f"pretrained backbone does not match config.model.backbone: missing {missing[:5]} "
                     f"({len(missing)}), unexpected {extra[:5]} ({len(extra)})")
  for path, leaf in want.items():
    if tuple(got[path].shape) != tuple(leaf.shape):
      raise ValueError(f"pretrained backbone {jax.tree_util.keystr(path)} has shape {tuple(got[path].shape)}, "
                       f"expected {tuple(leaf.shape)} (config.model.backbone?)")
  return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(got[p], ref.dtype) for p, ref in want_leaves])


def create_train_state(config: ml_collections.ConfigDict, rng: jax.Array,
                       backbone_variables: dict | None = None) -> SAAState:
  """Initialises G, T (and D when `d_enabled`) and both optimizer states at step 0.

  backbone_variables: {"params", "batch_stats"} of a pretrained G (e.g. ImageNet) replacing G's random init;
  its tree and shapes must match `config.model.backbone` exactly (ValueError naming the leaf otherwise).
  """
  backbone, head = models.build_pose_net(config.model)
  size = config.model.input_size
  g_rng, t_rng, d_rng = jax.random.split(rng, 3)
  images = jnp.zeros((1, size, size, 3), jnp.float32)
  g_vars = jax.jit(lambda r: backbone.init(r, images, train=False))(g_rng)
  if backbone_variables is not None:
    g_vars = check_backbone_variables(backbone_variables, g_vars)
  feats = jax.eval_shape(lambda v: backbone.apply(v, images, train=False), g_vars)
  zeros = jnp.zeros(feats.shape, jnp.float32)
  t_vars = jax.jit(lambda r: head.init(r, zeros, train=False))(t_rng)
  params = {"G": g_vars["params"], "T": t_vars["params"]}
  batch_stats = {"G": g_vars["batch_stats"], "T": t_vars["batch_stats"]}
  tx_gt, tx_d = make_optimizers(config)
  opt_state_d = None
  if d_enabled(config):
    disc = models.build_discriminator(config.model, config.adapt)
    d_vars = jax.jit(lambda r: disc.init(r, zeros, train=False))(d_rng)
    params["D"], batch_stats["D"] = d_vars["params"], d_vars.get("batch_stats", {})  # {}: n_layers_D = 1
    opt_state_d = tx_d.init(params["D"])
  return SAAState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                  opt_state_gt=tx_gt.init({"G": params["G"], "T": params["T"]}), opt_state_d=opt_state_d)
