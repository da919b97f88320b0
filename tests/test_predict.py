"""`--mode=predict` on real photos: Human3.6M frames with their GT boxes and cameras give 2D joints that are the
evaluation pipeline's crop-space predictions through the inverse crop affine and millimetres that are evaluation's
back-projection; COCO photos with several people per image give one entry per box; unreadable files and unusable
boxes are reported; pictures are written. The export is a random tiny network in a real orbax checkpoint."""
from __future__ import annotations

import json
import math
import os

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf

from ahup_jax import checkpoint, models, predict, sharding, skeleton
from ahup_jax.evaluation import backproject, protocols
from configs import saa
from data_pipelines import augment, detections
from data_pipelines import bbox as bbox_lib
from data_pipelines.records import DataError, DatasetInfo, Records
from tests.conftest import random_variables, spa_head_atol

H36M_CAMERAS = {"54138969": ("S1", "S5"), "55011271": ("S7", "S8")}  # camera → subjects of its frames in realdata
HM, BINS = 16, 16  # the tiny network: 64² crops, 16³ heatmaps


def _config():
  config = saa.get_config("synth_tiny")
  config.model.input_size, config.model.depth_bins = 4 * HM, BINS
  config.eval.batch_size = 2  # predict and evaluation each compile one program for every test here
  return config


@pytest.fixture(scope="module")
def export(tmp_path_factory):
  """(export dir, variables, config): random G+T and a random residual SPA head, saved with orbax."""
  config = _config()
  variables = random_variables(config)
  spa = models.SPANet(residual=True)
  variables["spa"] = jax.device_get(spa.init(jax.random.key(4), jnp.zeros((2, 17, 3)), train=False))
  path = str(tmp_path_factory.mktemp("export"))
  checkpoint.save_export(path, variables, config)
  return path, variables, config


def _link(folder, paths):
  folder.mkdir(parents=True, exist_ok=True)
  for path in paths:
    os.symlink(path, folder / os.path.basename(path))
  return folder


def _hm_to_camera(pose_hm, crop, depth, f, c, config):
  cam = backproject.hm_to_camera(np.asarray(pose_hm)[None], np.asarray(crop)[None], [depth], np.asarray(f)[None],
                                 np.asarray(c)[None], hm_size=HM, depth_bins=BINS,
                                 depth_extent_mm=config.model.bbox_3d_depth_mm)
  return backproject.root_align(cam)[0]


def test_h36m_frames_match_the_evaluation_crop_and_back_projection(realdata, export, tmp_path):
  export_dir, variables, config = export
  h36m = realdata / "mmpose" / "h36m"
  coco = json.load(open(h36m / "h36m_coco.json"))
  names = {im["id"]: im["file_name"] for im in coco["images"]}
  box_of = {names[a["image_id"]]: a["bbox"] for a in coco["annotations"]}
  intrinsics = json.load(open(realdata / "karfly_h36m_camera_parameters" / "camera-parameters.json"))["intrinsics"]
  entries, cameras = [], []
  for camera, subjects in sorted(H36M_CAMERAS.items()):  # one run per camera, with that camera's GT intrinsics
    k = np.array(intrinsics[camera]["calibration_matrix"])
    f, c = np.array([k[0, 0], k[1, 1]]), np.array([k[0, 2], k[1, 2]])
    folder = _link(tmp_path / camera, [next(h36m.glob(f"*/*/{name}")) for name in box_of if name.startswith(subjects)])
    out = tmp_path / "out" / f"{camera}.json"
    result = predict.run(export_dir, str(folder), str(out), boxes_path=str(h36m / "h36m_coco.json"),
                         focal_px=[str(v) for v in f], principal_px=[str(v) for v in c])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["joint_names"] == list(skeleton.JOINT_NAMES) and result["spa"] and result["flip_test"]
    assert [e["file"] for e in result["images"]] == sorted(n for n in box_of if n.startswith(subjects))
    # the annotation file's frames that are not in this folder are reported, not dropped silently
    assert sorted(s["file"] for s in result["skipped"]) == sorted(
        f"file_name {n!r}" for n in box_of if not n.startswith(subjects))
    for entry in result["images"]:
      np.testing.assert_allclose(entry["camera"]["focal_px"], f, atol=0.5e-4)
      entries.append(entry)
      cameras.append((f, c, os.path.join(folder, entry["file"])))
  assert [len(e["persons"]) for e in entries] == [1] * 4
  persons = [e["persons"][0] for e in entries]
  crops = np.stack([bbox_lib.square(bbox_lib.sanitize(np.array([box_of[e["file"]]]), e["width"], e["height"])[0],
                                    1.25)[0] for e in entries]).astype(np.float32)
  for entry, person, crop in zip(entries, persons, crops):
    np.testing.assert_allclose(person["box"], box_of[entry["file"]], atol=0.5e-4)
    np.testing.assert_allclose(person["crop_box"], crop, atol=0.5e-4)

  # The evaluation pipeline (tf.data crops, the jitted mesh step with the flip test) on records with the same boxes.
  n, j = len(crops), skeleton.NUM_JOINTS
  f_all, c_all = (np.array([cam[i] for cam in cameras]) for i in (0, 1))
  paths = np.array([cam[2] for cam in cameras], object)
  zeros = lambda *shape: np.zeros(shape, np.float32)  # noqa: E731
  records = Records(DatasetInfo("photos", False, False, np.ones(j, bool)), paths, crops, zeros(n, j, 3), zeros(n, j),
                    zeros(n, j, 3), zeros(n, 3), f_all.astype(np.float32), c_all.astype(np.float32),
                    -np.ones(n, np.int32), np.arange(n))
  evaluated = protocols.predict_records(config, variables, records, sharding.make_mesh(config.mesh))
  pose_hm = np.array([p["pose_hm"] for p in persons])
  # Two compiled programs of the same fp32 network: the soft-argmax sums 16³ fp32 terms of values ≤ 16, so they
  # may differ by up to 16³ · 2⁻²⁴ · 16 ≈ 4e-3 hm.
  np.testing.assert_allclose(pose_hm, evaluated, atol=HM * BINS * HM * HM * 2.0 ** -24)
  # crop-space predictions (hm · 4 = crop px) through the inverse of the evaluation crop's affine → image px
  centre, size = crops[:, :2] + crops[:, 2:] / 2, crops[:, 2:]
  affine = augment.crop_affine(tf.constant(centre), tf.constant(size), tf.ones(n), tf.zeros(n),
                               config.model.input_size).numpy().astype(np.float64)
  crop_px = evaluated[..., :2].astype(np.float64) * (config.model.input_size / HM)
  image_px = np.einsum("nij,nkj->nki", np.linalg.inv(affine[:, :, :2]), crop_px - affine[:, None, :, 2])
  joints_px = np.array([p["joints_px"] for p in persons])
  assert np.abs(joints_px - image_px).max() <= 0.5

  spa = models.SPANet(residual=True)
  adapted = np.asarray(spa.apply(variables["spa"], jnp.asarray(pose_hm, jnp.float32), train=False))
  # a separately compiled f sums in another order (conftest.spa_head_atol)
  np.testing.assert_allclose([p["pose_hm_spa"] for p in persons], adapted,
                             atol=spa_head_atol(variables["spa"]["params"], adapted, spa.hidden))
  for person, crop, (f, c, _) in zip(persons, crops, cameras):
    depth = math.sqrt(f[0] * f[1] * config.model.bbox_3d_depth_mm ** 2 / (float(crop[2]) * float(crop[3])))
    assert person["root_depth_mm"] == pytest.approx(depth, abs=0.5e-4)
    # JSON values are rounded to 4 decimals; the rest is float64 arithmetic on the same numbers
    for key in ("pose_mm", "pose_mm_spa"):
      expected = _hm_to_camera(person[key.replace("mm", "hm")], crop, depth, f, c, config)
      np.testing.assert_allclose(person[key], expected, rtol=1e-12, atol=0.5e-4)
    camera = backproject.hm_to_camera(np.array(person["pose_hm"])[None], crop[None], [depth], f[None], c[None],
                                      hm_size=HM, depth_bins=BINS)
    np.testing.assert_allclose(person["pelvis_cam_mm"], camera[0, skeleton.ROOT], atol=0.5e-4)


def test_several_persons_low_scores_bad_boxes_and_unreadable_files(realdata, export, tmp_path):
  export_dir, _, _ = export
  coco_dir = realdata / "mmpose" / "coco"
  annotations = json.load(open(coco_dir / "test_coco.json"))["annotations"]
  folder = _link(tmp_path / "photos", sorted(str(p) for p in coco_dir.glob("*.jpg")))
  (folder / "corrupt.jpg").write_bytes((coco_dir / "000000000785.jpg").read_bytes()[:20000])  # truncated JPEG
  (folder / "notes.jpg").write_text("not an image")
  dets = [{"image_id": a["image_id"], "bbox": a["bbox"], "score": 0.9 if k % 3 else 0.2, "category_id": 1}
          for k, a in enumerate(annotations)]
  dets += [{"image_id": 785, "bbox": [300, 50, 200, 300], "score": 0.99, "category_id": 18},  # a dog
           {"image_id": 785, "bbox": [700, 500, 50, 50], "score": 0.95},                      # outside 640×425
           {"file_name": "elsewhere.jpg", "bbox": [0, 0, 10, 10], "score": 0.9},
           {"file_name": "corrupt.jpg", "bbox": [10, 10, 100, 200], "score": 0.9}]
  boxes_path = tmp_path / "dets.json"
  boxes_path.write_text(json.dumps(dets))
  out = tmp_path / "pred.json"
  result = predict.run(export_dir, str(folder), str(out), boxes_path=str(boxes_path), min_score=0.5, render=True)

  by_file = {e["file"]: e for e in result["images"]}
  assert sorted(by_file) == sorted(p.name for p in coco_dir.glob("*.jpg"))
  for file, entry in by_file.items():
    image_id = int(file[:-4])
    expected = [d["bbox"] for d in dets[:len(annotations)] if d["image_id"] == image_id and d["score"] >= 0.5]
    np.testing.assert_allclose(np.reshape([p["box"] for p in entry["persons"]], (-1, 4)),
                               np.reshape(expected, (-1, 4)), atol=0.5e-4)
    assert all(p["score"] == 0.9 for p in entry["persons"])
    for p in entry["persons"]:
      assert np.shape(p["joints_px"]) == (17, 2) and np.shape(p["pose_mm"]) == (17, 3)
      assert np.shape(p["pose_mm_spa"]) == (17, 3) and p["pose_mm"][skeleton.ROOT] == [0.0, 0.0, 0.0]
  assert max(len(e["persons"]) for e in by_file.values()) >= 3  # several persons in one image
  assert sum(len(e["persons"]) for e in by_file.values()) == sum(d["score"] >= 0.5 for d in dets[:len(annotations)])
  reasons = {(s["file"], tuple(s.get("box", ()))): s["reason"] for s in result["skipped"]}
  assert "cannot be decoded" in reasons[("corrupt.jpg", ())] and "JPEG" in reasons[("corrupt.jpg", ())]
  assert "Unknown image file format" in reasons[("notes.jpg", ())]
  assert "no area inside the 640×425 image" in reasons[("000000000785.jpg", (700.0, 500.0, 50.0, 50.0))]
  assert "not found under" in reasons[("file_name 'elsewhere.jpg'", ())]
  assert len(reasons) == 4

  render = tmp_path / "pred_render"
  for file in by_file:
    picture = matplotlib.image.imread(render / predict.render_file_name(file))
    assert picture.ndim == 3 and picture.shape[0] > 300 and picture.shape[1] > 600 and picture.std() > 0.05
  assert matplotlib.image.imread(render / "contact_sheet.png").shape[0] > 100
  assert sorted(os.listdir(render)) == sorted([predict.render_file_name(f) for f in by_file] + ["contact_sheet.png"])


def test_without_boxes_the_whole_image_is_one_person_with_the_default_camera(export, tmp_path):
  export_dir, _, config = export
  folder = tmp_path / "photos"
  (folder / "sub").mkdir(parents=True)
  rng = np.random.default_rng(0)
  sizes = {"wide.png": (80, 120), "sub/tall.png": (90, 60)}  # (H, W)
  for name, shape in sizes.items():
    tf.io.write_file(str(folder / name), tf.io.encode_png(rng.integers(0, 255, (*shape, 3), np.uint8)))
  result = predict.run(export_dir, str(folder), str(tmp_path / "pred.json"))
  assert [e["file"] for e in result["images"]] == sorted(sizes) and result["skipped"] == []
  for entry in result["images"]:
    height, width = sizes[entry["file"]]
    side = max(width, height)
    (person,) = entry["persons"]
    assert person["box"] == [0, 0, width, height] and person["score"] is None
    assert person["crop_box"] == [(width - side) / 2, (height - side) / 2, side, side]
    assert entry["camera"]["focal_px"] == [side, side] and entry["camera"]["principal_px"] == [width / 2, height / 2]
    assert person["root_depth_mm"] == pytest.approx(config.model.bbox_3d_depth_mm, abs=0.5e-4)  # f = side
    pose_hm = np.array(person["pose_hm"])
    np.testing.assert_allclose(person["joints_px"], pose_hm[:, :2] / HM * side + person["crop_box"][:2],
                               atol=0.5e-4)
  assert predict.list_images(str(folder / "sub" / "tall.png")) == (str(folder / "sub"), ["tall.png"])
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match=r"no \.jpg/\.jpeg/\.png/\.bmp images in .*empty"):
    predict.list_images(str(tmp_path / "empty"))
  with pytest.raises(FileNotFoundError, match="no such folder or image file"):
    predict.list_images(str(tmp_path / "absent"))


def test_camera_flags_are_checked():
  assert [v.tolist() for v in predict.camera_flags(["1000"], ["320", "240"])] == [[1000, 1000], [320, 240]]
  assert predict.camera_flags([], []) == (None, None)
  for focal, principal, message in [(["f"], [], "focal_px=f: expected numbers"), (["1", "2", "3"], [], "1 or 2"),
                                    (["-5"], [], "positive"), ([], ["1"], "principal_px=1: expected 2")]:
    with pytest.raises(ValueError, match=message):
      predict.camera_flags(focal, principal)


def _read(tmp_path, content, files, min_score=0.3):
  path = tmp_path / "boxes.json"
  path.write_text(json.dumps(content))
  return detections.read(str(path), files, min_score)


def test_box_files_match_images_by_name_path_or_id(tmp_path):
  files = ["000000000785.jpg", "a/x.jpg", "b/x.jpg", "S1_0001.png"]
  found = _read(tmp_path, [{"image_id": 785, "bbox": [1, 2, 3, 4], "score": 0.5},
                           {"image_id": "S1_0001", "bbox": [5, 6, 7, 8]},            # no score: 1
                           {"file_name": "a/x.jpg", "bbox": [1, 1, 1, 1], "score": 0.1},
                           {"file_name": "b/x.jpg", "bbox": [2, 2, 2, 2], "score": 0.4, "category_id": 1},
                           {"file_name": "b/x.jpg", "bbox": [2, 2, 2, 2], "score": 0.9, "category_id": 3},
                           {"image_id": 999, "bbox": [2, 2, 2, 2], "score": 0.9}], files)
  assert {k: [(b.tolist(), s) for b, s in v] for k, v in found.boxes.items()} == {
      "000000000785.jpg": [([1, 2, 3, 4], 0.5)], "S1_0001.png": [([5, 6, 7, 8], 1.0)], "b/x.jpg": [([2, 2, 2, 2], 0.4)]}
  assert (found.below_min_score, found.not_person, found.unknown_images) == (1, 1, ["image_id 999"])
  coco = {"images": [{"id": 7, "file_name": "S1_0001.png"}],
          "annotations": [{"image_id": 7, "bbox": [1, 2, 3, 4], "iscrowd": 0, "category_id": 1},
                          {"image_id": 7, "bbox": [0, 0, 9, 9], "iscrowd": 1, "category_id": 1}]}
  found = _read(tmp_path, coco, files)
  assert [(b.tolist(), s) for b, s in found.boxes["S1_0001.png"]] == [([1, 2, 3, 4], 1.0)] and found.not_person == 1


@pytest.mark.parametrize("content,message", [
    ([{"image_id": 785}], r"boxes.json: entry #0 lacks field 'bbox'"),
    ([{"image_id": 785, "bbox": [1, 2, 3]}], r"entry #0 field 'bbox' has shape \(3,\), expected 4 numbers"),
    ([{"image_id": 785, "bbox": [1, 2, 3, 4], "score": "high"}], r"entry #0 field 'score' is 'high'"),
    ([{"bbox": [1, 2, 3, 4]}], r"entry #0 has neither a string 'file_name' nor"),
    ([{"file_name": "x.jpg", "bbox": [1, 2, 3, 4]}], r"'x.jpg' matches several images \(a/x.jpg, b/x.jpg\)"),
    ({"boxes": []}, r"expected a JSON list of detections"),
])
def test_bad_box_files_name_the_file_entry_and_field(tmp_path, content, message):
  with pytest.raises(DataError, match=message):
    _read(tmp_path, content, ["000000000785.jpg", "a/x.jpg", "b/x.jpg"])
