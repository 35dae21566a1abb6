"""Random-access data sources: `len(source)` and `source[i] -> {"image": uint8 HWC, "label": int}`.

Grain reads them by index, so shuffling, sharding over hosts and resuming need no extra state.
"""
import gzip
import os
import re
import zlib
from pathlib import Path

import numpy as np

from jaxnet import JaxnetError
from jaxnet.mesh import usable_cores

FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


class ArraySource:
    """In-memory images [N, H, W, C] uint8 and labels [N]; grain's RandomAccessDataSource protocol."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 [N, H, W, C], got {images.dtype} {images.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.astype(np.int32)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        return {"image": self.images[index], "label": self.labels[index]}

    def rows(self, index) -> dict:
        """Rows `index` (an index array or slice) of every field, as arrays."""
        return {"image": self.images[index], "label": self.labels[index]}

    def __repr__(self) -> str:
        return f"ArraySource({len(self)} x {self.images.shape[1:]})"


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzipped or not), the format of MNIST and Fashion-MNIST."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:  # cut short, corrupt, not gzip, unreadable
        problem = "is truncated" if isinstance(e, EOFError) else "cannot be read"
        raise JaxnetError(f"{path} {problem} ({getattr(e, 'strerror', None) or e}): download it"
                          " again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise JaxnetError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise JaxnetError(f"{path} is truncated: header says {shape}, found {body.size} bytes")
    return body.reshape(shape)


def fashion_mnist_dirs(data_dir: str = ""):
    """Where Fashion-MNIST is looked for, in order."""
    dirs = [data_dir, os.environ.get("JAXNET_DATA_DIR", ""), FASHION_MNIST_SYSTEM_DIR]
    return [Path(d) for d in dirs if d]


def load_fashion_mnist(split: str, data_dir: str = "") -> ArraySource:
    """Fashion-MNIST from IDX files: `data_dir`, $JAXNET_DATA_DIR, Debian's dataset-fashion-mnist.
    `split` may be a tfds-style slice of one, e.g. 'train[:50000]' and 'train[50000:]': a held-out
    part of train to tune on without touching the test split."""
    sliced = re.fullmatch(r"(\w+)\[(-?\d*):(-?\d*)\]", split)
    if sliced:
        whole = load_fashion_mnist(sliced[1], data_dir)
        part = slice(*(int(x) if x else None for x in sliced.group(2, 3)))
        return ArraySource(whole.images[part], whole.labels[part])
    if split not in FASHION_MNIST_FILES:
        raise JaxnetError(f"Fashion-MNIST has splits 'train' and 'test' (or slices of them such as"
                          f" 'train[:50000]'), not {split!r}")
    image_file, label_file = FASHION_MNIST_FILES[split]
    looked = fashion_mnist_dirs(data_dir)
    for d in looked:
        for sub in (d, d / "fashion-mnist", d / "fashion_mnist"):
            if (sub / image_file).exists() and (sub / label_file).exists():
                images = read_idx(sub / image_file)[..., None]
                return ArraySource(images, read_idx(sub / label_file))
    try:
        return _fashion_mnist_from_tfds(split, data_dir)
    except Exception as e:  # no network, no TensorFlow-free builder, ...: report and guide
        tfds_error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    raise JaxnetError(
        f"Fashion-MNIST {split} files ({image_file}, {label_file}) not found. Looked in: "
        + ", ".join(str(d) for d in looked)
        + f", then tensorflow-datasets (which failed with {tfds_error})."
        + " Get them with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or download the"
        " four *-ubyte.gz files from the Fashion-MNIST GitHub repository into a directory and pass"
        " --config.data_dir=DIR (or set JAXNET_DATA_DIR)."
    )



def fashion_mnist_arrays(data_dir: str = ""):
    """(train images [60000, 28, 28, 1] uint8, train labels, test images, test labels): the
    classical pipelines' whole-split arrays, found as load_fashion_mnist finds them."""
    train, test = (load_fashion_mnist(split, data_dir) for split in ("train", "test"))
    return train.images, train.labels, test.images, test.labels

def _fashion_mnist_from_tfds(split: str, data_dir: str) -> ArraySource:
    """Fashion-MNIST through tfds (downloads and prepares it when the network allows)."""
    import tensorflow_datasets as tfds

    source = tfds.data_source("fashion_mnist", split=split, data_dir=data_dir or None,
                              download=True, builder_kwargs={"file_format": "array_record"})
    records = [source[i] for i in range(len(source))]
    images = np.stack([np.asarray(r["image"], np.uint8).reshape(28, 28, 1) for r in records])
    return ArraySource(images, np.array([r["label"] for r in records]))


def synthetic(num_examples: int, image_size: int, channels: int, num_classes: int, seed: int):
    """Random images with labels, identical for the same arguments (for benchmarks and tests)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (num_examples, image_size, image_size, channels), np.uint8)
    labels = rng.integers(0, num_classes, num_examples)
    return ArraySource(images, labels)


IMAGENET_HELP = (
    "ImageNet (ILSVRC-2012) was not found prepared in {where}. Its licence requires you to"
    " register at image-net.org and download ILSVRC2012_img_train.tar (138 GB) and"
    " ILSVRC2012_img_val.tar (6.3 GB) yourself into a directory DIR; then convert them once"
    " (no TensorFlow needed): python -m jaxnet prepare imagenet2012 --manual_dir=DIR"
    " --data_dir=DATA, and train with --config.data_dir=DATA (or set JAXNET_DATA_DIR)."
    " Meanwhile, every recipe can be tried end to end on random data, at a batch size a laptop"
    " holds: --config.dataset=synthetic --config.batch_size=32 --config.num_epochs=0.001; and"
    " configs/fashion_mnist.py trains on real data."
)
ILSVRC2010_HELP = (
    "ILSVRC-2010 was not found prepared in {where}. Register at image-net.org and download into a"
    " directory DIR: ILSVRC2010_images_train.tar, ILSVRC2010_images_val.tar,"
    " ILSVRC2010_images_test.tar, the development kit ILSVRC2010_devkit-1.0.tar.gz and"
    " ILSVRC2010_test_ground_truth.txt; then convert them once (no TensorFlow needed):"
    " python -m jaxnet prepare ilsvrc2010 --manual_dir=DIR --data_dir=DATA, and pass"
    " --config.data_dir=DATA (or set JAXNET_DATA_DIR)."
)
# tfds datasets readable by their bare name; any other tfds dataset works as "tfds:NAME".
TFDS_NAMES = ("imagenet2012", "ilsvrc2010", "imagenette", "cifar10", "cifar100")
DATASETS = ("fashion_mnist, fashion_mnist_scenes, synthetic, imagenet2012, ilsvrc2010, imagenette, cifar10, cifar100,"
            " tfds:NAME, folder")


class Subset:
    """The items `indices` of a random-access source (or of an EncodedSource's records)."""

    def __init__(self, source, indices):
        self.source, self.indices = source, indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.source[int(self.indices[i])]


class LocatedRecords:
    """A prepared split's records (a tfds ArrayRecord data source) with a `where` field, "NAME
    SPLIT record I (FILE_NAME) in DIRECTORY", that decode errors quote; a record that cannot be
    read (a damaged file) is a JaxnetError saying the same."""

    def __init__(self, records, split_name: str, directory):
        self.records, self.split_name, self.directory = records, split_name, directory

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index):
        where = f"{self.split_name} record {index}"
        damaged = f" in {self.directory} is damaged; prepare the dataset again"
        try:
            row = self.records[index]
        except (RuntimeError, ValueError, OSError, EOFError) as e:  # array_record: "Corrupted ..."
            raise JaxnetError(f"{where} cannot be read ({first_line(e)}): the file{damaged}") from None
        if not isinstance(row.get("image"), (bytes, np.bytes_)):
            raise JaxnetError(f"{where} has no encoded image: the file{damaged}")
        name = row.get("file_name")
        if name is not None and len(name):
            where += f" ({name.decode(errors='replace') if isinstance(name, bytes) else name})"
        return {**row, "where": f"{where} in {self.directory}"}


def first_line(error) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


class EncodedSource:
    """Encoded images (JPEG/PNG bytes) with labels, decoded per example inside grain.

    `records[i]` -> {"image": bytes, "label": int} is what the train pipeline reads (it decodes
    with the config's train transform); `source[i]` is the eval view, decoded and centre-cropped
    by `eval_transform` to a fixed-size uint8 image, so eval_batches and any other reader get
    ready arrays. `num_workers` is how many grain worker processes decode.
    """

    def __init__(self, records, eval_transform, num_workers: int = 0, name: str = ""):
        self.records, self.eval_transform = records, eval_transform
        self.num_workers, self.name = num_workers, name

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index):
        from jaxnet.data.transforms import locate_errors

        return locate_errors(self.eval_transform).map(self.records[index])

    def __repr__(self) -> str:
        return f"EncodedSource({self.name}, {len(self)} images)"


def check_decodable(source, progress=None, thorough: bool = False, threads: int = 0) -> int:
    """Check that every image of `source` decodes, so that a damaged image (say in the eval
    split) stops a run at its start, not at its first evaluation hours in. Cheap: per image the
    header, and the end-of-image marker a cut-short JPEG lacks (jaxnet.data.transforms.
    check_image; `thorough`: decode each at 1/8 scale); `threads` read and check in parallel
    (0: one per usable core, at most 16). Raises one JaxnetError naming up to three bad images
    (their files, or dataset, split and record index) and how many there are. In-memory sources
    (Fashion-MNIST, synthetic) have nothing to check. `progress`: None or an object with
    update(n), such as a tqdm bar. Returns the number of images checked."""
    from concurrent.futures import ThreadPoolExecutor

    from jaxnet.data.transforms import check_image, decode_error

    if not isinstance(source, EncodedSource):
        return 0
    records = source.records

    def check(start):
        problems = []
        for i in range(start, min(start + 64, len(records))):
            record = None
            try:
                record = records[i]
                check_image(record["image"], thorough)
            except JaxnetError as e:  # the record cannot be read (it says where) or decoded
                problems.append(str(decode_error(record, e)) if record is not None else str(e))
        return problems

    bad = []
    threads = threads or min(16, usable_cores())
    with ThreadPoolExecutor(threads) as pool:
        for start, problems in zip(range(0, len(records), 64),
                                   pool.map(check, range(0, len(records), 64))):
            bad += problems
            if progress is not None:
                progress.update(min(64, len(records) - start))
    if bad:
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        count = f"{len(bad)} of {len(records)} images of {source.name} do not decode: " if len(bad) > 1 else ""
        raise JaxnetError(count + "; ".join(bad[:3]) + more)
    return len(records)


def resolve_workers(config) -> int:
    """config.num_workers, with -1 (auto) = every usable core for decoding."""
    if config.num_workers >= 0:
        return config.num_workers
    return usable_cores()


def encoded_source(records, config, name: str) -> EncodedSource:
    """Wrap `records` with the config's eval transform and worker count."""
    from jaxnet.data.transforms import EvalTransform

    if config.channels != 3:
        raise JaxnetError(f"{name} images are decoded as RGB: set config.channels = 3")
    return EncodedSource(records, EvalTransform(config.image_size, eval_resize(config)),
                         resolve_workers(config), name)


def eval_resize(config) -> int:
    """Shorter side before the eval centre crop; 0 = squash the whole image (transform resize)."""
    if config.eval_resize >= 0:
        return config.eval_resize
    return 0 if config.train_transform == "resize" else round(config.image_size * 256 / 224)


def tfds_source(name: str, split: str, config) -> EncodedSource:
    """A prepared tfds dataset (ArrayRecord files), images left encoded. Datasets tfds can
    download are downloaded and prepared first; imagenet2012 needs jaxnet.data.prepare."""
    import tensorflow_datasets as tfds

    from jaxnet.data.prepare import download_and_prepare, quiet_tfds, tfds_builder

    data_dir = config.data_dir or os.environ.get("JAXNET_DATA_DIR") or None
    if name == "ilsvrc2010":  # no tfds builder: only a prepared copy can be read
        from jaxnet.data.ilsvrc2010 import NAME, VERSION, prepared_dir

        if prepared_dir(data_dir) is None:
            where = Path(data_dir or tfds.core.constants.DATA_DIR) / NAME / VERSION
            raise JaxnetError(ILSVRC2010_HELP.format(where=where))
    builder = tfds_builder(name, data_dir)
    with quiet_tfds():
        prepared = builder.is_prepared()
    if not prepared:
        if name == "imagenet2012":
            raise JaxnetError(IMAGENET_HELP.format(where=builder.data_dir))
        try:
            download_and_prepare(builder, data_dir)
        except Exception as e:
            raise JaxnetError(
                f"{name} is not prepared in {builder.data_dir} and tfds could not prepare it"
                f" ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Prepare it"
                f" where there is network: python -m jaxnet prepare {name} --data_dir=DIR,"
                " then pass --config.data_dir=DIR") from e
    on_disk = tfds.builder_from_directory(builder.data_dir).info
    if split.split("[")[0] not in on_disk.splits:  # tfds reads slices such as train[:50000]
        raise JaxnetError(f"{name} has splits {', '.join(on_disk.splits)}, not {split!r}"
                          " (set config.train_split / config.eval_split)")
    classes = on_disk.features["label"].num_classes
    check_classes(classes, config, f"{name} in {builder.data_dir}")
    if "boxes" in on_disk.features:  # prepared with box files: read them (as written)
        records = tfds.builder_from_directory(builder.data_dir).as_data_source(
            split, decoders={"image": tfds.decode.SkipDecoding()})
    else:
        records = tfds.data_source(name, split=split, data_dir=data_dir, download=False,
                                   decoders={"image": tfds.decode.SkipDecoding()})
    records = LocatedRecords(records, f"{name} {split}", builder.data_dir)
    return encoded_source(records, config, f"{name}:{split}")


def create_source(config, split: str):
    """The source for `split` of `config.dataset`, restricted to config.classes (relabelled) and,
    for the train split, to config.examples_per_class; missing data raises JaxnetError."""
    source = _dataset_source(config, split)
    if not config.classes and not (config.examples_per_class and split == config.train_split):
        return source
    per_class = config.examples_per_class if split == config.train_split else 0
    return select_examples(source, config.classes, per_class, config.seed)


def dataset_classes(config) -> int:
    """How many classes the dataset itself has as the config sees it: config.num_classes, or
    enough for the ids in config.classes when it picks a subset."""
    return max(config.num_classes, max(config.classes) + 1) if config.classes else config.num_classes


def check_classes(found: int, config, where) -> None:
    """A dataset with `found` classes must have config.num_classes, or every id of config.classes."""
    if config.classes and max(config.classes) >= found:
        raise JaxnetError(f"{where} has {found} classes; config.classes asks for {tuple(config.classes)}")
    if not config.classes and found != config.num_classes:
        raise JaxnetError(f"{where} has {found} classes but config.num_classes is {config.num_classes}")


def source_labels(source) -> np.ndarray:
    """Every example's label, without decoding images where the source allows it."""
    if isinstance(source, ArraySource):
        return source.labels
    rows = source.records if isinstance(source, EncodedSource) else source
    return np.array([int(rows[i]["label"]) for i in range(len(rows))], np.int64)


class Relabelled:
    """A source (or an EncodedSource's records) with its labels mapped through `mapping`."""

    def __init__(self, source, mapping: dict):
        self.source, self.mapping = source, mapping

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        row = dict(self.source[i])
        row["label"] = self.mapping[int(row["label"])]
        return row


def select_examples(source, classes=(), per_class: int = 0, seed: int = 0):
    """The examples of `classes` (relabelled 0..k-1 in that order; () = all classes, labels kept)
    and, with `per_class` > 0, at most that many of each class: the first ones of a permutation
    seeded by `seed`, kept in the source's order."""
    labels = source_labels(source)
    keep = np.isin(labels, classes) if len(classes) else np.ones(len(labels), bool)
    if per_class:
        order = np.random.default_rng(seed).permutation(len(labels))
        order = order[keep[order]]
        chosen, counts = [], {}
        for i in order:
            if counts.get(labels[i], 0) < per_class:
                counts[labels[i]] = counts.get(labels[i], 0) + 1
                chosen.append(i)
        index = np.sort(np.asarray(chosen, np.int64))
    else:
        index = np.flatnonzero(keep)
    if not len(index):
        raise JaxnetError(f"no examples of classes {tuple(classes)} in {source!r}")
    mapping = {int(c): k for k, c in enumerate(classes)}
    if isinstance(source, ArraySource):
        new = labels[index] if not mapping else np.array([mapping[int(v)] for v in labels[index]])
        if hasattr(source, "take"):  # scenes: boxes and masks keep their own class ids
            return source.take(index, new)
        return ArraySource(source.images[index], new)
    if isinstance(source, EncodedSource):
        records = Subset(source.records, index)
        return EncodedSource(Relabelled(records, mapping) if mapping else records,
                             source.eval_transform, source.num_workers, source.name)
    subset = Subset(source, index)
    return Relabelled(subset, mapping) if mapping else subset


def check_data_dir(config) -> None:
    """A data directory given (config.data_dir, else $JAXNET_DATA_DIR) must exist: a typo must not
    fall back silently to another copy of the data (or download a new one)."""
    given, name = config.data_dir, "--config.data_dir"
    if not given and os.environ.get("JAXNET_DATA_DIR"):
        given, name = os.environ["JAXNET_DATA_DIR"], "$JAXNET_DATA_DIR"
    if given and not Path(given).expanduser().is_dir():
        downloads = config.dataset not in ("folder", "imagenet2012", "ilsvrc2010")
        raise JaxnetError(f"{name}={given} does not exist: fix the path" + (
            f" (or create the directory to have {config.dataset} downloaded there)" if downloads else ""))


def _dataset_source(config, split: str):
    """The whole split of config.dataset."""
    if config.dataset != "synthetic":
        check_data_dir(config)
    if config.dataset == "fashion_mnist":
        return load_fashion_mnist(split, config.data_dir)
    if config.dataset == "fashion_mnist_scenes":
        from jaxnet.data.scenes import load_scenes

        return load_scenes(config, split)
    if config.dataset == "synthetic":
        seed = config.seed + (0 if split == config.train_split else 1)
        return synthetic(config.synthetic_examples, config.image_size, config.channels,
                         dataset_classes(config), seed)
    if config.dataset in TFDS_NAMES or config.dataset.startswith("tfds:"):
        return tfds_source(config.dataset.removeprefix("tfds:"), split, config)
    if config.dataset == "folder":
        from jaxnet.data.folder import folder_records

        records = folder_records(config.data_dir, split)
        check_classes(len(records.classes), config, config.data_dir)
        return encoded_source(records, config, f"folder:{split}")
    raise JaxnetError(f"unknown dataset {config.dataset!r}; choose one of {DATASETS}")
