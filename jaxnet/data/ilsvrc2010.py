"""ILSVRC-2010 as tfds ArrayRecord files, written without TensorFlow.

tfds has no ILSVRC-2010 builder. `Ilsvrc2010` here writes one in the layout of the ILSVRC-2012 one
(`jaxnet/data/imagenet.py`: image `JPEG`, `label`, `file_name`) with the splits train (1,261,406),
validation (50,000) and test (150,000: its ground truth was released after the challenge), read
back with `tfds.data_source("ilsvrc2010", data_dir=...)`.

The manual directory holds the download from image-net.org:
    ILSVRC2010_images_train.tar   a tar of per-class tars WNID.tar (images WNID_N.JPEG)
    ILSVRC2010_images_val.tar     val/ILSVRC2010_val_00000001.JPEG, ...
    ILSVRC2010_images_test.tar    test/ILSVRC2010_test_00000001.JPEG, ...
    ILSVRC2010_devkit-1.0.tar.gz  devkit-1.0/data/meta.mat and
                                  devkit-1.0/data/ILSVRC2010_validation_ground_truth.txt
    ILSVRC2010_test_ground_truth.txt   released separately
Class ids are the devkit's, not sorted wnids: `meta.mat` holds a struct array `synsets` (fields
ILSVRC2010_ID, WNID, words, num_children, ...); the synsets without children are the 1000 classes,
ILSVRC2010_ID 1..1000, and label = ILSVRC2010_ID - 1. A ground-truth file holds one ILSVRC2010_ID
per line, in the sorted order of the image file names. The class wnids (label order) are the
label feature's names; wnids, words and ids are also in the dataset's metadata.
"""
import gzip
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from tqdm import tqdm

from jaxnet import JaxnetError
from jaxnet.data.completeness import complete
from jaxnet.data.imagenet import open_tar, preparing, tar_errors, to_rgb_jpeg

NAME = "ilsvrc2010"
VERSION = "1.0.0"
TRAIN_TAR = "ILSVRC2010_images_train.tar"
VAL_TAR = "ILSVRC2010_images_val.tar"
TEST_TAR = "ILSVRC2010_images_test.tar"
DEVKIT = "ILSVRC2010_devkit-1.0.tar.gz"
META = "data/meta.mat"  # inside the devkit (under devkit-1.0/)
VAL_TRUTH = "ILSVRC2010_validation_ground_truth.txt"  # in the devkit's data/ (or the manual dir)
TEST_TRUTH = "ILSVRC2010_test_ground_truth.txt"  # in the manual dir (or the devkit's data/)
SPLITS = {"train": 1_261_406, "validation": 50_000, "test": 150_000}
NUM_CLASSES = 1000
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
REGISTER = ("ILSVRC-2010 must be downloaded by hand: register at image-net.org and download the"
            f" ILSVRC2010 files ({TRAIN_TAR}, {VAL_TAR}, {TEST_TAR}, {DEVKIT}, {TEST_TRUTH})")


class Devkit:
    """What the development kit says: the classes in label order (wnid, words, number of train
    images, from meta.mat) and the validation ground truth (ILSVRC2010_IDs, file-name order)."""

    def __init__(self, wnids, words, train_counts, val_truth, val_truth_name):
        self.wnids, self.words, self.train_counts = list(wnids), list(words), list(train_counts)
        self.val_truth, self.val_truth_name = val_truth, val_truth_name

    @property
    def label_of(self) -> dict:
        return {wnid: i for i, wnid in enumerate(self.wnids)}


def scalar(value):
    """A MATLAB scalar (loadmat gives 0-d or 1x1 arrays, or plain numbers) as a Python value."""
    array = np.asarray(value)
    return array.reshape(-1)[0].item() if array.size else None


def read_meta(data: bytes, where: str) -> tuple:
    """(wnids, words, train counts) of the leaf synsets of a devkit meta.mat, in ILSVRC2010_ID
    order; a JaxnetError naming `where` if it is not the ILSVRC-2010 meta.mat."""
    try:
        import scipy.io
    except ImportError as e:
        raise JaxnetError("reading the devkit's meta.mat needs scipy: pip install scipy") from e
    try:
        mat = scipy.io.loadmat(io.BytesIO(data), squeeze_me=True)
    except (ValueError, TypeError, NotImplementedError, OSError) as e:
        raise JaxnetError(f"{where} is not a readable MATLAB file ({e})") from e
    synsets = mat.get("synsets")
    fields = getattr(getattr(synsets, "dtype", None), "names", None) or ()
    missing = [f for f in ("ILSVRC2010_ID", "WNID", "num_children") if f not in fields]
    if missing:
        raise JaxnetError(f"{where} has no struct array 'synsets' with fields ILSVRC2010_ID, WNID,"
                          f" num_children (missing {', '.join(missing)}): is it ILSVRC-2010's devkit?")
    leaves = {}
    for synset in np.atleast_1d(synsets).reshape(-1):
        if scalar(synset["num_children"]) == 0:
            get = (lambda f: scalar(synset[f]) if f in fields else None)
            leaves[int(get("ILSVRC2010_ID"))] = (str(get("WNID")), str(get("words") or ""),
                                                 get("num_train_images"))
    ids = sorted(leaves)
    if not ids or ids != list(range(1, len(ids) + 1)) or len(ids) > NUM_CLASSES:
        raise JaxnetError(f"{where}: the synsets without children must have ILSVRC2010_ID 1..N"
                          f" (N <= {NUM_CLASSES}), found {len(ids)} ids from {ids[:1]} to {ids[-1:]}")
    wnids = [leaves[i][0] for i in ids]
    if len(set(wnids)) != len(wnids):
        raise JaxnetError(f"{where}: two leaf synsets share a WNID")
    counts = [leaves[i][2] for i in ids]
    return wnids, [leaves[i][1] for i in ids], counts if None not in counts else None


def read_truth(data: bytes, where: str, num_classes: int) -> list:
    """The ILSVRC2010_IDs of a ground-truth file (one per line); JaxnetError naming `where` for a
    line that is not an id in 1..num_classes."""
    ids = []
    for number, line in enumerate(data.decode("ascii", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = int(line.strip())
        except ValueError:
            raise JaxnetError(f"{where} line {number}: {line.strip()!r} is not an ILSVRC2010_ID") from None
        if not 1 <= value <= num_classes:
            raise JaxnetError(f"{where} line {number}: ILSVRC2010_ID {value} is outside"
                              f" 1..{num_classes}")
        ids.append(value)
    return ids


def devkit_member(tar: tarfile.TarFile, suffix: str):
    """The bytes of the devkit's file whose path ends with `suffix` (any top directory), or None."""
    for member in tar.getmembers():
        if member.isfile() and ("/" + member.name).endswith("/" + suffix):
            return tar.extractfile(member).read(), member.name
    return None


def read_devkit(manual_dir) -> tuple:
    """(Devkit, test ground-truth bytes or None, where that came from) from `manual_dir`."""
    manual = Path(manual_dir)
    path = manual / DEVKIT
    test_truth = None
    with tar_errors(path), open_tar(path, "r:*") as tar:
        meta = devkit_member(tar, META)
        if meta is None:
            raise JaxnetError(f"{path} holds no {META}: is it ILSVRC-2010's development kit?")
        wnids, words, counts = read_meta(meta[0], f"{path}:{meta[1]}")
        val = devkit_member(tar, "data/" + VAL_TRUTH)
        test = devkit_member(tar, "data/" + TEST_TRUTH)
    # A ground-truth file in the manual directory takes precedence over the devkit's copy.
    if (manual / VAL_TRUTH).is_file():
        val = (manual / VAL_TRUTH).read_bytes(), None
        val_where = str(manual / VAL_TRUTH)
    elif val is not None:
        val_where = f"{path}:{val[1]}"
    else:
        raise JaxnetError(f"{VAL_TRUTH} is neither in {path} (data/) nor in {manual}")
    if (manual / TEST_TRUTH).is_file():
        test_truth, test_where = (manual / TEST_TRUTH).read_bytes(), str(manual / TEST_TRUTH)
    elif test is not None:
        test_truth, test_where = test[0], f"{path}:{test[1]}"
    else:
        raise JaxnetError(f"{manual / TEST_TRUTH} not found: download the test ground truth"
                          " (released after the challenge) from image-net.org's ILSVRC2010 page")
    devkit = Devkit(wnids, words, counts, read_truth(val[0], val_where, len(wnids)), val_where)
    return devkit, read_truth(test_truth, test_where, len(wnids)), test_where


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def image_names(path) -> list:
    """Base names of the images of a flat tar (reads headers only), sorted; duplicates are errors."""
    with tar_errors(path), open_tar(path, "r:") as tar:
        names = [Path(m.name).name for m in tar if m.isfile() and is_image(m.name)]
    if len(set(names)) != len(names):
        raise JaxnetError(f"{path} holds two images with the same file name")
    return sorted(names)


def labelled(names: list, truth: list, where: str, tar) -> dict:
    """{file name: label (ILSVRC2010_ID - 1)}: line i of the ground truth is the i-th name."""
    if len(truth) != len(names):
        raise JaxnetError(f"{where} has {len(truth)} ILSVRC2010_IDs but {tar} holds {len(names)}"
                          " images: one line per image, in file-name order")
    return {name: ident - 1 for name, ident in zip(names, truth)}


def gunzipped(data: bytes) -> bytes:
    """Some ILSVRC-2010 images are gzip-compressed JPEGs: their bytes, decompressed."""
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise JaxnetError(f"cannot decompress a gzipped image: {e}") from e
    return data


def iter_train(path, label_of: dict):
    """(file name, image bytes, label) for the train tar of per-class tars `WNID.tar`."""
    with tar_errors(path), open_tar(path) as outer:
        for member in outer:
            if not member.isfile() or not member.name.endswith(".tar"):
                continue
            wnid = Path(member.name).stem
            if wnid not in label_of:
                raise JaxnetError(f"{path} holds {member.name}, a class that the devkit's meta.mat"
                                  " does not list: are the devkit and the tar from ILSVRC-2010?")
            with tarfile.open(fileobj=outer.extractfile(member), mode="r|") as inner:
                for image in inner:
                    if image.isfile() and is_image(image.name):
                        yield Path(image.name).name, inner.extractfile(image).read(), label_of[wnid]


def iter_flat(path, labels: dict):
    """(file name, image bytes, label) for the flat val or test tar, in tar order."""
    with tar_errors(path), open_tar(path) as tar:
        for member in tar:
            name = Path(member.name).name
            if member.isfile() and name in labels:
                yield name, tar.extractfile(member).read(), labels[name]


class Ilsvrc2010(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """ILSVRC-2010 (image JPEG, label = ILSVRC2010_ID - 1, file_name; train, validation, test),
    generated TensorFlow-free from the download. `devkit` (a Devkit, read from the manual
    directory by `prepare_ilsvrc2010`) gives the class list; `test_truth` the test ids."""

    name = NAME
    VERSION = tfds.core.Version(VERSION)
    MANUAL_DOWNLOAD_INSTRUCTIONS = (f"manual_dir must hold {TRAIN_TAR}, {VAL_TAR}, {TEST_TAR},"
                                    f" {DEVKIT} and {TEST_TRUTH}.")
    url_infos = {}  # nothing to download (tfds would look for a checksums file beside this module)

    def __init__(self, *, devkit: Devkit, test_truth=(), test_truth_name="", **kwargs):
        self.devkit, self.test_truth, self.test_truth_name = devkit, list(test_truth), test_truth_name
        self.fixed = []  # file names of the images converted to RGB JPEG (or gunzipped)
        super().__init__(**kwargs)

    def _info(self):
        d = self.devkit
        return tfds.core.DatasetInfo(
            builder=self,
            description="ILSVRC-2010 classification (1000 classes; the test set's ground truth"
                        " was released), prepared by jaxnet without TensorFlow. label ="
                        " ILSVRC2010_ID - 1 (the devkit's meta.mat order, not sorted wnids).",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(encoding_format="jpeg"),
                "label": tfds.features.ClassLabel(names=d.wnids),
                "file_name": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
            homepage="https://image-net.org/challenges/LSVRC/2010/",
            metadata=tfds.core.MetadataDict(
                wnids=d.wnids, words=d.words,
                ilsvrc2010_ids=list(range(1, len(d.wnids) + 1))),
        )

    def _split_generators(self, dl_manager):
        manual = Path(dl_manager.manual_dir)
        val_names, test_names = image_names(manual / VAL_TAR), image_names(manual / TEST_TAR)
        val = labelled(val_names, self.devkit.val_truth, self.devkit.val_truth_name, manual / VAL_TAR)
        test = labelled(test_names, self.test_truth, self.test_truth_name, manual / TEST_TAR)
        counts = self.devkit.train_counts
        total = sum(counts) if counts else None  # meta.mat's count of each class's images
        classes = {label: wnid for wnid, label in self.devkit.label_of.items()}
        return {  # each split counted as it streams by (jaxnet.data.completeness)
            "train": self._generate_examples(complete(iter_train(manual / TRAIN_TAR, self.devkit.label_of),
                                                      manual / TRAIN_TAR, "train", total, classes),
                                             "train", total),
            "validation": self._generate_examples(complete(iter_flat(manual / VAL_TAR, val), manual / VAL_TAR,
                                                           "validation", len(val), names=set(val)),
                                                  "validation", len(val)),
            "test": self._generate_examples(complete(iter_flat(manual / TEST_TAR, test), manual / TEST_TAR,
                                                     "test", len(test), names=set(test)),
                                            "test", len(test)),
        }

    def _generate_examples(self, images, split, total=None):
        """Examples of one split, with a progress bar (count, rate, ETA when `total` is known)."""
        progress = tqdm(images, desc=f"{NAME} {split}", total=total, unit=" images",
                        mininterval=2.0, smoothing=0.05)
        for name, data, label in progress:
            try:
                plain = gunzipped(data)
                image, fixed = to_rgb_jpeg(plain)
            except JaxnetError as e:
                raise JaxnetError(f"{split} image {name}: {e}") from e
            if fixed or plain is not data:
                self.fixed.append(name)
            yield name, {"image": image, "label": label, "file_name": name}


def missing_files(manual_dir) -> list:
    manual = Path(manual_dir)
    return [name for name in (TRAIN_TAR, VAL_TAR, TEST_TAR, DEVKIT) if not (manual / name).is_file()]


def prepare_ilsvrc2010(manual_dir, data_dir=""):
    """Convert the ILSVRC-2010 download in `manual_dir` into tfds ArrayRecord files under
    `data_dir` (default: $JAXNET_DATA_DIR, then tfds's ~/tensorflow_datasets).

    tfds writes into a temporary `incomplete.*` directory and renames it only when every split is
    done, so an interrupted run leaves no half dataset: run the same command again. Returns the
    builder (its `data_dir` is where the dataset is, `fixed` the re-encoded images).
    """
    manual = Path(manual_dir)
    missing = missing_files(manual)
    if missing:
        raise JaxnetError(f"{', '.join(missing)} not found in {manual}. {REGISTER} into {manual}")
    devkit, test_truth, test_where = read_devkit(manual)
    data_dir = data_dir or os.environ.get("JAXNET_DATA_DIR") or None
    tfds.disable_progress_bar()  # its bars give no ETA here: ours do
    builder = Ilsvrc2010(devkit=devkit, test_truth=test_truth, test_truth_name=test_where,
                         data_dir=data_dir, file_format="array_record")
    with preparing(builder):  # removes what a killed run left; refuses a concurrent one
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    return builder


def prepared_dir(data_dir=None):
    """The directory of a prepared ILSVRC-2010 (DATA_DIR/ilsvrc2010/1.0.0), or None."""
    roots = [data_dir] if data_dir else [os.environ.get("JAXNET_DATA_DIR") or tfds.core.constants.DATA_DIR]
    for root in roots:
        path = Path(root).expanduser() / NAME / VERSION
        if (path / "dataset_info.json").is_file():
            return path
    return None
