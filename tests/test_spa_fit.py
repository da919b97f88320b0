"""The SPA fit (SPEC §7.4): the scan-compiled epoch against a plain per-step loop, the pose discriminator, the
pose-scale fold, and a controlled adaptation problem with a known answer."""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ahup_jax import models, skeleton
from ahup_jax.spa import apply, descriptor, fit
from configs import saa
from data_pipelines.synth import bodies, datasets, domains

J = skeleton.JOINT_INDEX


def realistic_poses(n: int, seed: int, px_per_m: float = 29.0) -> np.ndarray:
  """[n, 17, 3] poses in isotropic hm-like units: the embedded dataset's 15 lab actions with yaw over the full circle
  (standing, walking, sitting, …), one body shape (only stature varies, which the descriptor ignores) and the scale of
  a 64-px heatmap (a 1.75 m person ≈ 50 px, shoulders ≈ 9 px apart), jittered about the crop centre."""
  rng = np.random.default_rng(seed)
  lab = domains.LAB
  pose = datasets.sample_pose(lab.pose, n, rng)
  dims = bodies.sample_dimensions(dataclasses.replace(lab.proportions, dim_cv=0.0), n, rng)
  points, frames = bodies.forward_kinematics(pose, dims)
  joints = bodies.labels(points, frames, dims, lab.skeleton, bodies.H36M_JOINTS)  # metres, y up, reference order
  hm = np.stack([joints[..., 0], 0.95 - joints[..., 1], joints[..., 2]], -1) * px_per_m
  return (hm + 32 + rng.uniform(-1, 1, (n, 1, 3))).astype(np.float32)


def scale_shins(poses: np.ndarray, factor: float) -> np.ndarray:
  """Knee → ankle scaled by `factor` (the ankle moves along the shin; no other joint moves)."""
  out = poses.copy()
  for knee, ankle in (("L_Knee", "L_Ankle"), ("R_Knee", "R_Ankle")):
    out[:, J[ankle]] = out[:, J[knee]] + factor * (out[:, J[ankle]] - out[:, J[knee]])
  return out


def spa_config(**overrides):
  cfg = saa.get_config().spa
  cfg.update(overrides)
  return cfg


def gap(poses, target) -> float:
  return float(np.abs(descriptor.mean_descriptor(poses) - target).mean())


def mpjpe(a, b) -> float:
  return float(np.linalg.norm(a - b, axis=-1).mean())


# ----------------------------------------------------------------------------------------------- vs a per-step loop
def _reference_fit(source: np.ndarray, target: np.ndarray, cfg, seed: int, epochs: int) -> dict:
  """The fit as a plain Python loop over single jitted steps: the same keys as `fit.fit_spa` (init, shuffling,
  dropout), the last partial batch padded and masked, hand-written Adam, global-norm clipping and lr·γ^epoch."""
  net = models.SPANet(residual=cfg.mode == 2)
  n, batch = len(source), cfg.batch_size
  steps = math.ceil(n / batch)
  init_key, loop_key = jax.random.split(jax.random.key(seed))
  variables = net.init(init_key, jnp.asarray(source[:2]), train=False)
  params, stats = variables["params"], variables["batch_stats"]
  mu = jax.tree.map(jnp.zeros_like, params)
  nu = jax.tree.map(jnp.zeros_like, params)

  @jax.jit
  def grads_of(params, stats, x, mask, drop_key):
    def forward(p):
      out, updates = net.apply({"params": p, "batch_stats": stats}, x, train=True, mask=mask,
                               rngs={"dropout": drop_key}, mutable=["batch_stats"])
      return out, updates["batch_stats"]

    def loss_fn(out):
      real = jnp.maximum(mask.sum(), 1.0)
      pose = jnp.sum(jnp.abs(out - x) * mask[:, None, None]) / (real * 51)
      skel = jnp.sum((descriptor.skeletal_descriptor(out) - target) ** 2 * mask[:, None]) / (real * 16)
      return cfg.lmd_G * pose + cfg.lmd_skel * skel

    out, pullback, new_stats = jax.vjp(forward, params, has_aux=True)
    return pullback(jax.grad(loss_fn)(out))[0], new_stats

  t = 0
  for epoch in range(epochs):
    lr = cfg.lr * cfg.lr_gamma**epoch
    perm_key, step_key = jax.random.split(jax.random.fold_in(loop_key, epoch))
    order = np.asarray(jax.random.permutation(perm_key, n))
    keys = jax.random.split(step_key, steps)
    for i in range(steps):
      drop_key, _ = jax.random.split(keys[i])
      rows = order[i * batch:(i + 1) * batch]
      mask = np.zeros(batch, np.float32)
      mask[:len(rows)] = 1
      x = source[np.concatenate([rows, np.zeros(batch - len(rows), rows.dtype)])]  # pad with pose 0, masked
      grads, stats = grads_of(params, stats, jnp.asarray(x), jnp.asarray(mask), drop_key)
      norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
      if norm > cfg.clip_grad_norm:
        grads = jax.tree.map(lambda g: g / norm * cfg.clip_grad_norm, grads)
      t += 1
      mu = jax.tree.map(lambda m, g: 0.1 * g + 0.9 * m, mu, grads)
      nu = jax.tree.map(lambda v, g: 0.001 * g**2 + 0.999 * v, nu, grads)
      params = jax.tree.map(lambda p, m, v: p - lr * ((m / (1 - 0.9**t)) / (jnp.sqrt(v / (1 - 0.999**t)) + 1e-8)),
                            params, mu, nu)
  return {"params": params, "batch_stats": stats}


def test_scan_epoch_equals_a_per_step_loop():
  """2 epochs of 150 poses in batches of 64 (the last one 22 real rows), clipping active (grad norms ≫ 1), lr halved
  after epoch 0: the same parameters to 1e-5 (BatchNorm statistics to 1e-4).

  Float32 round-off differs between the two programs, and Adam's first steps (±lr whatever the gradient's size)
  amplify it where a gradient is near 0, so: the biases of the linears that feed a BatchNorm are not compared (their
  exact gradient is 0, BN subtracts the batch mean; they cancel in the outputs, which are compared instead), and the
  poses are centred on the crop (raw ≈ 32 ± 10 hm px make the first BatchNorm's mean subtraction lose two digits,
  which leaves a few entries ≈ 2e-5 apart).
  """
  source = realistic_poses(150, 0) - 32
  target = descriptor.mean_descriptor(scale_shins(realistic_poses(100, 1), 0.8))
  cfg = spa_config(epochs=2, batch_size=64, lr=1e-3, lr_gamma=0.5)
  ours, _ = fit.fit_spa(source, target, cfg, seed=3, progress=False)
  reference = _reference_fit(source, target, cfg, seed=3, epochs=2)
  initial = models.SPANet().init(jax.random.split(jax.random.key(3))[0], jnp.asarray(source[:2]), train=False)

  def gradient_free(name: str) -> bool:  # Dense biases followed by a BatchNorm: all but the output layer "w2"
    return name.endswith("['bias']") and "['w2']" not in name and ("_w" in name or "['w1']" in name)

  compared = 0
  for (path, a), b, a0 in zip(jax.tree_util.tree_leaves_with_path(ours), jax.tree.leaves(reference),
                              jax.tree.leaves({"batch_stats": initial["batch_stats"], "params": initial["params"]})):
    name = jax.tree_util.keystr(path)
    if gradient_free(name):
      continue
    assert np.abs(np.asarray(a) - np.asarray(a0)).max() > 1e-3, name  # it moved: the comparison is not vacuous
    atol = 1e-4 if "batch_stats" in name else 1e-5  # running means include those biases
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=atol, rtol=1e-4, err_msg=name)
    compared += 1
  assert compared == 5 * 2 + 5 * 2 + 6 + 1  # 5 BNs × (mean, var) and (scale, bias), 6 kernels, the output bias
  poses = realistic_poses(32, 7) - 32
  # hm px: the excluded biases' round-off reaches the outputs (1.5e-4 px seen); lr_gamma 0.6 instead of 0.5 → 0.8 px
  np.testing.assert_allclose(apply.adapt_poses(ours, poses, cfg), apply.adapt_poses(reference, poses, cfg),
                             atol=5e-4, rtol=1e-5)


def test_clip_by_global_norm_equals_optax():
  """fit.clip_by_global_norm = optax.clip_by_global_norm: unchanged below the threshold, rescaled to it above."""
  grads = {"a": jnp.arange(6.0).reshape(2, 3), "b": jnp.array([-2.0, 0.5])}
  norm = float(optax.global_norm(grads))
  for max_norm in (norm * 2, norm / 3):
    ours, _ = fit.clip_by_global_norm(max_norm).update(grads, optax.EmptyState())
    expected, _ = optax.clip_by_global_norm(max_norm).update(grads, optax.EmptyState())
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), ours, expected)
    assert float(optax.global_norm(ours)) == pytest.approx(min(norm, max_norm), rel=1e-6)
  jax.tree.map(np.testing.assert_array_equal, fit.clip_by_global_norm(norm * 2).update(grads, None)[0], grads)


def test_masked_padding_equals_the_smaller_batch():
  """The padded, masked last batch gives the loss and gradients of the real smaller batch (official behaviour)."""
  cfg = spa_config()
  net = models.SPANet()
  source = realistic_poses(22, 0)
  target = descriptor.mean_descriptor(realistic_poses(64, 1))
  variables = net.init(jax.random.key(0), jnp.asarray(source[:2]), train=False)
  padded = np.concatenate([source, np.repeat(source[:1], 42, 0)])
  mask = (np.arange(64) < 22).astype(np.float32)

  def loss(params, x, mask):
    out, updates = net.apply({"params": params, "batch_stats": variables["batch_stats"]}, x, train=True, mask=mask,
                             rngs={"dropout": jax.random.key(1)}, mutable=["batch_stats"])
    return fit.spa_loss(out, x, mask, target, cfg)[0], updates["batch_stats"]

  (small, small_stats), small_grads = jax.value_and_grad(loss, has_aux=True)(variables["params"], source,
                                                                               np.ones(22, np.float32))
  (big, big_stats), big_grads = jax.value_and_grad(loss, has_aux=True)(variables["params"], padded, mask)
  np.testing.assert_allclose(small, big, rtol=1e-4)
  scale = max(float(np.abs(g).max()) for g in jax.tree.leaves(big_grads))  # pre-BN biases: round-off only
  for a, b in zip(jax.tree.leaves(small_grads), jax.tree.leaves(big_grads)):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5 * scale)
  for a, b in zip(jax.tree.leaves(small_stats), jax.tree.leaves(big_stats)):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


# ----------------------------------------------------------------------------------------------- pose discriminator
def test_pose_discriminator_trains_and_off_is_the_plain_path():
  source = scale_shins(realistic_poses(128, 0), 1.4)
  target_poses = realistic_poses(96, 1)
  target = descriptor.mean_descriptor(target_poses)
  cfg = spa_config(epochs=3, batch_size=32, lr=1e-3, lmd_D=0.5)

  trainer = fit.make_trainer(cfg, len(source))
  state = trainer.init(jax.random.key(0), jnp.asarray(source[:2]))
  d_before = jax.device_get(state["d"]["params"])
  assert set(d_before) == {"w1", "batch_norm1", "w2", "batch_norm2", "w3"}
  assert d_before["w1"]["kernel"].shape == (51, 100) and d_before["w3"]["kernel"].shape == (50, 1)
  d_losses = []
  for epoch in range(6):
    state, metrics = trainer.run_epoch(state, jax.random.key(epoch), jnp.asarray(source), jnp.asarray(target),
                                       jnp.asarray(target_poses))
    assert np.isfinite([float(v) for v in metrics.values()]).all()
    d_losses.append(float(metrics["d_loss"]))
  assert d_losses[-1] < d_losses[0] - 0.03, d_losses  # D learns to tell y_SPA (long shins) from target poses
  moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - b).max()), state["d"]["params"], d_before)
  assert min(jax.tree.leaves(moved)) > 0

  with_d, history = fit.fit_spa(source, target, cfg, target_poses=target_poses, seed=0, progress=False)
  assert {"d_loss", "adv_loss"} <= set(history[-1])
  cfg.lmd_D = 0.0
  plain, plain_history = fit.fit_spa(source, target, cfg, seed=0, progress=False)
  ignored, _ = fit.fit_spa(source, target, cfg, target_poses=target_poses, seed=0, progress=False)
  assert "d_loss" not in plain_history[-1]
  jax.tree.map(np.testing.assert_array_equal, ignored, plain)  # λ_D = 0: target poses change nothing
  assert jax.tree.structure(with_d) == jax.tree.structure(plain)  # D is not part of the exported head
  assert not np.allclose(with_d["params"]["w2"]["kernel"], plain["params"]["w2"]["kernel"])


def test_pose_discriminator_needs_target_poses():
  cfg = spa_config(epochs=1, lmd_D=0.1)
  with pytest.raises(ValueError, match="needs target poses"):
    fit.fit_spa(realistic_poses(8, 0), np.ones(16, np.float32), cfg, progress=False)


# ----------------------------------------------------------------------------------------------- pose scale
def test_pose_scale_fold_is_exact():
  """f trained on poses × k, folded into w1/w2, applied to the poses themselves = f(k·y)/k."""
  source = realistic_poses(64, 0) / 2.5  # e.g. a 24-px model's poses
  cfg = spa_config(epochs=1, batch_size=32, lr=1e-3, pose_scale=2.5)
  folded, _ = fit.fit_spa(source, descriptor.mean_descriptor(source), cfg, progress=False)
  trainer = fit.make_trainer(cfg, len(source))
  init_key, loop_key = jax.random.split(jax.random.key(0))
  state = trainer.init(init_key, jnp.asarray(source[:2] * 2.5))
  state, _ = trainer.run_epoch(state, jax.random.fold_in(loop_key, 0), jnp.asarray(source * 2.5),
                               jnp.asarray(descriptor.mean_descriptor(source)))
  unfolded = {"params": state["params"], "batch_stats": state["batch_stats"]}
  net = models.SPANet()
  poses = realistic_poses(16, 5) / 2.5
  want = np.asarray(net.apply(unfolded, jnp.asarray(poses * 2.5), train=False)) / 2.5
  np.testing.assert_allclose(apply.adapt_poses(folded, poses, cfg), want, rtol=1e-5, atol=1e-4)
  np.testing.assert_array_equal(fit.fold_pose_scale(unfolded, 1.0)["params"]["w1"]["kernel"],
                                unfolded["params"]["w1"]["kernel"])


# ----------------------------------------------------------------------------------------------- controlled problem
def test_fit_recovers_known_shin_scaling():
  """Source = the target's skeletons with both shins 1.4× too long (the known answer: move the ankles back).

  Why this problem: the descriptor is a ratio to the shoulder width, so a scaled limb next to the shoulders (upper
  arm, collar) can be "fixed" by moving the shoulders instead, and a forearm by swinging the elbow about the shoulder;
  and per-sample proportion differences would be pulled to the mean too (the loss compares every pose with the mean
  target descriptor). Shins end in a leaf joint, hang from a nearly straight knee, and one body shape keeps the true
  descriptor the same for every pose, so the L1-cheapest descriptor fix is the true one (its per-pose optimum halves
  the MPJPE). Test size: 512 poses × 150 epochs of batch 64 (1 200 steps, the paper has ≈ 22 000); f is fitted at
  pose_scale 3, where its initial output and dropout noise are small next to the poses, with λ_skel 300 (= λ 100 in
  the poses' own units, since the pose term scales with k); at pose_scale 1 the same budget leaves f off by pixels.
  """
  truth = realistic_poses(512, 0)
  source = scale_shins(truth, 1.4)
  target = descriptor.mean_descriptor(realistic_poses(512, 1))  # other poses and statures, same skeleton
  cfg = spa_config(epochs=150, batch_size=64, lr=1e-3, lr_gamma=0.985, lmd_skel=300.0, pose_scale=3.0)
  variables, history = fit.fit_spa(source, target, cfg, seed=0, progress=False)
  adapted = apply.adapt_poses(variables, source, cfg)

  assert gap(adapted, target) <= 0.2 * gap(source, target), (gap(source, target), gap(adapted, target))
  assert mpjpe(adapted, truth) < mpjpe(source, truth), (mpjpe(source, truth), mpjpe(adapted, truth))
  per_joint = np.linalg.norm(adapted - source, axis=-1).mean(0)  # hm px; the shins are ≈ 12 px long
  ankles = [J["L_Ankle"], J["R_Ankle"]]
  others = np.delete(per_joint, ankles)
  assert others.max() < 1.0 and per_joint[ankles].min() > 2 * others.max(), per_joint.round(2)
  assert history[-1]["skel_loss"] < 0.05 * history[0]["skel_loss"]
