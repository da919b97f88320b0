"""ahup_jax.hugepages: the GLIBC_TUNABLES rule, and a real restart whose malloc then hands out huge pages."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from ahup_jax import hugepages


def test_tunable_is_added_once_and_never_overrides_the_user():
  assert hugepages.environ_with_huge_pages({})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
  added = hugepages.environ_with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "X": "1"})
  assert added == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "X": "1"}
  assert hugepages.environ_with_huge_pages(added) == added
  off = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}
  assert hugepages.environ_with_huge_pages(off) == off


# Restarts itself, then mallocs 64 MiB (ctypes: numpy would madvise huge pages on its own), writes every byte and
# prints its GLIBC_TUNABLES, its argv and the process's AnonHugePages in KiB.
_CHILD = textwrap.dedent("""
    import ctypes, os, sys
    from ahup_jax import hugepages
    hugepages.restart_with_huge_pages()
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    size = 64 * 2**20
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    huge = next(int(l.split()[1]) for l in open("/proc/self/smaps_rollup") if l.startswith("AnonHugePages"))
    print(os.environ.get("GLIBC_TUNABLES"), sys.argv[1:], huge)
""")


def _child(environ: dict) -> tuple[str, str, int]:
  out = subprocess.run([sys.executable, "-c", _CHILD, "--flag=1", "x"], env=environ, capture_output=True, text=True,
                       check=True).stdout.split(" ", 1)
  tunables, (argv, huge) = out[0], out[1].rsplit(" ", 1)
  return tunables, argv, int(huge)


@pytest.mark.skipif(bool(hugepages.supported()), reason=f"huge-page malloc unsupported: {hugepages.supported()}")
def test_restart_keeps_the_command_line_and_backs_large_blocks_with_huge_pages():
  environ = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
  environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), environ.get("PYTHONPATH")]))
  tunables, argv, huge = _child(environ)
  assert tunables == "glibc.malloc.hugetlb=1"
  assert argv == "['--flag=1', 'x']"
  assert huge >= 32 * 1024  # KiB: most of the 64 MiB block (2 MiB pages; its unaligned ends stay small pages)
  tunables, _, huge = _child(dict(environ, GLIBC_TUNABLES="glibc.malloc.hugetlb=0"))  # the user's choice stands
  assert tunables == "glibc.malloc.hugetlb=0"
  assert huge < 32 * 1024
