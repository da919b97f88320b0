"""Inference (SPEC §6.1): the flip-test mapping, flip invariance / equivariance on a tiny random res18, the SPA
head, and the jitted mesh step."""
from __future__ import annotations

from tests.conftest import fp32_atol, random_variables, spa_head_atol

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ahup_jax import models, sharding, skeleton
from ahup_jax.evaluation import inference
from configs import saa


def _config(flip_test: bool = True):
  config = saa.get_config("synth_tiny")
  config.model.input_size, config.model.depth_bins = 64, 16  # res18, 16×16×16 heatmaps
  config.eval.flip_test = flip_test
  return config


@functools.lru_cache(maxsize=None)
def _predict(flip_test: bool, spa_mode: int = 0):
  """Jitted predict for the tiny config (compiled once per variant)."""
  config = _config(flip_test)
  if spa_mode:
    config.spa.mode = spa_mode
  return jax.jit(inference.make_predict_fn(config, with_spa=bool(spa_mode)))




@pytest.fixture(scope="module")
def variables():
  return random_variables(_config())


@pytest.fixture(scope="module")
def images():
  return jax.random.normal(jax.random.key(3), (2, 64, 64, 3))


# Predictions of two compiled programs: soft-argmax sums 16³ probability-weighted coordinates of up to 16 hm px.
POSE_ATOL = fp32_atol(16**3, 16.0)


def _mirror(poses, width=16):
  return inference.mirror_hm(jnp.asarray(poses), width)


def test_mirror_hm_hand_values():
  poses = np.zeros((1, 17, 3), np.float32)
  poses[0, :, 0] = np.arange(17)
  poses[0, :, 2] = 100 + np.arange(17)
  out = np.asarray(_mirror(poses))
  perm = skeleton.flip_permutation()
  np.testing.assert_allclose(out[0, :, 0], 15 - perm)  # 16 − 1 − x, then left/right swapped
  np.testing.assert_allclose(out[0, :, 2], 100 + perm)
  assert out[0, 1, 2] == 104 and out[0, 14, 2] == 111  # R_Hip ← L_Hip, R_Shoulder ← L_Shoulder
  np.testing.assert_allclose(np.asarray(_mirror(out)), poses)  # an involution


def test_flip_off_is_the_plain_network(variables, images):
  config = _config(flip_test=False)
  backbone, head = models.build_pose_net(config.model)

  @jax.jit
  def network(v, x):
    feats = backbone.apply({"params": v["params"]["G"], "batch_stats": v["batch_stats"]["G"]}, x, train=False)
    return models.soft_argmax(head.apply({"params": v["params"]["T"], "batch_stats": v["batch_stats"]["T"]}, feats,
                                         train=False))

  pred = _predict(False)(variables, {"image": images})
  np.testing.assert_allclose(pred, network(variables, images), atol=POSE_ATOL)
  assert pred.shape == (2, 17, 3) and np.all((pred >= 0) & (pred <= 15))


def test_flip_test_on_a_symmetric_input(variables, images):
  """A left-right symmetric crop: the flipped run sees the same image, so the flip-test result is the mean of the
  plain prediction and its mirrored, joint-swapped copy, and is itself unchanged by mirroring + swapping."""
  symmetric = (images + jnp.flip(images, axis=2)) / 2
  plain = _predict(False)(variables, {"image": symmetric})
  flipped = _predict(True)(variables, {"image": symmetric})
  np.testing.assert_allclose(flipped, (plain + _mirror(plain)) / 2, atol=POSE_ATOL)
  np.testing.assert_allclose(flipped, _mirror(flipped), atol=POSE_ATOL)


def test_flip_test_is_mirror_equivariant(variables, images):
  """predict(mirror(x)) = mirror_hm(predict(x)) exactly, for any x (the mapping is an affine involution)."""
  predict = _predict(True)
  pred = predict(variables, {"image": images})
  pred_of_mirror = predict(variables, {"image": jnp.flip(images, axis=2)})
  np.testing.assert_allclose(pred_of_mirror, _mirror(pred), atol=POSE_ATOL)
  plain = _predict(False)(variables, {"image": images})
  assert np.abs(np.asarray(pred) - np.asarray(plain)).max() > 0.1  # the flipped run changes the result


@pytest.mark.parametrize("mode", [1, 2])
def test_spa_head_is_applied_to_the_flip_averaged_pose(variables, images, mode):
  config = _config(True)
  config.spa.mode = mode
  spa = models.SPANet(residual=mode == 2)
  spa_vars = spa.init(jax.random.key(4), jnp.zeros((2, 17, 3)), train=False)
  base = _predict(True)(variables, {"image": images})
  adapted = _predict(True, mode)({**variables, "spa": spa_vars}, {"image": images})
  # Two compiled programs sum in different orders (conftest.spa_head_atol).
  expected = spa.apply(spa_vars, base, train=False)
  np.testing.assert_allclose(adapted, expected, atol=spa_head_atol(spa_vars["params"], expected, spa.hidden))
  # A zero last layer makes f(y) = 0: mode 2 (y + f(y)) returns the pose itself, mode 1 (f(y)) zeros.
  params = dict(spa_vars["params"], w2=jax.tree.map(jnp.zeros_like, spa_vars["params"]["w2"]))
  silent = _predict(True, mode)({**variables, "spa": {**spa_vars, "params": params}}, {"image": images})
  np.testing.assert_allclose(silent, base if mode == 2 else np.zeros_like(base), atol=POSE_ATOL)
  config.spa.mode = 3
  with pytest.raises(ValueError, match="spa.mode"):
    inference.make_predict_fn(config, with_spa=True)


def test_eval_step_on_the_mesh(variables, images):
  config = _config(True)
  mesh = sharding.make_mesh(config.mesh)
  step = inference.make_eval_step(config, mesh)
  batch = {"image": np.asarray(images), "index": np.array([7, 3], np.int32), "valid": np.array([1.0, 0.0])}
  out = step(jax.device_put(variables, sharding.replicated(mesh)), sharding.to_global(batch, mesh))
  np.testing.assert_allclose(out["pred"], _predict(True)(variables, {"image": images}), atol=POSE_ATOL)
  np.testing.assert_array_equal(out["index"], [7, 3])
  np.testing.assert_array_equal(out["valid"], [1.0, 0.0])
  assert out["pred"].sharding.is_fully_replicated
