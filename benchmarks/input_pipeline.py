"""Training input pipeline throughput (images/s): JPEG decode + full SPEC §5 augmentation + pivoted batching,
from the image files (data.source = "files") and from their TFDS builds (data.source = "tfds").

  python -m benchmarks.input_pipeline                         # 96² and 256² crops of 512×512 JPEGs
  python -m benchmarks.input_pipeline --sizes=256 --steps=50 --batch_size=120

Images are generated (smooth gradients and shapes, JPEG quality 90) into a temporary folder; three training sets
of `num_images` records each, as in the default ScanAva+ / MSCOCO / MPII configuration, each also built into a TFDS
dataset by the datasets' builder code (data_pipelines/tfds/schema.py). The two sources are timed in alternating
rounds (a fresh pipeline per round, warmed up, then `steps` batches), so a busy machine slows both alike.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from configs import saa
from data_pipelines import pivot
from data_pipelines.records import DatasetInfo, Records
from data_pipelines.tfds import schema, source

SOURCES = ("files", "tfds")


class GeneratedBuilder(schema.RecordsBuilder, skip_registration=True):
  """The generated records of one training set as a TFDS build (builder config = the set's name)."""
  name = "ahup_bench_images"
  SPLITS = ("train",)
  BUILDER_CONFIGS = [schema.RecordsConfig(name=name) for name in ("ScanAva", "MSCOCO", "MPII")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = "the folder of images benchmarks/input_pipeline.py generated"
  RECORDS: dict[str, Records] = {}

  def dataset_folder(self, manual_dir) -> str:
    return os.fspath(manual_dir)

  def read_split(self, folder: str, split: str) -> Records:
    return self.RECORDS[self.builder_config.name]


def _write_images(folder: str, count: int, size: int, rng: np.random.Generator) -> list[str]:
  rows, cols = np.mgrid[:size, :size] / size
  paths = []
  for i in range(count):
    image = np.stack([rows * rng.uniform(50, 255), cols * rng.uniform(50, 255), (rows + cols) * 100], -1)
    for _ in range(8):  # a few flat rectangles for edges
      x, y, w, h = rng.integers(0, size, 4)
      image[y:y + h // 2, x:x + w // 2] = rng.uniform(0, 255, 3)
    path = os.path.join(folder, f"image_{i:04d}.jpg")
    tf.io.write_file(path, tf.io.encode_jpeg(image.astype(np.uint8), quality=90))
    paths.append(path)
  return paths


def _records(name: str, paths: list[str], image_size: int, rng: np.random.Generator) -> Records:
  n, joints = len(paths), 17
  side = rng.uniform(0.3, 0.8, n) * image_size
  corner = rng.uniform(0, 1, (n, 2)) * (image_size - side[:, None])
  bbox = np.concatenate([corner, side[:, None], side[:, None]], 1).astype(np.float32)
  xy = corner[:, None] + rng.uniform(0, 1, (n, joints, 2)) * side[:, None, None]
  joint_img = np.concatenate([xy, rng.uniform(-800, 800, (n, joints, 1))], -1).astype(np.float32)
  zeros = lambda *shape: np.zeros(shape, np.float32)  # noqa: E731
  return Records(DatasetInfo(name, name == "ScanAva", name == "ScanAva", np.ones(joints, bool)),
                 np.array(paths, object), bbox, joint_img, np.ones((n, joints), np.float32), zeros(n, joints, 3),
                 zeros(n, 3), np.ones((n, 2), np.float32), np.ones((n, 2), np.float32), -np.ones(n, np.int32),
                 np.arange(n, dtype=np.int64))


def _build_tfds(records: list[Records], folder: str) -> list[Records]:
  """`records` (of images in `folder`) built into TFDS datasets and loaded back: image references instead of paths."""
  GeneratedBuilder.RECORDS = {r.info.name: r for r in records}
  loaded = []
  for r in records:
    builder = GeneratedBuilder(config=r.info.name, data_dir=os.path.join(folder, "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=folder))
    loaded.append(source.records_of_build(os.fspath(builder.data_dir), "train"))
  return loaded


def _images_per_s(records: list[Records], config, steps: int, warmup_steps: int) -> tuple[float, int]:
  """(images/s over `steps` batches of a fresh pipeline after `warmup_steps`, batch size)."""
  batches = pivot.make_train_dataset(records, config, process_index=0, process_count=1).as_numpy_iterator()
  for _ in range(warmup_steps):
    batch = next(batches)
  start = time.perf_counter()
  for _ in range(steps):
    batch = next(batches)
  seconds = time.perf_counter() - start
  return steps * len(batch["image"]) / seconds, len(batch["image"])


def run(input_size: int = 256, image_size: int = 512, batch_size: int = 30, steps: int = 20, warmup_steps: int = 3,
        num_images: int = 32, seed: int = 0, rounds: int = 3) -> dict:
  """Images/s of `make_train_dataset` at crop side `input_size` from the files and from TFDS.

  Returns images_per_s (files) and tfds_images_per_s: the median over `rounds` alternating rounds of each.
  """
  rng = np.random.default_rng(seed)
  config = saa.get_config()
  config.model.input_size, config.model.depth_bins = input_size, input_size // 4
  config.train.batch_size = batch_size
  with tempfile.TemporaryDirectory() as folder:
    paths = _write_images(folder, num_images, image_size, rng)
    records = {"files": [_records(name, paths, image_size, rng) for name in ("ScanAva", "MSCOCO", "MPII")]}
    records["tfds"] = _build_tfds(records["files"], folder)
    rates = {name: [] for name in SOURCES}
    for _ in range(rounds):
      for name in SOURCES:
        rate, batch = _images_per_s(records[name], config, steps, warmup_steps)
        rates[name].append(rate)
  return dict(input_size=input_size, image_size=image_size, batch_size=batch, steps=steps, rounds=rounds,
              images_per_s=float(np.median(rates["files"])), tfds_images_per_s=float(np.median(rates["tfds"])),
              rates=rates, cpu_count=os.cpu_count())


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--sizes", default="96,256", help="crop sides, comma-separated")
  parser.add_argument("--image_size", type=int, default=512)
  parser.add_argument("--batch_size", type=int, default=30)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--rounds", type=int, default=3, help="alternating files / tfds rounds (median reported)")
  args = parser.parse_args()
  for size in map(int, args.sizes.split(",")):
    result = run(size, args.image_size, args.batch_size, args.steps, rounds=args.rounds)
    print(f"input {size}x{size} from {args.image_size}x{args.image_size} JPEGs, {result['rounds']} rounds of "
          f"{result['steps']} batches of {result['batch_size']} ({result['cpu_count']} CPUs): files "
          f"{result['images_per_s']:.1f} images/s, TFDS {result['tfds_images_per_s']:.1f} images/s "
          f"(rounds: files {', '.join(f'{r:.0f}' for r in result['rates']['files'])}; TFDS "
          f"{', '.join(f'{r:.0f}' for r in result['rates']['tfds'])})")


if __name__ == "__main__":
  main()
