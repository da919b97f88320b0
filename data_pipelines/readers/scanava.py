"""ScanAva+ (synthetic, 3D; the default source domain): the pooled `scanava_raw.npy` (SPEC §4.7)."""
from __future__ import annotations

import os

import numpy as np
from absl import logging

from data_pipelines import bbox as bbox_lib
from data_pipelines import joints as joints_lib
from data_pipelines.readers import common
from data_pipelines.records import Records

# Scan-level split: the 41 scans in this fixed order; the first 36 train, the last 5 test.
SCANS = (
    "SYN_RR_amir_180329_0624_G20190929_2313_P2000_A00", "SYN_RR_behnaz_180118_2009_G20190929_2313_P2000_A00",
    "SYN_RR_boya_G20191103_1634_P2000_A00", "SYN_RR_chen_G20191103_1634_P2000_A00",
    "SYN_RR_dan_jacket_180521_1312_G20190929_2322_P2000_A00", "SYN_RR_eddy_no_coat_180517_G20190929_2332_P2000_A00",
    "SYN_RR_jianchao_G20191103_1634_P2000_A00", "SYN_RR_jinpeng_G20191103_1634_P2000_A00",
    "SYN_RR_kefei_G20191103_1634_P2000_A00", "SYN_RR_kian_180517_1605_G20190929_2342_P2000_A00",
    "SYN_RR_kian_jacket_180517_1617_G20190929_2344_P2000_A00", "SYN_RR_naveen_180403_1612_G20190929_2346_P2000_A00",
    "SYN_RR_naveen_180403_1635_G20190929_2349_P2000_A00", "SYN_RR_sarah_171201_1045_G20190929_2356_P2000_A00",
    "SYN_RR_sarah_180423_1211_G20190929_2357_P2000_A00", "SYN_RR_sarah_180423_1220_G20190930_0001_P2000_A00",
    "SYN_RR_sarah_180423_1317_G20190930_0002_P2000_A00", "SYN_RR_sharyu_G20191103_1634_P2000_A00",
    "SYN_RR_shiva_G20191103_2136_P2000_A00", "SYN_RR_shuangjun_180403_1734_G20190930_0012_P2000_A00",
    "SYN_RR_shuangjun_180403_1748_G20190930_0024_P2000_A00", "SYN_RR_shuangjun_180502_1536_G20190930_0026_P2000_A00",
    "SYN_RR_shuangjun-2_G20191103_1634_P2000_A00", "SYN_RR_shuangjun_blackT_180522_1542_G20190930_0029_P2000_A00",
    "SYN_RR_shuangjun_blueSnow_180521_1531_G20190930_0029_P2000_A00",
    "SYN_RR_shuangjun_diskShirt_180403_1748_G20190930_0030_P2000_A00", "SYN_RR_shuangjun_G20191103_1634_P2000_A00",
    "SYN_RR_shuangjun_grayDown_180521_1516_G20190930_0033_P2000_A00",
    "SYN_RR_shuangjun_grayT_180521_1658_G20190930_0034_P2000_A00",
    "SYN_RR_shuangjun_gridDshirt_180521_1548_G20190930_0035_P2000_A00",
    "SYN_RR_shuangjun_jacketgood_180522_1628_G20190930_0037_P2000_A00",
    "SYN_RR_shuangjun_nikeT_180522_1602_G20190930_0038_P2000_A00",
    "SYN_RR_shuangjun_rainCoat_180403_1734_G20190930_0041_P2000_A00",
    "SYN_RR_shuangjun_whiteDshirt_180521_1600_G20190930_0042_P2000_A00",
    "SYN_RR_shuangjun_whiteHood_180502_1536_G20190930_0044_P2000_A00",
    "SYN_RR_steve_2_good_color_G20190930_0045_P2000_A00",
    "SYN_RR_william_180502_1449_G20190930_0049_P2000_A00", "SYN_RR_william_180502_1509_G20190930_0050_P2000_A00",
    "SYN_RR_william_180503_1704_G20190930_0059_P2000_A00", "SYN_RR_yu_170723_1000_G20190930_0059_P2000_A00",
    "SYN_RR_zishen_G20191103_1634_P2000_A00",
)
NUM_TRAIN_SCANS = 36
FOLDER = "ScanAva_1119"
IMAGE_SIZE = (512, 512)  # (height, width) of the renders; a record's optional `img_shape` overrides it
SAMPLING = {"train": 1, "test": 1, "testInLoop": 20}  # on the record's index in the pooled file; `select` then
                                                    # keeps every data.rt_SYN-th training record
# joint_cam (mm) = 1000·(X, −Y, −Z) of the stored metres: renderer y-up/z-backward → image y-down, z-forward.
AXES_TO_CAMERA_MM = np.array([1000.0, -1000.0, -1000.0])
INFO = common.info_for("ScanAva", is_synthetic=True, have_depth=True)


def relative_path(img_path: str) -> str:
  """The part of a record's `img_path` after `ScanAva_1119/` (the whole path when it has none)."""
  return img_path.replace("\\", "/").split(f"{FOLDER}/")[-1]


def read(folder: str, data_cfg, split: str) -> Records:
  """Records of the split's scans (testInLoop: every 20th by pooled-file index; train: all, see `select`);
  17 joints (Pelvis, Torso, Neck derived), vis 1, per-record F/C (SPEC §9 #20); bbox tight ×1.2 → sanitise →
  square×1.0, or the whole image when `data_cfg.tight_bbox_scanava` is off."""
  path = os.path.join(folder, "scanava_raw.npy")
  raw = common.load_pooled_npy(path)
  every = SAMPLING[split]
  rel_paths = [relative_path(str(p)) for p in common.values(raw, "img_path", path, lambda i: f"record {i}")]
  scan = np.array([p.split("/", 1)[0] for p in rel_paths], dtype=object)
  split_scans = SCANS[:NUM_TRAIN_SCANS] if split == "train" else SCANS[NUM_TRAIN_SCANS:]
  unknown = ~np.isin(scan, SCANS)
  if unknown.any():
    logging.warning("%s: %d of %d records belong to none of the 41 ScanAva+ scans (e.g. %s) and are skipped", path,
                    int(unknown.sum()), len(raw), rel_paths[int(np.flatnonzero(unknown)[0])])
  index = np.flatnonzero(np.isin(scan, split_scans) & (np.arange(len(raw)) % every == 0))
  records = [raw[i] for i in index]

  def describe(k: int) -> str:
    return f"record {index[k]} ({rel_paths[index[k]]})"

  joint_img = common.column(records, "joint_img", (3, 14), path, describe)
  joint_m = common.column(records, "joint_cam", (3, 14), path, describe)
  f, c = (common.column(records, key, (2,), path, describe) for key in ("F", "C"))
  image_shape = common.stack([r.get("img_shape", IMAGE_SIZE) for r in records], "img_shape", (2,), path, describe)
  joint_xy = joints_lib.add_scanava_joints(joint_img[:, :2].transpose(0, 2, 1))
  joint_cam = joints_lib.add_scanava_joints(joint_m.transpose(0, 2, 1) * AXES_TO_CAMERA_MM)
  height, width = image_shape[:, 0], image_shape[:, 1]
  if data_cfg.tight_bbox_scanava:
    boxes, inside = bbox_lib.sanitize(bbox_lib.tight_from_joints(joint_xy), width, height)
  else:
    boxes = np.stack([np.zeros_like(width), np.zeros_like(width), width, height], -1)
    inside = np.ones(len(index), bool)
  if not inside.all():
    logging.warning("%s: skipped %d %s records whose joints lie outside the image", path, int((~inside).sum()), split)
  return common.make_records(
      INFO, joints_lib.SCANAVA, img_path=[os.path.join(folder, rel_paths[i]) for i in index[inside]],
      bbox=bbox_lib.square(boxes[inside], 1.0), joint_xy=joint_xy[inside],
      joint_vis=np.ones((int(inside.sum()), 17)), joint_cam=joint_cam[inside], f=f[inside], c=c[inside],
      image_id=index[inside])


def select(records: Records, data_cfg, split: str) -> Records:
  """Training sub-sampling (SPEC §4.7): pooled-file index (= image_id) % data.rt_SYN == 0."""
  return common.every_nth(records, common.positive_int(data_cfg.rt_SYN, "data.rt_SYN")) if split == "train" \
      else records
