"""Config blocks shared by configs/saa.py and configs/spa.py (SPEC Appendix A defaults)."""
from __future__ import annotations

import os

import ml_collections


def model() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      backbone="res50",            # res18/34/50/101/152 (SPEC §2.2)
      input_size=256,              # crop side; heatmaps are input/4, features input/32
      depth_bins=64,               # = input_size // 4 (SPEC §2.1)
      num_joints=17,
      dtype="float32",             # compute dtype, params float32; "bfloat16": TPU/GPU, AMX/AVX512-BF16 CPUs (SPEED.md)
      backbone_init="xavier_0.02",  # official init (then overwritten by ImageNet weights if given)
      head_init="xavier_0.02",     # SPEC §2.6; "normal_0.001" = 3DMPPE convention
      pretrained_backbone="",      # orbax dir from `convert_torch --kind resnet` (ImageNet init)
      input_scale="255_quirk",     # SPEC §2.1: no /255 before ImageNet normalisation; "unit" divides
      bbox_3d_depth_mm=2000.0,     # depth extent of the hm volume
      remat_head=False,            # rematerialise T + soft-argmax (memory for batch 120 at 256²)
  ))


def adapt() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      lmd_D=0.02,                  # λ_D; 0 disables D (no module, no D step)
      mode_D="SA",                 # SA | C | C1 | SA1
      gan_mode="lsgan",            # lsgan | vanilla (SPEC §9 #3)
      pivot="sdt",                 # sdt | uda | n (SPEC §1.6)
      n_layers_D=3,
      kn_D=1,                      # SPEC §9 #2 (3 = supplement's variant)
      d_steps=1,                   # D updates per iteration on the same stopped features (official: 1; > 1: a D
                                   # that catches up with G before G answers it, issue #18's explanation)
      adv_sgd_lr=0.0,              # 0: G's adversarial gradient joins L_coord's in Adam (official); > 0: it moves G by
                                   # plain SGD at this rate (× the schedule's decay) beside Adam's L_coord step (#18)
      ndf=64,
      wts_D_cell="round",          # round (faithful) | floor (SPEC §3.2)
      wts_D_skip_missing=False,    # True drops joints a dataset lacks (SPEC §9 #6)
  ))


def data() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      root=os.environ.get("AHUP_DATA_ROOT", "data"),  # folder holding the dataset folders below
      source="files",              # files: the official layouts under root | tfds: the TFDS builds under tfds_dir
      tfds_dir=os.environ.get("AHUP_TFDS_DIR", ""),  # TFDS data_dir (data_pipelines/tfds); "" = <root>/tfds
      trainset=("ScanAva", "MSCOCO", "MPII"),  # first = leading (3D) dataset (SPEC §1.5)
      testset="Human36M",          # Human36M | MuPoTS | ScanAva | SURREAL
      h36m_protocol=2,
      h36m_holdout_subjects=(),    # Human36M training subjects kept out of `train` (a validation split, e.g. (8,))
      jo2d=True,                   # `if_ylB`: 2D datasets supervise x, y
      tight_bbox_scanava=True,
      rt_SYN=1,                    # synthetic sub-sampling ratio
      use_gt_info=True,            # GT bbox + root at test (`if_gtRtTest`)
      mpii_torso_vis="faithful",   # faithful (vis 1) | product (SPEC §9 #17)
      skip_bad_images=False,       # True: count + warn on unreadable training images instead of failing
      num_parallel_calls=-1,       # tf.data parallelism (-1 = AUTOTUNE)
      prefetch=2,                  # device prefetch depth (batches)
      augment=augmentation(),
  ))


def augmentation() -> ml_collections.ConfigDict:
  """Training augmentation (SPEC §5.1, = data_pipelines.augment.SPEC_AUGMENTATION)."""
  return ml_collections.ConfigDict(dict(
      scale=0.25,                  # s = 1 + scale·clip(N(0,1), −1, 1)
      rotation_deg=30.0,           # r = rotation_deg·clip(N(0,1), −2, 2) ...
      rotation_prob=0.6,           # ... with this probability, else 0
      flip_prob=0.5,
      colour=0.2,                  # per-channel factors U(1 − colour, 1 + colour)
      occlusion_prob=0.5,          # synthetic random-erasing occluder
  ))


def train() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      epochs=15,
      iters_per_epoch=2500,        # fixed; <= 0: derived from the leading dataset (SPEC §1.5)
      batch_size=120,              # global; floor(B / n_datasets) per dataset (SPEC §9 #1)
      epoch_regZ=5,                # z supervision from this epoch on
      fix_G=False,                 # `if_fixG`: from epoch_regZ freeze G and disable D
      optimizer="adam",            # adam (b1 0.5) | nadam (b1 0.9)
      lr=1e-3,
      lr_dec_epochs=(11, 13),
      lr_dec_factor=0.1,
      checkpoint_every_steps=500,  # plus every epoch end; keep the last `keep_checkpoints`
      keep_checkpoints=3,
      save_every_epochs=3,         # permanent per-epoch checkpoints (SPEC §1.4 save_step)
      log_every_steps=50,
      sample_images_every_epochs=1,
  ))


def evaluation() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      flip_test=True,
      bone_type="h36m",            # h36m | scanava | cmJoints
      pa_scale=False,              # False = rigid Procrustes (SPEC §9 #9)
      batch_size=120,
      in_loop_split="testInLoop",
      protocol="",                 # "" = the test set's default; see ahup_jax.evaluation.protocols.PROTOCOLS
  ))


def spa() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      mode=2,                      # 2: y + f(y); 1: f(y)
      epochs=70,
      batch_size=256,
      lr=1e-4,
      lr_gamma=0.95,               # per epoch
      lmd_G=1.0,
      lmd_skel=50.0,               # presets: ScanAva+ 50, SURREAL 5, H36M→MuPoTS 2, H36M→ScanAva+ 50
      lmd_D=0.0,                   # optional pose discriminator (off in every reported result)
      skel_loss="mse",             # mse | l1
      pose_loss="l1",              # l1 | mse
      clip_grad_norm=1.0,          # 0 disables
      pose_scale=1.0,              # f is fitted on hm poses × this: 64 / heatmap size keeps the SPEC's λ and f's
                                   # init scale (set for 64-px heatmaps) for smaller models; 1 = paper
      vpr_scale=(),                # () off; (0.8, 1.2) = scale-only viewpoint randomisation
      select_best_on_test=False,   # authors' test-set model selection (SPEC §9 #11)
      source="",                   # source poses: `<Name>_hm.json` or pred_hm .npz
      target="",                   # target descriptor: `<Name>_hm.json`, pred_hm .npz or tailor .json/.yaml
      seed=0,
  ))
