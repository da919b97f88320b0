"""One compilation per program: the SAA step across epochs and the z switch, the SPA epoch across epochs.

The per-epoch switches (z supervision from epoch_regZ, fix_G) and the LR schedule are data computed from
`state.step`, so the step the trainer jits (`sharding.jit_train_step`) must compile once for a whole run.
Compilations are counted from the event JAX records once per XLA backend compilation (benchmarks/timing.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ahup_jax import sharding
from ahup_jax.spa import fit
from benchmarks import timing, train_step as bench
from configs import saa

STEPS = 5  # iters_per_epoch 2: epochs 0, 0, 1, 1, 2; z on from step 2, LR decay at step 4


def tiny_config(fix_g: bool):
  config = saa.get_config("synth_tiny")  # res18 96², batch 6, SA D over three training sets
  config.train.iters_per_epoch, config.train.epoch_regZ, config.train.lr_dec_epochs = 2, 1, (2,)
  config.train.fix_G = fix_g
  return config


def test_the_counter_sees_a_step_that_depends_on_a_python_value():
  """Negative control: a Python z flag as a static argument compiles one program per value."""
  def scaled(x, z_on):
    return x * z_on

  step, x = jax.jit(scaled, static_argnums=1), jnp.ones(3)
  with timing.count_compiles() as compiles:
    for epoch in range(3):
      step(x, epoch >= 1)
  assert compiles == {"jit(scaled)": 2}


@pytest.mark.parametrize("fix_g", [False, pytest.param(True, marks=pytest.mark.slow)])  # fix_G: G frozen, D off
def test_train_step_compiles_once_across_epochs_and_the_z_switch(fix_g):
  config = tiny_config(fix_g)
  jitted, state, _ = bench.build(config)  # sharding.jit_train_step over the default mesh, state donated
  mesh = sharding.make_mesh(config.mesh)
  batches = [sharding.to_global(bench.fake_batch(config, seed), mesh) for seed in range(STEPS)]
  z_on, lr = [], []
  with timing.count_compiles() as compiles:
    for batch in batches:
      state, metrics = jitted(state, batch)
      z_on.append(float(metrics["z_on"]))
      lr.append(float(metrics["lr"]))
  assert z_on == [0, 0, 1, 1, 1]
  np.testing.assert_allclose(lr, [1e-3] * 4 + [1e-4], rtol=1e-6)
  assert int(state.step) == STEPS
  assert compiles == {"jit(train_step)": 1}
  assert jitted._cache_size() == 1


def test_spa_epoch_compiles_once_across_epochs():
  spa_cfg = saa.get_config("synth_tiny").spa
  poses = jnp.asarray(np.random.default_rng(0).uniform(5, 20, (300, 17, 3)), jnp.float32)
  trainer = fit.make_trainer(spa_cfg, len(poses))
  state = trainer.init(jax.random.key(0), poses[:2])
  target = jnp.ones(16)
  with timing.count_compiles() as compiles:
    for epoch in range(3):
      state, metrics = trainer.run_epoch(state, jax.random.fold_in(jax.random.key(1), epoch), poses, target)
      assert np.isfinite(float(metrics["loss"]))
  assert compiles == {"jit(run_epoch)": 1}
