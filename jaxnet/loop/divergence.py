"""Divergence: a run whose training loss leaves any sane range stops in one line naming the step
and the last good checkpoint, instead of finishing at chance with exit status 0."""
import math

from jaxnet import JaxnetError


class TrainingDiverged(JaxnetError):
    """The loss became NaN or inf, or stayed far above its starting value; the run stopped."""


class DivergenceGuard:
    """Watches each logging interval's mean training loss: more than `factor` x the first
    interval's for `intervals` intervals in a row is divergence (factor 0: off)."""

    def __init__(self, factor: float, intervals: int):
        self.factor, self.intervals = factor, intervals
        self.start, self.bad, self.good = None, 0, None

    def observe(self, step: int, loss: float, last_good: int, checkpoint_dir) -> None:
        """The mean loss of the interval ending at `step`; `last_good`: the newest checkpoint's
        step (0: none). Raises TrainingDiverged."""
        if not self.factor or not math.isfinite(loss):
            return  # (a non-finite loss is caught step by step, before this)
        if self.start is None:
            self.start = loss
            return
        if loss <= self.factor * self.start:
            self.bad = 0
            return
        if self.bad == 0:
            self.good = last_good  # the newest checkpoint before the loss rose
        self.bad += 1
        if self.bad >= self.intervals:
            kept = (f"step {self.good} in {checkpoint_dir}" if self.good
                    else "none (no checkpoint had been written before the loss rose)")
            raise TrainingDiverged(
                f"the training loss diverged: {loss:.4g} at step {step}, above {self.factor:g} x"
                f" its starting {self.start:.4g} for {self.bad} logging intervals in a row;"
                f" training stopped. The last good checkpoint is {kept}. Lower config.base_lr or"
                " add warmup (config.warmup_epochs); config.divergence_factor sets the limit")
