"""Numbers as a report prints them."""
from __future__ import annotations

import numpy as np


def fmt(value, spec=".2f", none="never") -> str:
    return none if value is None else format(value, spec)


def pct(value, digits=2) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return "diverged" if np.isinf(value) else f"{100 * value:.{digits}f}%"
