r"""3D poses for a folder of the user's own photos (`--mode=predict`): person boxes → the evaluation's crop → G+T
(+ SPA) → joints in image pixels and root-relative millimetres → JSON (and pictures with `--render`).

  python -m ahup_jax.main --mode=predict --export_dir=runs/saa/export --images=photos/ \
      [--boxes=dets.json --min_score=0.3] [--focal_px=1145,1144 --principal_px=512,515] [--render]

Geometry (everything as in evaluation, SPEC §4.1, §6):
* crop box: a detector box is sanitised to the image and grown about its centre to the crop's aspect ratio (1)
  and × 1.25 (`bbox.sanitize` + `bbox.square(·, 1.25)`, 3DMPPE's `process_bbox`, the MSCOCO / MuPoTS readers);
  without `--boxes` the whole image, squared about its centre, is the one crop box (no × 1.25). The crop is
  `augment.eval_sample` (un-augmented affine); flip test per `config.eval.flip_test`.
* 2D: x_px = x_hm / (S/4) · w + b_x, y_px = y_hm / (S/4) · h + b_y, the inverse of the crop's affine.
* camera: `--focal_px` (fx[,fy]) and `--principal_px` (cx,cy); else f = max(W, H) px (a 53° field of view across
  the long side: Human3.6M's cameras have f ≈ 1.15·max(W, H), a phone's 26 mm-equivalent main camera
  ≈ 0.75·max(W, H)) and c = (W/2, H/2) (3DMPPE's demo convention).
* root depth: 3DMPPE's box-size prior (the "k value" RootNet corrects): Z_root = sqrt(fx·fy·A_real / A_img) with
  A_real = bbox_3d_depth_mm² (a 2000 mm × 2000 mm person volume, 3DMPPE's `bbox_real` / `bbox_3d_shape`) and
  A_img = w·h of the crop box (aspect-extended and × 1.25, as RootNet computes it). Assumption: the crop box side
  spans 2 m at the person's depth (an upright adult of about 2 m / 1.25 = 1.6 m fills the detector box); a sitting
  or bent person gets a smaller box and so a too-large depth. On the Human3.6M frames of `shared/realdata` with
  their GT boxes and cameras it is −13 %, +34 %, −9 % and −16 % off the GT pelvis depth. Root-relative x, y (mm)
  scale with Z_root (Z_root / f = sqrt(A_real / A_img) does not depend on the camera); z comes from the depth bins
  (bbox_3d_depth_mm / depth_bins mm per bin) and does not.
* 3D: `backproject.hm_to_camera` with that root depth, then minus the pelvis (`root_align`), camera frame
  (x right, y down, z away from the camera), mm. With an SPA head in the export the adapted hm pose goes through
  the same back-projection.

The JSON layout is documented in README.md ("Predicting on your own photos").
"""
from __future__ import annotations

import json
import math
import os
import re

import jax
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging
from tqdm import tqdm

from ahup_jax import checkpoint, models, skeleton
from ahup_jax.evaluation import backproject, inference
from data_pipelines import augment, detections
from data_pipelines import bbox as bbox_lib

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
FORMAT = "ahup_jax.predict/1"
CONTACT_SHEET_IMAGES = 48  # the contact sheet shows the first this many images of the folder
DECIMALS = 4               # px and mm values in the JSON are rounded to this many decimals (pose_hm is exact)


# ----------------------------------------------------------------------------------------------- geometry
def crop_box(box: np.ndarray, width: int, height: int) -> np.ndarray | None:
  """A detector box [4] px → the crop box [4] float32 px (sanitise, square × 1.25), None without area inside."""
  box = np.asarray(box, np.float64)
  clipped, keep = bbox_lib.sanitize(box[None], width, height)
  crop = bbox_lib.square(clipped, 1.25)[0].astype(np.float32)
  return crop if keep[0] and box[2] * box[3] > 0 and crop[2] > 0 else None


def whole_image_box(width: int, height: int) -> np.ndarray:
  """The crop box [4] float32 px of a photo without person boxes: the whole image squared about its centre."""
  return bbox_lib.square(np.array([[0.0, 0.0, width, height]]), 1.0)[0].astype(np.float32)


def default_camera(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
  """(f [2], c [2]) px when no camera is given: f = max(W, H), c = (W/2, H/2)."""
  return np.full(2, float(max(width, height))), np.array([width / 2.0, height / 2.0])


def root_depth_prior(crop: np.ndarray, focal: np.ndarray, extent_mm: float) -> float:
  """3DMPPE's box-size depth prior (mm): sqrt(fx·fy·extent_mm² / (w·h)) for the crop box `crop` [4] px."""
  crop = np.asarray(crop, np.float64)
  return float(math.sqrt(focal[0] * focal[1] * extent_mm ** 2 / (crop[2] * crop[3])))


def to_image_px(pose_hm: np.ndarray, crop: np.ndarray, hm_size: float) -> np.ndarray:
  """hm poses [..., J, 3] → image pixels [..., J, 2] (float64) through the crop box `crop` [4] px."""
  crop = np.asarray(crop, np.float64)
  return np.asarray(pose_hm, np.float64)[..., :2] / hm_size * crop[2:] + crop[:2]


def to_camera_mm(pose_hm: np.ndarray, crop: np.ndarray, root_depth: float, focal: np.ndarray, principal: np.ndarray,
                 model_cfg: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
  """One hm pose [J, 3] → (root-relative pose [J, 3], pelvis [3]) camera-frame mm: evaluation's back-projection."""
  camera = backproject.hm_to_camera(pose_hm[None], np.asarray(crop)[None], np.array([root_depth]),
                                    np.asarray(focal)[None], np.asarray(principal)[None],
                                    hm_size=model_cfg.input_size / 4, depth_bins=model_cfg.depth_bins,
                                    depth_extent_mm=model_cfg.bbox_3d_depth_mm)
  return backproject.root_align(camera)[0], camera[0, skeleton.ROOT]


# ----------------------------------------------------------------------------------------------- inputs
def list_images(path: str) -> tuple[str, list[str]]:
  """(folder, image files under it relative to it, '/'-separated, sorted); `path` is a folder or one image."""
  if os.path.isfile(path):
    return os.path.dirname(os.path.abspath(path)), [os.path.basename(path)]
  if not os.path.isdir(path):
    raise FileNotFoundError(f"--images={path!r}: no such folder or image file")
  files = []
  for folder, subfolders, names in os.walk(path, followlinks=True):
    subfolders.sort()
    rel = os.path.relpath(folder, path)
    files += [name if rel == "." else f"{rel}/{name}".replace(os.sep, "/")
              for name in names if name.lower().endswith(IMAGE_EXTENSIONS)]
  if not files:
    raise FileNotFoundError(f"no {'/'.join(IMAGE_EXTENSIONS)} images in {path!r} or its subfolders")
  return os.path.abspath(path), sorted(files)


def decode(path: str) -> tuple[np.ndarray | None, str]:
  """(RGB uint8 [H, W, 3], "") or (None, why it cannot be read) — decoded exactly as evaluation decodes."""
  try:
    return augment.load_image(tf.constant(path)).numpy(), ""
  except tf.errors.OpError as error:
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", error.message)
    message = re.sub(r"\s*\[Op:\w+\].*$", "", message, flags=re.S).strip()
    return None, f"cannot be decoded: {message}"


def camera_flags(focal_px, principal_px) -> tuple[np.ndarray | None, np.ndarray | None]:
  """--focal_px (fx or fx,fy) and --principal_px (cx,cy) → (f [2] | None, c [2] | None); ValueError when bad."""
  def parse(values, name, sizes):
    try:
      numbers = [float(v) for v in values]
    except (TypeError, ValueError):
      raise ValueError(f"--{name}={','.join(map(str, values))}: expected numbers (px)") from None
    if len(numbers) not in sizes or not all(map(math.isfinite, numbers)):
      raise ValueError(f"--{name}={','.join(map(str, values))}: expected {' or '.join(map(str, sizes))} "
                       "finite numbers (px)")
    return np.array(numbers * (2 // len(numbers)), np.float64)
  focal = parse(focal_px, "focal_px", (1, 2)) if len(focal_px) else None
  if focal is not None and (focal <= 0).any():
    raise ValueError(f"--focal_px: focal lengths must be positive, got {focal.tolist()}")
  principal = parse(principal_px, "principal_px", (2,)) if len(principal_px) else None
  return focal, principal


# ----------------------------------------------------------------------------------------------- network
_POSE_FNS: dict = {}


def pose_fn(config: ml_collections.ConfigDict, with_spa: bool):
  """jit(variables, images [B, S, S, 3]) → {"pose_hm" [B, 17, 3][, "pose_hm_spa" [B, 17, 3]]}, cached per config."""
  key = (config.to_json_best_effort(sort_keys=True), with_spa)
  if key not in _POSE_FNS:
    network = inference.make_predict_fn(config)
    if with_spa and int(config.spa.mode) not in (1, 2):
      raise ValueError(f"spa.mode must be 1 (direct) or 2 (residual), got {config.spa.mode}")
    spa = models.SPANet(residual=int(config.spa.mode) == 2) if with_spa else None

    def fn(variables, images):
      pose = network(variables, {"image": images})
      out = {"pose_hm": pose}
      if spa is not None:
        out["pose_hm_spa"] = spa.apply(variables["spa"], pose, train=False)
      return out

    _POSE_FNS[key] = jax.jit(fn)
  return _POSE_FNS[key]


class _Batches:
  """Collects crops into fixed-size batches (one compilation) and keeps one batch in flight while the next is read."""

  def __init__(self, fn, variables: dict, batch_size: int):
    self.fn, self.variables, self.batch_size = fn, variables, batch_size
    self.crops, self.keys, self.pending, self.results = [], [], None, {}

  def add(self, key, crop: np.ndarray) -> None:
    self.crops.append(crop)
    self.keys.append(key)
    if len(self.crops) == self.batch_size:
      self._run()

  def finish(self) -> dict:
    if self.crops:
      self._run()
    self._collect()
    return self.results

  def _run(self) -> None:
    images = np.stack(self.crops + [self.crops[-1]] * (self.batch_size - len(self.crops)))
    out = self.fn(self.variables, images)
    self._collect()
    self.pending, self.crops, self.keys = (out, self.keys), [], []

  def _collect(self) -> None:
    if self.pending is not None:
      out, keys = jax.device_get(self.pending[0]), self.pending[1]
      for k, key in enumerate(keys):
        self.results[key] = {name: value[k] for name, value in out.items()}
      self.pending = None


# ----------------------------------------------------------------------------------------------- predict
def _rounded(values) -> list:
  return np.round(np.asarray(values, np.float64), DECIMALS).tolist()


def _person_outputs(out: dict, crop: np.ndarray, f: np.ndarray, c: np.ndarray,
                    model_cfg: ml_collections.ConfigDict) -> dict:
  """The JSON fields computed from one person's network output `out` ({"pose_hm"[, "pose_hm_spa"]} [17, 3])."""
  depth = root_depth_prior(crop, f, model_cfg.bbox_3d_depth_mm)
  pose_mm, pelvis = to_camera_mm(out["pose_hm"], crop, depth, f, c, model_cfg)
  fields = dict(joints_px=_rounded(to_image_px(out["pose_hm"], crop, model_cfg.input_size / 4)),
                root_depth_mm=_rounded(depth), pelvis_cam_mm=_rounded(pelvis), pose_mm=_rounded(pose_mm),
                pose_hm=np.asarray(out["pose_hm"], np.float64).tolist())
  if "pose_hm_spa" in out:
    fields.update(pose_mm_spa=_rounded(to_camera_mm(out["pose_hm_spa"], crop, depth, f, c, model_cfg)[0]),
                  pose_hm_spa=np.asarray(out["pose_hm_spa"], np.float64).tolist())
  return fields


def predict_folder(variables: dict, config: ml_collections.ConfigDict, images: str, *, boxes_path: str = "",
                   min_score: float = 0.3, focal: np.ndarray | None = None,
                   principal: np.ndarray | None = None) -> dict:
  """Poses of every person in every image under `images` → the JSON content (README "Predicting on your own
  photos"). variables: an export's G+T (+ "spa"); focal, principal: [2] px or None (per-image default)."""
  folder, files = list_images(images)
  found = detections.read(boxes_path, files, min_score) if boxes_path else None
  skipped = []
  if found is not None:
    logging.info("%s: %d person boxes with score ≥ %g in %d of %d images (%d below min_score, %d not persons)",
                 boxes_path, found.count, min_score, len(found.boxes), len(files), found.below_min_score,
                 found.not_person)
    if found.unknown_images:
      logging.warning("%s: %d image references match no image under %s, e.g. %s", boxes_path,
                      len(found.unknown_images), folder, found.unknown_images[0])
      skipped += [{"file": ref, "reason": f"named in {boxes_path} but not found under {folder}"}
                  for ref in found.unknown_images]
  with_spa = "spa" in variables
  expected = found.count if found is not None else len(files)
  batch_size = max(1, min(int(config.eval.batch_size), 1 << max(0, expected - 1).bit_length()))
  crop_fn = tf.function(lambda image, box: augment.eval_sample(image, box, config.model, False)["image"],
                        input_signature=[tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([4], tf.float32)])
  batches = _Batches(pose_fn(config, with_spa), jax.device_put(variables), batch_size)
  entries, cameras, crops = [], [], {}  # the unrounded (f, c) of each entry, crop box of each (entry, person)
  for file in tqdm(files, desc="predict", unit="image", disable=jax.process_index() != 0):
    image, reason = decode(os.path.join(folder, file))
    if image is None:
      skipped.append({"file": file, "reason": reason})
      logging.warning("skipped %s: %s", file, reason)
      continue
    height, width = image.shape[:2]
    f, c = default_camera(width, height)
    cameras.append((f if focal is None else focal, c if principal is None else principal))
    persons = []
    for box, score in [(None, None)] if found is None else found.boxes.get(file, []):
      crop = whole_image_box(width, height) if box is None else crop_box(box, width, height)
      if crop is None:
        skipped.append({"file": file, "box": _rounded(box),
                        "reason": f"the box has no area inside the {width}×{height} image"})
        continue
      crops[(len(entries), len(persons))] = crop
      batches.add((len(entries), len(persons)), crop_fn(image, crop).numpy())
      persons.append({"box": _rounded([0, 0, width, height] if box is None else box), "score": score,
                      "crop_box": _rounded(crop)})
    source = {(True, True): "default: f = max(width, height), c = image centre", (False, False): "flags"}
    entries.append({"file": file, "width": int(width), "height": int(height),
                    "camera": {"focal_px": _rounded(cameras[-1][0]), "principal_px": _rounded(cameras[-1][1]),
                               "source": source.get((focal is None, principal is None), "flags and defaults")},
                    "persons": persons})
  results = batches.finish()
  for i, (entry, (f, c)) in enumerate(zip(entries, cameras)):
    for p, person in enumerate(entry["persons"]):
      person.update(_person_outputs(results[(i, p)], crops[(i, p)], f, c, config.model))
  return {"format": FORMAT, "images_dir": folder, "boxes": os.path.abspath(boxes_path) if boxes_path else None,
          "min_score": min_score if boxes_path else None, "flip_test": bool(config.eval.flip_test),
          "spa": with_spa, "joint_names": list(skeleton.JOINT_NAMES), "edges": [list(e) for e in skeleton.EDGES],
          "images": entries, "skipped": skipped}


def dumps(result: dict) -> str:
  """JSON text with one line per innermost list (a joint, a box, a name list) — readable and still plain JSON."""
  text = json.dumps(result, indent=1, ensure_ascii=False)
  def inline(match):  # JSON strings hold no raw newline, so only the indentation is rewritten
    return re.sub(r"\n\s*\]", "]", re.sub(r"\[\n\s*", "[", re.sub(r",\n\s*", ", ", match.group(0))))
  return re.sub(r"\[[^\[\]{}]*\]", inline, text) + "\n"


def run(export_dir: str, images: str, out_path: str, *, boxes_path: str = "", min_score: float = 0.3,
        focal_px=(), principal_px=(), render: bool = False) -> dict:
  """The `--mode=predict` job: loads the export, predicts, writes `out_path` (+ `<out>_render/` PNGs with
  `render`); process 0 writes. Returns the JSON content."""
  if not images:
    raise ValueError("--mode=predict needs --images=FOLDER (or one image file)")
  focal, principal = camera_flags(focal_px, principal_px)
  variables, config = checkpoint.load_export(export_dir)
  if config is None:
    raise ValueError(f"{export_dir} has no config.json; re-export it with --mode=export")
  missing = [part for part in ("G", "T") if part not in variables.get("params", {})]
  if missing:
    raise ValueError(f"{export_dir} holds no {'+'.join(missing)} parameters (a backbone-only or SPA-only export?); "
                     "predict needs a pose network export (--mode=export or convert_torch --kind saa)")
  result = predict_folder(variables, config, images, boxes_path=boxes_path, min_score=min_score, focal=focal,
                          principal=principal)
  result = {"format": FORMAT, "export_dir": os.path.abspath(export_dir), **result}
  persons = sum(len(entry["persons"]) for entry in result["images"])
  if jax.process_index() == 0:
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
      f.write(dumps(result))
    print(f"wrote {persons} persons in {len(result['images'])} images to {out_path}")
    for item in result["skipped"]:
      print(f"  skipped {item['file']}{' box ' + str(item['box']) if 'box' in item else ''}: {item['reason']}")
    if render:
      render_dir = render_predictions(result, os.path.splitext(out_path)[0] + "_render")
      print(f"pictures in {render_dir}")
  return result


# ----------------------------------------------------------------------------------------------- pictures
def render_file_name(file: str) -> str:
  """The PNG name of an image's picture: its relative path with '/' → '__' and the extension → .png."""
  return os.path.splitext(file)[0].replace("/", "__") + ".png"


def render_predictions(result: dict, out_dir: str) -> str:
  """One PNG per image (2D skeletons on the photo beside a 3D view of each person) and `contact_sheet.png`."""
  from ahup_jax import viz  # matplotlib only when pictures are asked for
  os.makedirs(out_dir, exist_ok=True)
  sheet = []
  for entry in tqdm(result["images"], desc="render", unit="image", disable=jax.process_index() != 0):
    image, reason = decode(os.path.join(result["images_dir"], entry["file"]))
    if image is None:  # the file changed since it was predicted
      logging.warning("render: skipped %s: %s", entry["file"], reason)
      continue
    persons = entry["persons"]
    arrays = {key: np.array([p[key] for p in persons], np.float64).reshape(len(persons), *shape)
              for key, shape in (("box", (4,)), ("joints_px", (17, 2)), ("pose_mm", (17, 3)))}
    spa = (np.array([p["pose_mm_spa"] for p in persons], np.float64).reshape(len(persons), 17, 3)
           if result["spa"] else None)
    fig = viz.prediction_figure(image, arrays["box"], arrays["joints_px"], arrays["pose_mm"], poses_mm_spa=spa,
                                title=entry["file"])
    viz.save_png(fig, os.path.join(out_dir, render_file_name(entry["file"])))
    if len(sheet) < CONTACT_SHEET_IMAGES:
      sheet.append((viz.thumbnail(image), arrays["joints_px"], entry["file"]))
  total = len(result["images"])
  title = f"{len(sheet)} of {total} images" if len(sheet) < total else f"{total} images"
  viz.save_png(viz.contact_sheet(sheet, title=title), os.path.join(out_dir, "contact_sheet.png"))
  return out_dir
