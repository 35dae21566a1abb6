"""Grain input pipelines: a shuffled, augmented, checkpointable training stream and an
exactly-once evaluation pass.

Images stay uint8 on the host (a quarter of float32's bandwidth); normalisation happens on the
device inside the jitted step (`jaxnet.training.steps.normalize`).
"""
import math

import grain
import numpy as np


class AugmentBatch(grain.transforms.RandomMap):
    """Small-image augmentation on a whole uint8 batch at once (vectorised numpy): a random crop of
    the image zero-padded by `padding`, a horizontal flip, random erasing."""

    def __init__(self, kind: str, padding: int, erase_prob: float):
        self.kind, self.padding, self.erase_prob = kind, padding, erase_prob

    def random_map(self, batch, rng: np.random.Generator):
        images = batch["image"]
        if self.kind == "crop_flip" and self.padding:
            images = random_crops(images, self.padding, rng)
        if self.kind in ("crop_flip", "flip"):
            flip = rng.random(len(images)) < 0.5
            images = np.where(flip[:, None, None, None], images[:, :, ::-1], images)
        if self.erase_prob:
            images = images.copy()
            for i in np.flatnonzero(rng.random(len(images)) < self.erase_prob):
                images[i] = random_erase(images[i], rng)
        return {**batch, "image": np.ascontiguousarray(images)}


def random_crops(images: np.ndarray, padding: int, rng: np.random.Generator) -> np.ndarray:
    """Per image, a crop of its own size from it zero-padded by `padding` on each side."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    top, left = rng.integers(0, 2 * padding + 1, size=(2, n))
    rows = top[:, None] + np.arange(h)  # [n, h]
    cols = left[:, None] + np.arange(w)  # [n, w]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


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

    Each process reads its own equal-sized shard. Iterate with `iter(loader)`; the iterator's
    state goes into checkpoints (grain.checkpoint), so a resumed run continues with the same
    next batch. Augmentation randomness is a function of (seed, batch index): resume-exact.
    """
    usable = len(source) - len(source) % process_count
    dataset = (grain.MapDataset.source(source)[:usable][process_index::process_count]
               .shuffle(seed=config.seed)
               .repeat()  # reshuffles each epoch: epoch e uses seed + e
               .batch(local_batch_size(config.batch_size, process_count), drop_remainder=True))
    if config.augment != "none" or config.random_erasing:
        augment = AugmentBatch(config.augment, config.crop_padding, config.random_erasing)
        dataset = dataset.random_map(augment, seed=config.seed)
    dataset = dataset.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=4))
    if config.num_workers:
        dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=config.num_workers))
    return dataset


def num_eval_batches(num_examples: int, global_batch: int) -> int:
    return math.ceil(num_examples / global_batch)


def eval_batches(source, global_batch: int, process_index: int = 0, process_count: int = 1):
    """Yield every example exactly once, as local batches padded to full size with a `mask`.

    All processes yield the same number of batches (the last ones may be all padding), as the
    jitted step needs; padded rows have mask 0 and are left out of every metric.
    """
    local = local_batch_size(global_batch, process_count)
    dataset = grain.MapDataset.source(source)[process_index::process_count]
    rows = iter(dataset)
    for _ in range(num_eval_batches(len(source), global_batch)):
        chunk = [row for _, row in zip(range(local), rows)]
        yield pad_batch(chunk, local, template=source[0])


def pad_batch(rows, size: int, template):
    """Stack `rows` and pad to `size` rows of zeros; `mask` marks the real ones."""
    batch = {
        "image": np.zeros((size,) + template["image"].shape, np.uint8),
        "label": np.zeros((size,), np.int32),
        "mask": np.zeros((size,), np.float32),
    }
    for i, row in enumerate(rows):
        batch["image"][i] = row["image"]
        batch["label"][i] = row["label"]
        batch["mask"][i] = 1.0
    return batch
