"""Builds the TFDS datasets a training config reads (`config.data.source = "tfds"`), once, from the official files.

  python -m data_pipelines.tfds.build --config=configs/saa.py                      # its train sets and test set
  python -m data_pipelines.tfds.build --config=configs/saa.py --datasets=Human36M  # one dataset
  python -m data_pipelines.tfds.build --config=configs/saa.py:synth                # the embedded benchmark

--manual_dir defaults to config.data.root (the folder holding Human36M/, MSCOCO/, ...: the official layouts of
SPEC §4, see each builder's MANUAL_DOWNLOAD_INSTRUCTIONS), --data_dir to config.data.tfds_dir (<root>/tfds). The
builder config is the one matching the config's data fields (e.g. human36m/protocol1 for
--config.data.h36m_protocol=1), so training with the same flags plus --config.data.source=tfds reads exactly
this build. The TFDS CLI does the same for one builder config:
  PYTHONPATH=. tfds build data_pipelines/tfds/human36m --config=protocol2 --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
"""
from __future__ import annotations

import os
import shutil

import tensorflow_datasets as tfds
from absl import app, flags, logging
from ml_collections import config_flags

from data_pipelines import readers
from data_pipelines.tfds import schema, source

_CONFIG = config_flags.DEFINE_config_file("config", "configs/saa.py", "training config whose datasets to build")
_DATASETS = flags.DEFINE_list("datasets", None, f"datasets to build (default: the config's trainset + testset); "
                              f"any of {', '.join(readers.READERS)}")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "folder holding the dataset folders (default config.data.root)")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir to write (default config.data.tfds_dir or "
                                "<root>/tfds)")
_TFDS_CONFIG = flags.DEFINE_string("tfds_config", None, "builder config (default: the one matching config.data)")
_FILE_FORMAT = flags.DEFINE_string("file_format", schema.DEFAULT_FILE_FORMAT, "TFDS file format (training reads "
                                   "examples by index: array_record)")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "rebuild a dataset that is already built")


def build(name: str, data_cfg, *, manual_dir: str | None = None, data_dir: str | None = None,
          tfds_config: str | None = None, file_format: str | None = None, overwrite: bool = False) -> str:
  """Builds dataset `name` (a `readers.READERS` name) for `data_cfg`; returns the build's version folder.

  An existing build is kept (TFDS skips it) unless `overwrite`.
  """
  cls = source.builder_class(name)
  config = tfds_config or source.builder_config(cls, data_cfg)
  data_dir = data_dir or source.tfds_dir(data_cfg)
  kwargs = dict(data_dir=data_dir, file_format=file_format, **({"config": config} if config else {}))
  builder = cls(**kwargs)
  if overwrite and builder.is_prepared():
    shutil.rmtree(builder.data_dir)
    builder = cls(**kwargs)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.path.abspath(manual_dir or data_cfg.root)))
  logging.info("%s: built %s", name, builder.data_dir)
  return str(builder.data_dir)


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  config = _CONFIG.value
  names = _DATASETS.value or list(dict.fromkeys([*config.data.trainset, config.data.testset]))
  for name in names:
    path = build(name, config.data, manual_dir=_MANUAL_DIR.value, data_dir=_DATA_DIR.value,
                 tfds_config=_TFDS_CONFIG.value, file_format=_FILE_FORMAT.value, overwrite=_OVERWRITE.value)
    print(f"{name}: {path}")


if __name__ == "__main__":
  app.run(main)
