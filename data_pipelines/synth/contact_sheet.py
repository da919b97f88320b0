"""One PNG per generated dataset: a grid of its images with the written 2D skeletons drawn on top."""
from __future__ import annotations

import os

import numpy as np

from data_pipelines.synth.datasets import Instances

_LIMBS = tuple((f"{s}_{a}", f"{s}_{b}") for s in ("l", "r") for a, b in
               (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle")))
_TRUNK = (("pelvis", "spine"), ("spine", "thorax"), ("thorax", "face"), ("face", "head"), ("thorax", "upper_neck"),
          ("upper_neck", "head"), ("thorax", "l_shoulder"), ("thorax", "r_shoulder"), ("pelvis", "l_hip"),
          ("pelvis", "r_hip"), ("nose", "l_eye"), ("nose", "r_eye"), ("l_eye", "l_ear"), ("r_eye", "r_ear"))
_NO_PELVIS = (("l_hip", "r_hip"), ("l_shoulder", "r_shoulder"), ("l_shoulder", "l_hip"), ("r_shoulder", "r_hip"))


def edges(keys: tuple[str, ...]) -> list[tuple[int, int, str]]:
  """(joint, joint, colour) pairs to draw for a dataset's joint keys: left blue, right red, trunk green."""
  pairs = [e for e in _TRUNK + _LIMBS if e[0] in keys and e[1] in keys]
  if "pelvis" not in keys:
    pairs += list(_NO_PELVIS)
    if "head" in keys and "face" not in keys and "upper_neck" not in keys and "thorax" in keys:
      pairs.append(("thorax", "head"))
  colour = lambda a, b: "tab:blue" if a.startswith("l_") and b.startswith("l_") else (
      "tab:red" if a.startswith("r_") and b.startswith("r_") else "tab:green")
  return [(keys.index(a), keys.index(b), colour(a, b)) for a, b in pairs if a in keys and b in keys]


def write(out_dir: str, instances: Instances, columns: int = 6, rows: int = 4) -> str:
  """Writes `contact_<name>.png` into out_dir: a mosaic of distinct images spread over the dataset with their
  written 2D skeletons (dots: labelled joints; rings: COCO's "labelled but occluded"). Returns its path."""
  import matplotlib
  matplotlib.use("Agg")
  from matplotlib import collections
  from matplotlib import pyplot as plt
  from PIL import Image

  paths = list(dict.fromkeys(instances.img_path.tolist()))
  chosen = [paths[int(k)] for k in np.linspace(0, len(paths) - 1, min(len(paths), columns * rows))]
  images = [np.asarray(Image.open(os.path.join(out_dir, p))) for p in chosen]
  rows = -(-len(chosen) // columns)
  cell_h, cell_w = max(im.shape[0] for im in images) + 14, max(im.shape[1] for im in images) + 4
  mosaic = np.full((rows * cell_h, columns * cell_w, 3), 255, np.uint8)
  segments, colours, dots, rings, labels = [], [], [], [], []
  occlusion_flag = instances.joints_vis.max() > 1  # COCO: v = 1 labelled but occluded, v = 2 visible
  for k, (path, image) in enumerate(zip(chosen, images)):
    y0, x0 = (k // columns) * cell_h + 12, (k % columns) * cell_w + 2
    mosaic[y0:y0 + image.shape[0], x0:x0 + image.shape[1]] = image
    labels.append((x0, y0 - 2, os.path.basename(path)[-20:]))
    for row in np.nonzero(instances.img_path == path)[0]:
      uv, vis = instances.joints_2d[row] + [x0, y0], instances.joints_vis[row]
      for a, b, colour in edges(instances.joint_keys):
        if vis[a] > 0 and vis[b] > 0:
          segments.append(uv[[a, b]])
          colours.append(colour)
      hidden = (vis == 1) & occlusion_flag
      dots.extend(uv[(vis > 0) & ~hidden])
      rings.extend(uv[hidden])
  height, width = mosaic.shape[:2]
  fig = plt.figure(figsize=(width / 100, height / 100 + 0.3), dpi=100)
  ax = fig.add_axes((0, 0, 1, height / (height + 30)))
  ax.imshow(mosaic, interpolation="nearest")
  ax.add_collection(collections.LineCollection(segments, colors=colours, linewidths=1.0))
  if dots:
    ax.scatter(*np.array(dots).T, s=3, c="yellow", linewidths=0)
  if rings:
    ax.scatter(*np.array(rings).T, s=6, facecolors="none", edgecolors="yellow", linewidths=0.6)
  for x, y, text in labels:
    ax.text(x, y, text, fontsize=5)
  ax.set_xlim(0, width), ax.set_ylim(height, 0), ax.axis("off")
  fig.suptitle(f"{instances.name}: {len(paths)} images, {len(instances)} persons (shown: {len(chosen)})",
               fontsize=8, y=0.995)
  out = os.path.join(out_dir, f"contact_{instances.name}.png")
  fig.savefig(out, metadata={"Software": None})
  plt.close(fig)
  return out
