"""AHuP losses as pure functions (SPEC §3): coordinate L1, discriminator and adversarial terms, cell gather.

Per-joint ("semantically aware") masking gathers D's output at each joint's feature-grid cell instead of
multiplying dense [B, J, h, w] masks: each mask channel has at most one active cell, so the two are equal
(tests/test_losses.py checks it against a dense reference).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

PATCH_MODES = ("SA", "C")
MODES = ("SA", "C", "C1", "SA1")
PIVOTS = ("sdt", "uda", "n")
GAN_MODES = ("lsgan", "vanilla")


def coord_loss(pred: jax.Array, target: jax.Array, vis: jax.Array, have_depth: jax.Array,
               z_on: jax.Array) -> jax.Array:
  """SPEC §3.1: mean over all B·J of (|dx|·v + |dy|·v + |dz|·v·h·ζ) / 3.

  pred, target: [B, J, 3] hm units; vis: [B, J]; have_depth: [B]; z_on: scalar ζ ∈ {0, 1}.
  The ÷3 stays while z is off and invisible joints count in the denominator (faithful normalisation).
  """
  weight = jnp.stack([vis, vis, vis * have_depth[:, None] * z_on], axis=-1)
  return jnp.mean(jnp.sum(jnp.abs(pred - target) * weight, axis=-1) / 3.0)


def joint_cells(joints_hm: jax.Array, grid: int, cell: str = "round", defined: jax.Array | None = None,
                skip_missing: bool = False, hm_per_cell: int = 8) -> jax.Array:
  """Feature-grid cell (row v, col u) of each joint, −1 where there is none (SPEC §3.2).

  joints_hm: [B, J, 3] hm units → [B, J, 2] int32. `round` is round-half-to-even (faithful), `floor` the exact
  receptive-field tiling. Visibility is ignored (faithful); undefined joints (`defined` [J] False) sit at (0, 0)
  and therefore get cell (0, 0) unless `skip_missing`.
  """
  if cell not in ("round", "floor"):
    raise ValueError(f"adapt.wts_D_cell must be 'round' or 'floor', got '{cell}'")
  scaled = joints_hm[..., :2] / hm_per_cell
  uv = jnp.round(scaled) if cell == "round" else jnp.floor(scaled)
  inside = jnp.all((uv >= 0) & (uv < grid), axis=-1)
  if skip_missing and defined is not None:
    inside = inside & jnp.asarray(defined)[None, :]
  vu = jnp.stack([uv[..., 1], uv[..., 0]], axis=-1).astype(jnp.int32)
  return jnp.where(inside[..., None], vu, -1)


def gather_cells(scores: jax.Array, cells: jax.Array) -> tuple[jax.Array, jax.Array]:
  """D scores at each joint's cell: scores [B, h, w, J], cells [B, J, 2] → (values [B, J], valid [B, J] float)."""
  b, h, w, j = scores.shape
  valid = jnp.all(cells >= 0, axis=-1)
  v = jnp.clip(cells[..., 0], 0, h - 1)
  u = jnp.clip(cells[..., 1], 0, w - 1)
  values = scores[jnp.arange(b)[:, None], v, u, jnp.arange(j)[None, :]]
  return values, valid.astype(scores.dtype)


def criterion(scores: jax.Array, target, gan_mode: str) -> jax.Array:
  """Per-element GAN criterion (SPEC §3.3): lsgan (s − t)², vanilla BCE with logits (stable form)."""
  target = jnp.broadcast_to(jnp.asarray(target, scores.dtype), scores.shape)
  if gan_mode == "lsgan":
    return (scores - target) ** 2
  if gan_mode == "vanilla":
    return optax.sigmoid_binary_cross_entropy(scores, target)
  raise ValueError(f"adapt.gan_mode must be one of {GAN_MODES}, got '{gan_mode}'")


def discriminator_loss(outputs, targets: jax.Array, weights: jax.Array, cells: jax.Array, *, mode: str,
                       gan_mode: str) -> jax.Array:
  """The SA / C / C1 / SA1 loss with SPEC §3.3's normalisations over the samples with weight 1.

  outputs: ConvD scores [B, h, w, ch] or ConvDC1's (patch [B, h, w, ch], image [B, 1]);
  targets: [B] per-sample target; weights: [B] 1 for used samples (pivot `n` uses only real ones), else 0;
  cells: [B, J, 2] joint cells (SA only).
  SA: Σ_b Σ_j (masked cell criterion) / J — a sum over the batch, so it grows with batch size.
  C: mean over used samples' cells. C1: mean over used samples. SA1: C1 + unmasked patch mean (official code).
  """
  used = jnp.maximum(jnp.sum(weights), 1.0)
  if mode in ("SA", "C"):
    patch = outputs
  elif mode in ("C1", "SA1"):
    patch, image = outputs
  else:
    raise ValueError(f"adapt.mode_D must be one of {MODES}, got '{mode}'")
  if mode == "SA":
    values, valid = gather_cells(patch, cells)
    per_joint = criterion(values, targets[:, None], gan_mode) * valid * weights[:, None]
    return jnp.sum(per_joint) / patch.shape[-1]
  if mode == "C":
    per_cell = criterion(patch[..., 0], targets[:, None, None], gan_mode) * weights[:, None, None]
    return jnp.sum(per_cell) / (used * patch.shape[1] * patch.shape[2])
  image_loss = jnp.sum(criterion(image[:, 0], targets, gan_mode) * weights) / used
  if mode == "C1":
    return image_loss
  per_cell = criterion(patch, targets[:, None, None, None], gan_mode) * weights[:, None, None, None]
  return image_loss + jnp.sum(per_cell) / (used * patch.shape[1] * patch.shape[2] * patch.shape[3])


def d_loss(outputs, is_synthetic: jax.Array, cells: jax.Array, *, mode: str, gan_mode: str) -> jax.Array:
  """L_D: every sample against its domain label d (1 synthetic, 0 real), SPEC §3.3."""
  return discriminator_loss(outputs, is_synthetic, jnp.ones_like(is_synthetic), cells, mode=mode,
                            gan_mode=gan_mode)


def adv_loss(outputs, is_synthetic: jax.Array, cells: jax.Array, *, mode: str, gan_mode: str,
             pivot: str) -> jax.Array:
  """L_adv for the G step (SPEC §1.6, §3.4): sdt → all samples vs 0.5; uda → all vs 1 − d; n → real ones vs 1."""
  ones = jnp.ones_like(is_synthetic)
  if pivot == "sdt":
    targets, weights = 0.5 * ones, ones
  elif pivot == "uda":
    targets, weights = 1.0 - is_synthetic, ones
  elif pivot == "n":
    targets, weights = ones, 1.0 - is_synthetic
  else:
    raise ValueError(f"adapt.pivot must be one of {PIVOTS}, got '{pivot}'")
  return discriminator_loss(outputs, targets, weights, cells, mode=mode, gan_mode=gan_mode)


def d_accuracy(outputs, is_synthetic: jax.Array, cells: jax.Array, *, mode: str,
               gan_mode: str) -> tuple[jax.Array, jax.Array]:
  """Fraction of real / synthetic cells (SA: joint cells; C: all cells; C1/SA1: images) D labels right."""
  threshold = 0.5 if gan_mode == "lsgan" else 0.0
  if mode == "SA":
    values, valid = gather_cells(outputs, cells)
    domain = jnp.broadcast_to(is_synthetic[:, None], values.shape)
  elif mode == "C":
    values = outputs[..., 0]
    valid = jnp.ones_like(values)
    domain = jnp.broadcast_to(is_synthetic[:, None, None], values.shape)
  else:
    values = outputs[1][:, 0]
    valid = jnp.ones_like(values)
    domain = is_synthetic
  right = jnp.where(domain > 0.5, values > threshold, values <= threshold) * valid
  real, syn = valid * (1 - domain), valid * domain
  return (jnp.sum(right * (1 - domain)) / jnp.maximum(jnp.sum(real), 1.0),
          jnp.sum(right * domain) / jnp.maximum(jnp.sum(syn), 1.0))
