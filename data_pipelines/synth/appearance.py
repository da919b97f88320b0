"""The image-space half of the appearance gap: backgrounds (plain, 3D studio, 2D clutter), foreground occluders
and camera effects (colour cast, blur, sensor noise). Images are [H, W, 3] float in [0, 1] until `finish`."""
from __future__ import annotations

import numpy as np

from data_pipelines.synth.render import Camera, grid_rays


def plain_background(width: int, height: int, colour: np.ndarray) -> np.ndarray:
  return np.broadcast_to(np.asarray(colour, np.float64), (height, width, 3)).copy()


def _value_noise(height: int, width: int, cells: int, rng: np.random.Generator) -> np.ndarray:
  """[H, W] smooth noise in [−1, 1]: a random (cells+1)² grid bilinearly interpolated."""
  grid = rng.uniform(-1, 1, (cells + 1, cells + 1))
  y, x = np.linspace(0, cells, height), np.linspace(0, cells, width)
  y0, x0 = np.minimum(y.astype(int), cells - 1), np.minimum(x.astype(int), cells - 1)
  fy, fx = (y - y0)[:, None], (x - x0)[None, :]
  top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
  bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
  return top * (1 - fy) + bottom * fy


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
  """A random colour of everyday saturation (a grey level plus a partial random hue), float32 [3, 1, 1]."""
  colour = rng.uniform(0.1, 0.9) + rng.uniform(0.1, 0.5) * (rng.uniform(0, 1, 3) - 0.5)
  return np.minimum(np.maximum(colour, 0.0), 1.0).astype(np.float32)[:, None, None]


def clutter_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
  """[H, W, 3] in [0, 1]: a random indoor/outdoor-like 2D scene (gradient sky/wall, ground, smooth noise,
  boxes, ellipses, slanted poles and striped panels). Each shape is painted inside its own bounding box;
  computed channel-first (NumPy broadcasting over a trailing axis of 3 is slow)."""
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
  top, bottom, ground = _muted_colour(rng), _muted_colour(rng), _muted_colour(rng)
  image = top + (bottom - top) * (yy / height)
  horizon = rng.uniform(0.35, 0.75) * height + rng.uniform(-0.2, 0.2) * (xx - width / 2)
  image = np.where(yy > horizon, ground * (0.7 + 0.3 * (yy / height)), image)
  image += (0.1 * _value_noise(height, width, int(rng.integers(3, 9)), rng)).astype(np.float32)
  for _ in range(int(rng.integers(6, 15))):
    colour, alpha, kind = _muted_colour(rng), rng.uniform(0.6, 1.0), int(rng.integers(0, 4))
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    rx, ry = rng.uniform(0.04, 0.35) * width, rng.uniform(0.04, 0.35) * height
    if kind == 2:  # a slanted pole across the image
      rx, ry = width, height
    r0, r1 = max(int(cy - ry), 0), min(int(np.ceil(cy + ry)), height)
    c0, c1 = max(int(cx - rx), 0), min(int(np.ceil(cx + rx)), width)
    if r0 >= r1 or c0 >= c1:
      continue
    y, x = yy[r0:r1, c0:c1], xx[r0:r1, c0:c1]
    if kind == 0:    # box
      inside = np.ones(y.shape, bool)
    elif kind == 1:  # ellipse
      inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1
    elif kind == 2:
      angle = rng.uniform(0, np.pi)
      inside = np.abs((x - cx) * np.sin(angle) - (y - cy) * np.cos(angle)) < rng.uniform(1, 4)
    else:            # striped panel (blinds, shelves)
      inside = np.sin(y / rng.uniform(1.5, 4)) > 0
    patch = image[:, r0:r1, c0:c1]
    paint = colour * (1.0 + 0.15 * (y - cy) / max(ry, 1.0))
    patch[...] = np.where(inside, (1 - alpha) * patch + alpha * paint, patch)
  return np.moveaxis(np.clip(image, 0, 1), 0, -1)


def lab_layout(rng: np.random.Generator) -> dict:
  """A fixed capture studio: wall panels, equipment boxes and poles on a cylinder wall, a carpet floor."""
  return dict(
      radius=6.5, ceiling=3.2, wall=rng.uniform(0.45, 0.7, 3), floor=rng.uniform(0.2, 0.4, 3),
      panels=rng.uniform(0.25, 0.8, (24, 3)),
      boxes=np.column_stack([rng.uniform(-np.pi, np.pi, 14), rng.uniform(0.05, 0.25, 14),
                             rng.uniform(0.0, 1.6, 14), rng.uniform(0.3, 1.4, 14), rng.uniform(0.05, 0.8, (14, 3))]),
      poles=rng.uniform(-np.pi, np.pi, 8),
      waves=np.column_stack([rng.uniform(-3, 3, (6, 2)), rng.uniform(0, 2 * np.pi, 6)]),
  )


def _angle_between(a: np.ndarray, b: float) -> np.ndarray:
  """|a − b| wrapped to [0, π] (radians)."""
  return np.abs((a - b + np.pi) % (2 * np.pi) - np.pi)


def lab_background(camera: Camera, layout: dict) -> np.ndarray:
  """[H, W, 3] in [0, 1]: the studio seen from `camera` (floor z = 0 and a cylindrical wall, world z up),
  so the four lab cameras see one consistent room."""
  d = grid_rays(camera, slice(0, camera.height), slice(0, camera.width)) @ camera.rotation
  origin = -camera.rotation.T @ camera.translation
  with np.errstate(divide="ignore", invalid="ignore"):
    t_floor = np.where(d[:, 2] < -1e-6, -origin[2] / d[:, 2], np.inf)
    qa = d[:, 0] ** 2 + d[:, 1] ** 2
    qb = origin[0] * d[:, 0] + origin[1] * d[:, 1]
    qc = origin[0] ** 2 + origin[1] ** 2 - layout["radius"] ** 2
    t_wall = (-qb + np.sqrt(qb ** 2 - qa * qc)) / qa
  on_floor = t_floor < t_wall
  point = origin + np.where(on_floor, t_floor, t_wall)[:, None] * d
  waves = layout["waves"]
  grain = np.sin(point[:, :2] @ waves[:, :2].T * 4 + waves[:, 2]).mean(-1)
  tiles = (np.abs(((point[:, 0] + 10) % 1.0) - 0.5) > 0.48) | (np.abs(((point[:, 1] + 10) % 1.0) - 0.5) > 0.48)
  floor = layout["floor"] * (1 + 0.15 * grain[:, None]) * np.where(tiles, 0.75, 1.0)[:, None]
  theta, height = np.arctan2(point[:, 1], point[:, 0]), point[:, 2]
  panel = ((theta + np.pi) / (2 * np.pi) * len(layout["panels"])).astype(int) % len(layout["panels"])
  wall = 0.5 * layout["wall"] + 0.5 * layout["panels"][panel]
  wall = np.where(((height > 1.0) & (height < 1.1))[:, None], 0.3 * wall, wall)
  for angle, half_width, bottom, size, *colour in layout["boxes"]:
    inside = (_angle_between(theta, angle) < half_width) & (height > bottom) & (height < bottom + size)
    wall = np.where(inside[:, None], np.asarray(colour), wall)
  for angle in layout["poles"]:
    wall = np.where((_angle_between(theta, angle) < 0.012)[:, None], 0.08, wall)
  wall = np.where((height > layout["ceiling"])[:, None], 0.85, wall)
  image = np.where(on_floor[:, None], floor, wall)
  return np.clip(image, 0, 1).reshape(camera.height, camera.width, 3)


def add_occluder(image: np.ndarray, box: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Paints a striped or plain rectangle (a foreground object) over part of `box` [x, y, w, h] px in place;
  returns its [H, W] bool mask."""
  h, w = image.shape[:2]
  x, y, bw, bh = box
  ow, oh = rng.uniform(0.3, 0.8) * bw, rng.uniform(0.2, 0.45) * bh
  ox, oy = x + rng.uniform(-0.2, 0.9) * bw - ow / 2, y + rng.uniform(0.3, 1.0) * bh - oh / 2
  yy, xx = np.mgrid[0:h, 0:w]
  mask = (xx >= ox) & (xx < ox + ow) & (yy >= oy) & (yy < oy + oh)
  colour = _muted_colour(rng)[:, 0, 0] * np.where(np.sin(xx / rng.uniform(1.5, 6)) > 0, 1.0,
                                                 rng.uniform(0.6, 1.0))[..., None]
  image[mask] = colour[mask]
  return mask


_NOISE_TABLE: list[np.ndarray] = []


def _sensor_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
  """Unit Gaussian noise of `shape` (float32): a random window of a fixed 2^20-sample table (drawing fresh
  normals costs more than the rest of an image's rendering)."""
  if not _NOISE_TABLE:
    _NOISE_TABLE.append(np.random.default_rng(20240611).standard_normal(1 << 20, dtype=np.float32))
  size = int(np.prod(shape))
  start = int(rng.integers(0, len(_NOISE_TABLE[0]) - size))
  return _NOISE_TABLE[0][start:start + size].reshape(shape)


def _blur(rows: np.ndarray, sigma: float) -> np.ndarray:
  """Gaussian-like blur of an image stored as [H, W·3] (channels interleaved): one or two separable 3-tap
  [a, 1 − 2a, a] passes with total variance sigma² (px²; sigma ≤ ~1.15), edges left unfiltered."""
  passes = 1 if sigma ** 2 <= 0.6 else 2
  a = np.float32(sigma ** 2 / (2 * passes))
  for _ in range(passes):
    rows = rows.copy()
    rows[1:-1] = (1 - 2 * a) * rows[1:-1] + a * (rows[:-2] + rows[2:])
    cols = rows.copy()
    cols[:, 3:-3] = (1 - 2 * a) * rows[:, 3:-3] + a * (rows[:, :-6] + rows[:, 6:])
    rows = cols
  return rows


# tone → (black level, contrast, gamma, per-channel gain): "dim" is a dark, flat, warm-cast exposure (a poorly lit
# room on a cheap camera), the real-looking domains' look when the appearance gap is widened (domains.WIDER).
TONES = {"neutral": None, "dim": (0.06, 0.34, 1.4, (1.0, 0.8, 0.55))}


def finish(image: np.ndarray, blur_sigma: float, noise_std: float, rng: np.random.Generator,
           tone: str = "neutral") -> np.ndarray:
  """[H, W, 3] float in [0, 1] → uint8 after the tone curve (TONES), optional colour cast, blur (sigma px) and
  sensor noise (grey levels). Works on the [H, W·3] view: NumPy broadcasting over a trailing axis of 3 is slow."""
  h, w = image.shape[:2]
  out = np.asarray(image, np.float32).reshape(h, w * 3)
  if TONES[tone] is not None:
    black, contrast, gamma, gain = TONES[tone]
    out = (black + contrast * np.maximum(out, 0.0) ** gamma) * np.tile(np.asarray(gain, np.float32), w)
  out = out * np.float32(255.0)
  if blur_sigma > 0:
    out = _blur(out * np.tile(1.0 + rng.uniform(-0.06, 0.06, 3), w).astype(np.float32), blur_sigma)
  if noise_std > 0:
    out += np.float32(noise_std) * _sensor_noise(out.shape, rng)
  return np.clip(np.round(out), 0, 255).astype(np.uint8).reshape(h, w, 3)
