"""glibc's malloc on transparent huge pages for the jobs' processes: +5–6 % training speed on a 2-core CPU.

XLA:CPU allocates each execution's temporary buffer afresh (263 MB for ResNet-18 96² batch 18) and frees it
afterwards. glibc serves blocks that large with mmap and returns them with
munmap, so every step touches its working memory for the first time again: 65 000 page faults per step at 96²
(512 000 for ResNet-50 256² batch 8), 0.14 s of kernel time in a 0.49 s step on a 2-core VM (docs/SPEED.md). The glibc tunable `glibc.malloc.hugetlb=1`
(glibc ≥ 2.35) makes malloc ask for transparent huge pages (madvise) on such blocks: ~1 200 faults per step;
back-to-back steps 10–14 % faster, the embedded job's training (input pipeline included) 5–6 % (docs/SPEED.md).

Tunables are read when a process starts, so an entry point calls `restart_with_huge_pages()` first: it re-executes
the same command line with the tunable added to GLIBC_TUNABLES. It does nothing where it cannot help (not Linux,
not glibc ≥ 2.35, transparent huge pages off) and when GLIBC_TUNABLES already sets `glibc.malloc.hugetlb` (so
`GLIBC_TUNABLES=glibc.malloc.hugetlb=0` keeps the old behaviour). Standard library only: it runs before jax loads.
"""
from __future__ import annotations

import os
import platform
import sys

TUNABLE = "glibc.malloc.hugetlb"
THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"


def environ_with_huge_pages(environ: dict[str, str]) -> dict[str, str]:
  """A copy of `environ` whose GLIBC_TUNABLES (colon-separated) also sets `glibc.malloc.hugetlb=1`, unless it sets
  that tunable already (to any value)."""
  tunables = [t for t in environ.get("GLIBC_TUNABLES", "").split(":") if t]
  if any(t.split("=", 1)[0] == TUNABLE for t in tunables):
    return dict(environ)
  return dict(environ, GLIBC_TUNABLES=":".join([*tunables, f"{TUNABLE}=1"]))


def supported() -> str:
  """'' when the tunable takes effect on this machine, else why not (for messages and test skips)."""
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


def restart_with_huge_pages() -> None:
  """Re-executes this process's command line with `environ_with_huge_pages`; returns at once where that would
  change nothing (see the module docstring). Call it before any work: the process image is replaced."""
  environ = environ_with_huge_pages(dict(os.environ))
  if environ == dict(os.environ) or supported():
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
