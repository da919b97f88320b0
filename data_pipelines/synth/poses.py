"""Pose priors over joint angles (degrees): a narrow synthetic prior, 15 H36M-like actions with motion, a wild one.

A pose is a dict angle name → [N] degrees (ANGLES). `narrow` (the source) is standing with moderate arm motion;
`actions` (the lab target) gives each of the 15 Human3.6M actions its own mean posture plus periodic motion in
time, so frames of one sequence are related and per-action errors differ; `wild` (MSCOCO/MPII) mixes the lab
actions with a broad prior (running, bending, arms overhead). Angles are clipped to JOINT_LIMITS.
"""
from __future__ import annotations

import numpy as np

SIDE_ANGLES = ("hip_flex", "hip_abd", "hip_twist", "knee", "sh_flex", "sh_abd", "sh_twist", "elbow")
ANGLES = (("yaw", "pitch", "roll", "spine_flex", "spine_side", "spine_twist", "neck_flex", "neck_side", "neck_turn")
          + tuple(f"{s}_{a}" for s in ("l", "r") for a in SIDE_ANGLES))

JOINT_LIMITS = {
    "pitch": (-40, 40), "roll": (-25, 25), "spine_flex": (-30, 80), "spine_side": (-40, 40),
    "spine_twist": (-45, 45), "neck_flex": (-40, 50), "neck_side": (-30, 30), "neck_turn": (-70, 70),
    "hip_flex": (-40, 130), "hip_abd": (-20, 80), "hip_twist": (-40, 40), "knee": (0, 150),
    "sh_flex": (-60, 180), "sh_abd": (-30, 170), "sh_twist": (-60, 60), "elbow": (0, 150),
}


def _both(angle: str, mean: float, std: float) -> dict:
  return {f"l_{angle}": (mean, std), f"r_{angle}": (mean, std)}


# Standing human, the base of every prior: angle -> (mean, std) in degrees.
NEUTRAL = {
    "yaw": (0, 0), "pitch": (0, 2), "roll": (0, 2), "spine_flex": (4, 4), "spine_side": (0, 3),
    "spine_twist": (0, 6), "neck_flex": (3, 6), "neck_side": (0, 4), "neck_turn": (0, 12),
    **_both("hip_flex", 4, 6), **_both("hip_abd", 4, 3), **_both("hip_twist", 0, 6), **_both("knee", 6, 5),
    **_both("sh_flex", 8, 12), **_both("sh_abd", 12, 8), **_both("sh_twist", 0, 12), **_both("elbow", 20, 12),
}

# The source: standing and mild arm / leg motion only (no sitting, bending or arms overhead).
NARROW = {**NEUTRAL, **_both("hip_flex", 5, 12), **_both("knee", 8, 10), **_both("sh_flex", 10, 22),
          **_both("sh_abd", 20, 16), **_both("elbow", 25, 20), "spine_flex": (4, 5), "neck_turn": (0, 15)}

# The wild prior's broad half (sports, bending, crouching, arms overhead).
BROAD = {
    "yaw": (0, 0), "pitch": (3, 10), "roll": (0, 6), "spine_flex": (12, 22), "spine_side": (0, 12),
    "spine_twist": (0, 18), "neck_flex": (5, 15), "neck_side": (0, 10), "neck_turn": (0, 30),
    **_both("hip_flex", 25, 40), **_both("hip_abd", 10, 14), **_both("hip_twist", 0, 15), **_both("knee", 35, 40),
    **_both("sh_flex", 35, 55), **_both("sh_abd", 35, 40), **_both("sh_twist", 0, 25), **_both("elbow", 45, 40),
}

_WALK = (  # (angle, amplitude, frequency Hz, phase rad, rectified): a gait cycle
    ("l_hip_flex", 25, 0.9, 0.0, False), ("r_hip_flex", 25, 0.9, np.pi, False),
    ("l_knee", 40, 0.9, -1.2, True), ("r_knee", 40, 0.9, np.pi - 1.2, True),
    ("l_sh_flex", 18, 0.9, np.pi, False), ("r_sh_flex", 18, 0.9, 0.0, False),
)
_SIT = {**_both("hip_flex", 88, 8), **_both("knee", 88, 10), **_both("hip_abd", 8, 5), "spine_flex": (8, 6)}

# The 15 Human3.6M actions (action number = index + 2): posture overrides and periodic motion.
ACTIONS: tuple[tuple[str, dict, tuple], ...] = (
    ("Directions", {"r_sh_flex": (70, 15), "r_elbow": (15, 10), "neck_turn": (15, 15)},
     (("r_sh_abd", 20, 0.3, 0.0, False), ("neck_turn", 20, 0.2, 1.0, False))),
    ("Discussion", {**_both("sh_flex", 30, 15), **_both("elbow", 70, 20)},
     (("l_elbow", 25, 0.5, 0.0, False), ("r_elbow", 25, 0.4, 2.0, False), ("spine_twist", 10, 0.3, 0.5, False))),
    ("Eating", {**_SIT, **_both("sh_flex", 25, 10), **_both("elbow", 105, 15)},
     (("r_elbow", 25, 0.4, 0.0, False), ("neck_flex", 10, 0.4, 0.0, False))),
    ("Greeting", {"r_sh_abd": (120, 15), "r_elbow": (60, 20), "r_sh_flex": (20, 15)},
     (("r_elbow", 30, 1.0, 0.0, False), ("spine_flex", 10, 0.3, 1.0, False))),
    ("Phoning", {"r_sh_flex": (25, 10), "r_sh_abd": (30, 10), "r_elbow": (138, 8), "neck_side": (10, 5)},
     (("l_hip_flex", 10, 0.3, 0.0, False), ("r_hip_flex", 10, 0.3, np.pi, False))),
    ("Posing", {**_both("sh_abd", 60, 40), **_both("elbow", 50, 40), **_both("hip_abd", 15, 10),
                "spine_side": (0, 12), "pitch": (0, 6)},
     (("l_sh_flex", 30, 0.2, 0.0, False), ("r_sh_abd", 30, 0.25, 1.0, False))),
    ("Purchases", {"spine_flex": (25, 12), **_both("sh_flex", 45, 20), **_both("elbow", 40, 20)},
     (("spine_flex", 15, 0.3, 0.0, False), ("r_sh_flex", 25, 0.4, 1.0, False))),
    ("Sitting", {**_SIT, **_both("sh_flex", 30, 15), **_both("elbow", 60, 20)},
     (("spine_twist", 12, 0.2, 0.0, False), ("l_elbow", 20, 0.3, 1.0, False))),
    ("SittingDown", {**_both("hip_flex", 100, 15), **_both("knee", 110, 15), "spine_flex": (35, 12),
                     **_both("sh_flex", 40, 15), **_both("elbow", 70, 20)},
     (("spine_flex", 15, 0.2, 0.0, False), ("l_sh_flex", 20, 0.3, 0.0, False))),
    ("Smoking", {"r_sh_flex": (30, 10), "r_elbow": (125, 12), **_both("hip_abd", 7, 3)},
     (("r_elbow", 20, 0.25, 0.0, False), ("r_sh_flex", 15, 0.25, 0.0, False))),
    ("Photo", {**_both("sh_flex", 75, 10), **_both("elbow", 120, 10), **_both("sh_abd", 25, 8),
               "neck_flex": (-5, 5)},
     (("spine_twist", 15, 0.2, 0.0, False), ("pitch", 5, 0.2, 1.0, False))),
    ("Waiting", {**_both("hip_abd", 8, 3), **_both("elbow", 35, 20), "spine_side": (5, 6)},
     (("roll", 5, 0.15, 0.0, False), ("neck_turn", 25, 0.15, 0.0, False))),
    ("Walking", {}, _WALK),
    ("WalkDog", {"spine_flex": (15, 6), "r_sh_flex": (40, 10), "r_elbow": (30, 10)}, _WALK[:4]),
    ("WalkTogether", {"neck_turn": (25, 10)}, _WALK),
)
WALKING_ACTIONS = ("Walking", "WalkDog", "WalkTogether")


def sample_prior(table: dict, n: int, rng: np.random.Generator, spread: float = 1.0) -> dict[str, np.ndarray]:
  """Independent Gaussian draws of every angle: {name: [n] degrees} (yaw 0; unclipped)."""
  return {a: table[a][0] + spread * table[a][1] * rng.standard_normal(n) for a in ANGLES}


def action_table(action: int) -> dict:
  """(mean, std) table of action index 0..14."""
  return {**NEUTRAL, **ACTIONS[action][1]}


def action_motion(action: int, time_s: np.ndarray, phase: np.ndarray) -> dict[str, np.ndarray]:
  """Periodic offsets {angle: [n] degrees} of action index `action` at times `time_s` [n] with per-sequence phase."""
  offsets = {}
  for angle, amplitude, frequency, phase0, rectified in ACTIONS[action][2]:
    wave = np.sin(2 * np.pi * frequency * time_s + phase0 + phase)
    offsets[angle] = offsets.get(angle, 0.0) + amplitude * (np.maximum(wave, 0.0) if rectified else wave)
  return offsets


def clip_to_limits(pose: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  out = dict(pose)
  for name, value in pose.items():
    key = name[2:] if name[:2] in ("l_", "r_") else name
    if key in JOINT_LIMITS:
      out[name] = np.clip(value, *JOINT_LIMITS[key])
  return out


def sample_narrow(n: int, rng: np.random.Generator, spread: float = 1.0) -> dict[str, np.ndarray]:
  """The source prior, yaw uniform over the full circle. Returns {angle: [n] degrees}."""
  pose = sample_prior(NARROW, n, rng, spread)
  pose["yaw"] = rng.uniform(-180, 180, n)
  return clip_to_limits(pose)


def sample_actions(actions: np.ndarray, time_s: np.ndarray, style: np.ndarray, phase: np.ndarray,
                   jitter: np.ndarray, spread: float = 1.0) -> dict[str, np.ndarray]:
  """Lab poses. actions [n] int 0..14; time_s [n] s; style [n, A] per-sequence N(0,1) draws (fixed over a
  sequence); phase [n] rad; jitter [n, A] per-frame N(0,1) draws (weight 0.3). Yaw is left at 0 (the caller
  turns the body). Returns {angle: [n] degrees}."""
  pose = {a: np.zeros(len(actions)) for a in ANGLES}
  for action in np.unique(actions):
    rows = actions == action
    table = action_table(int(action))
    motion = action_motion(int(action), time_s[rows], phase[rows])
    for k, angle in enumerate(ANGLES):
      mean, std = table[angle]
      pose[angle][rows] = (mean + spread * std * (style[rows, k] + 0.3 * jitter[rows, k])
                           + motion.get(angle, 0.0))
  return clip_to_limits(pose)


def sample_wild(n: int, rng: np.random.Generator, spread: float = 1.0) -> dict[str, np.ndarray]:
  """MSCOCO/MPII prior: 40 % lab actions at random times, 60 % the broad prior; yaw uniform."""
  from_actions = rng.random(n) < 0.4
  actions = rng.integers(0, len(ACTIONS), n)
  lab = sample_actions(actions, rng.uniform(0, 60, n), rng.standard_normal((n, len(ANGLES))),
                       rng.uniform(0, 2 * np.pi, n), rng.standard_normal((n, len(ANGLES))), spread)
  broad = clip_to_limits(sample_prior(BROAD, n, rng, spread))
  pose = {a: np.where(from_actions, lab[a], broad[a]) for a in ANGLES}
  pose["yaw"] = rng.uniform(-180, 180, n)
  return pose
