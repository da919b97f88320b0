"""Losses (SPEC §3): hand-computed values for every mode / criterion / pivot, and the cell gather against a
dense-mask reference built the way SPEC §3.2 describes `wts_D`."""
from __future__ import annotations

import math

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ahup_jax import losses


def softplus(x: float) -> float:
  return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def bce(s: float, t: float) -> float:
  """−[t·log σ(s) + (1−t)·log(1−σ(s))] written out: log σ(s) = −softplus(−s), log(1−σ(s)) = −softplus(s)."""
  return t * softplus(-s) + (1.0 - t) * softplus(s)


# ------------------------------------------------------------------------------------------------- L_coord
def test_coord_loss_hand_values():
  """÷3 with z off, invisible joints in the denominator, z only where have_depth·ζ (SPEC §3.1, §9 #28)."""
  pred = jnp.array([[[1.0, 2.0, 3.0], [10.0, 10.0, 10.0]], [[0.0, 0.0, 6.0], [0.0, 3.0, 0.0]]])
  target = jnp.zeros_like(pred)
  vis = jnp.array([[1.0, 0.0], [1.0, 1.0]])
  have_depth = jnp.array([1.0, 0.0])
  # ℓ: sample 0 joint 0 = (1 + 2 + 3ζ)/3, joint 1 invisible = 0; sample 1 (no depth): 0, 3/3.
  assert float(losses.coord_loss(pred, target, vis, have_depth, 0.0)) == pytest.approx((3 / 3 + 0 + 0 + 1) / 4)
  assert float(losses.coord_loss(pred, target, vis, have_depth, 1.0)) == pytest.approx((6 / 3 + 0 + 0 + 1) / 4)


# ------------------------------------------------------------------------------------------------- cells
def test_joint_cells_round_half_to_even_floor_and_grid():
  """x/8 = 0.5 → 0, 1.5 → 2, 2.5 → 2 (round half to even); floor(x/8); outside the grid → −1; (row, col) order."""
  x = jnp.array([4.0, 12.0, 20.0, 8.0, -3.0, 15.9])
  y = jnp.array([0.0, 0.0, 0.0, 7.0, 0.0, 0.0])
  joints = jnp.stack([x, y, jnp.zeros_like(x)], -1)[None]  # [1, 6, 3]
  rounded = np.asarray(losses.joint_cells(joints, grid=3, cell="round"))[0]
  np.testing.assert_array_equal(rounded, [[0, 0], [0, 2], [0, 2], [1, 1], [0, 0], [0, 2]])
  floored = np.asarray(losses.joint_cells(joints, grid=3, cell="floor"))[0]
  np.testing.assert_array_equal(floored, [[0, 0], [0, 1], [0, 2], [0, 1], [-1, -1], [0, 1]])
  small = np.asarray(losses.joint_cells(joints, grid=2, cell="round"))[0]
  np.testing.assert_array_equal(small, [[0, 0], [-1, -1], [-1, -1], [1, 1], [0, 0], [-1, -1]])
  assert rounded.dtype == np.int32


def test_joint_cells_missing_joints_faithful_and_skipped():
  """Joints a dataset lacks sit at (0, 0): cell (0, 0) by default (SPEC §9 #6), −1 with skip_missing."""
  joints = jnp.array([[[9.0, 9.0, 3.0], [0.0, 0.0, 0.0]]])
  defined = jnp.array([True, False])
  np.testing.assert_array_equal(losses.joint_cells(joints, 2, defined=defined)[0], [[1, 1], [0, 0]])
  np.testing.assert_array_equal(losses.joint_cells(joints, 2, defined=defined, skip_missing=True)[0],
                                [[1, 1], [-1, -1]])
  with pytest.raises(ValueError, match="defined"):
    losses.joint_cells(joints, 2, skip_missing=True)
  with pytest.raises(ValueError, match="wts_D_cell"):
    losses.joint_cells(joints, 2, cell="ceil")


@pytest.mark.parametrize("cell", ["round", "floor"])
@pytest.mark.parametrize("skip_missing", [False, True])
def test_joint_cells_match_the_tf_pipeline(cell, skip_missing):
  """The jnp helper and data_pipelines.augment.joint_cells give the same cells (incl. exact halves)."""
  tf = pytest.importorskip("tensorflow")
  from data_pipelines import augment
  rng = np.random.default_rng(0)
  joints = rng.uniform(-6, 22, (5, 17, 3)).astype(np.float32)
  joints[:, :4, :2] = rng.integers(-1, 6, (5, 4, 2)) * 4.0  # exact multiples of 4: halves of a cell
  defined = rng.uniform(size=17) > 0.3
  joints[:, ~defined] = 0.0
  cfg = ml_collections.ConfigDict(dict(wts_D_cell=cell, wts_D_skip_missing=skip_missing))
  want = augment.joint_cells(tf.constant(joints), tf.constant(defined), 64, cfg).numpy()
  got = losses.joint_cells(jnp.asarray(joints), 2, cell, jnp.asarray(defined), skip_missing)
  np.testing.assert_array_equal(np.asarray(got), want)


def dense_masks(joints_hm: np.ndarray, grid: int, cell: str, defined=None) -> np.ndarray:
  """SPEC §3.2 written out with loops: w[b, j, v, u] = 1 at (round or floor of (y/8, x/8)) when inside."""
  b_, j_ = joints_hm.shape[:2]
  w = np.zeros((b_, j_, grid, grid), np.float32)
  to_cell = np.round if cell == "round" else np.floor  # np.round: half to even
  for b in range(b_):
    for j in range(j_):
      if defined is not None and not defined[j]:
        continue
      u, v = int(to_cell(joints_hm[b, j, 0] / 8)), int(to_cell(joints_hm[b, j, 1] / 8))
      if 0 <= u < grid and 0 <= v < grid:
        w[b, j, v, u] = 1.0
  return w


@pytest.mark.parametrize("cell", ["round", "floor"])
@pytest.mark.parametrize("skip_missing", [False, True])
@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla"])
def test_gather_equals_dense_mask_reference(cell, skip_missing, gan_mode):
  """Σ_{b,j} ℓ(gathered score) · valid equals Σ_{b,j,v,u} w · ℓ(score) with dense w (out-of-grid, missing joints,
  halves); every SA loss (L_D and all pivots of L_adv) equals the dense formula of SPEC §3.3."""
  rng = np.random.default_rng(1)
  b_, j_, grid = 6, 17, 3
  joints = rng.uniform(-8, 30, (b_, j_, 3)).astype(np.float32)
  joints[:, :5, :2] = rng.integers(-2, 8, (b_, 5, 2)) * 4.0
  defined = np.ones(j_, bool)
  defined[[7, 9, 10]] = False
  joints[:, ~defined] = 0.0
  scores = rng.normal(size=(b_, grid, grid, j_)).astype(np.float32)
  is_syn = np.array([1, 1, 0, 0, 1, 0], np.float32)

  cells = losses.joint_cells(jnp.asarray(joints), grid, cell, jnp.asarray(defined), skip_missing)
  w = dense_masks(joints, grid, cell, defined if skip_missing else None)
  values, valid = losses.gather_cells(jnp.asarray(scores), cells)
  np.testing.assert_array_equal(np.asarray(valid), w.sum(axis=(2, 3)))
  np.testing.assert_allclose(np.asarray(values) * w.sum(axis=(2, 3)),
                             np.einsum("bjvu,bvuj->bj", w, scores), rtol=1e-6)

  per_cell = lambda t: np.asarray(losses.criterion(jnp.asarray(scores), t, gan_mode))  # [B, h, w, J]
  dense = lambda t, used: np.einsum("bjvu,bvuj,b->", w, per_cell(t[:, None, None, None]), used) / j_
  ones = np.ones(b_, np.float32)
  kw = dict(mode="SA", gan_mode=gan_mode)
  np.testing.assert_allclose(losses.d_loss(scores, is_syn, cells, **kw), dense(is_syn, ones), rtol=1e-5)
  np.testing.assert_allclose(losses.adv_loss(scores, is_syn, cells, pivot="sdt", **kw), dense(0.5 * ones, ones),
                             rtol=1e-5)
  np.testing.assert_allclose(losses.adv_loss(scores, is_syn, cells, pivot="uda", **kw), dense(1 - is_syn, ones),
                             rtol=1e-5)
  np.testing.assert_allclose(losses.adv_loss(scores, is_syn, cells, pivot="n", **kw), dense(ones, 1 - is_syn),
                             rtol=1e-5)


# ------------------------------------------------------------------------------------------------- hand values
# Two samples (0 synthetic, 1 real), J = 2 joints, 2×2 feature grid.
IS_SYN = jnp.array([1.0, 0.0])
CELLS = jnp.array([[[0, 0], [1, 1]], [[0, 1], [-1, -1]]], jnp.int32)  # sample 1 joint 1 has no cell


def sa_scores() -> jnp.ndarray:
  """[2, 2, 2, 2]: the scored cells hold a = 1.0 (s0 j0), b = 0.5 (s0 j1), c = 0.75 (s1 j0); others are noise."""
  scores = np.full((2, 2, 2, 2), 9.0, np.float32)
  scores[0, 0, 0, 0], scores[0, 1, 1, 1], scores[1, 0, 1, 0] = 1.0, 0.5, 0.75
  return jnp.asarray(scores)


SA_LSGAN = {  # Σ over active cells ÷ J (= 2)
    "d": ((1.0 - 1) ** 2 + (0.5 - 1) ** 2 + (0.75 - 0) ** 2) / 2,  # 0.40625
    "sdt": ((1.0 - .5) ** 2 + (0.5 - .5) ** 2 + (0.75 - .5) ** 2) / 2,  # 0.15625
    "uda": ((1.0 - 0) ** 2 + (0.5 - 0) ** 2 + (0.75 - 1) ** 2) / 2,  # 0.65625
    "n": (0.75 - 1) ** 2 / 2,  # 0.03125: the real sample only
}
SA_VANILLA = {
    "d": (bce(1.0, 1) + bce(0.5, 1) + bce(0.75, 0)) / 2,
    "sdt": (bce(1.0, .5) + bce(0.5, .5) + bce(0.75, .5)) / 2,
    "uda": (bce(1.0, 0) + bce(0.5, 0) + bce(0.75, 1)) / 2,
    "n": bce(0.75, 1) / 2,
}


def test_hand_values_are_what_the_comments_say():
  assert [SA_LSGAN[k] for k in ("d", "sdt", "uda", "n")] == [0.40625, 0.15625, 0.65625, 0.03125]


def check(outputs, mode, gan_mode, expected):
  kw = dict(mode=mode, gan_mode=gan_mode)
  assert float(losses.d_loss(outputs, IS_SYN, CELLS, **kw)) == pytest.approx(expected["d"], rel=1e-6)
  for pivot in ("sdt", "uda", "n"):
    got = float(losses.adv_loss(outputs, IS_SYN, CELLS, pivot=pivot, **kw))
    assert got == pytest.approx(expected[pivot], rel=1e-6), pivot


@pytest.mark.parametrize("gan_mode,expected", [("lsgan", SA_LSGAN), ("vanilla", SA_VANILLA)])
def test_sa_hand_values(gan_mode, expected):
  check(sa_scores(), "SA", gan_mode, expected)


def c_scores() -> jnp.ndarray:
  """[2, 2, 2, 1]: sample 0 cells (1, 0, .5, .5), sample 1 cells (0, 0, 1, .5)."""
  return jnp.array([[1.0, 0.0, 0.5, 0.5], [0.0, 0.0, 1.0, 0.5]]).reshape(2, 2, 2, 1)


@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla"])
def test_c_hand_values(gan_mode):
  """C: mean over the used samples' cells; masks ignored (SPEC §3.3)."""
  s0, s1 = (1.0, 0.0, 0.5, 0.5), (0.0, 0.0, 1.0, 0.5)
  ell = (lambda s, t: (s - t) ** 2) if gan_mode == "lsgan" else bce
  mean = lambda pairs: sum(ell(s, t) for s, t in pairs) / len(pairs)
  expected = {
      "d": mean([(s, 1) for s in s0] + [(s, 0) for s in s1]),
      "sdt": mean([(s, .5) for s in s0 + s1]),
      "uda": mean([(s, 0) for s in s0] + [(s, 1) for s in s1]),
      "n": mean([(s, 1) for s in s1]),
  }
  if gan_mode == "lsgan":
    assert (expected["d"], expected["n"]) == (2.75 / 8, 2.25 / 4)
  check(c_scores(), "C", gan_mode, expected)


@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla"])
def test_c1_and_sa1_hand_values(gan_mode):
  """C1: mean over samples of the image head; SA1 adds the patch head's unmasked mean (SPEC §3.3, §9 #23)."""
  image = jnp.array([[0.8], [0.2]])
  patch = jnp.full((2, 2, 2, 2), 0.5)
  ell = (lambda s, t: (s - t) ** 2) if gan_mode == "lsgan" else bce
  c1 = {"d": (ell(0.8, 1) + ell(0.2, 0)) / 2, "sdt": (ell(0.8, .5) + ell(0.2, .5)) / 2,
        "uda": (ell(0.8, 0) + ell(0.2, 1)) / 2, "n": ell(0.2, 1)}
  patch_term = {"d": (ell(0.5, 1) + ell(0.5, 0)) / 2, "sdt": ell(0.5, .5),
                "uda": (ell(0.5, 0) + ell(0.5, 1)) / 2, "n": ell(0.5, 1)}
  if gan_mode == "lsgan":
    assert [c1[k] for k in ("d", "sdt", "n")] == pytest.approx([0.04, 0.09, 0.64])
  check((patch, image), "C1", gan_mode, c1)
  check((patch, image), "SA1", gan_mode, {k: c1[k] + patch_term[k] for k in c1})


def test_sa_sums_over_the_batch_c_and_c1_average():
  """Doubling the batch doubles L_adv in SA and leaves C and C1 unchanged (SPEC §3.5)."""
  twice = lambda x: jnp.concatenate([x, x])
  syn2, cells2 = twice(IS_SYN), twice(CELLS)
  image = jnp.array([[0.8], [0.2]])
  for pivot in ("sdt", "uda", "n"):
    sa = lambda s, d, c: float(losses.adv_loss(s, d, c, mode="SA", gan_mode="lsgan", pivot=pivot))
    assert sa(twice(sa_scores()), syn2, cells2) == pytest.approx(2 * sa(sa_scores(), IS_SYN, CELLS))
    for mode, out, out2 in (("C", c_scores(), twice(c_scores())),
                            ("C1", (c_scores(), image), (twice(c_scores()), twice(image)))):
      one = float(losses.adv_loss(out, IS_SYN, CELLS, mode=mode, gan_mode="lsgan", pivot=pivot))
      two = float(losses.adv_loss(out2, syn2, cells2, mode=mode, gan_mode="lsgan", pivot=pivot))
      assert two == pytest.approx(one)


def test_vanilla_criterion_is_stable_for_large_logits():
  s = jnp.array([-200.0, 200.0, 0.0])
  np.testing.assert_allclose(losses.criterion(s, 1.0, "vanilla"), [200.0, 0.0, math.log(2)], rtol=1e-6)
  np.testing.assert_allclose(losses.criterion(s, 0.5, "vanilla"), [100.0, 100.0, math.log(2)], rtol=1e-6)


def test_pivot_n_without_real_samples_is_zero():
  all_syn = jnp.ones(2)
  assert float(losses.adv_loss(c_scores(), all_syn, CELLS, mode="C", gan_mode="lsgan", pivot="n")) == 0.0


def test_d_accuracy_counts_valid_cells_per_domain():
  """SA lsgan, threshold 0.5: s0 (synthetic) a = 1.0 right, b = 0.5 wrong; s1 (real) c = 0.75 wrong."""
  real, syn = losses.d_accuracy(sa_scores(), IS_SYN, CELLS, mode="SA", gan_mode="lsgan")
  assert (float(real), float(syn)) == (0.0, 0.5)
  real, syn = losses.d_accuracy(sa_scores() - 0.6, IS_SYN, CELLS, mode="SA", gan_mode="vanilla")
  assert (float(real), float(syn)) == (0.0, 0.5)  # logits 0.4, −0.1 | 0.15 around 0
  real, syn = losses.d_accuracy(c_scores(), IS_SYN, CELLS, mode="C", gan_mode="lsgan")
  assert (float(real), float(syn)) == (0.75, 0.25)
  real, syn = losses.d_accuracy((c_scores(), jnp.array([[0.8], [0.2]])), IS_SYN, CELLS, mode="C1",
                                gan_mode="lsgan")
  assert (float(real), float(syn)) == (1.0, 1.0)


def test_bad_options_name_the_config_field():
  with pytest.raises(ValueError, match="adapt.mode_D"):
    losses.check_options("SAA", "lsgan", "sdt")
  with pytest.raises(ValueError, match="adapt.gan_mode"):
    losses.d_loss(c_scores(), IS_SYN, CELLS, mode="C", gan_mode="wgan")
  with pytest.raises(ValueError, match="adapt.pivot"):
    losses.adv_loss(c_scores(), IS_SYN, CELLS, mode="C", gan_mode="lsgan", pivot="x")
  with pytest.raises(ValueError, match="joint_cells"):
    losses.gather_cells(jnp.zeros((2, 2, 2, 3)), CELLS)
