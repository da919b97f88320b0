"""Patch generation and augmentation as graph-mode TensorFlow (SPEC §5), usable inside a parallel tf.data map.

Every random draw is a stateless function of a per-sample seed, so a sample's augmentation is a pure function of
(run seed, dataset, stream position): a resumed run regenerates exactly the batches it would have seen.
One joint transform (`transform_joints`) serves the image path and the annotation-only path (`gt_hm_poses`).
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from ahup_jax import skeleton
from data_pipelines.records import Records

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HM_PER_FEATURE_CELL = 8
MAX_OCCLUSION_TRIES = 20
_FLIP_PERM = skeleton.flip_permutation()


def sample_augmentation(seed: tf.Tensor) -> dict[str, tf.Tensor]:
  """Random parameters of SPEC §5.1 from a [2] int seed: scale, rotation (deg), flip, colour [3], occlude."""
  seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 6)
  normal = lambda i: tf.random.stateless_normal([], seeds[i])  # noqa: E731
  uniform = lambda i, shape=(): tf.random.stateless_uniform(shape, seeds[i])  # noqa: E731
  scale = 1.0 + 0.25 * tf.clip_by_value(normal(0), -1.0, 1.0)
  rotation = tf.where(uniform(1) < 0.6, 30.0 * tf.clip_by_value(normal(2), -2.0, 2.0), 0.0)
  return {"scale": scale, "rotation": rotation, "flip": uniform(3) < 0.5,
          "colour": 0.8 + 0.4 * uniform(4, (3,)), "occlude": uniform(5) < 0.5,
          "occlusion_seed": tf.random.experimental.stateless_split(seeds[5], 1)[0]}


def no_augmentation(flip: bool = False) -> dict[str, tf.Tensor]:
  """Evaluation / SPA-data parameters: s = 1, r = 0, no colour change or occlusion; optional flip (flip test)."""
  return {"scale": tf.constant(1.0), "rotation": tf.constant(0.0), "flip": tf.constant(flip),
          "colour": tf.ones([3]), "occlude": tf.constant(False), "occlusion_seed": tf.zeros([2], tf.int64)}


def patch_axes(bbox: tf.Tensor, scale: tf.Tensor, rotation_deg: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Source centre [..., 2] and the source vectors that map to the patch's half-width / half-height axes (§5.2).

  right = R(r)·(s·w/2, 0) → (S/2, 0) and down = R(r)·(0, s·h/2) → (0, S/2) in the patch.
  """
  bbox = tf.cast(bbox, tf.float32)
  centre = bbox[..., :2] + bbox[..., 2:] / 2
  rad = rotation_deg * (math.pi / 180.0)
  cos, sin = tf.cos(rad), tf.sin(rad)
  half_w, half_h = scale * bbox[..., 2] / 2, scale * bbox[..., 3] / 2
  right = tf.stack([half_w * cos, half_w * sin], -1)
  down = tf.stack([-half_h * sin, half_h * cos], -1)
  return centre, right, down


def transform_joints(joint_img, joint_vis, bbox, params, *, width, input_size: int, depth_bins: int,
                     depth_extent_mm: float, joint_defined) -> tuple[tf.Tensor, tf.Tensor]:
  """Joints [..., J, 3] (x, y px; z mm rel. root) → (hm joints [..., J, 3], vis [..., J]) per SPEC §5.3.

  Leading dims broadcast (one sample in the map, all records at once in `gt_hm_poses`). `width` is the original
  image width (for the flip). Undefined joints end at hm (0, 0, 0) with vis 0 (SPEC §3.2 faithful behaviour).
  """
  joint_img = tf.cast(joint_img, tf.float32)
  vis = tf.cast(joint_vis, tf.float32)
  bbox = tf.cast(bbox, tf.float32)
  flip = params["flip"]
  width = tf.cast(width, tf.float32)
  flipped_x = width[..., None] - joint_img[..., 0] - 1.0 if len(width.shape) else width - joint_img[..., 0] - 1.0
  joint_img = tf.where(flip, tf.stack([flipped_x, joint_img[..., 1], joint_img[..., 2]], -1), joint_img)
  joint_img = tf.where(flip, tf.gather(joint_img, _FLIP_PERM, axis=-2), joint_img)
  vis = tf.where(flip, tf.gather(vis, _FLIP_PERM, axis=-1), vis)
  cx = tf.where(flip, width - (bbox[..., 0] + bbox[..., 2] / 2) - 1.0, bbox[..., 0] + bbox[..., 2] / 2)
  centre, right, down = patch_axes(tf.concat([cx[..., None] - bbox[..., 2:3] / 2, bbox[..., 1:]], -1),
                                   params["scale"], params["rotation"])
  # Solve [right down] · (a, b) = p − centre; the patch point is S/2 · (1 + a, 1 + b).
  det = right[..., 0] * down[..., 1] - right[..., 1] * down[..., 0]
  rel = joint_img[..., :2] - centre[..., None, :]
  a = (rel[..., 0] * down[..., None, 1] - rel[..., 1] * down[..., None, 0]) / det[..., None]
  b = (rel[..., 1] * right[..., None, 0] - rel[..., 0] * right[..., None, 1]) / det[..., None]
  half = input_size / 2.0
  x, y = half * (1.0 + a), half * (1.0 + b)
  z = (joint_img[..., 2] / (depth_extent_mm / 2.0) + 1.0) / 2.0
  inside = (x >= 0) & (x < input_size) & (y >= 0) & (y < input_size) & (z >= 0) & (z < 1)
  vis = vis * tf.cast(inside, tf.float32)
  hm = tf.stack([x * (input_size / 4) / input_size, y * (input_size / 4) / input_size, z * depth_bins], -1)
  defined = tf.constant(np.asarray(joint_defined, bool))
  hm = tf.where(defined[:, None], hm, 0.0)
  vis = tf.where(defined, tf.cast(vis > 0, tf.float32), 0.0)
  return hm, vis


def joint_cells(joints_hm: tf.Tensor, grid: int, cell: str, joint_defined, skip_missing: bool) -> tf.Tensor:
  """(row v, col u) feature-grid cell per joint for D's gather, −1 where none (SPEC §3.2); [..., J, 3] → [..., J, 2].

  `round` is half-to-even (tf.round), as the official NumPy code; visibility is ignored (faithful).
  """
  scaled = joints_hm[..., :2] / HM_PER_FEATURE_CELL
  if cell == "round":
    uv = tf.round(scaled)
  elif cell == "floor":
    uv = tf.floor(scaled)
  else:
    raise ValueError(f"adapt.wts_D_cell must be 'round' or 'floor', got '{cell}'")
  inside = tf.reduce_all((uv >= 0) & (uv < grid), axis=-1)
  if skip_missing:
    inside = inside & tf.constant(np.asarray(joint_defined, bool))
  vu = tf.cast(tf.stack([uv[..., 1], uv[..., 0]], -1), tf.int32)
  return tf.where(inside[..., None], vu, -1)


def _occlude(image: tf.Tensor, bbox: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Sárándi-style random erasing inside the box on the original image (SPEC §5.1), bounded rejection loop."""
  shape = tf.shape(image)
  height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
  x_box, y_box, w_box, h_box = tf.unstack(tf.cast(bbox, tf.float32))

  def draw(i):
    u = tf.random.stateless_uniform([4], tf.random.experimental.stateless_fold_in(seed, i))
    area = u[0] * 0.7 * w_box * h_box
    ratio = 0.3 + u[1] * (1 / 0.3 - 0.3)
    h_o, w_o = tf.sqrt(area * ratio), tf.sqrt(area / ratio)
    x_o = u[2] * (w_box - w_o - 1) + x_box
    y_o = u[3] * (h_box - h_o - 1) + y_box
    ok = (x_o >= 0) & (y_o >= 0) & (x_o + w_o < width) & (y_o + h_o < height)
    return ok, tf.stack([x_o, y_o, w_o, h_o])

  def cond(i, ok, rect):
    return (~ok) & (i < MAX_OCCLUSION_TRIES)

  def body(i, ok, rect):
    ok, rect = draw(i)
    return i + 1, ok, rect

  _, ok, rect = tf.while_loop(cond, body, (tf.constant(0), tf.constant(False), tf.zeros([4])))
  x0, y0 = tf.cast(rect[0], tf.int32), tf.cast(rect[1], tf.int32)
  x1, y1 = tf.cast(rect[0] + rect[2], tf.int32), tf.cast(rect[1] + rect[3], tf.int32)
  cols, rows = tf.range(shape[1]), tf.range(shape[0])
  inside = ((rows[:, None] >= y0) & (rows[:, None] < y1) & (cols[None, :] >= x0) & (cols[None, :] < x1) & ok)
  noise = tf.random.stateless_uniform(tf.shape(image), tf.random.experimental.stateless_fold_in(seed, 1000)) * 255.0
  return tf.where(inside[..., None], noise, image)


def crop(image: tf.Tensor, bbox: tf.Tensor, params: dict, input_size: int, occlusion: bool = True) -> tf.Tensor:
  """Occlusion, flip and the affine warp of SPEC §5.2 (bilinear, zero border): image [H, W, 3] → [S, S, 3] float.

  `occlusion=False` leaves the occlusion op out of the graph (evaluation)."""
  image = tf.cast(image, tf.float32)
  bbox = tf.cast(bbox, tf.float32)
  if occlusion:
    image = tf.cond(params["occlude"], lambda: _occlude(image, bbox, params["occlusion_seed"]), lambda: image)
  width = tf.cast(tf.shape(image)[1], tf.float32)
  image = tf.cond(params["flip"], lambda: image[:, ::-1], lambda: image)
  cx = bbox[0] + bbox[2] / 2
  cx = tf.where(params["flip"], width - cx - 1.0, cx)
  centre, right, down = patch_axes(tf.stack([cx - bbox[2] / 2, bbox[1], bbox[2], bbox[3]]), params["scale"],
                                   params["rotation"])
  # Output pixel (x_o, y_o) samples the input at centre + right·(x_o − S/2)/(S/2) + down·(y_o − S/2)/(S/2).
  k = 2.0 / input_size
  a0, a1 = right[0] * k, down[0] * k
  b0, b1 = right[1] * k, down[1] * k
  a2 = centre[0] - (a0 + a1) * input_size / 2
  b2 = centre[1] - (b0 + b1) * input_size / 2
  transform = tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])[None]
  patch = tf.raw_ops.ImageProjectiveTransformV3(
      images=image[None], transforms=transform, output_shape=tf.constant([input_size, input_size]),
      fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")[0]
  return patch


def normalise(patch: tf.Tensor, colour: tf.Tensor, input_scale: str) -> tf.Tensor:
  """Colour factors, clip to [0, 255], ImageNet normalisation; `255_quirk` skips the /255 (SPEC §2.1)."""
  patch = tf.clip_by_value(patch * colour, 0.0, 255.0)
  if input_scale == "unit":
    patch = patch / 255.0
  elif input_scale != "255_quirk":
    raise ValueError(f"model.input_scale must be '255_quirk' or 'unit', got '{input_scale}'")
  return (patch - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)


def decode(path: tf.Tensor) -> tf.Tensor:
  """JPEG/PNG file → uint8 RGB [H, W, 3]; a missing file fails with its path in the error."""
  return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def make_sample_fn(records: Records, config, *, train: bool, flip_test: bool = False):
  """(record index, seed [2]) → sample dict (docs/ARCHITECTURE.md) for one dataset's records."""
  model, adapt = config.model, config.adapt
  size, bins, extent = model.input_size, model.depth_bins, model.bbox_3d_depth_mm
  info = records.info
  paths = tf.constant(records.img_path.astype(str))
  boxes = tf.constant(records.bbox, tf.float32)
  joint_img = tf.constant(records.joint_img, tf.float32)
  joint_vis = tf.constant(records.joint_vis, tf.float32)
  grid = size // 32

  def joints_for(i, params, width):
    return transform_joints(joint_img[i], joint_vis[i], boxes[i], params, width=width, input_size=size,
                            depth_bins=bins, depth_extent_mm=extent, joint_defined=info.joint_defined)

  def sample(i, seed):
    image = decode(paths[i])
    width = tf.cast(tf.shape(image)[1], tf.float32)
    params = sample_augmentation(seed) if train else no_augmentation()
    joints_hm, vis = joints_for(i, params, width)
    out = {"image": normalise(crop(image, boxes[i], params, size, occlusion=train), params["colour"],
                              model.input_scale),
           "joints_hm": joints_hm, "vis": vis,
           "joint_cells": joint_cells(joints_hm, grid, adapt.wts_D_cell, info.joint_defined,
                                      adapt.wts_D_skip_missing),
           "have_depth": tf.constant(float(info.have_depth)), "is_synthetic": tf.constant(float(info.is_synthetic))}
    if flip_test:
      flipped = no_augmentation(flip=True)
      out["image_flip"] = normalise(crop(image, boxes[i], flipped, size, occlusion=False), flipped["colour"],
                                    model.input_scale)
    return out

  return sample


def gt_hm_poses(records: Records, model_cfg) -> tuple[np.ndarray, np.ndarray]:
  """GT hm poses without augmentation, from annotations only: ([N, 17, 3] float32, all-17-visible [N] bool).

  SPA's source / target pose files (SPEC §7.5); the same joint transform as the image path, no image decoded.
  """
  params = no_augmentation()
  hm, vis = transform_joints(records.joint_img, records.joint_vis, records.bbox, params,
                             width=tf.zeros([len(records)]), input_size=model_cfg.input_size,
                             depth_bins=model_cfg.depth_bins, depth_extent_mm=model_cfg.bbox_3d_depth_mm,
                             joint_defined=records.info.joint_defined)
  return hm.numpy().astype(np.float32), np.all(vis.numpy() > 0, axis=-1)
