"""Rotation pretraining of G (ahup_jax/train/pretrain.py): the turns, and a real jitted step that learns them."""
import jax
import jax.numpy as jnp
import numpy as np

from ahup_jax import ablation
from ahup_jax.train import pretrain
from configs import ablation as ablation_configs


def test_rotate_turns_each_image_by_its_own_quarter_turns():
  images = np.random.default_rng(0).normal(size=(6, 8, 8, 3)).astype(np.float32)
  turns = np.array([0, 1, 2, 3, 1, 2])
  got = np.asarray(pretrain.rotate(jnp.asarray(images), jnp.asarray(turns)))
  want = np.stack([np.rot90(image, k, axes=(0, 1)) for image, k in zip(images, turns)])
  np.testing.assert_array_equal(got, want)
  back = pretrain.rotate(jnp.asarray(got), jnp.asarray((4 - turns) % 4))
  np.testing.assert_array_equal(np.asarray(back), images)


def _config(size: int = 32):
  config = ablation.row_config(ablation_configs.get_config("quick"), ablation.NO_D_ROW, seed=0)
  config.model.input_size = size
  config.train.update(iters_per_epoch=100, lr_dec_epochs=(10,))
  return config


def test_step_learns_the_turns_of_a_fixed_batch():
  """G + R from scratch on 8 crops that are bright at the top: within 40 jitted Adam steps the turn (drawn anew each
  step) is read from the image — typical loss well under chance (ln 4 = 1.39) — and G's BatchNorm statistics move."""
  config = _config()
  rows = np.linspace(1.0, -1.0, 32, dtype=np.float32)[None, :, None, None]
  noise = np.random.default_rng(1).normal(scale=0.3, size=(8, 32, 32, 3)).astype(np.float32)
  batch = {"image": jnp.asarray(rows + noise)}
  state = pretrain.create_state(config, jax.random.key(0))
  stats0 = jax.tree.leaves(state.batch_stats)
  step = jax.jit(pretrain.make_step(config))
  losses = []
  for _ in range(40):
    state, metrics = step(state, batch)
    losses.append(float(metrics["loss"]))
  assert int(state.step) == 40 and np.isfinite(losses).all()
  # the first loss is the init's (near chance); the median of the last ten ignores the single-batch spikes that
  # BatchNorm over 8 crops with fresh turns gives, whose places move with the CPU's float rounding
  assert losses[0] > 1.0 and np.median(losses[-10:]) < 0.5 * np.log(4), losses
  assert any(not np.allclose(a, b) for a, b in zip(stats0, jax.tree.leaves(state.batch_stats)))
  assert set(state.params) == {"G", "R"} and set(state.batch_stats) == {"G"}
