"""Shared test fixtures: the real sample data folder and quiet TensorFlow."""
from __future__ import annotations

import atexit
import functools
import glob
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ahup_jax import models

REPO = pathlib.Path(__file__).resolve().parents[1]
# The real sample data: `../shared/realdata` beside the checkout, or wherever AHUP_REALDATA points (a clone elsewhere).
REALDATA_FROM_ENV = os.environ.get("AHUP_REALDATA", "")  # empty = unset
REALDATA = pathlib.Path(REALDATA_FROM_ENV or REPO.parent / "shared" / "realdata")


def fp32_atol(reduction_length: int, magnitude: float, depth: int = 1) -> float:
  """Absolute tolerance for two fp32 evaluations of the same math that sum in different orders.

  Each of `depth` chained layers sums `reduction_length` terms of size up to `magnitude`; reordering such a sum moves
  it by about √n·ε·magnitude (random-walk rounding model), and 4 of those keeps the test false-alarm free. Errors
  of a wrong computation are orders of magnitude larger than this at the sizes the tests use.
  """
  return 4.0 * depth * np.sqrt(reduction_length) * np.finfo(np.float32).eps * magnitude


def spa_head_atol(spa_params: dict, outputs, hidden: int = 1024) -> float:
  """`fp32_atol` for two separately compiled evaluations of the SPA net f: its dense layers (w1, two per stage, w2)
  each reduce over up to `hidden` terms at the scale of the pose `outputs` (±50 hm)."""
  stages = sum(1 for name in spa_params if name.startswith("stage_") and name.endswith("_w1"))
  return fp32_atol(hidden, float(np.abs(np.asarray(outputs)).max()), depth=2 + 2 * stages)


@functools.cache
def subprocess_cache_dir() -> str:
  """A JAX persistent compilation cache shared by this pytest process's subprocesses (one per xdist worker, removed
  at exit): the second launch of the same program loads its executables instead of compiling them (a `main` run of
  the tiny config: ~80 s → ~45 s on 2 cores). Cached and fresh executables give bit-identical results, which the
  resume tests check against a reference run that compiled fresh."""
  path = tempfile.mkdtemp(prefix="ahup_jax_test_cache_")
  atexit.register(shutil.rmtree, path, ignore_errors=True)
  return path


def subprocess_env(**extra) -> dict:
  """The environment of a `python -m ahup_jax.main` subprocess: this checkout on the path, no inherited XLA_FLAGS,
  the tests' shared compilation cache (`subprocess_cache_dir`)."""
  env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
             JAX_COMPILATION_CACHE_DIR=subprocess_cache_dir())
  env.pop("XLA_FLAGS", None)
  env.update(extra)
  return env


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> str:
  """The tiny embedded dataset, generated once per session (a few seconds) into a temporary folder."""
  root = tmp_path_factory.mktemp("synth") / "data"
  subprocess.run([sys.executable, "-m", "data_pipelines.synth", "--out", str(root), "--preset", "tiny",
                  "--seed", "0"], cwd=REPO, env=subprocess_env(), check=True, capture_output=True, timeout=300)
  (root / "DONE").write_text("tiny\n")
  return str(root)


def final_params(workdir: str) -> tuple[int, dict]:
  """(step, params as NumPy) of the latest training checkpoint in WORKDIR/checkpoints."""
  import orbax.checkpoint as ocp
  steps = sorted(int(os.path.basename(p)) for p in glob.glob(os.path.join(workdir, "checkpoints", "[0-9]*"))
                 if os.path.basename(p).isdigit())
  path = os.path.join(workdir, "checkpoints", str(steps[-1]), "state")
  checkpointer = ocp.StandardCheckpointer()
  # onto this process's first device, whatever devices (and processes) saved it
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
                        checkpointer.metadata(path).item_metadata)
  restored = checkpointer.restore(path, target)
  return steps[-1], jax.tree.map(np.asarray, restored["params"])


@pytest.fixture
def realdata() -> pathlib.Path:
  """`../shared/realdata` (real sample files, research licences); skips where a clone has none. A folder named by
  AHUP_REALDATA must exist: asking for the data and silently skipping every test that reads it would hide it."""
  if REALDATA_FROM_ENV and not REALDATA.is_dir():
    pytest.fail(f"AHUP_REALDATA={REALDATA_FROM_ENV}: no such folder (expected the real sample data, `shared/realdata`)")
  if not REALDATA.is_dir():
    pytest.skip(f"real sample data not found: expected the folder {REALDATA} (`shared/realdata` beside the "
                "repository, as on the project's machines and CI, or AHUP_REALDATA=<folder>; a user's clone has none)")
  return REALDATA


def random_variables(config, seed: int = 0) -> dict:
  """G+T variables of `config.model` filled with He-normal kernels, small biases and non-trivial BatchNorm running
  statistics (shapes from an abstract init: nothing is compiled)."""
  backbone, head = models.build_pose_net(config.model)
  size = config.model.input_size

  def init(key):
    g = backbone.init(key, jnp.zeros((1, size, size, 3)), train=False)
    t = head.init(key, backbone.apply(g, jnp.zeros((1, size, size, 3)), train=False), train=False)
    return {"params": {"G": g["params"], "T": t["params"]},
            "batch_stats": {"G": g["batch_stats"], "T": t["batch_stats"]}}

  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = jax.tree_util.keystr(path)
    if "kernel" in name:
      return rng.normal(scale=np.sqrt(2.0 / np.prod(leaf.shape[:-1])), size=leaf.shape).astype(np.float32)
    if "scale" in name or "var" in name:
      return (1.0 + 0.1 * rng.uniform(size=leaf.shape)).astype(np.float32)
    return (0.1 * rng.normal(size=leaf.shape)).astype(np.float32)

  return jax.tree_util.tree_map_with_path(fill, jax.eval_shape(init, jax.random.key(0)))
