"""The columnar per-instance records every dataset reader returns (docs/ARCHITECTURE.md, SPEC §4.1)."""
from __future__ import annotations

import dataclasses

import numpy as np

from ahup_jax import skeleton


class DataError(ValueError):
  """Bad dataset input; the message names the file, the field and what was expected."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """Per-dataset constants."""
  name: str
  is_synthetic: bool
  have_depth: bool
  joint_defined: np.ndarray  # [17] bool: reference joints this dataset defines
  group_names: tuple[str, ...] = ()  # H36M actions / MuPoTS sequences, indexed by Records.group


@dataclasses.dataclass
class Records:
  """N person instances in the 17-joint reference order (undefined joints zero, vis 0)."""
  info: DatasetInfo
  img_path: np.ndarray   # [N] str, absolute paths, or `tfds:` example references (data_pipelines/tfds/source.py)
  bbox: np.ndarray       # [N, 4] float32 x, y, w, h (px), processed per dataset
  joint_img: np.ndarray  # [N, 17, 3] float32 x, y px; z = depth - root depth (mm), 0 for 2D
  joint_vis: np.ndarray  # [N, 17] float32
  joint_cam: np.ndarray  # [N, 17, 3] float32 camera frame (mm); zeros for 2D datasets
  root_cam: np.ndarray   # [N, 3] float32 (mm)
  f: np.ndarray          # [N, 2] float32 focal lengths (px)
  c: np.ndarray          # [N, 2] float32 principal point (px)
  group: np.ndarray      # [N] int32 action / sequence index, -1 if none
  image_id: np.ndarray   # [N] int64

  def __post_init__(self):
    n = len(self.img_path)
    expected = {
        "bbox": (n, 4), "joint_img": (n, skeleton.NUM_JOINTS, 3), "joint_vis": (n, skeleton.NUM_JOINTS),
        "joint_cam": (n, skeleton.NUM_JOINTS, 3), "root_cam": (n, 3), "f": (n, 2), "c": (n, 2),
        "group": (n,), "image_id": (n,),
    }
    for field, shape in expected.items():
      value = getattr(self, field)
      if value.shape != shape:
        raise DataError(f"{self.info.name}: Records.{field} has shape {value.shape}, expected {shape}")

  def __len__(self) -> int:
    return len(self.img_path)

  def subset(self, index) -> "Records":
    """The records at `index` (a slice, boolean mask or integer array)."""
    return dataclasses.replace(self, **{
        f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self) if f.name != "info"})
