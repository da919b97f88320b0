"""Per-sample tf graph ops: stateless random augmentation, the affine crop and the joint targets (SPEC §5, §2.1, §3.2).

Every function is a pure tf function usable eagerly and inside a parallel `tf.data` map. Training randomness comes
only from the `seed` argument (`tf.random.stateless_*`), so a sample is a pure function of (seed, record): the
pivoted input pipeline derives the seed from (config seed, dataset, stream position) and a resumed run reproduces
its batches bit-identically. One joint transform serves the image path and `gt_hm_poses` (SPA's source poses).
"""
from __future__ import annotations

import ml_collections
import numpy as np
import tensorflow as tf

from ahup_jax import skeleton
from data_pipelines.records import Records
from data_pipelines.tfds import source as tfds_source

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB (SPEC §2.1)
IMAGENET_STD = (0.229, 0.224, 0.225)
HM_PER_CELL = 8          # heatmap px per feature-grid cell: (S/4) / (S/32)
OCCLUSION_TRIES = 64     # bound of SPEC §5.1's rejection loop; no occlusion if every try falls outside the image
# SPEC §5.1 (= 3DMPPE): scale 1 ± 0.25·clip(N), rotation 30°·clip(N, ±2) w.p. 0.6, flip w.p. 0.5, colour ×U(0.8, 1.2),
# occlusion w.p. 0.5. configs/common.py's data.augment holds the same values for configs to change.
SPEC_AUGMENTATION = ml_collections.ConfigDict(dict(scale=0.25, rotation_deg=30.0, rotation_prob=0.6, flip_prob=0.5,
                                                   colour=0.2, occlusion_prob=0.5))


# ----------------------------------------------------------------------------------------------- random parameters
def draw_params(seed: tf.Tensor, aug_cfg: ml_collections.ConfigDict | None = None) -> dict[str, tf.Tensor]:
  """The random augmentation of one training sample (SPEC §5.1), a pure function of `seed` ([2] int).

  aug_cfg: `config.data.augment` (configs/common.py; None = the SPEC §5.1 values). Returns scale [] (s > 1 zooms
  out), rotation_deg [], flip [] bool, colour [3] RGB factors, occlude [] bool, occlusion [OCCLUSION_TRIES, 4]
  U(0,1) draws (area, aspect, x, y per try), noise_seed [2] (occluder pixels).
  """
  aug = aug_cfg or SPEC_AUGMENTATION
  seeds = tf.random.experimental.stateless_split(seed, 4)
  normal = tf.random.stateless_normal([2], seeds[0])
  coins = tf.random.stateless_uniform([6], seeds[1])  # rotate?, flip?, occlude?, 3 colour factors
  return dict(
      scale=1.0 + aug.scale * tf.clip_by_value(normal[0], -1.0, 1.0),
      rotation_deg=tf.where(coins[0] <= aug.rotation_prob,
                            aug.rotation_deg * tf.clip_by_value(normal[1], -2.0, 2.0), 0.0),
      flip=coins[1] <= aug.flip_prob,
      colour=(1.0 - aug.colour) + 2.0 * aug.colour * coins[3:],
      occlude=coins[2] <= aug.occlusion_prob,
      occlusion=tf.random.stateless_uniform([OCCLUSION_TRIES, 4], seeds[2]),
      noise_seed=seeds[3],
  )


def identity_params() -> dict[str, tf.Tensor]:
  """No augmentation (test, evaluation, SPA data; SPEC §5.1 last bullet), in the layout of `draw_params`."""
  return dict(scale=tf.constant(1.0), rotation_deg=tf.constant(0.0), flip=tf.constant(False),
              colour=tf.ones([3]), occlude=tf.constant(False), occlusion=tf.zeros([OCCLUSION_TRIES, 4]),
              noise_seed=tf.zeros([2], tf.int64))


# ----------------------------------------------------------------------------------------------- geometry
def crop_affine(center: tf.Tensor, box_size: tf.Tensor, scale: tf.Tensor, rotation_deg: tf.Tensor,
                crop_size: int) -> tf.Tensor:
  """Forward affine image px → crop px [..., 2, 3] float32 (SPEC §5.2 step 3), batched over leading axes.

  The map sending centre c ↦ (S/2, S/2), c + R(r)(0, s·h/2) ↦ (S/2, S) and c + R(r)(s·w/2, 0) ↦ (S, S/2):
  p ↦ diag(S/(s·w), S/(s·h)) · Rᵀ · (p − c) + S/2. center, box_size: [..., 2] px; scale, rotation_deg: [...].
  """
  angle = rotation_deg * (np.pi / 180.0)
  cos, sin = tf.cos(angle), tf.sin(angle)
  kx = crop_size / (scale * box_size[..., 0])
  ky = crop_size / (scale * box_size[..., 1])
  linear = tf.stack([tf.stack([kx * cos, kx * sin], -1), tf.stack([-ky * sin, ky * cos], -1)], -2)
  offset = crop_size / 2 - tf.linalg.matvec(linear, center)
  return tf.concat([linear, offset[..., None]], -1)


def apply_affine(affine: tf.Tensor, points: tf.Tensor) -> tf.Tensor:
  """affine [..., 2, 3], points [..., J, 2] → [..., J, 2]."""
  return tf.einsum("...ij,...kj->...ki", affine[..., :2], points) + affine[..., None, :, 2]


def flip_joints(joint_img: tf.Tensor, joint_vis: tf.Tensor, image_width: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """Mirror joints in an image of `image_width` px: x ← W − x − 1, then swap the reference flip pairs (SPEC §5.3.1)."""
  x = tf.cast(image_width, tf.float32) - joint_img[..., 0] - 1.0
  mirrored = tf.concat([x[..., None], joint_img[..., 1:]], -1)
  permutation = skeleton.flip_permutation()
  return tf.gather(mirrored, permutation, axis=-2), tf.gather(joint_vis, permutation, axis=-1)


def joints_to_hm(joint_img: tf.Tensor, joint_vis: tf.Tensor, affine: tf.Tensor, joint_defined: tf.Tensor,
                 model_cfg: ml_collections.ConfigDict) -> tuple[tf.Tensor, tf.Tensor]:
  """Training targets from image-space joints (SPEC §5.3 steps 2–6, §4.1 hm space), batched over leading axes.

  joint_img [..., 17, 3] (x, y px; z root-relative mm), joint_vis [..., 17], affine [..., 2, 3] image → crop px,
  joint_defined [..., 17] bool. Returns joints_hm [..., 17, 3] float32 (x, y in 0..S/4 hm px, z in 0..depth_bins)
  and vis [..., 17] float32 in {0, 1}: vis · [inside the crop] · [|z| < bbox_3d_depth_mm/2]. Joints the dataset
  does not define are (0, 0, 0) with vis 0, which reproduces the official cell-(0, 0) behaviour (SPEC §3.2).
  """
  size = model_cfg.input_size
  xy = apply_affine(affine, joint_img[..., :2])
  z = (joint_img[..., 2] / (model_cfg.bbox_3d_depth_mm / 2) + 1.0) / 2.0
  inside = ((xy[..., 0] >= 0) & (xy[..., 0] < size) & (xy[..., 1] >= 0) & (xy[..., 1] < size)
            & (z >= 0) & (z < 1))
  hm = tf.concat([xy * ((size / 4) / size), z[..., None] * model_cfg.depth_bins], -1)
  defined = tf.broadcast_to(joint_defined, tf.shape(joint_vis))
  hm = tf.where(defined[..., None], hm, 0.0)
  vis = tf.cast((joint_vis * tf.cast(inside, tf.float32) > 0) & defined, tf.float32)
  return hm, vis


def joint_cells(joints_hm: tf.Tensor, joint_defined: tf.Tensor, input_size: int,
                adapt_cfg: ml_collections.ConfigDict) -> tf.Tensor:
  """(row v, col u) of each joint on the S/32 feature grid, −1 = no cell; [..., 17, 2] int32 (SPEC §3.2, §9 #6/#7).

  u, v = round-half-to-even(x_hm / 8) (`wts_D_cell="round"`, faithful) or floor; visibility is ignored
  (faithful). Undefined joints sit at (0, 0) and so take cell (0, 0) unless `wts_D_skip_missing`.
  """
  if adapt_cfg.wts_D_cell not in ("round", "floor"):
    raise ValueError(f"adapt.wts_D_cell must be 'round' or 'floor', got {adapt_cfg.wts_D_cell!r}")
  to_cell = tf.round if adapt_cfg.wts_D_cell == "round" else tf.floor  # tf.round rounds half to even
  cells = tf.cast(to_cell(joints_hm[..., 1::-1] / HM_PER_CELL), tf.int32)  # (y, x) → (v, u)
  grid = input_size // 32
  valid = tf.reduce_all((cells >= 0) & (cells < grid), -1)
  if adapt_cfg.wts_D_skip_missing:
    valid &= tf.broadcast_to(joint_defined, tf.shape(valid))
  return tf.where(valid[..., None], cells, -1)


# ----------------------------------------------------------------------------------------------- image
def load_image(path: tf.Tensor) -> tf.Tensor:
  """RGB uint8 [H, W, 3] from a JPEG (decoded like OpenCV: accurate integer DCT), PNG, BMP or GIF file, or from
  the example a `tfds:` reference names (a record loaded with data.source = "tfds", data_pipelines/tfds/source.py)."""
  contents = tf.cond(tfds_source.is_reference(path), lambda: tfds_source.read_encoded(path),
                     lambda: tf.io.read_file(path))
  return tf.cond(
      tf.io.is_jpeg(contents),
      lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
      lambda: tf.io.decode_image(contents, channels=3, dtype=tf.uint8, expand_animations=False))


def occlusion_rect(draws: tf.Tensor, bbox: tf.Tensor, image_height: tf.Tensor,
                   image_width: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """SPEC §5.1's rejection loop over precomputed draws: the first rectangle inside the image.

  draws [T, 4] U(0,1); bbox [4] x, y, w, h px. Returns (found [] bool, rect [4] int32 x0, y0, w, h): the
  integer-truncated rectangle of the first try with x ≥ 0, y ≥ 0, x + w < W, y + h < H.
  """
  box_w, box_h = bbox[2], bbox[3]
  area = 0.7 * draws[:, 0] * box_w * box_h
  aspect = 0.3 + draws[:, 1] * (1 / 0.3 - 0.3)
  h, w = tf.sqrt(area * aspect), tf.sqrt(area / aspect)
  x = draws[:, 2] * (box_w - w - 1) + bbox[0]
  y = draws[:, 3] * (box_h - h - 1) + bbox[1]
  inside = ((x >= 0) & (y >= 0) & (x + w < tf.cast(image_width, tf.float32))
            & (y + h < tf.cast(image_height, tf.float32)))
  first = tf.argmax(tf.cast(inside, tf.int32))
  rect = tf.cast(tf.stack([x[first], y[first], w[first], h[first]]), tf.int32)  # truncation, all ≥ 0
  return tf.reduce_any(inside), rect


def fill_noise(image: tf.Tensor, rect: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """image [H, W, 3] uint8 with rect (x0, y0, w, h) replaced by uniform noise in [0, 255) per pixel and channel."""
  x0, y0, w, h = tf.unstack(rect)
  noise = tf.cast(tf.random.stateless_uniform([h, w, 3], seed) * 255.0, tf.uint8)  # truncation, like the official
  rows = image[y0:y0 + h]
  middle = tf.concat([rows[:, :x0], noise, rows[:, x0 + w:]], axis=1)
  return tf.concat([image[:y0], middle, image[y0 + h:]], axis=0)


def warp_crop(image: tf.Tensor, affine: tf.Tensor, flip: tf.Tensor, crop_size: int) -> tf.Tensor:
  """Bilinear crop [S, S, 3] float32 with zero border of image [H, W, 3] (SPEC §5.2 steps 2–3).

  `affine` [2, 3] maps the (mirrored, when `flip`) image to the crop; the mirror is folded into the sampling
  grid (x_src ← W − 1 − x_src) instead of copying the image.
  """
  linear, offset = affine[:, :2], affine[:, 2]
  inverse = tf.linalg.inv(linear)
  inverse_offset = -tf.linalg.matvec(inverse, offset)
  row_x = tf.concat([inverse[0], inverse_offset[:1]], 0)
  width = tf.cast(tf.shape(image)[1], tf.float32)
  row_x = tf.where(flip, tf.stack([-row_x[0], -row_x[1], width - 1.0 - row_x[2]]), row_x)
  row_y = tf.concat([inverse[1], inverse_offset[1:]], 0)
  transform = tf.concat([row_x, row_y, tf.zeros([2])], 0)[None]
  crop = tf.raw_ops.ImageProjectiveTransformV3(
      images=tf.cast(image, tf.float32)[None], transforms=transform, output_shape=tf.constant([crop_size] * 2),
      fill_value=tf.constant(0.0), interpolation="BILINEAR", fill_mode="CONSTANT")
  return crop[0]


def normalise(crop: tf.Tensor, input_scale: str) -> tf.Tensor:
  """ImageNet normalisation of an RGB crop in [0, 255] (SPEC §2.1, §9 #31): "255_quirk" keeps the 0..255 scale."""
  if input_scale == "unit":
    crop = crop / 255.0
  elif input_scale != "255_quirk":
    raise ValueError(f"model.input_scale must be '255_quirk' or 'unit', got {input_scale!r}")
  return (crop - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)


# ----------------------------------------------------------------------------------------------- samples
def _box_center_size(bbox: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  return bbox[..., :2] + 0.5 * bbox[..., 2:], bbox[..., 2:]


def _crop(image: tf.Tensor, bbox: tf.Tensor, params: dict[str, tf.Tensor],
          model_cfg: ml_collections.ConfigDict) -> tuple[tf.Tensor, tf.Tensor]:
  """Normalised crop [S, S, 3] and the image → crop affine [2, 3] of one sample (SPEC §5.2)."""
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  found, rect = occlusion_rect(params["occlusion"], bbox, height, width)
  image = tf.cond(params["occlude"] & found, lambda: fill_noise(image, rect, params["noise_seed"]), lambda: image)
  center, box_size = _box_center_size(bbox)
  mirrored_x = tf.cast(width, tf.float32) - center[0] - 1.0
  center = tf.stack([tf.where(params["flip"], mirrored_x, center[0]), center[1]])
  affine = crop_affine(center, box_size, params["scale"], params["rotation_deg"], model_cfg.input_size)
  crop = warp_crop(image, affine, params["flip"], model_cfg.input_size)
  crop = tf.clip_by_value(crop * params["colour"], 0.0, 255.0)
  return normalise(crop, model_cfg.input_scale), affine


def train_sample(image: tf.Tensor, record: dict[str, tf.Tensor], seed: tf.Tensor,
                 model_cfg: ml_collections.ConfigDict, adapt_cfg: ml_collections.ConfigDict,
                 aug_cfg: ml_collections.ConfigDict | None = None) -> dict[str, tf.Tensor]:
  """One augmented training sample (docs/ARCHITECTURE.md "Samples"; SPEC §5).

  image: [H, W, 3] uint8 RGB (`load_image`); record: bbox [4] px, joint_img [17, 3], joint_vis [17],
  joint_defined [17] bool, have_depth [] float32, is_synthetic [] float32 (one row of Records plus its dataset's
  info); seed: [2] int; aug_cfg: `config.data.augment` (None = SPEC §5.1).
  """
  params = draw_params(seed, aug_cfg)
  crop, affine = _crop(image, record["bbox"], params, model_cfg)
  joint_img, joint_vis = tf.cond(params["flip"],
                                 lambda: flip_joints(record["joint_img"], record["joint_vis"], tf.shape(image)[1]),
                                 lambda: (record["joint_img"], record["joint_vis"]))
  joints_hm, vis = joints_to_hm(joint_img, joint_vis, affine, record["joint_defined"], model_cfg)
  return dict(image=crop, joints_hm=joints_hm, vis=vis,
              joint_cells=joint_cells(joints_hm, record["joint_defined"], model_cfg.input_size, adapt_cfg),
              have_depth=record["have_depth"], is_synthetic=record["is_synthetic"])


def eval_sample(image: tf.Tensor, bbox: tf.Tensor, model_cfg: ml_collections.ConfigDict,
                flip_test: bool) -> dict[str, tf.Tensor]:
  """The un-augmented crop `image` [S, S, 3] of image [H, W, 3] uint8 in box bbox [4] px and, with `flip_test`,
  `image_flip` (SPEC §6.1): the crop mirrored left–right, exactly the flipped patch the official flip test feeds
  (its predictions map back with x ← S/4 − 1 − x, SPEC §9 #21).
  """
  crop, _ = _crop(image, bbox, identity_params(), model_cfg)
  sample = dict(image=crop)
  if flip_test:
    sample["image_flip"] = tf.reverse(crop, axis=[1])
  return sample


def gt_hm_poses(records: Records, model_cfg: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
  """GT hm poses of un-augmented crops from annotations alone (no image decode; SPEC §7.5).

  Returns poses_hm [N, 17, 3] float32 (hm units) and all_visible [N] bool (all 17 joints visible after §5.3),
  exactly the targets `train_sample` would give with identity augmentation.
  """
  bbox = tf.constant(records.bbox, tf.float32)
  center, box_size = _box_center_size(bbox)
  ones = tf.ones([len(records)])
  affine = crop_affine(center, box_size, ones, 0.0 * ones, model_cfg.input_size)
  poses, vis = joints_to_hm(tf.constant(records.joint_img, tf.float32), tf.constant(records.joint_vis, tf.float32),
                            affine, tf.constant(records.info.joint_defined, tf.bool), model_cfg)
  return poses.numpy(), tf.reduce_all(vis > 0, -1).numpy()
