"""SURREAL (SPEC §4.8): every 30th frame of the cmu/train clips, sorted by path, split 95/5.

  python -m data_pipelines.tfds.build --datasets=SURREAL --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
  tfds build data_pipelines/tfds/surreal --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
  (the TFDS CLI: run from the repository root with PYTHONPATH=.)
"""
from __future__ import annotations

from data_pipelines.tfds import schema


class Builder(schema.RecordsBuilder):
  """SURREAL person instances in the 17-joint reference order (data_pipelines/tfds/schema.py)."""
  DATASET = "SURREAL"
  SPLITS = ("train", "test", "testInLoop")
  IMAGE_FORMAT = "png"  # the frames are PNG: stored unchanged (lossless, = the file crops)
  BUILDER_CONFIGS = []
  MANUAL_DOWNLOAD_INSTRUCTIONS = schema.instructions(DATASET, """
surreal_annotations_raw.npy   (pooled annotations: NumPy object array of dicts)
<run>/<sequence>/<clip>/<clip>_<frame>.png   (frames 0, 30, 60, ... of the cmu/train clips)
https://www.di.ens.fr/willow/research/surreal/data/
""")
  DESCRIPTION = "SURREAL (SPEC §4.8): every 30th frame of the cmu/train clips, sorted by path, split 95/5."
  HOMEPAGE = "https://www.di.ens.fr/willow/research/surreal/"
  CITATION = "Varol et al., Learning from Synthetic Humans, CVPR 2017"
