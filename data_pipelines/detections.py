"""Person boxes for `--mode=predict` from a COCO detection-results file or a COCO annotation file.

Two layouts are read:

* detection results (what mmdet, detectron2 and the COCO evaluation API write): a JSON list of
  `{"image_id" or "file_name", "bbox": [x, y, w, h], "score", "category_id"}`;
* a COCO annotation file: `{"images": [{"id", "file_name"}], "annotations": [{"image_id", "bbox", ...}]}`
  (e.g. ground-truth boxes; `score` is then usually absent).

An entry names its image by `file_name` (a path relative to the image folder, or a base name that is unique in it)
or by `image_id` (matched to the file whose stem is that id: `785` ↔ `000000000785.jpg`, `"S1_0001"` ↔
`S1_0001.png`). A missing `score` counts as 1; an entry whose `category_id` is not 1 (COCO "person") or with
`iscrowd` 1 is not a person box. Boxes are px, [x, y, w, h] with (x, y) the top-left corner.
"""
from __future__ import annotations

import collections
import dataclasses
import math
import os

import numpy as np

from data_pipelines.readers import common
from data_pipelines.records import DataError

PERSON_CATEGORY = 1  # COCO


@dataclasses.dataclass(frozen=True)
class Detections:
  """The person boxes of a file, by image (`file` = path relative to the image folder, '/'-separated)."""
  boxes: dict[str, list[tuple[np.ndarray, float]]]  # file → [(box [4] float64 px, score)] in file order
  below_min_score: int                               # person boxes dropped by `min_score`
  not_person: int                                    # entries with category_id ≠ 1 or iscrowd = 1
  unknown_images: list[str]                          # image references that match no file of the folder

  @property
  def count(self) -> int:
    return sum(len(b) for b in self.boxes.values())


def read(path: str, files: list[str], min_score: float) -> Detections:
  """Person boxes of `path` with score ≥ `min_score`, keyed by the matching entry of `files`.

  files: the images of the folder, relative paths ('/'-separated). Raises DataError naming the file, the entry and
  the field for a malformed entry, and for a base name that matches several files.
  """
  content = common.read_json(path)
  if isinstance(content, dict) and "annotations" in content:
    images, entries = common.read_coco_lists(path)
    by_id = common.entries_by_id(images, path, "image")
    image_of = common.images_of(entries, by_id, path)
    names = common.values(image_of, "file_name", path, common.image_label(image_of))
    references = [("file_name", name) for name in names]
    describe = common.annotation_label(entries, image_of)
  elif isinstance(content, list):
    entries = content
    describe = lambda i: f"entry #{i}"  # noqa: E731
    references = [_reference(entry, path, describe(i)) for i, entry in enumerate(entries)]
  else:
    raise DataError(f"{path}: expected a JSON list of detections [{{image_id or file_name, bbox: [x, y, w, h], "
                    "score}] or a COCO annotation file {images, annotations}")
  boxes = common.column(entries, "bbox", (4,), path, describe) if entries else np.zeros((0, 4))
  scores = np.array([_number(entry, "score", 1.0, path, describe(i)) for i, entry in enumerate(entries)])
  person = np.array([_number(entry, "category_id", PERSON_CATEGORY, path, describe(i)) == PERSON_CATEGORY
                     and not _number(entry, "iscrowd", 0, path, describe(i)) for i, entry in enumerate(entries)],
                    bool).reshape(-1)
  match = _Matcher(files)
  out: dict[str, list] = collections.defaultdict(list)
  unknown: dict[str, None] = {}
  below = 0
  for i, ((kind, value), box, score) in enumerate(zip(references, boxes, scores)):
    if not person[i]:
      continue
    file = match(kind, value, path, describe(i))
    if file is None:
      unknown[f"{kind} {value!r}"] = None
    elif score < min_score:
      below += 1
    else:
      out[file].append((box, float(score)))
  return Detections(dict(out), below, int((~person).sum()), list(unknown))


def _reference(entry, path: str, label: str) -> tuple[str, str | int]:
  """("file_name", name) or ("image_id", id) of a detection entry."""
  if not isinstance(entry, dict):
    raise DataError(f"{path}: {label} is a {type(entry).__name__}, expected an object {{image_id or file_name, "
                    "bbox, score}")
  if isinstance(entry.get("file_name"), str):
    return "file_name", entry["file_name"]
  if isinstance(entry.get("image_id"), (int, str)) and not isinstance(entry.get("image_id"), bool):
    return "image_id", entry["image_id"]
  raise DataError(f"{path}: {label} has neither a string 'file_name' nor an integer or string 'image_id' naming "
                  "its image")


def _number(entry: dict, key: str, default: float, path: str, label: str) -> float:
  value = entry.get(key, default)
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
    raise DataError(f"{path}: {label} field '{key}' is {value!r}, expected a finite number")
  return float(value)


class _Matcher:
  """Image references → files of the folder (see the module docstring)."""

  def __init__(self, files: list[str]):
    self.files = set(files)
    self.by_name = collections.defaultdict(list)
    self.by_stem = collections.defaultdict(list)
    for file in files:
      name = os.path.basename(file)
      stem = os.path.splitext(name)[0]
      self.by_name[name].append(file)
      self.by_stem[stem].append(file)
      if stem.isdigit():
        self.by_stem[str(int(stem))].append(file)

  def __call__(self, kind: str, value, path: str, label: str) -> str | None:
    if kind == "file_name":
      name = value.replace(os.sep, "/")
      if name in self.files:
        return name
      candidates = self.by_name.get(os.path.basename(name), [])
    else:
      key = str(value)
      candidates = self.by_stem.get(str(int(key)) if key.isdigit() else key, [])
    candidates = sorted(set(candidates))
    if len(candidates) > 1:
      raise DataError(f"{path}: {label} {kind} {value!r} matches several images ({', '.join(candidates[:3])}); "
                      "give the path relative to the image folder as 'file_name'")
    return candidates[0] if candidates else None
