"""The embedded procedural dataset: ScanAva+/Human3.6M/MSCOCO/MPII look-alikes with documented domain gaps.

  python -m data_pipelines.synth --out data/synth_small --preset small --seed 0

writes, in the official on-disk formats the readers consume (SPEC §4.2, §4.5–4.7):

| folder | role | content |
|---|---|---|
| ScanAva_1119/ | source, 3D, synthetic (if_SYN 1) | per-scan images + pooled `scanava_raw.npy` (14 LSP-like joints) |
| Human36M/ | target, 3D, real-looking | 3DMPPE per-subject `_data/_camera/_joint_3d.json`, S1,5,6,7,8 / S9,11 |
| MSCOCO/ | 2D, real-looking | `annotations/person_keypoints_train2017.json`, `train2017/*.jpg` |
| MPII/ | 2D, real-looking | `annotations/train.json` (3DMPPE COCO-style, 16 joints), `images/*.jpg` |

plus `contact_<dataset>.png` (images with the written 2D skeletons) and `synth_info.json` (preset, seed,
counts and every domain setting; it also marks the folder as generated, so a rerun replaces it). Bodies are
capsules and ellipsoids posed by forward kinematics and ray cast through a pinhole camera with a z-buffer and
shading (render.py; backgrounds and camera effects: appearance.py), so depth is inferable from the image; the
labels are exact projections of the same 3D joints. Presets (datasets.PRESETS): `tiny` ≈ 100 images for
tests; `small` ≈ 8,100 images (ScanAva 2,880 train + 300 test; Human36M 1,800 train + 720 test instances after
sub-sampling, 72 testInLoop; MSCOCO 1,600 images / ~2,400 persons; MPII 800 / ~1,000); `full` ≈ 5× small.

The gaps (domains.py; each is a field of `Domain` and can be closed with `--close-gaps`; `--widen-gaps
appearance` gives the lab and wild domains a dark, low-contrast, warm-cast exposure instead, appearance.TONES):

| gap | source (ScanAva) | target lab (Human36M) | wild (MSCOCO, MPII) |
|---|---|---|---|
| appearance | flat garment colours, plain backdrop, light at the camera, crisp aliased edges, JPEG q95 | textured garments (stripes, checks, front print), 3D studio (floor tiles, walls, equipment), random key light, blur σ 0.5–0.9 px, noise σ 2–5, q85 | as lab but random 2D clutter, blur 0.4–1.1, noise 2–7, q80, 30 % foreground occluders |
| skeleton | Head = top of the skull, Ankle = joint centre, hips 0.9× the hip-joint width, shoulders at the acromion | Head between head centre and top (0.62 of the half height), Ankle = back of the heel, hips 1.2×, shoulders at the joint centre | MPII Head = top, ankle centre, hips 1.1×, shoulder joint |
| proportions | longer upper spine, shorter neck and lower spine, wider shoulders, girth 1.1, narrow spread (cv 3 %/2 %) | H36M-like bone lengths (real S1–S11 statistics), spread cv 5 %/4 % | lab means, spread 7 %/5 % |
| pose | `narrow`: standing, moderate arm/leg motion | `actions`: 15 H36M actions (sitting, phoning, photo, walking, …) with periodic motion in time | `wild`: 40 % lab actions, 60 % broad (bending, running, arms overhead) |
| camera | chest-height orbit at 2.7–3.4 m, 128², f = 150 px | 4 corner cameras 1.4–1.9 m high at 4.6–5.4 m looking down, 160², f ≈ 166 px | random height 0.6–2.4 m, 2.5–6.5 m (people at 0.6–1.4× that), roll σ 4°, five image shapes, f 0.8–1.5× the image side |

Measured through the readers on `small` (seed 0): mean skeletal descriptors (SPEC §7.2, 16 edge lengths / shoulder
width, 3D, from the 17-joint reference poses) of ScanAva train vs Human36M train differ by 3.16 in L1 over the
edges, against 0.60 between Human36M's own train and test subjects; per edge e.g. Thorax–Neck 0.23 vs 0.40,
Neck–Head 0.46 vs 0.38, Pelvis–R_Hip 0.23 vs 0.45, R_Hip–R_Knee 1.15 vs 1.52. The median standard deviation of
the 4-pixel image border is 0 grey levels for ScanAva against 74 (Human36M), 45 (MSCOCO) and 42 (MPII).
tests/test_synth.py checks these gaps (with margins) on `tiny`.
"""
from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import shutil

import numpy as np

from data_pipelines.synth import contact_sheet, datasets, domains, scenes
from data_pipelines.synth.datasets import PRESETS, Instances

DATASET_FOLDERS = ("ScanAva_1119", "Human36M", "MSCOCO", "MPII")
INFO_FILE = "synth_info.json"


def generate(out_dir: str, preset: str = "tiny", seed: int = 0, *, gaps_closed: tuple[str, ...] = (),
             gaps_widened: tuple[str, ...] = (), workers: int | None = None,
             contact_sheets: bool = True) -> dict[str, Instances]:
  """Writes the four datasets into `out_dir` and returns the generator's labels {dataset name: Instances}.

  An earlier run's output in `out_dir` (recognised by synth_info.json) is replaced; dataset folders from
  elsewhere make it stop with a ValueError instead.

  gaps_closed: names from domains.GAPS whose source settings are replaced by the lab target's.
  gaps_widened: names from domains.WIDER made harsher in the lab and wild domains (before any gap is closed, so
    closing a widened gap gives the source the harsher setting too).
  workers: render processes (default: all CPUs for more than 200 images, else in-process).
  """
  if preset not in PRESETS:
    raise ValueError(f"unknown preset '{preset}'; expected one of {sorted(PRESETS)}")
  sizes = PRESETS[preset]
  lab, wild = (domains.widen_gaps(d, tuple(gaps_widened)) for d in (domains.LAB, domains.WILD))
  source = domains.close_gaps(domains.SOURCE, lab, tuple(gaps_closed))
  existing = [d for d in DATASET_FOLDERS if os.path.exists(os.path.join(out_dir, d))]
  if existing and not os.path.exists(os.path.join(out_dir, INFO_FILE)):
    raise ValueError(f"{out_dir} already holds {existing} not written by this generator (no {INFO_FILE}); "
                     "generate into a new folder (or pass --force)")
  for folder in existing:  # an earlier (possibly interrupted) run of ours: start afresh
    shutil.rmtree(os.path.join(out_dir, folder))
  settings = {"gaps_closed": list(gaps_closed), "gaps_widened": list(gaps_widened),
              "domains": {"source": source, "lab": lab, "wild": wild}}
  _write_info(out_dir, preset, seed, settings, None)
  plans = {
      "ScanAva": datasets.plan_scanava(source, sizes, seed, out_dir),
      "Human36M": datasets.plan_h36m(lab, sizes, seed, out_dir),
      "MSCOCO": datasets.plan_wild("MSCOCO", wild, sizes.coco_images, seed, out_dir),
      "MPII": datasets.plan_wild("MPII", wild, sizes.mpii_images, seed, out_dir),
  }
  jobs = [job for job_list, _ in plans.values() for job in job_list]
  results = _render_all(jobs, workers)
  labels, start = {}, 0
  for name, (job_list, finish) in plans.items():
    labels[name] = finish(results[start:start + len(job_list)])
    start += len(job_list)
  if contact_sheets:
    for instances in labels.values():
      contact_sheet.write(out_dir, instances)
  _write_info(out_dir, preset, seed, settings, labels)
  return labels


def _render_all(jobs: list, workers: int | None) -> list[dict]:
  if workers is None:
    workers = os.cpu_count() if len(jobs) > 200 else 1
  if workers <= 1:
    return [scenes.render_job(job) for job in jobs]
  with multiprocessing.get_context("spawn").Pool(workers) as pool:
    return pool.map(scenes.render_job, jobs, chunksize=max(1, len(jobs) // (16 * workers)))


def _write_info(out_dir, preset, seed, settings: dict, labels: dict | None) -> None:
  """synth_info.json: the settings (written first, marking the folder as ours) and, once done, the counts."""
  def plain(value):
    if isinstance(value, dict):
      return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
      return [plain(v) for v in value]
    return value

  info = {"preset": preset, "seed": seed, "gaps_closed": settings["gaps_closed"],
          "gaps_widened": settings["gaps_widened"], "complete": labels is not None,
          "domains": {k: plain(dataclasses.asdict(d)) for k, d in settings["domains"].items()}}
  if labels is not None:
    info["instances"] = {name: {split: int(np.sum(inst.split == split)) for split in ("train", "test")}
                         for name, inst in labels.items()}
    info["images"] = {name: len(set(inst.img_path.tolist())) for name, inst in labels.items()}
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, INFO_FILE), "w") as f:
    json.dump(info, f, sort_keys=True, indent=1)
