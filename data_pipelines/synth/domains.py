"""The switchable domain settings of the embedded dataset: each field of `Domain` is one documented gap.

A domain bundles five independent settings, so each gap between the synthetic source (ScanAva+-like) and the
real-looking targets (Human3.6M-like lab, MSCOCO/MPII-like wild) can be closed on its own: `close_gaps(SOURCE,
LAB, ("appearance",))` gives a source whose images look like the lab's while everything else stays synthetic.

* appearance: clothing texture, background, lighting, blur, noise, JPEG quality, foreground occluders;
* skeleton: where the labelled joints sit on the same body (head top vs upper head, ankle centre vs back of the
  heel, hip and shoulder width conventions; SPEC §4.9 "known semantic mismatches", paper §4.4);
* proportions: the prior over body dimensions (metres) of the subjects/scans;
* pose: the pose prior (`narrow` standing/arm motions, `actions` = 15 H36M-like actions, `wild` = broad);
* camera: distance, height, look-at height, focal length and image size.

`widen_gaps(LAB, ("appearance",))` goes the other way: the real-looking domains get a harsher setting than the
default (a dark, low-contrast, warm-cast exposure), so that the appearance gap costs a model trained on the source
measurable accuracy (docs/results/widened_appearance).
"""
from __future__ import annotations

import dataclasses

GAPS = ("appearance", "skeleton", "proportions", "pose", "camera")


@dataclasses.dataclass(frozen=True)
class Appearance:
  clothing: str                       # "flat" (one colour per garment) | "textured" (stripes, checks, fabric noise)
  background: str                     # "plain" | "lab" (3D floor + walls, fixed per studio) | "clutter" (random 2D)
  lighting: str                       # "headlight" (light at the camera) | "directional" (random key light)
  blur_sigma_px: tuple[float, float]  # Gaussian blur sigma range; (0, 0) = crisp aliased edges
  noise_std: tuple[float, float]      # additive sensor noise range, grey levels of 255
  jpeg_quality: int
  occluder_prob: float                # probability of one foreground occluder (2D) per image
  tone: str = "neutral"               # exposure/tone curve (appearance.TONES): "neutral" | "dim"


@dataclasses.dataclass(frozen=True)
class SkeletonConvention:
  head: str            # "top" (top of the skull) | "upper" (H36M: between head centre and top)
  ankle: str           # "centre" (ankle joint centre) | "heel" (H36M: back of the heel)
  hip_scale: float     # hip label = pelvis + hip_scale · (hip joint centre − pelvis)
  shoulder: str        # "joint" (gleno-humeral centre) | "acromion" (outer top of the shoulder)


@dataclasses.dataclass(frozen=True)
class Proportions:
  """Means of the body dimensions (metres) and their spread across subjects."""
  hip_half: float       # pelvis → hip joint centre (lateral)
  thigh: float
  shin: float
  spine_lower: float    # pelvis → Torso (spine) joint
  spine_upper: float    # Torso → Thorax (neck base)
  neck: float           # Thorax → upper neck (skull base)
  head: float           # half height of the head ellipsoid
  shoulder_half: float  # Thorax → shoulder joint centre (lateral)
  upper_arm: float
  forearm: float
  girth: float          # multiplier of every limb and torso radius
  stature_cv: float     # per-subject overall scale, coefficient of variation
  dim_cv: float         # per-subject independent per-dimension variation


@dataclasses.dataclass(frozen=True)
class PosePrior:
  kind: str            # "narrow" | "actions" | "wild"
  spread: float = 1.0  # multiplier of every angle's standard deviation


@dataclasses.dataclass(frozen=True)
class CameraPrior:
  image_size: tuple[tuple[int, int], ...]  # (width, height) choices
  focal_scale: tuple[float, float]         # focal length / max(width, height), range
  distance_m: tuple[float, float]          # camera → person (ground distance)
  height_m: tuple[float, float]            # camera height above the floor
  look_at_m: tuple[float, float]           # height of the point the camera looks at
  roll_deg: float                          # std of the in-plane camera roll


@dataclasses.dataclass(frozen=True)
class Domain:
  name: str
  is_synthetic: bool
  appearance: Appearance
  skeleton: SkeletonConvention
  proportions: Proportions
  pose: PosePrior
  camera: CameraPrior


SOURCE = Domain(
    name="ScanAva", is_synthetic=True,
    appearance=Appearance(clothing="flat", background="plain", lighting="headlight", blur_sigma_px=(0.0, 0.0),
                          noise_std=(0.0, 0.0), jpeg_quality=95, occluder_prob=0.0),
    skeleton=SkeletonConvention(head="top", ankle="centre", hip_scale=0.9, shoulder="acromion"),
    proportions=Proportions(hip_half=0.095, thigh=0.42, shin=0.43, spine_lower=0.20, spine_upper=0.28, neck=0.07,
                            head=0.11, shoulder_half=0.16, upper_arm=0.27, forearm=0.26, girth=1.1,
                            stature_cv=0.03, dim_cv=0.02),
    pose=PosePrior(kind="narrow"),
    camera=CameraPrior(image_size=((128, 128),), focal_scale=(1.17, 1.17), distance_m=(2.7, 3.4),
                       height_m=(0.9, 1.3), look_at_m=(0.85, 1.0), roll_deg=0.0),
)

LAB = Domain(
    name="Human36M", is_synthetic=False,
    appearance=Appearance(clothing="textured", background="lab", lighting="directional", blur_sigma_px=(0.5, 0.9),
                          noise_std=(2.0, 5.0), jpeg_quality=85, occluder_prob=0.0),
    skeleton=SkeletonConvention(head="upper", ankle="heel", hip_scale=1.2, shoulder="joint"),
    proportions=Proportions(hip_half=0.11, thigh=0.44, shin=0.42, spine_lower=0.23, spine_upper=0.25, neck=0.085,
                            head=0.105, shoulder_half=0.15, upper_arm=0.275, forearm=0.25, girth=1.0,
                            stature_cv=0.05, dim_cv=0.04),
    pose=PosePrior(kind="actions"),
    camera=CameraPrior(image_size=((160, 160),), focal_scale=(1.02, 1.06), distance_m=(4.6, 5.4),
                       height_m=(1.4, 1.9), look_at_m=(0.9, 1.1), roll_deg=0.5),
)

WILD = Domain(
    name="wild", is_synthetic=False,
    appearance=Appearance(clothing="textured", background="clutter", lighting="directional",
                          blur_sigma_px=(0.4, 1.1), noise_std=(2.0, 7.0), jpeg_quality=80, occluder_prob=0.3),
    skeleton=SkeletonConvention(head="top", ankle="centre", hip_scale=1.1, shoulder="joint"),
    proportions=dataclasses.replace(LAB.proportions, stature_cv=0.07, dim_cv=0.05),
    pose=PosePrior(kind="wild"),
    camera=CameraPrior(image_size=((160, 120), (120, 160), (160, 160), (144, 112), (128, 128)),
                       focal_scale=(0.8, 1.5), distance_m=(2.5, 6.5), height_m=(0.6, 2.4), look_at_m=(0.7, 1.2),
                       roll_deg=4.0),
)


def close_gaps(domain: Domain, reference: Domain, gaps: tuple[str, ...]) -> Domain:
  """`domain` with the settings named in `gaps` (subset of GAPS) taken from `reference`."""
  unknown = set(gaps) - set(GAPS)
  if unknown:
    raise ValueError(f"unknown gap(s) {sorted(unknown)}; expected a subset of {GAPS}")
  return dataclasses.replace(domain, **{gap: getattr(reference, gap) for gap in gaps})


# The real-looking domains' harsher setting per gap that can be widened (`--widen-gaps`).
WIDER = {
    "appearance": lambda a: dataclasses.replace(a, tone="dim"),
}


def widen_gaps(domain: Domain, gaps: tuple[str, ...]) -> Domain:
  """A real-looking `domain` (LAB, WILD) with the settings named in `gaps` (subset of WIDER) made harsher."""
  unknown = set(gaps) - set(WIDER)
  if unknown:
    raise ValueError(f"gap(s) {sorted(unknown)} cannot be widened; expected a subset of {tuple(WIDER)}")
  if domain.is_synthetic:
    raise ValueError(f"widen_gaps changes the real-looking domains, not the synthetic source {domain.name}")
  return dataclasses.replace(domain, **{gap: WIDER[gap](getattr(domain, gap)) for gap in gaps})
