"""Host-local numpy batches → global `jax.Array`s sharded along the mesh axis "data", prefetched in the background.

A producer thread turns the next `prefetch` host batches into device arrays while the accelerator runs the current
step, so it never waits on the host-to-device copy. Errors of the producer (a bad image, a tf.data failure) are
re-raised in the consumer.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterator

import jax
import numpy as np
from jax.sharding import Mesh

from ahup_jax import sharding

_END = object()
_POLL_S = 0.1  # how often a blocked producer checks whether the consumer has gone


def device_batches(host_batches: Iterator[dict[str, np.ndarray]], mesh: Mesh,
                   prefetch: int = 2) -> Iterator[dict[str, jax.Array]]:
  """Yields each host batch as global arrays, `jax.make_array_from_process_local_data(NamedSharding(mesh,
  P("data")), x)` per key, with up to `prefetch` (≥ 1) batches placed ahead. Closing the generator stops the thread.
  """
  ready: queue.Queue = queue.Queue(maxsize=max(1, int(prefetch)))
  consumer_gone = threading.Event()

  def put(item) -> bool:
    while not consumer_gone.is_set():
      try:
        ready.put(item, timeout=_POLL_S)
        return True
      except queue.Full:
        continue
    return False

  def produce() -> None:
    try:
      for batch in host_batches:
        if not put(sharding.to_global(batch, mesh)):
          return
      put(_END)
    except BaseException as error:  # noqa: BLE001 - re-raised in the consumer
      put(error)

  thread = threading.Thread(target=produce, name="device_batches", daemon=True)
  thread.start()
  try:
    while True:
      item = ready.get()
      if item is _END:
        return
      if isinstance(item, BaseException):
        raise item
      yield item
  finally:
    consumer_gone.set()
    thread.join(timeout=10 * _POLL_S)
