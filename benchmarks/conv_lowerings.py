"""Forward + both gradients of every convolution shape our networks run, under each lowering `layers` offers.

  python -m benchmarks.conv_lowerings                        # the shapes of every train_step row
  python -m benchmarks.conv_lowerings --backbone=res18 --size=64 --batch=32
  python -m benchmarks.conv_lowerings --pointwise --backbone=res50 --size=256 --batch=8   # the 1x1 convolutions

Lowerings: `xla` (lax.conv_general_dilated and XLA's own transposes), `tapwise` (its kernel gradient as one matmul per
tap, `layers.conv_tapwise_kernel_grad`), `im2col` (`layers.conv_im2col`: one matmul over the shifted windows),
`im2col_f32` (the same computed in float32, `layers.conv_im2col_float32`: what bfloat16's smallest planes use),
`onednn` (`native.onednn.conv`: oneDNN's convolutions through XLA FFI; left out when the library is not built);
for the 1x1 convolutions (`--pointwise`): `matmul` (`layers.pointwise`) and `onednn`. `winograd` (3x3 stride-1
convolutions only, `winograd_f2x3`) is a measured and rejected alternative, not used by the models: ask for it with
`--lowerings=onednn,winograd`.
Each shape is timed as a jitted f(x, w) = Σ conv(x, w)·c with its gradient w.r.t. x and w; the table shows ms
and GFLOP/s per lowering and the lowering `layers.conv` picks. This is the op-level evidence for the choice rule.
"""
from __future__ import annotations

import argparse
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np

from ahup_jax.models import layers
from ahup_jax.models.resnet import STAGES
from ahup_jax.native import onednn
from benchmarks import timing

_WINOGRAD_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float32)  # input
_WINOGRAD_G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float32)  # kernel
_WINOGRAD_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)  # output


def _combine(coefficients, arrays):
  """Σ c·a over the nonzero coefficients (written out, so XLA fuses it with its neighbours)."""
  terms = [a if c == 1 else -a if c == -1 else c * a for c, a in zip(coefficients, arrays) if c != 0]
  return functools.reduce(jnp.add, terms)


def winograd_f2x3(x, w, strides=(1, 1), pads=((1, 1), (1, 1))):
  """3x3 stride-1 'same' convolution x [B, H, W, C_in] * w [3, 3, C_in, C_out] by Winograd's F(2x2, 3x3) (Lavin &
  Gray 2016): each 2x2 output tile from a 4x4 input tile with 16 products per channel pair instead of 36, i.e. 16
  batched matmuls [B·tiles, C_in] x [C_in, C_out] (2.25x fewer FLOPs than direct) between linear input, kernel and
  output transforms written as jnp arithmetic (autodiff gives both gradients, also as 16 matmuls). Benchmark only:
  composed from XLA ops its transforms cost what the matmuls save (docs/SPEED.md)."""
  if tuple(strides) != (1, 1) or tuple(map(tuple, pads)) != ((1, 1), (1, 1)) or tuple(w.shape[:2]) != (3, 3):
    raise ValueError(f"winograd_f2x3: 3x3 stride-1 pad-1 convolutions only, got kernel {w.shape}, strides "
                     f"{strides}, pads {pads}")
  return winograd_with(x, w, _WINOGRAD_BT, _WINOGRAD_G, _WINOGRAD_AT)


def winograd_with(x, w, bt, g, at):
  """`winograd_f2x3` with the transforms given (input bt [4, 4], kernel g [4, 3], output at [2, 4]); with their
  absolute values and |x|, |w| it computes the magnitude sums that bound its rounding error (the tests)."""
  b, h, wd, _ = x.shape
  th, tw = -(-h // 2), -(-wd // 2)  # tiles per column / row
  padded = jnp.pad(x, ((0, 0), (1, 2 * th + 3 - h), (1, 2 * tw + 3 - wd), (0, 0)))
  pairs = padded.reshape(b, th + 2, 2, tw + 2, 2, x.shape[-1])  # tile row k of tile t: row pair t + k // 2, k % 2
  rows = [pairs[:, k // 2:k // 2 + th, k % 2] for k in range(4)]  # each [B, th, tw + 2, 2, C_in]
  inputs = []
  for i in range(4):
    row = _combine(bt[i], rows)
    cols = [row[:, :, k // 2:k // 2 + tw, k % 2] for k in range(4)]  # each [B, th, tw, C_in]
    inputs += [_combine(bt[j], cols) for j in range(4)]
  kernel_rows = [_combine(g[i], list(w)) for i in range(4)]  # each [3, C_in, C_out]
  kernels = [_combine(g[j], list(kernel_rows[i])) for i in range(4) for j in range(4)]
  products = jax.lax.dot_general(jnp.stack(inputs).reshape(16, b * th * tw, -1), jnp.stack(kernels),
                                 (((2,), (1,)), ((0,), (0,)))).reshape(4, 4, b, th, tw, -1)
  out = [[_combine(at[r], [_combine(at[c], list(products[i])) for i in range(4)]) for c in range(2)]
         for r in range(2)]  # out[r][c]: output pixel (2t + r, 2u + c), [B, th, tw, C_out]
  out = jnp.stack([jnp.stack(row, axis=3) for row in out], axis=2)  # [B, th, 2, tw, 2, C_out]
  return out.reshape(b, 2 * th, 2 * tw, -1)[:, :h, :wd]


POINTWISE_LOWERINGS = {  # 1x1 convolutions (`--pointwise`): `layers.conv_general_dilated`'s two choices
    "matmul": lambda x, w, s, p: layers.pointwise(x[:, ::s[0], ::s[1]], w[0, 0]),
    "onednn": onednn.conv,
    "chosen": lambda x, w, s, p: layers.conv_general_dilated(x, w, s, p, dimension_numbers=("NHWC", "HWIO", "NHWC")),
}
LOWERINGS = {
    "xla": lambda x, w, s, p: jax.lax.conv_general_dilated(x, w, s, p, dimension_numbers=("NHWC", "HWIO", "NHWC")),
    "tapwise": layers.conv_tapwise_kernel_grad,
    "im2col": layers.conv_im2col,
    "im2col_f32": layers.conv_im2col_float32,
    "onednn": onednn.conv,
    "chosen": layers.conv,
    "winograd": winograd_f2x3,
}
DEFAULT_LOWERINGS = tuple(name for name in LOWERINGS if name != "winograd")  # winograd only when asked for


def conv_shapes(backbone: str, size: int, batch: int) -> list[dict]:
  """Every distinct non-1x1 convolution of G (and T's deconvolution phases) for one input size:
  {"name", "x": [B, H, W, C_in], "w": [kh, kw, C_in, C_out], "strides", "pads", "count"}."""
  kind, stages = STAGES[backbone]
  shapes: dict[tuple, dict] = {}

  def add(name, hw, cin, cout, k, stride, pads):
    key = (hw, cin, cout, k, stride, pads)
    if key in shapes:
      shapes[key]["count"] += 1
      return
    shapes[key] = {"name": name, "x": [batch, hw, hw, cin], "w": [k, k, cin, cout], "strides": (stride, stride),
                   "pads": pads, "count": 1}

  hw = size // 2
  add("stem 7x7/2", size, 3, 64, 7, 2, ((3, 3), (3, 3)))
  hw //= 2
  cin = 64
  for stage, blocks in enumerate(stages):
    width = 64 * 2**stage
    for i in range(blocks):
      stride = 2 if (i == 0 and stage > 0) else 1
      mid_in = cin if kind == "basic" else width
      add(f"layer{stage + 1} 3x3/{stride}", hw, mid_in, width, 3, stride, ((1, 1), (1, 1)))
      hw //= stride
      if kind == "basic":
        add(f"layer{stage + 1} 3x3/1", hw, width, width, 3, 1, ((1, 1), (1, 1)))
      cin = width * (1 if kind == "basic" else 4)
  for i in range(3):  # deconv phases: 4 convs with 2x2 kernels per layer (models/head.py)
    for rows in ((1, 0), (0, 1)):
      for cols in ((1, 0), (0, 1)):
        add(f"deconv{i} phase", hw, cin, 256, 2, 1, (rows, cols))
    hw, cin = hw * 2, 256
  return list(shapes.values())


def pointwise_shapes(backbone: str, size: int, batch: int) -> list[dict]:
  """Every distinct 1x1 convolution of G (bottleneck 1x1s, projection shortcuts) and T's final 1x1 layer, in the
  same form as `conv_shapes` (pads zero)."""
  kind, stages = STAGES[backbone]
  shapes: dict[tuple, dict] = {}

  def add(name, hw, cin, cout, stride):
    key = (hw, cin, cout, stride)
    if key in shapes:
      shapes[key]["count"] += 1
    else:
      shapes[key] = {"name": name, "x": [batch, hw, hw, cin], "w": [1, 1, cin, cout], "strides": (stride, stride),
                     "pads": ((0, 0), (0, 0)), "count": 1}

  hw, cin = size // 4, 64
  for stage, blocks in enumerate(stages):
    width = 64 * 2**stage
    out = width * (1 if kind == "basic" else 4)
    for i in range(blocks):
      stride = 2 if (i == 0 and stage > 0) else 1
      if kind == "bottleneck":
        add(f"layer{stage + 1} 1x1 in", hw, cin, width, 1)
        add(f"layer{stage + 1} 1x1 out", hw // stride, width, out, 1)
      if cin != out or stride != 1:
        add(f"layer{stage + 1} shortcut/{stride}", hw, cin, out, stride)
      hw, cin = hw // stride, out
  add("head final 1x1", hw * 8, 256, 17 * (size // 4), 1)  # 17 joints × depth bins (= input size / 4)
  return list(shapes.values())


def measure(shape: dict, lowering: str, repeats: int, dtype: str = "float32") -> dict | None:
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=shape["x"]), dtype)
  w = jnp.asarray(rng.normal(size=shape["w"]) * 0.05, dtype)
  conv = (POINTWISE_LOWERINGS if shape["w"][:2] == [1, 1] else LOWERINGS)[lowering]
  if lowering == "winograd" and (shape["w"][:2] != [3, 3] or tuple(shape["strides"]) != (1, 1)):
    return None  # F(2x2, 3x3) covers 3x3 stride-1 convolutions only
  out_shape = jax.eval_shape(lambda x, w: conv(x, w, shape["strides"], shape["pads"]), x, w)
  c = jnp.asarray(rng.normal(size=out_shape.shape), dtype)
  step = jax.jit(jax.value_and_grad(lambda x, w: jnp.sum(conv(x, w, shape["strides"], shape["pads"]) * c),
                                    argnums=(0, 1)))
  t, _ = timing.timed(step, x, w, repeats=repeats)
  b, ho, wo, cout = out_shape.shape
  flops = 3 * 2 * b * ho * wo * cout * np.prod(shape["w"][:3])  # forward, input and kernel gradient
  return {"ms": 1e3 * t.median_s, "gflops": timing.gflops(flops, t.median_s)}


def run(backbone: str = "res18", size: int = 64, batch: int = 32, repeats: int = 10,
        lowerings=DEFAULT_LOWERINGS, pointwise: bool = False, dtype: str = "float32") -> list[dict]:
  rows = []
  for shape in (pointwise_shapes if pointwise else conv_shapes)(backbone, size, batch):
    row = {"name": shape["name"], "x": shape["x"], "w": shape["w"], "count": shape["count"]}
    for lowering in lowerings:
      row[lowering] = measure(shape, lowering, repeats, dtype)
    rows.append(row)
    print(json.dumps(row), flush=True)
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--backbone", default="res18", choices=tuple(STAGES))
  parser.add_argument("--size", type=int, default=64)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument("--pointwise", action="store_true",
                      help="the 1x1 convolutions instead (lowerings: matmul, onednn, chosen)")
  parser.add_argument("--lowerings", default="")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                      help="operands' type (bfloat16: `model.dtype=\"bfloat16\"`'s convolutions)")
  args = parser.parse_args()
  names = args.lowerings.split(",") if args.lowerings else [
      name for name in (tuple(POINTWISE_LOWERINGS) if args.pointwise else DEFAULT_LOWERINGS)
      if name != "onednn" or onednn.available()]
  run(args.backbone, args.size, args.batch, args.repeats, names, args.pointwise, args.dtype)


if __name__ == "__main__":
  main()
