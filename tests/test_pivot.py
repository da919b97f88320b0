"""Pivoted training batches (SPEC §1.5): composition, repetition, flags, determinism, resume, process shards;
evaluation batches; bad images. Every record carries its id in its root depth, which augmentation leaves intact."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import tensorflow as tf

from configs import saa
from data_pipelines import augment, pivot
from data_pipelines.records import DatasetInfo, Records

SIZES = {"A": 4, "B": 2, "C": 6}   # A leads; b_k = 2 with batch 6
FLAGS = {"A": (True, True), "B": (False, False), "C": (False, True)}  # (is_synthetic, have_depth)


def _config(batch_size=6, seed=0, skip_bad_images=False):
  config = saa.get_config()
  config.seed = seed
  config.model.input_size, config.model.depth_bins = 64, 16
  config.train.batch_size = batch_size
  config.data.skip_bad_images = skip_bad_images
  return config


def _image(path, value=120) -> str:
  tf.io.write_file(str(path), tf.io.encode_jpeg(np.full((80, 96, 3), value, np.uint8)))
  return str(path)


def _records(name: str, first_id: int, paths: list[str]) -> Records:
  n = len(paths)
  synthetic, depth = FLAGS.get(name, (False, True))
  joint_img = np.tile(np.array([[48.0, 40.0, 0.0]], np.float32), (n, 17, 1))
  joint_img[:, 0, 2] = 20.0 * (first_id + np.arange(n)) - 900.0  # root depth (mm) = record id
  return Records(DatasetInfo(name, synthetic, depth, np.ones(17, bool)), np.array(paths, object),
                 np.tile(np.array([[16.0, 8.0, 64.0, 64.0]], np.float32), (n, 1)), joint_img,
                 np.ones((n, 17), np.float32), np.zeros((n, 17, 3), np.float32), np.zeros((n, 3), np.float32),
                 np.ones((n, 2), np.float32), np.ones((n, 2), np.float32), -np.ones(n, np.int32), np.arange(n))


@pytest.fixture(scope="module")
def train_sets(tmp_path_factory) -> list[Records]:
  folder = tmp_path_factory.mktemp("images")
  first_ids = np.cumsum([0] + list(SIZES.values()))
  return [_records(name, first, [_image(folder / f"{name}{i}.jpg", 40 * i) for i in range(n)])
          for (name, n), first in zip(SIZES.items(), first_ids)]


def _ids(batch) -> np.ndarray:
  """Record ids (A: 0–3, B: 4–5, C: 6–11) from the root depth bin."""
  z_mm = (batch["joints_hm"][:, 0, 2] / 16 * 2 - 1) * 1000
  return np.round((z_mm + 900) / 20).astype(int)


def _batches(records, config, steps, **kwargs) -> list[dict]:
  iterator = pivot.make_train_dataset(records, config, **kwargs).as_numpy_iterator()
  return [next(iterator) for _ in range(steps)]


def _sample_keys(batch) -> list[bytes]:
  return sorted(batch["image"][i].tobytes() + batch["joints_hm"][i].tobytes() for i in range(len(batch["image"])))


def test_composition_repetition_and_flags(train_sets):
  batches = _batches(train_sets, _config(), 6, process_index=0, process_count=1)
  owner = np.repeat([0, 1, 2], list(SIZES.values()))
  for batch in batches:
    assert batch["image"].shape == (6, 64, 64, 3) and batch["joint_cells"].dtype == np.int32
    ids = _ids(batch)
    np.testing.assert_array_equal(np.bincount(owner[ids], minlength=3), [2, 2, 2])
    expected = np.array([FLAGS[name] for name in SIZES], np.float32)[owner[ids]]
    np.testing.assert_array_equal(batch["is_synthetic"], expected[:, 0])
    np.testing.assert_array_equal(batch["have_depth"], expected[:, 1])
  ids_by_step = [_ids(b) for b in batches]
  first_id = 0
  for k, (name, n) in enumerate(SIZES.items()):
    steps_per_pass = n // 2
    for start in range(0, 6, steps_per_pass):  # every pass is a permutation of the whole dataset: B repeats 6×
      seen = np.concatenate([ids[owner[ids] == k] for ids in ids_by_step[start:start + steps_per_pass]])
      np.testing.assert_array_equal(np.sort(seen), first_id + np.arange(n), err_msg=name)
    first_id += n
  assert len({tuple(_ids(b)) for b in batches}) > 1  # the concatenated sub-batches are permuted


def test_resume_and_seed_determinism(train_sets):
  config = _config()
  first = _batches(train_sets, config, 4, process_index=0, process_count=1)
  resumed = _batches(train_sets, config, 1, start_step=3, process_index=0, process_count=1)[0]
  for key in first[3]:
    np.testing.assert_array_equal(first[3][key], resumed[key], err_msg=key)
  other_seed = _batches(train_sets, _config(seed=1), 1, process_index=0, process_count=1)[0]
  assert not np.array_equal(first[0]["image"], other_seed["image"])


def test_two_processes_cover_the_global_batch_once(train_sets):
  config = _config()
  single = _batches(train_sets, config, 3, process_index=0, process_count=1)
  shards = [_batches(train_sets, config, 3, process_index=p, process_count=2) for p in (0, 1)]
  for step in range(3):
    local = [shards[p][step] for p in (0, 1)]
    assert all(len(b["image"]) == 3 for b in local)
    np.testing.assert_array_equal(np.bincount(np.concatenate([_ids(b) for b in local]) >= 4), [2, 4])
    assert sorted(_sample_keys(local[0]) + _sample_keys(local[1])) == _sample_keys(single[step])
  with pytest.raises(ValueError, match="divisible by the 3 processes"):
    pivot.make_train_dataset(train_sets, config, process_index=0, process_count=3)


def test_global_batch_depends_on_the_data_shards_not_the_processes(train_sets):
  """1 process feeding 2 data shards (devices) builds, row for row, the 2 processes' batches one after the other:
  each device sees the same rows whichever way the devices are spread over processes."""
  config = _config()
  one = _batches(train_sets, config, 2, process_index=0, process_count=1, data_shards=2)
  two = [_batches(train_sets, config, 2, process_index=p, process_count=2, data_shards=2) for p in (0, 1)]
  for step in range(2):
    for key in one[step]:
      np.testing.assert_array_equal(one[step][key], np.concatenate([two[0][step][key], two[1][step][key]]))
  assert _sample_keys(one[0]) == _sample_keys(_batches(train_sets, config, 1, process_index=0, process_count=1)[0])
  with pytest.raises(ValueError, match="divisible by the 4 data shards"):
    pivot.make_train_dataset(train_sets, config, process_index=0, process_count=1, data_shards=4)
  with pytest.raises(ValueError, match="multiple of the 2 processes"):
    pivot.make_train_dataset(train_sets, config, process_index=0, process_count=2, data_shards=3)


def test_iters_per_epoch(train_sets):
  config = _config()
  assert pivot.iters_per_epoch(config, train_sets) == 2500
  config.train.iters_per_epoch = 0
  assert pivot.iters_per_epoch(config, train_sets[::-1]) == 3  # ceil(6 / 2), C leads
  assert config.train.iters_per_epoch == 3
  with pytest.raises(ValueError, match="smaller than the 3 training sets"):
    pivot.per_dataset_batch(_config(batch_size=2), 3)


def test_eval_batches_and_process_shards(train_sets):
  records, config = train_sets[2].subset(slice(0, 5)), _config()
  whole = list(pivot.make_eval_dataset(records, config, 4, True, process_index=0, process_count=1)
               .as_numpy_iterator())
  np.testing.assert_array_equal([b["index"] for b in whole], [[0, 1, 2, 3], [4, 4, 4, 4]])
  np.testing.assert_array_equal([b["valid"] for b in whole], [[1, 1, 1, 1], [1, 0, 0, 0]])
  expected = augment.eval_sample(augment.load_image(records.img_path[2]), records.bbox[2], config.model, True)
  np.testing.assert_array_equal(whole[0]["image"][2], expected["image"].numpy())
  np.testing.assert_array_equal(whole[0]["image_flip"][2], expected["image_flip"].numpy())
  shards = [list(pivot.make_eval_dataset(records, config, 4, False, process_index=p, process_count=2)
                 .as_numpy_iterator()) for p in (0, 1)]
  np.testing.assert_array_equal([b["index"] for b in shards[0]], [[0, 1], [4, 4]])
  np.testing.assert_array_equal([b["index"] for b in shards[1]], [[2, 3], [4, 4]])
  np.testing.assert_array_equal([b["valid"] for b in shards[1]], [[1, 1], [0, 0]])
  assert "image_flip" not in shards[0][0]


@pytest.mark.parametrize("problem", ["missing", "truncated"])
def test_bad_image_error_names_the_file(train_sets, tmp_path, problem):
  bad = tmp_path / "bad.jpg"
  if problem == "truncated":
    bad.write_bytes(tf.io.encode_jpeg(np.zeros((80, 96, 3), np.uint8)).numpy()[:200])
  broken = _records("A", 0, list(train_sets[0].img_path[:3]) + [str(bad)])
  with pytest.raises(tf.errors.OpError, match="bad.jpg"):
    _batches([broken], _config(batch_size=4), 2, process_index=0, process_count=1)
  with pytest.raises(tf.errors.OpError, match="bad.jpg"):
    list(pivot.make_eval_dataset(broken, _config(), 4, False, 0, 1).as_numpy_iterator())


def test_skip_bad_images_substitutes_the_next_record_with_a_warning(train_sets, tmp_path, caplog):
  broken = _records("A", 0, list(train_sets[0].img_path[:3]) + [str(tmp_path / "missing.jpg")])
  with caplog.at_level(logging.WARNING):
    batches = _batches([broken], _config(batch_size=4, skip_bad_images=True), 2, process_index=0, process_count=1)
  ids = np.concatenate([_ids(b) for b in batches])
  np.testing.assert_array_equal(np.bincount(ids), [4, 2, 2])  # two passes; record 3 → record 0 both times
  assert "missing.jpg" in caplog.text and "1 skipped so far" in caplog.text
