"""The jobs' malloc: mimalloc that keeps freed memory mapped (glibc on huge pages where mimalloc is missing).

XLA:CPU allocates each execution's temporary buffer afresh (263 MB for ResNet-18 96² batch 18) and frees it
afterwards. glibc serves blocks that large with mmap and returns them with munmap, so every step touches its working
memory for the first time again: 65 000 page faults per step at 96² (512 000 for ResNet-50 256² batch 8), 0.14 s of
kernel time in a 0.49 s step on a 2-core VM (docs/SPEED.md). Two remedies, in order of preference:

- mimalloc (the pinned `cmeel-mimalloc` wheel) preloaded with `MIMALLOC_PURGE_DELAY=-1`: freed memory stays mapped
  and the next step reuses it, ~1 fault per step. Lockstep against glibc on huge pages: 1.22–1.28x at res18 96² b18,
  1.08x at 64² b32, 1.22x at 128² b32, 1.18x for res50 256² b8, the embedded job's training +2–7 % (2-core AMD
  Zen 4, docs/SPEED.md); PyTorch's step, which caches its own memory, gains 1.00–1.02x from it.
- glibc's tunable `glibc.malloc.hugetlb=1` (glibc ≥ 2.35, transparent huge pages on): malloc backs such blocks with
  huge pages, ~1 000 faults per step, but the kernel still zeroes the block every step.

Both are read when a process starts, so an entry point calls `restart_with_fast_malloc()` first: it re-executes the
same command line with the environment of `environ_with_fast_malloc`. The user's choice wins: an LD_PRELOAD already
set (`LD_PRELOAD=` for none), `AHUP_MALLOC=glibc`, or a `glibc.malloc.hugetlb` already in GLIBC_TUNABLES is left
alone. The price is memory: freed blocks stay resident (peak RSS 1.35 → 1.69 GB for the res18 96² b18 step).
Standard library only: it runs before jax loads.
"""
from __future__ import annotations

import os
import platform
import sys
import sysconfig

TUNABLE = "glibc.malloc.hugetlb"
THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"
MIMALLOC = os.path.join("cmeel.prefix", "lib", "libmimalloc.so")  # inside site-packages (cmeel-mimalloc wheel)
MIMALLOC_SETTINGS = {"MIMALLOC_PURGE_DELAY": "-1"}  # never hand freed memory back to the kernel
OPT_OUT = "AHUP_MALLOC"  # =glibc: no mimalloc


def mimalloc_pinned() -> bool:
  """Whether requirements.txt installs cmeel-mimalloc on this platform (its environment marker)."""
  return sys.platform.startswith("linux") and platform.machine() == "x86_64"


def transparent_huge_pages_always() -> bool:
  """Whether the kernel backs every large anonymous mapping with huge pages, asked for or not (THP 'always')."""
  try:
    with open(THP_SETTING) as f:
      return "[always]" in f.read()
  except OSError:
    return False


def mimalloc_library() -> str:
  """The installed libmimalloc.so (from the `cmeel-mimalloc` wheel), or '' where there is none or not on Linux."""
  if not sys.platform.startswith("linux"):
    return ""
  roots = [sysconfig.get_paths()[k] for k in ("purelib", "platlib")] + [p for p in sys.path if p]
  return next((os.path.join(r, MIMALLOC) for r in roots if os.path.isfile(os.path.join(r, MIMALLOC))), "")


def huge_pages_unsupported() -> str:
  """'' when glibc's huge-page tunable takes effect on this machine, else why not (for messages and test skips)."""
  if not sys.platform.startswith("linux"):
    return f"not Linux ({sys.platform})"
  libc, version = platform.libc_ver()
  if libc != "glibc" or tuple(int(p) for p in version.split(".")[:2]) < (2, 35):
    return f"needs glibc >= 2.35, this is {libc or 'an unknown libc'} {version}".rstrip()
  try:
    with open(THP_SETTING) as f:
      if "[never]" in f.read():
        return f"transparent huge pages are off ({THP_SETTING}: never)"
  except OSError:
    return f"no transparent huge pages ({THP_SETTING} missing)"
  return ""


def environ_with_fast_malloc(environ: dict[str, str], mimalloc: str, huge_pages: bool = True) -> dict[str, str]:
  """A copy of `environ` that preloads `mimalloc` (a library path; '' for none) with MIMALLOC_SETTINGS, unless
  LD_PRELOAD is set (even to '': no preload) or AHUP_MALLOC=glibc, and, when `huge_pages`, whose GLIBC_TUNABLES
  (colon-separated) also sets `glibc.malloc.hugetlb=1` unless it sets that tunable already (to any value): glibc's
  malloc still serves whatever runs without the preload."""
  out = dict(environ)
  if mimalloc and "LD_PRELOAD" not in out and out.get(OPT_OUT, "").lower() != "glibc":
    out["LD_PRELOAD"] = mimalloc
    for name, value in MIMALLOC_SETTINGS.items():
      out.setdefault(name, value)
  tunables = [t for t in out.get("GLIBC_TUNABLES", "").split(":") if t]
  if huge_pages and not any(t.split("=", 1)[0] == TUNABLE for t in tunables):
    out["GLIBC_TUNABLES"] = ":".join([*tunables, f"{TUNABLE}=1"])
  return out


def without_mimalloc(environ: dict[str, str]) -> dict[str, str]:
  """A copy of `environ` without the preload and settings `environ_with_fast_malloc` adds, LD_PRELOAD='' so that a
  child that restarts itself stays on glibc's malloc (e.g. PyTorch's side of benchmarks/torch_side.py, which runs as
  its users run it)."""
  out = dict(environ)
  if out.get("LD_PRELOAD") and out["LD_PRELOAD"] == mimalloc_library():
    out["LD_PRELOAD"] = ""
    for name, value in MIMALLOC_SETTINGS.items():
      if out.get(name) == value:
        del out[name]
  return out


def restart_with_fast_malloc() -> None:
  """Re-executes this process's command line with `environ_with_fast_malloc`; returns at once where that would
  change nothing (see the module docstring). Call it before any work: the process image is replaced."""
  environ = environ_with_fast_malloc(dict(os.environ), mimalloc_library(), not huge_pages_unsupported())
  if environ == dict(os.environ):
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
