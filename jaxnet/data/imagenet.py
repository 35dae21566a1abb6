"""ILSVRC-2012 as tfds ArrayRecord files, written without TensorFlow.

The stock tfds `imagenet2012` builder reads its tars through `tf.io.gfile` and fixes the CMYK /
PNG images with TensorFlow ops. `Imagenet2012` here is the same dataset (name, version, features,
splits, class order, on-disk layout) generated with `tarfile` and Pillow only, so
`tfds.data_source("imagenet2012", data_dir=...)` reads the result as if tfds had made it.
"""
import contextlib
import fcntl
import io
import os
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
from tqdm import tqdm

from jaxnet import JaxnetError
from jaxnet.data.completeness import complete
from jaxnet.data.imagenet_boxes import box_files, encode_boxes, read_box_archive

TRAIN_TAR = "ILSVRC2012_img_train.tar"
VAL_TAR = "ILSVRC2012_img_val.tar"
_TFDS_IMAGENET = Path(tfds.__file__).parent / "datasets" / "imagenet2012"
LABELS_FILE = _TFDS_IMAGENET / "labels.txt"  # the 1000 wnids, sorted: class index order
VALIDATION_LABELS_FILE = _TFDS_IMAGENET / "validation_labels.txt"  # wnid per sorted val file name
TRAIN_IMAGES = 1_281_167  # in ILSVRC2012_img_train.tar, all 1000 classes


def read_lines(path) -> list:
    try:
        return Path(path).read_text().split()
    except OSError as e:
        raise JaxnetError(f"{path}: cannot read it ({e.strerror or e})") from None


def imagenet_classes() -> list:
    """The 1000 ILSVRC-2012 WordNet ids in class-index order (sorted), as tfds ships them."""
    return read_lines(LABELS_FILE)


def validation_labels(val_names, labels_file=VALIDATION_LABELS_FILE) -> dict:
    """{val file name: wnid}: `labels_file` lists one wnid per validation image, in the sorted
    order of the file names (ILSVRC2012_val_00000001.JPEG, ...)."""
    labels = read_lines(labels_file)
    names = sorted(val_names)
    if len(labels) != len(names):
        raise JaxnetError(f"{labels_file} has {len(labels)} labels but the validation tar holds"
                          f" {len(names)} images: pass the validation tar's label file with"
                          " --validation_labels=FILE (one wnid per image, in file-name order)")
    return dict(zip(names, labels))


def to_rgb_jpeg(data: bytes) -> tuple:
    """(JPEG bytes, fixed): the image as an RGB JPEG. CMYK or greyscale JPEGs and PNGs saved as
    .JPEG (ILSVRC-2012's traps) are re-encoded (quality 100, as tfds does); RGB JPEGs pass as is."""
    try:
        image = PIL.Image.open(io.BytesIO(data))  # reads the header only
        if image.format == "JPEG" and image.mode == "RGB":
            return data, False
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=100)
    except (OSError, ValueError) as e:
        raise JaxnetError(f"cannot decode image: {e}") from e
    return out.getvalue(), True


def open_tar(path, mode="r|"):
    """A streaming tarfile, or a JaxnetError naming the file if it is missing."""
    path = Path(path)
    if not path.is_file():
        raise JaxnetError(f"{path} not found: download it from image-net.org (after registering)"
                          " and put it in the manual directory")
    return tarfile.open(path, mode)


def tar_names(path) -> list:
    """Member file names of a tar (reads headers only), or a clear error for a damaged one."""
    with tar_errors(path):
        with open_tar(path, "r:") as tar:
            return [m.name for m in tar if m.isfile()]


class tar_errors:
    """Turn tarfile's low-level errors into one JaxnetError that names the archive."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is not None and issubclass(kind, (tarfile.TarError, EOFError, OSError)) \
                and not issubclass(kind, FileNotFoundError):
            raise JaxnetError(f"{self.path} is truncated or damaged ({error}); download it again")
        return False


def iter_train(path, classes):
    """(file name, JPEG bytes, wnid) for the train tar: a tar of per-class tars `WNID.tar`."""
    wanted = set(classes)
    with tar_errors(path), open_tar(path) as outer:
        for member in outer:
            wnid = Path(member.name).stem
            if not member.isfile() or wnid not in wanted:
                continue
            with tarfile.open(fileobj=outer.extractfile(member), mode="r|") as inner:
                for image in inner:
                    if image.isfile():
                        yield Path(image.name).name, inner.extractfile(image).read(), wnid


def iter_validation(path, labels: dict):
    """(file name, JPEG bytes, wnid) for the flat validation tar; images of classes not in
    `labels` (a reduced class list) are skipped."""
    with tar_errors(path), open_tar(path) as tar:
        for member in tar:
            name = Path(member.name).name
            if member.isfile() and name in labels:
                yield name, tar.extractfile(member).read(), labels[name]


class Imagenet2012(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """tfds's `imagenet2012` (v5.1.0: image JPEG, label, file_name), generated TensorFlow-free.

    `classes` (default: the 1000 of labels.txt) and `validation_labels_file` may be replaced, so
    tests can build a miniature ImageNet with the same code path. With `manual_dir` holding the
    box archives (jaxnet.data.imagenet_boxes), every example also carries `boxes` [K, 4]
    (normalised ymin, xmin, ymax, xmax) and `box_labels` [K]; a train image without a box file
    has K = 0.
    """

    name = "imagenet2012"
    VERSION = tfds.core.Version("5.1.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"manual_dir must hold {TRAIN_TAR} and {VAL_TAR}."
    url_infos = {}  # nothing to download (tfds would look for a checksums file beside this module)

    def __init__(self, *, classes=None, validation_labels_file=VALIDATION_LABELS_FILE,
                 manual_dir=None, train_images=None, **kwargs):
        self.classes = list(classes) if classes is not None else imagenet_classes()
        # the train images to expect (None: TRAIN_IMAGES for all 1000 classes; of a subset, only
        # that each class has its archive is known)
        self.train_images = (train_images if train_images is not None else
                             TRAIN_IMAGES if self.classes == imagenet_classes() else None)
        self.box_files = box_files(manual_dir) if manual_dir else {}
        if self.classes != sorted(self.classes):
            raise JaxnetError("ImageNet classes must be sorted WordNet ids (tfds labels.txt order)")
        self.validation_labels_file = validation_labels_file
        self.fixed = []  # file names of the images converted to RGB JPEG
        super().__init__(**kwargs)

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description="ILSVRC-2012 classification (ImageNet-1k), prepared by jaxnet without"
                        " TensorFlow; same layout as tfds's imagenet2012 builder.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(encoding_format="jpeg"),
                "label": tfds.features.ClassLabel(names=self.classes),
                "file_name": tfds.features.Text(),
                **({"boxes": tfds.features.Tensor(shape=(None, 4), dtype=np.float32),
                    "box_labels": tfds.features.Tensor(shape=(None,), dtype=np.int64)}
                   if self.box_files else {}),
            }),
            supervised_keys=("image", "label"),
            homepage="https://image-net.org/",
        )

    def _split_generators(self, dl_manager):
        manual = Path(dl_manager.manual_dir)
        train, val = manual / TRAIN_TAR, manual / VAL_TAR
        for path in (train, val):
            if not path.is_file():
                raise JaxnetError(f"{path} not found. ImageNet must be downloaded by hand: register"
                                  f" at image-net.org, download {TRAIN_TAR} and {VAL_TAR} into"
                                  f" {manual}")
        labels = validation_labels(tar_names(val), self.validation_labels_file)
        wanted = set(self.classes)
        labels = {name: wnid for name, wnid in labels.items() if wnid in wanted}
        train_images = complete(iter_train(train, self.classes), train, "train", self.train_images,
                                {c: c for c in self.classes})
        val_images = complete(iter_validation(val, labels), val, "validation", len(labels),
                              names=set(labels))
        return {
            "train": self._generate_examples(train_images, "train", self.train_images),
            "validation": self._generate_examples(val_images, "validation", len(labels)),
        }

    def _generate_examples(self, images, split, total=None):
        """Examples of one split, with a progress bar (count, rate, ETA when `total` is known)."""
        boxes, index = None, {w: i for i, w in enumerate(self.classes)}
        if self.box_files:
            boxes = (read_box_archive(self.box_files[split]) if split in self.box_files else {})
        progress = tqdm(images, desc=f"imagenet2012 {split}", total=total, unit=" images",
                        mininterval=2.0, smoothing=0.05)
        for name, data, wnid in progress:
            data, fixed = to_rgb_jpeg(data)
            if fixed:
                self.fixed.append(name)
            example = {"image": data, "label": wnid, "file_name": name}
            if boxes is not None:
                example.update(encode_boxes(boxes.get(Path(name).stem, []), index))
            yield name, example


def check_wnids(classes) -> None:
    """`classes` (a --classes subset) must be ILSVRC-2012 wnids: an unknown one would be a class
    without images."""
    if not classes:
        raise JaxnetError("--classes lists no wnids")
    known = set(imagenet_classes())
    unknown = [c for c in classes if c not in known]
    if unknown:
        named = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        verb = "is not an ILSVRC-2012 class" if len(unknown) == 1 else "are not ILSVRC-2012 classes"
        raise JaxnetError(f"--classes: {named} {verb} (the 1000 wnids of {LABELS_FILE},"
                          " e.g. n01440764)")


def describe_classes(classes) -> str:
    if list(classes) == imagenet_classes():
        return "all 1000 classes"
    shown = ", ".join(classes[:4]) + (", ..." if len(classes) > 4 else "")
    return f"{len(classes)} classes ({shown})"


def check_prepared_classes(builder) -> None:
    """A dataset already prepared where `builder` would write must hold its classes (the label
    feature's names record the --classes subset): re-running with another subset is refused."""
    if not builder.is_prepared():
        return
    prepared = tfds.builder_from_directory(builder.data_dir).info.features["label"].names
    if list(prepared) != list(builder.classes):
        raise JaxnetError(f"{builder.data_dir} already holds imagenet2012 prepared with"
                          f" {describe_classes(prepared)}, not the {describe_classes(builder.classes)}"
                          f" asked for: pass another --data_dir, or delete {builder.data_dir} and"
                          " run again")


@contextlib.contextmanager
def preparing(builder):
    """Hold a lock beside `builder`'s dataset directory while preparing it. A second preparation
    into the same place is refused; `incomplete.*` directories there that no running preparation
    holds (left by a killed one: tfds removes its own only on a clean error) are deleted first,
    said in one line."""
    root = Path(builder.data_dir).parent  # DATA/NAME[/CONFIG]: tfds's incomplete.XXXXXX_VERSION
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".jaxnet_prepare.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JaxnetError(f"another preparation of {builder.name} is writing into {root}: wait"
                              " for it to finish (or stop it) and run again") from None
        stale = sorted(d for d in root.glob("incomplete.*") if d.is_dir())
        if stale:
            size = sum(f.stat().st_size for d in stale for f in d.rglob("*") if f.is_file())
            for d in stale:
                shutil.rmtree(d, ignore_errors=True)
            print(f"removed {', '.join(str(d) for d in stale)} ({size / 1e9:.1f} GB), left by an"
                  " interrupted preparation", file=sys.stderr)
        yield


def prepare_imagenet(manual_dir, data_dir="", classes=None,
                     validation_labels_file=VALIDATION_LABELS_FILE, train_images=None):
    """Convert the two ILSVRC-2012 tars in `manual_dir` into tfds ArrayRecord files under
    `data_dir` (default: $JAXNET_DATA_DIR, then tfds's ~/tensorflow_datasets).

    tfds writes into a temporary `incomplete.*` directory and renames it only when every split is
    done, so an interrupted run leaves no half dataset: run the same command again (it removes
    what a killed run left). The class subset is recorded as the label feature's names; a
    dataset already prepared there with other classes is refused. What is read is counted: a
    missing class archive, validation image or a train count other than `train_images` (None:
    1,281,167 for all classes, unchecked for a subset) stops it, naming what is missing, and
    nothing is prepared. Returns the builder (its
    `data_dir` is where the dataset is, `fixed` the re-encoded images).
    """
    if classes is not None:
        check_wnids(classes)
    data_dir = data_dir or os.environ.get("JAXNET_DATA_DIR") or None
    tfds.disable_progress_bar()  # its bars give no ETA here (no split sizes known): ours do
    builder = Imagenet2012(data_dir=data_dir, file_format="array_record", classes=classes,
                           validation_labels_file=validation_labels_file, manual_dir=manual_dir,
                           train_images=train_images)
    check_prepared_classes(builder)
    config = tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    with preparing(builder):
        builder.download_and_prepare(download_config=config)
    return builder

