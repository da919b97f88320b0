"""Dataset readers: `load(name, data_cfg, split)` → Records in the 17-joint reference order (SPEC §4)."""
from __future__ import annotations

import importlib
import json
import os

import numpy as np

from data_pipelines.records import DataError

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


def load(name: str, data_cfg, split: str):
  """Reads dataset `name`'s `split` from `data_cfg.root`/<folder>; see docs/ARCHITECTURE.md for the fields."""
  if name not in READERS:
    raise ValueError(f"unknown dataset '{name}'; expected one of {sorted(READERS)}")
  if split not in SPLITS:
    raise ValueError(f"unknown split '{split}'; expected one of {SPLITS}")
  module, folder = READERS[name]
  return importlib.import_module(f"data_pipelines.readers.{module}").read(dataset_dir(data_cfg, folder), data_cfg,
                                                                          split)


def dataset_dir(data_cfg, folder: str) -> str:
  path = os.path.join(data_cfg.root, folder)
  if not os.path.isdir(path):
    raise DataError(
        f"dataset folder not found: {os.path.abspath(path)} (expected {folder}/ in its official layout, SPEC §4). "
        f"Point --config.data.root (or $AHUP_DATA_ROOT) at the folder that holds {folder}/, or train on the "
        "embedded dataset with --config=configs/saa.py:synth")
  return path


def read_json(path: str):
  if not os.path.exists(path):
    raise DataError(f"annotation file not found: {path}")
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as error:
    raise DataError(f"{path}: not valid JSON ({error})") from None


def field(entry: dict, key: str, path: str, shape: tuple | None = None, what: str = "entry") -> np.ndarray:
  """entry[key] as float array of `shape` (None entries in shape match any size); DataError naming file/field."""
  if key not in entry:
    raise DataError(f"{path}: {what} {entry.get('id', '')} lacks field '{key}'")
  try:
    value = np.asarray(entry[key], np.float64)
  except (TypeError, ValueError):
    raise DataError(f"{path}: {what} {entry.get('id', '')} field '{key}' is not numeric") from None
  if shape is not None and (value.ndim != len(shape) or any(s is not None and s != v
                                                            for s, v in zip(shape, value.shape))):
    raise DataError(f"{path}: {what} {entry.get('id', '')} field '{key}' has shape {value.shape}, expected "
                    f"{tuple('any' if s is None else s for s in shape)}")
  return value


def project(joint_cam: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
  """Pinhole projection [N, J, 3] mm → [N, J, 2] px with per-instance f, c [N, 2]."""
  z = joint_cam[..., 2:3]
  return joint_cam[..., :2] / z * f[:, None, :] + c[:, None, :]


def load_npy_records(path: str) -> list[dict]:
  if not os.path.exists(path):
    raise DataError(f"annotation file not found: {path}")
  data = np.load(path, allow_pickle=True)
  records = list(data.tolist() if data.ndim else data.item())
  for i, r in enumerate(records):
    if not isinstance(r, dict):
      raise DataError(f"{path}: entry {i} is a {type(r).__name__}, expected a dict")
  return records
