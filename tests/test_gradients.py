"""The compiled SAA step's gradients of G, T and D against a float64 evaluation of the same losses (every D mode).

The step's gradients are read exactly from Adam's first moment after one step from zero ((1 − b1)·g = 0.5·g,
a power of two). The float64 reference differentiates L_coord + λ_D·L_adv (z on) with the D that the step itself
produced, and L_D at the initial D, written directly with the modules and losses.

The test point is chosen away from kinks. ReLU, LeakyReLU, max-pool and the L1 loss are not differentiable at
their kinks, and a float32 forward that lands a few ulps on the other side of one than float64 has a different,
equally valid gradient; through train-mode BatchNorm one flipped unit changes its whole channel's gradient
(docs/NUMERICS.md: one unit of 393 216 moved a kernel gradient of T by 8.8 % of its largest entry). So every
BatchNorm offset is ±3 at a small scale (BN_SCALES; units are clearly on or off), near-ties of the stem's max-pool
are moved apart, and those margins are checked in float64 before any gradient is compared.

Tolerance: every tensor within 1e-4 of the largest gradient entry of its network (G, T or D), and every tensor that
is not negligible (≥ 1e-3 of that entry) within 1e-2 of its own largest entry. Keeping units ≥ 0.01 from their kinks
makes activations vary by only ~10 % of their mean over the batch, so many gradients here are sums that cancel:
their float32 rounding is set by the size of their terms (the network's gradient scale), not by the small result
(measured worst: 4e-5 of the network's scale, 6e-4 of a tensor's own). A lowering that drops a term, swaps an
operand or computes in bfloat16 is off by ≥ 1e-3 of the network's scale.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from ahup_jax import losses, models, sharding
from ahup_jax.train import saa_step
from ahup_jax.train import state as state_lib
from configs import saa

REGZ_STEP = 100  # epoch_regZ 1 × iters_per_epoch 100: the step runs with z supervision on
LMD_D = 1.0  # large enough that the adversarial path is a visible part of G's gradient
# BatchNorm offset and scales: G and T normalise ≥ 2·8·8 values per channel, whose tails reach ~10 σ (scale 0.3, 0.2
# before a residual add); D's BatchNorms see B·h·w and B values, so |x̂| ≤ √(n − 1) bounds them (scale 0.7, 1.5).
BN_OFFSET = 3.0
BN_SCALES = {"G/T": 0.3, "residual": 0.2, "D": 0.7, "D/fc_bn": 1.5}
KINK_MARGIN = 0.01  # float64 distance of every ReLU/LeakyReLU input from 0 (float32 error there is ~1e-5)
POOL_GAP = 1e-4  # float64 gap between the largest and second largest input of every live max-pool window
L1_MARGIN = 1e-3  # hm units between each supervised coordinate and its target
RTOL = 1e-4  # of the network's largest gradient entry
TENSOR_RTOL, NEGLIGIBLE = 1e-2, 1e-3  # of each tensor's own largest entry, unless it is < 1e-3 of the network's

CASES = {  # name: (backbone, input size, batch, mode_D)
    "res18-64-SA": ("res18", 64, 4, "SA"),
    "res18-64-C": ("res18", 64, 4, "C"),
    "res18-64-C1": ("res18", 64, 4, "C1"),
    "res18-64-SA1": ("res18", 64, 4, "SA1"),
    "res18-96-SA": ("res18", 96, 4, "SA"),
    "res50-256-SA": ("res50", 256, 2, "SA"),
}


def case_config(backbone: str, size: int, mode_d: str):
  config = saa.get_config("synth_tiny")
  config.model.backbone, config.model.input_size, config.model.depth_bins = backbone, size, size // 4
  config.train.iters_per_epoch, config.train.epoch_regZ, config.train.lr_dec_epochs = REGZ_STEP, 1, (3,)
  config.adapt.update(lmd_D=LMD_D, mode_D=mode_d)
  return config


def residual_feeding(path: str, backbone: str) -> bool:
  """BatchNorms whose output is added to a (non-negative) shortcut before the ReLU: offset +3, not ±3."""
  last = "bn2" if models.resnet.STAGES[backbone][0] == "basic" else "bn3"
  return path.endswith(f"/{last}") or path.endswith("/downsample_1")


def kink_free_params(params: dict, backbone: str, seed: int = 0) -> dict:
  """The step's params with every BatchNorm at offset ±3 (+3 before a residual add) and a scale of BN_SCALES, and
  D's first conv (no BatchNorm before its LeakyReLU) at offset ±3: units are either clearly on or clearly off."""
  rng = np.random.default_rng(seed)
  signs = lambda shape: rng.choice([-1.0, 1.0], shape).astype(np.float32)

  def visit(tree: dict, path: str) -> dict:
    if set(tree) == {"scale", "bias"}:  # a BatchNorm
      offset = np.full(tree["bias"].shape, BN_OFFSET, np.float32)
      residual = residual_feeding(path, backbone)
      scale = BN_SCALES.get(path, BN_SCALES["D"]) if path.startswith("D/") else BN_SCALES[
          "residual" if residual else "G/T"]
      return {"scale": np.full(tree["scale"].shape, scale, np.float32),
              "bias": offset if residual else offset * signs(offset.shape)}
    if path == "D/conv_0":
      return {**tree, "bias": BN_OFFSET * signs(tree["bias"].shape)}
    return {k: visit(v, f"{path}/{k}" if path else k) if isinstance(v, dict) else np.asarray(v)
            for k, v in tree.items()}

  return visit(params, "")


def make_batch(batch_size: int, size: int, seed: int = 0) -> dict:
  """Half synthetic samples with depth, half real 2D ones; a few invisible joints; random images."""
  rng = np.random.default_rng(seed)
  hm = size // 4
  joints = rng.uniform(1, hm - 1, (batch_size, 17, 3)).astype(np.float32)
  is_syn = (np.arange(batch_size) < batch_size // 2).astype(np.float32)
  return {
      "image": rng.normal(size=(batch_size, size, size, 3)).astype(np.float32),
      "joints_hm": joints,
      "vis": (rng.uniform(size=(batch_size, 17)) > 0.15).astype(np.float32),
      "joint_cells": np.asarray(losses.joint_cells(jnp.asarray(joints), grid=size // 32)),
      "have_depth": is_syn,
      "is_synthetic": is_syn,
  }


def stem_pool_inputs(image: np.ndarray, g_params: dict) -> np.ndarray:
  """relu(bn1(conv1(image))) of G in float64 with train-mode statistics: the max-pool's input [B, H/2, W/2, 64]."""
  with jax.enable_x64(True):
    x = jax.lax.conv_general_dilated(jnp.asarray(image, jnp.float64), jnp.asarray(g_params["conv1"]["kernel"],
                                     jnp.float64), (2, 2), ((3, 3), (3, 3)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    bn = g_params["bn1"]
    y = (x - mean) / jnp.sqrt(var + 1e-5) * np.asarray(bn["scale"], np.float64) + np.asarray(bn["bias"], np.float64)
    return np.asarray(jnp.maximum(y, 0.0))


def pool_gaps(stem: np.ndarray) -> np.ndarray:
  """Largest minus second largest input of each 3x3/2 max-pool window (padding 1); +inf where the window is all
  zeros (dead units: any routing of the gradient gives zero). stem [B, H, W, C] → [B, H/2, W/2, C]."""
  b, h, w, c = stem.shape
  padded = np.pad(stem, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
  windows = np.stack([padded[:, i:i + h:2, j:j + w:2] for i in range(3) for j in range(3)], axis=-1)
  top2 = -np.sort(-windows, axis=-1)[..., :2]
  gap = top2[..., 0] - top2[..., 1]
  return np.where(top2[..., 0] > 0, gap, np.inf)


def separate_pool_ties(image: np.ndarray, g_params: dict, seed: int = 0) -> np.ndarray:
  """Redraws the input pixels under each stem max-pool window whose two largest inputs are within POOL_GAP."""
  rng = np.random.default_rng(seed)
  image = image.copy()
  for _ in range(20):
    close = np.argwhere(pool_gaps(stem_pool_inputs(image, g_params)) < POOL_GAP)
    if not len(close):
      return image
    for b, i, j, _ in close:  # pool output (i, j) ← conv1 rows 2i−1..2i+1 ← input rows 4i−5..4i+5
      rows, cols = slice(max(4 * i - 5, 0), 4 * i + 6), slice(max(4 * j - 5, 0), 4 * j + 6)
      image[b, rows, cols] = rng.normal(size=image[b, rows, cols].shape)
  raise AssertionError("could not move the stem's max-pool inputs apart; change the batch seed")


def adam_mu(opt_state):
  return opt_state[0].mu  # optax.adam(schedule) = chain(scale_by_adam, scale_by_learning_rate)


def compiled_step_gradients(config, state, batch):
  """One step of the real compiled train step (sharding.jit_train_step) → (G/T grads, D grads, updated D).

  Compiled at "highest" matmul precision: a no-op on CPU, and on GPUs it turns off TF32, which XLA uses for float32
  convolutions and matmuls by default there and which is 2^-11 precise (docs/NUMERICS.md §5)."""
  mesh = sharding.make_mesh(config.mesh)
  step = sharding.jit_train_step(saa_step.make_train_step(config), mesh, state)
  with jax.default_matmul_precision("highest"):
    new_state, _ = step(state, sharding.to_global(batch, mesh))
  double = functools.partial(jax.tree.map, lambda m: np.asarray(2.0 * m))  # exact: 0.5·g → g
  return double(adam_mu(new_state.opt_state_gt)), double(adam_mu(new_state.opt_state_d)), new_state.params["D"]


def float64_reference(config, params, batch_stats, batch, d_updated, lmd_d=LMD_D):
  """Float64 gradients of L_coord + λ·L_adv w.r.t. {G, T} (D = the step's updated D) and of L_D w.r.t. D, and the
  kink margins of that forward: {"relu", "residual", "pool", "l1"} (smallest distances, float64)."""
  adapt = config.adapt
  f64 = functools.partial(jax.tree.map, lambda a: jnp.asarray(a, jnp.float64))
  backbone = models.ResNet(config.model.backbone, dtype=jnp.float64)
  head = models.VolumetricHead(config.model.num_joints, config.model.depth_bins, dtype=jnp.float64)
  disc = models.make_discriminator(adapt.mode_D, num_joints=17, n_layers=adapt.n_layers_D, kernel=adapt.kn_D,
                                   ndf=adapt.ndf, dtype=jnp.float64)
  params, stats, batch, d_updated = f64(params), f64(batch_stats), f64(batch), f64(d_updated)
  batch["joint_cells"] = jnp.asarray(batch["joint_cells"], jnp.int32)
  capture = lambda module, method: method == "__call__" and (isinstance(module, nn.BatchNorm) or module.name == "conv_0")

  def apply(module, p, s, x, intermediates=False):
    variables = {"params": p, "batch_stats": s}
    if not intermediates:
      return module.apply(variables, x, train=True, mutable=["batch_stats"])[0]
    out, extra = module.apply(variables, x, train=True, mutable=["batch_stats", "intermediates"],
                              capture_intermediates=capture)
    return out, extra["intermediates"]

  def gt_objective(gt, d_params, batch, intermediates=False):
    feats = apply(backbone, gt["G"], stats["G"], batch["image"], intermediates)
    logits = apply(head, gt["T"], stats["T"], feats[0] if intermediates else feats, intermediates)
    coords = models.soft_argmax(logits[0] if intermediates else logits)
    loss = losses.coord_loss(coords, batch["joints_hm"], batch["vis"], batch["have_depth"], 1.0)
    d_out = apply(disc, d_params, stats["D"], feats[0] if intermediates else feats, intermediates)
    loss = loss + lmd_d * losses.adv_loss(d_out[0] if intermediates else d_out, batch["is_synthetic"],
                                          batch["joint_cells"], mode=adapt.mode_D, gan_mode=adapt.gan_mode,
                                          pivot=adapt.pivot)
    if intermediates:
      return coords, {"G": feats[1], "T": logits[1], "D": d_out[1]}
    return loss

  def d_objective(d_params, batch):
    feats = apply(backbone, params["G"], stats["G"], batch["image"])
    out = apply(disc, d_params, stats["D"], feats)
    return losses.d_loss(out, batch["is_synthetic"], batch["joint_cells"], mode=adapt.mode_D,
                         gan_mode=adapt.gan_mode)

  gt = {"G": params["G"], "T": params["T"]}
  gt_grads = jax.jit(jax.grad(gt_objective))(gt, d_updated, batch)  # arguments, not constants: no constant folding
  d_grads = jax.jit(jax.grad(d_objective))(params["D"], batch)
  coords, inter = jax.jit(functools.partial(gt_objective, intermediates=True))(gt, d_updated, batch)
  return jax.tree.map(np.asarray, gt_grads), jax.tree.map(np.asarray, d_grads), kink_margins(
      config, inter, np.asarray(coords), batch)


def kink_margins(config, intermediates, coords, batch) -> dict:
  """Smallest float64 distances from the kinks of this forward (see the module docstring)."""
  relu, residual = np.inf, np.inf
  for path, value in jax.tree_util.tree_flatten_with_path(intermediates)[0]:
    module = "/".join(str(p.key) for p in path[:-2])
    value = np.asarray(value)
    if module.startswith("G") and residual_feeding(module, config.model.backbone):
      residual = min(residual, float(value.min()))  # + a shortcut ≥ 0, then ReLU
    else:
      relu = min(relu, float(np.abs(value).min()))
  stem = np.maximum(np.asarray(intermediates["G"]["bn1"]["__call__"][0]), 0.0)
  pool = float(pool_gaps(stem).min())
  supervised = np.stack([batch["vis"]] * 2 + [batch["vis"] * batch["have_depth"][:, None]], -1) > 0
  l1 = float(np.abs(coords - np.asarray(batch["joints_hm"]))[supervised].min())
  return {"relu": relu, "residual": residual, "pool": pool, "l1": l1}


def assert_close_per_tensor(got, want, what):
  """Every tensor within RTOL of the largest float64 entry of its network (G, T or D), and every tensor whose
  gradient is not negligible (≥ NEGLIGIBLE of that entry) within TENSOR_RTOL of its own largest entry."""
  for group in want:
    group_scale = max(float(np.abs(leaf).max()) for leaf in jax.tree.leaves(want[group]))
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(got[group])[0], jax.tree.leaves(want[group])):
      name, scale = f"{what}{group}{jax.tree_util.keystr(path)}", float(np.abs(b).max())
      error = float(np.abs(np.asarray(a, np.float64) - b).max())
      assert error <= RTOL * group_scale, f"{name}: max error {error:.3g} > {RTOL} × {group_scale:.3g} (network)"
      if scale >= NEGLIGIBLE * group_scale:
        assert error <= TENSOR_RTOL * scale, f"{name}: max error {error:.3g} > {TENSOR_RTOL} × {scale:.3g}"


SLOW_CASES = ("res18-64-C", "res18-64-SA1", "res18-96-SA", "res50-256-SA")  # `-m slow`: SA and C1 cover both D heads


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow if c in SLOW_CASES else ()) for c in CASES])
def test_compiled_step_gradients_equal_float64(case):
  backbone, size, batch_size, mode_d = CASES[case]
  config = case_config(backbone, size, mode_d)
  state = state_lib.create_train_state(config, jax.random.key(0))
  params = kink_free_params(jax.tree.map(np.asarray, state.params), backbone)
  batch = make_batch(batch_size, size)
  batch["image"] = separate_pool_ties(batch["image"], params["G"])
  state = state.replace(step=jnp.array(REGZ_STEP, jnp.int32), params=jax.tree.map(jnp.asarray, params))
  stats = jax.tree.map(np.asarray, state.batch_stats)

  gt_grads, d_grads, d_updated = compiled_step_gradients(config, state, batch)
  d_updated = jax.tree.map(np.asarray, d_updated)
  with jax.enable_x64(True):
    want_gt, want_d, margins = float64_reference(config, params, stats, batch, d_updated)

  assert margins["relu"] > KINK_MARGIN and margins["residual"] > KINK_MARGIN, margins
  assert margins["pool"] >= POOL_GAP and margins["l1"] >= L1_MARGIN, margins
  assert_close_per_tensor(gt_grads, want_gt, "gradient ")
  assert_close_per_tensor({"D": d_grads}, {"D": want_d}, "gradient ")
  if case == "res18-64-SA":  # the adversarial path is ≥ 1 % of G's gradient: the comparison above covers it
    with jax.enable_x64(True):
      coord_only, _, _ = float64_reference(config, params, stats, batch, d_updated, lmd_d=0.0)
    adversarial = jax.tree.map(lambda a, b: np.abs(a - b).max(), want_gt["G"], coord_only["G"])
    assert max(jax.tree.leaves(adversarial)) > 100 * RTOL * max(np.abs(g).max() for g in jax.tree.leaves(want_gt["G"]))
