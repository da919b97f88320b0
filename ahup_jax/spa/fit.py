"""Fits the SPA head f (SPEC §7.4) as a small independent jitted loop: one compiled `lax.scan` per epoch.

The source poses stay on the device; each epoch shuffles them, pads the last partial batch (the padding is
masked out of the losses and of BatchNorm's statistics, so it behaves like the official smaller last batch) and
scans Adam steps (lr ×γ per epoch, global-norm clipping) over the batches.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from tqdm import tqdm

from ahup_jax import models
from ahup_jax.spa.descriptor import skeletal_descriptor


def make_optimizer(spa_cfg: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.GradientTransformation:
  """Adam (0.9, 0.999), lr·γ^epoch, optional global-norm clipping (SPEC §7.4)."""
  schedule = optax.exponential_decay(spa_cfg.lr, steps_per_epoch, spa_cfg.lr_gamma, staircase=True)
  adam = optax.adam(schedule, b1=0.9, b2=0.999, eps=1e-8)
  if spa_cfg.clip_grad_norm > 0:
    return optax.chain(optax.clip_by_global_norm(spa_cfg.clip_grad_norm), adam)
  return adam


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


def _check_config(spa_cfg) -> None:
  if spa_cfg.pose_loss not in ("l1", "mse") or spa_cfg.skel_loss not in ("l1", "mse"):
    raise ValueError("spa.pose_loss and spa.skel_loss must be 'l1' or 'mse'")
  if spa_cfg.lmd_D:
    raise ValueError("spa.lmd_D > 0 (the optional pose discriminator) is not implemented; every reported result "
                     "uses 0 (SPEC §7.4)")
  if spa_cfg.mode not in (1, 2):
    raise ValueError(f"spa.mode must be 1 or 2, got {spa_cfg.mode}")


def make_epoch_fn(spa_cfg, num_poses: int):
  """(params, batch_stats, opt_state, key, data [N, 17, 3], target [16]) → (…, epoch metrics), one scan."""
  net = models.SPANet(residual=spa_cfg.mode == 2)
  batch = int(spa_cfg.batch_size)
  steps = max(1, math.ceil(num_poses / batch))
  tx = make_optimizer(spa_cfg, steps)
  vpr = tuple(spa_cfg.vpr_scale)

  def run_epoch(params, stats, opt_state, key, data, target):
    def step(carry, inputs):
      params, stats, opt_state = carry
      x, mask, step_key = inputs
      drop_key, scale_key = jax.random.split(step_key)
      if vpr:  # scale-only viewpoint randomisation about the hm origin
        x = x * jax.random.uniform(scale_key, (x.shape[0], 1, 1), minval=vpr[0], maxval=vpr[1])

      def objective(p):
        out, updates = net.apply({"params": p, "batch_stats": stats}, x, train=True, mask=mask,
                                 rngs={"dropout": drop_key}, mutable=["batch_stats"])
        loss, parts = spa_loss(out, x, mask, target, spa_cfg)
        return loss, (updates["batch_stats"], parts)

      (loss, (stats, parts)), grads = jax.value_and_grad(objective, has_aux=True)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      params = optax.apply_updates(params, updates)
      return (params, stats, opt_state), dict(parts, loss=loss, grad_norm=optax.global_norm(grads))

    perm_key, step_key = jax.random.split(key)
    order = jax.random.permutation(perm_key, num_poses)
    order = jnp.concatenate([order, jnp.zeros(steps * batch - num_poses, order.dtype)]).reshape(steps, batch)
    mask = (jnp.arange(steps * batch) < num_poses).astype(jnp.float32).reshape(steps, batch)
    keys = jax.random.split(step_key, steps)
    (params, stats, opt_state), metrics = jax.lax.scan(step, (params, stats, opt_state), (data[order], mask, keys))
    return params, stats, opt_state, jax.tree.map(jnp.mean, metrics)

  return net, tx, jax.jit(run_epoch, donate_argnums=(0, 1, 2))


def fit_spa(source_poses: np.ndarray, target_descriptor: np.ndarray, spa_cfg: ml_collections.ConfigDict, *,
            seed: int = 0, eval_poses: np.ndarray | None = None, eval_gt: np.ndarray | None = None,
            progress: bool = True) -> tuple[dict, list[dict]]:
  """Trains f on source poses [N, 17, 3] (hm) toward a target descriptor [16].

  Returns (variables {"params", "batch_stats"}, per-epoch history). The last epoch is returned unless
  `spa_cfg.select_best_on_test` (the authors' selection by hm MPJPE of eval_poses vs eval_gt); each history entry
  records the epoch, and the chosen one has `"selected": True`.
  """
  _check_config(spa_cfg)
  source = jnp.asarray(source_poses, jnp.float32)
  target = jnp.asarray(target_descriptor, jnp.float32)
  net, tx, run_epoch = make_epoch_fn(spa_cfg, len(source))
  init_key, loop_key = jax.random.split(jax.random.key(seed))
  variables = net.init(init_key, source[:2], train=False)
  params, stats = variables["params"], variables["batch_stats"]
  opt_state = tx.init(params)
  select = bool(spa_cfg.select_best_on_test) and eval_poses is not None
  if spa_cfg.select_best_on_test and eval_poses is None:
    raise ValueError("spa.select_best_on_test needs the test predictions and GT (eval_poses, eval_gt)")
  from ahup_jax.spa.apply import adapt_poses
  history, best = [], (math.inf, None, -1)
  for epoch in tqdm(range(int(spa_cfg.epochs)), desc="SPA fit", unit="epoch", disable=not progress):
    params, stats, opt_state, metrics = run_epoch(params, stats, opt_state, jax.random.fold_in(loop_key, epoch),
                                                  source, target)
    entry = {"epoch": epoch, **{k: float(v) for k, v in metrics.items()}}
    if eval_poses is not None:
      adapted = adapt_poses({"params": params, "batch_stats": stats}, eval_poses, spa_cfg)
      entry["eval_mpjpe_hm"] = float(np.linalg.norm(adapted - eval_gt, axis=-1).mean())
      if select and entry["eval_mpjpe_hm"] < best[0]:
        best = (entry["eval_mpjpe_hm"], jax.device_get({"params": params, "batch_stats": stats}), epoch)
    history.append(entry)
  chosen = best[2] if select else len(history) - 1
  if chosen >= 0:
    history[chosen]["selected"] = True
  variables = best[1] if select else {"params": params, "batch_stats": stats}
  return jax.device_get(variables), history
