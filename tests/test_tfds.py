"""TFDS builds (data_pipelines/tfds): round trips of every dataset's real-format fixture (the fixture writers of
tests/test_reader_*.py), training and evaluation batches from `data.source = "tfds"` against the files, per-process
reads, and the errors for missing inputs."""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from configs import saa
from data_pipelines import augment, pivot, readers
from data_pipelines.records import DataError
from data_pipelines.tfds import build as tfds_build
from data_pipelines.tfds import schema, source
from tests import (test_reader_human36m, test_reader_mpii, test_reader_mscoco, test_reader_muco, test_reader_mupots,
                   test_reader_scanava, test_reader_surreal)
from tests.conftest import REPO

FIELDS = schema.NUMERIC_FIELDS


def _write_human36m(realdata, root):
  test_reader_human36m._write_real(realdata, root, "current")  # S1, S5, S7, S8 real frames (train)
  test_reader_human36m._toy_subject(root, 9, [0, 64, 640, 700])  # test subjects, current and older release
  test_reader_human36m._toy_subject(root, 11, [0, 64, 128], "older")


# dataset → (fixture writer (realdata, root), whether it needs realdata)
FIXTURES = {
    "Human36M": (_write_human36m, True),
    "MuCo": (test_reader_muco._write, True),
    "MuPoTS": (test_reader_mupots._write, True),
    "MSCOCO": (test_reader_mscoco._write, True),
    "MPII": (test_reader_mpii._write, True),
    "ScanAva": (lambda realdata, root: test_reader_scanava._pool(root), False),
    "SURREAL": (lambda realdata, root: test_reader_surreal._pool(root), False),
}


def _data_config(root, **overrides):
  config = saa.get_config()
  config.data.root = str(root)
  config.data.tfds_dir = str(root / "tfds")
  config.data.update(overrides)
  return config


IMAGE_SIZES = {"ScanAva": (512, 512), "SURREAL": (240, 320)}  # (height, width) of generated images; else 96×128


def _complete_images(name, records, realdata, image_format: str) -> None:
  """An image at every record path that has none: the real file of the same name in realdata's mmpose folder,
  else a generated one (the readers' fixtures write annotations; the builders also read the images)."""
  real = {}
  if realdata is not None:
    for folder, _, files in os.walk(realdata / "mmpose"):
      real.update({name: os.path.join(folder, name) for name in files})
  rng = np.random.default_rng(0)
  for path in sorted(set(records.img_path)):
    if os.path.exists(path):
      continue
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.basename(path) in real and image_format == "jpeg":
      shutil.copy(real[os.path.basename(path)], path)
      continue
    height, width = IMAGE_SIZES.get(name, (96, 128))
    pixels = np.kron(rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8),
                     np.ones((16, 16, 1), np.uint8))  # 16-px blocks: edges, small files
    encode = tf.io.encode_png if image_format == "png" else tf.io.encode_jpeg
    tf.io.write_file(path, encode(pixels))


def _write_and_build(name, root, realdata, **overrides) -> tuple:
  """The fixture of `name` under root/, its images completed, built into root/tfds; (config, build path)."""
  writer, _ = FIXTURES[name]
  writer(realdata, root)
  config = _data_config(root, **overrides)
  cls = source.builder_class(name)
  for split in cls.SPLITS:
    _complete_images(name, readers.load(name, config.data, split), realdata, cls.IMAGE_FORMAT)
  return config, tfds_build.build(name, config.data)


def _realdata(name, request):
  return request.getfixturevalue("realdata") if FIXTURES[name][1] else None


def _tfds(config):
  config = config.copy_and_resolve_references()
  config.data.source = "tfds"
  return config


def assert_same_records(expected, actual):
  for field in FIELDS:
    value, want = getattr(actual, field), getattr(expected, field)
    assert value.dtype == want.dtype, field
    np.testing.assert_array_equal(value, want, err_msg=field)
  for field in ("name", "is_synthetic", "have_depth", "group_names"):
    assert getattr(actual.info, field) == getattr(expected.info, field), field
  np.testing.assert_array_equal(actual.info.joint_defined, expected.info.joint_defined)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_round_trip_of_the_real_format_fixture(name, tmp_path, request):
  realdata = _realdata(name, request)
  config, path = _write_and_build(name, tmp_path, realdata)
  cls = source.builder_class(name)
  assert path == source.build_path(name, config.data) and path.startswith(str(tmp_path / "tfds" / cls.name))
  builder = tfds.builder_from_directory(path)
  assert str(builder.info.version) == str(schema.VERSION) and builder.info.release_notes == schema.RELEASE_NOTES
  assert builder.info.features["image"].encoding_format == cls.IMAGE_FORMAT
  for split in cls.SPLITS + tuple(cls.SPLIT_ALIASES):
    files = readers.load(name, config.data, split)
    stored = readers.load(name, _tfds(config).data, split)
    assert_same_records(files, stored)
    folder = os.path.join(tmp_path, readers.READERS[name][1])
    # the examples themselves hold the same fields and the unchanged image bytes (ArrayRecord: read by index)
    examples = builder.as_data_source(split=cls.SPLIT_ALIASES.get(split, split),
                                      decoders={"image": tfds.decode.SkipDecoding()})
    assert len(examples) == len(files)
    for i in range(len(files)):
      example = examples[i]
      for field in FIELDS:
        np.testing.assert_array_equal(example[field], getattr(files, field)[i], err_msg=f"{field} of example {i}")
      assert example["file_name"].decode() == os.path.relpath(files.img_path[i], folder)
      assert example["image"] == pathlib.Path(files.img_path[i]).read_bytes()
    # the image references decode to the file's pixels
    for i in (0, len(files) - 1):
      np.testing.assert_array_equal(augment.load_image(tf.constant(stored.img_path[i])),
                                    augment.load_image(tf.constant(files.img_path[i])))


@pytest.mark.parametrize("name,overrides", [("ScanAva", dict(rt_SYN=2)), ("SURREAL", dict(rt_SYN=2)),
                                            ("MSCOCO", dict(jo2d=False)), ("MPII", dict(jo2d=False))])
def test_config_selections_apply_to_the_tfds_records(name, overrides, tmp_path, request):
  """rt_SYN and jo2d select from one build (the same records as the files with those values)."""
  config, _ = _write_and_build(name, tmp_path, _realdata(name, request))
  config.data.update(overrides)
  files = readers.load(name, config.data, "train")
  default = readers.load(name, _data_config(tmp_path).data, "train")
  if "rt_SYN" in overrides:
    assert 0 < len(files) < len(default)
  else:
    assert default.joint_vis.any() and not files.joint_vis.any()
  assert_same_records(files, readers.load(name, _tfds(config).data, "train"))


def test_first_training_batches_equal_the_files_ones(realdata, tmp_path):
  """ScanAva + MSCOCO + MPII with full SPEC §5.1 augmentation: the same batches, bit for bit."""
  for name in ("ScanAva", "MSCOCO", "MPII"):
    config, _ = _write_and_build(name, tmp_path, realdata if FIXTURES[name][1] else None)
  config.model.input_size, config.model.depth_bins = 64, 16
  config.data.augment = augment.SPEC_AUGMENTATION.copy_and_resolve_references()
  config.train.batch_size = 6

  def batches(cfg):
    records = [readers.load(name, cfg.data, "train") for name in cfg.data.trainset]
    iterator = pivot.make_train_dataset(records, cfg, process_index=0, process_count=1).as_numpy_iterator()
    return [next(iterator) for _ in range(2)]

  for from_files, from_tfds in zip(batches(config), batches(_tfds(config))):
    assert from_files.keys() == from_tfds.keys()
    for key in from_files:
      np.testing.assert_array_equal(from_tfds[key], from_files[key], err_msg=key)
  assert from_files["image"].std() > 1.0  # real crops, not a zero border


def test_two_processes_read_disjoint_parts_covering_every_example(realdata, tmp_path):
  """MSCOCO's 10 records, one global batch of 10 = one pass: process p of 2 reads 5 of them, each exactly once;
  the same for evaluation batches (which also equal the single-process ones)."""
  config, _ = _write_and_build("MSCOCO", tmp_path, realdata)
  config = _tfds(config)
  config.data.trainset = ("MSCOCO",)
  config.model.input_size, config.model.depth_bins = 64, 16
  config.data.augment.update(scale=0.0, rotation_prob=0.0, flip_prob=0.0, colour=0.0, occlusion_prob=0.0)
  records = readers.load("MSCOCO", config.data, "train")
  n = len(records)
  config.train.batch_size = n
  targets, _ = augment.gt_hm_poses(records, config.model)  # [n, 17, 3]: identifies the record of a sample
  read = []
  for process in range(2):
    batch = next(pivot.make_train_dataset([records], config, process_index=process,
                                          process_count=2).as_numpy_iterator())
    distance = np.abs(batch["joints_hm"][:, None] - targets[None]).max(axis=(2, 3))  # [n/2, n]
    assert (distance.min(1) < 1e-4).all()
    read.append(distance.argmin(1))
  assert len(set(read[0]) & set(read[1])) == 0
  assert sorted(np.concatenate(read)) == list(range(n))

  whole = next(pivot.make_eval_dataset(records, config, n, flip_test=False, process_index=0,
                                       process_count=1).as_numpy_iterator())
  indices = []
  for process in range(2):
    batch = next(pivot.make_eval_dataset(records, config, n, flip_test=False, process_index=process,
                                         process_count=2).as_numpy_iterator())
    valid = batch["valid"] > 0
    indices.append(batch["index"][valid])
    np.testing.assert_array_equal(batch["image"][valid], whole["image"][batch["index"][valid]])
  assert len(set(indices[0]) & set(indices[1])) == 0 and sorted(np.concatenate(indices)) == list(range(n))
  with pytest.raises(ValueError, match=r"MSCOCO has no 'test' split \(its TFDS build holds train\)"):
    readers.load("MSCOCO", config.data, "test")


def test_missing_manual_dir_names_the_folder_and_the_instructions(tmp_path):
  config = _data_config(tmp_path / "nowhere", tfds_dir=str(tmp_path / "tfds"))
  instructions = source.builder_class("ScanAva").MANUAL_DOWNLOAD_INSTRUCTIONS
  assert "ScanAva_1119/" in instructions and "scanava_raw.npy" in instructions
  with pytest.raises(AssertionError) as error:  # TFDS's own check: the manual_dir does not exist
    tfds_build.build("ScanAva", config.data)
  assert str(tmp_path / "nowhere") in str(error.value) and instructions.strip() in str(error.value)
  os.makedirs(tmp_path / "data" / "MPII")  # a manual_dir without the dataset's folder
  with pytest.raises(DataError) as error:
    tfds_build.build("ScanAva", _data_config(tmp_path / "data").data)
  assert str(tmp_path / "data" / "ScanAva_1119") in str(error.value) and instructions in str(error.value)


def test_an_unbuilt_dataset_says_how_to_build_it(tmp_path):
  config = _tfds(_data_config(tmp_path, h36m_protocol=1))
  with pytest.raises(DataError) as error:
    readers.load("Human36M", config.data, "test")
  message = str(error.value)
  assert os.path.join(tmp_path, "tfds", "human36m", "protocol1", str(schema.VERSION)) in message
  assert "python -m data_pipelines.tfds.build --datasets=Human36M" in message and "--tfds_config=protocol1" in message
  config.data.h36m_protocol = 3
  with pytest.raises(ValueError, match=r"no TFDS build of human36m for data.h36m_protocol=3"):
    readers.load("Human36M", config.data, "test")


def test_an_image_of_another_format_names_the_file(tmp_path):
  config, _ = _write_and_build("SURREAL", tmp_path, None)
  frame = readers.load("SURREAL", config.data, "test").img_path[0]
  tf.io.write_file(frame, tf.io.encode_jpeg(np.zeros((8, 8, 3), np.uint8)))
  with pytest.raises(DataError, match=re.escape(f"{frame} is not a PNG file")):
    tfds_build.build("SURREAL", config.data, overwrite=True)


def test_command_line_builds(realdata, tmp_path):
  """`python -m data_pipelines.tfds.build` and the TFDS CLI's discovery of `data_pipelines/tfds/<name>/` (what
  `tfds build data_pipelines/tfds/mpii` runs; the CLI itself needs apache-beam, which is not pinned)."""
  test_reader_mpii._write(realdata, tmp_path)
  config = _data_config(tmp_path)
  _complete_images("MPII", readers.load("MPII", config.data, "train"), realdata, "jpeg")
  env = dict(os.environ, PYTHONPATH=str(REPO))
  subprocess.run([sys.executable, "-m", "data_pipelines.tfds.build", "--datasets=MPII", "--config=configs/saa.py",
                  f"--manual_dir={tmp_path}", f"--data_dir={tmp_path / 'tfds'}"], cwd=REPO, env=env, check=True)
  assert_same_records(readers.load("MPII", config.data, "train"), readers.load("MPII", _tfds(config).data, "train"))
  cli = ("from tensorflow_datasets.scripts.cli import build\n"
         "import tensorflow_datasets as tfds\n"
         "cls, kwargs = build._get_builder_cls_and_kwargs('data_pipelines/tfds/mpii', has_imports=False)\n"
         f"assert cls.name == 'mpii' and cls.__module__ == 'mpii.mpii_dataset_builder', cls.__module__\n"
         f"builder = cls(config='product', data_dir={str(tmp_path / 'cli')!r}, **kwargs)\n"
         f"builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir={str(tmp_path)!r}))\n")
  subprocess.run([sys.executable, "-c", cli], cwd=REPO, env=env, check=True)
  config.data.update(mpii_torso_vis="product", tfds_dir=str(tmp_path / "cli"))
  assert_same_records(readers.load("MPII", config.data, "train"), readers.load("MPII", _tfds(config).data, "train"))
