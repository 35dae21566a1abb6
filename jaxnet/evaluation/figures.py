"""Evaluation figures as PNG (matplotlib's Agg canvas; no pyplot, no display needed).

- `top5_histogram`: the seed's Figure 4 (ILSVRC-2010): how many classes reach each per-class
  top-5 hit rate.
- `reliability_diagram`: accuracy per confidence bin against the diagonal, with the gap shaded
  and the bins' share of examples below (from `CalibrationMetric`'s "reliability").
- `worst_classes`: horizontal bars of the classes with the lowest hit rate.
Each takes plain lists / arrays and a path, writes the PNG and returns the path.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from jaxnet.files import atomic_path

DPI = 110


def _save(fig: Figure, path) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:  # a later run never finds half a picture
        fig.savefig(tmp, dpi=DPI)
    return str(path)


def top5_histogram(hit_rates: Sequence[float | None], path, *, bins: int = 20,
                   title: str | None = None, k: int = 5) -> str:
    """Histogram of per-class top-k hit rates (classes without examples are left out). The x axis
    spans [0, 1], or [lo, 1] (lo a multiple of 0.1) when every class is at 0.5 or above."""
    rates = np.array([r for r in hit_rates if r is not None], np.float64)
    lo = np.floor(rates.min() * 10) / 10 if rates.size and rates.min() >= 0.5 else 0.0
    lo = min(lo, 0.9)
    fig = Figure(figsize=(6.4, 4.0))  # fixed margins: a layout engine doubles the drawing time
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.12, top=0.92)
    ax = fig.add_subplot()
    ax.hist(rates, bins=np.linspace(lo, 1.0, bins + 1), color="#4c72b0", edgecolor="white")
    if rates.size:
        mean = rates.mean()
        ax.axvline(mean, color="#c44e52", linestyle="--", linewidth=1.5,
                   label=f"mean over classes {100 * mean:.1f}%")
        ax.legend(loc="upper left", frameon=False)
    ax.set_xlim(lo, 1.0)
    ax.set_xlabel(f"per-class top-{k} hit rate")
    ax.set_ylabel("number of classes")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title or f"Per-class top-{k} hit rate ({rates.size} classes)")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def reliability_diagram(reliability: Mapping, path, *, ece: float | None = None,
                        title: str | None = None) -> str:
    """`reliability`: {"bin_edges", "bin_accuracy", "bin_confidence", "bin_count"}."""
    edges = np.asarray(reliability["bin_edges"], np.float64)
    acc = np.array([np.nan if a is None else a for a in reliability["bin_accuracy"]])
    conf = np.array([np.nan if c is None else c for c in reliability["bin_confidence"]])
    count = np.asarray(reliability["bin_count"], np.float64)
    left, width = edges[:-1], np.diff(edges)
    fig = Figure(figsize=(5.6, 6.0))  # fixed margins, as above
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={
        "height_ratios": [3, 1], "left": 0.15, "right": 0.97, "bottom": 0.09, "top": 0.95,
        "hspace": 0.08})
    has = ~np.isnan(acc)
    top.bar(left[has], acc[has], width=width[has], align="edge", color="#4c72b0",
            edgecolor="white", label="accuracy")
    gap_lo, gap_hi = np.minimum(acc, conf)[has], np.maximum(acc, conf)[has]
    top.bar(left[has], gap_hi - gap_lo, bottom=gap_lo, width=width[has], align="edge",
            color="#c44e52", alpha=0.35, edgecolor="#c44e52", hatch="//", label="gap to confidence")
    top.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1,
             label="perfect calibration")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", framealpha=0.9)
    top.set_title(title or ("Reliability diagram" + (f" (ECE {100 * ece:.2f}%)"
                                                     if ece is not None else "")))
    top.grid(alpha=0.3)
    share = count / max(count.sum(), 1.0)
    bottom.bar(left, share, width=width, align="edge", color="#8c8c8c", edgecolor="white")
    bottom.set_yscale("log" if share[share > 0].size and share.max() > 50 * share[share > 0].min()
                      else "linear")
    bottom.set_xlabel("confidence (top-1 probability)")
    bottom.set_ylabel("share of\nexamples")
    bottom.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def worst_classes(names: Sequence[str], hit_rates: Sequence[float | None], path, *,
                  counts: Sequence[int] | None = None, num: int = 20, label: str = "top-1",
                  title: str | None = None) -> str:
    """Bars of the `num` classes with the lowest hit rate (classes without examples skipped);
    the value (and the count, if given) is written at the end of each bar."""
    order = sorted((r, i) for i, r in enumerate(hit_rates) if r is not None)[:num]
    order = order[::-1]  # the worst at the top
    values = [r for r, _ in order]
    labels = [_shorten(names[i]) for _, i in order]
    fig = Figure(figsize=(7.0, 1.2 + 0.32 * max(len(order), 1)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(order))
    ax.barh(y, values, color="#c44e52", height=0.7)
    for yi, (r, i) in zip(y, order):
        text = f"{100 * r:.1f}%" + (f"  (n={counts[i]})" if counts is not None else "")
        ax.text(min(r, 1.0) + 0.01, yi, text, va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_xlim(0, 1.18)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel(f"{label} hit rate")
    ax.set_title(title or f"The {len(order)} classes with the lowest {label} hit rate")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _shorten(name: str, width: int = 32) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"
