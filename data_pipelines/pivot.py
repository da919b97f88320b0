"""Pivoted multi-dataset batches (SPEC §1.5) and evaluation batches, as tf.data pipelines.

Each training dataset k is an endless stream of per-pass permutations (it repeats when exhausted); the sample at
stream position t is record `index_shuffle(t mod N_k, seed(k, t div N_k))`, augmented with a seed derived from
(run seed, k, t). Step s takes positions [s·b_k, (s+1)·b_k) of every stream (b_k = B // K), so the batch at step s
is a pure function of (seed, s): resuming at step s regenerates exactly what an uninterrupted run would see.
Each process reads only its contiguous slice of every sub-batch; together the processes cover the global batch.
"""
from __future__ import annotations

import math

import jax
import numpy as np
import tensorflow as tf

from data_pipelines import augment
from data_pipelines.records import Records

_NUM_STEPS_MAX = 2**40


def per_dataset_batch(config, num_datasets: int) -> int:
  """floor(B / K) samples per dataset per step (the official code's split)."""
  size = config.train.batch_size // num_datasets
  if size < 1:
    raise ValueError(f"train.batch_size={config.train.batch_size} is smaller than the {num_datasets} training sets")
  return size


def iters_per_epoch(config, records_list: list[Records]) -> int:
  """The fixed `train.iters_per_epoch`, or (≤ 0) ceil(len(leading dataset) / its per-step share) (SPEC §1.5)."""
  if config.train.iters_per_epoch > 0:
    return int(config.train.iters_per_epoch)
  iters = math.ceil(len(records_list[0]) / per_dataset_batch(config, len(records_list)))
  config.train.iters_per_epoch = iters  # the step's schedules read it
  return iters


def _process(process_index, process_count) -> tuple[int, int]:
  return (jax.process_index() if process_index is None else process_index,
          jax.process_count() if process_count is None else process_count)


def _dataset_stream(records: Records, k: int, config, start_step: int, local: int, offset: int,
                    per_step: int) -> tf.data.Dataset:
  """This process's samples of dataset k, `local` per step, from `start_step` on."""
  n = len(records)
  if n == 0:
    raise ValueError(f"training set {records.info.name} is empty")
  seed = int(config.seed)
  sample = augment.make_sample_fn(records, config, train=True)

  def positions(step):
    return step * per_step + offset + tf.range(local, dtype=tf.int64)

  def load(t):
    record = tf.random.experimental.index_shuffle(
        t % n, tf.stack([tf.constant(seed * 1000 + k, tf.int64), t // n]), n - 1)
    return sample(record, tf.stack([tf.constant(seed * 1000 + k, tf.int64), t]))

  ds = tf.data.Dataset.range(start_step, _NUM_STEPS_MAX).map(positions).unbatch()
  ds = ds.map(load, num_parallel_calls=config.data.num_parallel_calls, deterministic=True)
  if config.data.skip_bad_images:  # a counted skip with a warning per unreadable image, never a silent hole
    ds = ds.ignore_errors(log_warning=True)
  return ds.batch(local, drop_remainder=True)


def make_train_dataset(records_list: list[Records], config, start_step: int = 0, process_index: int | None = None,
                       process_count: int | None = None) -> tf.data.Dataset:
  """Host-local training batches, one per step from `start_step`; dict of image, joints_hm, vis, joint_cells,
  have_depth, is_synthetic (docs/ARCHITECTURE.md). The first dataset leads; the others repeat to match."""
  index, count = _process(process_index, process_count)
  per_step = per_dataset_batch(config, len(records_list))
  if per_step % count:
    raise ValueError(f"the per-dataset batch {per_step} (train.batch_size // {len(records_list)}) must be divisible "
                     f"by the {count} processes")
  local = per_step // count
  streams = tuple(_dataset_stream(r, k, config, start_step, local, index * local, per_step)
                  for k, r in enumerate(records_list))
  steps = tf.data.Dataset.range(start_step, _NUM_STEPS_MAX)

  def mix(step, *parts):
    batch = {key: tf.concat([p[key] for p in parts], 0) for key in parts[0]}
    order = tf.argsort(tf.random.stateless_uniform([local * len(parts)], tf.stack(
        [tf.constant(int(config.seed), tf.int64), step])))
    return {key: tf.gather(value, order) for key, value in batch.items()}

  return tf.data.Dataset.zip((steps,) + streams).map(mix).prefetch(2)


def make_eval_dataset(records: Records, config, batch_size: int, flip_test: bool, process_index: int | None = None,
                      process_count: int | None = None) -> tf.data.Dataset:
  """Fixed-size evaluation batches in record order, with `index` and `valid` (0 on the last batch's padding).

  Global batch g covers records [g·B, (g+1)·B); process p reads its contiguous B/P slice of each.
  """
  index, count = _process(process_index, process_count)
  if batch_size % count:
    raise ValueError(f"eval batch size {batch_size} must be divisible by the {count} processes")
  local = batch_size // count
  n = len(records)
  total = max(1, math.ceil(n / batch_size)) * batch_size
  ids = np.arange(total).reshape(-1, count, local)[:, index].reshape(-1)
  sample = augment.make_sample_fn(records, config, train=False, flip_test=flip_test)
  zero_seed = tf.zeros([2], tf.int64)

  def load(i):
    out = sample(tf.minimum(i, n - 1), zero_seed)
    out["index"] = tf.cast(i, tf.int32)
    out["valid"] = tf.cast(i < n, tf.float32)
    return out

  ds = tf.data.Dataset.from_tensor_slices(ids).map(load, num_parallel_calls=config.data.num_parallel_calls,
                                                   deterministic=True)
  return ds.batch(local).prefetch(2)
