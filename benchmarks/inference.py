"""Inference step throughput with and without the flip test, and the compute the SPA head adds (SPEC §2.7, §8.1).

  python -m benchmarks.inference                                  # res18 96² batch 64 (the embedded eval config)
  python -m benchmarks.inference --backbone=res50 --size=256 --batch=8
  python -m benchmarks.inference --spa_only --backbone=res50 --size=256  # G+T vs G+T+SPA FLOPs, compile only

The timed program is evaluation's jitted step (inference.make_eval_step). The SPA overhead is counted two ways for
one image without flip test: XLA's FLOPs of the compiled forward, and the paper's convention (multiply-accumulates
of conv and linear layers only, each stride-2 transposed conv counted over its zero-dilated input, / 1024³).
"""
from __future__ import annotations

import argparse
import json
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import linen as nn

from ahup_jax import model_report, models, sharding
from ahup_jax.evaluation import inference
from ahup_jax.models.head import Deconv4x4
from ahup_jax.train import state as state_lib
from benchmarks import timing, train_step


def eval_config(backbone: str, size: int, batch: int, flip_test: bool) -> ml_collections.ConfigDict:
  config = train_step.bench_config(backbone, size)
  config.eval.batch_size, config.eval.flip_test = batch, bool(flip_test)
  return config


def abstract_variables(config: ml_collections.ConfigDict, with_spa: bool) -> dict:
  """The export's inference variables {"params", "batch_stats": {"G", "T"}[, "spa"]} as ShapeDtypeStructs."""
  state = jax.eval_shape(lambda: state_lib.create_train_state(config, jax.random.key(0)))
  variables = {k: {net: getattr(state, k)[net] for net in ("G", "T")} for k in ("params", "batch_stats")}
  if with_spa:
    poses = jnp.zeros((1, config.model.num_joints, 3))
    variables["spa"] = jax.eval_shape(lambda: models.SPANet().init(jax.random.key(0), poses, train=False))
  return variables


def filled(abstract: dict, seed: int = 0) -> dict:
  """Concrete values for `abstract`: He-normal kernels, ones elsewhere (finite activations, no compile)."""
  rng = np.random.default_rng(seed)

  def fill(leaf):
    fan_in = math.prod(leaf.shape[:-1])
    if leaf.ndim < 2:
      return np.ones(leaf.shape, leaf.dtype)
    return (rng.normal(size=leaf.shape) * math.sqrt(2.0 / fan_in)).astype(leaf.dtype)

  return jax.tree.map(fill, abstract)


def run(backbone: str = "res18", size: int = 96, batch: int = 64, flip_test: bool = True,
        repeats: int = timing.REPEATS) -> dict:
  """Images/s, step time, XLA GFLOP per batch and achieved GFLOP/s of the eval step (G+T, optional flip test)."""
  config = eval_config(backbone, size, batch, flip_test)
  mesh = sharding.make_mesh(config.mesh)
  step = inference.make_eval_step(config, mesh)
  variables = jax.device_put(filled(abstract_variables(config, False)), sharding.replicated(mesh))
  rng = np.random.default_rng(0)
  host = {"image": rng.normal(size=(batch, size, size, 3)).astype(np.float32),
          "index": np.arange(batch, dtype=np.int32), "valid": np.ones(batch, np.float32)}
  batch_arrays = sharding.to_global(host, mesh)
  compiled, compile_s = timing.compile_aot(step, variables, batch_arrays)
  t, _ = timing.timed(step, variables, batch_arrays, repeats=repeats)
  flops = model_report.xla_flops(step, variables, batch_arrays)  # the global (unpartitioned) program
  return {"backbone": backbone, "input": size, "batch": batch, "flip_test": flip_test, "step_s": t.median_s,
          "images_per_s": batch / t.median_s, "gflop_per_step": flops / 1e9,
          "achieved_gflops": timing.gflops(flops, t.median_s), "compile_s": compile_s}


def paper_macs(config: ml_collections.ConfigDict, with_spa: bool) -> float:
  """Multiply-accumulates of conv / linear layers in one forward of `config.eval`'s predict at batch 1 (flip test
  off: one pass), the paper's convention (SPEC §2.7).

  nn.Conv: output elements × kernel taps × input channels / groups; nn.Dense: output elements × input features;
  Deconv4x4: output elements × 16 × input channels (a 4x4 conv over the zero-dilated input, 4× its real work).
  Counted on abstract values: nothing is compiled or run.
  """
  macs = []

  def count(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    module = context.module
    if context.method_name != "__call__" or not isinstance(module, (Deconv4x4, nn.Conv, nn.Dense)):
      return out
    c_in = args[0].shape[-1]
    if isinstance(module, Deconv4x4):
      macs.append(out.size * 16 * c_in)
    elif isinstance(module, nn.Conv):
      macs.append(out.size * math.prod(module.kernel_size) * c_in // module.feature_group_count)
    elif isinstance(module, nn.Dense):
      macs.append(out.size * c_in)
    return out

  predict = inference.make_predict_fn(config, with_spa=with_spa)
  image = jax.ShapeDtypeStruct((1, config.model.input_size, config.model.input_size, 3), jnp.float32)
  variables = abstract_variables(config, with_spa)
  with nn.intercept_methods(count):
    jax.eval_shape(predict, variables, {"image": image})
  return float(sum(macs))


def spa_overhead(backbone: str = "res50", size: int = 256) -> dict:
  """G+T vs G+T+SPA for one image without flip test: XLA FLOPs (compiled) and paper GMACs (/1024³)."""
  config = eval_config(backbone, size, 1, flip_test=False)
  image = {"image": jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)}
  row = {"backbone": backbone, "input": size}
  for key, with_spa in (("gt", False), ("gt_spa", True)):
    predict = jax.jit(inference.make_predict_fn(config, with_spa=with_spa))
    row[f"xla_gflop_{key}"] = model_report.xla_flops(predict, abstract_variables(config, with_spa), image) / 1e9
    row[f"paper_gmac_{key}"] = paper_macs(config, with_spa) / 1024**3
  row["xla_increase"] = row["xla_gflop_gt_spa"] / row["xla_gflop_gt"] - 1
  row["paper_increase"] = row["paper_gmac_gt_spa"] / row["paper_gmac_gt"] - 1
  return row


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  train_step.add_model_flags(parser)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=timing.REPEATS)
  parser.add_argument("--spa_only", action="store_true", help="only the SPA overhead (compile only)")
  args = parser.parse_args()
  if args.spa_only:
    print(json.dumps(spa_overhead(args.backbone, args.size), indent=1))
    return
  for flip_test in (False, True):
    print(json.dumps(run(args.backbone, args.size, args.batch, flip_test, args.repeats)))


if __name__ == "__main__":
  main()
