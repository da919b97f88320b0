"""Self-supervised pretraining of G by rotation prediction: a domain-general initial G where ImageNet cannot be had.

The paper starts G from ImageNet weights: features shaped by natural images of every kind, by no pose label and by no
one domain's appearance. No weights can be downloaded here, and a G taken from a source-only pose model has seen
the source's appearance only (issue #18). This stand-in learns G from the training sets' own crops — SAA's sets, the
source and the 2D sets, never the target — without any label: each crop is turned by a random multiple of 90° and
G plus a linear classifier on its average-pooled features learns which (RotNet, Gidaris et al., ICLR 2018), a
task that needs the body's layout (where the head is) but favours no domain.

The batches, optimizer, learning-rate schedule and mesh are the SAA trainer's (`data_pipelines.pivot`,
`state.make_optimizers`, `sharding.jit_train_step`), so a pretraining of N steps costs about N steps of G alone.
"""
from __future__ import annotations

import json
import os

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import linen as nn
from tqdm import tqdm

from ahup_jax import models, sharding
from ahup_jax.train import state as state_lib
from data_pipelines import input_pipeline, pivot, readers

NUM_TURNS = 4  # 0°, 90°, 180°, 270°
SEED_SALT = 7919  # the turns' random stream is not the augmentation's or the init's


def rotate(images: jax.Array, turns: jax.Array) -> jax.Array:
  """images [B, S, S, C] each turned counter-clockwise by turns [B] (int, 0..3) × 90° (square crops keep their shape)."""
  candidates = jnp.stack([jnp.rot90(images, k, axes=(1, 2)) for k in range(NUM_TURNS)])  # [4, B, S, S, C]
  return candidates[turns, jnp.arange(images.shape[0])]


class RotationClassifier(nn.Module):
  """features [B, h, w, C] → logits [B, 4]: global average pool, one linear layer (the pretext task's head)."""

  @nn.compact
  def __call__(self, feats: jax.Array) -> jax.Array:
    return nn.Dense(NUM_TURNS, name="fc")(feats.astype(jnp.float32).mean(axis=(1, 2)))


@flax.struct.dataclass
class PretrainState:
  """step: [] int32; params {"G", "R"} (R: the rotation classifier); batch_stats {"G"}; opt_state over params."""
  step: jax.Array
  params: dict
  batch_stats: dict
  opt_state: optax.OptState


def create_state(config: ml_collections.ConfigDict, rng: jax.Array) -> PretrainState:
  """G initialised as the SAA trainer does (`model.backbone`, `model.backbone_init`), R and Adam at step 0."""
  backbone, _ = models.build_pose_net(config.model)
  images = jnp.zeros((1, config.model.input_size, config.model.input_size, 3), jnp.float32)
  g_rng, r_rng = jax.random.split(rng)
  g_vars = jax.jit(lambda r: backbone.init(r, images, train=False))(g_rng)
  feats = jax.eval_shape(lambda v: backbone.apply(v, images, train=False), g_vars)
  r_params = RotationClassifier().init(r_rng, jnp.zeros(feats.shape, jnp.float32))["params"]
  params = {"G": g_vars["params"], "R": r_params}
  tx, _ = state_lib.make_optimizers(config)
  return PretrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats={"G": g_vars["batch_stats"]},
                       opt_state=tx.init(params))


def make_step(config: ml_collections.ConfigDict):
  """step(state, batch) → (state, metrics): one Adam step of G + R on the cross-entropy of the turns of
  batch["image"] [B, S, S, 3] (other keys unused); metrics loss, accuracy (before the update), lr. Pure, not jitted."""
  backbone, _ = models.build_pose_net(config.model)
  classifier = RotationClassifier()
  tx, _ = state_lib.make_optimizers(config)
  schedule = state_lib.lr_schedule(config.train)
  key = jax.random.key(int(config.seed) + SEED_SALT)

  def step(state: PretrainState, batch: dict):
    images = batch["image"]
    turns = jax.random.randint(jax.random.fold_in(key, state.step), (images.shape[0],), 0, NUM_TURNS)

    def objective(params):
      feats, updates = backbone.apply({"params": params["G"], "batch_stats": state.batch_stats["G"]},
                                      rotate(images, turns), train=True, mutable=["batch_stats"])
      logits = classifier.apply({"params": params["R"]}, feats)
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, turns).mean()
      return loss, (updates["batch_stats"], logits)

    (loss, (stats, logits)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    metrics = {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == turns), "lr": schedule(state.step)}
    return PretrainState(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                         batch_stats={"G": stats}, opt_state=opt_state), metrics

  return step


def pretrain(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Rotation pretraining of G on `config.data.trainset`'s training crops for the SAA run's budget
  (`train.epochs` × iterations per epoch, its schedule and batches); returns G's {"params", "batch_stats"}.

  Writes WORKDIR/pretrain.jsonl (loss, accuracy every `train.log_every_steps`). Not checkpointed: a killed run
  starts over and, the batches and turns being functions of the seed and step, ends with the same G.
  """
  mesh = sharding.make_mesh(config.mesh)
  records = [readers.load(name, config.data, "train") for name in config.data.trainset]
  total = config.train.epochs * pivot.iters_per_epoch(config, records)
  state = create_state(config, jax.random.key(config.seed))
  state = jax.device_put(state, sharding.state_sharding(state, mesh))
  step = sharding.jit_train_step(make_step(config), mesh, state)
  host = pivot.make_train_dataset(records, config, data_shards=mesh.shape["data"]).as_numpy_iterator()
  batches = input_pipeline.device_batches(host, mesh, prefetch=config.data.prefetch)
  os.makedirs(workdir, exist_ok=True)
  every = max(1, int(config.train.log_every_steps))
  with open(os.path.join(workdir, "pretrain.jsonl"), "w") as log:
    for i in tqdm(range(total), desc="rotation pretraining", unit="step", dynamic_ncols=True,
                  disable=jax.process_index() != 0):
      state, metrics = step(state, next(batches))
      if (i + 1) % every == 0 or i + 1 == total:
        log.write(json.dumps({"step": i + 1, **{k: float(v) for k, v in jax.device_get(metrics).items()}}) + "\n")
  batches.close()
  return jax.device_get({"params": state.params["G"], "batch_stats": state.batch_stats["G"]})
