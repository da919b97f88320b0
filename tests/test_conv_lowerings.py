"""`layers.conv`'s lowerings (oneDNN, im2col, per-tap kernel gradient, XLA's) and the 1x1 ones (oneDNN, matmul)
against float64 at every convolution shape the backbones run (ResNet-18 at 64², 96², 128², ResNet-50 at 256²;
batch 1), forward and both gradients.

Tolerance per element, from float32 accumulation: a sum of n products rounds by at most ~√n·ε of the sum of their
magnitudes with blocked accumulation (n·ε in the worst order); the magnitudes are the same convolution applied to
|x|, |w| and |∂L/∂y| (computed exactly in float64). n is the reduction length: kh·kw·C_in for the output,
kh·kw·C_out for the input gradient, B·ho·wo for the kernel gradient. A wrong or missing product is O(1) of a term,
√n/ε ≈ 10⁸ times larger.
"""
from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ahup_jax.models import layers
from benchmarks.conv_lowerings import conv_shapes, pointwise_shapes

EPS = float(np.finfo(np.float32).eps)
BACKBONE_SIZES = (("res18", 64), ("res18", 96), ("res18", 128), ("res50", 256))
DIMS = ("NHWC", "HWIO", "NHWC")


def _unique_shapes() -> list[dict]:
  shapes = {}
  for backbone, size in BACKBONE_SIZES:
    for shape in conv_shapes(backbone, size, batch=1) + pointwise_shapes(backbone, size, batch=1):
      key = (tuple(shape["x"]), tuple(shape["w"]), shape["strides"], shape["pads"])
      shapes.setdefault(key, dict(shape, config=f"{backbone}-{size}",
                                  id=f"{backbone}-{size}-{shape['name'].replace(' ', '')}-{shape['x'][1]}"))
  return list(shapes.values())


SHAPES = _unique_shapes()


def _shape_params() -> list:
  """Every res18-64 shape and the first of each other (backbone-size, lowering) group run by default; the rest,
  the same code paths at other sizes (several minutes of float64 convs on 2 cores), run with `-m slow`."""
  seen, params = set(), []
  for shape in SHAPES:
    x, w, strides, pads = shape["x"], shape["w"], shape["strides"], shape["pads"]
    out = [(x[i + 1] + sum(pads[i]) - w[i]) // strides[i] + 1 for i in range(2)]
    group = (shape["config"], _lowering(out[0] * out[1], x[3], w))
    default = shape["config"] == "res18-64" or group not in seen
    seen.add(group)
    params.append(pytest.param(shape, id=shape["id"], marks=() if default else pytest.mark.slow))
  return params


def _lowering(positions: int, in_channels: int, kernel_shape) -> str:
  if tuple(kernel_shape[:2]) == (1, 1):
    return "1x1 " + layers.pointwise_lowering(positions)
  return layers.lowering(positions, in_channels)


def lax_conv(x, w, strides, pads):
  return jax.lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=DIMS)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _float32_results(x, w, g, strides, pads):
  y, pullback = jax.vjp(lambda x, w: layers.conv_general_dilated(x, w, strides, pads, dimension_numbers=DIMS), x, w)
  return (y, *pullback(g))


def _float64_results(x, w, g, strides, pads):
  """(y, ∂x, ∂w) exactly, and the same three for |x|, |w|, |g| (the magnitude sums of the rounding bound)."""
  with jax.enable_x64(True):
    x, w, g = (jnp.asarray(a, jnp.float64) for a in (x, w, g))

    @jax.jit
    def results(x, w, g):
      y, pullback = jax.vjp(lambda x, w: lax_conv(x, w, strides, pads), x, w)
      return (y, *pullback(g))

    exact = results(x, w, g)
    magnitude = results(jnp.abs(x), jnp.abs(w), jnp.abs(g))
    return [np.asarray(a) for a in exact], [np.asarray(a) for a in magnitude]


@pytest.mark.parametrize("shape", _shape_params())
def test_conv_lowering_equals_float64(shape):
  rng = np.random.default_rng(0)
  x = rng.normal(size=shape["x"]).astype(np.float32)
  w = (rng.normal(size=shape["w"]) / np.sqrt(np.prod(shape["w"][:3]))).astype(np.float32)
  strides, pads = shape["strides"], shape["pads"]
  y_shape = jax.eval_shape(lambda x, w: lax_conv(x, w, strides, pads), x, w).shape
  g = rng.normal(size=y_shape).astype(np.float32)
  got = _float32_results(x, w, g, strides, pads)
  exact, magnitude = _float64_results(x, w, g, strides, pads)
  kh, kw, c_in, c_out = shape["w"]
  lengths = (kh * kw * c_in, kh * kw * c_out, y_shape[0] * y_shape[1] * y_shape[2])
  for what, a, b, m, n in zip(("output", "input gradient", "kernel gradient"), got, exact, magnitude, lengths):
    error = np.abs(np.asarray(a, np.float64) - b)
    bound = np.sqrt(n) * EPS * m + np.finfo(np.float32).tiny
    worst = np.unravel_index(np.argmax(error / bound), error.shape)
    assert np.all(error <= bound), (f"{what} ({_lowering(y_shape[1] * y_shape[2], c_in, shape['w'])}): error "
                                    f"{error[worst]:.3g} > √{n}·ε·{m[worst]:.3g} at {worst}")


@pytest.mark.parametrize("positions,channels,expected", [
    (2 * 2, 512, "im2col"), (4 * 4, 256, "im2col"), (64 * 64, 3, "im2col"), (8 * 8, 128, "xla"),
    (32 * 32, 64, "tapwise")])
def test_lowering_rule_without_onednn(positions, channels, expected, monkeypatch):
  monkeypatch.setattr(layers.onednn, "enabled", lambda: False)
  assert layers.lowering(positions, channels) == expected


needs_onednn = pytest.mark.skipif(not layers.onednn.available(), reason=(
    "the oneDNN convolutions are not built (ahup_jax/native: no C++ compiler or onednn wheels; "
    "`python -m ahup_jax.native.onednn` says why)"))


@needs_onednn
@pytest.mark.parametrize("positions,channels,dtype,expected", [
    (12 * 12, 128, jnp.float32, "onednn"), (64 * 64, 3, jnp.float32, "onednn"), (4 * 4, 256, jnp.float32, "onednn"),
    (3 * 3, 512, jnp.float32, "im2col"), (2 * 2, 512, jnp.float32, "im2col"), (32 * 32, 64, jnp.float64, "tapwise"),
    (8 * 8, 128, jnp.float64, "xla"), (24 * 24, 64, jnp.bfloat16, "onednn"), (4 * 4, 256, jnp.bfloat16, "onednn"),
    (3 * 3, 512, jnp.bfloat16, "im2col" if layers.onednn.cpu_vendor() == "GenuineIntel" else "onednn"),
    (2 * 2, 512, jnp.bfloat16, "im2col")])
def test_lowering_rule_with_onednn(positions, channels, dtype, expected):
  """oneDNN takes float32 planes from 4x4 up and bfloat16 planes from 3x3 up (4x4 on Intel CPUs); float64 (the
  gradient checks) and the smaller planes keep the rest."""
  assert layers.lowering(positions, channels, dtype) == expected


@pytest.mark.parametrize("positions,dtype,expected", [
    (16 * 16, jnp.float32, "onednn"), (64 * 64, jnp.float32, "onednn"), (8 * 8, jnp.float32, "matmul"),
    (64 * 64, jnp.float64, "matmul"), (16 * 16, jnp.bfloat16, "onednn")])
def test_pointwise_lowering_rule(positions, dtype, expected):
  """1x1 convolutions: oneDNN for float32 planes from 16x16 up, matmuls for the rest (and without oneDNN)."""
  assert layers.pointwise_lowering(positions, dtype) == (expected if layers.onednn.enabled() else "matmul")


def test_several_devices_keep_xla_convolutions(monkeypatch):
  """An FFI call cannot be partitioned: under a multi-device mesh the lowering rule does not pick oneDNN."""
  monkeypatch.setattr(jax, "device_count", lambda: 2)
  assert not layers.onednn.enabled()
  assert layers.lowering(32 * 32, 64) == "tapwise"
  assert layers.pointwise_lowering(64 * 64) == "matmul"


@pytest.mark.parametrize("hw,channels", [(2, 16), (8, 8), (40, 8)])
def test_lowering_shows_in_the_program(hw, channels):
  """On CPU, of the two gradient convolutions (input, kernel; the unused forward is dropped): im2col keeps none,
  the per-tap kernel gradient one, XLA's both; oneDNN none, but its two backward FFI calls."""
  x, w = jnp.ones((2, hw, hw, channels)), jnp.ones((3, 3, channels, 4))
  lowered = layers.lowering(hw * hw, channels)
  text = jax.jit(jax.grad(lambda x, w: layers.conv(x, w, (1, 1), ((1, 1), (1, 1))).sum(), argnums=(0, 1))).lower(
      x, w).as_text()
  assert text.count("stablehlo.convolution") == {"im2col": 0, "tapwise": 1, "xla": 2, "onednn": 0}[lowered]
  assert text.count("AhupConvBwd") == (2 if lowered == "onednn" else 0)


@needs_onednn
def test_onednn_gradients_are_bitwise_repeatable():
  """oneDNN's kernel gradient reduces over the batch and positions across threads: the same call twice gives the
  same bits (what the project's determinism claim rests on), and a conv's forward equals its own re-run."""
  rng = np.random.default_rng(1)
  x = rng.normal(size=(6, 24, 24, 32)).astype(np.float32)
  w = (rng.normal(size=(3, 3, 32, 48)) / 17).astype(np.float32)
  step = jax.jit(jax.value_and_grad(lambda x, w: jnp.sum(jnp.sin(layers.onednn.conv(x, w, (1, 1), ((1, 1), (1, 1))))),
                                    argnums=(0, 1)))
  first, second = step(x, w), step(x, w)
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), first, second)


def test_other_platforms_keep_xla_convolutions():
  """The non-CPU branch of an im2col-lowered shape is the plain convolution (what GPU/TPU compile)."""
  x, w = jnp.ones((2, 2, 2, 16)), jnp.ones((3, 3, 16, 4))
  for platform, convolutions in (("cpu", 0), ("cuda", 1)):
    text = jax.jit(lambda x, w: layers.conv(x, w, (1, 1), ((1, 1), (1, 1)))).trace(x, w).lower(
        lowering_platforms=(platform,)).as_text()
    assert text.count("stablehlo.convolution") == convolutions, platform


@needs_onednn
@pytest.mark.parametrize("hw,channels,dtype", [(3, 64, jnp.float32), (6, 32, jnp.float32), (9, 16, jnp.float32),
                                              (6, 32, jnp.bfloat16)])
def test_onednn_transposed_conv_equals_float64(hw, channels, dtype):
  """`Deconv4x4` on oneDNN's transposed convolution (input planes ≥ 3x3) = `nn.ConvTranspose` in float64: output
  and both gradients within the fp32 accumulation bound (reduction lengths: 4 taps·C_in per output, 16 taps·C_out
  per input gradient, B·h·w per kernel entry; flip or layout errors are O(1)); in bfloat16 (operands rounded to it
  first) plus one bfloat16 rounding of each result."""
  from flax import linen as nn
  from ahup_jax.models import head
  assert hw * hw >= head.ONEDNN_MIN_POSITIONS
  rng = np.random.default_rng(2)
  as_dtype = lambda a: np.asarray(jnp.asarray(a, dtype), np.float32)  # values representable in `dtype`
  x = as_dtype(rng.normal(size=(2, hw, hw + 1, channels)))
  kernel = as_dtype(rng.normal(size=(4, 4, channels, 8)) / np.sqrt(4 * channels))
  y_shape = (2, 2 * hw, 2 * hw + 2, 8)
  g = as_dtype(rng.normal(size=y_shape))

  def results(module, x, kernel, g):
    y, pullback = jax.vjp(lambda x, k: module.apply({"params": {"kernel": k}}, x), x, kernel)
    return (y, *pullback(g.astype(y.dtype)))

  got = jax.jit(functools.partial(results, head.Deconv4x4(8, dtype=dtype)))(x, kernel, g)
  with jax.enable_x64(True):
    reference = jax.jit(functools.partial(results, nn.ConvTranspose(8, (4, 4), (2, 2), ((2, 2), (2, 2)),
                                                                   use_bias=False, param_dtype=jnp.float64)))
    args = [jnp.asarray(a, jnp.float64) for a in (x, kernel, g)]
    exact = [np.asarray(a) for a in reference(*args)]
    magnitude = [np.asarray(a) for a in reference(*[jnp.abs(a) for a in args])]
  roundoff = BF16_ROUNDOFF if dtype == jnp.bfloat16 else 0.0
  for what, a, b, m, n in zip(("output", "input gradient", "kernel gradient"), got, exact, magnitude,
                              (4 * channels, 16 * 8, 2 * hw * (hw + 1))):
    accumulation = np.sqrt(n) * EPS * m + np.finfo(np.float32).tiny
    error = np.abs(np.asarray(a, np.float64) - b)
    assert np.all(error <= roundoff * (np.abs(b) + accumulation) + accumulation), (what, float(error.max()))


# bfloat16's unit roundoff (8 significand bits): each bfloat16 result is the float32-accumulated value rounded once.
BF16_ROUNDOFF = 2.0 ** -8


@needs_onednn
@pytest.mark.parametrize("x_shape,w_shape,strides,pads", [
    ((2, 24, 24, 64), (3, 3, 64, 64), (1, 1), ((1, 1), (1, 1))),    # ResNet-18 96²'s layer1
    ((2, 96, 96, 3), (7, 7, 3, 64), (2, 2), ((3, 3), (3, 3))),      # the stem
    ((2, 8, 8, 128), (3, 3, 128, 256), (2, 2), ((1, 1), (1, 1))),   # ResNet-18 128²'s layer4 entry (4² out)
    ((2, 4, 4, 64), (2, 2, 64, 32), (1, 1), ((1, 0), (0, 1))),      # a transposed conv's phase on a 4² plane
    ((2, 32, 32, 64), (1, 1, 64, 128), (2, 2), ((0, 0), (0, 0)))])  # a strided 1x1 shortcut (16² out)
def test_onednn_bfloat16_equals_float64(x_shape, w_shape, strides, pads):
  """oneDNN's bfloat16 convolution (`model.dtype="bfloat16"`) on bfloat16 operands = float64 on the same values:
  output and input gradient (bfloat16) within one bfloat16 rounding of the float32-accumulated value, the kernel
  gradient (float32 from oneDNN, then the kernel's bfloat16) likewise. A missing tap or a layout error is O(1)."""
  rng = np.random.default_rng(3)
  as_bf16 = lambda a: jnp.asarray(a, jnp.bfloat16)
  x = as_bf16(rng.normal(size=x_shape))
  w = as_bf16(rng.normal(size=w_shape) / np.sqrt(np.prod(w_shape[:3])))
  y_shape = jax.eval_shape(lambda x, w: lax_conv(x, w, strides, pads), x, w).shape
  g = as_bf16(rng.normal(size=y_shape))
  assert (layers.pointwise_lowering(y_shape[1] * y_shape[2], jnp.bfloat16) if w_shape[:2] == (1, 1)
          else layers.lowering(y_shape[1] * y_shape[2], x_shape[3], jnp.bfloat16)) == "onednn"
  got = _float32_results(x, w, g, strides, pads)
  assert [a.dtype for a in got] == [jnp.bfloat16] * 3
  exact, magnitude = _float64_results(*(np.asarray(a, np.float32) for a in (x, w, g)), strides, pads)
  kh, kw, c_in, c_out = w_shape
  lengths = (kh * kw * c_in, kh * kw * c_out, y_shape[0] * y_shape[1] * y_shape[2])
  for what, a, b, m, n in zip(("output", "input gradient", "kernel gradient"), got, exact, magnitude, lengths):
    accumulation = np.sqrt(n) * EPS * m + np.finfo(np.float32).tiny
    error = np.abs(np.asarray(a, np.float64) - b)
    bound = BF16_ROUNDOFF * (np.abs(b) + accumulation) + accumulation
    assert np.all(error <= bound), (what, float(np.max(error / bound)))
    # ... and not merely as good as float32 by accident of the data: the rounding to bfloat16 shows.
    assert np.max(error / (np.abs(b) + accumulation)) > EPS * 16, what


@needs_onednn
@pytest.mark.parametrize("x_shape,w_shape,strides,pads", [
    ((2, 24, 24, 64), (3, 3, 64, 64), (1, 1), ((1, 1), (1, 1))),    # ResNet-18 96²'s layer1
    ((2, 8, 8, 128), (3, 3, 128, 256), (2, 2), ((1, 1), (1, 1))),   # ResNet-18 128²'s layer4 entry (4² out)
    ((2, 32, 32, 64), (1, 1, 64, 128), (2, 2), ((0, 0), (0, 0)))])  # a strided 1x1 shortcut (16² out)
def test_onednn_bfloat16_takes_float32_kernels(x_shape, w_shape, strides, pads):
  """bfloat16 activations with the float32 kernel `layers.Conv` passes uncast: oneDNN rounds the kernel to bfloat16
  itself (output and input gradient identical, bit for bit, to those with the kernel rounded beforehand) and
  returns the kernel gradient in float32 unrounded: within float32 accumulation of the exact sums (bfloat16 x and
  ∂L/∂y multiply exactly in float32), with no bfloat16 rounding on top."""
  rng = np.random.default_rng(4)
  as_bf16 = lambda a: jnp.asarray(a, jnp.bfloat16)
  x = as_bf16(rng.normal(size=x_shape))
  w = jnp.asarray(rng.normal(size=w_shape) / np.sqrt(np.prod(w_shape[:3])), jnp.float32)
  assert np.any(np.asarray(as_bf16(w), np.float32) != np.asarray(w))  # rounding the kernel changes it
  y_shape = jax.eval_shape(lambda x, w: lax_conv(x, w, strides, pads), x, as_bf16(w)).shape
  g = as_bf16(rng.normal(size=y_shape))
  y, x_grad, w_grad = _float32_results(x, w, g, strides, pads)
  assert (y.dtype, x_grad.dtype, w_grad.dtype) == (jnp.bfloat16, jnp.bfloat16, jnp.float32)
  rounded_first = _float32_results(x, as_bf16(w), g, strides, pads)
  np.testing.assert_array_equal(np.asarray(y, np.float32), np.asarray(rounded_first[0], np.float32))
  np.testing.assert_array_equal(np.asarray(x_grad, np.float32), np.asarray(rounded_first[1], np.float32))
  exact, magnitude = _float64_results(*(np.asarray(a, np.float32) for a in (x, w, g)), strides, pads)
  accumulation = np.sqrt(np.prod(y_shape[:3])) * EPS * magnitude[2] + np.finfo(np.float32).tiny
  error = np.abs(np.asarray(w_grad, np.float64) - exact[2])
  assert np.all(error <= accumulation), float(np.max(error / accumulation))
  # The bound is tighter than the kernel gradient's rounding to bfloat16 (what the calls did before), by far:
  rounded = np.abs(np.asarray(as_bf16(w_grad), np.float64) - exact[2])
  assert np.max(rounded / accumulation) > 4


@pytest.mark.parametrize("x_shape,w_shape,strides,pads", [
    ((2, 4, 4, 128), (3, 3, 128, 256), (2, 2), ((1, 1), (1, 1))),   # ResNet-18 64²'s layer4 entry (2² out)
    ((2, 2, 2, 256), (3, 3, 256, 64), (1, 1), ((1, 1), (1, 1))),    # its layer4 3x3 (2² planes)
    ((2, 2, 2, 64), (2, 2, 64, 32), (1, 1), ((1, 0), (0, 1)))])     # a transposed conv's phase on a 2² plane
def test_bfloat16_small_planes_are_float32_inside(x_shape, w_shape, strides, pads):
  """bfloat16 convolutions on 2² planes run as im2col matmuls in float32 (`layers.conv_im2col_float32`): the float32
  kernel as it is, the output and input gradient the float32-accumulated values of the exact sums rounded once to
  bfloat16, the kernel gradient float32 within float32 accumulation (no bfloat16 rounding)."""
  assert layers.lowering(2 * 2, x_shape[3], jnp.bfloat16) == "im2col"
  rng = np.random.default_rng(5)
  as_bf16 = lambda a: jnp.asarray(a, jnp.bfloat16)
  x = as_bf16(rng.normal(size=x_shape))
  w = jnp.asarray(rng.normal(size=w_shape) / np.sqrt(np.prod(w_shape[:3])), jnp.float32)
  y_shape = jax.eval_shape(lambda x, w: lax_conv(x, w, strides, pads), x, as_bf16(w)).shape
  g = as_bf16(rng.normal(size=y_shape))
  got = _float32_results(x, w, g, strides, pads)
  assert [a.dtype for a in got] == [jnp.bfloat16, jnp.bfloat16, jnp.float32]
  exact, magnitude = _float64_results(*(np.asarray(a, np.float32) for a in (x, w, g)), strides, pads)
  kh, kw, c_in, c_out = w_shape
  lengths = (kh * kw * c_in, kh * kw * c_out, y_shape[0] * y_shape[1] * y_shape[2])
  for what, a, b, m, n, roundoff in zip(("output", "input gradient", "kernel gradient"), got, exact, magnitude,
                                        lengths, (BF16_ROUNDOFF, BF16_ROUNDOFF, 0.0)):
    accumulation = np.sqrt(n) * EPS * m + np.finfo(np.float32).tiny
    error = np.abs(np.asarray(a, np.float64) - b)
    assert np.all(error <= roundoff * (np.abs(b) + accumulation) + accumulation), (what, float(error.max()))


@needs_onednn
def test_bfloat16_pose_net_runs_its_large_convolutions_on_onednn_in_bfloat16():
  """`model.dtype="bfloat16"` sends G's large-plane convolutions and T's transposed convolutions to the bfloat16 oneDNN
  calls, forward and backward (no float32 oneDNN call, whose operands would have been upcast), with the float32
  kernels as they are; the parameters' gradients stay float32. (Each call's values: the bfloat16 tests above; the
  net is only traced here.)"""
  from ahup_jax import models
  from configs import saa
  model_cfg = saa.get_config("synth").model
  model_cfg.backbone, model_cfg.input_size, model_cfg.depth_bins, model_cfg.dtype = "res18", 64, 16, "bfloat16"
  backbone, head = models.build_pose_net(model_cfg)
  images = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
  g_vars = jax.eval_shape(lambda x: backbone.init(jax.random.PRNGKey(0), x, train=False), images)
  feats = jax.eval_shape(lambda v, x: backbone.apply(v, x, train=False), g_vars, images)
  t_vars = jax.eval_shape(lambda f: head.init(jax.random.PRNGKey(1), f, train=False), feats)

  def loss(g_vars, t_vars, images):  # train mode, as the step
    feats, _ = backbone.apply(g_vars, images, train=True, mutable=["batch_stats"])
    logits, _ = head.apply(t_vars, feats, train=True, mutable=["batch_stats"])
    return jnp.sum(models.soft_argmax(logits) ** 2)

  grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
  text = grad.lower(g_vars, t_vars, images).as_text()  # traced and lowered only: no compilation
  for target in ("AhupConvFwdBf16", "AhupConvBwdDataBf16", "AhupConvBwdWeightsBf16", "AhupDeconvFwdBf16",
                 "AhupDeconvBwdDataBf16", "AhupDeconvBwdWeightsBf16"):
    assert target in text, target
  assert not re.search(r"@Ahup(Conv|Deconv)(Fwd|BwdData|BwdWeights)\(", text)  # a float32 call (no Bf16 suffix)
  # The kernels go in as the float32 parameters (oneDNN rounds them): no bfloat16 copy of a kernel is made.
  kernel_operands = re.findall(r"@Ahup(?:Conv|Deconv)(?:Fwd|BwdData)Bf16\(.*: \(tensor<[^>]*>, tensor<[^>]*x(\w+)>\)",
                               text)
  assert len(kernel_operands) > 20 and set(kernel_operands) == {"f32"}, set(kernel_operands)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(jax.eval_shape(grad, g_vars, t_vars, images)))


@pytest.mark.parametrize("x_shape,c_out", [((2, 6, 6, 16), 8), ((1, 5, 7, 8), 4), ((2, 3, 3, 32), 16)])
def test_winograd_benchmark_lowering_equals_float64(x_shape, c_out):
  """`benchmarks.conv_lowerings.winograd_f2x3` (measured and rejected, docs/SPEED.md), forward and both gradients,
  odd planes included (the tiles overhang them). Its rounding is bounded like a direct convolution's, but with the
  magnitudes of its own arithmetic: the same algorithm in float64 with |x|, |w|, |∂L/∂y| and the absolute values of
  its transforms, whose sums (≤ 4 terms per axis, input, kernel and output: ≤ 12 roundings in a chain) come on top of
  the √n of the channel (or position) reduction."""
  from benchmarks import conv_lowerings
  rng = np.random.default_rng(1)
  x = rng.normal(size=x_shape).astype(np.float32)
  w = (rng.normal(size=(3, 3, x_shape[-1], c_out)) / np.sqrt(9 * x_shape[-1])).astype(np.float32)
  g = rng.normal(size=(*x_shape[:3], c_out)).astype(np.float32)
  strides, pads = (1, 1), ((1, 1), (1, 1))
  y, pullback = jax.vjp(lambda x, w: conv_lowerings.winograd_f2x3(x, w, strides, pads), x, w)
  got = (y, *pullback(g))
  exact, _ = _float64_results(x, w, g, strides, pads)
  with jax.enable_x64(True):
    transforms = [np.abs(t).astype(np.float64) for t in (conv_lowerings._WINOGRAD_BT, conv_lowerings._WINOGRAD_G,
                                                         conv_lowerings._WINOGRAD_AT)]
    ax, aw, ag = (jnp.asarray(np.abs(a), jnp.float64) for a in (x, w, g))
    m_y, m_pullback = jax.vjp(lambda x, w: conv_lowerings.winograd_with(x, w, *transforms), ax, aw)
    magnitude = [np.asarray(a) for a in (m_y, *m_pullback(ag))]
  tiles = x_shape[0] * -(-x_shape[1] // 2) * -(-x_shape[2] // 2)
  for what, a, b, m, n in zip(("output", "input gradient", "kernel gradient"), got, exact, magnitude,
                              (x_shape[-1], c_out, tiles)):
    error = np.abs(np.asarray(a, np.float64) - b)
    bound = (np.sqrt(n) + 12) * EPS * m + np.finfo(np.float32).tiny
    assert np.all(error <= bound), f"{what}: worst error / bound {np.max(error / bound):.3g}"
