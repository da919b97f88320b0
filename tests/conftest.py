"""Shared test fixtures: the real sample data folder and quiet TensorFlow."""
from __future__ import annotations

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"


@pytest.fixture
def realdata() -> pathlib.Path:
  """`../shared/realdata` (real sample files, research licences); skips where a clone has none."""
  if not REALDATA.is_dir():
    pytest.skip(f"real sample data not found at {REALDATA} (only the project's own checkout has it)")
  return REALDATA
