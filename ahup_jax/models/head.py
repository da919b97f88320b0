"""T: the volumetric ("integral") heatmap head and soft-argmax (SPEC §2.3, §2.4)."""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from ahup_jax.models import initializers, layers
from ahup_jax.native import onednn


# Output phase a ∈ {0, 1} (along each axis) of a stride-2, 4x4, padding-1 transposed conv is a 2-tap conv of the
# input with kernel taps a and a + 2 (the static slice kernel[a::2]) at input offsets _PHASE_PADS[a] = (−1, 0)
# or (0, +1).
_PHASE_PADS = ((1, 0), (0, 1))
# Input planes from which `Deconv4x4` runs as oneDNN's transposed convolution on CPU (float32 or bfloat16, when built):
# per shape 1.0–1.3x the phases' forward + backward from 6x6 up (2-core Intel Xeon); whole train steps in lockstep
# (`python -m benchmarks.xla_flags_ab --b_set=ahup_jax.models.head.ONEDNN_MIN_POSITIONS=...`, 2-core AMD Zen 4):
# 1.07x with the 3x3 planes of ResNet-18 96² on oneDNN too, 1.01–1.03x with 64²'s 4x4, 0.99x adding its 2x2.
ONEDNN_MIN_POSITIONS = 3 * 3


class Deconv4x4(nn.Module):
  """ConvTranspose2d(k=4, s=2, p=1, no bias) of PyTorch: [B, h, w, C] → [B, 2h, 2w, features].

  Same parameter as `nn.ConvTranspose(features, (4, 4), strides=2, padding=((2, 2), (2, 2)))` (kernel
  [4, 4, C, features], a plain conv over the zero-dilated input), computed as four 2x2 convs — one per output
  phase (`layers.conv`) — interleaved: the same multiply-adds without the zero-dilated input, whose gradients are
  slow on CPU. On CPU in float32 or bfloat16 with `onednn.enabled()`: oneDNN's transposed convolution instead.
  """
  features: int
  dtype: Any = jnp.float32
  kernel_init: Any = initializers.xavier_002

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features), jnp.float32)
    x = x.astype(self.dtype)
    if (x.shape[1] * x.shape[2] >= ONEDNN_MIN_POSITIONS and jnp.dtype(self.dtype) in onednn.DTYPE_SUFFIX
        and onednn.enabled()):
      # oneDNN's transposed conv takes PyTorch's weight layout: the same taps, spatially flipped.
      # The kernel goes in float32 (oneDNN rounds it for bfloat16 while reordering it; `layers.Conv` does the same).
      return jax.lax.platform_dependent(
          x, kernel,
          cpu=lambda x, k: onednn.conv_transpose(x, k[::-1, ::-1], (2, 2), ((1, 1), (1, 1))),
          default=self._by_phases)
    return self._by_phases(x, kernel)

  def _by_phases(self, x, kernel):
    rows = []
    for a in (0, 1):
      cols = []
      for b in (0, 1):
        taps = kernel[a::2, b::2]  # [2, 2, C, F] in float32: `layers.conv` casts it where its lowering needs
        cols.append(layers.conv(x, taps, (1, 1), (_PHASE_PADS[a], _PHASE_PADS[b])))
      rows.append(jnp.stack(cols, 3))  # [B, h, w, 2 (b), F]
    y = jnp.stack(rows, 2)  # [B, h, 2 (a), w, 2 (b), F]
    b_, h, _, w, _, f = y.shape
    return y.reshape(b_, 2 * h, 2 * w, f)


class VolumetricHead(nn.Module):
  """features [B, h, w, C] → logits [B, H, W, J, D] (H = W = 8h): 3 stride-2 deconvs (BN, ReLU) + a 1x1 conv.

  The final conv has J·D channels with channel c = j·D + k (joint-major, SPEC §2.3), split here into (J, D) and
  left channels-last, as the conv computes them: the official [B, J, D, H, W] heatmap volume is
  `jnp.transpose(logits, (0, 3, 4, 1, 2))`. Transposing 8·J·D·H·W floats forward and back was 12 % of a ResNet-50
  256² train step on a 2-core CPU; `soft_argmax` reads this layout directly. `D` (depth bins) = `depth_bins`.
  Names mirror the official `deconv_layers.{0,1,3,4,6,7}` / `final_layer` Sequential indices.
  """
  num_joints: int = 17
  depth_bins: int = 64
  channels: int = 256
  dtype: Any = jnp.float32
  init_scheme: str = "xavier_0.02"

  @nn.compact
  def __call__(self, x, train: bool):
    kernel_init = initializers.kernel_init(self.init_scheme)
    scale_init = (nn.initializers.ones if self.init_scheme == "normal_0.001" else initializers.bn_scale_normal)
    norm = functools.partial(layers.BatchNorm, use_running_average=not train, dtype=self.dtype,
                             scale_init=scale_init)
    x = x.astype(self.dtype)
    for i in range(3):
      # PyTorch ConvTranspose2d(k=4, s=2, p=1) == transposed conv with padding k-1-p = 2: output 2x input.
      x = Deconv4x4(self.channels, dtype=self.dtype, kernel_init=kernel_init, name=f"deconv_layers_{3 * i}")(x)
      x = nn.relu(norm(name=f"deconv_layers_{3 * i + 1}")(x))
    x = layers.PointwiseConv(self.num_joints * self.depth_bins, dtype=self.dtype, kernel_init=kernel_init,
                             name="final_layer")(x)
    b, h, w, _ = x.shape
    return x.reshape(b, h, w, self.num_joints, self.depth_bins)


def soft_argmax(logits: jax.Array) -> jax.Array:
  """Integral regression: logits [B, H, W, J, D] (`VolumetricHead`'s layout) → coordinates [B, J, 3] = (x, y, z).

  One softmax per joint over all H·W·D entries, computed in float32 whatever the input dtype (float64 stays).
  Index convention (SPEC §2.4): x = Σ u·p_x(u) over columns u ∈ {0..W-1} (image x), y over rows
  v ∈ {0..H-1} (image y), z over depth bins k ∈ {0..D-1}; all in hm units. The depth axis (minor) is reduced
  first, then the image plane: reductions along the memory layout, no transposed copy of the volume.
  """
  logits = layers.at_least_float32(logits)
  _, h, w, _, d = logits.shape
  dtype = logits.dtype
  peak = jax.lax.stop_gradient(logits.max(axis=4).max(axis=(1, 2)))  # [B, J]; softmax is shift-invariant
  p = jnp.exp(logits - peak[:, None, None, :, None])  # unnormalised probabilities [B, H, W, J, D]
  mass = p.sum(axis=4)  # [B, H, W, J]
  depth = (p * jnp.arange(d, dtype=dtype)).sum(axis=4)  # [B, H, W, J]
  x = (mass * jnp.arange(w, dtype=dtype)[:, None]).sum(axis=(1, 2))
  y = (mass * jnp.arange(h, dtype=dtype)[:, None, None]).sum(axis=(1, 2))
  z = depth.sum(axis=(1, 2))
  return jnp.stack([x, y, z], axis=-1) / mass.sum(axis=(1, 2))[..., None]
