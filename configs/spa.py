"""SPA fit (SPEC §7): a light pose adapter from source poses to a target skeletal descriptor.

  python -m ahup_jax.main --config=configs/spa.py --mode=spa --workdir=runs/spa \
      --config.spa.source=runs/poses/ScanAva_hm.json --config.spa.target=runs/poses/Human36M-p2_hm.json
  python -m ahup_jax.main --config=configs/spa.py --mode=spa --workdir=runs/spa \
      --config.spa.source=... --config.spa.target=my_tailor_measurements.yaml

Variants: `surreal` (λ_skel 5), `h36m_mupots` (λ_skel 2), `authors_selection` (best epoch on test).
"""
from __future__ import annotations

import ml_collections

from configs import common

PRESETS = {"surreal": 5.0, "h36m_mupots": 2.0, "scanava": 50.0, "h36m_scanava": 50.0}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.model = common.model()
  c.spa = common.spa()
  for token in filter(None, (arg or "").split(",")):
    if token in PRESETS:
      c.spa.lmd_skel = PRESETS[token]
    elif token == "authors_selection":
      c.spa.select_best_on_test = True
    else:
      raise ValueError(f"unknown configs/spa.py variant '{token}'; one of {sorted(PRESETS)} "
                       "or authors_selection")
  return c
