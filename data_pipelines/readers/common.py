"""What every dataset reader shares: reading annotation files, checked field extraction and building Records."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable

import numpy as np

from data_pipelines import joints as joints_lib
from data_pipelines.records import DataError, DatasetInfo, Records


def read_json(path: str):
  """The parsed JSON file at `path`; DataError when it is absent or not JSON."""
  if not os.path.isfile(path):
    raise DataError(f"annotation file not found: {path}")
  try:
    with open(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as error:
    raise DataError(f"{path}: not valid JSON ({error})") from None


def read_coco_lists(path: str) -> tuple[list, list]:
  """A COCO-style file → (images, annotations); DataError when either list is missing."""
  content = read_json(path)
  for key in ("images", "annotations"):
    if not isinstance(content, dict) or not isinstance(content.get(key), list):
      raise DataError(f"{path}: expected a JSON object with a list '{key}' (COCO-style annotation file)")
  return content["images"], content["annotations"]


def load_pooled_npy(path: str) -> list[dict]:
  """A pooled annotation file (NumPy object array of dicts, SPEC §4.7–4.8) → list of dicts."""
  if not os.path.isfile(path):
    raise DataError(f"annotation file not found: {path}")
  try:
    data = np.load(path, allow_pickle=True)
  except (ValueError, OSError, EOFError) as error:
    raise DataError(f"{path}: not a NumPy .npy file ({error})") from None
  if not isinstance(data, np.ndarray) or data.dtype != object:
    raise DataError(f"{path}: expected a NumPy object array of dicts (one per image), got "
                    f"{getattr(data, 'dtype', type(data).__name__)}")
  records = list(data.reshape(-1))
  for i, record in enumerate(records):
    if not isinstance(record, dict):
      raise DataError(f"{path}: record {i} is a {type(record).__name__}, expected a dict (object array of dicts)")
  return records


def entries_by_id(entries: list, path: str, what: str) -> dict:
  """{entry['id']: entry} of COCO `images` (or similar); DataError naming an entry without an id."""
  try:
    return {entry["id"]: entry for entry in entries}
  except (KeyError, TypeError):
    i = next((i for i, e in enumerate(entries) if not isinstance(e, dict) or "id" not in e), None)
    problem = "has an id that is not a number or string" if i is None else f"#{i} lacks field 'id'"
    raise DataError(f"{path}: {what} {problem}") from None


def images_of(annotations: list, images_by_id: dict, path: str) -> list:
  """The image entry of every annotation; DataError for an annotation whose image_id is not in `images`."""
  try:
    return [images_by_id[a["image_id"]] for a in annotations]
  except (KeyError, TypeError):
    i = next(i for i, a in enumerate(annotations) if not _has_image(a, images_by_id))
    image_id = annotations[i].get("image_id") if isinstance(annotations[i], dict) else None
    raise DataError(f"{path}: annotation #{i} has image_id {image_id!r}, expected the id of an entry of "
                    "'images'") from None


def _has_image(annotation, images_by_id: dict) -> bool:
  try:
    return annotation["image_id"] in images_by_id
  except (KeyError, TypeError):
    return False


def image_label(images: list) -> Callable[[int], str]:
  """describe(i) for error messages about the i-th of `images`."""
  return lambda i: f"image id {images[i]['id']}"


def annotation_label(annotations: list, images: list) -> Callable[[int], str]:
  """describe(i) for error messages about the i-th of `annotations`, whose images are `images`."""
  def describe(i: int) -> str:
    entry = annotations[i]
    return f"annotation {entry.get('id', f'#{i}') if isinstance(entry, dict) else f'#{i}'} (image id {images[i]['id']})"
  return describe


def values(entries: list, key: str, path: str, describe: Callable[[int], str]) -> list:
  """[entry[key] for entry in entries]; DataError naming the file, the first entry without it and the field."""
  try:
    return [entry[key] for entry in entries]
  except (KeyError, TypeError):
    i = next(i for i, e in enumerate(entries) if not isinstance(e, dict) or key not in e)
    raise DataError(f"{path}: {describe(i)} lacks field '{key}'") from None


def column(entries: list, key: str, shape: tuple[int, ...], path: str, describe: Callable[[int], str], *,
           any_layout: bool = False) -> np.ndarray:
  """The field `key` of every entry as one checked float64 array [N, *shape] (see `stack`)."""
  return stack(values(entries, key, path, describe), key, shape, path, describe, any_layout=any_layout)


def stack(items: list, key: str, shape: tuple[int, ...], path: str, describe: Callable[[int], str], *,
          any_layout: bool = False) -> np.ndarray:
  """`items` (the field `key` of N entries) as one float64 array [N, *shape].

  Fast path: one np.asarray. Otherwise DataError naming the file, the first bad entry (`describe(i)`), the
  field and the expected shape: not numeric, not finite or of another shape. `any_layout` accepts any array of
  prod(shape) numbers (e.g. a 1×1 scalar).
  """
  try:
    array = np.asarray(items, np.float64)
    if any_layout and array.ndim >= 1 and array.size == len(items) * int(np.prod(shape)):
      array = array.reshape(len(items), *shape)
  except (TypeError, ValueError):
    array = None
  if array is not None and array.shape == (len(items), *shape) and np.isfinite(array).all():
    return array
  for i, item in enumerate(items):
    try:
      value = np.asarray(item, np.float64)
    except (TypeError, ValueError):
      raise DataError(f"{path}: {describe(i)} field '{key}' is not numeric (expected {_numbers(shape)})") from None
    if value.shape != shape and not (any_layout and value.size == int(np.prod(shape))):
      raise DataError(f"{path}: {describe(i)} field '{key}' has shape {value.shape}, expected {_numbers(shape)}")
    if not np.isfinite(value).all():
      raise DataError(f"{path}: {describe(i)} field '{key}' has non-finite values (expected {_numbers(shape)})")
  return np.zeros((0, *shape))


def _numbers(shape: tuple[int, ...]) -> str:
  return "a number" if not shape else f"{'×'.join(map(str, shape))} numbers"


def project(joint_cam: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
  """Pinhole projection x = X/Z·fx + cx, y = Y/Z·fy + cy. joint_cam [N, J, 3] mm, f, c [N, 2] px → [N, J, 2] px."""
  return joint_cam[..., :2] / joint_cam[..., 2:] * f[:, None] + c[:, None]


def make_records(info: DatasetInfo, names: tuple[str, ...], *, img_path, bbox: np.ndarray, joint_xy: np.ndarray,
                 joint_vis: np.ndarray, joint_cam: np.ndarray | None, f: np.ndarray, c: np.ndarray,
                 image_id, group=None) -> Records:
  """Dataset-order arrays → Records in the 17-joint reference order (SPEC §4.1, §4.9).

  joint_xy [N, J, 2] px, joint_vis [N, J], joint_cam [N, J, 3] camera mm (None for 2D datasets: zero depth,
  zero joint_cam/root_cam), f, c [N, 2] px, bbox [N, 4] px. joint_img z = Z − Z_pelvis; root_cam = pelvis.
  """
  n = len(img_path)
  if joint_cam is None:
    joint_cam = np.zeros((n, len(names), 3))
    root_cam = np.zeros((n, 3))
  else:
    root_cam = joint_cam[:, names.index("Pelvis")]
  joint_img = np.concatenate([joint_xy, joint_cam[..., 2:] - root_cam[:, None, 2:]], -1)
  return Records(
      info, np.asarray(img_path, dtype=object).reshape(n), np.asarray(bbox, np.float32).reshape(n, 4),
      joints_lib.to_reference(joint_img, names).astype(np.float32),
      joints_lib.to_reference(np.asarray(joint_vis, np.float64), names).astype(np.float32),
      joints_lib.to_reference(joint_cam, names).astype(np.float32), root_cam.astype(np.float32),
      np.asarray(f, np.float32).reshape(n, 2), np.asarray(c, np.float32).reshape(n, 2),
      np.full(n, -1, np.int32) if group is None else np.asarray(group, np.int32).reshape(n),
      np.asarray(image_id, np.int64).reshape(n))


def info_for(name: str, *, is_synthetic: bool, have_depth: bool, group_names: tuple[str, ...] = ()) -> DatasetInfo:
  """DatasetInfo with `joint_defined` from the dataset's joint table."""
  return DatasetInfo(name, is_synthetic=is_synthetic, have_depth=have_depth,
                     joint_defined=joints_lib.reference_index(joints_lib.DATASET_JOINTS[name])[1],
                     group_names=group_names)


def positive_int(value, name: str) -> int:
  """`value` as an int ≥ 1; ValueError naming the config field otherwise."""
  if int(value) != value or value < 1:
    raise ValueError(f"{name} must be a positive integer, got {value!r}")
  return int(value)


def every_nth(records: Records, every: int) -> Records:
  """The records whose image_id (a running index for the synthetic sets) is a multiple of `every`."""
  return records if every == 1 else records.subset(records.image_id % every == 0)


def weigh_2d_labels(records: Records, jo2d: bool) -> Records:
  """joint_vis × jo2d (`if_ylB`, SPEC §1.2) for a 2D dataset."""
  return records if jo2d else dataclasses.replace(records, joint_vis=np.zeros_like(records.joint_vis))


def require_split(name: str, split: str, available: tuple[str, ...], why: str) -> None:
  """ValueError when `split` is not one `name` provides (e.g. MuCo has no test split)."""
  if split not in available:
    raise ValueError(f"{name} has no '{split}' split (available: {', '.join(available)}): {why}")
