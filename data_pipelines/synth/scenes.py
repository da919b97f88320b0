"""Scene plumbing shared by the four datasets: cameras, garments, body placement and the render worker.

World frame: metres, z up, floor z = 0 (Human3.6M's convention, in mm on disk). A posed body (bodies.py, y up)
enters the world through BODY_TO_WORLD and a floor translation; each image is one `Job` that a worker process
renders and writes, returning the person boxes and per-joint visibility measured on the z-buffer.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from data_pipelines.synth import appearance, render, writers
from data_pipelines.synth.domains import Appearance

BODY_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # body y up → world z up
OCCLUSION_TOLERANCE_M = 0.1  # a joint is hidden when a surface lies this much in front of it


def rng_for(seed: int, *key) -> np.random.Generator:
  """An independent stream per (seed, key...): keys are ints or short strings."""
  words = [seed] + [int.from_bytes(k.encode(), "little") if isinstance(k, str) else int(k) for k in key]
  return np.random.default_rng(words)


def look_at(position: np.ndarray, target: np.ndarray, roll_deg: float = 0.0) -> np.ndarray:
  """[3, 3] world → camera rotation (x right, y down, z forward) of a camera at `position` facing `target`."""
  forward = (target - position) / np.linalg.norm(target - position)
  right = np.cross(forward, [0.0, 0.0, 1.0])
  right /= np.linalg.norm(right)
  down = np.cross(forward, right)
  rotation = np.stack([right, down, forward])
  a = np.deg2rad(roll_deg)
  roll = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
  return roll @ rotation


def make_camera(position, target, roll_deg: float, focal: float, size: tuple[int, int],
                centre_offset=(0.0, 0.0)) -> render.Camera:
  rotation = look_at(np.asarray(position, float), np.asarray(target, float), roll_deg)
  width, height = size
  return render.Camera(rotation, -rotation @ np.asarray(position, float), np.array([focal, focal]),
                       np.array([width / 2 + centre_offset[0], height / 2 + centre_offset[1]]), width, height)


def sample_materials(n: int, clothing: str, rng: np.random.Generator) -> list[dict]:
  """n garment sets (colours in [0, 1]); `flat` has one colour per garment and no pattern."""
  textured = clothing == "textured"
  out = []
  for _ in range(n):
    skin = np.array([0.93, 0.76, 0.62]) * rng.uniform(0.45, 1.05)
    shirt = rng.uniform(0.05, 0.95, 3)
    out.append(dict(
        skin=np.clip(skin, 0, 1), hair=rng.uniform(0.03, 0.35) * np.array([1.0, 0.85, 0.7]), shirt=shirt,
        shirt2=rng.uniform(0.05, 0.95, 3) if textured else shirt,
        trousers=rng.uniform(0.05, 0.6, 3) * rng.uniform(0.4, 1.0), shoes=rng.uniform(0.02, 0.3, 3),
        shirt_pattern=int(rng.integers(0, 4)) if textured else 0, long_sleeves=bool(rng.random() < 0.5),
        shorts=bool(rng.random() < 0.2), stripe_period=float(rng.uniform(0.05, 0.12))))
  return out


def place(points: dict, frames: dict, position: np.ndarray) -> tuple[dict, dict]:
  """Body-frame landmarks/frames (n bodies) → world, standing at floor positions `position` [n, 2] metres."""
  offset = np.concatenate([position, np.zeros((len(position), 1))], -1)
  return ({k: v @ BODY_TO_WORLD.T + offset for k, v in points.items()},
          {k: BODY_TO_WORLD @ v for k, v in frames.items()})


@dataclasses.dataclass
class Job:
  """One image to render and write."""
  path: str                  # absolute output path
  camera: render.Camera
  scene: render.Scene
  materials: list[dict]      # one per body
  appearance: Appearance
  background: tuple          # ("plain", colour) | ("lab", seed) | ("clutter",)
  rng_key: tuple[int, ...]
  joints: np.ndarray         # [B, J, 3] labelled joints, camera frame (metres), for visibility


def build_scene(camera: render.Camera, prims: tuple, rows: list[int]) -> render.Scene:
  """Camera-frame Scene of the world-frame primitives `prims` (bodies.primitives after placement) of `rows`."""
  (cap_a, cap_b, cap_r, cap_part), (ell_c, ell_axes, ell_r, ell_part) = prims
  rot, t = camera.rotation, camera.translation
  nb = len(rows)
  return render.Scene(
      cap_a=np.concatenate([cap_a[r] @ rot.T + t for r in rows]),
      cap_b=np.concatenate([cap_b[r] @ rot.T + t for r in rows]),
      cap_r=np.concatenate([cap_r[r] for r in rows]), cap_part=np.tile(cap_part, nb),
      cap_body=np.repeat(np.arange(nb), len(cap_part)),
      ell_c=np.concatenate([ell_c[r] @ rot.T + t for r in rows]),
      ell_axes=np.concatenate([rot @ ell_axes[r] for r in rows]),
      ell_r=np.concatenate([ell_r[r] for r in rows]), ell_part=np.tile(ell_part, nb),
      ell_body=np.repeat(np.arange(nb), len(ell_part)))


_LAB_BACKGROUNDS: dict = {}


def _background(job: Job, rng: np.random.Generator) -> np.ndarray:
  kind = job.background[0]
  cam = job.camera
  if kind == "plain":
    return appearance.plain_background(cam.width, cam.height, job.background[1])
  if kind == "clutter":
    return appearance.clutter_background(cam.width, cam.height, rng)
  key = (job.background[1], cam.rotation.tobytes(), cam.translation.tobytes(), cam.focal.tobytes(),
         cam.centre.tobytes())
  if key not in _LAB_BACKGROUNDS:  # a lab camera sees the same studio in every frame
    if len(_LAB_BACKGROUNDS) > 64:
      _LAB_BACKGROUNDS.clear()
    layout = appearance.lab_layout(rng_for(job.background[1], "lab"))
    _LAB_BACKGROUNDS[key] = appearance.lab_background(cam, layout)
  return _LAB_BACKGROUNDS[key]


def render_job(job: Job) -> dict:
  """Renders and writes one image. Returns per body: `bbox` [B, 4] x, y, w, h of the visible mask (px, NaN if
  none), `area` [B] visible pixels, `in_image` [B, J] and `visible` [B, J] bool (not hidden by a surface or an
  occluder, per the z-buffer)."""
  rng = np.random.default_rng(job.rng_key)
  look = job.appearance
  hits = render.raycast(job.camera, job.scene)
  surface = render.albedo(hits, job.materials, look.clothing == "textured", rng)
  lit = render.shade(hits, surface, look.lighting, rng)
  image = _background(job, rng).copy()
  image.reshape(-1, 3)[hits.pixel] = lit
  body = hits.body.copy()
  occluded = np.zeros(body.shape, bool)
  if rng.random() < look.occluder_prob and (body >= 0).any():
    target = int(rng.integers(0, body.max() + 1))
    rows, cols = np.nonzero(body == target)
    if len(rows):
      box = np.array([cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1], float)
      occluded = appearance.add_occluder(image, box, rng)
      body[occluded] = -1
  blur = rng.uniform(*look.blur_sigma_px)
  noise = rng.uniform(*look.noise_std)
  os.makedirs(os.path.dirname(job.path), exist_ok=True)
  writers.save_jpeg(job.path, appearance.finish(image, blur, noise, rng, look.tone), look.jpeg_quality)

  n_bodies = len(job.materials)
  boxes, areas = np.full((n_bodies, 4), np.nan), np.zeros(n_bodies)
  for b in range(n_bodies):
    rows, cols = np.nonzero(body == b)
    if len(rows):
      boxes[b] = [cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1]
      areas[b] = len(rows)
  uv = job.camera.project(job.joints)
  pixel = np.round(uv).astype(int)
  in_image = ((uv[..., 0] >= 0) & (uv[..., 0] <= job.camera.width - 1) & (uv[..., 1] >= 0)
              & (uv[..., 1] <= job.camera.height - 1))
  col = np.clip(pixel[..., 0], 0, job.camera.width - 1)
  row = np.clip(pixel[..., 1], 0, job.camera.height - 1)
  hidden = (hits.depth[row, col] < job.joints[..., 2] - OCCLUSION_TOLERANCE_M) | occluded[row, col]
  return dict(bbox=boxes, area=areas, in_image=in_image, visible=in_image & ~hidden)
