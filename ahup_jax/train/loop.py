"""The SAA training loop (SPEC §1.4, Appendix B step 7): epochs of jitted steps, logging, checkpoints, in-loop eval.

Everything a resumed run needs is in the checkpoint: the train state (both optimizers, batch stats, step) and the
step itself, from which the input pipeline regenerates exactly the batches that follow (data_pipelines/pivot.py).
A run killed at any point and restarted with the same command ends with the same parameters as an uninterrupted one.
"""
from __future__ import annotations

import json
import os
import time

import jax
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging
from tqdm import tqdm

from ahup_jax import checkpoint, sharding, viz
from ahup_jax.train import saa_step
from ahup_jax.train import state as state_lib
from data_pipelines import input_pipeline, pivot, readers


def inference_variables(state: state_lib.SAAState) -> dict:
  """The G+T part of a train state, in the layout evaluation and export use."""
  return {"params": {k: state.params[k] for k in ("G", "T")},
          "batch_stats": {k: state.batch_stats[k] for k in ("G", "T")}}


def load_backbone(config: ml_collections.ConfigDict) -> dict | None:
  """ImageNet-initialised G (`model.pretrained_backbone`, written by `convert_torch --kind resnet`), or None."""
  if not config.model.pretrained_backbone:
    return None
  from ahup_jax import convert_torch  # reads the orbax export only; torch is not imported
  return convert_torch.load_pretrained_backbone(config.model.pretrained_backbone)


class ScalarWriter:
  """TensorBoard scalars/images (process 0 only) plus a JSON-lines copy that is easy to read back."""

  def __init__(self, logdir: str):
    self._active = jax.process_index() == 0
    if self._active:
      os.makedirs(logdir, exist_ok=True)
      self._tb = tf.summary.create_file_writer(logdir)
      self._jsonl = open(os.path.join(logdir, "scalars.jsonl"), "a")

  def scalars(self, step: int, values: dict) -> None:
    if not self._active:
      return
    with self._tb.as_default(step=step):
      for name, value in values.items():
        tf.summary.scalar(name, float(value))
    self._jsonl.write(json.dumps({"step": step, **{k: float(v) for k, v in values.items()}}) + "\n")
    self._jsonl.flush()

  def image(self, step: int, name: str, png: bytes) -> None:
    if self._active:
      with self._tb.as_default(step=step):
        tf.summary.image(name, tf.image.decode_png(png)[None], step=step)

  def close(self) -> None:
    if self._active:
      self._tb.flush()
      self._jsonl.close()


def without_flip_test(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(config.to_dict())
  config.eval.flip_test = False
  return config


def write_samples(writer: ScalarWriter, workdir: str, step: int, epoch: int, batch: dict,
                  config: ml_collections.ConfigDict, variables: dict) -> None:
  """A grid of training crops with the current predictions (solid) and targets (dashed)."""
  from ahup_jax.evaluation import inference
  predict = jax.jit(inference.make_predict_fn(without_flip_test(config)))
  from jax.experimental import multihost_utils  # the batch spans every process's devices: gather it (all call)
  host = {k: np.asarray(multihost_utils.process_allgather(batch[k], tiled=True))[:12]
          for k in ("image", "joints_hm", "vis")}
  pred = np.asarray(predict(variables, {"image": host["image"]}))
  fig = viz.skeleton_grid(viz.denormalise(host["image"], config.model.input_scale), pred, host["joints_hm"],
                          gt_vis=host["vis"], title=f"epoch {epoch}, step {step}: prediction (solid) vs target (dashed)")
  png = viz.to_png(fig)
  if jax.process_index() == 0:
    os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
    with open(os.path.join(workdir, "samples", f"epoch_{epoch:03d}.png"), "wb") as f:
      f.write(png)
  writer.image(step, "train/samples", png)


def train(config: ml_collections.ConfigDict, workdir: str) -> state_lib.SAAState:
  """Trains (or resumes) SAA in `workdir`; returns the final state. Evaluating the result is the caller's job."""
  mesh = sharding.make_mesh(config.mesh)
  train_records = [readers.load(name, config.data, "train") for name in config.data.trainset]
  steps_per_epoch = pivot.iters_per_epoch(config, train_records)
  total_steps = config.train.epochs * steps_per_epoch
  logging.info("training on %s (%s samples): %d steps of batch %d", config.data.trainset,
               [len(r) for r in train_records], total_steps, config.train.batch_size)

  state = state_lib.create_train_state(config, jax.random.key(config.seed), load_backbone(config))
  state = jax.device_put(state, sharding.state_sharding(state, mesh))
  ckpt = checkpoint.TrainCheckpointer(
      os.path.join(workdir, "checkpoints"), keep=config.train.keep_checkpoints,
      keep_period=config.train.save_every_epochs * steps_per_epoch)
  start_step = ckpt.latest_step() or 0
  if start_step:
    state, meta = ckpt.restore(start_step, checkpoint.abstract_like(state))
    logging.info("resumed from step %d (epoch %d) in %s", start_step, meta["epoch"], ckpt.directory)
  if start_step >= total_steps:
    ckpt.close()
    return state

  train_step = sharding.jit_train_step(saa_step.make_train_step(config), mesh, state)
  host_batches = pivot.make_train_dataset(train_records, config, start_step=start_step,
                                         data_shards=mesh.shape["data"]).as_numpy_iterator()
  batches = input_pipeline.device_batches(host_batches, mesh, prefetch=config.data.prefetch)
  in_loop_records = _in_loop_records(config)
  writer = ScalarWriter(os.path.join(workdir, "tensorboard"))

  progress = tqdm(total=total_steps, initial=start_step, desc="SAA train", unit="step", dynamic_ncols=True,
                  disable=jax.process_index() != 0)
  tick, tick_step = time.time(), start_step
  for step in range(start_step, total_steps):
    batch = next(batches)
    state, metrics = train_step(state, batch)
    done = step + 1
    epoch, epoch_end = done // steps_per_epoch, done % steps_per_epoch == 0
    if done % config.train.log_every_steps == 0 or epoch_end:  # the only host syncs of the loop
      metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
      now = time.time()
      metrics["images_per_s"] = (done - tick_step) * config.train.batch_size / max(now - tick, 1e-9)
      tick, tick_step = now, done
      writer.scalars(done, {f"train/{k}": v for k, v in metrics.items()})
      progress.set_postfix(coord=f"{metrics['loss_coord']:.3f}", adv=f"{metrics.get('loss_adv', 0.0):.3f}",
                           D=f"{metrics.get('loss_d', 0.0):.3f}", refresh=False)
    if done % config.train.checkpoint_every_steps == 0 or epoch_end:
      ckpt.save(done, state, {"step": done, "epoch": epoch, "seed": config.seed})
    if epoch_end:
      if in_loop_records is not None:
        mpjpe = _in_loop_mpjpe(config, state, in_loop_records, mesh, workdir, epoch)
        writer.scalars(done, {"val/mpjpe": mpjpe})
        if jax.process_index() == 0:
          progress.write(f"epoch {epoch}: in-loop {config.data.testset} MPJPE {mpjpe:.1f} mm")
      every = config.train.sample_images_every_epochs
      if every and epoch % every == 0:
        write_samples(writer, workdir, done, epoch, batch, config, inference_variables(state))
    progress.update(1)
  progress.close()
  ckpt.wait()
  ckpt.close()
  writer.close()
  return state


def _in_loop_records(config: ml_collections.ConfigDict):
  """The test set's sparse monitoring split (SPEC §1.4), or None when the test set has none."""
  try:
    records = readers.load(config.data.testset, config.data, config.eval.in_loop_split)
  except ValueError as error:
    logging.warning("in-loop validation disabled: %s", error)
    return None
  return records if len(records) else None


def _in_loop_mpjpe(config, state, records, mesh, workdir: str, epoch: int) -> float:
  from ahup_jax.evaluation import protocols
  metrics = protocols.run_evaluation(config, inference_variables(state), records, mesh,
                                     os.path.join(workdir, "in_loop", f"epoch_{epoch:03d}"),
                                     split=config.eval.in_loop_split)
  return float(metrics["mpjpe"])
