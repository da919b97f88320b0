"""Reading the TFDS builds (`config.data.source = "tfds"`): Records from `records_<split>.npz`, images by reference.

A record loaded from TFDS has the image reference `tfds:<version folder>/<split>[<example index>]#<file name>` as
its `img_path`; `augment.load_image` reads such a reference with `read_encoded` (one ArrayRecord read of the
example, then its `image` feature), any other string as a file path. Everything downstream (pivoted batches,
augmentation, evaluation) is unchanged, so a TFDS batch equals the file batch of the same seed and step, and each
process reads exactly the examples of its part of every batch (data_pipelines/pivot.py).

The build a config reads: <tfds_dir>/<builder>/<builder config>/<VERSION>, the builder config being the one whose
`data` fields equal the config's (e.g. human36m/protocol2 for data.h36m_protocol = 2, data.use_gt_info = True).
"""
from __future__ import annotations

import importlib
import os
import re
import threading

import numpy as np
import tensorflow as tf
from etils import epath

from data_pipelines import readers
from data_pipelines.records import DataError, Records

PREFIX = "tfds:"
_REFERENCE = re.compile(r"^tfds:([^#]+)/(\w+)\[(\d+)\](?:#.*)?$", re.DOTALL)
_SOURCES: dict = {}
_SOURCES_LOCK = threading.Lock()


def builder_class(name: str) -> type:
  """The TFDS builder class of dataset `name` (a `readers.READERS` name)."""
  readers.check_name_and_split(name, "train")
  module = readers.READERS[name][0]
  return importlib.import_module(f"data_pipelines.tfds.{module}.{module}_dataset_builder").Builder


def builder_config(builder_cls: type, data_cfg) -> str | None:
  """The name of the builder config whose `data` fields equal `data_cfg`'s (None for builders without configs)."""
  configs = builder_cls.BUILDER_CONFIGS
  if not configs:
    return None
  for config in configs:
    if all(data_cfg.get(key) == value for key, value in config.data.items()):
      return config.name
  fields = ", ".join(f"data.{key}={data_cfg.get(key)!r}" for key in sorted({k for c in configs for k in c.data}))
  raise ValueError(f"no TFDS build of {builder_cls.name} for {fields}; its builds: "
                   f"{', '.join(f'{c.name} ({c.data})' for c in configs)}")


def tfds_dir(data_cfg) -> str:
  """`data.tfds_dir` (a local folder or a bucket URL such as gs://bucket/tfds), or <data.root>/tfds when empty."""
  path = data_cfg.get("tfds_dir") or os.path.join(data_cfg.root, "tfds")
  return path if "://" in path else os.path.abspath(path)


def build_path(name: str, data_cfg) -> str:
  """The version folder of the build of `name` that `data_cfg` reads."""
  cls = builder_class(name)
  config = builder_config(cls, data_cfg)
  return os.path.join(tfds_dir(data_cfg), cls.name, *([config] if config else []), str(cls.VERSION))


def build_command(name: str, data_cfg) -> str:
  cls = builder_class(name)
  config = builder_config(cls, data_cfg)
  return (f"python -m data_pipelines.tfds.build --datasets={name} --manual_dir={os.path.abspath(data_cfg.root)} "
          f"--data_dir={tfds_dir(data_cfg)}" + (f" --tfds_config={config}" if config else ""))


def load(name: str, data_cfg, split: str) -> Records:
  """The records of `split` of the TFDS build of `name` for `data_cfg` (before `readers.select`)."""
  cls = builder_class(name)
  path = build_path(name, data_cfg)
  if not (epath.Path(path) / "dataset_info.json").exists():
    raise DataError(f"{name}: no TFDS build at {path} (data.source='tfds'). Build it from the dataset folder "
                    f"with:\n  {build_command(name, data_cfg)}\nor point --config.data.tfds_dir at the data_dir it was "
                    "built into.")
  stored = cls.SPLIT_ALIASES.get(split, split)
  if stored not in cls.SPLITS:
    raise ValueError(f"{name} has no '{split}' split (its TFDS build holds {', '.join(cls.SPLITS)})")
  if not any(".array_record" in file.name for file in epath.Path(path).iterdir()):
    raise DataError(f"{name}: the TFDS build at {path} is not in the ArrayRecord format that training reads by "
                    f"example index; rebuild it (without --file_format, or with --file_format=array_record):\n  "
                    f"{build_command(name, data_cfg)} --overwrite")
  return records_of_build(path, stored)


def records_of_build(path: str, split: str) -> Records:
  """The Records of `split` of the build at `path` (a version folder), images as `tfds:` references."""
  from data_pipelines.tfds import schema  # noqa: PLC0415 (imports tensorflow_datasets)

  def references(file_names: np.ndarray) -> np.ndarray:
    return np.array([f"{PREFIX}{path}/{split}[{i}]#{name}" for i, name in enumerate(file_names)], dtype=object)

  return schema.read_records(path, split, references)


# ----------------------------------------------------------------------------------------------- images
def read_encoded(reference: tf.Tensor) -> tf.Tensor:
  """The encoded image bytes [] tf.string of a `tfds:` reference [] tf.string (one example read by index)."""
  serialized = tf.numpy_function(_serialized_example, [reference], tf.string, stateful=False)
  serialized.set_shape([])
  return tf.io.parse_single_example(serialized, {"image": tf.io.FixedLenFeature([], tf.string)})["image"]


def is_reference(path: tf.Tensor) -> tf.Tensor:
  """[] bool: `path` is a `tfds:` reference."""
  return tf.strings.substr(path, 0, len(PREFIX)) == PREFIX


def _serialized_example(reference: bytes) -> np.ndarray:
  text = np.asarray(reference).item()
  text = text.decode() if isinstance(text, bytes) else str(text)
  match = _REFERENCE.match(text)
  if match is None:
    raise ValueError(f"not a TFDS image reference: {text!r} (expected {PREFIX}<folder>/<split>[<index>])")
  return np.array(_data_source(match[1], match[2])[int(match[3])], dtype=object)


def _data_source(path: str, split: str):
  """The raw-bytes ArrayRecord data source of `split` of the build at `path`, opened once per process."""
  key = (path, split)
  source = _SOURCES.get(key)
  if source is None:
    with _SOURCES_LOCK:
      source = _SOURCES.get(key)
      if source is None:
        import tensorflow_datasets as tfds  # noqa: PLC0415

        source = tfds.builder_from_directory(path).as_data_source(
            split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
        _SOURCES[key] = source
  return source
