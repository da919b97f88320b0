"""Parameter counts and per-image FLOPs of G+T(+SPA) from XLA's cost analysis of the lowered forward."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ahup_jax import models
from ahup_jax.native import onednn


def count_params(tree) -> int:
  """Number of scalars in a pytree of arrays / ShapeDtypeStructs."""
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def _abstract_init(module, *args, **kwargs):
  return jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))


def xla_flops(fn, *args) -> float:
  """XLA's HLO cost analysis of `fn` traced afresh for `args` (shapes only; nothing is executed), with XLA's own
  convolutions: the work of oneDNN's FFI calls (`native.onednn`) is invisible to the cost analysis. On GPUs the
  count is the compiled program's, which leaves out the cuDNN convolutions (docs/SPEED.md): compare CPU counts only."""
  fn = getattr(fn, "__wrapped__", fn)  # a jitted function: trace its Python function, not the cached trace
  with onednn.disabled():
    lowered = jax.jit(lambda *a: fn(*a)).lower(*args)
    cost = lowered.cost_analysis()
    if cost is None:  # GPU backends count only the compiled program
      cost = lowered.compile().cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax returns one dict per computation
    cost = cost[0]
  return float(cost.get("flops", 0.0))


def model_report(config: ml_collections.ConfigDict, *, with_spa: bool = True) -> dict:
  """{params_G, params_T, params_D, params_SPA, flops_GT, flops_SPA} for one image at `config.model.input_size`.

  FLOPs are XLA's count for the inference forward, multiply and add counted separately. The paper's "GFLOPs"
  (SPEC §2.7: 13.097 for res50 at 256²) are multiply-accumulates / 1024³ with each stride-2 transposed conv
  counted over its zero-dilated input (4× its real work); XLA counts the real work: ≈ 7.6 GMAC/1024³ for G+T.
  """
  backbone, head = models.build_pose_net(config.model)
  size = config.model.input_size
  image = jnp.zeros((1, size, size, 3), jnp.float32)
  g_vars = _abstract_init(backbone, image, train=False)
  feats = jax.eval_shape(lambda v: backbone.apply(v, image, train=False), g_vars)
  t_vars = _abstract_init(head, jnp.zeros(feats.shape, feats.dtype), train=False)
  report = {"params_G": count_params(g_vars["params"]), "params_T": count_params(t_vars["params"])}

  if "adapt" in config:
    disc = models.build_discriminator(config.model, config.adapt)
    d_vars = _abstract_init(disc, jnp.zeros(feats.shape, jnp.float32), train=False)
    report["params_D"] = count_params(d_vars["params"])

  def forward(g, t, x):
    return models.soft_argmax(head.apply(t, backbone.apply(g, x, train=False), train=False))

  report["flops_GT"] = xla_flops(forward, g_vars, t_vars, image)

  if with_spa:
    spa = models.SPANet()
    poses = jnp.zeros((1, config.model.num_joints, 3))
    s_vars = _abstract_init(spa, poses, train=False)
    report["params_SPA"] = count_params(s_vars["params"])
    report["flops_SPA"] = xla_flops(lambda v, p: spa.apply(v, p, train=False), s_vars, poses)
  return report


def format_report(report: dict) -> str:
  lines = [f"{k:>10}: {v / 1e6:9.3f} M" if k.startswith("params") else f"{k:>10}: {v / 1e9:9.3f} GFLOP"
           for k, v in report.items()]
  return "\n".join(lines)
