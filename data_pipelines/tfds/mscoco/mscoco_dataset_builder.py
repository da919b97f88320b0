"""MSCOCO (SPEC §4.5): train2017 person keypoints + derived Thorax and Pelvis.

  python -m data_pipelines.tfds.build --datasets=MSCOCO --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
  tfds build data_pipelines/tfds/mscoco --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
  (the TFDS CLI: run from the repository root with PYTHONPATH=.)
"""
from __future__ import annotations

from data_pipelines.tfds import schema


class Builder(schema.RecordsBuilder):
  """MSCOCO person instances in the 17-joint reference order (data_pipelines/tfds/schema.py)."""
  DATASET = "MSCOCO"
  SPLITS = ("train",)
  BUILDER_CONFIGS = []
  MANUAL_DOWNLOAD_INSTRUCTIONS = schema.instructions(DATASET, """
annotations/person_keypoints_train2017.json
train2017/<file_name>.jpg
https://cocodataset.org/#download (2017 Train images, 2017 Train/Val annotations)
""")
  DESCRIPTION = "MSCOCO (SPEC §4.5): train2017 person keypoints + derived Thorax and Pelvis."
  HOMEPAGE = "https://cocodataset.org/"
  CITATION = "Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014"
