"""Figures a person looks at: crops with 2D skeletons, 3D skeleton plots, photos with predicted people
(matplotlib, headless)."""
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


def save_png(fig: plt.Figure, path: str, dpi: int = 100) -> None:
  fig.savefig(path, format="png", dpi=dpi)
  plt.close(fig)


# ----------------------------------------------------------------------------------------------- photos
def thumbnail(image: np.ndarray, max_side: int = 320) -> tuple[np.ndarray, int]:
  """(image [H, W, 3] sampled every `step` pixels so that its long side is ≤ max_side, step)."""
  step = max(1, int(np.ceil(max(image.shape[:2]) / max_side)))
  return image[::step, ::step], step


def _show_photo(ax, image: np.ndarray, step: int = 1) -> None:
  """Shows a (thumbnail of a) photo in the original image's pixel coordinates (pixel centres at integers)."""
  height, width = image.shape[0] * step, image.shape[1] * step
  ax.imshow(image, extent=(-0.5, width - 0.5, height - 0.5, -0.5), interpolation="antialiased")
  ax.set_xlim(-0.5, width - 0.5)
  ax.set_ylim(height - 0.5, -0.5)
  ax.axis("off")


def draw_skeleton_2d(ax, joints_px: np.ndarray, linewidth: float = 2.0) -> None:
  """One skeleton [17, 2] image px in the sample grids' colours (left joints blue, right and centre red)."""
  for a, b in skeleton.EDGES:
    ax.plot(joints_px[[a, b], 0], joints_px[[a, b], 1], "-", color=_edge_colour(a, b, "pred"), linewidth=linewidth,
            solid_capstyle="round")


def draw_skeleton_3d(ax, pose_mm: np.ndarray, style: str = "-", base: str = "pred", label: str | None = None) -> None:
  """One root-relative skeleton [17, 3] camera mm on a 3D axis: x right, depth z into the page, −y up."""
  for e, (a, b) in enumerate(skeleton.EDGES):
    ax.plot(pose_mm[[a, b], 0], pose_mm[[a, b], 2], -pose_mm[[a, b], 1], style, color=_edge_colour(a, b, base),
            linewidth=2.0, label=label if e == 0 else None)


def _label_box(ax, box: np.ndarray, number: int, linewidth: float = 1.0, fontsize: float = 9) -> None:
  ax.add_patch(plt.Rectangle(box[:2], box[2], box[3], fill=False, edgecolor="yellow", linewidth=linewidth))
  ax.text(box[0], box[1], f"#{number}", color="black", fontsize=fontsize, va="bottom", ha="left",
          bbox=dict(facecolor="yellow", edgecolor="none", pad=1.0))


def prediction_figure(image: np.ndarray, boxes: np.ndarray, joints_px: np.ndarray, poses_mm: np.ndarray, *,
                      poses_mm_spa: np.ndarray | None = None, title: str = "",
                      half_extent_mm: float = 900.0) -> plt.Figure:
  """A photo [H, W, 3] uint8 with each person's box [P, 4] px and 2D skeleton [P, 17, 2] px, beside a 3D view of
  each person's root-relative pose [P, 17, 3] mm (SPA-adapted ones [P, 17, 3] dashed, lighter)."""
  count = len(poses_mm)
  rows = 1 if count <= 2 else 2
  columns = int(np.ceil(count / rows))
  height, width = image.shape[:2]
  photo_width = float(np.clip(4.5 * rows * width / height, 3.0, 12.0))
  fig = plt.figure(figsize=(photo_width + 3.8 * columns, 4.5 * rows))
  grid = fig.add_gridspec(rows, 1 + columns, width_ratios=[photo_width] + [3.8] * columns)
  ax = fig.add_subplot(grid[:, 0])
  _show_photo(ax, *thumbnail(image, 1600))
  for p in range(count):
    _label_box(ax, boxes[p], p)
    draw_skeleton_2d(ax, joints_px[p], linewidth=2.0 if height < 1200 else 2.5)
  if not count:
    ax.set_title("no person", fontsize=9)
  for p in range(count):
    ax3 = fig.add_subplot(grid[p // columns, 1 + p % columns], projection="3d")
    draw_skeleton_3d(ax3, poses_mm[p], label="pose" if poses_mm_spa is not None else None)
    if poses_mm_spa is not None:
      draw_skeleton_3d(ax3, poses_mm_spa[p], "--", "gt", label="SPA")
      ax3.legend(loc="upper right", fontsize=7)
    shown = poses_mm[p] if poses_mm_spa is None else np.concatenate([poses_mm[p], poses_mm_spa[p]])
    extent = max(half_extent_mm, float(np.abs(shown).max()))
    ax3.set(xlim=(-extent, extent), ylim=(-extent, extent), zlim=(-extent, extent))
    ax3.set_box_aspect((1, 1, 1))
    ax3.view_init(elev=12, azim=-70)
    ax3.set_xlabel("x (mm)", fontsize=7)
    ax3.set_ylabel("z (mm)", fontsize=7)
    ax3.set_zlabel("−y (mm)", fontsize=7)
    for axis in (ax3.xaxis, ax3.yaxis, ax3.zaxis):
      axis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
    ax3.tick_params(labelsize=6)
    ax3.set_title(f"#{p}", fontsize=10)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  return fig


def contact_sheet(items: list[tuple[tuple[np.ndarray, int], np.ndarray, str]], *, columns: int = 6,
                  title: str = "") -> plt.Figure:
  """A grid of photos with their 2D skeletons: items = [(`thumbnail(image)`, joints_px [P, 17, 2] px, label)]."""
  columns = max(1, min(columns, len(items)))
  rows = max(1, int(np.ceil(len(items) / columns)))
  fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows + 0.4), squeeze=False)
  for ax in axes.flat:
    ax.axis("off")
  for ax, ((image, step), joints, label) in zip(axes.flat, items):
    _show_photo(ax, image, step)
    for person in joints:
      draw_skeleton_2d(ax, person, linewidth=1.0)
    ax.set_title(label if len(label) <= 32 else "…" + label[-31:], fontsize=7)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  return fig
