"""AHuP losses as pure functions (SPEC §3): coordinate L1, discriminator and adversarial terms, cell gather.

Per-joint ("semantically aware") masking gathers D's output at each joint's feature-grid cell instead of
multiplying dense [B, J, h, w] masks: each mask channel has at most one active cell, so the two are equal
(tests/test_losses.py checks it against a dense reference).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from ahup_jax.models import HM_PER_FEATURE_CELL

MODES = ("SA", "C", "C1", "SA1")
GAN_MODES = ("lsgan", "vanilla")
PIVOTS = ("sdt", "uda", "n")
CELL_RULES = ("round", "floor")


def check_options(mode: str, gan_mode: str, pivot: str) -> None:
  """Raises ValueError naming the config field when `adapt.mode_D / gan_mode / pivot` is unknown."""
  for field, value, allowed in (("mode_D", mode, MODES), ("gan_mode", gan_mode, GAN_MODES),
                                ("pivot", pivot, PIVOTS)):
    if value not in allowed:
      raise ValueError(f"adapt.{field} must be one of {allowed}, got {value!r}")


def coord_loss(pred: jax.Array, target: jax.Array, vis: jax.Array, have_depth: jax.Array,
               z_on: jax.Array) -> jax.Array:
  """L_coord (SPEC §3.1): mean over all B·J pairs of (|Δx|·v + |Δy|·v + |Δz|·v·h·ζ) / 3, a scalar.

  pred, target: [B, J, 3] float32, hm units; vis: [B, J] in {0, 1}; have_depth: [B]; z_on: scalar ζ.
  The ÷3 stays while z is off and invisible joints count in the denominator (faithful, SPEC §9 #28).
  """
  weight = jnp.stack([vis, vis, vis * have_depth[:, None] * z_on], axis=-1)
  return jnp.mean(jnp.sum(jnp.abs(pred - target) * weight, axis=-1) / 3.0)


def joint_cells(joints_hm: jax.Array, grid: int, cell: str = "round", defined: jax.Array | None = None,
                skip_missing: bool = False) -> jax.Array:
  """Feature-grid cell of each joint, SPEC §3.2: joints_hm [B, J, 3] hm units → [B, J, 2] int32 (row v, col u).

  (u, v) = round(x / 8), round(y / 8) with round-half-to-even (`cell="round"`, faithful) or floor (the exact
  receptive-field tiling). Cells outside the grid × grid feature map are −1. Visibility is ignored (faithful).
  Joints a dataset lacks sit at (0, 0) and so take cell (0, 0); with `skip_missing` the joints whose
  `defined` [J] bool entry is False get −1 instead (SPEC §9 #6). The tf pipeline (data_pipelines/augment.py)
  computes the same cells; this one serves tests and tools.
  """
  if cell not in CELL_RULES:
    raise ValueError(f"adapt.wts_D_cell must be one of {CELL_RULES}, got {cell!r}")
  if skip_missing and defined is None:
    raise ValueError("joint_cells: skip_missing needs the dataset's `defined` [J] joint flags")
  scaled = joints_hm[..., :2] / HM_PER_FEATURE_CELL
  uv = jnp.round(scaled) if cell == "round" else jnp.floor(scaled)
  inside = jnp.all((uv >= 0) & (uv < grid), axis=-1)
  if skip_missing:
    inside = inside & jnp.asarray(defined, bool)
  vu = uv[..., ::-1].astype(jnp.int32)
  return jnp.where(inside[..., None], vu, -1)


def gather_cells(scores: jax.Array, cells: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Per-joint D score at the joint's cell (SPEC §3.2, sparse form of the `wts_D` mask product).

  scores: [B, h, w, J] float32; cells: [B, J, 2] int32 (row v, col u), −1 = no cell.
  Returns values [B, J] (scores[b, v_bj, u_bj, j]; arbitrary where invalid) and valid [B, J] float32 in {0, 1}.
  """
  b, h, w, j = scores.shape
  if cells.shape != (b, j, 2):
    raise ValueError(f"joint_cells has shape {cells.shape}, expected {(b, j, 2)} for D scores {scores.shape}")
  valid = jnp.all(cells >= 0, axis=-1)
  v = jnp.clip(cells[..., 0], 0, h - 1)
  u = jnp.clip(cells[..., 1], 0, w - 1)
  values = scores[jnp.arange(b)[:, None], v, u, jnp.arange(j)[None, :]]
  return values, valid.astype(scores.dtype)


def criterion(scores: jax.Array, target: jax.Array | float, gan_mode: str) -> jax.Array:
  """Elementwise GAN criterion (SPEC §3.3): lsgan (s − t)²; vanilla BCE with logits (stable form).

  scores: any shape; target broadcasts to it. Returns the per-element loss, same shape as scores.
  """
  target = jnp.broadcast_to(jnp.asarray(target, scores.dtype), scores.shape)
  if gan_mode == "lsgan":
    return (scores - target) ** 2
  if gan_mode == "vanilla":
    return optax.sigmoid_binary_cross_entropy(scores, target)
  raise ValueError(f"adapt.gan_mode must be one of {GAN_MODES}, got {gan_mode!r}")


def _split_outputs(outputs, mode: str) -> tuple[jax.Array, jax.Array | None]:
  """ConvD's scores or ConvDC1's (patch, image) → (patch [B, h, w, ch], image [B, 1] or None)."""
  if mode in ("SA", "C"):
    return outputs, None
  if mode in ("C1", "SA1"):
    return outputs
  raise ValueError(f"adapt.mode_D must be one of {MODES}, got {mode!r}")


def domain_loss(outputs, targets: jax.Array, weights: jax.Array, cells: jax.Array, *, mode: str,
                gan_mode: str) -> jax.Array:
  """The criterion of SPEC §3.3 with its per-mode normalisation, over the samples whose weight is 1. Scalar.

  outputs: ConvD scores [B, h, w, ch] (SA: ch = J; C: ch = 1) or ConvDC1's (patch [B, h, w, ch], image [B, 1]);
  targets: [B] per-sample target; weights: [B] in {0, 1}, 1 = sample used (pivot `n` uses only real ones);
  cells: [B, J, 2] int32 joint cells (SA only).
  SA: Σ_b Σ_j criterion at the joint's cell ÷ J — a sum over the batch, so it grows with the batch size.
  C: mean over the used samples' h·w cells. C1: mean over the used samples of the image head.
  SA1: C1 + the patch head's mean over all its cells and channels, unmasked (official code, SPEC §9 #23).
  """
  patch, image = _split_outputs(outputs, mode)
  used = jnp.maximum(jnp.sum(weights), 1.0)
  if mode == "SA":
    values, valid = gather_cells(patch, cells)
    return jnp.sum(criterion(values, targets[:, None], gan_mode) * valid * weights[:, None]) / patch.shape[-1]
  if mode == "C":
    per_cell = criterion(patch[..., 0], targets[:, None, None], gan_mode) * weights[:, None, None]
    return jnp.sum(per_cell) / (used * patch.shape[1] * patch.shape[2])
  image_loss = jnp.sum(criterion(image[:, 0], targets, gan_mode) * weights) / used
  if mode == "C1":
    return image_loss
  per_cell = criterion(patch, targets[:, None, None, None], gan_mode) * weights[:, None, None, None]
  return image_loss + jnp.sum(per_cell) / (used * patch.shape[1] * patch.shape[2] * patch.shape[3])


def d_loss(outputs, is_synthetic: jax.Array, cells: jax.Array, *, mode: str, gan_mode: str) -> jax.Array:
  """L_D (SPEC §3.3): every sample against its domain label d (is_synthetic [B]: 1 synthetic, 0 real). Scalar."""
  return domain_loss(outputs, is_synthetic, jnp.ones_like(is_synthetic), cells, mode=mode, gan_mode=gan_mode)


def pivot_targets(is_synthetic: jax.Array, pivot: str) -> tuple[jax.Array, jax.Array]:
  """(targets [B], weights [B]) of the G step's adversarial term (SPEC §1.6).

  sdt: all samples vs 0.5; uda: all samples vs 1 − d; n: only the real samples (d = 0), vs 1.
  """
  ones = jnp.ones_like(is_synthetic)
  if pivot == "sdt":
    return 0.5 * ones, ones
  if pivot == "uda":
    return 1.0 - is_synthetic, ones
  if pivot == "n":
    return ones, 1.0 - is_synthetic
  raise ValueError(f"adapt.pivot must be one of {PIVOTS}, got {pivot!r}")


def adv_loss(outputs, is_synthetic: jax.Array, cells: jax.Array, *, mode: str, gan_mode: str,
             pivot: str) -> jax.Array:
  """L_adv for the G step (SPEC §3.4): L_D's form with the pivot's targets and samples. Scalar."""
  targets, weights = pivot_targets(is_synthetic, pivot)
  return domain_loss(outputs, targets, weights, cells, mode=mode, gan_mode=gan_mode)


def d_accuracy(outputs, is_synthetic: jax.Array, cells: jax.Array, *, mode: str,
               gan_mode: str) -> tuple[jax.Array, jax.Array]:
  """Fractions (real, synthetic) of the scored items D labels right: SA the valid joint cells, C all cells,
  C1/SA1 the image head. Decision threshold 0.5 on lsgan scores, 0 on vanilla logits. Two scalars."""
  threshold = 0.5 if gan_mode == "lsgan" else 0.0
  patch, image = _split_outputs(outputs, mode)
  if mode == "SA":
    values, valid = gather_cells(patch, cells)
    domain = jnp.broadcast_to(is_synthetic[:, None], values.shape)
  elif mode == "C":
    values = patch[..., 0]
    valid = jnp.ones_like(values)
    domain = jnp.broadcast_to(is_synthetic[:, None, None], values.shape)
  else:
    values, valid, domain = image[:, 0], jnp.ones_like(is_synthetic), is_synthetic
  right = jnp.where(domain > 0.5, values > threshold, values <= threshold) * valid
  real, syn = valid * (1.0 - domain), valid * domain
  return (jnp.sum(right * (1.0 - domain)) / jnp.maximum(jnp.sum(real), 1.0),
          jnp.sum(right * domain) / jnp.maximum(jnp.sum(syn), 1.0))
