"""Data for experiments: class-balanced subsets of Fashion-MNIST written once, tfds split slices,
and the report's dataset applied to a config."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from jaxnet.data.sources import FASHION_MNIST_FILES, load_fashion_mnist
from jaxnet.experiments.context import Context


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


def balanced_indices(labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """`count` indices, as many per class as possible (a seeded random choice), in random order."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    take = [p[: count // len(classes) + (i < count % len(classes))] for i, p in enumerate(per)]
    return rng.permutation(np.concatenate(take))


def fashion_mnist_subset(ctx: Context, train: int, test: int) -> str:
    """A data_dir holding `train` training and `test` test images of Fashion-MNIST (class
    balanced, seeded), written once under OUT/data as IDX files; returns the directory."""
    target = ctx.out / "data" / f"fashion_mnist_{train}_{test}"
    done = target / "done"
    if done.exists():
        return str(target)
    target.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("test", test)):
        source = load_fashion_mnist(split, ctx.data_dir)
        keep = np.sort(balanced_indices(source.labels, min(count, len(source))))
        image_file, label_file = FASHION_MNIST_FILES[split]
        _write_idx(target / image_file, source.images[keep, :, :, 0])
        _write_idx(target / label_file, source.labels[keep].astype(np.uint8))
    done.write_text("ok\n")
    return str(target)


def use_subset(config, ctx: Context, train: int, test: int) -> None:
    """Train on `train` and evaluate on `test` examples of the config's dataset (evaluated in
    batches of 256: any power-of-two device count up to 256 divides them)."""
    config.eval_batch_size = 256
    if config.dataset == "fashion_mnist":
        config.data_dir = fashion_mnist_subset(ctx, train, test)
    else:  # tfds datasets take split slices
        config.train_split = f"{config.train_split}[:{train}]"
        config.eval_split = f"{config.eval_split}[:{test}]"


def for_dataset(config, ctx: Context) -> None:
    """Point a config at the report's data directory (the dataset itself is the variant's)."""
    if ctx.data_dir and not config.data_dir:
        config.data_dir = ctx.data_dir


def variant(base: str, ctx: Context) -> str:
    """A config variant with the report's dataset appended (`resnet20` -> `resnet20,cifar10`)."""
    return base if ctx.dataset == "fashion_mnist" else f"{base},{ctx.dataset}"
