"""The embedded dataset generator (data_pipelines.synth): exact labels, reader round trips, image/label
agreement, measurable domain gaps and byte-for-byte determinism, all on the `tiny` preset."""
from __future__ import annotations

import filecmp
import json
import os

import numpy as np
import pytest
from PIL import Image

from ahup_jax import skeleton
from configs import common, saa
from data_pipelines import joints as joints_lib
from data_pipelines import readers, synth
from data_pipelines.synth import bodies, datasets, domains, poses
from data_pipelines.tfds import build, source
from tests.test_tfds import assert_same_records

DATASET_NAMES = {"ScanAva": joints_lib.SCANAVA_LABELLED, "Human36M": joints_lib.H36M,
                 "MSCOCO": joints_lib.MSCOCO[:17], "MPII": joints_lib.MPII[:16]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  out = tmp_path_factory.mktemp("synth") / "data"
  return str(out), synth.generate(str(out), "tiny", seed=0, workers=1)


def _files(root: str) -> list[str]:
  return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_scanava_labels_are_exact_projections(tiny):
  """joint_img = projection of 1000·(X, −Y, −Z) (SPEC §4.7 axis flip) with the record's F, C, to 1e-3 px."""
  out, labels = tiny
  records = np.load(os.path.join(out, "ScanAva_1119", "scanava_raw.npy"), allow_pickle=True)
  assert len(records) == len(labels["ScanAva"])
  scans = set()
  for record, rel_path in zip(records, labels["ScanAva"].img_path):
    assert record["joint_img"].shape == (3, 14) and record["joint_cam"].shape == (3, 14)
    cam_mm = record["joint_cam"].T * np.array([1000.0, -1000.0, -1000.0])
    assert (cam_mm[:, 2] > 0).all()
    uv = cam_mm[:, :2] / cam_mm[:, 2:] * record["F"] + record["C"]
    np.testing.assert_allclose(uv, record["joint_img"][:2].T, atol=1e-3)
    assert record["img_path"].endswith(rel_path) and os.path.exists(os.path.join(out, rel_path))
    scans.add(rel_path.split("/")[1])
  order = [datasets.SCAN_NAMES.index(s) for s in scans]
  assert min(order) < datasets.NUM_TRAIN_SCANS <= max(order)


def test_h36m_labels_are_exact_projections(tiny):
  """Current 3DMPPE release: camera = R·world + t; projecting it with f, c gives the generator's 2D to 1e-3 px."""
  out, labels = tiny
  h36m = labels["Human36M"]
  by_path = {p: i for i, p in enumerate(h36m.img_path)}
  seen = 0
  for subject in datasets.H36M_TRAIN_SUBJECTS + datasets.H36M_TEST_SUBJECTS:
    base = os.path.join(out, "Human36M", "annotations", f"Human36M_subject{subject}")
    data, cameras, joints = (json.load(open(f"{base}_{kind}.json")) for kind in ("data", "camera", "joint_3d"))
    images = {im["id"]: im for im in data["images"]}
    for ann in data["annotations"]:
      image = images[ann["image_id"]]
      cam = cameras[str(image["cam_idx"])]
      world = np.array(joints[str(image["action_idx"])][str(image["subaction_idx"])][str(image["frame_idx"])])
      joint_cam = world @ np.array(cam["R"]).T + np.array(cam["t"])
      uv = joint_cam[:, :2] / joint_cam[:, 2:] * cam["f"] + cam["c"]
      row = by_path["Human36M/images/" + image["file_name"]]
      np.testing.assert_allclose(uv, h36m.joints_2d[row], atol=1e-3)
      np.testing.assert_allclose(joint_cam, h36m.joints_cam[row], atol=1e-6)
      assert image["file_name"].endswith(f"_{image['frame_idx'] + 1:06d}.jpg")  # 3DMPPE numbering
      assert f"act_{image['action_idx']:02d}" in image["file_name"] and image["subject"] == subject
      assert image["frame_idx"] % (5 if subject in datasets.H36M_TRAIN_SUBJECTS else 64) == 0
      seen += 1
  assert seen == len(h36m)
  assert (h36m.split == "test").any() and (h36m.split == "train").any()


def test_images_agree_with_labels(tiny):
  """Every labelled 3D joint lies on the rendered body: it projects inside the person's mask box (+2 px)."""
  out, labels = tiny
  for name in ("ScanAva", "Human36M"):
    inst = labels[name]
    lo, hi = inst.bbox[:, None, :2] - 2, inst.bbox[:, None, :2] + inst.bbox[:, None, 2:] + 2
    assert ((inst.joints_2d >= lo) & (inst.joints_2d <= hi)).all(), name
    assert (inst.bbox[:, 2:] > 10).all()
  for name in ("MSCOCO", "MPII"):
    inst = labels[name]
    visible = inst.joints_vis == (2 if name == "MSCOCO" else 1)
    lo, hi = inst.bbox[:, None, :2] - 2, inst.bbox[:, None, :2] + inst.bbox[:, None, 2:] + 2
    inside = ((inst.joints_2d >= lo) & (inst.joints_2d <= hi)).all(-1)
    assert inside[visible & inst.valid[:, None]].mean() > 0.97, name
  scanava = labels["ScanAva"]
  image = np.asarray(Image.open(os.path.join(out, scanava.img_path[0])), np.float64)
  torso = np.round(scanava.joints_2d[0, [2, 3, 12]].mean(0)).astype(int)  # mid hips and thorax
  assert np.abs(image[torso[1], torso[0]] - image[0, 0]).max() > 20  # body, not the plain backdrop


def _config(root: str):
  config = common.data()
  config.root = root
  return config


@pytest.mark.parametrize("name,split", [("ScanAva", "train"), ("ScanAva", "test"), ("ScanAva", "testInLoop"),
                                        ("Human36M", "train"), ("Human36M", "test"), ("Human36M", "testInLoop"),
                                        ("MSCOCO", "train"), ("MPII", "train")])
def test_readers_agree_with_generator(tiny, name, split):
  readers = pytest.importorskip("data_pipelines.readers")
  out, labels = tiny
  inst = labels[name]
  records = readers.load(name, _config(out), split)
  keep = inst.valid & (inst.split == ("train" if split == "train" else "test"))
  if split == "testInLoop":
    keep &= (np.arange(len(inst)) % 20 == 0) if name == "ScanAva" else np.array(
        [int(p[-10:-4]) - 1 for p in inst.img_path]) % 640 == 0
  assert len(records) == keep.sum() > 0
  expected = np.nonzero(keep)[0]
  paths = {os.path.relpath(p, out): k for k, p in enumerate(records.img_path)}
  names = DATASET_NAMES[name]
  ref_2d = joints_lib.to_reference(inst.joints_2d[expected], names)
  ref_cam = joints_lib.to_reference(inst.joints_cam[expected], names)
  if name in ("MSCOCO", "MPII"):  # several people per image: match each to the record with the same joints
    order = [min((k for k in range(len(records)) if os.path.relpath(records.img_path[k], out) == inst.img_path[e]),
                 key=lambda k: np.abs(records.joint_img[k, :, :2] - ref_2d[i]).sum()) for i, e in enumerate(expected)]
  else:
    order = [paths[p] for p in inst.img_path[expected]]
  defined = joints_lib.reference_index(names)[1]
  np.testing.assert_allclose(records.joint_img[order][:, defined, :2], ref_2d[:, defined], atol=2e-3)
  if name in ("ScanAva", "Human36M"):
    np.testing.assert_allclose(records.joint_cam[order][:, defined], ref_cam[:, defined], rtol=1e-6, atol=1e-3)
    assert records.info.is_synthetic == (name == "ScanAva")
  else:
    np.testing.assert_array_equal(records.joint_vis[order][:, defined] > 0,
                                  joints_lib.to_reference(inst.joints_vis[expected], names)[:, defined] > 0)


def _reference_poses(labels) -> tuple[np.ndarray, np.ndarray]:
  """17-joint camera-frame poses (mm) of ScanAva (derived joints per SPEC §4.7) and Human36M."""
  scanava = labels["ScanAva"].joints_cam
  k = {key: i for i, key in enumerate(bodies.SCANAVA_JOINTS)}
  pelvis = (scanava[:, k["r_hip"]] + scanava[:, k["l_hip"]]) / 2
  thorax, head = scanava[:, k["thorax"]], scanava[:, k["head"]]
  derived = np.stack([pelvis, (pelvis + thorax) / 2, thorax + (head - thorax) / 3], 1)
  return joints_lib.to_reference(np.concatenate([scanava, derived], 1), joints_lib.SCANAVA), labels[
      "Human36M"].joints_cam


def _descriptor(poses_17: np.ndarray) -> np.ndarray:
  """SPEC §7.2: the 16 edge lengths (skeleton.EDGES order) / shoulder width. [N, 17, 3] → [N, 16]."""
  edges = np.array(skeleton.EDGES)
  lengths = np.linalg.norm(poses_17[:, edges[:, 0]] - poses_17[:, edges[:, 1]], axis=-1)
  return lengths / np.linalg.norm(poses_17[:, skeleton.L_SHOULDER] - poses_17[:, skeleton.R_SHOULDER], axis=-1)[:, None]


def test_skeletal_descriptors_differ_between_source_and_target(tiny):
  """Skeleton-definition + proportion gap: mean descriptors differ by > 1 in total (L1 over the 16 edges) and
  by more than twice the difference between H36M's own train and test subjects."""
  _, labels = tiny
  source, target = (_descriptor(p) for p in _reference_poses(labels))
  gap = np.abs(source.mean(0) - target.mean(0))
  train = labels["Human36M"].split == "train"
  within = np.abs(target[train].mean(0) - target[~train].mean(0)).sum()
  assert gap.sum() > 1.0 and gap.sum() > 2 * within
  assert source.mean(0)[2] < target.mean(0)[2] - 0.1   # Thorax–Neck: ScanAva's Neck is derived lower
  assert source.mean(0)[11] < target.mean(0)[11] - 0.15  # R_Hip–R_Knee / shoulder width (acromion labels)


def test_pose_priors_source_is_narrower():
  """Pose gap, measured on 3000 draws of each prior: the lab's knees and hips bend much further."""
  def bends(prior):
    pose = datasets.sample_pose(prior, 3000, np.random.default_rng(0))
    return np.percentile(pose["l_knee"], 90), np.percentile(pose["l_hip_flex"], 90), np.std(pose["r_sh_flex"])
  source, target = bends(domains.SOURCE.pose), bends(domains.LAB.pose)
  assert target[0] > source[0] + 30 and target[1] > source[1] + 30 and target[2] > source[2]


def _border(path: str) -> np.ndarray:
  image = np.asarray(Image.open(path), np.float64)
  return np.concatenate([image[:4].reshape(-1, 3), image[-4:].reshape(-1, 3), image[:, :4].reshape(-1, 3),
                         image[:, -4:].reshape(-1, 3)])


def test_image_statistics_differ(tiny):
  """Appearance gap: the source's plain backdrop has (almost) no variation along the image border; the lab's
  studio and the wild clutter have tens of grey levels."""
  out, labels = tiny
  spread = {name: np.median([_border(os.path.join(out, p)).std(0).mean() for p in sorted(set(inst.img_path))])
            for name, inst in labels.items()}
  assert spread["ScanAva"] < 2
  assert min(spread["Human36M"], spread["MSCOCO"], spread["MPII"]) > 15


def test_closing_the_appearance_gap_switches_the_source_look(tmp_path):
  labels = synth.generate(str(tmp_path), "tiny", seed=0, workers=1, gaps_closed=("appearance",),
                          contact_sheets=False)
  paths = sorted(set(labels["ScanAva"].img_path))
  assert np.median([_border(os.path.join(tmp_path, p)).std(0).mean() for p in paths]) > 15
  with pytest.raises(ValueError, match="unknown gap"):
    domains.close_gaps(domains.SOURCE, domains.LAB, ("colour",))


def _mean_and_contrast(path: str) -> tuple[float, float]:
  """An image's mean grey level and its standard deviation (contrast), over all pixels and channels."""
  image = np.asarray(Image.open(path), np.float32)
  return float(image.mean()), float(image.std())


def test_widening_the_appearance_gap_darkens_only_the_real_looking_images(tiny, tmp_path):
  """`gaps_widened=("appearance",)` gives the lab and wild domains the "dim" tone (black 0.06 + 0.34 · x^1.4, warm
  gains ≤ 1): every image of theirs gets darker and flatter — at most ~0.34x the default's contrast from the tone
  curve, so well under half — while the source's files stay byte for byte the same."""
  out, labels = tiny
  widened = synth.generate(str(tmp_path), "tiny", seed=0, workers=1, gaps_widened=("appearance",),
                           contact_sheets=False)
  for name in ("Human36M", "MSCOCO", "MPII"):
    paths = sorted(set(labels[name].img_path))
    assert paths == sorted(set(widened[name].img_path))
    before = np.array([_mean_and_contrast(os.path.join(out, p)) for p in paths])
    after = np.array([_mean_and_contrast(os.path.join(tmp_path, p)) for p in paths])
    assert np.all(after[:, 0] < before[:, 0]) and np.all(after[:, 1] < 0.5 * before[:, 1]), name
  source = [os.path.join("ScanAva_1119", f) for f in _files(os.path.join(out, "ScanAva_1119"))]
  match, mismatch, errors = filecmp.cmpfiles(out, str(tmp_path), source, shallow=False)
  assert len(match) == len(source) > 10 and not mismatch and not errors
  with open(tmp_path / synth.INFO_FILE) as f:
    info = json.load(f)
  assert info["gaps_widened"] == ["appearance"] and info["domains"]["lab"]["appearance"]["tone"] == "dim"
  assert info["domains"]["source"]["appearance"]["tone"] == "neutral"
  with pytest.raises(ValueError, match="cannot be widened"):
    domains.widen_gaps(domains.LAB, ("pose",))
  with pytest.raises(ValueError, match="not the synthetic source"):
    domains.widen_gaps(domains.SOURCE, ("appearance",))
  closed = domains.close_gaps(domains.SOURCE, domains.widen_gaps(domains.LAB, ("appearance",)), ("appearance",))
  assert closed.appearance.tone == "dim"


def test_same_seed_gives_identical_files_and_other_seed_differs(tiny, tmp_path):
  out, _ = tiny
  again = tmp_path / "again"
  synth.generate(str(again), "tiny", seed=0, workers=2)  # also: worker processes change nothing
  files = _files(out)
  assert files == _files(str(again)) and len(files) > 100
  match, mismatch, errors = filecmp.cmpfiles(out, str(again), files, shallow=False)
  assert not mismatch and not errors
  other = tmp_path / "other"
  synth.generate(str(other), "tiny", seed=1, workers=1, contact_sheets=False)
  for rel in ("ScanAva_1119/scanava_raw.npy", "Human36M/annotations/Human36M_subject1_joint_3d.json",
              "MSCOCO/annotations/person_keypoints_train2017.json", "MPII/annotations/train.json"):
    assert not filecmp.cmp(os.path.join(out, rel), os.path.join(other, rel), shallow=False), rel
  foreign = tmp_path / "foreign"
  (foreign / "MPII").mkdir(parents=True)
  with pytest.raises(ValueError, match="not written by this generator"):
    synth.generate(str(foreign), "tiny", seed=1)


def test_body_conventions_move_only_the_convention_joints():
  """The same body labelled under the source and the lab conventions: knees, elbows, wrists and the thorax
  coincide; head, ankles, hips and shoulders move by the documented offsets."""
  rng = np.random.default_rng(0)
  dims = bodies.sample_dimensions(domains.LAB.proportions, 50, rng)
  points, frames = bodies.forward_kinematics(poses.sample_narrow(50, rng), dims)
  keys = bodies.H36M_JOINTS
  source = bodies.labels(points, frames, dims, domains.SOURCE.skeleton, keys)
  target = bodies.labels(points, frames, dims, domains.LAB.skeleton, keys)
  moved = np.linalg.norm(source - target, axis=-1).max(0)
  same = [keys.index(k) for k in ("pelvis", "l_knee", "r_elbow", "l_wrist", "thorax", "spine", "face")]
  assert moved[same].max() < 1e-12
  head = keys.index("head")
  np.testing.assert_allclose(np.linalg.norm(source[:, head] - target[:, head], axis=-1), 0.38 * dims["head"])
  hip = keys.index("l_hip")
  np.testing.assert_allclose(np.linalg.norm(source[:, hip] - target[:, hip], axis=-1), 0.3 * dims["hip_half"])
  assert 0.03 < moved[keys.index("r_ankle")] < 0.08 and 0.03 < moved[keys.index("l_shoulder")] < 0.05


def test_tfds_builds_of_the_embedded_data_hold_the_readers_records(tiny, tmp_path):
  """`python -m data_pipelines.tfds.build --config=configs/saa.py:synth_tiny`: the TFDS builds of the four
  generated datasets (the datasets' own builders) read back as the readers' records, every split."""
  out, _ = tiny
  config = saa.get_config("synth_tiny")
  config.data.update(root=out, tfds_dir=str(tmp_path))  # the builds outside `out`: its files stay the generator's
  stored = config.copy_and_resolve_references()
  stored.data.source = "tfds"
  for name in (*config.data.trainset, config.data.testset):
    build.build(name, config.data)
    for split in source.builder_class(name).SPLITS:
      assert_same_records(readers.load(name, config.data, split), readers.load(name, stored.data, split))
