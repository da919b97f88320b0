"""Training input pipeline throughput (images/s): JPEG decode + full SPEC §5 augmentation + pivoted batching.

  python -m benchmarks.input_pipeline                         # 128² and 256² crops of 512×512 JPEGs
  python -m benchmarks.input_pipeline --sizes=256 --steps=50 --batch_size=120

Images are generated (smooth gradients and shapes, JPEG quality 90) into a temporary folder; three training sets
of `num_images` records each, as in the default ScanAva+ / MSCOCO / MPII configuration.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from configs import saa
from data_pipelines import pivot
from data_pipelines.records import DatasetInfo, Records


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


def run(input_size: int = 256, image_size: int = 512, batch_size: int = 30, steps: int = 20, warmup_steps: int = 3,
        num_images: int = 32, seed: int = 0) -> dict:
  """Images/s of `make_train_dataset` at crop side `input_size` after `warmup_steps` batches."""
  rng = np.random.default_rng(seed)
  config = saa.get_config()
  config.model.input_size, config.model.depth_bins = input_size, input_size // 4
  config.train.batch_size = batch_size
  with tempfile.TemporaryDirectory() as folder:
    paths = _write_images(folder, num_images, image_size, rng)
    records = [_records(name, paths, image_size, rng) for name in ("ScanAva", "MSCOCO", "MPII")]
    batches = pivot.make_train_dataset(records, config, process_index=0, process_count=1).as_numpy_iterator()
    for _ in range(warmup_steps):
      batch = next(batches)
    start = time.perf_counter()
    for _ in range(steps):
      batch = next(batches)
    seconds = time.perf_counter() - start
  images = steps * len(batch["image"])
  return dict(input_size=input_size, image_size=image_size, batch_size=len(batch["image"]), steps=steps,
              seconds=seconds, images_per_s=images / seconds, cpu_count=os.cpu_count())


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--sizes", default="128,256", help="crop sides, comma-separated")
  parser.add_argument("--image_size", type=int, default=512)
  parser.add_argument("--batch_size", type=int, default=30)
  parser.add_argument("--steps", type=int, default=20)
  args = parser.parse_args()
  for size in map(int, args.sizes.split(",")):
    result = run(size, args.image_size, args.batch_size, args.steps)
    print(f"input {size}x{size} from {args.image_size}x{args.image_size} JPEGs: {result['images_per_s']:.1f} images/s "
          f"({result['steps']} batches of {result['batch_size']} in {result['seconds']:.2f} s, "
          f"{result['cpu_count']} CPUs)")


if __name__ == "__main__":
  main()
