"""Metric logging: `WORKDIR/metrics.jsonl`, TensorBoard events (tensorboardX, no TensorFlow) and
the console (a tqdm bar on an interactive terminal, plain lines otherwise). Process 0 writes
them; every process also logs its progress with absl (`--verbosity=0` shows it), tagged with its
process index.
"""
import json
import sys
import time
from pathlib import Path

from tensorboardX import SummaryWriter

from jaxnet.console import format_duration, log_info, progress_bar


def drop_records_after(path: Path, step: int) -> int:
    """Keep only the records of `path` (metrics.jsonl) up to `step`: what a run resumed from
    that step's checkpoint logs again. Returns how many were dropped."""
    if not path.exists():
        return 0
    lines = path.read_text().splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
    if len(kept) != len(lines):
        partial = path.with_suffix(".jsonl.tmp")
        partial.write_text("".join(line + "\n" for line in kept))
        partial.replace(path)
    return len(lines) - len(kept)


class MetricLogger:
    """Logs of a run that resumes from `resume_step` (0: from scratch): records logged past it by
    an interrupted run are dropped, from metrics.jsonl and (purge_step) from TensorBoard, so a
    resumed run's logs are an uninterrupted run's. resume_step None: the files are opened by
    `start`, whose initial step is the step the method actually restored."""

    def __init__(self, workdir, total_steps: int = 0, initial_step: int = 0, enabled: bool = True,
                 resume_step: int | None = None):
        self.enabled, self.workdir = enabled, Path(workdir)
        self.total_steps = total_steps
        self.start_time, self.start_step = time.time(), initial_step
        self.bar, self.jsonl, self.dropped = None, None, 0
        if enabled and resume_step is not None:
            self._open(resume_step)

    def _open(self, resume_step: int) -> None:
        if not self.enabled or self.jsonl is not None:
            return
        self.dropped = drop_records_after(self.workdir / "metrics.jsonl", resume_step)
        self.jsonl = open(self.workdir / "metrics.jsonl", "a")
        self.tensorboard = SummaryWriter(str(self.workdir / "tensorboard"), purge_step=resume_step + 1)
        if sys.stdout.isatty():
            self.bar = progress_bar(self.total_steps, "train", "step")
            self.bar.update(self.start_step)

    def start(self, total_steps: int, initial_step: int) -> None:
        """(Re)start the step count and the ETA clock, once a method knows how long it runs and
        the step it resumed from (the logs are opened here, dropping what lies past it)."""
        self.total_steps, self.start_time, self.start_step = total_steps, time.time(), initial_step
        if self.bar is not None:
            self.bar.close()
            self.bar = progress_bar(total_steps, "train", "step")
            self.bar.update(initial_step)
        self._open(initial_step)

    def eta(self, step: int) -> float:
        """Seconds left at the average pace since this run started (or resumed)."""
        done = step - self.start_step
        if done <= 0:
            return float("nan")
        return (time.time() - self.start_time) / done * (self.total_steps - step)

    def write(self, step: int, split: str, metrics: dict) -> None:
        """Record `metrics` of `split` ('train', 'test', ...) at `step` everywhere."""
        record = {"step": int(step), "split": split, **{k: _plain(v) for k, v in metrics.items()}}
        self._open(self.start_step)
        if self.enabled:
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
        log_info(message)
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.jsonl is not None:
            self.jsonl.close()
            self.tensorboard.close()


def _plain(value):
    """JSON-friendly Python numbers from numpy/jax scalars."""
    if hasattr(value, "item"):
        value = value.item()
    return value
