"""One SAA iteration (SPEC §1.3, Appendix B): D update on stop-gradient features, then G+T through the new D.

`adapt.d_steps` > 1 (not the paper's) repeats the D update on the same stopped features before G answers.
`adapt.adv_sgd_lr` > 0 (not the paper's) takes G's adversarial gradient out of Adam: Adam steps on L_coord's gradient
alone and G also moves by −adv_sgd_lr·(lr_t / lr_0)·λ_D·∂L_adv/∂G, plain SGD (issue #18: does Adam's per-parameter
normalisation, which gives a tiny adversarial gradient full-size steps, let G answer D cheaply?). It costs a second
pull-back through G.

G runs forward once, in train mode, so its BatchNorm statistics move once per iteration; the vjp of that
forward is kept and pulled back with ∂L/∂F once the D update is done (option (a) of SPEC §1.3: no second
backbone forward). The per-epoch switches — z supervision from `epoch_regZ` and `fix_G` (G frozen and D off
from `epoch_regZ`) — are computed from `state.step` as data, so one compiled program serves every epoch.
A frozen G still runs in train mode (its BatchNorm statistics keep following the batches, as a PyTorch module
in train mode without an optimizer step); only its parameter updates are zeroed.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from ahup_jax import losses, models
from ahup_jax.train.state import SAAState, d_enabled, iters_per_epoch, lr_schedule, make_optimizers

Batch = dict[str, jax.Array]


def discriminator_update(disc, tx_d: optax.GradientTransformation, adapt: ml_collections.ConfigDict, params,
                         batch_stats, opt_state, feats: jax.Array, is_synthetic: jax.Array, joint_cells: jax.Array,
                         scale=1.0):
  """SPEC §1.3 step 2: L_D on stop_gradient(F) (feats [B, h, w, C]) with targets d over all samples, D in train
  mode, one `tx_d` step on D; its updates × `scale` (0 freezes D: fix_G). Also the D probes' update (d_probe.py).

  Returns (D params, D batch_stats, D optimizer state, metrics: loss_d, d_acc_real, d_acc_syn (before the update),
  grad_norm_d).
  """
  def objective(d_params):
    out, updates = disc.apply({"params": d_params, "batch_stats": batch_stats}, jax.lax.stop_gradient(feats),
                              train=True, mutable=["batch_stats"])
    loss = losses.d_loss(out, is_synthetic, joint_cells, mode=adapt.mode_D, gan_mode=adapt.gan_mode)
    return loss, (updates.get("batch_stats", {}), out)  # a 1-layer D has no BatchNorm

  (loss_d, (new_stats, out)), grads = jax.value_and_grad(objective, has_aux=True)(params)
  updates, opt_state = tx_d.update(grads, opt_state, params)
  updates = jax.tree.map(lambda u: u * scale, updates)
  acc_real, acc_syn = losses.d_accuracy(out, is_synthetic, joint_cells, mode=adapt.mode_D, gan_mode=adapt.gan_mode)
  metrics = {"loss_d": loss_d, "d_acc_real": acc_real, "d_acc_syn": acc_syn, "grad_norm_d": optax.global_norm(grads)}
  return optax.apply_updates(params, updates), new_stats, opt_state, metrics


def make_train_step(config: ml_collections.ConfigDict) -> Callable[[SAAState, Batch], tuple[SAAState, dict]]:
  """train_step(state, batch) → (state, metrics), pure and not jitted (see sharding.jit_train_step).

  batch (docs/ARCHITECTURE.md): image [B, S, S, 3] float32, joints_hm [B, J, 3] hm units, vis [B, J],
  joint_cells [B, J, 2] int32, have_depth [B], is_synthetic [B].
  metrics (scalars): loss (= loss_coord + λ_D·loss_adv), loss_coord, grad_norm_gt, lr (this step's), z_on;
  with D also loss_adv, loss_d, d_acc_real, d_acc_syn (before the D update) and grad_norm_d; with
  `adapt.adv_sgd_lr` > 0 also grad_norm_adv (of λ_D·∂L_adv/∂G; grad_norm_gt is then L_coord's alone).
  λ_D = 0 or a single training set builds a step without D (plain supervised training).
  """
  adapt = config.adapt
  use_d = d_enabled(config)
  if use_d:
    losses.check_options(adapt.mode_D, adapt.gan_mode, adapt.pivot)
  backbone, head = models.build_pose_net(config.model)
  disc = models.build_discriminator(config.model, adapt) if use_d else None
  tx_gt, tx_d = make_optimizers(config)
  schedule = lr_schedule(config.train)
  regz_step = int(config.train.epoch_regZ) * iters_per_epoch(config.train)
  fix_g = bool(config.train.fix_G)
  lmd_d = float(adapt.lmd_D)
  d_steps = int(adapt.get("d_steps", 1))
  if d_steps < 1:
    raise ValueError(f"config.adapt.d_steps = {d_steps}: expected at least 1 D update per iteration")
  adv_sgd_lr = float(adapt.get("adv_sgd_lr", 0.0))
  if adv_sgd_lr < 0:
    raise ValueError(f"config.adapt.adv_sgd_lr = {adv_sgd_lr}: expected 0 (adversarial gradient in Adam) or a "
                     "positive SGD learning rate")
  adv_by_sgd = use_d and adv_sgd_lr > 0

  def predict_coords(t_params, t_stats, feats):
    """T + soft-argmax in train mode: feats [B, h, w, C] → ([B, J, 3] hm units, T's new batch_stats)."""
    logits, updates = head.apply({"params": t_params, "batch_stats": t_stats}, feats, train=True,
                                 mutable=["batch_stats"])
    return models.soft_argmax(logits), updates["batch_stats"]

  if config.model.remat_head:
    predict_coords = jax.checkpoint(predict_coords)

  def apply_disc(d_params, d_stats, feats):
    """D in train mode (SPEC §1.3): its outputs and new batch_stats."""
    out, updates = disc.apply({"params": d_params, "batch_stats": d_stats}, feats, train=True,
                              mutable=["batch_stats"])
    return out, updates.get("batch_stats", {})  # a 1-layer D has no BatchNorm

  def forward_backbone(state: SAAState, images: jax.Array):
    """F = G(x) once, train mode: (features [B, h, w, C] float32, vjp w.r.t. G's params, G's new batch_stats)."""
    def g_forward(g_params):
      feats, updates = backbone.apply({"params": g_params, "batch_stats": state.batch_stats["G"]}, images,
                                      train=True, mutable=["batch_stats"])
      return feats.astype(jnp.float32), updates["batch_stats"]

    return jax.vjp(g_forward, state.params["G"], has_aux=True)

  def update_generator_and_task(state: SAAState, feats, g_vjp, batch: Batch, d_params, d_stats, z_on, d_on,
                                g_frozen):
    """SPEC §1.3 step 3: L = L_coord + λ_D·L_adv with the updated (frozen) D; one optimizer step on G+T.

    ∂L/∂F and ∂L/∂T come from autodiff of the head (+ D) part; ∂L/∂G = g_vjp(∂L/∂F).
    Returns ({"G", "T"} params, T batch_stats, D batch_stats, G+T optimizer state, metrics).
    """
    def coord_objective(feats, t_params):
      coords, t_stats = predict_coords(t_params, state.batch_stats["T"], feats)
      loss_coord = losses.coord_loss(coords, batch["joints_hm"], batch["vis"], batch["have_depth"], z_on)
      return loss_coord, t_stats

    def adv_objective(feats):
      out, d_stats_new = apply_disc(d_params, d_stats, feats)
      return losses.adv_loss(out, batch["is_synthetic"], batch["joint_cells"], mode=adapt.mode_D,
                             gan_mode=adapt.gan_mode, pivot=adapt.pivot), d_stats_new

    def objective(feats, t_params):
      loss_coord, t_stats = coord_objective(feats, t_params)
      aux = {"t_stats": t_stats, "d_stats": d_stats, "loss_coord": loss_coord}
      if not use_d or adv_by_sgd:
        return loss_coord, aux
      aux["loss_adv"], aux["d_stats"] = adv_objective(feats)
      return loss_coord + lmd_d * d_on * aux["loss_adv"], aux

    (loss, aux), (feat_grads, t_grads) = jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)(
        feats, state.params["T"])
    (g_grads,) = g_vjp(feat_grads)
    gt_params = {"G": state.params["G"], "T": state.params["T"]}
    grads = {"G": g_grads, "T": t_grads}
    updates, opt_state_gt = tx_gt.update(grads, state.opt_state_gt, gt_params)
    metrics = {"grad_norm_gt": optax.global_norm(grads)}
    if adv_by_sgd:  # G's adversarial gradient by plain SGD beside Adam's step on L_coord
      (aux["loss_adv"], aux["d_stats"]), adv_feat_grads = jax.value_and_grad(adv_objective, has_aux=True)(feats)
      loss = loss + lmd_d * d_on * aux["loss_adv"]
      (adv_grads,) = g_vjp(lmd_d * d_on * adv_feat_grads)
      step_size = adv_sgd_lr * schedule(state.step) / float(config.train.lr)
      updates["G"] = jax.tree.map(lambda u, g: u - step_size * g, updates["G"], adv_grads)
      metrics["grad_norm_adv"] = optax.global_norm(adv_grads)
    updates["G"] = jax.tree.map(lambda u: u * (1.0 - g_frozen), updates["G"])
    metrics.update(loss=loss, loss_coord=aux["loss_coord"])
    if use_d:
      metrics["loss_adv"] = aux["loss_adv"]
    return optax.apply_updates(gt_params, updates), aux["t_stats"], aux["d_stats"], opt_state_gt, metrics

  def train_step(state: SAAState, batch: Batch) -> tuple[SAAState, dict]:
    """One SAA iteration; see the module docstring."""
    z_on = (state.step >= regz_step).astype(jnp.float32)
    g_frozen = z_on if fix_g else jnp.zeros((), jnp.float32)
    d_on = 1.0 - g_frozen
    feats, g_vjp, g_stats = forward_backbone(state, batch["image"])
    params, stats = dict(state.params), dict(state.batch_stats, G=g_stats)
    metrics = {"lr": schedule(state.step), "z_on": z_on}
    opt_state_d = state.opt_state_d
    if use_d:
      params["D"], stats["D"] = state.params["D"], state.batch_stats["D"]
      for i in range(d_steps):  # metrics of the first update: D's accuracy before this iteration's updates
        params["D"], stats["D"], opt_state_d, d_metrics = discriminator_update(
            disc, tx_d, adapt, params["D"], stats["D"], opt_state_d, feats, batch["is_synthetic"],
            batch["joint_cells"], d_on)
        if i == 0:
          metrics.update(d_metrics)
    gt_params, stats["T"], d_stats, opt_state_gt, gt_metrics = update_generator_and_task(
        state, feats, g_vjp, batch, params.get("D"), stats.get("D"), z_on, d_on, g_frozen)
    params.update(gt_params)
    if use_d:
      stats["D"] = d_stats
    metrics.update(gt_metrics)
    return state.replace(step=state.step + 1, params=params, batch_stats=stats, opt_state_gt=opt_state_gt,
                         opt_state_d=opt_state_d), metrics

  return train_step
