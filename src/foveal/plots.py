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


QUANTITY_LINES = {"min": "--", "max": "-"}
QUANTITY_MARKERS = {"min": "v", "max": "^"}


def _series_style(axis: int) -> dict[str, Any]:
    """matplotlib line options of one axis' series (see plot_rf_sizes)."""
    color = f"C{axis % 10}"
    if axis == 0:
        return {"color": color, "linewidth": 4, "alpha": 0.45, "markersize": 9,
                "markerfacecolor": "none", "markeredgewidth": 1.5}
    return {"color": color, "linewidth": 1.3, "markersize": 4.5}


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
    """Min (dashed, marker v) and max (solid, marker ^) receptive field per axis along the depth
    of the network.

    The axes keep apart where their values coincide (a square input): the first axis is a wide,
    pale line with large hollow markers, the others thin lines with small filled markers drawn
    on top, so an H line never hides the W line and min and max never share a marker.

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
        style = _series_style(axis)
        for quantity, values in (("min", [analysis[n].size_min[axis] for n in names]),
                                 ("max", [analysis[n].size_max[axis] for n in names])):
            ax.plot(xs, [_value(v) for v in values], QUANTITY_LINES[quantity],
                    marker=QUANTITY_MARKERS[quantity], label=_literal(f"{axis_name} {quantity}"), **style)
    infinite = [depth[n] for n in names if math.inf in analysis[n].size_max]
    if infinite:  # x in data, y in axes coordinates: the top edge of the plot
        ax.plot(infinite, [1.0] * len(infinite), "*", color="black", markersize=9, clip_on=False,
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


# -- the same plot as SVG text, for the HTML report (no matplotlib) -------------------------------

SVG_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
"""matplotlib's C0..C7, so the SVG plot and plot_rf_sizes colour the axes alike."""
SVG_PLOT_HEIGHT = 260
SVG_LABELLED = 40
"""Up to this many layers, their names are written under the plot."""


def _n(x: float) -> str:
    """A coordinate in SVG text: one decimal at most."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _triangle(x: float, y: float, r: float, up: bool) -> str:
    """Points of a triangle centred on (x, y): ^ for a max, v for a min."""
    s = 1 if up else -1
    return " ".join(f"{_n(px)},{_n(py)}" for px, py in
                    ((x, y - s * r), (x + 0.87 * r, y + s * 0.5 * r), (x - 0.87 * r, y + s * 0.5 * r)))


def _svg_series(axis: int, quantity: str) -> tuple[str, str, float]:
    """(line attributes, marker attributes, marker radius) of one series, as in _series_style."""
    color = SVG_COLORS[axis % len(SVG_COLORS)]
    dash = ' stroke-dasharray="5 3"' if quantity == "min" else ""
    if axis == 0:
        return (f'fill="none" stroke="{color}" stroke-width="4" stroke-opacity="0.45"{dash}',
                f'fill="none" stroke="{color}" stroke-width="1.5"', 5.0)
    return f'fill="none" stroke="{color}" stroke-width="1.3"{dash}', f'fill="{color}"', 3.5


def _finite(v: Any) -> float | None:
    return None if v is None or v == math.inf else float(v)


def rf_sizes_svg(analysis: Analysis, names: Sequence[str], verdicts: Verdicts | None = None) -> str:
    """plot_rf_sizes as an SVG element written by hand (no matplotlib), for the HTML report.

    The same encoding: per axis a colour, min dashed with v markers, max solid with ^ markers,
    the first axis wide and pale with hollow markers under the thin others; a black triangle at
    the top for an infinite max; the input size dotted; verdict backgrounds. Each layer of
    `names` (in depth order) is one `<g class="column" data-layer="NAME">` whose transparent
    `rect.hit` spans the plot's height, so a page selects a layer by a click and highlights it
    with CSS. Names are escaped.
    """
    from html import escape

    n = len(names)
    step = min(24.0, max(6.0, 900 / max(n, 1)))
    left, top, height = 56.0, 44.0, float(SVG_PLOT_HEIGHT)
    right, bottom = left + step * n, top + height
    total_height = bottom + (120 if n <= SVG_LABELLED else 30)
    results = [analysis[name] for name in names]
    resolution = verdicts.resolution if verdicts is not None else _input_shape(analysis)
    values = [v for r in results for pair in (r.size_min, r.size_max) for x in pair
              if (v := _finite(x)) is not None] + [float(v) for v in resolution or ()]
    high = max(2.0, *values) * 1.3 if values else 2.0

    def y_of(v: float) -> float:  # log scale from 1 (the bottom) to `high`
        return top + height * (1 - math.log(max(v, 1.0)) / math.log(high))

    def x_of(i: int) -> float:
        return left + step * (i + 0.5)

    out = [f'<svg id="rf-plot" width="{_n(right + 16)}" height="{_n(total_height)}" '
           f'viewBox="0 0 {_n(right + 16)} {_n(total_height)}" role="img" font-family="sans-serif" '
           f'font-size="10" aria-label="receptive field size along depth">']
    x = left
    for axis, axis_name in enumerate(analysis.axes):  # the legend
        for quantity in ("max", "min"):
            line, marker, radius = _svg_series(axis, quantity)
            out.append(f'<line x1="{_n(x)}" y1="14" x2="{_n(x + 28)}" y2="14" {line}/>'
                       f'<polygon points="{_triangle(x + 14, 14, radius, quantity == "max")}" {marker}/>'
                       f'<text x="{_n(x + 32)}" y="17">{escape(axis_name)} {quantity}</text>')
            x += 44 + 6 * len(f"{axis_name} {quantity}")
    out.append(f'<polygon points="{_triangle(x + 6, 14, 5, True)}" fill="black"/>'
               f'<text x="{_n(x + 14)}" y="17">infinite max (global)</text>')
    if resolution:
        out.append(f'<text x="{_n(left)}" y="33" fill="#555">dotted: the input size '
                   f"{escape(fmt(tuple(resolution)))}</text>")
    for i, name in enumerate(names):  # verdict backgrounds
        verdict = verdicts.get(name) if verdicts is not None else None
        if verdict is not None and verdict.kind in SHOWN_VERDICTS:
            out.append(f'<rect class="verdict" x="{_n(x_of(i) - step / 2)}" y="{_n(top)}" '
                       f'width="{_n(step)}" height="{_n(height)}" fill="{escape(verdict.color)}" '
                       f'fill-opacity="0.35"/>')
    tick = 1
    while tick <= high:  # 1, 2, 5, 10, 20, 50, ...
        y = _n(y_of(tick))
        out.append(f'<line x1="{_n(left)}" y1="{y}" x2="{_n(right)}" y2="{y}" stroke="#ddd"/>'
                   f'<text x="{_n(left - 4)}" y="{y}" text-anchor="end" dominant-baseline="middle">'
                   f"{tick}</text>")
        tick = tick * 5 // 2 if str(tick)[0] == "2" else tick * 2
    out.append(f'<rect x="{_n(left)}" y="{_n(top)}" width="{_n(step * n)}" height="{_n(height)}" '
               f'fill="none" stroke="#888"/><text transform="translate(12 {_n(top + height / 2)}) '
               f'rotate(-90)" text-anchor="middle">receptive field (input positions)</text>')
    for axis, size in enumerate(resolution or ()):
        y = _n(y_of(float(size)))
        out.append(f'<line class="input-size" x1="{_n(left)}" y1="{y}" x2="{_n(right)}" y2="{y}" '
                   f'stroke="{SVG_COLORS[axis % len(SVG_COLORS)]}" stroke-dasharray="1 3" '
                   f'stroke-width="1.5"/>')
    for axis in range(len(analysis.axes)):  # the series, the first axis under the others
        for quantity in ("max", "min"):
            line, marker, radius = _svg_series(axis, quantity)
            sizes = [_finite((r.size_max if quantity == "max" else r.size_min)[axis]) for r in results]
            runs: list[list[str]] = [[]]
            for i, v in enumerate(sizes):  # an infinite or unavailable size leaves a gap
                if v is None:
                    runs.append([])
                else:
                    runs[-1].append(f"{_n(x_of(i))},{_n(y_of(v))}")
            out.append(f'<g class="series" data-axis="{escape(analysis.axes[axis])}" '
                       f'data-quantity="{quantity}">')
            out += [f'<polyline points="{" ".join(run)}" {line}/>' for run in runs if len(run) > 1]
            out += [f'<polygon points="{_triangle(x_of(i), y_of(v), radius, quantity == "max")}" {marker}/>'
                    for i, v in enumerate(sizes) if v is not None]
            out.append("</g>")
    out += [f'<polygon class="global" points="{_triangle(x_of(i), top - 5, 5, True)}" fill="black"/>'
            for i, r in enumerate(results) if math.inf in r.size_max]
    for i, (name, r) in enumerate(zip(names, results)):  # one clickable column per layer, on top
        tip = f"{name}: receptive field min {fmt(r.size_min)}, max {fmt(r.size_max)}"
        out.append(f'<g class="column" data-layer="{escape(name)}"><title>{escape(tip)}</title>'
                   f'<rect class="hit" x="{_n(x_of(i) - step / 2)}" y="{_n(top)}" width="{_n(step)}" '
                   f'height="{_n(height)}" fill="transparent"/></g>')
        if n <= SVG_LABELLED:
            label = name if len(name) <= 18 else name[:17] + "\u2026"
            out.append(f'<text transform="translate({_n(x_of(i) + 3)} {_n(bottom + 6)}) rotate(-90)" '
                       f'text-anchor="end">{escape(label)}</text>')
    out.append(f'<text x="{_n((left + right) / 2)}" y="{_n(total_height - 6)}" text-anchor="middle">'
               f"depth (layers in topological order)</text></svg>")
    return "\n".join(out)
