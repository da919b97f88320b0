"""ahup_jax.allocator: the environment rules, and real restarted processes whose malloc then keeps freed memory
mapped (mimalloc) or hands out huge pages (glibc)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from ahup_jax import allocator

LIB = "/site/cmeel.prefix/lib/libmimalloc.so"


def test_fast_malloc_is_added_once_and_never_overrides_the_user():
  both = allocator.environ_with_fast_malloc({}, LIB)
  assert both == {"LD_PRELOAD": LIB, "MIMALLOC_PURGE_DELAY": "-1", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
  assert allocator.environ_with_fast_malloc(both, LIB) == both
  added = allocator.environ_with_fast_malloc({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "X": "1"}, "")
  assert added == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "X": "1"}
  assert allocator.environ_with_fast_malloc({}, "", huge_pages=False) == {}
  users = {"LD_PRELOAD": "/opt/libtcmalloc.so", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}
  assert allocator.environ_with_fast_malloc(users, LIB) == users
  assert allocator.environ_with_fast_malloc({"LD_PRELOAD": ""}, LIB, huge_pages=False) == {"LD_PRELOAD": ""}
  assert allocator.environ_with_fast_malloc({"MIMALLOC_PURGE_DELAY": "50"}, LIB)["MIMALLOC_PURGE_DELAY"] == "50"
  opted_out = {"AHUP_MALLOC": "glibc"}
  assert allocator.environ_with_fast_malloc(opted_out, LIB, huge_pages=False) == opted_out


def _mimalloc() -> str:
  """The installed libmimalloc.so; a failure where requirements.txt pins it (a broken set-up must not pass as a
  skip), a skip on platforms its environment marker leaves out."""
  library = allocator.mimalloc_library()
  if not library and allocator.mimalloc_pinned():
    pytest.fail("cmeel-mimalloc is pinned for Linux x86-64 in requirements.txt but its libmimalloc.so was not found "
                f"under site-packages ({allocator.MIMALLOC}); reinstall the requirements")
  if not library:
    pytest.skip("cmeel-mimalloc is pinned for Linux x86-64 only (requirements.txt); glibc's malloc serves here")
  return library


def test_without_mimalloc_removes_only_what_was_added():
  library = _mimalloc()
  added = allocator.environ_with_fast_malloc({"X": "1"}, library)
  removed = allocator.without_mimalloc(added)
  assert removed == {"X": "1", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1", "LD_PRELOAD": ""}
  assert allocator.environ_with_fast_malloc(removed, library) == removed  # a child that restarts stays on glibc
  users = {"LD_PRELOAD": "/opt/libtcmalloc.so", "MIMALLOC_PURGE_DELAY": "-1"}
  assert allocator.without_mimalloc(users) == users


# Restarts itself, then mallocs 64 MiB, writes every byte, frees it, mallocs and writes 64 MiB again (through the
# process's malloc: ctypes.CDLL(None) resolves a preloaded one; numpy would madvise on its own) and prints its
# LD_PRELOAD, GLIBC_TUNABLES, argv, whether libmimalloc is mapped, the second block's page faults and the process's
# AnonHugePages in KiB.
_CHILD = textwrap.dedent("""
    import ctypes, json, os, resource, sys
    from ahup_jax import allocator
    allocator.restart_with_fast_malloc()
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    size = 64 * 2**20
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    huge = next(int(l.split()[1]) for l in open("/proc/self/smaps_rollup") if l.startswith("AnonHugePages"))
    mapped = "libmimalloc" in open("/proc/self/maps").read()
    print(json.dumps(dict(preload=os.environ.get("LD_PRELOAD"), tunables=os.environ.get("GLIBC_TUNABLES"),
                          argv=sys.argv[1:], mimalloc=mapped, faults=faults, huge_kib=huge)))
""")


def _child(**overrides) -> dict:
  import json
  environ = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "LD_PRELOAD", allocator.OPT_OUT)}
  environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), environ.get("PYTHONPATH")]))
  environ.update(overrides)
  out = subprocess.run([sys.executable, "-c", _CHILD, "--flag=1", "x"], env=environ, capture_output=True, text=True,
                       check=True).stdout
  return json.loads(out)


PAGES_64_MIB = 64 * 2**20 // 4096


def test_restart_preloads_mimalloc_which_keeps_freed_memory_mapped():
  library = _mimalloc()
  got = _child()
  assert got["preload"] == library and got["mimalloc"] and got["argv"] == ["--flag=1", "x"]
  assert got["faults"] < PAGES_64_MIB // 16  # the freed block is reused as it is: no page is faulted in again
  plain = _child(LD_PRELOAD="", GLIBC_TUNABLES="glibc.malloc.hugetlb=0")  # the user's choice stands
  assert plain["preload"] == "" and not plain["mimalloc"]
  if not allocator.transparent_huge_pages_always():  # there the kernel faults 2 MiB at a time, unasked
    assert plain["faults"] >= PAGES_64_MIB // 2  # glibc unmaps a freed 64 MiB block; every page faults in again


@pytest.mark.skipif(bool(allocator.huge_pages_unsupported()),
                    reason=f"huge-page malloc unsupported: {allocator.huge_pages_unsupported()}")
def test_without_mimalloc_glibc_backs_large_blocks_with_huge_pages():
  got = _child(AHUP_MALLOC="glibc")
  assert got["tunables"] == "glibc.malloc.hugetlb=1" and got["preload"] is None and got["argv"] == ["--flag=1", "x"]
  assert got["huge_kib"] >= 32 * 1024  # most of the 64 MiB block (2 MiB pages; its unaligned ends stay small pages)
  off = _child(AHUP_MALLOC="glibc", GLIBC_TUNABLES="glibc.malloc.hugetlb=0")
  assert off["tunables"] == "glibc.malloc.hugetlb=0"
  if not allocator.transparent_huge_pages_always():  # there every large mapping gets huge pages, asked for or not
    assert off["huge_kib"] < 32 * 1024
