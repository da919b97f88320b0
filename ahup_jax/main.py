r"""ahup_jax entry point: train SAA, evaluate, fit/apply SPA, export, predict.

  python -m ahup_jax.main --config=configs/saa.py --workdir=runs/saa                 # train + final test
  python -m ahup_jax.main --config=configs/saa.py:synth --workdir=runs/synth --mode=all  # what ./run.sh does
  python -m ahup_jax.main --config=configs/saa.py --workdir=runs/saa --mode=eval
  python -m ahup_jax.main --config=configs/saa.py --workdir=runs/saa --mode=spa \
      [--config.spa.target=my_tailor_measurements.yaml]
  python -m ahup_jax.main --config=configs/saa.py --workdir=runs/saa --mode=adapt --pred_hm=other_model_pred_hm.npz
  python -m ahup_jax.main --config=configs/saa.py --workdir=runs/saa --mode=export
  python -m ahup_jax.main --workdir=runs/saa --mode=predict --export_dir=runs/saa/export --images=my_photos/ \
      [--boxes=detections.json] [--render]

Modes:
  train    train (or resume) SAA in WORKDIR/checkpoints, then evaluate on the test set
  eval     evaluate the latest checkpoint (or --export_dir) on config.data.testset → WORKDIR/eval (metrics,
           predictions, figures: 3D skeletons beside the crops, pose PCA, training curves)
  spa      fit the SPA head (source: config.spa.source or the leading train set's GT poses; target:
           config.spa.target — pose file or tailor measurements — or the test set's training split)
  adapt    apply the fitted SPA head to a pred_hm file (--pred_hm) and evaluate the adapted poses
  export   write an inference-only checkpoint (G+T [+SPA] + config) to WORKDIR/export
  predict  run an export on a folder of images: per person (--boxes, else the whole image) the box, 2D joints (px),
           root-relative 3D pose (mm) → JSON (--out); --render adds pictures (ahup_jax/predict.py)
  all      generate the embedded dataset if needed, train, eval, fit SPA, eval with SPA, export, print table

Multi-process (docs/MULTIHOST.md): run the same command on every process with --coordinator_address=HOST:PORT
--num_processes=N --process_id=I (or --distributed=auto on TPU VMs, SLURM, Open MPI); one mesh spans every
process's devices, each process reads its shard of the data, process 0 writes the shared files.
"""
from __future__ import annotations

if __name__ == "__main__":  # before jax loads: restart once with the fast malloc (ahup_jax/allocator.py)
  from ahup_jax import allocator
  allocator.restart_with_fast_malloc()

import os

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", "configs/saa.py", "Config file (configs/saa.py[:variant]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "runs/default", "Where checkpoints, logs and results go.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval", "spa", "adapt", "export", "predict", "all"],
                          "What to do (see the module docstring).")
_EXPORT_DIR = flags.DEFINE_string("export_dir", "", "eval/predict from this export instead of the checkpoints.")
_IMAGES = flags.DEFINE_string("images", "", "predict: folder of .jpg/.png/.bmp images (subfolders too) or one image.")
_BOXES = flags.DEFINE_string("boxes", "", "predict: person boxes, COCO detection results JSON [{image_id or "
                             "file_name, bbox: [x, y, w, h] px, score}] or a COCO annotation file; default: the "
                             "whole image is one person box.")
_MIN_SCORE = flags.DEFINE_float("min_score", 0.3, "predict: ignore --boxes scored below this.")
_FOCAL_PX = flags.DEFINE_list("focal_px", [], "predict: camera focal length fx[,fy] px (default max(width, height)).")
_PRINCIPAL_PX = flags.DEFINE_list("principal_px", [], "predict: camera principal point cx,cy px (default the image "
                                  "centre).")
_RENDER = flags.DEFINE_bool("render", False, "predict: also draw each image (2D skeletons on the photo, a 3D view "
                            "per person) and a contact sheet into <out>_render/.")
_PRED_HM = flags.DEFINE_string("pred_hm", "", "adapt: pred_hm .npz to adapt (default WORKDIR/eval/pred_hm.npz).")
_OUT = flags.DEFINE_string("out", "", "predict: output JSON (default WORKDIR/predictions.json).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", "", "multi-process: HOST:PORT of process 0 (with "
                                   "--num_processes and --process_id; docs/MULTIHOST.md).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "multi-process: how many processes run this command.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "multi-process: this process's index in [0, num_processes).")
_DISTRIBUTED = flags.DEFINE_enum("distributed", "none", ["none", "auto"], "auto: let jax.distributed.initialize() "
                                 "detect the cluster (Cloud TPU VM, SLURM, Open MPI); none: single process unless "
                                 "--coordinator_address/--num_processes/--process_id are given.")


class _QuietLibraries:
  """Keeps orbax's per-save INFO chatter out of the job's log (its warnings and errors still show)."""

  def filter(self, record) -> bool:
    return record.levelno >= 30 or "/orbax/" not in record.pathname


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(_QuietLibraries())
  from ahup_jax import distributed
  try:
    distributed.initialize(coordinator_address=_COORDINATOR.value, num_processes=_NUM_PROCESSES.value,
                           process_id=_PROCESS_ID.value, mode=_DISTRIBUTED.value)
  except ValueError as error:
    raise app.UsageError(str(error)) from None
  from ahup_jax import jobs  # heavy imports after flag parsing, so --help is instant
  config, workdir = _CONFIG.value, _WORKDIR.value
  os.makedirs(workdir, exist_ok=True)
  mode = _MODE.value
  if mode in ("train", "all") and "synth" in config and config.synth.preset:
    jobs.ensure_synth_data(config)
  if mode == "train":
    jobs.train_and_test(config, workdir)
  elif mode == "eval":
    jobs.evaluate(config, workdir, export_dir=_EXPORT_DIR.value, figures=True)
  elif mode == "spa":
    jobs.fit_spa(config, workdir)
  elif mode == "adapt":
    jobs.adapt(config, workdir, _PRED_HM.value or os.path.join(workdir, "eval", "pred_hm.npz"))
  elif mode == "export":
    jobs.export(config, workdir)
  elif mode == "predict":
    from ahup_jax import predict
    predict.run(_EXPORT_DIR.value or os.path.join(workdir, "export"), _IMAGES.value,
                _OUT.value or os.path.join(workdir, "predictions.json"), boxes_path=_BOXES.value,
                min_score=_MIN_SCORE.value, focal_px=_FOCAL_PX.value, principal_px=_PRINCIPAL_PX.value,
                render=_RENDER.value)
  elif mode == "all":
    jobs.run_all(config, workdir)


if __name__ == "__main__":
  app.run(main)
