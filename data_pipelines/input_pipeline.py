"""Host batches → global device arrays sharded along the mesh's "data" axis, prefetched in the background."""
from __future__ import annotations

import queue
import threading
from typing import Iterator

import jax
import numpy as np
from jax.sharding import Mesh

from ahup_jax import sharding

_DONE = object()


def device_batches(host_batches: Iterator[dict[str, np.ndarray]], mesh: Mesh,
                   prefetch: int = 2) -> Iterator[dict[str, jax.Array]]:
  """Each host-local batch becomes global arrays (`make_array_from_process_local_data`) while the previous ones
  are being consumed; `prefetch` batches wait on the devices at most. Producer errors re-raise here."""
  buffer: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
  stop = threading.Event()

  def produce():
    try:
      for batch in host_batches:
        if stop.is_set():
          return
        buffer.put(sharding.to_global(batch, mesh))
      buffer.put(_DONE)
    except BaseException as error:  # noqa: BLE001 - handed to the consumer
      buffer.put(error)

  thread = threading.Thread(target=produce, daemon=True, name="device_batches")
  thread.start()
  try:
    while True:
      item = buffer.get()
      if item is _DONE:
        return
      if isinstance(item, BaseException):
        raise item
      yield item
  finally:
    stop.set()
