"""A primitive ray caster: capsules and ellipsoids through a pinhole camera, z-buffered and shaded.

Vectorised NumPy, no per-pixel Python loop: every (primitive, pixel) pair inside the primitive's projected box is
intersected in one pass, the nearest hit per pixel wins (the z-buffer), and only the winners are shaded. Camera
frame: x right, y down, z forward (metres); pixel (row i, column j) looks along ((j − cx)/fx, (i − cy)/fy, 1),
i.e. pixel centres sit at integer coordinates, the same convention as the projected 2D labels.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from data_pipelines.synth.bodies import PARTS


@dataclasses.dataclass(frozen=True)
class Camera:
  rotation: np.ndarray     # [3, 3] world → camera
  translation: np.ndarray  # [3] metres: X_cam = rotation · X_world + translation
  focal: np.ndarray        # [2] px
  centre: np.ndarray       # [2] px
  width: int
  height: int

  def project(self, points_cam: np.ndarray) -> np.ndarray:
    """[..., 3] camera frame → [..., 2] px."""
    return points_cam[..., :2] / points_cam[..., 2:3] * self.focal + self.centre

  def to_camera(self, points_world: np.ndarray) -> np.ndarray:
    return points_world @ self.rotation.T + self.translation


@dataclasses.dataclass
class Scene:
  """Camera-frame primitives of every body in one image; `body` says which body each primitive belongs to."""
  cap_a: np.ndarray      # [C, 3]
  cap_b: np.ndarray      # [C, 3]
  cap_r: np.ndarray      # [C]
  cap_part: np.ndarray   # [C] int, index into PARTS
  cap_body: np.ndarray   # [C] int
  ell_c: np.ndarray      # [E, 3]
  ell_axes: np.ndarray   # [E, 3, 3] columns = the ellipsoid's axes
  ell_r: np.ndarray      # [E, 3]
  ell_part: np.ndarray   # [E] int
  ell_body: np.ndarray   # [E] int


@dataclasses.dataclass
class Hits:
  """Ray-cast result: full-image depth and body buffers (background: inf, −1) and, for the K pixels that hit a
  body (`pixel`, flat row-major indices), the surface attributes needed for shading."""
  depth: np.ndarray   # [H, W] camera z (metres)
  body: np.ndarray    # [H, W] int
  pixel: np.ndarray   # [K] int flat pixel index
  part: np.ndarray    # [K] int, index into PARTS
  normal: np.ndarray  # [K, 3] unit, camera frame
  local: np.ndarray   # [K, 3] ellipsoids: point on the unit sphere; capsules: (0, s/L, s metres)
  ray: np.ndarray     # [K, 3] unit ray directions


def pixel_rays(camera: Camera, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
  """Unit ray directions [len(rows), 3] through pixels (rows[k], cols[k])."""
  d = np.stack([(cols - camera.centre[0]) / camera.focal[0], (rows - camera.centre[1]) / camera.focal[1],
                np.ones(len(rows))], -1)
  return d / np.linalg.norm(d, axis=-1, keepdims=True)


def grid_rays(camera: Camera, rows: slice, cols: slice) -> np.ndarray:
  """Unit ray directions [(rows × cols), 3] of an image window, row-major."""
  jj, ii = np.meshgrid(np.arange(cols.start, cols.stop, dtype=np.float64),
                       np.arange(rows.start, rows.stop, dtype=np.float64))
  return pixel_rays(camera, ii.ravel(), jj.ravel())


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  return np.einsum("ki,ki->k", x, y)


def intersect_capsules(d: np.ndarray, a: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
  """Ray parameter t [K] of the first hit of ray t·d[k] (unit, from the origin) with capsule k (segment
  a[k]–b[k], radius r[k]); inf where missed. Capsule = finite cylinder ∪ two end spheres."""
  axis = b - a
  length = np.linalg.norm(axis, axis=-1)
  u = axis / np.maximum(length, 1e-9)[:, None]
  du, ad, bd, au = _dot(u, d), _dot(a, d), _dot(b, d), _dot(a, u)
  quad_a = 1.0 - du ** 2
  half_b = au * du - ad
  quad_c = _dot(a, a) - au ** 2 - r ** 2
  disc = half_b ** 2 - quad_a * quad_c
  with np.errstate(invalid="ignore", divide="ignore"):
    t_cyl = (-half_b - np.sqrt(disc)) / quad_a
    s = t_cyl * du - au
    ok = (disc >= 0) & (quad_a > 1e-9) & (s >= 0) & (s <= length) & (t_cyl > 0)
    t = np.where(ok, t_cyl, np.inf)
    for centre_dot, centre in ((ad, a), (bd, b)):
      sphere_disc = centre_dot ** 2 - (_dot(centre, centre) - r ** 2)
      t_sphere = centre_dot - np.sqrt(sphere_disc)
      t = np.where((sphere_disc >= 0) & (t_sphere > 0) & (t_sphere < t), t_sphere, t)
  return t


def intersect_ellipsoids(d: np.ndarray, c: np.ndarray, axes: np.ndarray, radii: np.ndarray) -> np.ndarray:
  """Ray parameter t [K] of the first hit of ray t·d[k] with ellipsoid k (centre c[k], axes[k] columns,
  radii[k]); inf where missed. Solved on the unit sphere after mapping x → axesᵀ(x − c) / radii."""
  o_local = np.einsum("kji,kj->ki", axes, -c) / radii
  d_local = np.einsum("kji,kj->ki", axes, d) / radii
  qa, qb, qc = _dot(d_local, d_local), _dot(d_local, o_local), _dot(o_local, o_local) - 1.0
  disc = qb ** 2 - qa * qc
  with np.errstate(invalid="ignore"):
    t = (-qb - np.sqrt(disc)) / qa
  return np.where((disc >= 0) & (t > 0), t, np.inf)


def _pixel_boxes(camera: Camera, centres: np.ndarray, radii: np.ndarray, margin: float = 1.5):
  """Conservative image boxes of primitives bounded by spheres: centres [P, S, 3], radii [P] →
  (row0, row1, col0, col1) [P] int each, half-open, clipped to the image."""
  z = np.maximum(centres[..., 2] - radii[:, None], 0.05)
  uv = centres[..., :2] / z[..., None] * camera.focal + camera.centre
  pad = (radii[:, None] / z)[..., None] * camera.focal + margin
  lo, hi = np.floor(np.min(uv - pad, 1)).astype(int), np.ceil(np.max(uv + pad, 1)).astype(int) + 1
  cols0, cols1 = np.clip(lo[:, 0], 0, camera.width), np.clip(hi[:, 0], 0, camera.width)
  rows0, rows1 = np.clip(lo[:, 1], 0, camera.height), np.clip(hi[:, 1], 0, camera.height)
  return rows0, np.maximum(rows1, rows0), cols0, np.maximum(cols1, cols0)


def raycast(camera: Camera, scene: Scene) -> Hits:
  """Nearest primitive per pixel (the z-buffer). Each primitive is tested only against the pixels of its own
  projected box: (primitive, pixel) pairs are enumerated, intersected in one vectorised pass, and the nearest
  hit per pixel wins."""
  h, w = camera.height, camera.width
  n_caps = len(scene.cap_r)
  centres = np.concatenate([np.stack([scene.cap_a, scene.cap_b], 1),
                            np.repeat(scene.ell_c[:, None], 2, 1)])
  rows0, rows1, cols0, cols1 = _pixel_boxes(camera, centres, np.concatenate([scene.cap_r, scene.ell_r.max(-1)]))
  widths = cols1 - cols0
  counts = (rows1 - rows0) * widths
  prim = np.repeat(np.arange(len(counts)), counts)
  offset = np.arange(len(prim)) - np.repeat(np.cumsum(counts) - counts, counts)
  row = rows0[prim] + offset // np.maximum(widths[prim], 1)
  col = cols0[prim] + offset % np.maximum(widths[prim], 1)
  d = pixel_rays(camera, row.astype(np.float64), col.astype(np.float64))
  t = np.empty(len(prim))
  cap = prim < n_caps
  ci, ei = prim[cap], prim[~cap] - n_caps
  t[cap] = intersect_capsules(d[cap], scene.cap_a[ci], scene.cap_b[ci], scene.cap_r[ci])
  t[~cap] = intersect_ellipsoids(d[~cap], scene.ell_c[ei], scene.ell_axes[ei], scene.ell_r[ei])
  hit = np.isfinite(t)
  flat = (row * w + col)[hit]
  order = np.lexsort((t[hit], flat))
  first = np.ones(len(order), bool)
  first[1:] = flat[order][1:] != flat[order][:-1]
  nearest = np.nonzero(hit)[0][order[first]]
  pixel, idx, th, d = flat[order[first]], prim[nearest], t[nearest], d[nearest]

  point = th[:, None] * d
  normal, local = np.zeros_like(point), np.zeros_like(point)
  is_cap = idx < n_caps
  ci = idx[is_cap]
  a, b = scene.cap_a[ci], scene.cap_b[ci]
  length = np.maximum(np.linalg.norm(b - a, axis=-1), 1e-9)
  u = (b - a) / length[:, None]
  s = np.clip(_dot(point[is_cap] - a, u), 0, length)
  normal[is_cap] = point[is_cap] - a - s[:, None] * u
  local[is_cap, 1], local[is_cap, 2] = s / length, s
  ei = idx[~is_cap] - n_caps
  q = np.einsum("kji,kj->ki", scene.ell_axes[ei], point[~is_cap] - scene.ell_c[ei]) / scene.ell_r[ei]
  normal[~is_cap] = np.einsum("kij,kj->ki", scene.ell_axes[ei], q / scene.ell_r[ei])
  local[~is_cap] = q
  normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-12)
  depth = np.full(h * w, np.inf)
  depth[pixel] = th * d[:, 2]
  body = np.full(h * w, -1)
  body[pixel] = np.concatenate([scene.cap_body, scene.ell_body])[idx]
  part = np.concatenate([scene.cap_part, scene.ell_part])[idx]
  return Hits(depth.reshape(h, w), body.reshape(h, w), pixel, part, normal, local, d)


def albedo(hits: Hits, materials: list[dict], textured: bool, rng: np.random.Generator) -> np.ndarray:
  """[K, 3] surface colour in [0, 1] of the hit pixels from each body's garments."""
  part, body, local = hits.part, hits.body.ravel()[hits.pixel], hits.local
  colours = {k: np.stack([m[k] for m in materials])[body] for k in
             ("skin", "hair", "shirt", "shirt2", "trousers", "shoes")}
  flags = {k: np.array([m[k] for m in materials])[body] for k in
           ("shirt_pattern", "long_sleeves", "shorts", "stripe_period")}
  qx, qy, qz = local[:, 0], local[:, 1], local[:, 2]
  is_part = {name: part == PARTS.index(name) for name in PARTS}
  shirt = colours["shirt"]
  if textured:
    stripes = np.sin(2 * np.pi * np.where(is_part["chest"] | is_part["belly"], qy * 3.0,
                                          qz / flags["stripe_period"])) > 0
    checks = np.sin(9.0 * qx) * np.sin(9.0 * qy) > 0
    front = is_part["chest"] & (qz > 0.55) & (np.abs(qx) < 0.4) & (qy > -0.2) & (qy < 0.5)
    pattern = flags["shirt_pattern"]
    second = ((pattern == 1) & stripes) | ((pattern == 2) & checks) | ((pattern == 3) & (qz < 0)) | front
    shirt = np.where(second[:, None], colours["shirt2"], shirt)
  hair = is_part["head"] & ((qy > 0.35) | ((qz < -0.25) & (qy > -0.55)))
  sleeve = (is_part["upper_arm"] & (flags["long_sleeves"] | (qy < 0.5))) | (is_part["forearm"] & flags["long_sleeves"])
  shirt_parts = is_part["chest"] | sleeve | (is_part["belly"] & (qy > -0.15))
  trouser_parts = is_part["hips"] | is_part["thigh"] | (is_part["belly"] & (qy <= -0.15)) | (
      is_part["shin"] & ~flags["shorts"])
  colour = colours["skin"]
  colour = np.where(hair[:, None], colours["hair"], colour)
  colour = np.where(shirt_parts[:, None], shirt, colour)
  colour = np.where(trouser_parts[:, None], colours["trousers"], colour)
  colour = np.where(is_part["foot"][:, None], colours["shoes"], colour)
  if textured:  # fabric / skin grain
    colour = colour * (1.0 + 0.05 * rng.standard_normal((len(colour), 1)))
  return colour


def shade(hits: Hits, surface: np.ndarray, lighting: str, rng: np.random.Generator) -> np.ndarray:
  """[K, 3] lit colour of the hit pixels. `headlight`: Lambert with the light at the camera (flat synthetic
  look); `directional`: a random key light from above, ambient, a fill term and a weak specular highlight."""
  n, v = hits.normal, -hits.ray
  facing = np.clip(np.sum(n * v, -1), 0, 1)
  if lighting == "headlight":
    return surface * (0.4 + 0.6 * facing)[:, None]
  azimuth, elevation = rng.uniform(-np.pi, np.pi), rng.uniform(0.3, 1.2)
  light = np.array([np.cos(elevation) * np.sin(azimuth), -np.sin(elevation), -np.cos(elevation) * np.cos(azimuth)])
  diffuse = np.clip(n @ light, 0, 1)
  reflect = 2 * (n @ light)[:, None] * n - light
  specular = np.clip(np.sum(reflect * v, -1), 0, 1) ** 12
  tint = 1.0 + rng.uniform(-0.08, 0.08, 3)
  level = rng.uniform(0.25, 0.4) + rng.uniform(0.55, 0.8) * diffuse + 0.15 * facing
  return surface * level[:, None] * tint + 0.12 * specular[:, None]
