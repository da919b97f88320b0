"""The ablation's and the evaluation's figures (PNG, headless matplotlib): one pure plotting function per figure on
arrays, plus `ablation_figures` (gathers the arrays from the ablation's runs, writes them into cfg.out_dir) and
`evaluation_figures` (one model's evaluation folder: what `--mode=eval` and the main job write).

  ablation_bars        the results table as bars with ± std error bars (paper Table 1)
  feature_embedding    t-SNE of G's pooled features coloured by domain, one panel per model (paper Fig. 4)
  pose_embedding       PCA of root-relative 3D poses per dataset / model (paper Fig. 3)
  skeleton_comparison  test crops beside 3D skeletons: prediction vs GT per model (paper Fig. 6)
  training_curves      coordinate loss and D accuracy per domain over training, from the TensorBoard events
"""
from __future__ import annotations

import glob
import os

import numpy as np

from ahup_jax import viz
from ahup_jax.viz import plt

DOMAIN_COLOURS = {"source": "tab:orange", "2D wild": "tab:green", "target": "tab:blue"}
PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
           "tab:olive", "tab:cyan")


def ablation_bars(rows: dict[str, dict], path: str, metrics=(("mpjpe", "MPJPE (mm)"), ("pa_mpjpe", "PA-MPJPE (mm)"),
                                                               ("pck150", "3DPCK (%)"), ("auc", "AUC (%)"))) -> str:
  """rows {name: {metric: {"mean", "std"}}} → one bar panel per metric, one bar per row with a ±std error bar."""
  names = list(rows)
  fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 4.2), squeeze=False)
  for ax, (key, label) in zip(axes[0], metrics):
    means = [rows[n][key]["mean"] for n in names]
    stds = [rows[n][key]["std"] for n in names]
    ax.bar(np.arange(len(names)), means, yerr=stds, capsize=3, color=[PALETTE[i % len(PALETTE)]
                                                                      for i in range(len(names))])
    ax.set_xticks(np.arange(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set_title(label, fontsize=9)
  fig.tight_layout()
  viz.save_png(fig, path)
  return path


def embed_2d(points: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
  """[N, D] → [N, 2]: scikit-learn t-SNE (perplexity ≤ 30, ≤ (N−1)/3) or PCA (numpy SVD)."""
  points = np.asarray(points, np.float64)
  points = points - points.mean(0)
  if method == "tsne" and len(points) > 5:
    from sklearn.manifold import TSNE
    perplexity = float(min(30.0, max(2.0, (len(points) - 1) / 3)))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points)
  _, _, vt = np.linalg.svd(points, full_matrices=False)
  out = points @ vt[:2].T
  return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))


def feature_embedding(panels: dict[str, tuple[np.ndarray, np.ndarray]], path: str, method: str = "tsne") -> str:
  """panels {model name: (features [N, C], domain names [N])} → one scatter per model, coloured by domain."""
  fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
  for ax, (name, (features, domains)) in zip(axes[0], panels.items()):
    xy = embed_2d(features, method)
    domains = np.asarray(domains)
    for domain in dict.fromkeys(domains.tolist()):
      keep = domains == domain
      ax.scatter(xy[keep, 0], xy[keep, 1], s=6, alpha=0.7, label=domain,
                 color=DOMAIN_COLOURS.get(domain, "tab:gray"))
    ax.set_title(f"{name}: G features ({method})", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=2)
  fig.tight_layout()
  viz.save_png(fig, path)
  return path


def pose_embedding(poses: dict[str, np.ndarray], path: str, method: str = "pca") -> str:
  """poses {name: [N, 17, 3] root-relative mm} → one 2D embedding of all of them, one colour per name."""
  names = list(poses)
  flat = np.concatenate([np.asarray(poses[n], np.float64).reshape(len(poses[n]), -1) for n in names])
  xy = embed_2d(flat, method)
  fig, ax = plt.subplots(figsize=(5.5, 4.5))
  start = 0
  for i, n in enumerate(names):
    k = len(poses[n])
    ax.scatter(xy[start:start + k, 0], xy[start:start + k, 1], s=5, alpha=0.6, color=PALETTE[i % len(PALETTE)],
               label=f"{n} ({k})")
    start += k
  ax.set_title(f"root-relative 3D poses ({method})", fontsize=9)
  ax.legend(fontsize=7, markerscale=2)
  fig.tight_layout()
  viz.save_png(fig, path)
  return path


def skeleton_comparison(crops: np.ndarray, predictions: dict[str, np.ndarray], gt: np.ndarray, path: str) -> str:
  """crops [K, S, S, 3] uint8; predictions {model: [K, 17, 3] mm}; gt [K, 17, 3] mm → K rows: the crop, then
  one 3D panel per model with its prediction (solid) over the GT (dashed)."""
  k, m = len(crops), len(predictions)
  fig = plt.figure(figsize=(2.6 * (m + 1), 2.6 * k))
  limit = float(np.abs(gt).max()) * 1.1 + 1.0
  for i in range(k):
    ax = fig.add_subplot(k, m + 1, i * (m + 1) + 1)
    ax.imshow(crops[i])
    ax.axis("off")
    for j, (name, pred) in enumerate(predictions.items()):
      ax = fig.add_subplot(k, m + 1, i * (m + 1) + j + 2, projection="3d")
      viz.draw_skeleton_3d(ax, gt[i], style="--", base="gt", label="GT")
      viz.draw_skeleton_3d(ax, pred[i], style="-", base="pred", label=name)
      ax.set_xlim(-limit, limit)
      ax.set_ylim(-limit, limit)
      ax.set_zlim(-limit, limit)
      ax.set_xticklabels([])
      ax.set_yticklabels([])
      ax.set_zticklabels([])
      if i == 0:
        ax.set_title(name, fontsize=8)
  fig.tight_layout()
  viz.save_png(fig, path)
  return path


def training_curves(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], path: str,
                    panels=(("train/loss_coord", "coordinate loss"), ("train/d_acc_syn", "D accuracy, synthetic"),
                            ("train/d_acc_real", "D accuracy, real"))) -> str:
  """curves {run name: {tag: (steps, values)}} → one panel per tag that some run logged (e.g. no D panels for a
  run without D), one line per run that logged it."""
  panels = [p for p in panels if any(p[0] in tags for tags in curves.values())] or list(panels[:1])
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
  for ax, (tag, label) in zip(axes[0], panels):
    for i, (name, tags) in enumerate(curves.items()):
      if tag in tags:
        steps, values = tags[tag]
        ax.plot(steps, values, "-", color=PALETTE[i % len(PALETTE)], label=name, linewidth=1.2)
    ax.set_title(label, fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    if ax.lines:
      ax.legend(fontsize=6)
  fig.tight_layout()
  viz.save_png(fig, path)
  return path


# ----------------------------------------------------------------------------------------------- from the runs
def read_scalars(logdir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{tag: (steps, values)} of every scalar in the TensorBoard event files under `logdir` (sorted by step)."""
  import tensorflow as tf
  found: dict[str, list] = {}
  for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.HasField("tensor") and not value.tensor.string_val:
          found.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
        elif value.HasField("simple_value"):
          found.setdefault(value.tag, []).append((event.step, float(value.simple_value)))
  out = {}
  for tag, pairs in found.items():
    pairs.sort()
    out[tag] = (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
  return out


def evaluation_figures(config, variables: dict, records, out_dir: str, *, tag: str = "", tensorboard_dir: str = "",
                       examples: int = 6) -> list[str]:
  """The figures of one evaluation, from its pred_cam<tag>.npz in `out_dir`: `skeletons<tag>.png` (test crops beside
  the predicted vs GT 3D skeleton), `poses_pca<tag>.png` (predicted vs GT test poses: a collapsed model sits in
  the middle of the GT's ring) and, when `tensorboard_dir` holds events, `training_curves.png`."""
  with np.load(os.path.join(out_dir, f"pred_cam{tag}.npz")) as cam:
    pred, gt = cam["pred"], cam["gt"]
  if len(gt) != len(records):
    raise ValueError(f"{out_dir}/pred_cam{tag}.npz holds {len(gt)} poses but the test split has {len(records)} "
                     "records: the file belongs to another evaluation")
  pick = _spread(len(gt), examples)
  _, crops = pooled_features(config, variables, records.subset(pick), len(pick))
  written = [skeleton_comparison(crops, {"prediction": pred[pick]}, gt[pick],
                                 os.path.join(out_dir, f"skeletons{tag}.png"))]
  spread = _spread(len(gt), 600)
  written.append(pose_embedding({f"{records.info.name} test GT": gt[spread], "prediction": pred[spread]},
                                os.path.join(out_dir, f"poses_pca{tag}.png")))
  curves = read_scalars(tensorboard_dir) if tensorboard_dir else {}
  if curves:
    written.append(training_curves({"training": curves}, os.path.join(out_dir, "training_curves.png")))
  return written


def pooled_features(config, variables: dict, records, count: int) -> tuple[np.ndarray, np.ndarray]:
  """G's spatially pooled features [n, C] and the un-normalised crops [n, S, S, 3] uint8 of `count` records
  spread evenly over `records` (evaluation crops, no flip)."""
  import jax
  from ahup_jax import models
  from data_pipelines import pivot
  index = np.unique(np.linspace(0, len(records) - 1, min(count, len(records))).astype(int))
  subset = records.subset(index)
  backbone, _ = models.build_pose_net(config.model)
  g = {"params": variables["params"]["G"], "batch_stats": variables["batch_stats"]["G"]}
  apply = jax.jit(lambda images: backbone.apply(g, images, train=False).mean(axis=(1, 2)))
  features, crops = [], []
  for batch in pivot.make_eval_dataset(subset, config, 32, flip_test=False).as_numpy_iterator():
    keep = batch["valid"] > 0
    features.append(np.asarray(apply(batch["image"]))[keep])
    crops.append(viz.denormalise(batch["image"][keep], config.model.input_scale))
  return np.concatenate(features), np.concatenate(crops)


def ablation_figures(cfg, summary: dict) -> list[str]:
  """Writes every figure of the ablation into cfg.out_dir from the runs' folders; returns the paths. Rows adopted
  from an earlier report (`--previous`) have no folder: they are in the bar chart only."""
  from ahup_jax import ablation, jobs
  from data_pipelines import readers
  out = cfg.out_dir
  written = [ablation_bars(summary["rows"], os.path.join(out, "ablation_bars.png"))]
  trained_here = [r for r in cfg.rows if os.path.isdir(os.path.join(ablation.run_dir(cfg, r, 0), "tensorboard"))]
  adapted = next((r for r in (ablation.FULL_ROW, "SAA") if r in trained_here), None)  # SAA when Jo2D was not run
  models_rows = [r for r in (ablation.SOURCE_ROW, adapted) if r in trained_here]
  if not trained_here:
    return written
  curves = {}
  for row in trained_here:
    curves[row] = read_scalars(os.path.join(ablation.run_dir(cfg, row, 0), "tensorboard"))
  written.append(training_curves(curves, os.path.join(out, "ablation_training_curves.png")))
  if not models_rows:
    return written
  config = ablation.row_config(cfg, models_rows[0], 0)
  domains = {"source": readers.load(config.data.trainset[0] if config.data.trainset[0] != "Human36M"
                                    else "ScanAva", config.data, "test"),
             "2D wild": readers.load("MSCOCO", config.data, "train"),
             "target": readers.load("Human36M", config.data, "test")}
  panels, variables_by_row = {}, {}
  for row in models_rows:
    row_cfg = ablation.row_config(cfg, row, 0)
    variables_by_row[row] = jobs.restore_variables(row_cfg, ablation.run_dir(cfg, row, 0))
    feats, names = [], []
    for domain, records in domains.items():
      f, _ = pooled_features(row_cfg, variables_by_row[row], records, cfg.tsne_per_domain)
      feats.append(f)
      names += [domain] * len(f)
    panels[row] = (np.concatenate(feats), np.array(names))
  written.append(feature_embedding(panels, os.path.join(out, "ablation_features_tsne.png")))

  # poses: the datasets' GT and the models' test predictions (root-relative mm)
  poses = {"ScanAva train (source)": domains_poses(readers.load("ScanAva", config.data, "train"), 600),
           "Human36M train (target)": domains_poses(readers.load("Human36M", config.data, "train"), 600),
           "Human36M test GT": domains_poses(domains["target"], 600)}
  test_preds = {}
  for row in models_rows:
    with np.load(os.path.join(ablation.run_dir(cfg, row, 0), "eval", "pred_cam.npz")) as cam:
      test_preds[row], gt = cam["pred"], cam["gt"]
    poses[f"{row} prediction"] = test_preds[row][_spread(len(test_preds[row]), 600)]
  written.append(pose_embedding(poses, os.path.join(out, "ablation_poses_pca.png")))

  pick = _spread(len(gt), cfg.skeleton_examples)
  _, crops = pooled_features(config, variables_by_row[models_rows[0]], domains["target"].subset(pick), len(pick))
  written.append(skeleton_comparison(crops, {row: p[pick] for row, p in test_preds.items()}, gt[pick],
                                     os.path.join(out, "ablation_skeletons.png")))
  return written


def _spread(n: int, count: int) -> np.ndarray:
  return np.unique(np.linspace(0, n - 1, min(n, count)).astype(int))


def domains_poses(records, count: int) -> np.ndarray:
  """Root-relative camera-frame GT poses [≤count, 17, 3] mm of `records`, spread over the set."""
  cam = records.joint_cam[_spread(len(records), count)]
  return cam - cam[:, :1]
