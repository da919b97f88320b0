"""AHuP SAA training (SPEC §1): ScanAva+ + MSCOCO + MPII → Human3.6M protocol 2, ResNet-50 at 256².

  python -m ahup_jax.main --config=configs/saa.py --workdir=runs/saa
  python -m ahup_jax.main --config=configs/saa.py:C --workdir=runs/c            # a paper ablation row
  python -m ahup_jax.main --config=configs/saa.py:SAA,surreal --workdir=runs/s  # variants combine
  python -m ahup_jax.main --config=configs/saa.py:synth --workdir=runs/synth    # embedded dataset
  python -m ahup_jax.main --config=configs/saa.py --config.train.batch_size=60  # any override

Variants (comma-separated, SPEC §1.2): `noadapt` (SYN row), `noadapt_only` (pure SYN, single dataset),
`noadapt_jo2d` (the 2D labels without D: what Jo2D alone gives), `C`, `C1`, `SAA` (no Jo2D), default = SAA + Jo2D;
`surreal` (SURREAL source); `sun_h36m`, `sun_muco` ("Sun et al." baselines); `mupots` (test on MuPoTS);
`synth` / `synth_tiny` (embedded dataset).
"""
from __future__ import annotations

import ml_collections

from configs import common

SYNTH_PRESETS = {"synth": "small", "synth_tiny": "tiny"}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.model = common.model()
  c.adapt = common.adapt()
  c.data = common.data()
  c.train = common.train()
  c.eval = common.evaluation()
  c.spa = common.spa()
  c.mesh = ml_collections.ConfigDict(dict(data=-1, model=1))  # -1: all devices on `data`
  # Embedded dataset (data_pipelines.synth); gaps_closed: domain gaps given the target's setting in the source;
  # gaps_widened: gaps made harsher in the real-looking domains (data_pipelines/synth/domains.py WIDER)
  c.synth = ml_collections.ConfigDict(dict(preset="", seed=0, gaps_closed=(), gaps_widened=()))

  for token in filter(None, (arg or "").split(",")):
    _apply_variant(c, token)
  return c


def _apply_variant(c: ml_collections.ConfigDict, token: str) -> None:
  if token == "noadapt":          # "SYN" row: 2D sets present, λ_D 0, no Jo2D (authors' scripts)
    c.adapt.lmd_D, c.adapt.pivot, c.data.jo2d = 0.0, "n", False
  elif token == "noadapt_jo2d":   # the 2D sets supervise x, y; λ_D 0 (control for SAA + Jo2D's discriminator)
    c.adapt.lmd_D, c.adapt.pivot, c.data.jo2d = 0.0, "n", True
  elif token == "noadapt_only":   # pure single-dataset SYN reading (SPEC §9 #16)
    c.adapt.lmd_D, c.data.jo2d = 0.0, False
    c.data.trainset = c.data.trainset[:1]
  elif token in ("C", "C1"):
    c.adapt.mode_D, c.data.jo2d = token, False
  elif token == "SAA":
    c.adapt.mode_D, c.data.jo2d = "SA", False
  elif token == "surreal":
    c.data.trainset = ("SURREAL",) + tuple(c.data.trainset[1:])
    c.spa.lmd_skel = 5.0
  elif token in ("sun_h36m", "sun_muco"):
    lead = "Human36M" if token == "sun_h36m" else "MuCo"
    c.data.trainset = (lead, "MSCOCO", "MPII")
    _apply_variant(c, "noadapt_jo2d")
    if token == "sun_h36m":
      c.data.testset = "MuPoTS"
      c.spa.lmd_skel = 2.0
  elif token == "mupots":
    c.data.testset = "MuPoTS"
  elif token in SYNTH_PRESETS:
    _synth(c, SYNTH_PRESETS[token])
  else:
    raise ValueError(f"unknown configs/saa.py variant '{token}'; see the module docstring")


def _synth(c: ml_collections.ConfigDict, preset: str) -> None:
  """The embedded procedural dataset at a size that trains in minutes on 2 CPU cores."""
  c.synth.preset = preset
  c.data.root = f"data/synth_{preset}"
  c.data.trainset = ("ScanAva", "MSCOCO", "MPII")
  c.data.testset = "Human36M"
  # 96² (3×3 features): XLA:CPU convs on 2×2 maps are ~50× slower than on 3×3 ones (benchmarks/)
  c.model.backbone, c.model.input_size, c.model.depth_bins = "res18", 96, 24
  c.model.backbone_init = "he_normal"
  c.train.epochs, c.train.iters_per_epoch, c.train.batch_size = 4, 200, 18
  c.train.epoch_regZ, c.train.lr_dec_epochs = 1, (3,)
  c.train.checkpoint_every_steps, c.train.save_every_epochs, c.train.log_every_steps = 100, 2, 25
  # A from-scratch G in a few hundred steps: SPEC §5.1's rotation, scale and occluders (up to 70 % of the box in
  # noise) kept the loss at the mean-pose level for 1200 steps; without them it learns (README "embedded dataset").
  c.data.augment.update(scale=0.0, rotation_prob=0.0, occlusion_prob=0.0)
  c.eval.batch_size = 64
  c.spa.update(epochs=64, lr=1e-3, lr_gamma=0.98, pose_scale=64 / c.model.depth_bins)  # see ahup_jax/spa/fit.py
  if preset == "tiny":
    c.train.epochs, c.train.iters_per_epoch, c.train.batch_size = 2, 4, 6
    c.train.epoch_regZ, c.train.lr_dec_epochs = 1, (1,)
    c.train.checkpoint_every_steps, c.train.log_every_steps = 3, 2
    c.eval.batch_size = 16
    c.spa.epochs, c.spa.batch_size = 2, 64
