"""benchmarks/report.py and timing.bracketed: ratios divide by the ceiling measured around each workload."""
from __future__ import annotations

import pytest

from benchmarks import report, timing


def test_bracketed_measures_the_ceiling_before_and_after_the_workload():
  calls = []
  ceilings = iter([100.0, 120.0])

  def ceiling():
    calls.append("ceiling")
    return next(ceilings)

  def workload():
    calls.append("workload")
    return {"achieved_gflops": 55.0}

  assert timing.bracketed(workload, ceiling) == {"achieved_gflops": 55.0, "ceiling_gflops": [100.0, 120.0]}
  assert calls == ["ceiling", "workload", "ceiling"]


def _results(train_around=None, spa_around=None) -> dict:
  train = {"backbone": "res50", "input": 256, "dtype": "float32", "batch": 8, "achieved_gflops": 66.0,
           "step_compiles": 1}
  spa = {"achieved_gflops": 77.0, "num_poses": 100_000}
  if train_around:
    train["ceiling_gflops"] = train_around
  if spa_around:
    spa["ceiling_gflops"] = spa_around
  return {"ceilings": {"conv3x3": {"gflops": 200.0}, "matmul": {"gflops": 100.0}}, "train_step": [train],
          "spa_fit": spa}


@pytest.mark.parametrize("around,conv,matmul", [(None, 200.0, 100.0), ((100.0, 120.0), 110.0, 110.0)])
def test_targets_divide_by_the_bracketing_ceiling_else_the_run_start_one(around, conv, matmul):
  targets = {t["target"].split(" ≥")[0]: t for t in report.targets(_results(around, around))}
  assert targets["train step"]["measured"] == pytest.approx(66.0 / conv)
  assert targets["SPA fit"]["measured"] == pytest.approx(77.0 / matmul)
  assert targets["SPA fit"]["status"] == ("pass" if 77.0 / matmul >= 0.7 else "short")


def test_torch_side_rows_become_a_table_and_one_target_each():
  results = _results()
  results["meta"] = {"cpu": "Test CPU", "cores": 2}
  results["torch_side"] = {"threads": 2, "torch": "2.x", "rows": [
      {"row": "res18-64", "config": "res18 64² batch 32", "unit": "images/s", "torch_per_s": [50.0, 60.0],
       "jax_per_s": [90.0, 100.0], "ratio": 95.0 / 55.0},
      {"row": "spa-epoch", "config": "SPA epoch", "unit": "poses/s", "torch_per_s": [10.0], "jax_per_s": [12.0],
       "ratio": 1.2}]}
  by_name = {t["target"]: t for t in report.targets(results)}
  assert by_name["res18 64² batch 32 ≥ 1.5× PyTorch on the same CPU"]["status"] == "pass"
  assert by_name["SPA epoch ≥ 1.5× PyTorch on the same CPU"]["status"] == "short"
  table = "\n".join(report._torch_side(results))
  assert "| res18 64² batch 32 | images/s | 50.0 / 60.0 | 90.0 / 100.0 | 1.73 |" in table
  assert "Test CPU (2 cores)" in table
  assert report._torch_side({"torch_side": {"skipped": "PyTorch not installed"}})[-2].startswith("Skipped")


def test_torch_side_bfloat16_column_and_target():
  """A row with our bfloat16 worker gets its own columns and target line; rows without it (SPA) show dashes."""
  results = _results()
  results["meta"] = {"cpu": "Test CPU", "cores": 2}
  results["torch_side"] = {"threads": 2, "torch": "2.x", "rows": [
      {"row": "res18-96", "config": "res18 96² batch 18", "unit": "images/s", "torch_per_s": [20.0, 22.0],
       "jax_per_s": [21.0, 21.0], "ratio": 21.0 / 21.0, "jax_bf16_per_s": [33.0, 35.0], "ratio_bf16": 34.0 / 21.0},
      {"row": "spa-epoch", "config": "SPA epoch", "unit": "poses/s", "torch_per_s": [10.0], "jax_per_s": [16.0],
       "ratio": 1.6}]}
  by_name = {t["target"]: t for t in report.targets(results)}
  assert by_name["res18 96² batch 18 ≥ 1.5× PyTorch on the same CPU"]["status"] == "short"
  assert by_name["res18 96² batch 18 in bfloat16 ≥ 1.5× PyTorch fp32 on the same CPU"]["status"] == "pass"
  assert "SPA epoch in bfloat16 ≥ 1.5× PyTorch fp32 on the same CPU" not in by_name
  table = "\n".join(report._torch_side(results))
  assert "| res18 96² batch 18 | images/s | 20.0 / 22.0 | 21.0 / 21.0 | 1.00 | 33.0 / 35.0 | 1.62 |" in table
  assert "| SPA epoch | poses/s | 10.0 | 16.0 | 1.60 | – | – |" in table


def test_torch_side_many_rounds_show_median_range_and_count():
  """From four rounds on, a cell summarises the rounds (median, range, count) instead of listing them."""
  results = _results()
  results["meta"] = {"cpu": "Test CPU", "cores": 2}
  results["torch_side"] = {"threads": 2, "torch": "2.x", "rows": [
      {"row": "res18-64", "config": "res18 64² batch 32", "unit": "images/s",
       "torch_per_s": [90.0, 80.0, 100.0, 95.0, 85.0], "jax_per_s": [99.0, 101.0, 100.0], "ratio": 100.0 / 90.0}]}
  table = "\n".join(report._torch_side(results))
  assert "| res18 64² batch 32 | images/s | 90.0 (80.0–100.0, 5 rounds) | 99.0 / 101.0 / 100.0 | 1.11 |" in table
