"""ahup_jax.figures on fixed inputs: PNG size, non-blank pixels, and the number of bars / points / skeleton lines."""
from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from ahup_jax import figures, skeleton


def _png(path) -> np.ndarray:
  pixels = matplotlib.image.imread(str(path))
  assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100, pixels.shape
  return pixels[..., :3]


def _not_blank(pixels: np.ndarray) -> None:
  non_white = np.mean(np.any(pixels < 0.95, axis=-1))
  assert non_white > 0.02, f"only {non_white:.1%} of the pixels are drawn"
  assert pixels.std() > 0.05


@pytest.fixture
def capture(monkeypatch):
  """Keeps the last figure the module saved (before it is closed) to count its artists."""
  saved = []
  original = figures.viz.save_png

  def save(fig, path, dpi=100):
    saved.append(fig)
    original(fig, path, dpi)
  monkeypatch.setattr(figures.viz, "save_png", save)
  return saved


def test_ablation_bars(tmp_path, capture):
  rows = {name: {k: {"mean": m, "std": 2.0} for k in ("mpjpe", "pa_mpjpe", "pck150", "auc")}
          for name, m in (("a", 100.0), ("b", 80.0), ("c", 60.0))}
  path = figures.ablation_bars(rows, str(tmp_path / "bars.png"))
  _not_blank(_png(path))
  axes = capture[-1].axes
  assert len(axes) == 4
  assert [len(ax.patches) for ax in axes] == [3, 3, 3, 3]
  assert [p.get_height() for p in axes[0].patches] == [100.0, 80.0, 60.0]
  assert [t.get_text() for t in axes[0].get_xticklabels()] == ["a", "b", "c"]


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_feature_embedding_points_per_domain(tmp_path, capture, method):
  rng = np.random.default_rng(0)
  domains = np.array(["source"] * 20 + ["2D wild"] * 15 + ["target"] * 10)
  features = rng.normal(size=(45, 8)) + (domains == "source")[:, None] * 5.0
  path = figures.feature_embedding({"m1": (features, domains), "m2": (features * 2, domains)},
                                   str(tmp_path / "feat.png"), method=method)
  _not_blank(_png(path))
  axes = capture[-1].axes
  assert len(axes) == 2
  for ax in axes:
    assert [len(c.get_offsets()) for c in ax.collections] == [20, 15, 10]


def test_embed_2d_pca_separates_clusters():
  rng = np.random.default_rng(1)
  points = np.concatenate([rng.normal(size=(30, 5)), rng.normal(size=(30, 5)) + 10.0])
  xy = figures.embed_2d(points, "pca")
  assert xy.shape == (60, 2)
  assert abs(xy[:30, 0].mean() - xy[30:, 0].mean()) > 10.0


def test_pose_embedding_counts(tmp_path, capture):
  rng = np.random.default_rng(2)
  poses = {"A": rng.normal(size=(12, 17, 3)) * 100, "B": rng.normal(size=(7, 17, 3)) * 100 + 50}
  path = figures.pose_embedding(poses, str(tmp_path / "poses.png"))
  _not_blank(_png(path))
  assert [len(c.get_offsets()) for c in capture[-1].axes[0].collections] == [12, 7]


def test_skeleton_comparison_draws_every_bone(tmp_path, capture):
  rng = np.random.default_rng(3)
  crops = (rng.uniform(size=(2, 32, 32, 3)) * 255).astype(np.uint8)
  gt = rng.normal(size=(2, 17, 3)) * 200
  path = figures.skeleton_comparison(crops, {"x": gt + 10, "y": gt - 10, "z": gt * 0.5}, gt,
                                     str(tmp_path / "skel.png"))
  _not_blank(_png(path))
  axes = capture[-1].axes
  assert len(axes) == 2 * 4  # per crop: the image + 3 models
  three_d = [ax for ax in axes if ax.name == "3d"]
  assert len(three_d) == 6
  assert all(len(ax.lines) == 2 * len(skeleton.EDGES) for ax in three_d)  # prediction + GT


def test_training_curves(tmp_path, capture):
  steps = np.arange(1, 11)
  curves = {"r1": {"train/loss_coord": (steps, 1.0 / steps), "train/d_acc_syn": (steps, steps / 10.0)},
            "r2": {"train/loss_coord": (steps, 2.0 / steps)}}
  path = figures.training_curves(curves, str(tmp_path / "curves.png"))
  _not_blank(_png(path))
  axes = capture[-1].axes
  assert [len(ax.lines) for ax in axes] == [2, 1]  # nobody logged d_acc_real: no empty panel
  figures.training_curves({"r2": curves["r2"]}, str(tmp_path / "no_d.png"))
  assert [len(ax.lines) for ax in capture[-1].axes] == [1]
