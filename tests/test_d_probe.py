"""The discriminator probes (ahup_jax/d_probe.py): a fresh D learns domains that differ and not ones that do not,
and the summary arithmetic. The probes of real runs are exercised end to end in tests/test_ablation.py."""
from __future__ import annotations

import numpy as np
import pytest

from ahup_jax import ablation, d_probe
from configs import ablation as ablation_configs

BATCH, CELLS, CHANNELS, JOINTS = 18, 2, 512, 17


def _feature_batches(steps: int, shift: float, seed: int = 0):
  """SAA-like batches of G features [18, 2, 2, 512]: 6 synthetic rows (shifted by `shift` in every channel), 12 real;
  every joint at a random cell of the 2 × 2 grid."""
  rng = np.random.default_rng(seed)
  is_syn = np.zeros(BATCH, np.float32)
  is_syn[:6] = 1.0
  for _ in range(steps):
    feats = rng.normal(size=(BATCH, CELLS, CELLS, CHANNELS)).astype(np.float32)
    feats += shift * is_syn[:, None, None, None]
    cells = rng.integers(0, CELLS, size=(BATCH, JOINTS, 2)).astype(np.int32)
    yield {"feats": feats, "is_synthetic": is_syn, "joint_cells": cells}


@pytest.fixture(scope="module")
def saa_config():
  cfg = ablation_configs.get_config("quick")
  return ablation.row_config(cfg, "SAA", 0)


def test_a_fresh_discriminator_reads_a_domain_shift_and_nothing_else(saa_config):
  """Accuracies are measured before D trains on each batch, so they are held out: a shift of 0.5 in every channel
  is learned (both classes right), identical distributions stay at chance (mean of the two accuracies ~0.5)."""
  shifted = d_probe.settled(d_probe.fit_discriminator(saa_config, _feature_batches(120, 0.5), seed=0))
  assert shifted["d_acc_real"] > 0.9 and shifted["d_acc_syn"] > 0.9, shifted
  same = d_probe.settled(d_probe.fit_discriminator(saa_config, _feature_batches(120, 0.0), seed=0))
  assert 0.5 * (same["d_acc_real"] + same["d_acc_syn"]) < 0.65, same
  curves = d_probe.fit_discriminator(saa_config, _feature_batches(5, 0.5), seed=0)
  assert set(curves) == set(d_probe.CURVES) and all(v.shape == (5,) for v in curves.values())
  with pytest.raises(ValueError, match="no feature batches"):
    d_probe.fit_discriminator(saa_config, [], seed=0)


def test_summary_and_table_over_seeds():
  results = [{"row": "SAA", "seed": s, "in_training": {"d_acc_real": 0.9, "d_acc_syn": 0.2 + 0.1 * s},
              "frozen": {"d_acc_real": 1.0, "d_acc_syn": 0.9 + 0.05 * s},
              "adversarial": {"d_acc_real": 0.9, "d_acc_syn": 0.3},
              "ignored": {"d_acc_real": 1.0, "d_acc_syn": 0.95},
              d_probe.sweep_key(1e-4): {"d_acc_real": 1.0, "d_acc_syn": 0.9 - 0.1 * s},
              f"{d_probe.sweep_key(1e-4)}_curves": {"d_acc_real": [1.0], "d_acc_syn": [0.9]}} for s in range(2)]
  results.append({"row": "source only", "seed": 0, "frozen": {"d_acc_real": 0.95, "d_acc_syn": 0.8}})
  rows = d_probe.summarize(results)
  assert rows["SAA"]["seeds"] == [0, 1]
  assert set(rows["SAA"]) == {"seeds", "in_training", "frozen", "adversarial", "ignored", "lmd_D 0.0001"}
  syn = rows["SAA"]["in_training"]["d_acc_syn"]
  assert syn["mean"] == pytest.approx(0.25) and syn["std"] == pytest.approx(np.std([0.2, 0.3], ddof=1))
  assert syn["per_seed"] == pytest.approx([0.2, 0.3])
  assert "adversarial" not in rows["source only"]
  assert rows["SAA"]["lmd_D 0.0001"]["d_acc_syn"]["mean"] == pytest.approx(0.85)
  table = d_probe.markdown_table(rows).splitlines()
  assert table[0].count("|") == 7
  assert table[3].startswith("| source only | 1 | – | 0.95 ± 0.00 / 0.80 ± 0.00 | – | – |")
  assert table[-1] == f"| SAA | 0.0001 | 2 | 1.00 ± 0.00 / 0.85 ± {np.std([0.9, 0.8], ddof=1):.2f} |"


def test_unknown_rows_are_refused_before_anything_runs(tmp_path):
  cfg = ablation_configs.get_config("quick")
  cfg.rows, cfg.workdir, cfg.out_dir = ("SAA", "source + 2D"), str(tmp_path), str(tmp_path)
  with pytest.raises(ValueError, match=r"unknown rows \['source \+ 2D'\].*quoted"):
    d_probe.run(cfg, steps=4)
  cfg.rows = ("SAA",)
  with pytest.raises(FileNotFoundError, match="none of the rows"):
    d_probe.run(cfg, steps=4)
