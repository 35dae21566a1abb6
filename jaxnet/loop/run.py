"""One run of a method in a workdir: what train.py and eval.py hand every method.

A method reads the config, places arrays on `mesh`, saves and restores through `checkpointer`,
logs through `logger` and evaluates through `evaluate` (the shared evaluator on the config's
eval split, logged once per step: asking again for a step already evaluated returns the same
numbers without a second pass).
"""
import dataclasses
import time
from pathlib import Path
from typing import Any

from jaxnet.evaluation.evaluator import Evaluator, Predictor
from jaxnet.loop.checkpoint import Checkpointer
from jaxnet.loop.logger import MetricLogger


@dataclasses.dataclass
class Run:
    config: Any
    workdir: Path
    mesh: Any
    checkpointer: Checkpointer
    logger: MetricLogger | None = None
    evaluator: Evaluator | None = None  # of config.eval_split (training runs)
    train_source: Any = None  # config.train_split (training runs)
    stop_at_step: int | None = None  # stop early with a checkpoint, as a preemption would
    evaluated: dict = dataclasses.field(default_factory=dict)  # step -> (metrics, seconds)

    def evaluate(self, predictor: Predictor, **extra) -> dict:
        """Metrics of `predictor` on the eval split, logged (with `extra`, e.g. the epoch) once."""
        if predictor.step not in self.evaluated:
            start = time.time()
            metrics = self.evaluator(predictor)
            self.evaluated[predictor.step] = (metrics, time.time() - start)
            self.logger.write(predictor.step, self.config.eval_split, {**extra, **metrics})
        return self.evaluated[predictor.step][0]
