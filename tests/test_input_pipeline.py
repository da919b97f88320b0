"""device_batches: host batches → global arrays sharded along "data", background prefetch, error propagation."""
from __future__ import annotations

import itertools
import threading

import jax
import ml_collections
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from ahup_jax import sharding
from data_pipelines import input_pipeline


def _mesh():
  return sharding.make_mesh(ml_collections.ConfigDict(dict(data=1, model=1)))


def _host_batches(count: int | None):
  for i in itertools.count() if count is None else range(count):
    yield {"image": np.full((4, 8, 8, 3), i, np.float32), "joint_cells": np.arange(4 * 17 * 2, dtype=np.int32)
           .reshape(4, 17, 2) + i}


def test_batches_land_sharded_along_data_with_host_values():
  mesh = _mesh()
  batches = list(input_pipeline.device_batches(_host_batches(3), mesh, prefetch=2))
  assert len(batches) == 3
  for i, (batch, host) in enumerate(zip(batches, _host_batches(3))):
    for key, value in batch.items():
      assert isinstance(value, jax.Array) and value.sharding == NamedSharding(mesh, P("data"))
      assert value.dtype == host[key].dtype
      np.testing.assert_array_equal(np.asarray(value), host[key])


def test_producer_errors_reraise_in_the_consumer():
  def failing():
    yield from _host_batches(1)
    raise FileNotFoundError("frame_000042.jpg")

  batches = input_pipeline.device_batches(failing(), _mesh())
  next(batches)
  with pytest.raises(FileNotFoundError, match="frame_000042.jpg"):
    next(batches)


def test_closing_the_consumer_stops_the_producer():
  batches = input_pipeline.device_batches(_host_batches(None), _mesh(), prefetch=1)
  next(batches)
  batches.close()
  assert not any(t.name == "device_batches" and t.is_alive() for t in threading.enumerate())
