"""Human3.6M (SPEC §4.2): the 3DMPPE annotation releases, protocol 1 or 2 subjects, every 5th / 64th / 640th frame.

  python -m data_pipelines.tfds.build --datasets=Human36M --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
  tfds build data_pipelines/tfds/human36m --config=protocol2 --manual_dir=DATA_ROOT --data_dir=TFDS_DIR
  (the TFDS CLI: run from the repository root with PYTHONPATH=.)
"""
from __future__ import annotations

from data_pipelines.tfds import schema


class Builder(schema.RecordsBuilder):
  """Human36M person instances in the 17-joint reference order (data_pipelines/tfds/schema.py)."""
  DATASET = "Human36M"
  SPLITS = ("train", "test", "testInLoop")
  BUILDER_CONFIGS = [
      schema.RecordsConfig(name="protocol2", description="protocol 2: train S1, S5-S8; test S9, S11 (GT boxes)",
                           data={"h36m_protocol": 2, "use_gt_info": True}),
      schema.RecordsConfig(name="protocol1", description="protocol 1: train S1, S5-S9; test S11 (GT boxes)",
                           data={"h36m_protocol": 1, "use_gt_info": True}),
      schema.RecordsConfig(name="protocol2_detected", description="protocol 2, test boxes and roots of the detector "
                           "file (data.use_gt_info = False)", data={"h36m_protocol": 2, "use_gt_info": False}),
      schema.RecordsConfig(name="protocol1_detected", description="protocol 1, test boxes and roots of the detector "
                           "file (data.use_gt_info = False)", data={"h36m_protocol": 1, "use_gt_info": False}),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = schema.instructions(DATASET, """
images/<sequence>/<sequence>_<frame:06d>.jpg   (e.g. s_09_act_02_subact_01_ca_01/..._000001.jpg)
annotations/Human36M_subject{S}_data.json, _camera.json, _joint_3d.json   (current 3DMPPE release)
  or annotations/Human36M_subject{S}.json                                 (older release)
bbox_root/bbox_root_human36m_output.json   (only for the *_detected configs)
Register and download at http://vision.imar.ro/human3.6m/; 3DMPPE's annotations:
https://github.com/mks0601/3DMPPE_POSENET_RELEASE
""")
  DESCRIPTION = ("Human3.6M (SPEC §4.2): the 3DMPPE annotation releases, protocol 1 or 2 subjects, every 5th / 64th "
                 "/ 640th frame.")
  HOMEPAGE = "http://vision.imar.ro/human3.6m/"
  CITATION = ("Ionescu et al., Human3.6M: Large Scale Datasets and Predictive Methods for 3D Human Sensing in"
              " Natural Environments, TPAMI 2014")
