"""oneDNN's convolutions inside jitted programs on CPU: forward, input gradient and kernel gradient as XLA FFI calls.

XLA:CPU's own convolutions (and their gradients) run ResNet's large planes at a third to a half of what oneDNN —
the library PyTorch's CPU convolutions use — reaches on the same cores (`python -m benchmarks.conv_lowerings`).
`onednn_conv.cc` wraps oneDNN's direct convolution and transposed convolution for NHWC activations and HWIO kernels
with activations in float32 or bfloat16 (`config.model.dtype="bfloat16"`: oneDNN accumulates in float32 and runs
bfloat16 on AMX or AVX512-BF16 where the CPU has them, docs/SPEED.md) and float32 kernels and kernel gradients (a
bfloat16 call rounds the kernel while reordering it, which it does anyway); this module builds it once per
environment against the pinned `onednn-cpu-gomp` wheels and jaxlib's FFI headers (`./run.sh` does it at set-up;
`python -m ahup_jax.native.onednn` by hand), loads it, registers the FFI targets and wraps them as differentiable
`conv` / `conv_transpose`. The same library carries the max pool kernels of `max_pool.cc` (`max_pool.py`), compiled
for the CPU it is built on (`-march=native`; the CPU is part of the library's key).

When the library cannot be built or loaded (no C++ compiler, no oneDNN wheel) or `AHUP_ONEDNN=0` is set,
`available()` is False and the models keep XLA's convolutions (`enabled()` decides, also per device count): same
results up to float32 rounding, slower.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import pathlib
import platform
import subprocess
import sysconfig
import tempfile
import warnings

import jax
import numpy as np

# The one native library: the oneDNN convolutions and the max pool kernels (`max_pool.py`) beside them.
SOURCES = tuple(pathlib.Path(__file__).with_name(name) for name in ("onednn_conv.cc", "max_pool.cc"))
# FFI target name suffix per activation type (x, y and their gradients share it; kernels and kernel gradients are
# float32 in both).
DTYPE_SUFFIX = {np.dtype(np.float32): "", np.dtype(jax.numpy.bfloat16): "Bf16"}
_TARGETS = tuple(f"Ahup{op}{part}{suffix}" for op in ("Conv", "Deconv") for part in ("Fwd", "BwdData", "BwdWeights")
                 for suffix in DTYPE_SUFFIX.values()) + tuple(
                     f"AhupMaxPool{part}{suffix}" for part in ("Fwd", "Bwd") for suffix in DTYPE_SUFFIX.values())


def _prefix() -> pathlib.Path:
  """Where pip put the oneDNN wheels' data files (lib/libdnnl.so, include/oneapi/dnnl/)."""
  return pathlib.Path(sysconfig.get_path("data"))


def _cpu() -> str:
  """This CPU's model and instruction set extensions (the library is compiled for them: `-march=native`)."""
  lines = _cpu_info().splitlines()
  if not lines:
    return platform.processor() or platform.machine()
  keys = ("model name", "flags", "Features", "CPU part")  # x86; aarch64 Linux
  return "\n".join(sorted({line for line in lines if line.split(":")[0].strip() in keys}))


def cpu_vendor() -> str:
  """This CPU's vendor as /proc/cpuinfo names it ("GenuineIntel", "AuthenticAMD"); "" where it does not say."""
  for line in _cpu_info().splitlines():
    key, _, value = line.partition(":")
    if key.strip() == "vendor_id":
      return value.strip()
  return ""


@functools.cache
def _cpu_info() -> str:
  """/proc/cpuinfo's text, read once ("" where there is none)."""
  try:
    return pathlib.Path("/proc/cpuinfo").read_text()
  except OSError:
    return ""


def library_path() -> pathlib.Path:
  """The built library for these sources, jaxlib, compiler flags and CPU: rebuilt whenever any of them changes (so a
  virtual environment copied to another machine builds its own)."""
  key = hashlib.sha256(b"".join(source.read_bytes() for source in SOURCES) + jax.lib.__version__.encode()
                       + " ".join(_flags()).encode() + _cpu().encode())
  return _prefix() / "lib" / "ahup_jax" / f"libahup_onednn-{key.hexdigest()[:16]}.so"


def _flags() -> list[str]:
  lib = _prefix() / "lib"
  # -O3 -march=native: the max pool's loops vectorised for this CPU (7-12x the portable -O2 build at the stem's shape
  # on a 2-core AMD Zen 4; the CPU is part of `library_path()`'s key, so each machine compiles for itself).
  return ["-O3", "-march=native", "-fopenmp", "-std=c++17", "-shared", "-fPIC", "-w", f"-I{jax.ffi.include_dir()}",
          f"-I{_prefix() / 'include'}", f"-L{lib}", "-ldnnl", f"-Wl,-rpath,{lib}"]


def build() -> pathlib.Path:
  """Compiles `SOURCES` into `library_path()` unless it is there already (about 20 s). Atomic: concurrent
  builds (test workers) each write a temporary file and rename it into place. RuntimeError naming what is missing."""
  target = library_path()
  if target.exists():
    return target
  header = _prefix() / "include" / "oneapi" / "dnnl" / "dnnl.hpp"
  if not header.exists():
    raise RuntimeError(f"oneDNN headers not found at {header}: install requirements.txt (onednn-devel-cpu-gomp)")
  compiler = os.environ.get("CXX", "c++")
  target.parent.mkdir(parents=True, exist_ok=True)
  with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".so", delete=False) as tmp:
    pass
  command, names = [compiler, *map(str, SOURCES), "-o", tmp.name, *_flags()], ", ".join(s.name for s in SOURCES)
  try:
    result = subprocess.run(command, capture_output=True, text=True)
  except FileNotFoundError as e:
    os.unlink(tmp.name)
    raise RuntimeError(f"no C++ compiler ({compiler!r}; set CXX) to build {names}") from e
  if result.returncode != 0:
    os.unlink(tmp.name)
    raise RuntimeError(f"building {names} failed ({' '.join(command)}):\n{result.stderr[-2000:]}")
  os.replace(tmp.name, target)
  return target


@functools.cache
def available() -> bool:
  """Whether the oneDNN convolutions are loaded and registered (building them on first use if needed)."""
  if os.environ.get("AHUP_ONEDNN", "1") == "0":
    return False
  try:
    library = ctypes.CDLL(str(build()))
  except (RuntimeError, OSError) as e:
    warnings.warn(f"oneDNN convolutions unavailable, using XLA's (slower on CPU): {e}", stacklevel=2)
    return False
  for name in _TARGETS:
    jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, name)), platform="cpu")
  return True


_disabled = 0


def enabled() -> bool:
  """Whether the models call oneDNN now: `available()`, a single device and not inside `disabled()`. XLA cannot
  partition an opaque FFI call, so under a multi-device mesh it would gather the whole batch onto every device
  (correct, but N times the work); simulated multi-device CPU runs keep XLA's convolutions."""
  return not _disabled and jax.device_count() == 1 and available()


@contextlib.contextmanager
def disabled():
  """Programs traced inside use XLA's own convolutions (e.g. to count FLOPs: XLA's cost analysis does not see the
  work of FFI calls). Affects tracing only: trace a fresh function, not one whose trace jax has cached."""
  global _disabled
  _disabled += 1
  try:
    yield
  finally:
    _disabled -= 1


def _attributes(strides, pads) -> dict:
  (sh, sw), ((pt, pb), (pl, pr)) = strides, pads
  return {name: np.int64(value) for name, value in zip(("sh", "sw", "pt", "pb", "pl", "pr"), (sh, sw, pt, pb, pl, pr))}


def _call(target: str, shape, activation, other, *, strides, pads, result_dtype=None):
  """The FFI call `target` (+ the activation's type suffix) on (`activation`, `other`: a float32 kernel or an
  activation gradient of the activation's type) → `shape` in `result_dtype` (default: the activation's)."""
  dtype = np.dtype(activation.dtype)
  other_dtype = dtype if target.endswith("BwdWeights") else np.dtype(np.float32)  # ∂L/∂y there, else the kernel
  if dtype not in DTYPE_SUFFIX or np.dtype(other.dtype) != other_dtype:
    raise TypeError(f"{target}: needs a float32 or bfloat16 activation and a {other_dtype} second operand, got "
                    f"{activation.dtype} and {other.dtype}")
  target += DTYPE_SUFFIX[dtype]
  if not available():  # loads and registers the FFI targets on first use
    raise RuntimeError(f"{target}: the oneDNN convolutions are not available (see the warning above, or run "
                       "`python -m ahup_jax.native.onednn`); use XLA's convolutions instead")
  return jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(shape, result_dtype or dtype))(
      activation, other, **_attributes(strides, pads))


def _op(name: str, out_hw, doc: str):
  """A differentiable oneDNN op `f(x, w, strides, pads)` of family `name` ("Conv" or "Deconv") whose output plane
  is `out_hw(x_hw, kernel_hw, strides, pads)`; its gradients are the family's backward-data and backward-weights.
  The calls take the kernel in float32 (a bfloat16 one is widened, exactly) and give its gradient in float32, cast
  to the kernel's type."""

  @functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
  def op(x, w, strides, pads):
    ho, wo = out_hw(x.shape[1:3], w.shape[:2], strides, pads)
    return _call(f"Ahup{name}Fwd", (x.shape[0], ho, wo, w.shape[3]), x, w.astype(np.float32), strides=strides,
                 pads=pads)

  def fwd(x, w, strides, pads):
    return op(x, w, strides, pads), (x, w)

  def bwd(strides, pads, residuals, grad):
    x, w = residuals
    return (_call(f"Ahup{name}BwdData", x.shape, grad, w.astype(np.float32), strides=strides, pads=pads),
            _call(f"Ahup{name}BwdWeights", w.shape, x, grad, strides=strides, pads=pads,
                  result_dtype=np.float32).astype(w.dtype))

  op.defvjp(fwd, bwd)
  op.__doc__ = doc
  return op


conv = _op("Conv", lambda hw, k, s, p: [(n + sum(pad) - kk) // ss + 1 for n, kk, ss, pad in zip(hw, k, s, p)], """
    x [B, H, W, C_in] * w [kh, kw, C_in, C_out] → [B, ho, wo, C_out], strides (sh, sw), pads
    ((top, bottom), (left, right)): `lax.conv_general_dilated` with NHWC/HWIO/NHWC, computed by oneDNN (CPU only;
    a RuntimeError where `available()` is False). x float32 or bfloat16, computed in x's type (accumulating in float32)
    and so is the result; w float32 (the model's parameters, rounded inside for bfloat16 x: `layers.Conv` passes
    them uncast) or of x's type; ∂L/∂w comes in w's type, unrounded for a float32 w.""")

conv_transpose = _op("Deconv",
                     lambda hw, k, s, p: [(n - 1) * ss - sum(pad) + kk for n, kk, ss, pad in zip(hw, k, s, p)], """
    PyTorch's ConvTranspose2d (no bias, dilation or groups) by oneDNN: x [B, h, w, C_in], w [kh, kw, C_in,
    C_out] (= PyTorch's weight [C_in, C_out, kh, kw] transposed (2, 3, 0, 1)), pads PyTorch's `padding` per side
    ((top, bottom), (left, right)) → [B, (h − 1)·sh − top − bottom + kh, ..., C_out]. CPU only; dtypes as
    `conv`.""")


if __name__ == "__main__":
  try:
    print(build())
  except RuntimeError as e:
    raise SystemExit(str(e)) from None
