"""Building the native library (`ahup_jax/native/onednn.py`): the key that decides when to rebuild, and the errors
that say why a build failed (the models then keep XLA's convolutions and max pool)."""
from __future__ import annotations

import pytest

from ahup_jax.native import onednn


def test_library_key_follows_the_cpu(monkeypatch):
  """The library is compiled with -march=native, so another CPU (a copied virtual environment) needs its own."""
  here = onednn.library_path()
  assert here == onednn.library_path()
  monkeypatch.setattr(onednn, "_cpu", lambda: "model name : some other CPU\nflags : sse2")
  assert onednn.library_path() != here
  assert onednn.library_path().parent == here.parent


@pytest.mark.parametrize("compiler,message", [
    ("/nonexistent/c++",
     "no C\\+\\+ compiler \\('/nonexistent/c\\+\\+'; set CXX\\) to build onednn_conv.cc, max_pool.cc"),
    ("false", "building onednn_conv.cc, max_pool.cc failed \\(false "),
])
def test_build_failures_name_the_cause(compiler, message, monkeypatch, tmp_path):
  target = tmp_path / "lib" / "libahup_onednn-test.so"
  monkeypatch.setattr(onednn, "library_path", lambda: target)
  monkeypatch.setenv("CXX", compiler)
  header = onednn._prefix() / "include" / "oneapi" / "dnnl" / "dnnl.hpp"
  with pytest.raises(RuntimeError, match=message if header.exists() else "oneDNN headers not found"):
    onednn.build()
  assert not target.exists() and list(target.parent.glob("*")) == []  # no half-written library left behind
