"""ScanAva+ (SPEC §4.7): 41 scanned avatars, 36 train / 5 test scans.

  python -m data_pipelines.tfds.build --datasets=ScanAva --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
  tfds build data_pipelines/tfds/scanava --config=tight --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
  (the TFDS CLI: run from the repository root with PYTHONPATH=.)
"""
from __future__ import annotations

from data_pipelines.tfds import schema


class Builder(schema.RecordsBuilder):
  """ScanAva person instances in the 17-joint reference order (data_pipelines/tfds/schema.py)."""
  DATASET = "ScanAva"
  SPLITS = ("train", "test", "testInLoop")
  BUILDER_CONFIGS = [
      schema.RecordsConfig(name="tight", description="tight boxes from the joints (data.tight_bbox_scanava = True)",
                           data={"tight_bbox_scanava": True}),
      schema.RecordsConfig(name="whole_image", description="the whole 512×512 image as the box "
                           "(data.tight_bbox_scanava = False)", data={"tight_bbox_scanava": False}),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = schema.instructions(DATASET, """
scanava_raw.npy   (pooled annotations: NumPy object array of dicts)
<scan name>/images/<image>.jpg   (41 scans, SYN_RR_...)
https://github.com/ostadabbas/Adapted-Human-Pose (ScanAva+)
""")
  DESCRIPTION = "ScanAva+ (SPEC §4.7): 41 scanned avatars, 36 train / 5 test scans."
  HOMEPAGE = "https://github.com/ostadabbas/Adapted-Human-Pose"
  CITATION = ("Liu and Ostadabbas, Adapted Human Pose: Monocular 3D Human Pose Estimation with Zero Real 3D Pose"
              " Data, Applied Intelligence 2022")
