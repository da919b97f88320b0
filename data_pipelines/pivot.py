"""Pivoted multi-dataset training batches (SPEC §1.5, Appendix B step 1) and evaluation batches, as tf.data.

Training set k (K sets, the first leads) is an endless stream: pass q is a fresh permutation of its records
(`index_shuffle` seeded by (seed, k, q)), so it repeats when exhausted. Step s takes stream positions
t ∈ [s·b_k, (s+1)·b_k), b_k = batch_size // K, augmented with a seed derived from (seed, k, t): the batch at step s is a
pure function of (config, s), and resuming at `start_step` regenerates exactly the batches that follow. Process p of
P reads the contiguous slice [p·b_k/P, (p+1)·b_k/P) of every sub-batch; its local batch is then permuted by a seed of
(seed, p, s). Unreadable images fail with an error naming the file, or with `data.skip_bad_images` are replaced by
the next readable record of the same dataset with a counted warning (the stream positions stay put).
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from data_pipelines import augment
from data_pipelines.records import DataError, Records

PERMUTATION, AUGMENTATION, BATCH_ORDER = 0, 1, 2  # seed purposes, folded into the run seed
MAX_SUBSTITUTES = 16  # readable records tried after an unreadable one (skip_bad_images)


def per_dataset_batch(config: ml_collections.ConfigDict, num_datasets: int) -> int:
  """b_k = floor(B / K) samples of every training set per step (SPEC §1.5, §9 #1)."""
  size = config.train.batch_size // num_datasets
  if size < 1:
    raise ValueError(f"train.batch_size={config.train.batch_size} is smaller than the {num_datasets} training sets")
  return size


def iters_per_epoch(config: ml_collections.ConfigDict, records_list: list[Records]) -> int:
  """The fixed `train.iters_per_epoch`, or (≤ 0) ceil(len(leading set) / b_k) (SPEC §1.5).

  A derived value is written back to `config.train.iters_per_epoch`: the step's LR schedule reads it from there.
  """
  if config.train.iters_per_epoch > 0:
    return int(config.train.iters_per_epoch)
  iters = math.ceil(len(records_list[0]) / per_dataset_batch(config, len(records_list)))
  config.train.iters_per_epoch = iters
  return iters


def _process(process_index: int | None, process_count: int | None) -> tuple[int, int]:
  return (jax.process_index() if process_index is None else process_index,
          jax.process_count() if process_count is None else process_count)


def _seed(config_seed: int, purpose: int, *data: tf.Tensor) -> tf.Tensor:
  """A [2] stateless seed for one purpose, folded with `data` (dataset, pass / position / step...)."""
  seed = tf.random.experimental.stateless_fold_in(tf.constant([config_seed, purpose], tf.int64), 0)
  for value in data:
    seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(value, tf.int64))
  return seed


# ----------------------------------------------------------------------------------------------- record tables
def _record_table(records_list: list[Records]) -> dict[str, tf.Tensor]:
  """The fields samples need, all datasets concatenated (row = offset[k] + record index), as graph constants."""
  for records in records_list:
    if len(records) == 0:
      raise DataError(f"{records.info.name}: no records to build batches from")
  cat = lambda field, dtype: tf.constant(np.concatenate([getattr(r, field) for r in records_list]), dtype)  # noqa: E731
  sizes = [len(r) for r in records_list]
  return dict(
      img_path=tf.constant([str(p).encode() for r in records_list for p in r.img_path], tf.string),
      bbox=cat("bbox", tf.float32), joint_img=cat("joint_img", tf.float32), joint_vis=cat("joint_vis", tf.float32),
      offset=tf.constant(np.cumsum([0] + sizes[:-1]), tf.int64), size=tf.constant(sizes, tf.int64),
      joint_defined=tf.constant(np.stack([r.info.joint_defined for r in records_list]), tf.bool),
      have_depth=tf.constant([float(r.info.have_depth) for r in records_list], tf.float32),
      is_synthetic=tf.constant([float(r.info.is_synthetic) for r in records_list], tf.float32),
  )


def _record(table: dict[str, tf.Tensor], k: tf.Tensor, index: tf.Tensor) -> dict[str, tf.Tensor]:
  """Record `index` of dataset k plus its dataset's info, the input of `augment.train_sample`."""
  row = table["offset"][k] + index
  return dict(bbox=table["bbox"][row], joint_img=table["joint_img"][row], joint_vis=table["joint_vis"][row],
              joint_defined=table["joint_defined"][k], have_depth=table["have_depth"][k],
              is_synthetic=table["is_synthetic"][k])


def _first_readable(paths: tf.Tensor) -> tf.data.Dataset:
  """One element (j, image [H, W, 3] uint8): the first of `paths` [M] that reads and decodes.

  Read/decode failures are logged by tf.data; when all M fail, the error names the first file (tf's own
  decode errors do not name it).
  """
  def fail(path):
    check = tf.debugging.Assert(False, ["could not read or decode image", path], summarize=1)
    with tf.control_dependencies([check]):
      return tf.constant(-1, tf.int64), tf.zeros([0, 0, 3], tf.uint8)

  attempts = tf.data.Dataset.from_tensor_slices((tf.range(tf.size(paths, out_type=tf.int64)), paths))
  attempts = attempts.map(lambda j, path: (j, augment.load_image(path))).ignore_errors(log_warning=True)
  return attempts.concatenate(tf.data.Dataset.from_tensors(paths[0]).map(fail)).take(1)


def _read_in_order(refs: tf.data.Dataset, paths_of: Callable[[dict], tf.Tensor],
                   config: ml_collections.ConfigDict) -> tf.data.Dataset:
  """(ref, j, image) per ref, in order, reading in parallel; j indexes the path of `paths_of(ref)` that was read."""
  def read(ref):
    return _first_readable(paths_of(ref)).map(lambda j, image: (ref, j, image))

  return refs.interleave(read, cycle_length=tf.data.AUTOTUNE, block_length=1,
                         num_parallel_calls=config.data.num_parallel_calls, deterministic=True)


def _skip_warner(names: list[str]) -> Callable:
  """A py_function body that counts substituted unreadable images and warns for each."""
  skipped = [0]

  def warn(k, path, substitute_path, count):
    skipped[0] += int(count)
    logging.warning("skip_bad_images: %d unreadable %s image(s) from %s on, replaced by %s (%d skipped so far)",
                    int(count), names[int(k)], path.numpy().decode(), substitute_path.numpy().decode(), skipped[0])
    return 0

  return warn


# ----------------------------------------------------------------------------------------------- training
def make_train_dataset(records_list: list[Records], config: ml_collections.ConfigDict, start_step: int = 0,
                       process_index: int | None = None, process_count: int | None = None,
                       data_shards: int | None = None) -> tf.data.Dataset:
  """Endless host-local training batches from step `start_step` on (SPEC §1.5).

  Each element: image [L, S, S, 3] float32, joints_hm [L, 17, 3], vis [L, 17], joint_cells [L, 17, 2] int32,
  have_depth [L], is_synthetic [L] (docs/ARCHITECTURE.md), L = K·b_k / process_count; have_depth and
  is_synthetic come from each sample's dataset.

  The global batch is `data_shards` (default: the process count; the trainer passes the mesh's "data" size)
  blocks of K·b_k / data_shards rows, each its own shuffle of b_k / data_shards samples of every set; a process
  supplies the consecutive blocks of its devices. So the global batch, row for row, and hence every device's
  shard of it, depend on the number of data shards only, not on how the devices are spread over processes:
  2 processes × 1 device train exactly like 1 process × 2 devices (tests/test_multihost.py).
  """
  index, count = _process(process_index, process_count)
  shards = count if data_shards is None else int(data_shards)
  num_sets = len(records_list)
  per_step = per_dataset_batch(config, num_sets)
  if shards < 1 or shards % count:
    raise ValueError(f"the {shards} data shards (mesh.data) must be a multiple of the {count} processes")
  if per_step % shards:
    what = f"{count} processes" if shards == count else f"{shards} data shards (mesh.data)"
    raise ValueError(f"the per-dataset batch {per_step} (train.batch_size {config.train.batch_size} // "
                     f"{num_sets} training sets) must be divisible by the {what}; choose train.batch_size = "
                     f"{num_sets}·{shards}·m")
  local = per_step // shards          # samples of each set in one shard
  shard_batch = local * num_sets      # rows of one shard
  shards_here = shards // count       # shards this process supplies
  local_batch = shard_batch * shards_here
  table = _record_table(records_list)
  seed = int(config.seed)
  substitutes = MAX_SUBSTITUTES if config.data.skip_bad_images else 1
  warn = _skip_warner([r.info.name for r in records_list])

  def locate(n):
    """The n-th sample of this process's stream: dataset k, stream position, drawn record."""
    step = start_step + n // local_batch
    row = n % local_batch
    shard = index * shards_here + row // shard_batch
    k = (row % shard_batch) // local
    position = step * per_step + shard * local + row % local
    size = table["size"][k]
    record = tf.random.experimental.index_shuffle(position % size, _seed(seed, PERMUTATION, k, position // size),
                                                  size - 1)
    return dict(k=k, position=position, record=record)

  def candidates(ref):
    """The drawn record, then (skip_bad_images) the next ones of the same dataset."""
    return (ref["record"] + tf.range(substitutes, dtype=tf.int64)) % table["size"][ref["k"]]

  def path(k, record):
    return tf.gather(table["img_path"], table["offset"][k] + record)

  def sample(ref, j, image):
    k, used = ref["k"], candidates(ref)[j]
    if substitutes > 1:  # count and warn, host side
      tf.cond(j > 0, lambda: tf.py_function(warn, [k, path(k, ref["record"]), path(k, used), j], tf.int32),
              lambda: tf.constant(0))
    return augment.train_sample(image, _record(table, k, used), _seed(seed, AUGMENTATION, k, ref["position"]),
                                config.model, config.adapt, config.data.get("augment"))

  def shuffle(step, batch):
    """Each shard's rows in their own order (seeded by the global shard index and the step)."""
    order = tf.concat([
        j * shard_batch + tf.random.experimental.index_shuffle(
            tf.range(shard_batch, dtype=tf.int64), _seed(seed, BATCH_ORDER, index * shards_here + j, step),
            shard_batch - 1) for j in range(shards_here)], axis=0)
    return {key: tf.gather(value, order) for key, value in batch.items()}

  refs = tf.data.Dataset.counter().map(locate)
  ds = _read_in_order(refs, lambda ref: path(ref["k"], candidates(ref)), config)
  ds = ds.map(sample, num_parallel_calls=config.data.num_parallel_calls, deterministic=True)
  ds = ds.batch(local_batch, drop_remainder=True).enumerate(start_step).map(shuffle)
  return ds.prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------------------------- evaluation
def make_eval_dataset(records: Records, config: ml_collections.ConfigDict, batch_size: int, flip_test: bool,
                      process_index: int | None = None, process_count: int | None = None) -> tf.data.Dataset:
  """Fixed-size host-local evaluation batches (no augmentation, SPEC §6.1) covering every record once.

  Global batch g holds records [g·B, (g+1)·B) in order; process p reads its contiguous B/P slice. Each element:
  image [B/P, S, S, 3] (+ image_flip), index [B/P] int32 record index, valid [B/P] float32 (0 on the padding of
  the last batch, whose index repeats the last record). Unreadable images always fail, naming the file.
  """
  process, count = _process(process_index, process_count)
  if batch_size % count:
    raise ValueError(f"eval batch size {batch_size} must be divisible by the {count} processes")
  local = batch_size // count
  n = len(records)
  table = _record_table([records])

  def locate(i):
    position = (i // local) * batch_size + process * local + i % local
    return dict(position=position, record=tf.minimum(position, n - 1))

  def sample(ref, j, image):
    out = augment.eval_sample(image, table["bbox"][ref["record"]], config.model, flip_test)
    return dict(out, index=tf.cast(ref["record"], tf.int32), valid=tf.cast(ref["position"] < n, tf.float32))

  refs = tf.data.Dataset.range(math.ceil(n / batch_size) * local).map(locate)
  ds = _read_in_order(refs, lambda ref: table["img_path"][ref["record"]][None], config)
  ds = ds.map(sample, num_parallel_calls=config.data.num_parallel_calls, deterministic=True)
  return ds.batch(local).prefetch(tf.data.AUTOTUNE)
