"""The ERF drawn with matplotlib: the normalised map, the analytic box and the effective region.

Like foveal.plots: no pyplot (a bare Figure, so no backend is chosen), `ax=` to draw into an
existing Axes, and files written whole or not at all through foveal.plots.save.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import FovealError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    from .result import ErfResult

ANALYTIC_STYLE: dict[str, Any] = {"edgecolor": "white", "linestyle": "-", "linewidth": 1.5}
EFFECTIVE_STYLE: dict[str, Any] = {"edgecolor": "cyan", "linestyle": "--", "linewidth": 1.2}
GAUSSIAN_STYLE: dict[str, Any] = {"edgecolor": "orange", "linestyle": ":", "linewidth": 1.2}


def plot_erf(result: ErfResult, path: str | os.PathLike | None = None, ax: Axes | None = None,
             title: str | None = None) -> Figure | SubFigure:
    """Draw `result` into `ax` (a new Figure without it); write the figure to `path` if given."""
    rank = result.normalised_map.ndim
    if rank not in (1, 2):
        raise FovealError(f"plot() draws 1-D and 2-D maps; this map is {rank}-D ({', '.join(result.axes)}): "
                          f"draw a slice of result.normalised_map yourself, e.g. "
                          f"result.normalised_map[{result.centre[0]}]")
    if ax is None:
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise FovealError("plots need matplotlib: pip install foveal[erf]") from None
        ax = Figure(figsize=(6.4, 5.2) if rank == 2 else (7, 3.5), layout="constrained").add_subplot()
    (_heat_map if rank == 2 else _line)(result, ax)
    ax.set_title(title if title is not None else
                 f"ERF of {result.layer or 'the model output'} ({result.protocol}, {result.samples} samples)")
    figure = ax.figure
    if path is not None:
        from ..plots import save

        save(figure, path)
    return figure


def _heat_map(result: ErfResult, ax: Axes) -> None:
    from matplotlib.patches import Ellipse, Rectangle

    image = ax.imshow(result.normalised_map, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    label = "log-normalised contribution" if result.protocol == "replknet" else "|gradient| / max"
    ax.figure.colorbar(image, ax=ax, label=label, shrink=0.85)
    handles = []
    for box, style, name in ((result.analytic_box, ANALYTIC_STYLE, "analytic RF"),
                             (result.effective_box, EFFECTIVE_STYLE, "non-zero gradient")):
        if box is not None:
            (top, bottom), (left, right) = box
            handles.append(ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1,
                                                  fill=False, label=name, **style)))
    if result.gaussian is not None:
        (mean_row, mean_col), (sigma_row, sigma_col) = result.gaussian.mean, result.gaussian.sigma
        handles.append(ax.add_patch(Ellipse((mean_col, mean_row), 4 * sigma_col, 4 * sigma_row, fill=False,
                                            label="Gaussian fit, 2 sigma", **GAUSSIAN_STYLE)))
    ax.plot(result.centre[1], result.centre[0], "+", color="red", markersize=8)
    if handles:
        legend = ax.legend(handles=handles, loc="lower right", fontsize="small", framealpha=0.5)
        legend.get_frame().set_facecolor("gray")
    ax.set_xlabel(f"{result.axes[1]} (column)")
    ax.set_ylabel(f"{result.axes[0]} (row)")


def _line(result: ErfResult, ax: Axes) -> None:
    ax.plot(result.normalised_map, color="black", linewidth=1, label="normalised ERF")
    if result.analytic_box is not None:
        (lo, hi), = result.analytic_box
        ax.axvspan(lo - 0.5, hi + 0.5, color="tab:blue", alpha=0.15, label="analytic RF")
    if result.effective_box is not None:
        (lo, hi), = result.effective_box
        for edge in (lo - 0.5, hi + 0.5):
            ax.axvline(edge, color="tab:cyan", linestyle="--", linewidth=1)
        ax.lines[-1].set_label("non-zero gradient")
    ax.axvline(result.centre[0], color="red", linewidth=0.8, linestyle=":", label="input centre")
    ax.set_xlabel(result.axes[0])
    ax.set_ylabel("|gradient| / max" if result.protocol == "luo" else "log-normalised contribution")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="upper right", fontsize="small")
