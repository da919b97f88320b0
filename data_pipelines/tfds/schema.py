"""The one feature schema and builder base class of every AHuP TFDS dataset (data_pipelines/tfds/<name>/).

An example is one person instance of the dataset's reader (`data_pipelines.readers`, already in the 17-joint
reference order): the source image file's bytes, unchanged (JPEG for every dataset but SURREAL, whose frames are
PNG: nothing is re-encoded, so a TFDS crop equals the file crop bit for bit), its path relative to the dataset folder
and the numeric fields of `Records`. Examples keep the reader's order (`disable_shuffling`; the training pipeline
shuffles by index) and the default file format is ArrayRecord, which the training pipeline reads by index.

Beside the shards every split also gets `records_<split>.npz`, the same fields as columns plus the dataset's
`DatasetInfo` (`RecordsMetadata`, TFDS's metadata hook): training and evaluation start from these few MB and only
read an example's bytes when its image is needed.
"""
from __future__ import annotations

import dataclasses
import inspect
import io
import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from ahup_jax import skeleton
from configs import common as config_common
from data_pipelines import readers
from data_pipelines.records import DataError, DatasetInfo, Records

VERSION = tfds.core.Version("1.0.0")
RELEASE_NOTES = {
    "1.0.0": "First release: one example per person instance of the reader (17-joint reference order), the source "
             "image bytes unchanged, records_<split>.npz columns beside the shards.",
}
DEFAULT_FILE_FORMAT = "array_record"  # random access by example index (the pivoted training stream needs it)
NUMERIC_FIELDS = ("bbox", "joint_img", "joint_vis", "joint_cam", "root_cam", "f", "c", "group", "image_id")
_MAGIC = {"jpeg": (b"\xff\xd8\xff",), "png": (b"\x89PNG\r\n\x1a\n",)}


def features(image_format: str) -> tfds.features.FeaturesDict:
  """The shared schema. `image_format`: the encoding of the dataset's source files ("jpeg" or "png")."""
  joints = skeleton.NUM_JOINTS

  def tensor(shape, doc, dtype=np.float32):
    return tfds.features.Tensor(shape=shape, dtype=dtype, doc=doc)

  return tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(None, None, 3), encoding_format=image_format,
                                   doc="the source image file's bytes, unchanged"),
      "file_name": tfds.features.Text(doc="image path relative to the dataset folder"),
      "bbox": tensor((4,), "processed box x, y, w, h (px)"),
      "joint_img": tensor((joints, 3), "x, y (px), z = depth − root depth (mm; 0 for 2D datasets), reference order"),
      "joint_vis": tensor((joints,), "visibility (0 for joints the dataset does not define)"),
      "joint_cam": tensor((joints, 3), "camera frame (mm); zeros for 2D datasets"),
      "root_cam": tensor((3,), "root (pelvis) camera coordinates (mm)"),
      "f": tensor((2,), "focal length (px)"),
      "c": tensor((2,), "principal point (px)"),
      "group": tfds.features.Scalar(np.int32, doc="H36M action / MuPoTS sequence index, else −1"),
      "image_id": tfds.features.Scalar(np.int64, doc="dataset image id (running index for the synthetic sets)"),
  })


@dataclasses.dataclass(eq=False)
class RecordsConfig(tfds.core.BuilderConfig):
  """A build of a dataset for some values of the `config.data` fields its reader reads (e.g. h36m_protocol)."""
  data: dict = dataclasses.field(default_factory=dict)


class RecordsMetadata(tfds.core.Metadata):
  """{split: Records} of a build, saved as `records_<split>.npz` next to the shards (read by `read_records`)."""

  def save_metadata(self, data_dir):
    for split, records in self.items():
      with (epath.Path(data_dir) / records_file_name(split)).open("wb") as f:
        np.savez(f, **records_columns(records))

  def load_metadata(self, data_dir):
    del data_dir  # loaded per split, on demand, by read_records


def records_file_name(split: str) -> str:
  return f"records_{split}.npz"


def records_columns(records: Records) -> dict[str, np.ndarray]:
  """The npz content of `records`: file names (paths relative to the dataset folder), fields and DatasetInfo."""
  info = records.info
  return dict({name: getattr(records, name) for name in NUMERIC_FIELDS},
              file_name=np.asarray(records.img_path, dtype=str), info_name=np.asarray(info.name),
              info_is_synthetic=np.asarray(info.is_synthetic), info_have_depth=np.asarray(info.have_depth),
              info_joint_defined=np.asarray(info.joint_defined, bool),
              info_group_names=np.asarray(info.group_names, dtype=str).reshape(-1))


def read_records(path: str, split: str, img_path) -> Records:
  """The Records of `split` of the build at `path` (a version folder); img_path(file_name [N]) → [N] references."""
  file = epath.Path(path) / records_file_name(split)
  with file.open("rb") as f:
    columns = dict(np.load(io.BytesIO(f.read()), allow_pickle=False))
  info = DatasetInfo(str(columns["info_name"]), is_synthetic=bool(columns["info_is_synthetic"]),
                     have_depth=bool(columns["info_have_depth"]), joint_defined=columns["info_joint_defined"],
                     group_names=tuple(str(g) for g in columns["info_group_names"]))
  return Records(info, img_path(columns["file_name"]), **{name: columns[name] for name in NUMERIC_FIELDS})


def instructions(dataset: str, content: str) -> str:
  """MANUAL_DOWNLOAD_INSTRUCTIONS: where the dataset folder goes and what it holds."""
  folder = readers.READERS[dataset][1]
  return (f"Pass --manual_dir=DIR where DIR holds the folder {folder}/ in its official layout (SPEC §4; the same "
          f"DIR as --config.data.root / $AHUP_DATA_ROOT for training from the files):\n\n  DIR/{folder}/\n"
          + "".join(f"    {line}\n" for line in content.strip().splitlines()))


class RecordsBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base class: examples = the Records of the dataset's reader, one per person instance.

  A dataset's builder sets DATASET (a `readers.READERS` name), SPLITS, MANUAL_DOWNLOAD_INSTRUCTIONS, and
  BUILDER_CONFIGS (RecordsConfig.data = the reader's config fields) when its reader reads any.
  """
  VERSION = VERSION
  RELEASE_NOTES = RELEASE_NOTES
  DATASET: str = ""
  SPLITS: tuple[str, ...] = ()
  SPLIT_ALIASES: dict[str, str] = {}  # split → the built split holding the same records (not built twice)
  IMAGE_FORMAT = "jpeg"
  DESCRIPTION = ""
  HOMEPAGE = ""
  CITATION = ""

  def __init__(self, *, file_format=None, **kwargs):
    super().__init__(file_format=file_format or DEFAULT_FILE_FORMAT, **kwargs)

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    """This builder's source file (where TFDS looks for checksums.tsv). TFDS 4.9.10's own version evaluates
    `importlib_resources.abc.Traversable`, the Python < 3.9 backport it does not install on newer Pythons."""
    return epath.Path(inspect.getfile(cls))

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=self.DESCRIPTION, features=features(self.IMAGE_FORMAT), homepage=self.HOMEPAGE,
        citation=self.CITATION, metadata=RecordsMetadata(), disable_shuffling=True)

  def data_config(self):
    """configs/common.py's data block with this build's fields (RecordsConfig.data)."""
    data_cfg = config_common.data()
    data_cfg.update(getattr(self.builder_config, "data", {}) or {})
    return data_cfg

  def dataset_folder(self, manual_dir) -> str:
    """<manual_dir>/<the dataset's folder>; DataError naming it and the instructions when it is missing."""
    folder = os.path.join(os.fspath(manual_dir), readers.READERS[self.DATASET][1])
    if not os.path.isdir(folder):
      raise DataError(f"{self.name}: dataset folder not found: {folder}. {self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    return folder

  def read_split(self, folder: str, split: str) -> Records:
    """The reader's records of `split` (before `readers.select`, which applies at load time)."""
    return readers.read(self.DATASET, folder, self.data_config(), split)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    folder = self.dataset_folder(dl_manager.manual_dir)  # TFDS: an error with the instructions when missing/empty
    generators = {}
    for split in self.SPLITS:
      records = self.read_split(folder, split)
      if not len(records):
        raise DataError(f"{self.name}: the {split!r} split of {folder} has no records")
      self.info.metadata[split] = dataclasses.replace(
          records, img_path=np.array([os.path.relpath(p, folder) for p in records.img_path], dtype=object))
      generators[split] = self._generate_examples(records, self.info.metadata[split].img_path)
    return generators

  def _generate_examples(self, records: Records, file_names: np.ndarray):
    for i, path in enumerate(records.img_path):
      yield i, dict({name: getattr(records, name)[i] for name in NUMERIC_FIELDS},
                    image=self._image_bytes(path), file_name=file_names[i])

  def _image_bytes(self, path: str) -> bytes:
    try:
      data = epath.Path(path).read_bytes()
    except OSError as error:
      raise DataError(f"{self.name}: cannot read image {path} ({error})") from None
    if not data.startswith(_MAGIC[self.IMAGE_FORMAT]):
      raise DataError(f"{self.name}: {path} is not a {self.IMAGE_FORMAT.upper()} file (the dataset's images are "
                      f"stored unchanged as {self.IMAGE_FORMAT})")
    return data
