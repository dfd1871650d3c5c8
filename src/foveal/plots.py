"""matplotlib plots of an analysis: receptive-field size along depth, and feature regions on the image.

matplotlib is the optional `foveal[plot]` extra, so it is imported inside the functions, never when
foveal is imported. Figures are made with `matplotlib.figure.Figure` directly: no pyplot, so no
backend is chosen or changed (show one in a notebook by returning it, or write it with `save`).
Every function takes `ax=` to draw into an existing Axes instead and returns that Axes' figure.
Like every output, the plots read the analysis and never recompute it.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .drawing import atomic_write
from .errors import FovealError, InvalidParameterError
from .productivity import fmt, is_alias

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    from .analysis import Analysis
    from .productivity import Verdicts

INSTALL = "plots need matplotlib: pip install foveal[plot]"
SAVE_FORMATS = ("png", "svg", "pdf")
MAX_NAMED_TICKS = 40
SHOWN_VERDICTS = ("unproductive", "critical", "partially critical")


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise FovealError(INSTALL) from None


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """The given Axes, or the one Axes of a new pyplot-free Figure."""
    if ax is not None:
        return ax
    _require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained").add_subplot()


def _literal(text: str) -> str:
    """Text shown as written: matplotlib reads $...$ as math (a node named `$\\foo$` would fail
    to render); an escaped dollar is a plain one."""
    return text.replace("$", r"\$")


def _input_shape(analysis: Analysis) -> tuple[int, ...] | None:
    """The analysed input size: None as a whole when unknown, so it holds no None."""
    return cast("tuple[int, ...] | None", analysis.input_shape)


def _value(v: Any) -> float:
    """A plottable RF size; NaN (a gap in the line) for an infinite or unavailable one."""
    return math.nan if v is None or v == math.inf else float(v)


def plot_rf_sizes(analysis: Analysis, *, nodes: Iterable[str] | None = None,
                  verdicts: Verdicts | None = None, ax: Axes | None = None, log: bool = True,
                  title: str | None = None) -> Figure | SubFigure:
    """Min (dashed) and max (solid) receptive field per axis along the depth of the network.

    x is the depth index: the node's position among the nodes that depend on the input, in
    topological order (module-output aliases of PyTorch captures left out unless named in
    `nodes`, which picks the nodes drawn). An infinite or unavailable size leaves a gap; layers
    with an infinite max RF (dense, global, attention) get a black triangle at the top.
    The input resolution is a dotted line per axis. With `verdicts`, or when the analysis has an
    input shape (then `analysis.verdicts()`), unproductive / critical / partially critical layers
    get a red / orange / yellow background, and the dotted lines mark the resolution the verdicts
    judge against.
    """
    wanted = None if nodes is None else set(nodes)
    for name in wanted or ():
        if not analysis[name].connected:  # analysis[name] raises UnknownNodeError for a typo
            raise FovealError(f"node {name!r} does not depend on input {analysis.input!r}, so it "
                              f"has no receptive field to plot")
    layers = [n for n in analysis.order if analysis[n].connected
              and ((wanted is not None and n in wanted) or not is_alias(analysis.graph.nodes[n].op))]
    depth = {n: i for i, n in enumerate(layers)}
    names = layers if wanted is None else [n for n in layers if n in wanted]
    xs = [depth[n] for n in names]
    ax = _axes(ax, (min(6 + 0.15 * len(names), 14), 4.5))

    for axis, axis_name in enumerate(analysis.axes):
        color = f"C{axis}"
        ax.plot(xs, [_value(analysis[n].size_min[axis]) for n in names], "--", marker=".",
                color=color, label=_literal(f"{axis_name} min"))
        ax.plot(xs, [_value(analysis[n].size_max[axis]) for n in names], "-", marker=".",
                color=color, label=_literal(f"{axis_name} max"))
    infinite = [depth[n] for n in names if math.inf in analysis[n].size_max]
    if infinite:  # x in data, y in axes coordinates: the top edge of the plot
        ax.plot(infinite, [1.0] * len(infinite), "^", color="black", clip_on=False,
                transform=ax.get_xaxis_transform(), label="RF infinite (global)")

    if verdicts is None and analysis.input_shape is not None:
        verdicts = analysis.verdicts()
    resolution = verdicts.resolution if verdicts is not None else _input_shape(analysis)
    for axis, (axis_name, size) in enumerate(zip(analysis.axes, resolution or ())):
        ax.axhline(size, color=f"C{axis}", linestyle=":", label=_literal(f"input {axis_name} = {size}"))
    seen: set[str] = set()
    for n, x in zip(names, xs):
        verdict = verdicts.get(n) if verdicts is not None else None
        if verdict is not None and verdict.kind in SHOWN_VERDICTS:
            ax.axvspan(x - 0.5, x + 0.5, color=verdict.color, alpha=0.35, linewidth=0, zorder=0,
                       label=None if verdict.kind in seen else verdict.kind)
            seen.add(verdict.kind)

    if log:
        ax.set_yscale("log")
    if len(names) <= MAX_NAMED_TICKS:
        ax.set_xticks(xs, [_literal(n) for n in names], rotation=90, fontsize=7)
    ax.set_xlabel("depth (nodes that depend on the input, in topological order)")
    ax.set_ylabel("receptive field (input positions)")
    if title is not None:
        ax.set_title(_literal(title))
    ax.legend(loc="upper left", fontsize=7)
    return ax.figure


def load_image(path: str | os.PathLike) -> Any:
    """The image at `path` as a numpy array (H, W) or (H, W, C), read by matplotlib / Pillow.

    Anything that is not a readable image raises FovealError in one line, never Pillow's traceback.
    """
    _require_matplotlib()
    import matplotlib.image

    file = Path(path)
    if not file.is_file():
        raise FovealError(f"image file {str(path)!r} does not exist")
    try:
        return matplotlib.image.imread(file)
    except Exception as exc:  # Pillow raises many kinds (OSError, ValueError, SyntaxError, ...)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FovealError(f"{str(path)!r} is not an image file ({reason})") from None


def plot_regions(analysis: Analysis, node: str, features: Sequence[Sequence[int]],
                 image: Any = None, *, ax: Axes | None = None, clip: bool = True,
                 title: str | None = None) -> Figure | SubFigure:
    """The input box each feature of `node` reads, drawn on the image (2-D analyses only).

    features: feature indices, one int per axis (H, W). image: None (a blank canvas of the
    analysis' input shape), a numpy array (H, W) or (H, W, C), or an image file.
    A box is `region(*feature, clip=clip)`: with clip=True the hull of the real pixels the
    feature reads, with clip=False the unclipped box, which may reach into padding. Pixel i
    covers [i - 0.5, i + 0.5], so rows first..last span first - 0.5 to last + 0.5. A "+" marks
    the unclipped centre when it lies inside the image. A feature that reads no real pixel gets
    no box.
    """
    if len(analysis.axes) != 2:
        raise InvalidParameterError(f"plot_regions draws 2-D analyses (axes H, W); this analysis has "
                                    f"{len(analysis.axes)} axes ({', '.join(analysis.axes)})")
    result = analysis[node]
    if features and isinstance(features[0], int):  # one feature given bare: (3, 4)
        features = [features]  # type: ignore[list-item]
    _require_matplotlib()
    import numpy as np
    from matplotlib.patches import Rectangle

    shape = _input_shape(analysis)
    if image is None:
        if shape is None:
            raise FovealError("plot_regions without an image draws on the input shape: analyse "
                              "with input_shape=(H, W)")
        pixels = np.full((*shape, 3), 0.95)  # RGB: no colour scaling
    else:
        pixels = np.asarray(load_image(image) if isinstance(image, (str, os.PathLike)) else image)
        if pixels.ndim == 3 and pixels.shape[2] == 1:
            pixels = pixels[..., 0]
        if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4))):
            raise FovealError(f"an image is an array (H, W) or (H, W, 3 or 4), got shape {pixels.shape}")
    height, width = pixels.shape[:2]
    if shape is not None and (height, width) != shape:
        raise FovealError(f"the image is {height}x{width} (HxW) but the analysis input is "
                          f"{fmt(shape)}; analyse with input_shape=({height}, {width})")

    ax = _axes(ax, (6, 6))
    ax.imshow(pixels, cmap="gray")  # the colour map applies to a grey (H, W) image only
    colors = [f"C{i % 10}" for i in range(len(features))]
    for feature, color in zip(features, colors):
        rows, cols = result.region(*feature, clip=clip)
        if rows is None or cols is None or not all(map(math.isfinite, (*rows, *cols))):
            continue  # reads no real pixel, or is global on an input of unknown size
        ax.add_patch(Rectangle((cols[0] - 0.5, rows[0] - 0.5), cols[1] - cols[0] + 1,
                               rows[1] - rows[0] + 1, fill=False, edgecolor=color, linewidth=1.5,
                               label=str(tuple(feature))))
        ax.text(cols[0] - 0.5, rows[0] - 0.5, str(tuple(feature)), color=color, fontsize=7,
                ha="left", va="top", bbox={"facecolor": "white", "alpha": 0.6, "pad": 1, "linewidth": 0})
        row, col = result.center(*feature)
        if (row is not None and col is not None and -0.5 <= row <= height - 0.5
                and -0.5 <= col <= width - 0.5):
            ax.plot(col, row, "+", color=color, markersize=10)
    ax.set_xlabel(_literal(f"{analysis.axes[1]} (column)"))
    ax.set_ylabel(_literal(f"{analysis.axes[0]} (row)"))
    ax.set_title(_literal(title if title is not None else f"input regions of {node}"))
    return ax.figure


def save(figure: Figure | SubFigure, path: str | os.PathLike) -> Path:
    """Write the figure to `path` in the format of its suffix (png, svg, pdf), whole or not at all.

    The figure is rendered in memory first and then written through a temporary file and
    os.replace, so a failure never leaves a partial file.
    """
    path = Path(path)
    fmt_name = path.suffix.lstrip(".").lower()
    if fmt_name not in SAVE_FORMATS:
        raise FovealError(f"cannot save a plot to {str(path)!r}: the format is taken from the suffix, "
                          f"one of .{', .'.join(SAVE_FORMATS)}")
    from matplotlib.figure import SubFigure

    root = figure.figure if isinstance(figure, SubFigure) else figure
    buffer = io.BytesIO()
    root.savefig(buffer, format=fmt_name)
    atomic_write(path, buffer.getvalue())
    return path
