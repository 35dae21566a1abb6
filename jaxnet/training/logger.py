"""Metric logging: `WORKDIR/metrics.jsonl`, TensorBoard events (tensorboardX, no TensorFlow) and
the console (a tqdm bar on an interactive terminal, plain lines otherwise). Only process 0 writes.
"""
import json
import sys
import time
from pathlib import Path

import tqdm
from tensorboardX import SummaryWriter


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class MetricLogger:
    def __init__(self, workdir, total_steps: int, initial_step: int, enabled: bool = True):
        self.enabled = enabled
        self.total_steps = total_steps
        self.start_time, self.start_step = time.time(), initial_step
        if not enabled:
            return
        workdir = Path(workdir)
        self.jsonl = open(workdir / "metrics.jsonl", "a")
        self.tensorboard = SummaryWriter(str(workdir / "tensorboard"))
        self.bar = None
        if sys.stdout.isatty():
            self.bar = tqdm.tqdm(total=total_steps, initial=initial_step, unit="step",
                                 dynamic_ncols=True)

    def eta(self, step: int) -> float:
        """Seconds left at the average pace since this run started (or resumed)."""
        done = step - self.start_step
        if done <= 0:
            return float("nan")
        return (time.time() - self.start_time) / done * (self.total_steps - step)

    def write(self, step: int, split: str, metrics: dict) -> None:
        """Record `metrics` of `split` ('train', 'test', ...) at `step` everywhere."""
        if not self.enabled:
            return
        record = {"step": int(step), "split": split, **{k: _plain(v) for k, v in metrics.items()}}
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()
        for key, value in record.items():
            if isinstance(value, (int, float)) and key not in ("step",):
                self.tensorboard.add_scalar(f"{split}/{key}", value, step)
        self.tensorboard.flush()
        self.console(step, split, record)

    def console(self, step: int, split: str, record: dict) -> None:
        parts = [f"{split:5s} step {step}/{self.total_steps}"]
        if "epoch" in record:
            parts.append(f"epoch {record['epoch']:.2f}")
        for key, fmt in (("loss", ".4f"), ("top1_acc", ".4f"), ("top5_acc", ".4f"),
                         ("lr", ".4g"), ("images_per_sec", ".0f")):
            if key in record:
                parts.append(f"{key.replace('images_per_sec', 'img/s')} {record[key]:{fmt}}")
        if split == "train":
            parts.append(f"ETA {format_duration(self.eta(step)) if step > self.start_step else '?'}")
        self.print(" | ".join(parts))
        if self.bar is not None and split == "train":
            self.bar.update(step - self.bar.n)

    def print(self, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)

    def close(self) -> None:
        if self.enabled:
            if self.bar is not None:
                self.bar.close()
            self.jsonl.close()
            self.tensorboard.close()


def _plain(value):
    """JSON-friendly Python numbers from numpy/jax scalars."""
    if hasattr(value, "item"):
        value = value.item()
    return value
