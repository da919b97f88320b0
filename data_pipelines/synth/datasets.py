"""The four generated datasets: sample subjects, poses, cameras and placements, then turn render results into
labels and annotation files. Each `plan_*` returns (jobs, finish) — `finish(results)` writes the annotations
and returns the generator's own in-memory labels (`Instances`)."""
from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from data_pipelines.readers.scanava import NUM_TRAIN_SCANS, SCANS
from data_pipelines.synth import bodies, poses, render, writers
from data_pipelines.synth.domains import Domain, PosePrior
from data_pipelines.synth.scenes import Job, build_scene, make_camera, place, rng_for, sample_materials

# SPEC §4.7's 41 scans in their fixed order (the last 5 are the test split): shared with the reader.
SCAN_NAMES = SCANS
H36M_TRAIN_SUBJECTS, H36M_TEST_SUBJECTS = (1, 5, 6, 7, 8), (9, 11)
H36M_FPS = 50.0

COCO_SKELETON = ((16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
                 (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7))
MPII_SKELETON = ((1, 2), (2, 3), (3, 7), (8, 13), (13, 12), (12, 11), (6, 5), (5, 4), (4, 7), (8, 14), (14, 15),
                 (15, 16), (7, 8), (8, 9), (9, 10))


@dataclasses.dataclass(frozen=True)
class Sizes:
  """How much of each dataset a preset generates."""
  scanava_scans: tuple[int, ...]      # indices into SCAN_NAMES (< 36 train, >= 36 test)
  scanava_train_images: int           # per train scan
  scanava_test_images: int            # per test scan
  h36m_actions: tuple[int, ...]       # action numbers 2..16
  h36m_subactions: tuple[int, ...]
  h36m_cameras: tuple[int, ...]       # camera indices 1..4
  h36m_train_frames: int              # frames per train sequence (multiples of 320: all survive %5)
  h36m_test_frames: int               # frames per test sequence (multiples of 64; ~1 in 10 survive %640)
  coco_images: int
  mpii_images: int


PRESETS = {
    "tiny": Sizes(scanava_scans=(0, 12, 24, 36, 40), scanava_train_images=4, scanava_test_images=6,
                  h36m_actions=(2, 14), h36m_subactions=(1,), h36m_cameras=(1, 2), h36m_train_frames=2,
                  h36m_test_frames=2, coco_images=12, mpii_images=8),
    "small": Sizes(scanava_scans=tuple(range(41)), scanava_train_images=80, scanava_test_images=60,
                   h36m_actions=tuple(range(2, 17)), h36m_subactions=(1, 2), h36m_cameras=(1, 2, 3, 4),
                   h36m_train_frames=3, h36m_test_frames=3, coco_images=1600, mpii_images=800),
    "full": Sizes(scanava_scans=tuple(range(41)), scanava_train_images=400, scanava_test_images=300,
                  h36m_actions=tuple(range(2, 17)), h36m_subactions=(1, 2), h36m_cameras=(1, 2, 3, 4),
                  h36m_train_frames=12, h36m_test_frames=12, coco_images=8000, mpii_images=4000),
}


@dataclasses.dataclass
class Instances:
  """The generator's own labels of one dataset, one row per person instance, in the dataset's joint order."""
  name: str
  joint_keys: tuple[str, ...]  # bodies.*_JOINTS
  img_path: np.ndarray         # [N] str, relative to the output folder
  image_id: np.ndarray         # [N] int64
  split: np.ndarray            # [N] str: train | test
  group: np.ndarray            # [N] int: scan index (ScanAva), action index (H36M), −1
  joints_2d: np.ndarray        # [N, J, 2] float64 px, as written
  joints_vis: np.ndarray       # [N, J] float64, the written flag (COCO v, MPII v, 1 for 3D sets)
  joints_cam: np.ndarray       # [N, J, 3] float64 mm, camera frame x right / y down / z forward (0 for 2D)
  bbox: np.ndarray             # [N, 4] float64 x, y, w, h px of the visible person mask
  f: np.ndarray                # [N, 2]
  c: np.ndarray                # [N, 2]
  valid: np.ndarray            # [N] bool: an instance the official readers keep (area > 0, keypoints > 0)

  def __len__(self) -> int:
    return len(self.img_path)


def sample_pose(prior: PosePrior, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
  """n independent poses of any prior kind, yaw uniform (lab actions at random times)."""
  if prior.kind == "narrow":
    return poses.sample_narrow(n, rng, prior.spread)
  if prior.kind == "wild":
    return poses.sample_wild(n, rng, prior.spread)
  if prior.kind != "actions":
    raise ValueError(f"unknown pose prior '{prior.kind}'")
  a = len(poses.ANGLES)
  pose = poses.sample_actions(rng.integers(0, len(poses.ACTIONS), n), rng.uniform(0, 60, n),
                              rng.standard_normal((n, a)), rng.uniform(0, 2 * np.pi, n),
                              rng.standard_normal((n, a)), prior.spread)
  pose["yaw"] = rng.uniform(-180, 180, n)
  return pose


def _take(tree: dict, rows) -> dict:
  return {k: v[rows] for k, v in tree.items()}


def _appearance_background(domain: Domain, seed: int, rng: np.random.Generator) -> tuple:
  kind = domain.appearance.background
  if kind == "plain":
    return ("plain", rng.uniform(0.35, 0.95) * np.ones(3) * rng.uniform(0.85, 1.0, 3))
  return ("lab", seed) if kind == "lab" else ("clutter",)


def _orbit_camera(domain: Domain, rng: np.random.Generator) -> render.Camera:
  """One camera facing a person at the world origin from −y (the person's yaw does the orbiting)."""
  cam = domain.camera
  size = cam.image_size[int(rng.integers(0, len(cam.image_size)))]
  distance, height, look = rng.uniform(*cam.distance_m), rng.uniform(*cam.height_m), rng.uniform(*cam.look_at_m)
  focal = rng.uniform(*cam.focal_scale) * max(size)
  return make_camera((0.0, -distance, height), (0.0, 0.0, look), cam.roll_deg * rng.standard_normal(), focal, size)


def plan_scanava(domain: Domain, sizes: Sizes, seed: int, out_dir: str):
  """ScanAva+ (SPEC §4.7): one avatar per scan (identity from the scan name), a camera orbiting it."""
  scans = sizes.scanava_scans
  counts = [sizes.scanava_train_images if s < NUM_TRAIN_SCANS else sizes.scanava_test_images for s in scans]
  people = sorted({re.split(r"[_-]", SCAN_NAMES[s])[2] for s in scans})
  person_dims = bodies.sample_dimensions(domain.proportions, len(people), rng_for(seed, "scanava-people"))
  scan_of = np.repeat(np.arange(len(scans)), counts)
  person_of = np.array([people.index(re.split(r"[_-]", SCAN_NAMES[scans[k]])[2]) for k in scan_of], int)
  looks = [sample_materials(1, domain.appearance.clothing, rng_for(seed, "scanava-look", s))[0] for s in scans]
  rng = rng_for(seed, "scanava-scene")
  n = len(scan_of)
  dims = _take(person_dims, person_of)
  points, frames = bodies.forward_kinematics(sample_pose(domain.pose, n, rng), dims)
  points, frames = place(points, frames, rng.uniform(-0.1, 0.1, (n, 2)))
  prims = bodies.primitives(points, frames, dims)
  joints_world = bodies.labels(points, frames, dims, domain.skeleton, bodies.SCANAVA_JOINTS)
  backgrounds = [_appearance_background(domain, seed, rng_for(seed, "scanava-backdrop", s)) for s in scans]
  cameras = [_orbit_camera(domain, rng) for _ in range(n)]
  image_number = np.concatenate([np.arange(1, c + 1) for c in counts])
  paths = [writers.scanava_image_path(SCAN_NAMES[scans[k]], int(j)) for k, j in zip(scan_of, image_number)]
  joints_cam = np.stack([cam.to_camera(j) for cam, j in zip(cameras, joints_world)])
  jobs = [Job(os.path.join(out_dir, paths[i]), cameras[i], build_scene(cameras[i], prims, [i]),
              [looks[scan_of[i]]], domain.appearance, backgrounds[scan_of[i]], (seed, 1, i), joints_cam[i][None])
          for i in range(n)]

  def finish(results: list[dict]) -> Instances:
    uv = np.stack([cam.project(j) for cam, j in zip(cameras, joints_cam)])
    boxes = np.nan_to_num(np.stack([r["bbox"][0] for r in results]))
    f, c = np.stack([cam.focal for cam in cameras]), np.stack([cam.centre for cam in cameras])
    flag = np.ones(uv.shape[:2] + (1,))
    renderer_frame = joints_cam * np.array([1.0, -1.0, -1.0])  # x right, y up, z backward (metres)
    writers.write_scanava(out_dir, [writers.scanava_record(paths[i], np.concatenate([uv[i], flag[i]], -1),
                                                           renderer_frame[i], boxes[i], f[i], c[i],
                                                           (cameras[i].height, cameras[i].width))
                                    for i in range(n)])
    scan_index = np.array(scans)[scan_of]
    return Instances("ScanAva", bodies.SCANAVA_JOINTS, np.array(paths), np.arange(n, dtype=np.int64),
                     np.where(scan_index < NUM_TRAIN_SCANS, "train", "test"), scan_index, uv, flag[..., 0],
                     joints_cam * 1000.0, boxes, f, c, np.ones(n, bool))

  return jobs, finish


def _h36m_rig(domain: Domain, seed: int, subject: int) -> dict[int, render.Camera]:
  """Four studio cameras at the room's corners, slightly re-calibrated per subject (rounded as written)."""
  rig, jitter = rng_for(seed, "h36m-rig"), rng_for(seed, "h36m-rig", subject)
  cam = domain.camera
  size = cam.image_size[0]
  cameras = {}
  for k in range(1, 5):
    azimuth = np.deg2rad(45 + 90 * (k - 1) + 4 * rig.standard_normal())
    radius, height = rig.uniform(*cam.distance_m), rig.uniform(*cam.height_m)
    position = np.array([radius * np.cos(azimuth), radius * np.sin(azimuth), height])
    target = np.array([*(0.15 * rig.standard_normal(2)), rig.uniform(*cam.look_at_m)])
    roll, focal = cam.roll_deg * rig.standard_normal(), rig.uniform(*cam.focal_scale) * max(size)
    camera = make_camera(position + 0.02 * jitter.standard_normal(3), target + 0.02 * jitter.standard_normal(3),
                         roll, focal, size, 1.5 * rig.standard_normal(2))
    cameras[k] = render.Camera(camera.rotation, np.round(camera.translation * 1000, 3) / 1000,
                               np.round(camera.focal, 3), np.round(camera.centre, 3), size[0], size[1])
  return cameras


def plan_h36m(domain: Domain, sizes: Sizes, seed: int, out_dir: str):
  """Human3.6M (SPEC §4.2): 7 subjects, 4 cameras, sequences of the 15 actions with motion in time."""
  subjects = H36M_TRAIN_SUBJECTS + H36M_TEST_SUBJECTS
  subject_dims = bodies.sample_dimensions(domain.proportions, len(subjects), rng_for(seed, "h36m-subjects"))
  looks = sample_materials(len(subjects), domain.appearance.clothing, rng_for(seed, "h36m-looks"))
  rigs = {s: _h36m_rig(domain, seed, s) for s in subjects}
  a = len(poses.ANGLES)
  frame_rows = []  # (subject index, action, subaction, frame_idx, style, phase, yaw0, centre, jitter)
  test_sequence = 0
  for si, subject in enumerate(subjects):
    for action in sizes.h36m_actions:
      for subaction in sizes.h36m_subactions:
        rng = rng_for(seed, "h36m-seq", subject, action, subaction)
        style, phase, yaw0 = rng.standard_normal(a), rng.uniform(0, 2 * np.pi), rng.uniform(-180, 180)
        centre = rng.uniform(-0.5, 0.5, 2)
        if subject in H36M_TRAIN_SUBJECTS:
          frames_idx = [320 * k for k in range(sizes.h36m_train_frames)]
        else:
          frames_idx = [64 * (5 * k + test_sequence % 10) for k in range(sizes.h36m_test_frames)]
          test_sequence += 1
        for frame in frames_idx:
          frame_rows.append((si, action, subaction, frame, style, phase, yaw0, centre, rng.standard_normal(a)))
  si, action, subaction, frame = (np.array([r[k] for r in frame_rows]) for k in range(4))
  style, phase, yaw0, centre, jitter = (np.array([r[k] for r in frame_rows]) for k in range(4, 9))
  time_s = frame / H36M_FPS
  pose = poses.sample_actions(action - 2, time_s, style, phase, jitter, domain.pose.spread)
  walking = np.isin(action - 2, [i for i, (name, _, _) in enumerate(poses.ACTIONS) if name in poses.WALKING_ACTIONS])
  circle_angle = phase + 1.25 * time_s
  position = np.where(walking[:, None], 0.8 * np.stack([np.cos(circle_angle), np.sin(circle_angle)], -1),
                      centre + 0.1 * jitter[:, :2])
  pose["yaw"] = np.where(walking, np.rad2deg(circle_angle + np.pi), yaw0 + 25 * np.sin(0.3 * time_s + phase))
  dims = _take(subject_dims, si)
  points, frames = bodies.forward_kinematics(pose, dims)
  points, frames = place(points, frames, position)
  prims = bodies.primitives(points, frames, dims)
  joints_world_mm = np.round(bodies.labels(points, frames, dims, domain.skeleton, bodies.H36M_JOINTS) * 1000, 3)

  images, jobs = [], []  # images: (frame row, camera index)
  for row in range(len(frame_rows)):
    for cam_idx in sizes.h36m_cameras:
      images.append((row, cam_idx))
  order = sorted(range(len(images)), key=lambda i: (si[images[i][0]], action[images[i][0]],
                                                   subaction[images[i][0]], images[i][1], frame[images[i][0]]))
  images = [images[i] for i in order]
  background = _appearance_background(domain, seed, rng_for(seed, "h36m-backdrop"))
  paths, cams, joints_cam = [], [], []
  for image_index, (row, cam_idx) in enumerate(images):
    subject = subjects[si[row]]
    camera = rigs[subject][cam_idx]
    cam_mm = joints_world_mm[row] @ camera.rotation.T + np.round(camera.translation * 1000, 3)
    paths.append("Human36M/images/" + writers.h36m_file_name(subject, int(action[row]), int(subaction[row]),
                                                              cam_idx, int(frame[row])))
    cams.append(camera)
    joints_cam.append(cam_mm)
    jobs.append(Job(os.path.join(out_dir, paths[-1]), camera, build_scene(camera, prims, [row]), [looks[si[row]]],
                    domain.appearance, background, (seed, 2, image_index), cam_mm[None] / 1000.0))
  joints_cam = np.stack(joints_cam)

  def finish(results: list[dict]) -> Instances:
    boxes = np.nan_to_num(np.stack([r["bbox"][0] for r in results]))
    per_subject = {s: ([], [], {}) for s in subjects}
    for image_id, (row, cam_idx) in enumerate(images, start=1):
      subject = subjects[si[row]]
      file_images, file_annotations, joints = per_subject[subject]
      size = (cams[image_id - 1].width, cams[image_id - 1].height)
      file_images.append({"id": image_id, "file_name": paths[image_id - 1][len("Human36M/images/"):],
                          "width": size[0], "height": size[1], "subject": subject, "action_idx": int(action[row]),
                          "subaction_idx": int(subaction[row]), "cam_idx": cam_idx, "frame_idx": int(frame[row])})
      file_annotations.append({"id": image_id, "image_id": image_id, "bbox": boxes[image_id - 1].tolist()})
      joints.setdefault(str(action[row]), {}).setdefault(str(subaction[row]), {})[str(frame[row])] = (
          joints_world_mm[row].tolist())
    for subject, (file_images, file_annotations, joints) in per_subject.items():
      cameras = {str(k): {"R": c.rotation.tolist(), "t": np.round(c.translation * 1000, 3).tolist(),
                          "f": c.focal.tolist(), "c": c.centre.tolist()} for k, c in rigs[subject].items()}
      writers.write_h36m_subject(out_dir, subject, file_images, file_annotations, cameras, joints)
    rows = np.array([row for row, _ in images])
    uv = np.stack([c.project(j) for c, j in zip(cams, joints_cam)])
    n = len(images)
    return Instances("Human36M", bodies.H36M_JOINTS, np.array(paths), np.arange(1, n + 1, dtype=np.int64),
                     np.where(np.isin(np.array(subjects)[si[rows]], H36M_TRAIN_SUBJECTS), "train", "test"),
                     action[rows] - 2, uv, np.ones(uv.shape[:2]), joints_cam, boxes,
                     np.stack([c.focal for c in cams]), np.stack([c.centre for c in cams]), np.ones(n, bool))

  return jobs, finish


def plan_wild(name: str, domain: Domain, num_images: int, seed: int, out_dir: str):
  """MSCOCO (SPEC §4.5) or MPII (§4.6): 1–3 people per image in front of clutter, seen by a random camera."""
  keys = bodies.COCO_JOINTS if name == "MSCOCO" else bodies.MPII_JOINTS
  rng = rng_for(seed, name, "scene")
  people = rng.choice([1, 2, 3], num_images, p=[0.6, 0.3, 0.1] if name == "MSCOCO" else [0.75, 0.25, 0.0])
  image_of = np.repeat(np.arange(num_images), people)
  n = len(image_of)
  dims = bodies.sample_dimensions(domain.proportions, n, rng)
  looks = sample_materials(n, domain.appearance.clothing, rng)
  points0, frames0 = bodies.forward_kinematics(sample_pose(domain.pose, n, rng), dims)
  cameras, depth = [], np.zeros(num_images)
  for i in range(num_images):
    camera = _orbit_camera(domain, rng)
    cameras.append(camera)
    depth[i] = np.linalg.norm(camera.rotation.T @ -camera.translation)
  joints0 = bodies.labels(*place(points0, frames0, np.zeros((n, 2))), dims, domain.skeleton, keys)
  position = np.zeros((n, 2))
  todo = np.arange(n)
  for attempt in range(12):  # rejection: at least 70 % of the joints inside the image
    ahead = depth[image_of[todo]] * rng.uniform(0.6, 1.4, len(todo)) - depth[image_of[todo]]
    lateral = rng.uniform(-0.4, 0.4, len(todo)) * depth[image_of[todo]] * (attempt < 11)
    position[todo] = np.stack([lateral, ahead * (attempt < 11)], -1)
    ok = []
    for p in todo:
      cam = cameras[image_of[p]]
      joints_cam = cam.to_camera(joints0[p] + np.array([*position[p], 0.0]))
      uv = cam.project(joints_cam)
      inside = (uv[:, 0] >= 0) & (uv[:, 0] <= cam.width - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= cam.height - 1)
      ok.append(joints_cam[:, 2].min() > 0.5 and inside.mean() >= 0.7)
    todo = todo[~np.array(ok, bool)]
    if not len(todo):
      break
  points, frames = place(points0, frames0, position)
  prims = bodies.primitives(points, frames, dims)
  joints_world = bodies.labels(points, frames, dims, domain.skeleton, keys)
  folder = "train2017/{:012d}.jpg" if name == "MSCOCO" else "images/{:09d}.jpg"
  paths = [f"{name}/" + folder.format(i + 1) for i in range(num_images)]
  members = [np.nonzero(image_of == i)[0] for i in range(num_images)]
  joints_cam = [np.stack([cameras[i].to_camera(joints_world[p]) for p in members[i]]) for i in range(num_images)]
  jobs = [Job(os.path.join(out_dir, paths[i]), cameras[i], build_scene(cameras[i], prims, list(members[i])),
              [looks[p] for p in members[i]], domain.appearance, ("clutter",), (seed, 3 if name == "MSCOCO" else 4, i),
              joints_cam[i]) for i in range(num_images)]

  def finish(results: list[dict]) -> Instances:
    images, annotations = [], []
    uv_all, vis_all, boxes_all, valid_all = [], [], [], []
    for i, (camera, result) in enumerate(zip(cameras, results)):
      # COCO file names are relative to train2017/, the 3DMPPE MPII ones to the MPII folder (SPEC §4.5, §4.6).
      file_name = os.path.basename(paths[i]) if name == "MSCOCO" else paths[i][len(name) + 1:]
      images.append({"id": i + 1, "file_name": file_name, "width": camera.width, "height": camera.height})
      uv = np.round(camera.project(joints_cam[i]), 2)
      if name == "MSCOCO":
        vis = np.where(result["visible"], 2.0, np.where(result["in_image"], 1.0, 0.0))
      else:
        vis = result["in_image"].astype(np.float64)
      uv = np.where(vis[..., None] > 0, uv, 0.0)
      for b in range(len(members[i])):
        box, area = np.nan_to_num(result["bbox"][b]), float(result["area"][b])
        num_keypoints = int((vis[b] > 0).sum())
        annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                            "keypoints": np.concatenate([uv[b], vis[b][:, None]], -1).reshape(-1).tolist(),
                            "num_keypoints": num_keypoints, "area": area, "bbox": box.tolist()})
        uv_all.append(uv[b]), vis_all.append(vis[b]), boxes_all.append(box)
        valid_all.append(area > 0 and num_keypoints > 0)
    file = "person_keypoints_train2017.json" if name == "MSCOCO" else "train.json"
    writers.write_coco_style(os.path.join(out_dir, name, "annotations", file), images, annotations,
                             keys, COCO_SKELETON if name == "MSCOCO" else MPII_SKELETON)
    f = np.stack([cameras[k].focal for k in image_of])
    c = np.stack([cameras[k].centre for k in image_of])
    return Instances(name, keys, np.array(paths)[image_of], image_of.astype(np.int64) + 1, np.full(n, "train"),
                     np.full(n, -1), np.stack(uv_all), np.stack(vis_all), np.zeros((n, len(keys), 3)),
                     np.stack(boxes_all), f, c, np.array(valid_all))

  return jobs, finish
