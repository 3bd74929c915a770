"""histguard.plot: draws an :class:`Inspection` with matplotlib (imported only when called)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from histguard.types import Inspection


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("histguard.plot needs matplotlib (Debian: apt install "
                          "python3-matplotlib; pip: pip install matplotlib)") from None
    return plt


def _title(ins: Inspection) -> str:
    v = ins.verdict
    text = f"{ins.monitor}  run {ins.run} ls {ins.lumisection}: {v.quality.value}"
    if v.scored:
        text += f"  p={v.p_value:.3g}  score={v.score:.3g}  model v{v.model_version}"
    return text


def plot(inspection: Inspection, *, fig: Any = None, pull_limit: Optional[float] = None) -> Any:
    """Draws observed against expected and the pulls; returns the matplotlib Figure.

    1D: the observed counts (with sqrt(n) error bars) over the expected shape, and a pulls
    panel below. 2D: observed, expected and pull maps side by side (pulls on a symmetric
    blue-red scale, ``pull_limit`` or the largest |pull|). Without an expectation (a histogram
    no model scored) only the observed histogram is drawn.
    """
    plt = _pyplot()
    ins = inspection
    if ins.ndim == 1:
        return _plot_1d(plt, ins, fig, pull_limit)
    return _plot_2d(plt, ins, fig, pull_limit)


def _plot_1d(plt: Any, ins: Inspection, fig: Any, pull_limit: Optional[float]) -> Any:
    edges = ins.x_edges
    centers = 0.5 * (edges[1:] + edges[:-1])
    if fig is None:
        fig = plt.figure(figsize=(8, 6) if ins.has_expectation else (8, 4.5))
    if ins.has_expectation:
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    else:
        top, bottom = fig.subplots(1, 1), None
    top.errorbar(centers, ins.observed, yerr=np.sqrt(np.clip(ins.observed, 0, None)), fmt="o",
                 ms=3, color="black", label="observed")
    if ins.has_expectation:
        top.stairs(ins.expected, edges, color="tab:blue", lw=1.5, label="expected")
    top.set_ylabel("entries")
    top.legend(loc="best")
    top.set_title(_title(ins), fontsize=9)
    if bottom is not None:
        pulls = np.nan_to_num(ins.pulls)
        colors = np.where(np.abs(pulls) >= 3, "tab:red", "tab:gray")
        bottom.bar(centers, pulls, width=np.diff(edges), color=colors)
        bottom.axhline(0, color="black", lw=0.8)
        limit = pull_limit or max(3.5, float(np.max(np.abs(pulls))) * 1.1)
        bottom.set_ylim(-limit, limit)
        bottom.set_ylabel("pull")
        bottom.set_xlabel(ins.x_title or "bin")
    else:
        top.set_xlabel(ins.x_title or "bin")
    fig.tight_layout()
    return fig


def _plot_2d(plt: Any, ins: Inspection, fig: Any, pull_limit: Optional[float]) -> Any:
    panels = [("observed", ins.observed, "viridis", None)]
    if ins.has_expectation:
        vmax = float(max(np.max(ins.observed), np.max(ins.expected)))
        panels = [("observed", ins.observed, "viridis", (0, vmax)),
                  ("expected", ins.expected, "viridis", (0, vmax))]
        limit = pull_limit or max(3.0, float(np.max(np.abs(np.nan_to_num(ins.pulls)))))
        panels.append(("pull", ins.pulls, "RdBu_r", (-limit, limit)))
    if fig is None:
        fig = plt.figure(figsize=(4.5 * len(panels), 4))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (name, values, cmap, limits) in zip(axes, panels):
        # values is [ix, iy]; pcolormesh wants [row = y, column = x].
        kwargs = {"vmin": limits[0], "vmax": limits[1]} if limits else {}
        mesh = ax.pcolormesh(ins.x_edges, ins.y_edges, np.asarray(values).T, cmap=cmap, **kwargs)
        fig.colorbar(mesh, ax=ax)
        ax.set_title(name)
        ax.set_xlabel(ins.x_title or "x bin")
        ax.set_ylabel(ins.y_title or "y bin")
    fig.suptitle(_title(ins), fontsize=9)
    fig.tight_layout()
    return fig
