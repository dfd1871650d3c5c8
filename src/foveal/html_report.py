"""One self-contained, interactive HTML page of an analysis: summary, layer list, receptive-field
view, graph, RF-growth plot.

The page must open offline and be mailed around as one file, so everything is inline: CSS in
<style>, the script in <script>, the data in a JSON <script>, the Graphviz drawing and the plot
as inline SVG, the user's image as a data: URI. No URL is written. Graphviz is optional: without
it the page says so and shows the DOT text; matplotlib is needed only for the static `regions=`
plots. Like every output, it reads the analysis and never recomputes it: the page draws the
regions that foveal clipped to the input (see `_regions`).

The selection (a layer and one of its features) is shared by the layer list, the graph and the
plot; `#rf-view` exposes it as `data-selected-layer`, `data-feature` ("i,j": one index per axis)
and `data-box` (the clipped region, "first,last" per axis in axis order: "y0,y1,x0,x1" on an
image; "" when the feature reads no input pixel or the region is unavailable, which
`data-unavailable` then explains). The URL hash is `#layer=<name>` (encodeURIComponent), plus
`&feature=i,j` when another than the centre feature n//2 is chosen; a page opened with such a
hash shows that selection.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from .drawing import analysis_dot, atomic_write, dot_available, layer_type, pipe
from .errors import FovealError, InvalidParameterError
from .files import read_file
from .productivity import COLORS, KINDS, fmt, is_alias
from .report import changes_nothing
from .summary import Summary, field_text, summarize

if TYPE_CHECKING:
    from .analysis import Analysis, NodeResult
    from .productivity import Verdicts

Region = tuple[str, Sequence[int]]
"""(node name, feature index with one int per axis)."""

COLUMNS = (  # (key, heading, what it says, sorted as numbers)
    ("index", "#", "position in the network (topological order)", True),
    ("verdict", "verdict", "productivity at the input size (rfa_toolbox's rules)", True),
    ("name", "layer", "node name", False), ("type", "type", "the framework's layer or foveal's op", False),
    ("rf", "RF", "receptive field: the largest input region a feature reads", True),
    ("stride", "eff. stride", "effective stride: input positions per feature step", True),
    ("padding", "eff. padding", "effective padding: feature 0's region starts at -padding", True),
    ("rf_min", "min RF", "the smallest receptive field over the input-to-layer paths", True),
    ("feature_map", "map", "feature map size", True),
)
NO_VERDICTS = ("Verdicts need an input resolution: analyse with input_shape (on the command line, "
               "--input-size).")
NO_SIZE = ("Regions need the input size: analyse with input_shape (on the command line, "
           "--input-size).")
NO_MATPLOTLIB = ("The plots of the chosen regions need matplotlib, which is not installed: "
                 "pip install foveal[plot].")
MAX_EMBEDDED_POSITIONS = 2_000_000
"""Interval ends embedded for the page's regions (about 10 MB of JSON); layers past it say so."""
MAX_IMAGE_BYTES = 64 << 20
IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
               (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"BM", "image/bmp"))
VIEW_SIZE = 360
"""CSS pixels of the longer side of the input picture."""


def write_report(analysis: Analysis, path: str | os.PathLike, *, title: str | None = None,
                 regions: Iterable[Region] | None = None, image: Any = None,
                 sections: Iterable[str] = ()) -> Path:
    """Write the HTML report of `analysis` to `path`, whole or not at all.

    image: the picture the receptive fields are drawn on (a PNG / JPEG / GIF / BMP / WebP file
    or its bytes, or an array (H, W) or (H, W, 3 or 4)), embedded in the page; without it, a grid
    of the input's size. regions: (node, feature index) pairs also drawn as static plots on the
    image (matplotlib), one plot per node. sections: extra HTML sections placed before the graph
    (the advisor's proposals: foveal.advisor.report), escaped by whoever made them.
    """
    path = Path(path)
    atomic_write(path, report_html(analysis, title=title, regions=regions, image=image,
                                   sections=sections).encode())
    return path


def missing_parts(*, regions: bool = False) -> list[str]:
    """What a report written on this machine lacks, in words, for a terminal (the page says it
    inside): the graph drawing without Graphviz's dot and, when `regions` are asked for, their
    static plots without matplotlib. The layer list, the receptive-field view and the RF plot
    need neither."""
    notes = []
    if not dot_available():
        notes.append("the report has no graph drawing: the Graphviz program 'dot' is not installed "
                     "(Debian/Ubuntu: apt-get install graphviz); it holds the DOT text instead")
    if regions:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            notes.append("the report has no plots of the chosen regions: matplotlib is not installed "
                         "(pip install foveal[plot])")
    return notes


@dataclass(frozen=True)
class Row:
    """One layer of the list."""

    result: NodeResult
    folded: bool
    """It changes nothing (report.changes_nothing): hidden until the reader asks for every row."""
    drawn: str
    """The node the graph and the plot show for it: itself, or the node a module-output name names."""
    badge: str


def report_html(analysis: Analysis, *, title: str | None = None, regions: Iterable[Region] | None = None,
                image: Any = None, sections: Iterable[str] = ()) -> str:
    """The report as one HTML string (see write_report)."""
    by_node: dict[str, list[Sequence[int]]] = {}
    for node, feature in regions or ():
        analysis[node]  # an unknown name raises UnknownNodeError before anything is drawn
        by_node.setdefault(node, []).append(feature)
    picture = _image_uri(analysis, image) if image is not None else None
    summary = summarize(analysis)
    verdicts = analysis.verdicts() if analysis.input_shape is not None else None
    rows = _rows(analysis, summary)
    heading = title or f"foveal report: {analysis.graph.name}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(heading)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        f"<h1>{_esc(heading)}</h1>",
        _summary(analysis, summary, rows),
        '<section id="explorer"><h2>Layers and their receptive fields</h2>',
        '<div class="panes">', _table(rows, verdicts), _view(analysis, picture), "</div></section>",
        _plots(analysis, rows, verdicts, by_node, image),
        *sections,
        _graph(analysis, verdicts),
        '<script type="application/json" id="foveal-data">',
        _data(analysis, summary, rows, verdicts), "</script>",
        f"<script>{SCRIPT}</script>", "</body>", "</html>",
    ]
    return "\n".join(parts) + "\n"


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _hash(name: str) -> str:
    """`#layer=<name>` as the page's encodeURIComponent writes it."""
    return "#layer=" + quote(name, safe="!'()*~")


def _rows(analysis: Analysis, summary: Summary) -> list[Row]:
    """The connected nodes in order; the output and the last spatial layer are never folded."""
    headline = {summary.output.name: "output"}
    if summary.last_local is not None:
        headline[summary.last_local.name] = "last spatial layer"
    rows = []
    for r in analysis:
        if not r.connected:
            continue
        drawn = r.name
        while is_alias(analysis.graph.nodes[drawn].op) and analysis.graph.nodes[drawn].inputs:
            drawn = analysis.graph.nodes[drawn].inputs[0]
        badge = headline.get(r.name, "")
        rows.append(Row(r, changes_nothing(analysis, r.name) and not badge, drawn, badge))
    return rows


# -- the regions the page draws ------------------------------------------------------------------

def _regions(analysis: Analysis, rows: list[Row]) -> tuple[dict[str, list[int] | str], list[list[list[int]]]]:
    """Per layer, the indices of its components in the returned list, or why it has none.

    The page computes a feature's clipped region exactly as `NodeResult.region(*index,
    clip=True)` does (foveal.clipped): per component, per axis, per output position an interval
    [first, last] of input positions or none (-1, -1 here); the region of index (i, j, ...) is the
    bounding box of the components that read something on every axis at it, or nothing. So the
    data is linear in the feature-map sides, not their product; equal components (a ReLU's and
    its conv's) are embedded once.
    """
    if analysis.input_shape is None:
        return dict.fromkeys((row.result.name for row in rows), NO_SIZE), []
    clipped = analysis._clipped  # the same computation NodeResult.region(clip=True) reads
    components: list[list[list[int]]] = []
    seen: dict[Any, int] = {}
    out: dict[str, list[int] | str] = {}
    embedded = 0
    for row in rows:
        name = row.result.name
        try:
            found = clipped.of(name)
        except FovealError as error:
            out[name] = f"the clipped region is unavailable: {error}"
            continue
        refs = []
        for component in found:
            key = tuple(tuple(hulls) for hulls in component)
            if key not in seen:
                flat = [[v for hull in hulls for v in (hull if hull is not None else (-1, -1))]
                        for hulls in component]
                embedded += sum(map(len, flat))
                if embedded > MAX_EMBEDDED_POSITIONS:
                    break
                seen[key] = len(components)
                components.append(flat)
            refs.append(seen[key])
        else:
            out[name] = refs
            continue
        out[name] = (f"not embedded: the report holds the regions of at most "
                     f"{MAX_EMBEDDED_POSITIONS:,} positions (use NodeResult.region(..., clip=True))")
    return out, components


def _data(analysis: Analysis, summary: Summary, rows: list[Row], verdicts: Verdicts | None) -> str:
    """The JSON the page's script reads, safe inside <script> (no '<', '>' or '&' in the text)."""
    regions, components = _regions(analysis, rows)
    layers = []
    for row in rows:
        r = row.result
        verdict = verdicts.get(r.name) if verdicts is not None else None
        found = regions[r.name]
        node = analysis.graph.nodes[r.name]
        kind = f"{node.label or r.kind} output, a name for {row.drawn}" if is_alias(node.op) else \
            layer_type(analysis, r.name)
        layers.append({
            "name": r.name, "type": kind, "drawn": row.drawn, "text": field_text(r),
            "shape": None if None in r.output_shape else list(r.output_shape),
            "regions": found if isinstance(found, list) else None,
            "why": found if isinstance(found, str) else None,
            "verdict": None if verdict is None or verdict.alias else verdict.kind,
            "reason": None if verdict is None or verdict.alias else verdict.reason,
        })
    initial = summary.last_local.name if summary.last_local is not None else summary.output.name
    shape = None if summary.input_shape is None else list(summary.input_shape)
    text = json.dumps({"axes": list(analysis.axes), "input": shape,
                       "initial": initial, "colors": COLORS, "layers": layers, "components": components},
                      separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# -- the user's image ----------------------------------------------------------------------------

def _image_uri(analysis: Analysis, image: Any) -> str:
    """`image` as a data: URI of a raster format a browser shows (never SVG, which can hold
    scripts); an array is written as PNG."""
    if len(analysis.axes) != 2:
        raise InvalidParameterError(f"an image is drawn under 2-D analyses (axes H, W); this analysis "
                                    f"has {len(analysis.axes)} axes ({', '.join(analysis.axes)})")
    if analysis.input_shape is None:
        raise FovealError("drawing receptive fields on an image needs the input size: analyse with "
                          "input_shape=(H, W)")
    if isinstance(image, (str, os.PathLike)):
        data, where = read_file(image, MAX_IMAGE_BYTES), repr(str(image))
    elif isinstance(image, (bytes, bytearray, memoryview)):
        data, where = bytes(image), "the image bytes"
    else:
        data, where = _png(image), "the image"
    if len(data) > MAX_IMAGE_BYTES:
        raise FovealError(f"{where} has {len(data):,} bytes, over the report's limit of {MAX_IMAGE_BYTES:,}")
    mime = next((m for magic, m in IMAGE_TYPES if data.startswith(magic)), None)
    if mime is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    if mime is None:
        raise FovealError(f"{where} is not a PNG, JPEG, GIF, BMP or WebP image")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _png(image: Any) -> bytes:
    """An array (H, W) or (H, W, 1, 3 or 4) as PNG bytes: floats are read in [0, 1], integers in
    [0, 255] (numpy is there: the caller made the array)."""
    import numpy as np

    pixels = np.asarray(image)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4))) or 0 in pixels.shape:
        raise FovealError(f"an image is an array (H, W) or (H, W, 3 or 4), got shape {pixels.shape}")
    if pixels.dtype.kind == "f":
        pixels = np.clip(np.nan_to_num(pixels), 0, 1) * 255 + 0.5
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    height, width = pixels.shape[:2]
    color = 0 if pixels.ndim == 2 else {3: 2, 4: 6}[pixels.shape[2]]  # grey, RGB, RGBA
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


# -- sections ------------------------------------------------------------------------------------

def _link(name: str) -> str:
    return f'<a href="{_esc(_hash(name))}" class="layer-link">{_esc(name)}</a>'


def _summary(analysis: Analysis, summary: Summary, rows: list[Row]) -> str:
    shape = "unknown size" if summary.input_shape is None else " x ".join(map(str, summary.input_shape))
    folded = sum(row.folded for row in rows)
    out = ['<section id="summary">', "<h2>Summary</h2>", "<dl>",
           f'<dt>model</dt><dd data-field="model">{_esc(summary.graph)}</dd>',
           f'<dt>input</dt><dd data-field="input">{_esc(summary.input)}: {_esc(shape)} '
           f'(axes {_esc(" x ".join(summary.axes))})</dd>',
           f'<dt>output</dt><dd data-field="output">{_link(summary.output.name)}: '
           f"{_esc(field_text(summary.output))}</dd>"]
    if summary.last_local is not None:
        out.append(f'<dt>last spatial layer</dt><dd data-field="last-local">'
                   f"{_link(summary.last_local.name)}: {_esc(field_text(summary.last_local))}</dd>")
    if summary.counts is None:
        out.append(f'<dt>verdicts</dt><dd class="note" id="verdicts-note">{_esc(NO_VERDICTS)}</dd>')
    else:
        items = "".join(f'<li data-kind="{_esc(kind)}" data-count="{count}"><span class="swatch" '
                        f'style="background:{_esc(COLORS[kind])}"></span>{count} {_esc(kind)}</li>'
                        for kind, count in summary.counts.items())
        out.append(f'<dt>verdicts at {_esc(shape)}</dt><dd><ul id="verdict-counts">{items}</ul></dd>')
    out.append(f"<dt>input-resolution range</dt><dd>{_range(summary)}</dd>")
    out.append(f'<dt>nodes</dt><dd data-field="nodes">{summary.nodes} nodes; {len(rows)} depend on the '
               f"input, {folded} of them change nothing (point-wise ops, module-output names) and are "
               f"folded in the list</dd>")
    unsupported = analysis.unsupported_ops
    if unsupported:
        ops = ", ".join(f"{name} ({count})" for name, count in sorted(unsupported.items()))
        out.append(f'<dt>unsupported ops</dt><dd id="unsupported">unknown-op policy '
                   f"{_esc(analysis.options.unknown_policy)}: {_esc(ops)}</dd>")
    out += ["</dl>", "</section>"]
    return "\n".join(out)


def _range(summary: Summary) -> str:
    """rfa_toolbox's rule: the input sizes at which no layer is unproductive and every pattern
    fits some feature extractor's receptive field, per axis with the layers that set the ends."""
    found = summary.resolution_range
    if found is None:
        reason = summary.range_unavailable or "it needs an input size"
        return f'<span class="note" id="range-unavailable">unavailable: {_esc(reason)}</span>'
    out = ['<table id="range-table"><thead><tr><th>axis</th><th>minimum</th><th>set by</th>'
           "<th>maximum</th><th>set by</th></tr></thead><tbody>"]
    for axis, low, low_from, high, high_from in zip(summary.axes, found.minimum, found.minimum_from,
                                                     found.maximum, found.maximum_from):
        out.append(f'<tr data-axis="{_esc(axis)}"><td>{_esc(axis)}</td><td class="num">{_esc(low)}</td>'
                   f"<td>{_esc(low_from or '-')}</td><td class=\"num\">{_esc(high)}</td>"
                   f"<td>{_esc(high_from or '-')}</td></tr>")
    out.append("</tbody></table>")
    out += [f'<p class="note">{_esc(note)}</p>' for note in found.notes]
    return "".join(out)


def _number(v: Any) -> str:
    return "Infinity" if v == math.inf else str(float(v) if isinstance(v, Fraction) else v)


def _axes_cell(key: str, values: tuple[Any, ...], is_global: tuple[bool, ...] | None = None) -> str:
    """A per-axis cell: '7x7', 'global' on an axis that reads the whole input, '-' unavailable;
    its data-value sorts axis by axis ('' last)."""
    marks = is_global or (False,) * len(values)
    if all(v is None for v in values):
        text, value = "-", ""
    else:
        shown = tuple("global" if g else v for v, g in zip(values, marks))
        text = "global" if all(marks) else fmt(shown)
        value = "" if None in values else \
            " ".join("Infinity" if g else _number(v) for v, g in zip(values, marks))
    return f'<td data-key="{key}" class="num" data-value="{_esc(value)}">{_esc(text)}</td>'


def _table(rows: list[Row], verdicts: Verdicts | None) -> str:
    folded = sum(row.folded for row in rows)
    out = ['<div id="list-pane">',
           f'<p class="controls"><label><input type="checkbox" id="show-all"> show the {folded} rows that '
           "change nothing (norms, activations, dropout, reshapes, module-output names)</label></p>",
           '<table id="layers"><thead><tr>']
    out += [f'<th data-key="{key}" data-type="{"number" if numeric else "text"}" title="{_esc(tip)}">'
            f"{_esc(label)}</th>" for key, label, tip, numeric in COLUMNS]
    out.append("</tr></thead><tbody>")
    for index, row in enumerate(rows):
        r = row.result
        verdict = verdicts.get(r.name) if verdicts is not None else None
        if verdict is None or verdict.alias:
            cell, kind = '<td data-key="verdict" data-value=""></td>', ""
        else:
            words = "" if verdict.kind == "productive" else _esc(verdict.kind)
            cell = (f'<td data-key="verdict" data-value="{KINDS.index(verdict.kind)}" '
                    f'title="{_esc(verdict.reason)}"><span class="swatch" '
                    f'style="background:{_esc(verdict.color)}"></span>{words}</td>')
            kind = f' data-verdict="{_esc(verdict.kind)}"'
        badges = "".join(f' <span class="badge">{_esc(b)}</span>' for b in (row.badge, r.status)
                         if b and b != "exact")
        label = r.node.label or r.kind
        same = ' class="same"' if row.folded else ""
        out.append(
            f'<tr data-layer="{_esc(r.name)}" data-index="{index}"{kind}{same} tabindex="0">'
            f'<td data-key="index" class="num" data-value="{index}">{index}</td>{cell}'
            f'<td data-key="name"><span class="name">{_esc(r.name)}</span>{badges}</td>'
            f'<td data-key="type">{_esc(label)}</td>'
            + _axes_cell("rf", r.size, r.is_global) + _axes_cell("stride", r.stride)
            + _axes_cell("padding", r.padding) + _axes_cell("rf_min", r.size_min)
            + _axes_cell("feature_map", r.output_shape) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _view(analysis: Analysis, picture: str | None) -> str:
    """The selected layer's panel: its numbers, its feature map (click a feature) and its region
    on the input (the user's image or a grid), drawn in input pixel coordinates: pixel i covers
    [i - 0.5, i + 0.5]."""
    inputs = "".join(f'<label>{_esc(axis)} <input type="number" min="0" step="1" data-axis="{i}"></label> '
                     for i, axis in enumerate(analysis.axes))
    out = ['<div id="rf-view" data-selected-layer="" data-feature="" data-box="">',
           '<p id="rf-note" class="note"></p>', '<h3 id="rf-title"></h3>',
           '<p id="rf-type" class="note"></p>', '<p id="rf-field"></p>',
           '<p id="rf-verdict"></p>',
           '<figure class="side"><svg id="feature-map" role="img" aria-label="feature map: click a feature" '
           'preserveAspectRatio="none"><rect id="fm-back" fill="#e8eef8"/><g id="fm-grid"></g>'
           '<rect id="fm-mark" width="1" height="1" fill="#0a58ca"/></svg>',
           f'<figcaption>Feature map: click a feature, or type its index: {inputs}'
           '<span id="feature-text"></span></figcaption></figure>']
    shape = cast("tuple[int, ...] | None", analysis.input_shape)
    if shape is None:
        out.append(f'<p class="note" id="no-size">{_esc(NO_SIZE)}</p></div>')
        return "\n".join(out)
    width = shape[-1]
    height = shape[-2] if len(shape) > 1 else 1
    scale = VIEW_SIZE / max(width, height)
    css_w, css_h = max(width * scale, 16), (max(height * scale, 16) if len(shape) > 1 else 28)
    out.append(f'<figure><svg id="input-view" viewBox="-0.5 -0.5 {width} {height}" '
               'preserveAspectRatio="none" '
               f'style="width:{css_w:.0f}px;height:{css_h:.0f}px" role="img" '
               f'aria-label="the input with the selected receptive field">')
    if picture is not None:
        out.append(f'<image id="input-image" href="{picture}" x="-0.5" y="-0.5" width="{width}" '
                   f'height="{height}" preserveAspectRatio="none"/>')
    else:
        out.append(f'<rect x="-0.5" y="-0.5" width="{width}" height="{height}" fill="#f6f6f6"/>')
        out += _grid(width, height if len(shape) > 1 else None)
    out.append('<rect id="rf-box" fill="#0a58ca" fill-opacity="0.25" stroke="#0a58ca" stroke-width="2" '
               'vector-effect="non-scaling-stroke" visibility="hidden"/></svg>')
    what = "the image" if picture is not None else "a grid"
    axes = (f"{analysis.axes[-2]} down, {analysis.axes[-1]} across" if len(shape) > 1
            else f"{analysis.axes[0]} across")
    if len(shape) > 2:
        axes += f"; the region on {', '.join(analysis.axes[:-2])} is given in words"
    out.append(f'<figcaption>The input ({_esc(fmt(shape))}, {_esc(what)}; {_esc(axes)}): the box is the '
               'hull of the input pixels the feature reads (padding left out). '
               '<span id="rf-box-text"></span> <span id="image-note" class="note"></span></figcaption>'
               "</figure></div>")
    return "\n".join(out)


def _grid(width: int, height: int | None) -> list[str]:
    """Grid lines every 2^k pixels (at most about 16 per axis), thicker every 4 lines."""
    def lines(n: int) -> list[int]:
        step = 1
        while n / step > 16:
            step *= 2
        return list(range(step, n, step))

    out = []
    for x in lines(width):
        out.append(f'<line x1="{x - 0.5}" y1="-0.5" x2="{x - 0.5}" y2="{(height or 1) - 0.5}" stroke="#ccc" '
                   'vector-effect="non-scaling-stroke"/>')
    for y in lines(height or 1):
        out.append(f'<line x1="-0.5" y1="{y - 0.5}" x2="{width - 0.5}" y2="{y - 0.5}" stroke="#ccc" '
                   'vector-effect="non-scaling-stroke"/>')
    return out


def _graph(analysis: Analysis, verdicts: Verdicts | None) -> str:
    dot = analysis_dot(analysis, verdicts)
    head = '<section id="graph" data-rendered="{}"><h2>Graph</h2>'
    if not dot_available():
        return "\n".join([head.format("dot"), '<p class="note">The Graphviz program \'dot\' is not '
                          "installed, so the graph is not drawn (install graphviz); its DOT text:</p>",
                          f"<details><summary>DOT text</summary><pre>{_esc(dot)}</pre></details>",
                          "</section>"])
    return "\n".join([head.format("svg"), '<p class="note">Click a box to select its layer.</p>',
                      f'<div class="drawing">{_inline_svg(pipe(dot, "svg"))}</div>', "</section>"])


def _inline_svg(data: bytes) -> str:
    """Graphviz's SVG document as an HTML element: no XML prolog or DOCTYPE (which name the
    SVG DTD by URL), no namespace declarations (the HTML parser puts <svg> in its namespace),
    no comments (they repeat node names, which must not end an HTML comment early)."""
    text = data.decode()
    text = re.sub(r"<!--.*?-->", "", text[text.index("<svg"):], flags=re.S)
    return re.sub(r'\s+xmlns(?::\w+)?="[^"]*"', "", text)


def _plots(analysis: Analysis, rows: list[Row], verdicts: Verdicts | None,
           regions: dict[str, list[Sequence[int]]], image: Any) -> str:
    from .plots import rf_sizes_svg

    names = [row.result.name for row in rows if not is_alias(row.result.node.op)]
    out = ['<section id="plots">', "<h2>Receptive field along depth</h2>",
           '<p class="note">Click a column to select its layer; a module-output name selects the '
           "column of the layer it names.</p>",
           f'<div class="drawing">{rf_sizes_svg(analysis, names, verdicts)}</div>']
    if regions:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            out.append(f'<p class="note" id="no-matplotlib">{_esc(NO_MATPLOTLIB)}</p>')
        else:
            from .plots import plot_regions

            pixels = image
            if isinstance(image, (bytes, bytearray, memoryview)):
                import matplotlib.image

                pixels = matplotlib.image.imread(io.BytesIO(bytes(image)))
            out += [_png_img(plot_regions(analysis, node, features, pixels), f"input regions of {node}")
                    for node, features in regions.items()]
    out.append("</section>")
    return "\n".join(out)


def _png_img(figure: Any, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img data-plot="regions" alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; } h3 { margin: 0 0 0.3em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.3em 1em; }
dt { font-weight: 600; } dd { margin: 0; }
dd ul { margin: 0; padding: 0; list-style: none; display: flex; gap: 1em; flex-wrap: wrap; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 0.15em 0.45em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; border: 1px solid #888;
          vertical-align: middle; margin-right: 0.3em; }
.note { color: #555; font-style: italic; }
.badge { font-size: 0.8em; background: #eee; border-radius: 0.6em; padding: 0 0.4em; color: #333; }
.panes { display: grid; grid-template-columns: minmax(0, 1fr) minmax(300px, 420px); gap: 1em;
         align-items: start; }
@media (max-width: 900px) { .panes { grid-template-columns: 1fr; } }
#list-pane { max-height: 80vh; overflow: auto; border: 1px solid #ddd; scroll-padding: 2.5em 0 0.5em; }
#list-pane .controls { margin: 0.3em 0.5em; font-size: 0.9em; }
#layers th { cursor: pointer; background: #f0f0f0; user-select: none; white-space: nowrap;
             position: sticky; top: 0; }
#layers th[aria-sort=ascending]::after { content: " \\25B2"; }
#layers th[aria-sort=descending]::after { content: " \\25BC"; }
#layers tbody tr { cursor: pointer; }
#layers tbody tr:hover td { background: #f3f7ff; }
#layers tr.same td { color: #777; }
#layers:not(.show-all) tr.same:not(.selected) { display: none; }
#layers tr.selected td { background: #dbe7ff; }
#rf-view { position: sticky; top: 0.5em; border: 1px solid #ddd; padding: 0.6em; }
#rf-view figure { margin: 0.6em 0; }
#rf-view figure.side { display: flex; gap: 0.8em; align-items: flex-start; }
#rf-view figure.side figcaption label { display: block; margin: 0.2em 0; }
#rf-view input[type=number] { width: 4.5em; }
#feature-map { display: block; flex: none; cursor: crosshair; border: 1px solid #aac; }
#input-view { display: block; border: 1px solid #aaa; background: white; }
#rf-view[data-unavailable] #rf-box-text { color: #a00; }
.drawing { overflow: auto; max-height: 90vh; border: 1px solid #ddd; }
#graph svg { max-width: 100%; height: auto; }
#graph g.node, #graph g.cluster > text { cursor: pointer; }
#graph g.selected > polygon, #graph g.selected > path { stroke: #0a58ca; stroke-width: 4px; }
#rf-plot g.column { cursor: pointer; }
#rf-plot g.column:hover rect.hit { fill: rgba(10, 88, 202, 0.08); }
#rf-plot g.column.selected rect.hit { fill: rgba(10, 88, 202, 0.22); }
#plots img { max-width: 100%; display: block; margin-bottom: 1em; }
"""

# The page's behaviour: select a layer (a list row, a graph box, a plot column, a summary link or
# the URL hash) and one of its features (a click on the feature map, the index inputs, or
# &feature= in the hash); show its clipped region, computed from the embedded components as
# foveal.clipped does; sort the list by a header click. No network, no eval.
SCRIPT = r"""
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("foveal-data").textContent);
  const layers = new Map(data.layers.map(function (l) { return [l.name, l]; }));
  const view = document.getElementById("rf-view");
  const table = document.getElementById("layers");
  const fmap = document.getElementById("feature-map");
  const SVG_NS = fmap.namespaceURI;
  const rows = new Map();
  table.tBodies[0].querySelectorAll("tr").forEach(function (r) { rows.set(r.dataset.layer, r); });
  const boxes = new Map(), clusters = new Map(), columns = new Map();
  document.querySelectorAll("#graph g.node, #graph g.cluster").forEach(function (g) {
    const title = g.querySelector("title");
    if (!title) return;
    if (g.classList.contains("cluster")) clusters.set(title.textContent.replace(/^cluster_/, ""), g);
    else boxes.set(title.textContent, g);
  });
  document.querySelectorAll("#rf-plot g.column").forEach(function (g) { columns.set(g.dataset.layer, g); });
  let current = null, feature = null, gridOf = null;
  const marked = [];

  function pictureAxes(n) { return n === 1 ? [null, 0] : [n - 2, n - 1]; }
  function centre(shape) { return shape.map(function (n) { return Math.floor(n / 2); }); }
  function same(a, b) { return a === b || (a !== null && b !== null && a.join(",") === b.join(",")); }
  function el(id) { return document.getElementById(id); }

  // NodeResult.region(*index, clip=True): the bounding box of the components that read
  // something on every axis at index; null when none does.
  function regionOf(layer, index) {
    let box = null;
    layer.regions.forEach(function (c) {
      const component = data.components[c];
      const parts = [];
      for (let a = 0; a < component.length; a++) {
        const first = component[a][2 * index[a]], last = component[a][2 * index[a] + 1];
        if (first < 0) return;
        parts.push([first, last]);
      }
      box = box === null ? parts : box.map(function (b, a) {
        return [Math.min(b[0], parts[a][0]), Math.max(b[1], parts[a][1])];
      });
    });
    return box;
  }

  // The graph's box of a layer: its own, its module's cluster (a module-output name), the box
  // of the node it names, or the collapsed block that holds it.
  function graphBox(layer) {
    if (boxes.has(layer.name)) return boxes.get(layer.name);
    if (clusters.has(layer.name)) return clusters.get(layer.name);
    if (boxes.has(layer.drawn)) return boxes.get(layer.drawn);
    let name = layer.drawn;
    while (name.lastIndexOf(".") > 0) {
      name = name.slice(0, name.lastIndexOf("."));
      if (boxes.has(name)) return boxes.get(name);
    }
    return null;
  }

  function fromGraph(g) {
    const title = g.querySelector("title").textContent;
    const name = g.classList.contains("cluster") ? title.replace(/^cluster_/, "") : title;
    if (layers.has(name)) return name;
    let last = null;  // a collapsed block: its last layer
    data.layers.forEach(function (l) { if (l.name.startsWith(name + ".")) last = l.name; });
    return last;
  }

  function hashOf(layer, index) {
    let hash = "#layer=" + encodeURIComponent(layer.name);
    if (index !== null && !same(index, centre(layer.shape))) hash += "&feature=" + index.join(",");
    return hash;
  }

  function valid(layer, index) {
    return index !== null && layer.shape !== null && index.length === layer.shape.length &&
      index.every(function (v, a) { return Number.isInteger(v) && v >= 0 && v < layer.shape[a]; });
  }

  function select(name, index, share) {
    const layer = layers.get(name);
    if (layer === undefined) return false;
    const empty = layer.shape === null || layer.shape.some(function (n) { return n === 0; });
    const moved = current !== layer;
    current = layer;
    el("rf-note").textContent = "";
    feature = empty ? null : (valid(layer, index) ? index : centre(layer.shape));
    if (moved) {
      marked.splice(0).forEach(function (e) {
        e.classList.remove("selected");
        e.removeAttribute("aria-selected");
      });
      [rows.get(name), graphBox(layer), columns.get(layer.drawn)].forEach(function (e) {
        if (e) { e.classList.add("selected"); e.setAttribute("aria-selected", "true"); marked.push(e); }
      });
      const pane = el("list-pane"), p = pane.getBoundingClientRect();
      const r = rows.get(name).getBoundingClientRect();
      if (r.top < p.top + 24 || r.bottom > p.bottom) pane.scrollTop += r.top - p.top - p.height / 3;
    }
    render();
    if (share) {  // a new layer is a new history entry; another feature of it replaces the entry
      const hash = hashOf(layer, feature);
      if (window.location.hash === hash) return true;
      if (moved) window.location.hash = hash;
      else window.history.replaceState(window.history.state, "", hash);
    }
    return true;
  }

  function render() {
    const layer = current;
    view.dataset.selectedLayer = layer.name;
    view.dataset.feature = feature === null ? "" : feature.join(",");
    el("rf-title").textContent = layer.name;
    el("rf-type").textContent = layer.type;
    el("rf-field").textContent = layer.text;
    const verdict = el("rf-verdict");
    verdict.textContent = "";
    if (layer.verdict !== null) {
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = data.colors[layer.verdict];
      verdict.append(swatch, layer.reason);
    }
    view.querySelectorAll("input[data-axis]").forEach(function (input) {
      const a = Number(input.dataset.axis);
      input.disabled = feature === null;
      input.value = feature === null ? "" : feature[a];
      input.max = layer.shape === null ? "" : layer.shape[a] - 1;
    });
    drawFeatureMap(layer);
    let box = null, why = null;
    if (data.input === null) why = "regions need the input size";
    else if (layer.regions === null) why = layer.why;
    else if (feature === null) why = "the feature map is empty";
    else box = regionOf(layer, feature);
    view.dataset.box = box === null ? "" : box.map(function (b) { return b.join(","); }).join(",");
    if (why === null) delete view.dataset.unavailable; else view.dataset.unavailable = why;
    drawBox(box);
    const text = el("rf-box-text");
    if (text === null) return;
    if (why !== null) text.textContent = "Region unavailable: " + why + ".";
    else if (box === null) text.textContent = "This feature reads no input pixel.";
    else {
      const whole = box.every(function (b, a) { return b[0] === 0 && b[1] === data.input[a] - 1; });
      text.textContent = "Feature (" + feature.join(", ") + ") reads " + box.map(function (b, a) {
        return data.axes[a] + " " + b[0] + "\u2013" + b[1] + " (" + (b[1] - b[0] + 1) + ")";
      }).join(", ") + (whole ? ": the whole input." : ".");
    }
  }

  function drawFeatureMap(layer) {
    const grid = el("fm-grid"), mark = el("fm-mark");
    if (feature === null) {
      gridOf = null;
      fmap.style.display = "none";
      el("feature-text").textContent = layer.shape === null ? "unknown size" : "empty";
      return;
    }
    fmap.style.display = "";
    const axes = pictureAxes(layer.shape.length);
    mark.setAttribute("x", feature[axes[1]]);
    mark.setAttribute("y", axes[0] === null ? 0 : feature[axes[0]]);
    el("feature-text").textContent = "feature (" + feature.join(", ") + ") of " + layer.shape.join(" x ");
    if (gridOf === layer) return;
    gridOf = layer;
    grid.replaceChildren();
    const cols = layer.shape[axes[1]], rowsN = axes[0] === null ? 1 : layer.shape[axes[0]];
    const scale = 160 / Math.max(cols, rowsN);
    const width = Math.max(cols * scale, 12), height = axes[0] === null ? 24 : Math.max(rowsN * scale, 12);
    fmap.setAttribute("viewBox", "0 0 " + cols + " " + rowsN);
    fmap.style.width = width + "px";
    fmap.style.height = height + "px";
    const back = el("fm-back");
    back.setAttribute("width", cols);
    back.setAttribute("height", rowsN);
    function line(x1, y1, x2, y2) {
      const l = document.createElementNS(SVG_NS, "line");
      [["x1", x1], ["y1", y1], ["x2", x2], ["y2", y2], ["stroke", "#fff"]].forEach(function (kv) {
        l.setAttribute(kv[0], kv[1]);
      });
      l.setAttribute("vector-effect", "non-scaling-stroke");
      grid.append(l);
    }
    if (width / cols >= 5) for (let x = 1; x < cols; x++) line(x, 0, x, rowsN);
    if (axes[0] !== null && height / rowsN >= 5) for (let y = 1; y < rowsN; y++) line(0, y, cols, y);
  }

  function drawBox(box) {
    const rect = el("rf-box");
    if (rect === null) return;
    if (box === null) { rect.setAttribute("visibility", "hidden"); return; }
    const axes = pictureAxes(box.length);
    const cols = box[axes[1]], rowsB = axes[0] === null ? [0, 0] : box[axes[0]];
    rect.setAttribute("x", cols[0] - 0.5);
    rect.setAttribute("width", cols[1] - cols[0] + 1);
    rect.setAttribute("y", rowsB[0] - 0.5);
    rect.setAttribute("height", rowsB[1] - rowsB[0] + 1);
    rect.setAttribute("visibility", "visible");
  }

  function fromHash() {
    const params = {};
    window.location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      const eq = part.indexOf("=");
      if (eq > 0) {
        try { params[part.slice(0, eq)] = decodeURIComponent(part.slice(eq + 1)); } catch (e) { }
      }
    });
    if (params.layer === undefined) return false;
    const index = params.feature ? params.feature.split(",").map(Number) : null;
    if (current !== null && current.name === params.layer && same(feature, index)) return true;
    if (select(params.layer, index, false)) return true;
    if (current === null) select(data.initial, null, false);
    el("rf-note").textContent = "The link names no layer of this report: " + params.layer;
    return true;
  }

  document.addEventListener("click", function (event) {
    const target = event.target;
    if (!(target instanceof Element)) return;
    const row = target.closest("#layers tbody tr");
    const column = target.closest("#rf-plot g.column");
    const box = target.closest("#graph g.node, #graph g.cluster");
    if (row) select(row.dataset.layer, null, true);
    else if (column) select(column.dataset.layer, null, true);
    else if (box) {
      const name = fromGraph(box);
      if (name !== null) select(name, null, true);
    }
  });
  table.addEventListener("keydown", function (event) {
    const row = event.target.closest("tbody tr");
    if (!row) return;
    let next = row;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? "nextElementSibling" : "previousElementSibling";
      do { next = next[step]; } while (next && next.offsetParent === null);
      if (!next) return;
      next.focus();
    } else if (event.key !== "Enter" && event.key !== " ") return;
    event.preventDefault();
    select(next.dataset.layer, null, true);
  });
  fmap.addEventListener("click", function (event) {
    if (current === null || feature === null) return;
    const rect = fmap.getBoundingClientRect(), axes = pictureAxes(current.shape.length);
    const index = feature.slice();
    function at(offset, size, n) { return Math.min(n - 1, Math.max(0, Math.floor(offset / size * n))); }
    index[axes[1]] = at(event.clientX - rect.left, rect.width, current.shape[axes[1]]);
    if (axes[0] !== null) index[axes[0]] = at(event.clientY - rect.top, rect.height, current.shape[axes[0]]);
    select(current.name, index, true);
  });
  view.querySelectorAll("input[data-axis]").forEach(function (input) {
    input.addEventListener("change", function () {
      if (current === null || feature === null) return;
      const index = feature.slice();
      index[Number(input.dataset.axis)] = Number(input.value);
      if (valid(current, index)) select(current.name, index, true); else render();
    });
  });
  el("show-all").addEventListener("change", function (event) {
    table.classList.toggle("show-all", event.target.checked);
  });

  const headers = Array.from(table.tHead.rows[0].cells);
  function valueOf(cell, numeric) {
    const text = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent;
    if (text === "") return null;
    return numeric ? text.split(" ").map(Number) : text.toLowerCase();
  }
  function compare(a, b) {
    if (typeof a === "string") return a.localeCompare(b);
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    return a.length - b.length;
  }
  headers.forEach(function (h, column) {
    h.addEventListener("click", function () {
      const descending = table.dataset.sortKey === h.dataset.key && table.dataset.sortOrder === "asc";
      const numeric = h.dataset.type === "number", body = table.tBodies[0];
      const items = Array.from(body.rows).map(function (row) {
        return { row: row, value: valueOf(row.cells[column], numeric), index: Number(row.dataset.index) };
      });
      items.sort(function (a, b) {  // unavailable values last; ties keep network order
        if (a.value === null || b.value === null) {
          return (a.value === null) - (b.value === null) || a.index - b.index;
        }
        return (descending ? -1 : 1) * compare(a.value, b.value) || a.index - b.index;
      });
      items.forEach(function (item) { body.appendChild(item.row); });
      headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
      h.setAttribute("aria-sort", descending ? "descending" : "ascending");
      table.dataset.sortKey = h.dataset.key;
      table.dataset.sortOrder = descending ? "desc" : "asc";
    });
  });

  const image = el("input-image");
  if (image !== null && data.input !== null) {
    const probe = new Image();
    probe.onload = function () {
      const n = data.input.length, w = data.input[n - 1], h = data.input[n - 2];
      if (probe.naturalWidth !== w || probe.naturalHeight !== h) {
        el("image-note").textContent = "The image is " + probe.naturalHeight + "x" + probe.naturalWidth +
          " pixels (HxW), drawn stretched to the input's " + h + "x" + w + ".";
      }
    };
    probe.src = image.getAttribute("href");
  }
  window.addEventListener("hashchange", fromHash);
  if (!fromHash()) select(data.initial, null, false);
  document.body.dataset.ready = "1";
})();
"""
