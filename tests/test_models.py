"""G, T, soft-argmax, D and the SPA net: shapes, exact indices, parameter counts (SPEC §2.7), init statistics."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ahup_jax import models
from ahup_jax.model_report import count_params
from ahup_jax.models import initializers
from configs import saa


def _abstract_params(module, *args, **kwargs):
  return jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))["params"]


@pytest.mark.parametrize("backbone", ["res18", "res34", "res50", "res101", "res152"])
@pytest.mark.parametrize("size", [64, 128, 256])
def test_pose_net_shapes(backbone, size):
  """features = input/32 with 512 or 2048 channels; heatmaps = input/4 (abstract evaluation, no FLOPs spent)."""
  config = saa.get_config()
  config.model.backbone, config.model.input_size, config.model.depth_bins = backbone, size, size // 4
  g, t = models.build_pose_net(config.model)
  x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
  g_vars = jax.eval_shape(lambda x: g.init(jax.random.key(0), x, train=False), x)
  feats = jax.eval_shape(lambda v, x: g.apply(v, x, train=False), g_vars, x)
  assert feats.shape == (2, size // 32, size // 32, models.feature_channels(backbone))
  t_vars = jax.eval_shape(lambda f: t.init(jax.random.key(0), f, train=False), feats)
  logits = jax.eval_shape(lambda v, f: t.apply(v, f, train=False), t_vars, feats)
  assert logits.shape == (2, size // 4, size // 4, 17, size // 4)  # [B, H, W, J, D]


def test_small_forward_runs_and_is_finite():
  config = saa.get_config("synth_tiny")
  g, t = models.build_pose_net(config.model)
  x = jax.random.normal(jax.random.key(0), (2, 64, 64, 3))
  g_vars = g.init(jax.random.key(1), x, train=False)
  feats = g.apply(g_vars, x, train=False)
  t_vars = t.init(jax.random.key(2), feats, train=False)
  coords = models.soft_argmax(t.apply(t_vars, feats, train=False))
  assert coords.shape == (2, 17, 3)
  assert np.all(np.isfinite(coords)) and np.all((coords >= 0) & (coords <= 15))


def test_transposed_conv_doubles_spatial_size_exactly():
  head = models.VolumetricHead(num_joints=2, depth_bins=4, channels=8)
  for h, w in [(1, 1), (2, 3), (8, 8)]:
    f = jnp.ones((1, h, w, 16))
    v = head.init(jax.random.key(0), f, train=False)
    assert head.apply(v, f, train=False).shape == (1, 8 * h, 8 * w, 2, 4)


def test_head_channel_layout_is_joint_major():
  """Final-conv channel c = j*D + k must land at logits[..., j, k] (SPEC §2.3)."""
  head = models.VolumetricHead(num_joints=3, depth_bins=4, channels=8)
  f = jnp.ones((1, 1, 1, 5))
  v = head.init(jax.random.key(0), f, train=False)
  j, k = 2, 1
  bias = np.zeros(12, np.float32)
  bias[j * 4 + k] = 7.0
  params = jax.tree.map(lambda x: x, v["params"])
  params["final_layer"] = {"kernel": jnp.zeros_like(params["final_layer"]["kernel"]), "bias": jnp.asarray(bias)}
  out = head.apply({"params": params, "batch_stats": v["batch_stats"]}, f, train=False)
  assert float(out[0, :, :, j, k].min()) == 7.0
  assert float(jnp.abs(out).sum()) == pytest.approx(7.0 * 8 * 8)


def test_soft_argmax_delta_returns_exact_index():
  b, j, d, h, w = 2, 3, 5, 6, 7
  logits = np.zeros((b, j, d, h, w), np.float32)
  spots = [[(1, 2, 3), (4, 0, 6), (0, 5, 0)], [(2, 2, 2), (3, 1, 4), (4, 5, 6)]]
  for bi, row in enumerate(spots):
    for ji, (k, v, u) in enumerate(row):
      logits[bi, ji, k, v, u] = 100.0
  coords = np.asarray(models.soft_argmax(channels_last(logits)))
  expected = np.array([[(u, v, k) for (k, v, u) in row] for row in spots], np.float32)
  np.testing.assert_allclose(coords, expected, atol=1e-4)


def channels_last(volume):
  """The official heatmap volume [B, J, D, H, W] in VolumetricHead's layout [B, H, W, J, D]."""
  return jnp.transpose(jnp.asarray(volume), (0, 3, 4, 1, 2))


def _soft_argmax_reference(logits: np.ndarray) -> np.ndarray:
  """[B, J, D, H, W] → [B, J, 3] in float64, straight from the definition (one softmax over D·H·W per joint)."""
  x = logits.astype(np.float64)
  b, j, d, h, w = x.shape
  flat = x.reshape(b, j, -1)
  p = np.exp(flat - flat.max(-1, keepdims=True))
  p = (p / p.sum(-1, keepdims=True)).reshape(x.shape)
  return np.stack([
      np.einsum("bjkvu,u->bj", p, np.arange(w)),
      np.einsum("bjkvu,v->bj", p, np.arange(h)),
      np.einsum("bjkvu,k->bj", p, np.arange(d))], -1)


def test_soft_argmax_matches_float64_reference_and_shift_invariance():
  volume = 3.0 * jax.random.normal(jax.random.key(0), (2, 4, 8, 9, 10))  # [B, J, D, H, W], all sides distinct
  logits = channels_last(volume)
  ours = np.asarray(models.soft_argmax(logits))
  np.testing.assert_allclose(ours, _soft_argmax_reference(np.asarray(volume)), atol=1e-5)
  shifted = np.asarray(models.soft_argmax(logits + 123.0))
  np.testing.assert_allclose(shifted, ours, atol=1e-4)
  # bf16 input is still reduced in float32
  assert models.soft_argmax(logits.astype(jnp.bfloat16)).dtype == jnp.float32


def test_parameter_counts_match_spec():
  """SPEC §2.7: G 23.51 M, T ≈ 10.77 M, D(SA, k=1) ≈ 0.18 M, SPA ≈ 4.31 M (within 0.5 %)."""
  config = saa.get_config()
  g, t = models.build_pose_net(config.model)
  x = jnp.zeros((1, 256, 256, 3))
  g_params = _abstract_params(g, x, train=False)
  feats = jnp.zeros((1, 8, 8, 2048))
  t_params = _abstract_params(t, feats, train=False)
  d_params = _abstract_params(models.build_discriminator(config.model, config.adapt), feats)
  spa_params = _abstract_params(models.SPANet(), jnp.zeros((1, 17, 3)), train=False)
  for got, want in [(count_params(g_params), 23.51e6), (count_params(t_params), 10.77e6),
                    (count_params(d_params), 0.178e6), (count_params(spa_params), 4.314e6)]:
    assert abs(got - want) / want < 0.005, (got, want)
  assert count_params(t_params["deconv_layers_0"]) == 2048 * 256 * 16


def test_discriminator_outputs():
  feats = jnp.ones((3, 8, 8, 64))
  for mode, shapes in [("SA", [(3, 8, 8, 17)]), ("C", [(3, 8, 8, 1)]),
                       ("C1", [(3, 8, 8, 1), (3, 1)]), ("SA1", [(3, 8, 8, 17), (3, 1)])]:
    d = models.make_discriminator(mode, num_joints=17, n_layers=3, kernel=1, ndf=8)
    v = d.init(jax.random.key(0), feats)
    out = d.apply(v, feats, mutable=["batch_stats"])[0]
    out = out if isinstance(out, tuple) else (out,)
    assert [o.shape for o in out] == shapes
  with pytest.raises(ValueError, match="mode_D"):
    models.make_discriminator("X", num_joints=17, n_layers=3, kernel=1, ndf=8)


def test_kernel3_discriminator_keeps_spatial_size():
  d = models.make_discriminator("SA", num_joints=17, n_layers=3, kernel=3, ndf=8)
  feats = jnp.ones((1, 8, 8, 32))
  v = d.init(jax.random.key(0), feats)
  assert d.apply(v, feats, mutable=["batch_stats"])[0].shape == (1, 8, 8, 17)


def test_spa_net_modes():
  poses = jax.random.uniform(jax.random.key(0), (4, 17, 3)) * 64
  net = models.SPANet()
  v = net.init(jax.random.key(1), poses, train=False)
  zero_out = jax.tree.map(jnp.zeros_like, v["params"]["w2"])
  params = dict(v["params"], w2=zero_out)
  adapted = net.apply({"params": params, "batch_stats": v["batch_stats"]}, poses, train=False)
  np.testing.assert_allclose(adapted, poses, atol=1e-6)  # mode 2 with f ≡ 0 is the identity
  direct = models.SPANet(residual=False).apply({"params": params, "batch_stats": v["batch_stats"]}, poses,
                                               train=False)
  np.testing.assert_allclose(direct, 0.0, atol=1e-6)
  train_out, _ = net.apply(v, poses, train=True, rngs={"dropout": jax.random.key(2)}, mutable=["batch_stats"])
  assert train_out.shape == (4, 17, 3)


def test_xavier_002_statistics():
  shape = (3, 3, 256, 512)
  kernel = initializers.xavier_002(jax.random.key(0), shape)
  receptive = 9
  want = 0.02 * np.sqrt(2.0 / (256 * receptive + 512 * receptive))
  assert abs(float(jnp.std(kernel)) - want) / want < 0.1
  assert float(jnp.abs(kernel).max()) > 2.5 * want  # untruncated normal has tails
  scale = initializers.bn_scale_normal(jax.random.key(1), (10000,))
  assert abs(float(scale.mean()) - 1.0) < 0.002 and abs(float(scale.std()) - 0.02) < 0.002
  he = initializers.he_normal(jax.random.key(2), (1024, 1024))
  assert abs(float(he.std()) - np.sqrt(2 / 1024)) / np.sqrt(2 / 1024) < 0.05
  with pytest.raises(ValueError, match="unknown init"):
    initializers.kernel_init("nope")


def test_model_report_counts_and_flops():
  """XLA FLOPs vs hand counts: SPA ≈ 4.30 M MACs (SPEC §2.7); res50 G+T at 256² ≈ 5.35 G (ResNet-50 4.11 G at
  224², ×(256/224)²) + 3.02 G (deconvs over their real inputs + final 1x1 conv) multiply-adds."""
  from ahup_jax.model_report import model_report
  config = saa.get_config()
  report = model_report(config)
  assert report["params_SPA"] == count_params(
      _abstract_params(models.SPANet(), jnp.zeros((1, 17, 3)), train=False))
  assert abs(report["flops_SPA"] / 2 - 4.30e6) / 4.30e6 < 0.03
  head_macs = 8 * 8 * 2048 * 256 * 16 + 16 * 16 * 256 * 256 * 16 + 32 * 32 * 256 * 256 * 16 + 64 * 64 * 256 * 1088
  want_macs = 4.11e9 * (256 / 224) ** 2 + head_macs
  assert abs(report["flops_GT"] / 2 - want_macs) / want_macs < 0.05
  assert abs(report["params_G"] + report["params_T"] - 34.3e6) / 34.3e6 < 0.005


def test_subpixel_deconv_equals_flax_conv_transpose():
  """Deconv4x4 computes PyTorch's ConvTranspose2d(4, 2, 1) = flax ConvTranspose with padding 2, same parameter."""
  from flax import linen as nn
  from ahup_jax.models.head import Deconv4x4
  x = jax.random.normal(jax.random.key(0), (2, 3, 5, 6))
  reference = nn.ConvTranspose(4, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)), use_bias=False)
  variables = reference.init(jax.random.key(1), x)
  ours = Deconv4x4(4).apply(variables, x)
  assert ours.shape == (2, 6, 10, 4)
  np.testing.assert_allclose(ours, reference.apply(variables, x), atol=1e-5)


@pytest.mark.parametrize("features", [3, 8])  # fewer / more output than input channels: both kernel-gradient forms
@pytest.mark.parametrize("kernel,strides,padding,size", [
    ((1, 1), (1, 1), "SAME", 6), ((1, 1), (2, 2), "SAME", 7), ((1, 1), (2, 2), "VALID", 6),
    ((1, 1), (1, 1), 0, 5), ((3, 3), (2, 2), 1, 7), ((1, 1), (1, 1), 1, 5)])
def test_pointwise_conv_as_dot_equals_nn_conv(kernel, strides, padding, size, features):
  """layers.Conv (1x1 kernels as a dot) = nn.Conv: same parameter tree, outputs and gradients, any stride/size.

  Padded 1x1 and 3x3 kernels take `layers.conv`: im2col dots or oneDNN's FFI calls (no XLA convolution left), or
  lax.conv_general_dilated (per `layers.lowering`).
  """
  from flax import linen as nn
  from ahup_jax.models import layers
  x = jax.random.normal(jax.random.key(0), (2, size, size, 5))
  reference = nn.Conv(features, kernel, strides, padding=padding)
  ours = layers.Conv(features, kernel, strides, padding=padding)
  variables = reference.init(jax.random.key(1), x)
  assert jax.tree.map(jnp.shape, ours.init(jax.random.key(1), x)) == jax.tree.map(jnp.shape, variables)

  def loss(module):
    return lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)))

  np.testing.assert_allclose(ours.apply(variables, x), reference.apply(variables, x), atol=1e-5)
  ours_grads = jax.grad(loss(ours), argnums=(0, 1))(variables, x)
  reference_grads = jax.grad(loss(reference), argnums=(0, 1))(variables, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4), ours_grads, reference_grads)
  lowered = jax.jit(ours.apply).lower(variables, x).as_text()
  pointwise = kernel == (1, 1) and padding in ("SAME", "VALID", 0)
  out_size = (size + 2 * (padding if isinstance(padding, int) else 0) - kernel[0]) // strides[0] + 1
  without_xla_conv = pointwise or layers.lowering(out_size * out_size, x.shape[-1]) in ("im2col", "onednn")
  assert ("convolution" not in lowered) == without_xla_conv


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_pointwise_conv_with_bias_equals_nn_conv(dtype):
  """layers.PointwiseConv (T's final layer) = nn.Conv(features, (1, 1)): the same parameter tree and initial values
  (checkpoints and the PyTorch importer address `final_layer/{kernel,bias}`), outputs, and gradients. The bias
  gradient is the float32 sum of ∂L/∂y over B·H·W positions: within float32 accumulation of the exact sum, and in
  bfloat16 not rounded to bfloat16 (what autodiff through flax's bfloat16 bias add returns)."""
  from flax import linen as nn
  from ahup_jax.models import layers
  x = jax.random.normal(jax.random.key(0), (2, 16, 16, 24))
  reference = nn.Conv(40, (1, 1), dtype=dtype, kernel_init=initializers.xavier_002)
  ours = layers.PointwiseConv(40, dtype=dtype, kernel_init=initializers.xavier_002)
  variables = reference.init(jax.random.key(1), x)
  jax.tree.map(np.testing.assert_array_equal, ours.init(jax.random.key(1), x), variables)
  variables = {"params": {"kernel": variables["params"]["kernel"], "bias": jnp.linspace(-1, 1, 40)}}
  # float32: 24-term dot products; bfloat16: both sides round the conv's result and the bias add to bfloat16 (8
  # significant bits), from float32 sums in different orders, so they may differ by ~2 ulps (2^-7 relative each).
  tolerance = 1e-5 if dtype == jnp.float32 else 2 ** -7
  y = ours.apply(variables, x)
  assert y.dtype == dtype
  np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(reference.apply(variables, x), np.float32),
                             rtol=tolerance, atol=tolerance)
  g = jax.random.normal(jax.random.key(2), y.shape).astype(dtype)
  _, pullback = jax.vjp(lambda v: ours.apply(v, x), variables)
  bias_grad = pullback(g)[0]["params"]["bias"]
  assert bias_grad.dtype == jnp.float32
  exact = np.asarray(g, np.float64).sum(axis=(0, 1, 2))
  bound = np.sqrt(2 * 16 * 16) * np.finfo(np.float32).eps * np.abs(np.asarray(g, np.float64)).sum(axis=(0, 1, 2))
  assert np.all(np.abs(np.asarray(bias_grad, np.float64) - exact) <= bound)
  if dtype == jnp.bfloat16:  # the bound is far tighter than one bfloat16 rounding of the sum
    rounded = np.asarray(jnp.asarray(exact, jnp.bfloat16), np.float64)
    assert np.max(np.abs(rounded - exact) / bound) > 4


def test_bit_dropout_keeps_the_right_fraction_and_scales():
  """layers.Dropout: P(keep) = 1 − rate exactly for rates k/256, kept units scaled by 1/(1 − rate)."""
  from ahup_jax.models import layers
  assert [layers.mask_bits(k) for k in (0.5, 0.25, 0.75, 1 / 256)] == [1, 2, 2, 8]
  with pytest.raises(ValueError, match="multiple of 1/256"):
    layers.mask_bits(0.9)
  x = jnp.ones((512, 1024))
  for rate in (0.5, 0.25, 0.75):
    y = np.asarray(layers.Dropout(rate).apply({}, x, rngs={"dropout": jax.random.key(0)}))
    kept = y != 0
    assert abs(kept.mean() - (1 - rate)) < 4 * np.sqrt(rate * (1 - rate) / x.size)  # 4 σ
    np.testing.assert_allclose(y[kept], 1 / (1 - rate), rtol=1e-6)
    per_field = kept.reshape(-1, 32 // layers.mask_bits(1 - rate)).mean(axis=0)  # each bit field of the words
    assert np.all(np.abs(per_field - (1 - rate)) < 0.02), per_field
  odd = jnp.ones((3, 7))  # size not a multiple of the units per random word
  assert layers.Dropout(0.5).apply({}, odd, rngs={"dropout": jax.random.key(1)}).shape == (3, 7)
  a, b = (np.asarray(layers.Dropout(0.5).apply({}, x, rngs={"dropout": jax.random.key(k)})) for k in (2, 3))
  assert (a != b).mean() > 0.4  # independent masks for different keys
  np.testing.assert_array_equal(layers.Dropout(0.5, deterministic=True).apply({}, x), x)
  np.testing.assert_array_equal(layers.Dropout(1.0).apply({}, x, rngs={"dropout": jax.random.key(0)}), 0 * x)


@pytest.mark.parametrize("shape,window,strides,pads", [
    ((3, 48, 48, 5), (3, 3), (2, 2), ((1, 1), (1, 1))),  # ResNet's stem pool at 192² input
    ((2, 33, 31, 4), (3, 3), (2, 2), ((1, 1), (1, 1))),  # odd sides: the last row/column is in one window only
    ((2, 8, 8, 3), (2, 2), (2, 2), ((0, 0), (0, 0))),
])
def test_max_pool_equals_flax_with_ties(shape, window, strides, pads):
  """`layers.max_pool` = `nn.max_pool` exactly, forward and gradient, where most windows have tied maxima (post-ReLU
  zeros, small integers): the gradient goes to each window's first maximum, as XLA's select-and-scatter and
  PyTorch do. Integer-valued gradients make the sums of overlapping windows exact in any order."""
  from flax import linen as nn
  from ahup_jax.models import layers
  rng = np.random.default_rng(0)
  x = np.maximum(rng.integers(-3, 3, shape), 0).astype(np.float32)
  ours, ours_vjp = jax.vjp(jax.jit(lambda x: layers.max_pool(x, window, strides, pads)), x)
  ref, ref_vjp = jax.vjp(lambda x: nn.max_pool(x, window, strides=strides, padding=pads), x)
  grad = rng.integers(-5, 6, ref.shape).astype(np.float32)
  np.testing.assert_array_equal(ours, ref)
  np.testing.assert_array_equal(ours_vjp(grad)[0], ref_vjp(grad)[0])
  assert (np.asarray(ours_vjp(grad)[0]) != 0).sum() <= (grad != 0).sum()  # each window: one element, not split


def test_max_pool_in_bfloat16_rounds_once():
  """A bfloat16 max pool (ResNet's stem under `model.dtype="bfloat16"`) works in float32 inside: the forward equals
  `nn.max_pool` in bfloat16 exactly (a maximum rounds nothing), and the gradient is the float32 pool's gradient,
  overlapping windows summed in float32 and rounded to bfloat16 once (not once per partial sum). Integer-valued
  gradients below 2^11 make the float32 sums exact in any order, so the comparison is exact on any CPU."""
  from flax import linen as nn
  from ahup_jax.models import layers
  rng = np.random.default_rng(1)
  window, strides, pads = (3, 3), (2, 2), ((1, 1), (1, 1))
  x = jnp.asarray(np.maximum(rng.normal(size=(4, 24, 24, 8)), 0), jnp.bfloat16)  # post-ReLU: tied zeros
  ours, ours_vjp = jax.vjp(jax.jit(lambda x: layers.max_pool(x, window, strides, pads)), x)
  np.testing.assert_array_equal(ours, nn.max_pool(x, window, strides=strides, padding=pads))
  assert ours.dtype == jnp.bfloat16
  grad = jnp.asarray(rng.integers(-1000, 1001, ours.shape), jnp.bfloat16)  # sums of ≤ 4 exact in float32, any order
  ref_vjp = jax.vjp(lambda x: nn.max_pool(x, window, strides=strides, padding=pads), x.astype(jnp.float32))[1]
  expected = ref_vjp(grad.astype(jnp.float32))[0].astype(jnp.bfloat16)
  got = ours_vjp(grad)[0]
  assert got.dtype == jnp.bfloat16
  np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(expected, np.float32))
