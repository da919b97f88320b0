"""Figures a person looks at: crops with 2D skeletons, 3D skeleton plots (matplotlib, headless)."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ahup_jax import skeleton  # noqa: E402

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
LEFT = {i for i, name in enumerate(skeleton.JOINT_NAMES) if name.startswith("L_")}


def denormalise(images: np.ndarray, input_scale: str = "255_quirk") -> np.ndarray:
  """[B, S, S, 3] network inputs → uint8 RGB (undoes the ImageNet normalisation of SPEC §2.1)."""
  pixels = images * IMAGENET_STD + IMAGENET_MEAN
  if input_scale == "unit":
    pixels = pixels * 255.0
  return np.clip(pixels, 0, 255).astype(np.uint8)


def _edge_colour(a: int, b: int, base: str) -> str:
  if a in LEFT or b in LEFT:
    return {"pred": "tab:blue", "gt": "lightblue"}[base]
  return {"pred": "tab:red", "gt": "salmon"}[base]


def skeleton_grid(images: np.ndarray, pred_hm: np.ndarray, gt_hm: np.ndarray | None = None, *,
                  gt_vis: np.ndarray | None = None, columns: int = 6, title: str = "") -> plt.Figure:
  """Crops [B, S, S, 3] uint8 with predicted (solid) and GT (dashed) 2D skeletons; poses [B, 17, 3] in hm units.

  gt_vis [B, 17]: GT edges touching a joint with visibility 0 (outside the crop, unlabelled, a joint the dataset
  lacks) are not drawn. Each panel shows exactly the crop.
  """
  count = len(images)
  rows = max(1, int(np.ceil(count / columns)))
  fig, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2 * rows), squeeze=False)
  scale = images.shape[1] / (images.shape[1] / 4)  # hm → crop pixels
  for i, ax in enumerate(axes.flat):
    ax.axis("off")
    if i >= count:
      continue
    ax.imshow(images[i])
    for poses, style, base in [(gt_hm, "--", "gt"), (pred_hm, "-", "pred")]:
      if poses is None:
        continue
      xy = poses[i, :, :2] * scale
      shown = gt_vis[i] > 0 if (base == "gt" and gt_vis is not None) else np.ones(len(xy), bool)
      for a, b in skeleton.EDGES:
        if shown[a] and shown[b]:
          ax.plot(xy[[a, b], 0], xy[[a, b], 1], style, color=_edge_colour(a, b, base), linewidth=1.2)
    ax.set_xlim(-0.5, images.shape[2] - 0.5)
    ax.set_ylim(images.shape[1] - 0.5, -0.5)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  return fig


def skeleton_3d(poses_mm: list[np.ndarray], labels: list[str], *, title: str = "") -> plt.Figure:
  """Root-relative 3D skeletons [17, 3] (camera frame, mm) side by side in one 3D axis, y pointing down."""
  fig = plt.figure(figsize=(4, 4))
  ax = fig.add_subplot(projection="3d")
  styles = ["-", "--", ":"]
  for k, (pose, label) in enumerate(zip(poses_mm, labels)):
    for e, (a, b) in enumerate(skeleton.EDGES):
      ax.plot(pose[[a, b], 0], pose[[a, b], 2], -pose[[a, b], 1], styles[k % 3],
              color=_edge_colour(a, b, "pred" if k == 0 else "gt"), label=label if e == 0 else None)
  ax.set_xlabel("x (mm)")
  ax.set_ylabel("z (mm)")
  ax.set_zlabel("-y (mm)")
  ax.legend(loc="upper right", fontsize=7)
  if title:
    ax.set_title(title)
  return fig


def to_png(fig: plt.Figure) -> bytes:
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=80)
  plt.close(fig)
  return buffer.getvalue()
