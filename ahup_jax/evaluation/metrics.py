"""3D pose metrics (SPEC §6.3): MPJPE, rigid / similarity PA-MPJPE, 3DPCK and AUC, pooled per group.

Everything is vectorised over samples (batched SVD); poses are camera-frame millimetres, [N, J, 3].
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ahup_jax import skeleton
from ahup_jax.evaluation.backproject import root_align

PCK_THRESHOLDS_MM = np.arange(0.0, 151.0, 5.0)  # 0, 5, ..., 150: 31 thresholds, τ = 0 included

# The official MuPoTS-3D protocol (MATLAB `mpii_mupots_multiperson_eval`), in reference indices: its 14 evaluated
# joints (head top, neck, shoulders, elbows, wrists, hips, knees, ankles = our Head, Thorax, ...) and its kinematic
# tree for the bone-length rescaling, as (joint, parent) in traversal order from the pelvis.
MUPOTS_OFFICIAL_JOINTS: tuple[int, ...] = (10, 8, 14, 15, 16, 11, 12, 13, 1, 2, 3, 4, 5, 6)
MUPOTS_OFFICIAL_TREE: tuple[tuple[int, int], ...] = (
    (7, 0), (8, 7), (10, 8), (9, 8), (14, 8), (15, 14), (16, 15), (11, 8), (12, 11), (13, 12),
    (1, 0), (2, 1), (3, 2), (4, 0), (5, 4), (6, 5),
)


def rigid_align(pred: np.ndarray, gt: np.ndarray, scale: bool = False) -> np.ndarray:
  """Per-sample Procrustes fit of `pred` onto `gt` (SPEC §6.3); [N, J, 3] → aligned pred [N, J, 3] (float64).

  A = pred − μ_A, B = gt − μ_B (rows = joints), H = AᵀB = U S Vᵀ, R = V Uᵀ; a reflection (det R < 0) is
  excluded by negating the last row of Vᵀ. `scale=False`: rotation + translation (the paper's numbers, §9 #9);
  `scale=True`: similarity (Umeyama) with s = tr(R H) / ‖A‖². aligned = s·R·a + μ_B − s·R·μ_A.
  """
  pred = np.asarray(pred, np.float64)
  gt = np.asarray(gt, np.float64)
  mu_pred, mu_gt = pred.mean(axis=1, keepdims=True), gt.mean(axis=1, keepdims=True)
  a, b = pred - mu_pred, gt - mu_gt
  h = np.einsum("nji,njk->nik", a, b)
  u, _, vt = np.linalg.svd(h)
  reflect = np.linalg.det(np.swapaxes(vt, 1, 2) @ np.swapaxes(u, 1, 2)) < 0
  vt[reflect, -1] *= -1.0
  rotation = np.swapaxes(vt, 1, 2) @ np.swapaxes(u, 1, 2)  # R = V Uᵀ
  if scale:
    norm = np.einsum("nji,nji->n", a, a)
    s = np.einsum("nii->n", rotation @ h) / np.where(norm > 0, norm, 1.0)
  else:
    s = np.ones(len(pred))
  return s[:, None, None] * np.einsum("nik,njk->nji", rotation, a) + mu_gt


def joint_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
  """Euclidean distance per (sample, joint): [N, J, 3] × 2 → [N, J]."""
  return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
  """Mean per-joint position error over all (sample, joint) pairs, in the poses' unit (no alignment here)."""
  return float(joint_errors(pred, gt).mean())


def pck_auc(errors_mm: np.ndarray) -> tuple[float, float]:
  """(3DPCK@150 mm, AUC), both in %, from per-(sample, joint) errors of any shape (SPEC §6.3).

  PCK(τ) = share of errors strictly below τ; AUC = mean of PCK over τ ∈ {0, 5, ..., 150} (τ = 0 scores 0).
  """
  errors = np.asarray(errors_mm, np.float64).reshape(-1)
  if errors.size == 0:
    return float("nan"), float("nan")
  curve = (errors[:, None] < PCK_THRESHOLDS_MM).mean(axis=0) * 100.0
  return float(curve[-1]), float(curve.mean())


def rescale_bones(pred: np.ndarray, gt: np.ndarray,
                  tree: Sequence[tuple[int, int]] = MUPOTS_OFFICIAL_TREE) -> np.ndarray:
  """Official MuPoTS bone-length normalisation: each predicted bone keeps its direction and takes the GT length.

  pred, gt [N, J, 3] root-aligned; walking `tree` (parents before children), joint ← new parent position +
  (pred joint − pred parent) · |gt bone| / |pred bone|. A zero-length predicted bone stays zero.
  """
  pred = np.asarray(pred, np.float64)
  gt = np.asarray(gt, np.float64)
  mapped = pred.copy()
  for joint, parent in tree:
    bone = pred[:, joint] - pred[:, parent]
    length = np.linalg.norm(bone, axis=-1, keepdims=True)
    gt_length = np.linalg.norm(gt[:, joint] - gt[:, parent], axis=-1, keepdims=True)
    factor = np.divide(gt_length, length, out=np.zeros_like(length), where=length > 0)
    mapped[:, joint] = mapped[:, parent] + bone * factor
  return mapped


def _summary(errors: np.ndarray, pa_errors: np.ndarray | None, dz: np.ndarray,
             dz_pa: np.ndarray | None) -> dict:
  """Metrics of one pool of samples from its per-joint errors [n, j] (and |Δz| [n, j])."""
  out = {"count": int(errors.shape[0]), "mpjpe": float(errors.mean()) if errors.size else float("nan"),
         "z_err": float(dz.mean()) if dz.size else float("nan")}
  if pa_errors is not None:
    out["pa_mpjpe"] = float(pa_errors.mean()) if pa_errors.size else float("nan")
    out["pck150"], out["auc"] = pck_auc(pa_errors)
    out["z_err_pa"] = float(dz_pa.mean()) if dz_pa.size else float("nan")
  return out


def evaluate(pred_cam: np.ndarray, gt_cam: np.ndarray, *, bone_type: str = "h36m", pa_scale: bool = False,
             with_pa: bool = True, groups: np.ndarray | None = None, group_names: Sequence[str] = ()) -> dict:
  """The code protocol of SPEC §6.3 on camera-frame poses [N, 17, 3] (mm; root-aligned here).

  Keeps the `bone_type` joints (skeleton.EVAL_JOINTS), fits Procrustes per sample on them (rigid, or similarity
  with `pa_scale`) when `with_pa`, and reports pooled means over all (sample, joint) pairs: mpjpe, pa_mpjpe,
  pck150 and auc (% on PA errors), z_err / z_err_pa (mean |Δz| before / after alignment), mean_signed_error
  (x, y, z; mean over samples of the non-root joints' mean pred − gt, all 17 joints as the official code).
  `groups` [N] int (−1 = none) adds per-group pools under "groups" {name: {...}} for `group_names`; the overall
  values pool all samples (not a mean of group means). Empty groups have count 0 and NaN values.
  """
  if bone_type not in skeleton.EVAL_JOINTS:
    raise ValueError(f"eval.bone_type must be one of {sorted(skeleton.EVAL_JOINTS)}, got '{bone_type}'")
  pred, gt = root_align(pred_cam), root_align(gt_cam)
  if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[1:] != (skeleton.NUM_JOINTS, 3):
    raise ValueError(f"evaluate expects pred and gt [N, {skeleton.NUM_JOINTS}, 3]; got {pred.shape} and {gt.shape}")
  non_root = [j for j in range(skeleton.NUM_JOINTS) if j != skeleton.ROOT]
  signed = (pred[:, non_root] - gt[:, non_root]).mean(axis=1).mean(axis=0) if len(pred) else np.full(3, np.nan)

  joints = list(skeleton.EVAL_JOINTS[bone_type])
  pred, gt = pred[:, joints], gt[:, joints]
  errors = joint_errors(pred, gt)
  dz = np.abs(pred[..., 2] - gt[..., 2])
  pa_errors = dz_pa = None
  if with_pa:
    aligned = rigid_align(pred, gt, scale=pa_scale)
    pa_errors = joint_errors(aligned, gt)
    dz_pa = np.abs(aligned[..., 2] - gt[..., 2])

  def pool(mask):
    return _summary(errors[mask], None if pa_errors is None else pa_errors[mask], dz[mask],
                    None if dz_pa is None else dz_pa[mask])

  result = {"bone_type": bone_type, "pa": ("similarity" if pa_scale else "rigid") if with_pa else "none",
            **pool(slice(None)), "mean_signed_error": [float(v) for v in signed]}
  if groups is not None and len(group_names):
    groups = np.asarray(groups)
    result["groups"] = {name: pool(groups == g) for g, name in enumerate(group_names)}
  return result


def evaluate_mupots_official(pred_cam: np.ndarray, gt_cam: np.ndarray, groups: np.ndarray,
                             group_names: Sequence[str]) -> dict:
  """MATLAB-style MuPoTS-3D protocol (SPEC §6.3, §9 #10), as far as our records allow.

  Root-aligned poses; predicted bones rescaled to the GT lengths (`rescale_bones`); no Procrustes; errors on the
  14 official joints; 3DPCK@150 / AUC per sequence, and the overall values are the **mean over sequences** (as
  the official script reports), with the pooled values alongside (`pck150_pooled`, `auc_pooled`).
  Not reproduced: detection matching (every person counts as detected: GT boxes) and the "universal" skeleton
  (our annotations carry only the camera-frame joints), so sequences are compared with their GT skeleton.
  """
  pred, gt = root_align(pred_cam), root_align(gt_cam)
  pred = rescale_bones(pred, gt)
  joints = list(MUPOTS_OFFICIAL_JOINTS)
  errors = joint_errors(pred[:, joints], gt[:, joints])
  groups = np.asarray(groups)
  per_group = {}
  for g, name in enumerate(group_names):
    mask = groups == g
    pck, auc = pck_auc(errors[mask])
    per_group[name] = {"count": int(mask.sum()), "mpjpe": float(errors[mask].mean()) if mask.any() else float("nan"),
                       "pck150": pck, "auc": auc}
  present = [v for v in per_group.values() if v["count"]]
  pck_pooled, auc_pooled = pck_auc(errors)
  return {"bone_type": "mupots14", "pa": "none (bone-length rescaled)", "count": int(len(errors)),
          "mpjpe": float(errors.mean()) if errors.size else float("nan"),
          "pck150": float(np.mean([v["pck150"] for v in present])) if present else float("nan"),
          "auc": float(np.mean([v["auc"] for v in present])) if present else float("nan"),
          "pck150_pooled": pck_pooled, "auc_pooled": auc_pooled, "groups": per_group}
