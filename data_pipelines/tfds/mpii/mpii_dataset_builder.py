"""MPII (SPEC §4.6): 3DMPPE's COCO-style conversion + derived Torso.

  python -m data_pipelines.tfds.build --datasets=MPII --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
  tfds build data_pipelines/tfds/mpii --config=faithful --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
  (the TFDS CLI: run from the repository root with PYTHONPATH=.)
"""
from __future__ import annotations

from data_pipelines.tfds import schema


class Builder(schema.RecordsBuilder):
  """MPII person instances in the 17-joint reference order (data_pipelines/tfds/schema.py)."""
  DATASET = "MPII"
  SPLITS = ("train",)
  BUILDER_CONFIGS = [
      schema.RecordsConfig(name="faithful", description="Torso visibility 1 (data.mpii_torso_vis = faithful)",
                           data={"mpii_torso_vis": "faithful"}),
      schema.RecordsConfig(name="product", description="Torso visibility = product of Thorax and Pelvis "
                           "(data.mpii_torso_vis = product)", data={"mpii_torso_vis": "product"}),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = schema.instructions(DATASET, """
annotations/train.json   (3DMPPE's COCO-style conversion, 16 joints)
<file_name> of train.json, relative to MPII/ (e.g. images/015601864.jpg)
http://human-pose.mpi-inf.mpg.de/ and https://github.com/mks0601/3DMPPE_POSENET_RELEASE
""")
  DESCRIPTION = "MPII (SPEC §4.6): 3DMPPE's COCO-style conversion + derived Torso."
  HOMEPAGE = "http://human-pose.mpi-inf.mpg.de/"
  CITATION = "Andriluka et al., 2D Human Pose Estimation: New Benchmark and State of the Art Analysis, CVPR 2014"
