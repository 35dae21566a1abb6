"""The experiments' figures as PNG files (matplotlib's Agg canvas; no display, no pyplot)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

DPI = 110
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]


def save(fig: Figure, path) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI)
    return str(path)


def curves(path, series, *, title: str, xlabel: str, ylabel: str, hline=None, hline_label="",
           ylim=None, logy=False, panels=None) -> str:
    """Line plots. `series`: [(label, x, y, style dict)], or with `panels` a list of
    (panel title, series) drawn side by side sharing the y axis."""
    panels = panels or [(None, series)]
    fig = Figure(figsize=(5.2 * len(panels) + 0.8, 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (panel_title, panel_series) in zip(axes, panels):
        for i, (label, x, y, style) in enumerate(panel_series):
            style = {"color": COLOURS[i % len(COLOURS)], "linewidth": 1.6, **(style or {})}
            ax.plot(x, y, label=label, **style)
        if hline is not None:
            ax.axhline(hline, color="black", linestyle=":", linewidth=1, label=hline_label or None)
        if logy:
            ax.set_yscale("log")
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, framealpha=0.9)
        if panel_title:
            ax.set_title(panel_title, fontsize=10)
    axes[0].set_ylabel(ylabel)
    fig.suptitle(title, fontsize=11)
    return save(fig, path)


def bars(path, labels, values, *, title: str, ylabel: str, annotate_fmt="{:.2f}",
         colours=None) -> str:
    fig = Figure(figsize=(1.3 * len(labels) + 2.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    ax.bar(x, values, color=colours or COLOURS[: len(labels)], edgecolor="white")
    for xi, v in zip(x, values):
        ax.annotate(annotate_fmt.format(v), (xi, v), ha="center", va="bottom", fontsize=9,
                    xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(x, labels, fontsize=9)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.set_ylim(0, max(values) * 1.18 if len(values) else 1)
    ax.grid(axis="y", alpha=0.3)
    return save(fig, path)


def contours(path, panels, alphas, betas, *, title: str, levels: int = 14) -> str:
    """Loss contours side by side: `panels` = [(title, loss grid [len(betas), len(alphas)])],
    one shared set of log-spaced levels so the panels compare."""
    grids = [np.asarray(g, np.float64) for _, g in panels]
    finite = np.concatenate([g[np.isfinite(g)].ravel() for g in grids])
    lo = max(finite.min(), 1e-3)
    hi = max(min(finite.max(), lo * 1e4), lo * 10)
    level_values = np.geomspace(lo, hi, levels)
    fig = Figure(figsize=(5.0 * len(panels) + 1.2, 4.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    mappable = None
    for ax, (panel_title, _), grid in zip(axes, panels, grids):
        clipped = np.clip(np.nan_to_num(grid, nan=hi, posinf=hi), lo, hi)
        mappable = ax.contourf(alphas, betas, clipped, levels=level_values, norm=LogNorm(lo, hi),
                               cmap="viridis", extend="max")
        ax.contour(alphas, betas, clipped, levels=level_values, colors="white", linewidths=0.5,
                   alpha=0.6)
        ax.plot([0], [0], marker="*", color="red", markersize=10)
        ax.set_title(f"{panel_title}: loss {grid[len(betas) // 2, len(alphas) // 2]:.3f} at the"
                     " trained weights", fontsize=10)
        ticks = np.linspace(alphas[0], alphas[-1], 5)
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.set_xlabel("direction 1 (filter-normalised)")
        ax.set_ylabel("direction 2 (filter-normalised)")
        ax.set_aspect("equal")
    cbar = fig.colorbar(mappable, ax=list(axes), shrink=0.9)
    cbar.set_ticks(level_values[::2])
    cbar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    cbar.ax.yaxis.set_minor_locator(NullLocator())
    cbar.set_label("training loss (log scale)")
    fig.suptitle(title, fontsize=11)
    return save(fig, path)
