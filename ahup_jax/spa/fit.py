"""Fits the SPA head f (SPEC §7.4) as a small independent jitted loop: one compiled `lax.scan` per epoch.

The source poses stay on the device; each epoch shuffles them, pads the last partial batch (the padding is
masked out of the losses and of BatchNorm's statistics, so it behaves like the official smaller last batch) and
scans Adam steps (lr ×γ per epoch, global-norm clipping) over the batches. With `lmd_D > 0` every step first
updates the optional pose discriminator D on stop-gradient y_SPA (label 1) and a batch of target poses (label 0),
then updates f through the updated D (the order of the SAA step, SPEC §9 notes); D has its own Adam.

`pose_scale` k fits f on poses × k and folds k into the head afterwards (`fold_pose_scale`). f's initial output
and its dropout noise are a few hm px whatever the heatmap size, and the L1 pose term is in hm px, so the SPEC's
λ_skel and schedule (≈ 22 000 Adam steps on 82k ScanAva+ poses at 64-px heatmaps) lose their meaning on a small model:
on the embedded dataset (24-px heatmaps, 2 880 source poses, 12 steps/epoch) the default fit displaced its own
training poses by 4.7 hm px (≈ 390 mm) per joint, and its SAA + SPA MPJPE doubled. `configs/saa.py:synth` therefore
uses k = 64/24 with lr 1e-3 for 64 epochs (0.3 px on the source poses, 91 % of the descriptor gap closed).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from tqdm import tqdm

from ahup_jax import models
from ahup_jax.models.spa_net import PoseDiscriminator
from ahup_jax.spa.descriptor import skeletal_descriptor

SOURCE_LABEL, TARGET_LABEL = 1.0, 0.0  # D's labels (SPEC §7.4)


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
  """`optax.clip_by_global_norm` as one scalar factor min(1, max_norm / ‖g‖) on every gradient.

  The factor fuses into Adam's moment updates; optax's select(‖g‖ < max_norm, g, g / ‖g‖ · max_norm) made XLA
  write the clipped copy of all 4.3 M gradients in every step first (~3 % of an SPA epoch on a 2-core CPU).
  Identical results while ‖g‖ < max_norm; otherwise equal up to float rounding.
  """
  def update(grads, state, params=None):
    del params
    factor = jnp.minimum(1.0, max_norm / optax.global_norm(grads))
    return jax.tree.map(lambda g: g * factor.astype(g.dtype), grads), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(spa_cfg: ml_collections.ConfigDict, steps_per_epoch: int,
                   clip: bool = True) -> optax.GradientTransformation:
  """Adam (0.9, 0.999), lr·γ^epoch, optional global-norm clipping (SPEC §7.4; D: `clip=False`)."""
  schedule = optax.exponential_decay(spa_cfg.lr, steps_per_epoch, spa_cfg.lr_gamma, staircase=True)
  adam = optax.adam(schedule, b1=0.9, b2=0.999, eps=1e-8)
  if clip and spa_cfg.clip_grad_norm > 0:
    return optax.chain(clip_by_global_norm(spa_cfg.clip_grad_norm), adam)
  return adam


def _masked_mean(values, mask):
  return jnp.sum(values * mask) / jnp.maximum(mask.sum(), 1.0)


def spa_loss(adapted, inputs, mask, target_descriptor, spa_cfg) -> tuple[jax.Array, dict]:
  """λ_G · pose term + λ_skel · descriptor term over the unmasked samples (SPEC §7.4).

  adapted, inputs: [B, 17, 3] hm; mask: [B] 1 for real samples; target_descriptor: [16].
  """
  count = jnp.maximum(mask.sum(), 1.0)
  diff = adapted - inputs
  pose_elem = jnp.abs(diff) if spa_cfg.pose_loss == "l1" else diff**2
  pose = jnp.sum(pose_elem * mask[:, None, None]) / (count * 51)
  desc_diff = skeletal_descriptor(adapted) - target_descriptor
  skel_elem = desc_diff**2 if spa_cfg.skel_loss == "mse" else jnp.abs(desc_diff)
  skel = jnp.sum(skel_elem * mask[:, None]) / (count * desc_diff.shape[-1])
  return spa_cfg.lmd_G * pose + spa_cfg.lmd_skel * skel, {"pose_loss": pose, "skel_loss": skel}


def _check_config(spa_cfg, has_target_poses: bool) -> None:
  if spa_cfg.pose_loss not in ("l1", "mse") or spa_cfg.skel_loss not in ("l1", "mse"):
    raise ValueError("spa.pose_loss and spa.skel_loss must be 'l1' or 'mse'")
  if spa_cfg.mode not in (1, 2):
    raise ValueError(f"spa.mode must be 1 or 2, got {spa_cfg.mode}")
  if not spa_cfg.pose_scale > 0:
    raise ValueError(f"spa.pose_scale must be > 0, got {spa_cfg.pose_scale}")
  if spa_cfg.lmd_D < 0:
    raise ValueError(f"spa.lmd_D must be ≥ 0, got {spa_cfg.lmd_D}")
  if spa_cfg.lmd_D > 0 and not has_target_poses:
    raise ValueError("spa.lmd_D > 0 (the pose discriminator) needs target poses, not only a descriptor: "
                     "use a pose file as spa.target (`<Name>_hm.json` or a pred_hm .npz), not tailor measurements")


class Trainer(NamedTuple):
  """The compiled pieces of one SPA fit.

  init(key, sample [2, 17, 3]) → state {"params", "batch_stats", "opt_state"[, "d": {same for D}]};
  run_epoch(state, key, source [N, 17, 3], target_descriptor [16], target_poses [M, 17, 3] | None)
  → (state, epoch-mean metrics); jitted, the state is donated.
  """
  net: models.SPANet
  discriminator: PoseDiscriminator | None
  init: Callable
  run_epoch: Callable


def make_trainer(spa_cfg: ml_collections.ConfigDict, num_poses: int) -> Trainer:
  """The SPA net f, D when `lmd_D > 0`, and one jitted epoch over `num_poses` source poses (SPEC §7.4)."""
  net = models.SPANet(residual=spa_cfg.mode == 2)
  disc = PoseDiscriminator() if spa_cfg.lmd_D > 0 else None
  batch = int(spa_cfg.batch_size)
  steps = max(1, math.ceil(num_poses / batch))
  tx = make_optimizer(spa_cfg, steps)
  tx_d = make_optimizer(spa_cfg, steps, clip=False)
  vpr = tuple(spa_cfg.vpr_scale)
  lmd_D = float(spa_cfg.lmd_D)

  def init(key, sample):
    variables = net.init(key, sample, train=False)
    state = {"params": variables["params"], "batch_stats": variables["batch_stats"],
             "opt_state": tx.init(variables["params"])}
    if disc is not None:
      d_vars = disc.init(jax.random.fold_in(key, 1), sample, train=False)
      state["d"] = {"params": d_vars["params"], "batch_stats": d_vars["batch_stats"],
                    "opt_state": tx_d.init(d_vars["params"])}
    return state

  def d_logits(d_vars, poses, mask):
    logits, updates = disc.apply(d_vars, poses, train=True, mask=mask, mutable=["batch_stats"])
    return logits, updates["batch_stats"]

  def update_discriminator(d_state, adapted, mask, target_batch):
    """One Adam step of D: BCE-with-logits, y_SPA (stop-gradient) → 1, target poses → 0."""
    def objective(d_params):
      src_logits, stats = d_logits({"params": d_params, "batch_stats": d_state["batch_stats"]}, adapted, mask)
      tar_logits, stats = d_logits({"params": d_params, "batch_stats": stats}, target_batch, None)
      loss = 0.5 * (_masked_mean(optax.sigmoid_binary_cross_entropy(src_logits, SOURCE_LABEL), mask)
                    + optax.sigmoid_binary_cross_entropy(tar_logits, TARGET_LABEL).mean())
      return loss, stats

    (loss, stats), grads = jax.value_and_grad(objective, has_aux=True)(d_state["params"])
    updates, opt_state = tx_d.update(grads, d_state["opt_state"], d_state["params"])
    return {"params": optax.apply_updates(d_state["params"], updates), "batch_stats": stats,
            "opt_state": opt_state}, loss

  def step(target, target_poses, state, inputs):
    x, mask, step_key = inputs
    drop_key, scale_key = jax.random.split(step_key)
    if vpr:  # scale-only viewpoint randomisation about the hm origin
      x = x * jax.random.uniform(scale_key, (x.shape[0], 1, 1), minval=vpr[0], maxval=vpr[1])

    def forward(params):
      out, updates = net.apply({"params": params, "batch_stats": state["batch_stats"]}, x, train=True, mask=mask,
                               rngs={"dropout": drop_key}, mutable=["batch_stats"])
      return out, updates["batch_stats"]

    adapted, pullback, stats = jax.vjp(forward, state["params"], has_aux=True)
    metrics = {}
    if disc is not None:
      target_batch = target_poses[jax.random.randint(jax.random.fold_in(step_key, 2), (x.shape[0],), 0,
                                                     target_poses.shape[0])]
      state = dict(state)
      state["d"], metrics["d_loss"] = update_discriminator(state["d"], jax.lax.stop_gradient(adapted), mask,
                                                           target_batch)

    def objective(out):
      loss, parts = spa_loss(out, x, mask, target, spa_cfg)
      if disc is not None:  # f is pushed to make D call y_SPA a target pose; D's statistics are not kept
        d_vars = {"params": state["d"]["params"], "batch_stats": state["d"]["batch_stats"]}
        logits, _ = d_logits(d_vars, out, mask)
        parts["adv_loss"] = _masked_mean(optax.sigmoid_binary_cross_entropy(logits, TARGET_LABEL), mask)
        loss = loss + lmd_D * parts["adv_loss"]
      return loss, parts

    (loss, parts), out_grad = jax.value_and_grad(objective, has_aux=True)(adapted)
    (grads,) = pullback(out_grad)
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    state = dict(state, params=optax.apply_updates(state["params"], updates), batch_stats=stats,
                 opt_state=opt_state)
    return state, dict(metrics, **parts, loss=loss, grad_norm=optax.global_norm(grads))

  def run_epoch(state, key, data, target, target_poses=None):
    perm_key, step_key = jax.random.split(key)
    order = jax.random.permutation(perm_key, num_poses)
    order = jnp.concatenate([order, jnp.zeros(steps * batch - num_poses, order.dtype)]).reshape(steps, batch)
    mask = (jnp.arange(steps * batch) < num_poses).astype(jnp.float32).reshape(steps, batch)
    keys = jax.random.split(step_key, steps)
    state, metrics = jax.lax.scan(lambda s, i: step(target, target_poses, s, i), state, (data[order], mask, keys))
    return state, jax.tree.map(jnp.mean, metrics)

  return Trainer(net, disc, init, jax.jit(run_epoch, donate_argnums=0))


def fold_pose_scale(variables: dict, pose_scale: float) -> dict:
  """f trained on poses × k → the same function on the poses themselves: y ↦ f(k·y)/k (`spa.pose_scale`).

  Exact: the first linear's kernel takes the factor k (its BatchNorm sees identical pre-activations) and the last
  linear's kernel and bias the factor 1/k, so apply, inference and export use the head unchanged.
  """
  if pose_scale == 1:
    return variables
  params = dict(variables["params"])
  params["w1"] = dict(params["w1"], kernel=params["w1"]["kernel"] * pose_scale)
  params["w2"] = {k: v / pose_scale for k, v in params["w2"].items()}
  return dict(variables, params=params)


def fit_spa(source_poses: np.ndarray, target_descriptor: np.ndarray, spa_cfg: ml_collections.ConfigDict, *,
            target_poses: np.ndarray | None = None, seed: int = 0, eval_poses: np.ndarray | None = None,
            eval_gt: np.ndarray | None = None, progress: bool = True) -> tuple[dict, list[dict]]:
  """Trains f on source poses [N, 17, 3] (hm) toward a target descriptor [16].

  target_poses [M, 17, 3] (hm): the target set's poses, needed only by the pose discriminator (`lmd_D > 0`).
  Returns (variables {"params", "batch_stats"} of f, per-epoch history). The last epoch is returned unless
  `spa_cfg.select_best_on_test` (the authors' selection by hm MPJPE of eval_poses vs eval_gt); each history entry
  records the epoch, and the chosen one has `"selected": True`.
  """
  _check_config(spa_cfg, target_poses is not None)
  scale = float(spa_cfg.pose_scale)  # training units: hm × scale (the descriptor is scale-invariant)
  source = jnp.asarray(source_poses, jnp.float32) * scale
  target = jnp.asarray(target_descriptor, jnp.float32)
  tar_poses = jnp.asarray(target_poses, jnp.float32) * scale if spa_cfg.lmd_D > 0 else None
  trainer = make_trainer(spa_cfg, len(source))
  init_key, loop_key = jax.random.split(jax.random.key(seed))
  state = trainer.init(init_key, source[:2])
  select = bool(spa_cfg.select_best_on_test) and eval_poses is not None
  if spa_cfg.select_best_on_test and eval_poses is None:
    raise ValueError("spa.select_best_on_test needs the test predictions and GT (eval_poses, eval_gt)")
  from ahup_jax.spa.apply import adapt_poses
  history, best = [], (math.inf, None, -1)
  for epoch in tqdm(range(int(spa_cfg.epochs)), desc="SPA fit", unit="epoch", disable=not progress):
    state, metrics = trainer.run_epoch(state, jax.random.fold_in(loop_key, epoch), source, target, tar_poses)
    entry = {"epoch": epoch, **{k: float(v) for k, v in metrics.items()}}
    if eval_poses is not None:
      variables = fold_pose_scale({"params": state["params"], "batch_stats": state["batch_stats"]}, scale)
      adapted = adapt_poses(variables, eval_poses, spa_cfg)
      entry["eval_mpjpe_hm"] = float(np.linalg.norm(adapted - eval_gt, axis=-1).mean())
      if select and entry["eval_mpjpe_hm"] < best[0]:
        best = (entry["eval_mpjpe_hm"], jax.device_get(variables), epoch)
    history.append(entry)
  chosen = best[2] if select else len(history) - 1
  if chosen >= 0:
    history[chosen]["selected"] = True
  if select:
    return best[1], history
  variables = fold_pose_scale({"params": state["params"], "batch_stats": state["batch_stats"]}, scale)
  return jax.device_get(variables), history
