"""Augmentation (SPEC §5): geometry against the warped image, targets, random-draw statistics, determinism."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from ahup_jax import skeleton
from configs import saa
from data_pipelines import augment
from data_pipelines.records import DatasetInfo, Records

SIZE = 64                           # crop side S; hm = 16, feature grid = 2
BBOX = (40.0, 20.0, 100.0, 100.0)   # centre (90, 70)
DOT = (110.0, 55.0)                 # R_Hip, drawn as a bright blob


def _config(**model):
  config = saa.get_config()
  config.model.input_size, config.model.depth_bins = SIZE, 16
  config.model.update(model)
  return config


def _dot_image(path, height=160, width=200) -> str:
  rows, cols = np.mgrid[:height, :width]
  blob = np.exp(-((cols - DOT[0]) ** 2 + (rows - DOT[1]) ** 2) / (2 * 2.5 ** 2))
  image = np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, axis=-1)
  tf.io.write_file(str(path), tf.io.encode_png(image))
  return str(path)


def _record(joint_img=None, joint_defined=None) -> dict[str, tf.Tensor]:
  if joint_img is None:
    joint_img = np.tile(np.array([[70.0, 90.0, 0.0]], np.float32), (17, 1))
    joint_img[0] = (BBOX[0] + BBOX[2] / 2, BBOX[1] + BBOX[3] / 2, 0.0)  # Pelvis at the box centre
    joint_img[1] = (*DOT, 0.0)
  defined = np.ones(17, bool) if joint_defined is None else joint_defined
  return dict(bbox=tf.constant(BBOX), joint_img=tf.constant(joint_img, tf.float32),
              joint_vis=tf.ones([17]), joint_defined=tf.constant(defined), have_depth=tf.constant(1.0),
              is_synthetic=tf.constant(0.0))


def _seed(i: int) -> tf.Tensor:
  return tf.constant([7, i], tf.int64)


def _draws(n: int) -> dict[str, np.ndarray]:
  ds = tf.data.Dataset.range(n).map(lambda i: augment.draw_params(tf.stack([tf.constant(7, tf.int64), i])))
  return next(ds.batch(n).as_numpy_iterator())


def test_augmentation_config_defaults_are_spec_and_zero_disables(tmp_path):
  from configs import common
  assert common.augmentation().to_dict() == augment.SPEC_AUGMENTATION.to_dict()
  default = _draws(64)
  ds = tf.data.Dataset.range(64).map(lambda i: augment.draw_params(tf.stack([tf.constant(7, tf.int64), i]),
                                                                   augment.SPEC_AUGMENTATION))
  spec = next(ds.batch(64).as_numpy_iterator())
  for key in default:
    np.testing.assert_array_equal(default[key], spec[key])  # None = the SPEC values, draw for draw
  off = common.augmentation()
  off.update(scale=0.0, rotation_prob=0.0, flip_prob=0.0, colour=0.0, occlusion_prob=0.0)
  config = _config()
  image, record = augment.load_image(_dot_image(tmp_path / "dot.png")), _record()
  plain = augment.train_sample(image, record, _seed(0), config.model, config.adapt, off)
  params = augment.draw_params(_seed(0), off)
  assert float(params["scale"]) == 1.0 and float(params["rotation_deg"]) == 0.0
  assert not bool(params["flip"]) and not bool(params["occlude"])
  np.testing.assert_array_equal(params["colour"].numpy(), np.ones(3, np.float32))
  evaluation = augment.eval_sample(image, record["bbox"], config.model, flip_test=False)
  np.testing.assert_allclose(plain["image"].numpy(), evaluation["image"].numpy(), atol=1e-5)


def test_dot_lands_at_transformed_joint_and_flip_swaps_sides(tmp_path):
  config = _config()
  image, record = augment.load_image(_dot_image(tmp_path / "dot.png")), _record()
  params = _draws(200)
  chosen = [i for i in range(200) if not params["occlude"][i]][:8]  # occluders could hide the dot
  assert {bool(params["flip"][i]) for i in chosen} == {True, False}
  assert any(abs(params["rotation_deg"][i]) > 10 for i in chosen)
  for i in chosen:
    sample = augment.train_sample(image, record, _seed(i), config.model, config.adapt)
    brightness = (sample["image"].numpy() * augment.IMAGENET_STD).sum(-1)
    row, col = np.unravel_index(brightness.argmax(), brightness.shape)
    flipped = bool(params["flip"][i])
    joint = 4 if flipped else 1  # a mirrored R_Hip is the L_Hip of the flipped image
    x, y = sample["joints_hm"].numpy()[joint, :2] * 4  # hm → crop px
    assert abs(col - x) <= 1 and abs(row - y) <= 1, (i, flipped, (col, row), (x, y))
    np.testing.assert_allclose(sample["joints_hm"].numpy()[0, :2], [SIZE / 8, SIZE / 8], atol=1e-4)


def test_flip_joints_mirrors_and_swaps_pairs():
  joint_img = np.arange(17 * 3, dtype=np.float32).reshape(17, 3)
  vis = np.arange(17, dtype=np.float32)
  flipped, flipped_vis = augment.flip_joints(tf.constant(joint_img), tf.constant(vis), 200)
  perm = skeleton.flip_permutation()
  np.testing.assert_array_equal(flipped.numpy()[:, 0], 199 - joint_img[perm, 0])
  np.testing.assert_array_equal(flipped.numpy()[:, 1:], joint_img[perm, 1:])
  np.testing.assert_array_equal(flipped_vis.numpy(), vis[perm])
  assert perm[1] == 4 and perm[14] == 11 and perm[0] == 0


def test_gt_hm_poses_by_hand_and_depth_range():
  z = np.array([-1000, 1000, -1001, 1001, 999, 0] + [0] * 11, np.float32)
  joint_img = np.stack([np.full(17, 90.0), np.full(17, 70.0), z], -1).astype(np.float32)
  joint_img[6, :2] = (40.0, 20.0)    # box corner → crop (0, 0)
  joint_img[7, :2] = (140.0, 70.0)   # right box edge → crop x = S, outside
  defined = np.ones(17, bool)
  defined[10] = False
  n = 2
  records = Records(DatasetInfo("t", False, True, defined), np.array(["x"] * n, object),
                    np.array([BBOX] * n, np.float32), np.stack([joint_img] * n), np.ones((n, 17), np.float32),
                    np.zeros((n, 17, 3), np.float32), np.zeros((n, 3), np.float32), np.ones((n, 2), np.float32),
                    np.ones((n, 2), np.float32), -np.ones(n, np.int32), np.arange(n))
  poses, all_visible = augment.gt_hm_poses(records, _config(depth_bins=64).model)
  pose = poses[0]
  np.testing.assert_allclose(pose[:6, 2], [0.0, 64.0, -0.032, 64.032, 63.968, 32.0], atol=1e-4)
  np.testing.assert_allclose(pose[0, :2], [8.0, 8.0], atol=1e-5)
  np.testing.assert_allclose(pose[6, :2], [0.0, 0.0], atol=1e-5)
  np.testing.assert_allclose(pose[7, :2], [16.0, 8.0], atol=1e-5)
  np.testing.assert_array_equal(pose[10], [0, 0, 0])  # undefined joint re-zeroed
  assert not all_visible.any()
  _, vis = augment.joints_to_hm(tf.constant(joint_img), tf.ones([17]), augment.crop_affine(
      tf.constant([90.0, 70.0]), tf.constant([100.0, 100.0]), 1.0, 0.0, SIZE), tf.constant(defined),
      _config(depth_bins=64).model)
  expected = np.ones(17)
  expected[[1, 2, 3, 7, 10]] = 0  # z ≥ +1000 mm, z < −1000 mm, x = S, undefined
  np.testing.assert_array_equal(vis.numpy(), expected)


@pytest.mark.parametrize("cell,skip_missing", [("round", False), ("floor", False), ("round", True)])
def test_joint_cells_match_numpy(cell, skip_missing):
  config = saa.get_config()
  config.adapt.wts_D_cell, config.adapt.wts_D_skip_missing = cell, skip_missing
  xs = np.array([4.0, 12.0, 20.0, 28.0, -4.0, -4.1, 59.9, 60.0, 63.9, 0.0, 33.3, 7.99, 8.0, 36.0, 44.0, 0.0, 1.0])
  ys = np.roll(xs, 5)
  joints = np.stack([xs, ys, np.zeros(17)], -1).astype(np.float32)
  joints[[9, 15]] = 0.0  # undefined joints sit at the origin after the reference-order conversion
  defined = np.ones(17, bool)
  defined[[9, 15]] = False
  cells = augment.joint_cells(tf.constant(joints), tf.constant(defined), 256, config.adapt).numpy()
  to_cell = np.round if cell == "round" else np.floor  # np.round is half-to-even
  expected = []
  for (x, y), ok in zip(joints[:, :2], defined):
    u, v = int(to_cell(x / 8)), int(to_cell(y / 8))
    inside = 0 <= u < 8 and 0 <= v < 8 and (ok or not skip_missing)
    expected.append((v, u) if inside else (-1, -1))
  np.testing.assert_array_equal(cells, np.array(expected))
  if cell == "round":  # ties go to the even cell: 0.5 → 0, 1.5 → 2, 2.5 → 2
    np.testing.assert_array_equal(cells[:3, 1], [0, 2, 2])
  assert tuple(cells[9]) == ((-1, -1) if skip_missing else (0, 0))


def test_random_parameters_follow_spec_distributions():
  draws = _draws(4000)
  scale, rotation = draws["scale"], draws["rotation_deg"]
  assert scale.min() == 0.75 and scale.max() == 1.25
  assert abs(scale.mean() - 1) < 0.01
  assert abs(np.isin(scale, (0.75, 1.25)).mean() - 0.3173) < 0.03  # P(|N(0,1)| ≥ 1)
  rotated = rotation != 0
  assert abs(rotated.mean() - 0.6) < 0.03
  assert np.abs(rotation).max() == 60 and abs(rotation[rotated].mean()) < 2.0
  assert abs((np.abs(rotation[rotated]) == 60).mean() - 0.0455) < 0.015  # P(|N| ≥ 2)
  assert abs(draws["flip"].mean() - 0.5) < 0.03
  assert abs(draws["occlude"].mean() - 0.5) < 0.03
  colour = draws["colour"]
  assert colour.min() >= 0.8 and colour.max() <= 1.2
  assert abs(colour.mean() - 1) < 0.005 and abs(colour.std() - 0.4 / 12 ** 0.5) < 0.005
  assert np.corrcoef(colour.T)[0, 1] < 0.1  # channels independent
  assert draws["occlusion"].shape == (4000, augment.OCCLUSION_TRIES, 4)


def test_occlusion_rect_matches_rejection_loop_and_fills_noise():
  rng = np.random.default_rng(0)
  height, width = 120, 160
  for _ in range(20):
    bbox = np.array([rng.uniform(-30, 100), rng.uniform(-30, 60), rng.uniform(20, 120), rng.uniform(20, 120)],
                    np.float32)
    draws = rng.uniform(size=(augment.OCCLUSION_TRIES, 4)).astype(np.float32)
    found, rect = augment.occlusion_rect(tf.constant(draws), tf.constant(bbox), height, width)
    expected = None
    for a, r, u, v in draws:  # SPEC §5.1, literally
      area = a * 0.7 * bbox[2] * bbox[3]
      ratio = 0.3 + r * (1 / 0.3 - 0.3)
      h, w = np.sqrt(area * ratio), np.sqrt(area / ratio)
      x, y = u * (bbox[2] - w - 1) + bbox[0], v * (bbox[3] - h - 1) + bbox[1]
      if x >= 0 and y >= 0 and x + w < width and y + h < height:
        expected = (int(x), int(y), int(w), int(h))
        break
    assert bool(found) == (expected is not None)
    if expected is not None:
      assert tuple(rect.numpy()) == expected
  image = np.full((height, width, 3), 255, np.uint8)
  filled = augment.fill_noise(tf.constant(image), tf.constant([10, 20, 30, 40]), _seed(0)).numpy()
  changed = (filled != 255).any(-1)
  assert changed[20:60, 10:40].mean() > 0.9 and not changed[:20].any() and not changed[:, 40:].any()
  assert filled[20:60, 10:40].max() <= 254 and filled[20:60, 10:40].std() > 50


def test_same_seed_same_sample_eagerly_and_in_tf_data(tmp_path):
  config = _config()
  path, record = _dot_image(tmp_path / "dot.png"), _record()
  seeds = [_seed(i) for i in range(4)]
  eager = [augment.train_sample(augment.load_image(path), record, s, config.model, config.adapt) for s in seeds]
  ds = tf.data.Dataset.from_tensor_slices(tf.stack(seeds)).map(
      lambda s: augment.train_sample(augment.load_image(path), record, s, config.model, config.adapt),
      num_parallel_calls=2)
  for a, b in zip(eager, ds.as_numpy_iterator()):
    assert set(a) == {"image", "joints_hm", "vis", "joint_cells", "have_depth", "is_synthetic"}
    for key in a:
      np.testing.assert_array_equal(a[key].numpy(), b[key], err_msg=key)
  again = augment.train_sample(augment.load_image(path), record, seeds[0], config.model, config.adapt)
  np.testing.assert_array_equal(again["image"].numpy(), eager[0]["image"].numpy())
  assert not np.array_equal(eager[0]["image"].numpy(), eager[1]["image"].numpy())


@pytest.mark.parametrize("input_scale", ["255_quirk", "unit"])
def test_eval_crop_normalisation_border_and_flip(tmp_path, input_scale):
  image = tf.fill([100, 100, 3], tf.constant(200, tf.uint8))
  bbox = tf.constant([50.0, 0.0, 100.0, 100.0])  # right half outside the image
  sample = augment.eval_sample(image, bbox, _config(input_scale=input_scale).model, flip_test=True)
  crop = sample["image"].numpy()
  mean, std = np.array(augment.IMAGENET_MEAN), np.array(augment.IMAGENET_STD)
  pixel_scale = 255.0 if input_scale == "unit" else 1.0
  np.testing.assert_allclose(crop[32, 10], (200 / pixel_scale - mean) / std, rtol=1e-5)
  np.testing.assert_allclose(crop[32, 50], -mean / std, rtol=1e-5)  # zero border
  np.testing.assert_array_equal(sample["image_flip"].numpy(), crop[:, ::-1])
  with pytest.raises(ValueError, match="input_scale"):
    augment.eval_sample(image, bbox, _config(input_scale="div255").model, flip_test=False)
