"""benchmarks/xla_flags_ab.py: how a side's module constants are set before its step is built."""
from __future__ import annotations

import pytest

from ahup_jax.models import head, layers
from benchmarks import xla_flags_ab


def test_assignments_set_ints_and_objects(monkeypatch):
  """`module.NAME=int` sets a threshold, `module.NAME=@module.attr` another object; the lowering rule follows."""
  for name in ("ONEDNN_MIN_POSITIONS", "ONEDNN_MIN_POSITIONS_BFLOAT16"):
    monkeypatch.setattr(layers, name, getattr(layers, name))
  monkeypatch.setattr(head, "ONEDNN_MIN_POSITIONS", head.ONEDNN_MIN_POSITIONS)
  monkeypatch.setattr(layers.onednn, "enabled", lambda: True)
  assert layers.lowering(6 * 6, 256) == "onednn"
  xla_flags_ab._apply("ahup_jax.models.layers.ONEDNN_MIN_POSITIONS=144,"
                      "ahup_jax.models.head.ONEDNN_MIN_POSITIONS=@ahup_jax.models.layers.ONEDNN_MIN_POSITIONS")
  assert layers.ONEDNN_MIN_POSITIONS == 144 and head.ONEDNN_MIN_POSITIONS == 144
  assert layers.lowering(6 * 6, 256) == "xla"


def test_unknown_constant_is_named():
  with pytest.raises(ValueError, match="has no ONEDNN_MIN_POSITION"):
    xla_flags_ab._apply("ahup_jax.models.layers.ONEDNN_MIN_POSITION=9")
