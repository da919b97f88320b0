"""Dataset readers: `load(name, data_cfg, split)` → Records in the 17-joint reference order (SPEC §4).

Each dataset lives in its official layout under `data_cfg.root`/<folder> (SPEC §4.2–4.8); one module per dataset
exposes `read(folder, data_cfg, split) -> Records`.
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


def load(name: str, data_cfg, split: str) -> Records:
  """Reads `split` ∈ {train, test, testInLoop} of dataset `name` from `data_cfg.root`/<folder>.

  ValueError for an unknown name or split (or one the dataset does not have); DataError when the data are
  missing or malformed (the message names the file, the record and the field) or select no record.
  """
  if name not in READERS:
    raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(READERS)}")
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
  module, folder = READERS[name]
  path = dataset_dir(data_cfg.root, folder)
  records = importlib.import_module(f"data_pipelines.readers.{module}").read(path, data_cfg, split)
  if not len(records):
    raise DataError(f"{name}: the {split!r} split of {path} selects no records (check the annotation files and "
                    "the split's subjects / scans / sub-sampling, SPEC §4)")
  return records


def dataset_dir(root: str, folder: str) -> str:
  """The absolute path of `root`/`folder`; DataError saying how to point at the data when it is missing."""
  path = os.path.abspath(os.path.join(root, folder))
  if not os.path.isdir(path):
    raise DataError(
        f"dataset folder not found: {path} (expected {folder}/ in its official layout, SPEC §4). Point "
        f"--config.data.root (or $AHUP_DATA_ROOT) at the folder that holds {folder}/, or train on the embedded "
        "dataset with --config=configs/saa.py:synth")
  return path
