"""ScanAva+ (synthetic, 3D; the default source domain), pooled `scanava_raw.npy` (SPEC §4.7)."""
from __future__ import annotations

import os

import numpy as np

from ahup_jax import skeleton
from data_pipelines import bbox as bbox_lib
from data_pipelines import joints as joints_lib
from data_pipelines.readers import field, load_npy_records
from data_pipelines.records import DataError, DatasetInfo, Records

# Scan-level split: the 41 scans in this fixed order, the last 5 are the test scans.
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
TRAIN_SCANS, TEST_SCANS = frozenset(SCANS[:36]), frozenset(SCANS[36:])
FOLDER = "ScanAva_1119"
DEFAULT_IMAGE_SIZE = (512, 512)  # (height, width) of the rendered images; records may carry `img_shape`

_INDEX, _DEFINED = joints_lib.reference_index(joints_lib.SCANAVA)
INFO = DatasetInfo("ScanAva", is_synthetic=True, have_depth=True, joint_defined=_DEFINED)


def with_derived_joints(labelled: np.ndarray) -> np.ndarray:
  """[N, 14, D] → [N, 17, D] adding Pelvis = mid hips, Torso = mid(Pelvis, Thorax), Neck = Thorax + (Head−Thorax)/3."""
  name = {n: i for i, n in enumerate(joints_lib.SCANAVA_LABELLED)}
  pelvis = (labelled[:, name["R_Hip"]] + labelled[:, name["L_Hip"]]) / 2
  thorax, head = labelled[:, name["Thorax"]], labelled[:, name["Head"]]
  return np.concatenate([labelled, np.stack([pelvis, (pelvis + thorax) / 2, thorax + (head - thorax) / 3], 1)], 1)


def scan_name(img_path: str) -> str:
  """The scan folder right after `ScanAva_1119/` in a record's image path."""
  parts = img_path.replace("\\", "/").split(f"{FOLDER}/", 1)
  return parts[1].split("/", 1)[0] if len(parts) == 2 else ""


def read(root: str, data_cfg, split: str) -> Records:
  path = os.path.join(root, "scanava_raw.npy")
  raw = load_npy_records(path)
  scans = TRAIN_SCANS if split == "train" else TEST_SCANS
  every = {"train": int(data_cfg.rt_SYN), "test": 1, "testInLoop": 20}[split]
  rows = []
  for i, r in enumerate(raw):
    if "img_path" not in r:
      raise DataError(f"{path}: record {i} lacks field 'img_path'")
    scan = scan_name(r["img_path"])
    if scan not in scans or i % every:
      continue
    what = f"record {i} ({r['img_path']})"
    joint_img = field(r, "joint_img", path, (3, 14), what)
    joint_m = field(r, "joint_cam", path, (3, 14), what)
    shape = r.get("img_shape", DEFAULT_IMAGE_SIZE)
    rows.append((os.path.join(root, r["img_path"].replace("\\", "/").split(f"{FOLDER}/", 1)[1]), joint_img.T,
                 joint_m.T * np.array([1000.0, -1000.0, -1000.0]), field(r, "F", path, (2,), what),
                 field(r, "C", path, (2,), what), shape, i))
  n = len(rows)
  if n == 0:
    raise DataError(f"{path}: no records of the {split} scans (scan folders expected after '{FOLDER}/' in img_path)")
  paths, joint_img, joint_cam, f, c, shapes, ids = map(list, zip(*rows))
  joint_img = with_derived_joints(np.array(joint_img)[..., :2])
  joint_cam = with_derived_joints(np.array(joint_cam))
  pelvis = joints_lib.SCANAVA.index("Pelvis")
  depth = joint_cam[..., 2:] - joint_cam[:, pelvis, None, 2:]
  shapes = np.array(shapes, np.float64)
  if data_cfg.tight_bbox_scanava:
    boxes, _ = bbox_lib.sanitize(bbox_lib.tight_from_joints(joint_img), shapes[:, 1], shapes[:, 0])
    boxes = bbox_lib.square(boxes, 1.0)
  else:
    boxes = np.stack([np.zeros(n), np.zeros(n), shapes[:, 1], shapes[:, 0]], 1)
  joint_cam_ref = joints_lib.to_reference(joint_cam, joints_lib.SCANAVA)
  return Records(INFO, np.array(paths, object), boxes.astype(np.float32),
                 joints_lib.to_reference(np.concatenate([joint_img, depth], -1), joints_lib.SCANAVA).astype(
                     np.float32),
                 np.ones((n, 17), np.float32), joint_cam_ref.astype(np.float32),
                 joint_cam_ref[:, skeleton.ROOT].astype(np.float32), np.array(f, np.float32),
                 np.array(c, np.float32), -np.ones(n, np.int32), np.array(ids, np.int64))
