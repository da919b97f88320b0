"""The ablation of issue #18 on the embedded dataset: paper Table 1's rows in miniature, several seeds each.

  ./run.sh ablation                      # = python -m ahup_jax.ablation --config=configs/ablation.py
  ./run.sh ablation --rows=ROWS --seeds 5 # a subset of the rows (or of D_VARIANTS below), more seeds
  ./run.sh ablation --quick              # configs/ablation.py:quick (synth_tiny, 2 rows, 1 seed, a few steps)
  ./run.sh ablation --gap_table          # source only with each domain gap closed in turn → gaps.md

Every row is a `configs/saa.py` variant on the `preset` data plus the shared `train` overrides below; `seed` is the
training seed (init, batch order, augmentation), the generated data are the same for every seed. Human36M subject
`val_subject` is held out of every row's training split (and of SPA's target descriptor) as the validation split;
the test subjects (S9, S11) are only evaluated, never used to choose anything.

The default budget (`train` below, 600 steps) fits the issue's ≤ 90 min for all rows × 3 seeds on a 2-core AMD EPYC
Zen 4 (2026-12-06: 24 runs in 62 min). Not re-timed on the 2-core Intel Xeon, where 600-step runs took 212–454 s
each on 2026-12-03, before issue 16's later speed work. It is the budget where target-supervised starts to learn
which way the person faces; the earlier 148-step default (docs/results/ablation.md's git history) left every row at
chance on it.
"""
from __future__ import annotations

import ml_collections

# name → (configs/saa.py variant on the preset, extra overrides of the training config, apply SPA too)
ROWS = {
    "target-supervised": ("noadapt_only", {"data.trainset": ("Human36M",)}, False),  # "Sun et al." upper bound
    "source only": ("noadapt_only", {}, True),
    "source + 2D, no D": ("noadapt", {}, False),
    "source + 2D labels, no D": ("noadapt_jo2d", {}, False),  # Jo2D alone: SAA + Jo2D's control for D
    "C": ("C", {}, False),
    "C1": ("C1", {}, False),
    "SAA": ("SAA", {}, False),
    "SAA + Jo2D": ("", {}, True),
}
# Discriminator variants, not in the default rows (`--rows` names them): other λ_D (paper: 0.02) — SAA + Jo2D with a
# stronger D; SAA with λ_D 0.0003, where G stops winning the game against a fresh D
# (docs/results/widened_appearance/d_probe.md) — SAA with D's 3x3 kernels (the supplement's kn_D = 3: each cell's
# decision sees its neighbours, where the default 1x1 D is a per-cell MLP) and SAA with 5 D updates per iteration
# on the same features (a D that has caught up with G when G answers it; not in the paper).
D_VARIANTS = {f"SAA + Jo2D (λ_D {value:g})": ("", {"adapt.lmd_D": value}, False) for value in (0.1, 0.5)}
D_VARIANTS.update({f"SAA (λ_D {value:g})": ("SAA", {"adapt.lmd_D": value}, False) for value in (0.0003,)})
D_VARIANTS["SAA (kn_D 3)"] = ("SAA", {"adapt.kn_D": 3}, False)
D_VARIANTS["SAA (5 D steps)"] = ("SAA", {"adapt.d_steps": 5}, False)  # D catches up with G before G answers
# G's adversarial gradient by plain SGD beside Adam's L_coord step (not in the paper): does Adam's per-parameter
# normalisation let G answer D cheaply? At η 1 G leaves D unanswered (D right on 100 % of both domains from step 10
# of the first 60, widened data); from η 10 G answers it within the step, as under Adam.
D_VARIANTS.update({f"SAA (adv. SGD η {value:g})": ("SAA", {"adapt.adv_sgd_lr": float(value)}, False)
                   for value in (10, 100)})
ROWS.update(D_VARIANTS)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.preset = "synth"                 # configs/saa.py data preset (synth = data/synth_small, synth_tiny = tiny)
  c.data_root = ""                   # "" = the preset's folder
  c.rows = tuple(r for r in ROWS if r not in D_VARIANTS)  # which rows to run, in table order
  c.seeds = 3                        # training seeds 0..seeds-1
  c.workdir = "runs/ablation"        # one sub-folder per (row, seed): <row slug>/seed_<n>
  c.out_dir = "docs/results"         # ablation.md, ablation.json, figures
  c.val_subject = 8                  # Human36M training subject held out as the validation split
  c.val_every = 3                    # evaluate every val_every-th record of it (time)
  c.flip_test = False                # the protocol's flip test doubles evaluation time; off to fit the budget
  c.figures = True
  c.previous = ""                    # an earlier ablation.json whose finished runs join the table (--previous)
  c.tsne_per_domain = 150            # crops per domain in the feature t-SNE
  c.skeleton_examples = 4            # test crops in the skeleton figure
  c.train = ml_collections.ConfigDict(dict(
      steps=600,                     # SAA steps per run: 4 epochs of steps // 4 (z from epoch 1, lr ×0.1 at 3)
      batch_size=18,                 # global; 6 per dataset for three training sets
      input_size=64,                 # crop side (heatmap 16², depth bins input/4)
      lr=1e-3,
      dtype="float32",               # model.dtype; "bfloat16": faster on AMX/AVX512-BF16 CPUs, cost in SPEED.md
  ))
  c.spa_epochs = 16
  c.gaps_closed = ()                 # train every row on data whose source has these domain gaps closed
  c.gaps_widened = ()                # … and whose real-looking domains have these made harsher (domains.WIDER)
  c.pretrained_from = ""             # a row whose finished run of the same seed gives every run's G its initial
                                     # weights (trained first if missing): the stand-in for the paper's ImageNet
                                     # init, runs in WORKDIR/…/pretrained_<row slug>/; "rotation": G pretrained
                                     # by rotation prediction on the source and 2D crops (ahup_jax/train/pretrain.py)
  c.gap_table = ("appearance", "skeleton", "proportions", "pose", "camera", "all")  # --gap_table entries
  if arg == "quick":
    c.preset, c.rows, c.seeds = "synth_tiny", ("source only", "SAA + Jo2D"), 1
    c.workdir = "runs/ablation_quick"
    c.out_dir = "runs/ablation_quick/results"
    c.train.update(steps=4, batch_size=6)
    c.spa_epochs = 2
    c.tsne_per_domain, c.skeleton_examples = 12, 2
    c.gap_table = ("skeleton",)
  elif arg:
    raise ValueError(f"unknown configs/ablation.py variant '{arg}'; expected '' or 'quick'")
  return c
