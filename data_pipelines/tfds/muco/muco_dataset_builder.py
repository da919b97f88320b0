"""MuCo-3DHP (SPEC §4.3): the selected people of every composited training image.

  python -m data_pipelines.tfds.build --datasets=MuCo --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
  tfds build data_pipelines/tfds/muco --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
  (the TFDS CLI: run from the repository root with PYTHONPATH=.)
"""
from __future__ import annotations

from data_pipelines.tfds import schema


class Builder(schema.RecordsBuilder):
  """MuCo person instances in the 17-joint reference order (data_pipelines/tfds/schema.py)."""
  DATASET = "MuCo"
  SPLITS = ("train",)
  BUILDER_CONFIGS = []
  MANUAL_DOWNLOAD_INSTRUCTIONS = schema.instructions(DATASET, """
MuCo-3DHP.json
augmented_set/..., unaugmented_set/...   (3DMPPE's MuCo release without its data/ folder)
https://github.com/mks0601/3DMPPE_POSENET_RELEASE
""")
  DESCRIPTION = "MuCo-3DHP (SPEC §4.3): the selected people of every composited training image."
  HOMEPAGE = "https://vcai.mpi-inf.mpg.de/projects/SingleShotMultiPerson/"
  CITATION = "Mehta et al., Single-Shot Multi-Person 3D Pose Estimation From Monocular RGB, 3DV 2018"
