"""MuPoTS-3D (SPEC §4.4): every valid annotation of the 20 test sequences.

  python -m data_pipelines.tfds.build --datasets=MuPoTS --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
  tfds build data_pipelines/tfds/mupots --config=gt_info --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
  (the TFDS CLI: run from the repository root with PYTHONPATH=.)
"""
from __future__ import annotations

from data_pipelines.tfds import schema


class Builder(schema.RecordsBuilder):
  """MuPoTS person instances in the 17-joint reference order (data_pipelines/tfds/schema.py)."""
  DATASET = "MuPoTS"
  SPLITS = ("test",)
  SPLIT_ALIASES = {"testInLoop": "test"}  # the same records (SPEC §4.4)
  BUILDER_CONFIGS = [
      schema.RecordsConfig(name="gt_info", description="GT boxes and roots (data.use_gt_info = True)",
                           data={"use_gt_info": True}),
      schema.RecordsConfig(name="detected", description="boxes and roots of the detector file, no GT joints "
                           "(data.use_gt_info = False)", data={"use_gt_info": False}),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = schema.instructions(DATASET, """
MuPoTS-3D.json
MultiPersonTestSet/TS{1..20}/img_{frame:06d}.jpg
bbox_root/bbox_mupots_output.json (or bbox_root_mupots_output.json; only for the detected config)
https://vcai.mpi-inf.mpg.de/projects/SingleShotMultiPerson/ and 3DMPPE's MuPoTS-3D.json
""")
  DESCRIPTION = "MuPoTS-3D (SPEC §4.4): every valid annotation of the 20 test sequences."
  HOMEPAGE = "https://vcai.mpi-inf.mpg.de/projects/SingleShotMultiPerson/"
  CITATION = "Mehta et al., Single-Shot Multi-Person 3D Pose Estimation From Monocular RGB, 3DV 2018"
