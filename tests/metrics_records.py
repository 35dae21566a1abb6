"""A workdir's metrics.jsonl as tests compare runs: without the timing keys, which differ from
one run to the next even when the training is bit-for-bit the same."""
import json

TIMING_KEYS = ("images_per_sec", "train_seconds")


def untimed_records(workdir) -> list:
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS} for line in lines]
