"""`readers.load` dispatch: names, splits, missing folders and empty selections (SPEC §4)."""
from __future__ import annotations

import json
import os

import pytest

from configs import common as config_common
from data_pipelines import readers
from data_pipelines.records import DataError


def _config(root, **overrides):
  config = config_common.data()
  config.root = str(root)
  config.update(overrides)
  return config


@pytest.mark.parametrize("name,folder", sorted((name, folder) for name, (_, folder) in readers.READERS.items()))
def test_missing_dataset_folder(tmp_path, name, folder):
  with pytest.raises(DataError) as error:
    readers.load(name, _config(tmp_path / "data"), "test" if name == "MuPoTS" else "train")
  message = str(error.value)
  assert os.path.join(str(tmp_path), "data", folder) in message
  assert "--config.data.root" in message and "--config=configs/saa.py:synth" in message


def test_unknown_names_and_splits(tmp_path):
  with pytest.raises(ValueError, match="unknown dataset 'H36M'"):
    readers.load("H36M", _config(tmp_path), "train")
  with pytest.raises(ValueError, match="unknown split 'val'"):
    readers.load("MPII", _config(tmp_path), "val")


def test_a_split_without_records_is_an_error(tmp_path):
  os.makedirs(tmp_path / "MuPoTS")
  with open(tmp_path / "MuPoTS" / "MuPoTS-3D.json", "w") as f:
    json.dump({"images": [{"id": 1, "file_name": "TS1/img_000000.jpg"}],
               "annotations": [{"id": 1, "image_id": 1, "is_valid": 0}]}, f)
  with pytest.raises(DataError, match="MuPoTS: the 'test' split of .*MuPoTS selects no records"):
    readers.load("MuPoTS", _config(tmp_path), "test")


def test_relative_root_gives_absolute_paths(tmp_path, monkeypatch):
  os.makedirs(tmp_path / "MuPoTS")
  with open(tmp_path / "MuPoTS" / "MuPoTS-3D.json", "w") as f:
    json.dump({"images": [{"id": 1, "file_name": "TS1/img_000000.jpg", "width": 100, "height": 100,
                           "intrinsic": [100, 100, 50, 50]}],
               "annotations": [{"id": 1, "image_id": 1, "is_valid": 1, "bbox": [10, 10, 50, 50],
                                "keypoints_cam": [[0, 0, 1000]] * 17, "keypoints_img": [[50, 50]] * 17}]}, f)
  monkeypatch.chdir(tmp_path)
  records = readers.load("MuPoTS", _config("."), "test")
  assert records.img_path[0] == os.path.join(str(tmp_path), "MuPoTS", "MultiPersonTestSet", "TS1", "img_000000.jpg")


def test_malformed_json_names_the_file(tmp_path):
  os.makedirs(tmp_path / "MPII" / "annotations")
  (tmp_path / "MPII" / "annotations" / "train.json").write_text("{not json")
  with pytest.raises(DataError, match=r"train\.json: not valid JSON"):
    readers.load("MPII", _config(tmp_path), "train")
  (tmp_path / "MPII" / "annotations" / "train.json").write_text("[]")
  with pytest.raises(DataError, match=r"train\.json: expected a JSON object with a list 'images'"):
    readers.load("MPII", _config(tmp_path), "train")
