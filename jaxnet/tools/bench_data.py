"""Input-pipeline benchmark on ImageNet-like JPEGs (generated: 500x375, quality 90).

    python -m jaxnet bench_data [--images=200] [--size=500x375] [--repeats=5] [--workers=1,2] [--long=4000]

Prints, per CPU core (images per CPU-second of the decoding process, so other load on the
machine counts little): a plain Pillow loop (decode, torchvision-style RandomResizedCrop, flip),
jaxnet's inception_crop train transform and its eval transform (JPEGs decoded by the C extension
jaxnet.data._jpegcrop), and the same two on the Pillow path (the fallback without the
extension), in alternating passes of the same run; then the grain pipeline's wall-clock
throughput with 0, 1, 2, ... worker processes, and the peak resident memory (main process +
workers) over a long iteration.
"""
import argparse
import io
import math
import random
import time

import numpy as np
import PIL.Image
import psutil

from jaxnet.data import transforms
from jaxnet.data.transforms import EvalTransform, TrainTransform


def imagenet_like_jpeg(rng: np.random.Generator, size=(500, 375), quality=90) -> bytes:
    """A photo-like image: smooth structure at several scales plus fine texture, so its JPEG is
    about as large (and as slow to decode) as an average ILSVRC-2012 image (~110 KB)."""
    w, h = size
    image = np.zeros((h, w, 3), np.float32)
    for cells, weight in ((4, 90.0), (16, 50.0), (64, 35.0), (250, 30.0)):
        small = rng.normal(0, 1, (max(2, cells * h // w), cells, 3)).astype(np.float32)
        layer = np.stack([np.asarray(PIL.Image.fromarray(small[..., c]).resize(size, PIL.Image.BICUBIC))
                          for c in range(3)], -1)
        image += weight * layer
    image += rng.normal(0, 12, image.shape)
    out = io.BytesIO()
    PIL.Image.fromarray(np.clip(image + 120, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=quality)
    return out.getvalue()


def plain_pillow(data: bytes, rnd: random.Random, size=224) -> np.ndarray:
    """The reference loop: full decode, torchvision's RandomResizedCrop (scale 0.08-1, ratio
    3/4-4/3, bilinear) and a random flip, written with Pillow only."""
    image = PIL.Image.open(io.BytesIO(data)).convert("RGB")
    width, height = image.size
    box = (0, 0, width, height)
    for _ in range(10):
        area = width * height * rnd.uniform(0.08, 1.0)
        ratio = math.exp(rnd.uniform(math.log(3 / 4), math.log(4 / 3)))
        w, h = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if 0 < w <= width and 0 < h <= height:
            left, top = rnd.randint(0, width - w), rnd.randint(0, height - h)
            box = (left, top, left + w, top + h)
            break
    image = image.crop(box).resize((size, size), PIL.Image.BILINEAR)
    if rnd.random() < 0.5:
        image = image.transpose(PIL.Image.FLIP_LEFT_RIGHT)
    return np.asarray(image)


def per_cpu_second(fns: dict, items, repeats: int) -> dict:
    """{name: median over `repeats` passes of images per CPU-second of this process}. The passes
    of the functions alternate, so that load that comes and goes on the machine hits them alike."""
    rates = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.process_time()
            for item in items:
                fn(item)
            rates[name].append(len(items) / (time.process_time() - start))
    return {name: float(np.median(r)) for name, r in rates.items()}


def pillow_path(fn):
    """`fn` with the C JPEG decoder switched off: jaxnet's fallback path."""
    def run(item):
        saved, transforms._jpegcrop = transforms._jpegcrop, None
        try:
            return fn(item)
        finally:
            transforms._jpegcrop = saved
    return run


class RepeatedJpegs:
    """`length` records cycling through the generated JPEGs, record i labelled i % num_classes:
    by default a dataset of ImageNet's size (grain's index shuffle costs ~200 us per record over
    a 200-record dataset, ~4 us over 1.28M)."""

    def __init__(self, jpegs, length: int = 1_281_167, num_classes: int = 1):
        self.jpegs, self.length, self.num_classes = list(jpegs), length, num_classes

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index):
        return {"image": self.jpegs[index % len(self.jpegs)], "label": index % self.num_classes}


def pipeline_loader(jpegs, workers: int, batch: int):
    """train_loader (inception_crop, 224) over RepeatedJpegs in `workers` processes."""
    from jaxnet.config import base_config
    from jaxnet.data.pipeline import train_loader
    from jaxnet.data.sources import encoded_source

    config = base_config()
    config.num_classes, config.num_workers, config.batch_size = 1, workers, batch
    source = encoded_source(RepeatedJpegs(jpegs), config, "generated JPEGs")
    return iter(train_loader(source, config))


def family():
    me = psutil.Process()
    return [me] + me.children(recursive=True)


def memory_mb() -> float:
    """Resident memory of this process and its children (the grain workers), in MiB."""
    total = 0
    for p in family():
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def cpu_seconds() -> dict:
    """{pid: user + system CPU seconds} of this process and its live children."""
    times = {}
    for p in family():
        try:
            t = p.cpu_times()
            times[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return times


def pipeline_rate(jpegs, workers: int, batch: int, batches: int):
    """(wall-clock images/sec, images per CPU-second of all its processes) of the pipeline after
    a warm-up."""
    iterator = pipeline_loader(jpegs, workers, batch)
    for _ in range(max(3, 2 * workers)):  # start-up: every worker started, two batches from each
        next(iterator)
    batches = max(batches, 4 * workers)  # workers take batches in turn: four rounds at least
    start, cpu = time.time(), cpu_seconds()
    for _ in range(batches):
        next(iterator)
    wall, used = time.time() - start, cpu_seconds()
    iterator.close()  # stops the workers and frees their shared memory
    spent = sum(t - cpu.get(pid, 0.0) for pid, t in used.items())
    return batches * batch / wall, batches * batch / spent if spent > 0 else float("nan")


def long_iteration(jpegs, workers: int, batch: int, images: int):
    """(MiB after warm-up, peak MiB, MiB at the end, images/sec) over `images` images."""
    from tqdm import tqdm

    iterator = pipeline_loader(jpegs, workers, batch)
    for _ in range(3):
        next(iterator)
    first = peak = memory_mb()
    steps = images // batch
    start = time.time()
    for _ in tqdm(range(steps), desc=f"long iteration, {workers} workers", unit="batch"):
        next(iterator)
        peak = max(peak, memory_mb())
    rate, last = steps * batch / (time.time() - start), memory_mb()
    iterator.close()
    return first, peak, last, rate


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m jaxnet bench_data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200, help="distinct generated JPEGs")
    parser.add_argument("--size", default="500x375", help="generated image size, WIDTHxHEIGHT")
    parser.add_argument("--repeats", type=int, default=5, help="passes per single-core figure (median)")
    parser.add_argument("--workers", default="1,2", help="worker counts for the scaling table")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=20,
                        help="batches timed per worker count (at least 4 per worker)")
    parser.add_argument("--long", type=int, default=4000, help="images in the memory run (0 = skip)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    size = tuple(int(v) for v in args.size.split("x"))
    jpegs = [imagenet_like_jpeg(rng, size) for _ in range(args.images)]
    print(f"{len(jpegs)} generated JPEGs, {args.size}, quality 90, mean {np.mean([len(j) for j in jpegs]) / 1e3:.0f} KB;"
          f" {psutil.cpu_count()} CPU cores")

    records = [{"image": j, "label": 0} for j in jpegs]
    train = TrainTransform("inception_crop", 224)
    evaluate = EvalTransform(224, 256)
    rnd, grng = random.Random(0), np.random.default_rng(0)
    decoder = "C extension" if transforms._jpegcrop is not None else "NOT BUILT: Pillow path"
    rates = per_cpu_second({
        "plain Pillow loop (decode + RandomResizedCrop + flip)": lambda r: plain_pillow(r["image"], rnd),
        f"jaxnet inception_crop train transform ({decoder})": lambda r: train.random_map(r, grng),
        f"jaxnet eval transform, 256 -> centre 224 ({decoder})": evaluate.map,
        "jaxnet inception_crop train transform (Pillow path)": pillow_path(lambda r: train.random_map(r, grng)),
        "jaxnet eval transform, 256 -> centre 224 (Pillow path)": pillow_path(evaluate.map),
    }, records, args.repeats)
    print("\nper core (images per CPU-second, one process, median of"
          f" {args.repeats} interleaved passes over {len(records)} images):")
    plain = next(iter(rates.values()))
    for name, rate in rates.items():
        print(f"  {name:58s} {rate:7.0f}   {rate / plain:.2f}x")

    print(f"\ngrain pipeline, inception_crop, batch {args.batch}, over a dataset of ImageNet's size"
          " (the JPEGs repeated): wall-clock images/sec, and images per CPU-second summed over the"
          " main process and its workers:")
    base = None
    for workers in [0] + [int(w) for w in args.workers.split(",") if w]:
        rate, per_cpu = pipeline_rate(jpegs, workers, args.batch, args.batches)
        base = base or rate
        label = "in the main process" if workers == 0 else f"{workers} worker process(es)"
        print(f"  {label:24s} {rate:7.0f} /s  {rate / base:5.2f}x   {per_cpu:6.0f} per CPU-second")
    if args.long:
        workers = max([int(w) for w in args.workers.split(",") if w] or [0])
        first, peak, last, rate = long_iteration(jpegs, workers, args.batch, args.long)
        print(f"\nmemory over {args.long} images ({workers} workers, {rate:.0f} images/sec):"
              f" resident {first:.0f} MiB after warm-up, peak {peak:.0f} MiB, {last:.0f} MiB at the end")
