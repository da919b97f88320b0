"""Dataset readers: `load(name, data_cfg, split)` → Records in the 17-joint reference order (SPEC §4).

Each dataset lives in its official layout under `data_cfg.root`/<folder> (SPEC §4.2–4.8); one module per dataset
exposes `read(folder, data_cfg, split) -> Records` (the parse of the official files) and may expose
`select(records, data_cfg, split) -> Records` (cheap config-dependent steps: synthetic sub-sampling `rt_SYN`, the 2D
label weight `jo2d`). With `data_cfg.source = "tfds"` the records of `read` come from the TFDS build of the dataset
(data_pipelines/tfds/, whose builders call `read`) instead of the official files; `select` applies to both.
"""
from __future__ import annotations

import importlib
import os

from data_pipelines.records import DataError, Records

# name → (module, folder under data_cfg.root)
READERS = {
    "Human36M": ("human36m", "Human36M"),
    "MuCo": ("muco", "MuCo"),
    "MuPoTS": ("mupots", "MuPoTS"),
    "MSCOCO": ("mscoco", "MSCOCO"),
    "MPII": ("mpii", "MPII"),
    "ScanAva": ("scanava", "ScanAva_1119"),
    "SURREAL": ("surreal", "train_surreal_images"),
}
SPLITS = ("train", "test", "testInLoop")
SOURCES = ("files", "tfds")


def load(name: str, data_cfg, split: str) -> Records:
  """Reads `split` ∈ {train, test, testInLoop} of dataset `name` from `data_cfg.source`: the official files under
  `data_cfg.root`/<folder> ("files") or the TFDS build under `data_cfg.tfds_dir` ("tfds").

  ValueError for an unknown name, split or source (or a split the dataset does not have); DataError when the data
  are missing or malformed (the message names the file, the record and the field) or select no record.
  """
  check_name_and_split(name, split)
  source = data_cfg.get("source", "files")
  if source == "files":
    path = dataset_dir(data_cfg.root, READERS[name][1])
    records, where = read(name, path, data_cfg, split), path
  elif source == "tfds":
    from data_pipelines.tfds import source as tfds_source  # noqa: PLC0415 (imports tensorflow: only when used)
    records, where = tfds_source.load(name, data_cfg, split), f"the TFDS build of {name}"
  else:
    raise ValueError(f"data.source must be one of {SOURCES}, got {source!r}")
  records = select(name, records, data_cfg, split)
  if not len(records):
    raise DataError(f"{name}: the {split!r} split of {where} selects no records (check the annotation files and "
                    "the split's subjects / scans / sub-sampling, SPEC §4)")
  return records


def check_name_and_split(name: str, split: str) -> None:
  if name not in READERS:
    raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(READERS)}")
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


def read(name: str, folder: str, data_cfg, split: str) -> Records:
  """The reader of dataset `name` on its folder `folder` (official layout), before `select`."""
  return _module(name).read(folder, data_cfg, split)


def select(name: str, records: Records, data_cfg, split: str) -> Records:
  """The dataset's config-dependent selection of records `read` returned (identity for most datasets)."""
  module = _module(name)
  return module.select(records, data_cfg, split) if hasattr(module, "select") else records


def _module(name: str):
  return importlib.import_module(f"data_pipelines.readers.{READERS[name][0]}")


def dataset_dir(root: str, folder: str) -> str:
  """The absolute path of `root`/`folder`; DataError saying how to point at the data when it is missing."""
  path = os.path.abspath(os.path.join(root, folder))
  if not os.path.isdir(path):
    raise DataError(
        f"dataset folder not found: {path} (expected {folder}/ in its official layout, SPEC §4). Point "
        f"--config.data.root (or $AHUP_DATA_ROOT) at the folder that holds {folder}/, or train on the embedded "
        "dataset with --config=configs/saa.py:synth")
  return path
