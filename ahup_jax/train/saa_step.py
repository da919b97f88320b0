"""One SAA iteration (SPEC §1.3, Appendix B): D update on stop-gradient features, then G+T through the new D.

G runs forward once (BatchNorm statistics updated once); its vjp is kept and pulled back with ∂L/∂F after the
D update (option (a) of SPEC §1.3). The z-supervision gate and `fix_G` are computed from `state.step`, so one
compiled program serves every epoch.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from ahup_jax import losses, models
from ahup_jax.train.state import SAAState, d_enabled, lr_schedule, make_optimizer, steps_per_epoch

Batch = dict[str, jax.Array]


def make_train_step(config: ml_collections.ConfigDict) -> Callable[[SAAState, Batch], tuple[SAAState, dict]]:
  """train_step(state, batch) → (state, metrics). Batch keys: docs/ARCHITECTURE.md (image [B,S,S,3], joints_hm
  [B,J,3], vis [B,J], joint_cells [B,J,2], have_depth [B], is_synthetic [B])."""
  backbone, head = models.build_pose_net(config.model)
  use_d = d_enabled(config)
  disc = models.build_discriminator(config.model, config.adapt) if use_d else None
  adapt = config.adapt
  tx_gt = make_optimizer(config)
  tx_d = make_optimizer(config) if use_d else None
  schedule = lr_schedule(config)
  regz_step = config.train.epoch_regZ * steps_per_epoch(config)
  fix_g = bool(config.train.fix_G)

  def head_coords(t_params, t_stats, feats):
    logits, updates = head.apply({"params": t_params, "batch_stats": t_stats}, feats, train=True,
                                 mutable=["batch_stats"])
    return models.soft_argmax(logits), updates["batch_stats"]

  if config.model.remat_head:
    head_coords = jax.checkpoint(head_coords)

  def train_step(state: SAAState, batch: Batch) -> tuple[SAAState, dict]:
    params, stats = state.params, state.batch_stats
    z_on = (state.step >= regz_step).astype(jnp.float32)
    g_frozen = z_on if fix_g else jnp.float32(0.0)
    d_active = (1.0 - g_frozen) if use_d else jnp.float32(0.0)
    is_syn, cells = batch["is_synthetic"], batch["joint_cells"]

    def g_forward(g_params):
      feats, updates = backbone.apply({"params": g_params, "batch_stats": stats["G"]}, batch["image"],
                                      train=True, mutable=["batch_stats"])
      return feats.astype(jnp.float32), updates["batch_stats"]

    feats, g_vjp, g_stats = jax.vjp(g_forward, params["G"], has_aux=True)
    metrics = {}
    new_params, new_stats = dict(params), dict(stats, G=g_stats)
    opt_state_d = state.opt_state_d

    if use_d:
      def d_objective(d_params):
        out, updates = disc.apply({"params": d_params, "batch_stats": stats["D"]}, jax.lax.stop_gradient(feats),
                                  train=True, mutable=["batch_stats"])
        loss = losses.d_loss(out, is_syn, cells, mode=adapt.mode_D, gan_mode=adapt.gan_mode)
        return loss, (updates["batch_stats"], out)

      (loss_d, (d_stats, d_out)), d_grads = jax.value_and_grad(d_objective, has_aux=True)(params["D"])
      d_updates, opt_state_d = tx_d.update(d_grads, state.opt_state_d, params["D"])
      d_updates = jax.tree.map(lambda u: u * d_active, d_updates)
      new_params["D"] = optax.apply_updates(params["D"], d_updates)
      new_stats["D"] = d_stats
      acc_real, acc_syn = losses.d_accuracy(d_out, is_syn, cells, mode=adapt.mode_D, gan_mode=adapt.gan_mode)
      metrics.update(loss_d=loss_d, d_acc_real=acc_real, d_acc_syn=acc_syn, grad_norm_d=optax.global_norm(d_grads))

    def gt_objective(feats, t_params):
      coords, t_stats = head_coords(t_params, stats["T"], feats)
      loss_coord = losses.coord_loss(coords, batch["joints_hm"], batch["vis"], batch["have_depth"], z_on)
      aux = {"t_stats": t_stats, "loss_coord": loss_coord}
      if not use_d:
        return loss_coord, aux
      out, updates = disc.apply({"params": new_params["D"], "batch_stats": new_stats["D"]}, feats, train=True,
                                mutable=["batch_stats"])
      loss_adv = losses.adv_loss(out, is_syn, cells, mode=adapt.mode_D, gan_mode=adapt.gan_mode,
                                 pivot=adapt.pivot)
      aux.update(loss_adv=loss_adv, d_stats=updates["batch_stats"])
      return loss_coord + adapt.lmd_D * d_active * loss_adv, aux

    (loss, aux), (feat_grad, t_grads) = jax.value_and_grad(gt_objective, argnums=(0, 1), has_aux=True)(
        feats, params["T"])
    (g_grads,) = g_vjp(feat_grad)
    grads = {"G": g_grads, "T": t_grads}
    updates, opt_state_gt = tx_gt.update(grads, state.opt_state_gt, {"G": params["G"], "T": params["T"]})
    updates["G"] = jax.tree.map(lambda u: u * (1.0 - g_frozen), updates["G"])
    gt_params = optax.apply_updates({"G": params["G"], "T": params["T"]}, updates)
    new_params.update(gt_params)
    new_stats["T"] = aux["t_stats"]
    if use_d:
      new_stats["D"] = aux["d_stats"]
      metrics["loss_adv"] = aux["loss_adv"]
    metrics.update(loss=loss, loss_coord=aux["loss_coord"], grad_norm_gt=optax.global_norm(grads),
                   lr=schedule(state.step), z_on=z_on)
    new_state = state.replace(step=state.step + 1, params=new_params, batch_stats=new_stats,
                              opt_state_gt=opt_state_gt, opt_state_d=opt_state_d)
    return new_state, metrics

  return train_step
