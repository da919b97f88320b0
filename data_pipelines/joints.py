"""Per-dataset joint tables (AHuP naming), derived joints and the name-based mapping onto the 17-joint reference
order of `ahup_jax.skeleton` (SPEC §4.2–4.9): the one place that knows each dataset's joints."""
from __future__ import annotations

import numpy as np

from ahup_jax import skeleton

H36M = skeleton.JOINT_NAMES  # the reference order is Human3.6M's own (with AHuP's Thorax/Neck renaming)

# MuCo-3DHP (21); original names Head_top → Head, Spine → Torso, Head → Neck (SPEC §4.3).
MUCO = ("Head", "Thorax", "R_Shoulder", "R_Elbow", "R_Wrist", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Hip",
        "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Pelvis", "Torso", "Neck", "R_Hand", "L_Hand",
        "R_Toe", "L_Toe")
MUPOTS = MUCO[:17]

# COCO's 17 keypoints + derived Thorax (mid shoulders) and Pelvis (mid hips), SPEC §4.5.
MSCOCO = ("Nose", "L_Eye", "R_Eye", "L_Ear", "R_Ear", "L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow", "L_Wrist",
          "R_Wrist", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle", "R_Ankle", "Thorax", "Pelvis")

# MPII's 16 (3DMPPE order; Neck = upper neck, Head = head top) + derived Torso (mid Thorax–Pelvis), SPEC §4.6.
MPII = ("R_Ankle", "R_Knee", "R_Hip", "L_Hip", "L_Knee", "L_Ankle", "Pelvis", "Thorax", "Neck", "Head", "R_Wrist",
        "R_Elbow", "R_Shoulder", "L_Shoulder", "L_Elbow", "L_Wrist", "Torso")

# ScanAva+ labels 14 LSP-like joints (Head = head top); Pelvis, Torso, Neck are derived (SPEC §4.7).
SCANAVA_LABELLED = ("R_Ankle", "R_Knee", "R_Hip", "L_Hip", "L_Knee", "L_Ankle", "R_Wrist", "R_Elbow", "R_Shoulder",
                    "L_Shoulder", "L_Elbow", "L_Wrist", "Thorax", "Head")
SCANAVA = SCANAVA_LABELLED + ("Pelvis", "Torso", "Neck")

# SURREAL: the 24 SMPL joints in the 2D annotation's order (AHuP naming: spine3 → Torso, neck → Thorax,
# head → Neck) + the extrapolated Head (SPEC §4.8).
SURREAL = ("Pelvis", "R_Hip", "L_Hip", "Spine1", "R_Knee", "L_Knee", "Spine2", "R_Ankle", "L_Ankle", "Torso",
           "R_Foot", "L_Foot", "Thorax", "R_Collar", "L_Collar", "Neck", "R_Shoulder", "L_Shoulder", "R_Elbow",
           "L_Elbow", "R_Wrist", "L_Wrist", "R_Hand", "L_Hand", "Head")

DATASET_JOINTS = {"Human36M": H36M, "MuCo": MUCO, "MuPoTS": MUPOTS, "MSCOCO": MSCOCO, "MPII": MPII,
                  "ScanAva": SCANAVA, "SURREAL": SURREAL}


def flip_pairs(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
  """(right, left) index pairs of `names`, matched by the R_/L_ prefix, in the order the right joints appear."""
  index = {n: i for i, n in enumerate(names)}
  return tuple((i, index["L_" + n[2:]]) for i, n in enumerate(names) if n.startswith("R_") and "L_" + n[2:] in index)


def reference_index(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
  """(source index [17] int, defined [17] bool): reference joint r is `names[index[r]]` where defined."""
  lookup = {n: i for i, n in enumerate(names)}
  index = np.array([lookup.get(n, 0) for n in skeleton.JOINT_NAMES], np.int64)
  defined = np.array([n in lookup for n in skeleton.JOINT_NAMES])
  return index, defined


def to_reference(values: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
  """[N, J_ds, ...] in dataset order → [N, 17, ...] in reference order; undefined joints are zero (SPEC §4.9)."""
  index, defined = reference_index(names)
  out = np.asarray(values)[:, index]
  out[:, ~defined] = 0
  return out


def _mid(joints: np.ndarray, a: int, b: int) -> np.ndarray:
  return (joints[:, a] + joints[:, b]) / 2


def add_mscoco_joints(keypoints: np.ndarray) -> np.ndarray:
  """[N, 17, 3] COCO (x, y, v) → [N, 19, 3] `MSCOCO`: Thorax = mid shoulders, Pelvis = mid hips, each with
  v = product of the two source flags (SPEC §4.5)."""
  def derived(left: str, right: str) -> np.ndarray:
    a, b = MSCOCO.index(left), MSCOCO.index(right)
    return np.concatenate([_mid(keypoints[..., :2], a, b), keypoints[:, a, 2:] * keypoints[:, b, 2:]], -1)
  return np.concatenate([keypoints, derived("L_Shoulder", "R_Shoulder")[:, None],
                         derived("L_Hip", "R_Hip")[:, None]], 1)


def add_mpii_torso(keypoints: np.ndarray, torso_vis: str) -> np.ndarray:
  """[N, 16, 3] MPII (x, y, v) → [N, 17, 3] `MPII` with Torso = mid(Thorax, Pelvis) (SPEC §4.6, §9 #17).

  torso_vis: "faithful" = vis 1 always (as the official code, even if a source joint is unlabelled);
  "product" = v_thorax · v_pelvis.
  """
  thorax, pelvis = MPII.index("Thorax"), MPII.index("Pelvis")
  if torso_vis == "faithful":
    vis = np.ones_like(keypoints[:, thorax, 2:])
  elif torso_vis == "product":
    vis = keypoints[:, thorax, 2:] * keypoints[:, pelvis, 2:]
  else:
    raise ValueError(f"data.mpii_torso_vis must be 'faithful' or 'product', got {torso_vis!r}")
  torso = np.concatenate([_mid(keypoints[..., :2], thorax, pelvis), vis], -1)
  return np.concatenate([keypoints, torso[:, None]], 1)


def add_scanava_joints(labelled: np.ndarray) -> np.ndarray:
  """[N, 14, D] `SCANAVA_LABELLED` → [N, 17, D] `SCANAVA`: Pelvis = mid hips, Torso = mid(Pelvis, Thorax),
  Neck = Thorax + (Head − Thorax)/3 (SPEC §4.7; used for 2D and 3D alike)."""
  name = {n: i for i, n in enumerate(SCANAVA_LABELLED)}
  pelvis = _mid(labelled, name["R_Hip"], name["L_Hip"])
  thorax, head = labelled[:, name["Thorax"]], labelled[:, name["Head"]]
  return np.concatenate([labelled, np.stack([pelvis, (pelvis + thorax) / 2, thorax + (head - thorax) / 3], 1)], 1)


def add_surreal_head(joints: np.ndarray) -> np.ndarray:
  """[N, 24, D] SMPL joints → [N, 25, D] `SURREAL` with Head = Neck + 2·(Neck − Thorax) (SPEC §4.8)."""
  neck, thorax = joints[:, SURREAL.index("Neck")], joints[:, SURREAL.index("Thorax")]
  return np.concatenate([joints, (neck + 2 * (neck - thorax))[:, None]], 1)
