"""Grain input pipelines: a shuffled, augmented, checkpointable training stream and an
exactly-once evaluation pass.

Images stay uint8 on the host (a quarter of float32's bandwidth); normalisation happens on the
device inside the jitted step (`jaxnet.training.steps.normalize`). An image that does not decode
is a one-line JaxnetError naming it (its file, or dataset, split and record index); raised in a
grain worker process, grain re-raises it in this one with its type and message unchanged.
"""
import functools
import math
import os
import threading
import time

import grain
import numpy as np
from absl import flags

from jaxnet.data.sources import ArraySource, EncodedSource
from jaxnet.data.transforms import TrainTransform, locate_errors


class AugmentBatch(grain.transforms.RandomMap):
    """Small-image augmentation on a whole uint8 batch at once (vectorised numpy): a random crop of
    the image zero-padded by `padding`, a horizontal flip, random erasing.

    With several processes, a local batch holds rows process_index::process_count of the global
    batch; the random numbers are drawn for the whole global batch (grain seeds every process's
    batch k alike) and this process's rows used, so augmentation does not depend on the number
    of processes.
    """

    def __init__(self, kind: str, padding: int, erase_prob: float, process_index: int = 0,
                 process_count: int = 1):
        self.kind, self.padding, self.erase_prob = kind, padding, erase_prob
        self.process_index, self.process_count = process_index, process_count

    def random_map(self, batch, rng: np.random.Generator):
        images = batch["image"]
        p, count = self.process_index, self.process_count
        if self.kind == "crop_flip" and self.padding:
            images = random_crops(images, self.padding, rng, p, count)
        if self.kind in ("crop_flip", "flip"):
            flip = (rng.random(len(images) * count) < 0.5)[p::count]
            images = images.copy() if images is batch["image"] else images
            for i in np.flatnonzero(flip):
                images[i] = images[i, :, ::-1]
        if self.erase_prob:
            images = images.copy()
            for i in np.flatnonzero(rng.random(len(images) * count) < self.erase_prob):
                erased = random_erase(images[i // count], rng)  # drawn for every global row
                if i % count == p:
                    images[i // count] = erased
        return {**batch, "image": np.ascontiguousarray(images)}


def random_crops(images: np.ndarray, padding: int, rng: np.random.Generator,
                 process_index: int = 0, process_count: int = 1) -> np.ndarray:
    """Per image, a crop of its own size from it zero-padded by `padding` on each side (offsets
    drawn for a global batch of process_count local ones; this process's rows used). Copies
    each image's shifted window once, without building the padded batch."""
    n, h, w, _ = images.shape
    offsets = rng.integers(0, 2 * padding + 1, size=(2, n * process_count)) - padding
    dy, dx = offsets[:, process_index::process_count]
    out = np.zeros_like(images)
    for i in range(n):
        y, x = dy[i], dx[i]
        out[i, max(0, -y):h - max(0, y), max(0, -x):w - max(0, x)] = \
            images[i, max(0, y):h + min(0, y), max(0, x):w + min(0, x)]
    return out


def random_erase(image: np.ndarray, rng: np.random.Generator, area=(0.02, 0.4),
                 aspect=(0.3, 3.3)) -> np.ndarray:
    """Random erasing (Zhong et al. 2017): one rectangle of random area/aspect set to noise."""
    h, w, c = image.shape
    for _ in range(10):
        target = rng.uniform(*area) * h * w
        ratio = math.exp(rng.uniform(math.log(aspect[0]), math.log(aspect[1])))
        eh, ew = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
        if 0 < eh < h and 0 < ew < w:
            top, left = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
            image = image.copy()
            image[top: top + eh, left: left + ew] = rng.integers(0, 256, (eh, ew, c), np.uint8)
            return image
    return image


def local_batch_size(global_batch: int, process_count: int) -> int:
    if global_batch % process_count:
        raise ValueError(f"batch size {global_batch} is not divisible by {process_count} processes")
    return global_batch // process_count


def train_loader(source, config, process_index: int = 0, process_count: int = 1):
    """An endless stream of augmented local batches, reshuffled every epoch (seeded).

    Each process reads its own shard: every process_count-th example of one global shuffled
    stream, so the global batch k (the union of the processes' batches k) and its augmentation
    are the same for any number of processes, and every process's iterator stands at the same
    batch index. Iterate with `iter(loader)`; the iterator's state goes into checkpoints
    (grain.checkpoint), so a resumed run continues with the same next batch. Augmentation
    randomness is a function of (seed, example or batch index): resume-exact.

    Encoded images (an EncodedSource) are decoded and cropped per example by the config's
    train transform (jaxnet.data.transforms.TrainTransform), in source.num_workers processes.
    """
    encoded = isinstance(source, EncodedSource)
    in_memory = isinstance(source, ArraySource)
    rows = grain.MapDataset.range(len(source)) if in_memory else grain.MapDataset.source(
        source.records if encoded else source)
    dataset = rows.shuffle(seed=config.seed).repeat()  # reshuffles each epoch: epoch e, seed + e
    if encoded:  # per example, seeded by its global position: independent of processes
        dataset = dataset.random_map(locate_errors(train_transform(config)), seed=config.seed)
    dataset = (dataset[process_index::process_count]
               .batch(local_batch_size(config.batch_size, process_count), drop_remainder=True))
    if in_memory:  # a batch of shuffled indices, gathered at once (not example by example)
        dataset = dataset.map(GatherRows(source))
    small_image_augment = not encoded or config.train_transform == "resize"
    if hasattr(source, "boxes"):  # scenes: boxes and masks move with the pixels
        from jaxnet.data.scenes import SceneAugment

        if config.augment != "none":
            dataset = dataset.random_map(SceneAugment(config.augment, config.scenes.crop_area,
                                                      process_index, process_count), seed=config.seed)
    elif (small_image_augment and config.augment != "none") or config.random_erasing:
        augment = AugmentBatch(config.augment if small_image_augment else "none",
                               config.crop_padding, config.random_erasing,
                               process_index, process_count)
        dataset = dataset.random_map(augment, seed=config.seed)
    return _prefetch(dataset, source.num_workers if encoded else max(config.num_workers, 0))


class GatherRows(grain.transforms.Map):
    """A batch of indices into an in-memory source -> the batch of its rows, in one fancy index
    per array: the same batch that reading the shuffled rows one by one gives, ~10x faster."""

    def __init__(self, source: ArraySource):
        self.source = source

    def map(self, indices):
        return self.source.rows(indices)


def train_transform(config) -> TrainTransform:
    """The config's per-example train transform for encoded images."""
    return TrainTransform(config.train_transform, config.image_size, area=config.crop_area,
                          scale_range=config.scale_range, jitter=config.color_jitter,
                          lighting=config.pca_lighting)


def _prefetch(dataset: grain.MapDataset, num_workers: int):
    """Iterate `dataset` with a small read-ahead, in `num_workers` processes if > 0 (their
    buffers are bounded: host memory stays flat however long the iteration)."""
    dataset = dataset.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=4))
    if num_workers:
        if not flags.FLAGS.is_parsed():  # grain's workers read absl flags (outside an absl app)
            flags.FLAGS.mark_as_parsed()
        dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers,
                                                                   per_worker_buffer_size=2),
                                      worker_init_fn=functools.partial(exit_with_parent,
                                                                       parent=os.getpid()))
    return dataset


def exit_with_parent(worker_index: int = 0, worker_count: int = 1, *, parent: int) -> None:
    """In a worker process: exit as soon as `parent`, the process that started it, is gone, also
    after a `kill -9` of it (which runs no clean-up) and also if that happened while the worker
    was still starting, instead of lingering with its memory."""

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def num_eval_batches(num_examples: int, global_batch: int) -> int:
    return math.ceil(num_examples / global_batch)


def eval_batches(source, global_batch: int, process_index: int = 0, process_count: int = 1):
    """Yield every example exactly once, as local batches padded to full size with a `mask`
    and each row's `index` in `source`.

    All processes yield the same number of batches (the last ones may be all padding), as the
    jitted step needs; padded rows have mask 0 and are left out of every metric. An
    EncodedSource is decoded (its eval_transform: a centre crop, or a protocol's canvas) in
    grain worker processes.
    """
    local = local_batch_size(global_batch, process_count)
    count = num_eval_batches(len(source), global_batch)
    positions = range(process_index, len(source), process_count)
    if isinstance(source, EncodedSource):  # decode in grain worker processes
        template = source[0]
        shard = (grain.MapDataset.source(source.records)[process_index::process_count]
                 .map(locate_errors(source.eval_transform)).batch(local, drop_remainder=False))
        batches = iter(_prefetch(shard, source.num_workers))
        for b in range(count):
            batch, indices = next(batches, None), positions[b * local:(b + 1) * local]
            yield (pad_batch([], local, template, indices) if batch is None  # all padding
                   else pad_arrays(batch, local, indices))
        return
    in_memory = isinstance(source, ArraySource)
    for b in range(count):  # in memory: read directly (a thread pool would only add overhead)
        indices = positions[b * local:(b + 1) * local]
        if in_memory:  # whole arrays at once, as views
            rows = slice(indices.start, indices.stop, indices.step)
            yield pad_arrays(source.rows(rows), local, indices)
        else:
            yield pad_batch([source[i] for i in indices], local, source[0], indices)


def pad_arrays(batch, size: int, indices=()):
    """A batch of stacked `image` and `label` arrays padded with zeros to `size` rows; `mask`
    marks the real ones, `index` their positions in the split (`indices`; 0 for padding)."""
    n = len(batch["label"])
    padding = [(0, size - n)]
    extra = {k: np.pad(v, padding + [(0, 0)] * (v.ndim - 1),  # scenes' boxes and masks
                       constant_values=-1 if k == "box_labels" else 0)
             for k, v in batch.items() if k not in ("image", "label")}
    return {
        "image": np.pad(batch["image"], padding + [(0, 0)] * (batch["image"].ndim - 1)),
        "label": np.pad(batch["label"].astype(np.int32), padding),
        "mask": np.pad(np.ones(n, np.float32), padding),
        "index": np.pad(np.asarray(indices, np.int32), (0, size - len(indices))),
        **extra,
    }


def pad_batch(rows, size: int, template, indices=()):
    """Stack `rows` (dicts with `image` and `label`; `template` gives the image shape when there
    are none) and pad them as pad_arrays does."""
    shape = (len(rows),) + np.shape(template["image"])
    extra = {k: np.array([r[k] for r in rows]).reshape((len(rows),) + np.shape(template[k]))
             for k in ("boxes", "box_labels", "masks") if k in template}  # boxes of ImageNet, scenes
    return pad_arrays({"image": np.array([r["image"] for r in rows], np.uint8).reshape(shape),
                       "label": np.array([r["label"] for r in rows], np.int32), **extra},
                      size, indices)
