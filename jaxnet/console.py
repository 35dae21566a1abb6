"""What every layer prints to a person: warnings, progress bars with ETA, durations. Process 0
prints progress; every process logs its own lines with absl, tagged with its index."""
import sys

import jax
import tqdm
from absl import logging


def log_info(message: str) -> None:
    """absl INFO line tagged with this process's index (every host logs its own progress)."""
    logging.info("[process %d] %s", jax.process_index(), message)


def warn(message: str) -> None:
    """One 'warning: ...' line on stderr (every process: each says what it saw)."""
    log_info(f"warning: {message}")
    print(f"warning: {message}", file=sys.stderr, flush=True)


def progress_bar(total: int, desc: str, unit: str = "img", disable: bool = False):
    """The one tqdm set-up: a live bar on a terminal, a line every 30 s in a log file."""
    return tqdm.tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, disable=disable,
                     mininterval=1 if sys.stderr.isatty() else 30)


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
