"""One self-contained HTML page of an analysis: summary, verdicts, sortable layer table, graph, plots.

The page must open offline and be mailed around as one file, so everything is inline: CSS in
<style>, a small sorting script in <script>, the Graphviz drawing as inline SVG and the matplotlib
plots as base64 PNG. No URL is written. Graphviz and matplotlib are optional: without them the
page says so (and shows the DOT text) instead of failing. Like every output, it reads the
analysis and never recomputes it.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import re
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .drawing import analysis_dot, atomic_write, dot_available, kernel_stride, pipe
from .errors import FovealError
from .productivity import COLORS, KINDS, fmt, is_alias

if TYPE_CHECKING:
    from .analysis import Analysis, NodeResult
    from .productivity import Verdicts

Region = tuple[str, Sequence[int]]
"""(node name, feature index with one int per axis)."""

COLUMNS = (  # (key used by #sort=key:desc, heading, sorted as numbers)
    ("index", "#", True), ("name", "layer", False), ("type", "type", False),
    ("kernel", "kernel / stride", False), ("rf_min", "RF min", True), ("rf_max", "RF max", True),
    ("stride", "stride", True), ("feature_map", "feature map", True), ("verdict", "verdict", True),
    ("reason", "reason", False),
)
NO_VERDICTS = ("Verdicts need an input resolution: analyse with input_shape (on the command line, "
               "--input-size). The verdict column is empty.")
NO_MATPLOTLIB = "Plots need matplotlib, which is not installed: pip install foveal[plot]."

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: 600; } dd { margin: 0; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
#layers th { cursor: pointer; background: #f0f0f0; user-select: none; white-space: nowrap; }
#layers th[aria-sort=ascending]::after { content: " \\25B2"; }
#layers th[aria-sort=descending]::after { content: " \\25BC"; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; border: 1px solid #888;
          vertical-align: middle; margin-right: 0.3em; }
.note { color: #555; font-style: italic; }
#graph .drawing { overflow: auto; max-height: 90vh; border: 1px solid #ddd; }
#graph svg { max-width: 100%; height: auto; }
#plots img { max-width: 100%; display: block; margin-bottom: 1em; }
"""

# Sorts the layer table on a header click, or on load from a #sort=<key>[:asc|:desc] hash.
# A cell sorts by its data-value: space-separated numbers compared axis by axis (Infinity above
# every number), or text; an empty value (unavailable) always goes last. Ties keep network order.
SCRIPT = """
(function () {
  const table = document.getElementById("layers");
  const headers = Array.from(table.tHead.rows[0].cells);
  function valueOf(cell, numeric) {
    const text = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent;
    if (text === "") return null;
    return numeric ? text.split(" ").map(Number) : text.toLowerCase();
  }
  function compare(a, b) {
    if (typeof a === "string") return a.localeCompare(b);
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    }
    return a.length - b.length;
  }
  function sortBy(key, descending) {
    const column = headers.findIndex(function (h) { return h.dataset.key === key; });
    if (column < 0) return false;
    const numeric = headers[column].dataset.type === "number";
    const body = table.tBodies[0];
    const rows = Array.from(body.rows).map(function (row) {
      return { row: row, value: valueOf(row.cells[column], numeric), index: Number(row.dataset.index) };
    });
    rows.sort(function (a, b) {
      if (a.value === null || b.value === null) {
        return (a.value === null) - (b.value === null) || a.index - b.index;
      }
      return (descending ? -1 : 1) * compare(a.value, b.value) || a.index - b.index;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    headers[column].setAttribute("aria-sort", descending ? "descending" : "ascending");
    table.dataset.sortKey = key;
    table.dataset.sortOrder = descending ? "desc" : "asc";
    return true;
  }
  function sortFromHash() {
    const match = /(?:^#|&)sort=([\\w-]+)(?::(asc|desc))?/.exec(window.location.hash);
    if (match) sortBy(match[1], match[2] === "desc");
  }
  headers.forEach(function (h) {
    h.addEventListener("click", function () {
      const again = table.dataset.sortKey === h.dataset.key && table.dataset.sortOrder === "asc";
      sortBy(h.dataset.key, again);
    });
  });
  window.addEventListener("hashchange", sortFromHash);
  window.addEventListener("load", function () {
    sortFromHash();
    document.body.dataset.ready = "1";
  });
})();
"""


def write_report(analysis: Analysis, path: str | os.PathLike, *, title: str | None = None,
                 regions: Iterable[Region] | None = None, image: Any = None) -> Path:
    """Write the HTML report of `analysis` to `path`, whole or not at all.

    regions: (node, feature index) pairs whose input regions are drawn on `image` (a file, an
    array, or None for a blank canvas of the input shape), one plot per node.
    """
    path = Path(path)
    atomic_write(path, report_html(analysis, title=title, regions=regions, image=image).encode())
    return path


def report_html(analysis: Analysis, *, title: str | None = None, regions: Iterable[Region] | None = None,
                image: Any = None) -> str:
    """The report as one HTML string (see write_report)."""
    by_node: dict[str, list[Sequence[int]]] = {}
    for node, feature in regions or ():
        analysis[node]  # an unknown name raises UnknownNodeError before anything is drawn
        by_node.setdefault(node, []).append(feature)
    verdicts = analysis.verdicts() if analysis.input_shape is not None else None
    layers = [r for r in analysis if r.connected and not is_alias(r.node.op)]
    heading = title or f"foveal report: {analysis.graph.name}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{_esc(heading)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        f"<h1>{_esc(heading)}</h1>",
        _summary(analysis, layers, verdicts),
        _range(analysis),
        _table(layers, verdicts),
        _graph(analysis, verdicts),
        _plots(analysis, verdicts, by_node, image),
        f"<script>{SCRIPT}</script>", "</body>", "</html>",
    ]
    return "\n".join(parts) + "\n"


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _summary(analysis: Analysis, layers: list[NodeResult], verdicts: Verdicts | None) -> str:
    shape = fmt(analysis.input_shape) if analysis.input_shape is not None else "not given"
    items = [("model", analysis.graph.name), ("input", f"{analysis.input} ({'x'.join(analysis.axes)})"),
             ("input resolution", shape), ("output", analysis.output_name), ("layers", len(layers))]
    out = ['<section id="summary">', "<h2>Summary</h2>", "<dl>"]
    out += [f"<dt>{_esc(k)}</dt><dd data-field=\"{_esc(k)}\">{_esc(v)}</dd>" for k, v in items]
    out.append("</dl>")
    if verdicts is None:
        out.append(f'<p class="note" id="verdicts-note">{_esc(NO_VERDICTS)}</p>')
    else:
        counts = {k: 0 for k in KINDS}
        for r in layers:
            counts[verdicts[r.name].kind] += 1
        out.append(f"<p>Verdicts at {_esc(fmt(verdicts.resolution))}:</p>")
        out.append('<ul id="verdict-counts">')
        out += [f'<li data-kind="{_esc(k)}" data-count="{c}"><span class="swatch" style="background:'
                f'{COLORS[k]}"></span>{c} {_esc(k)}</li>' for k, c in counts.items() if c]
        out.append("</ul>")
    unsupported = analysis.unsupported_ops
    if unsupported:
        ops = ", ".join(f"{name} ({count})" for name, count in sorted(unsupported.items()))
        out.append(f'<p id="unsupported">Unsupported ops (unknown-op policy '
                   f"{_esc(analysis.options.unknown_policy)}): {_esc(ops)}</p>")
    out.append("</section>")
    return "\n".join(out)


def _range(analysis: Analysis) -> str:
    out = ['<section id="range">', "<h2>Input-resolution range</h2>",
           "<p>The input sizes at which no layer is unproductive and every pattern fits some "
           "feature extractor's receptive field (rfa_toolbox's rule).</p>"]
    try:
        found = analysis.input_resolution_range()
    except FovealError as error:
        out.append(f'<p class="note" id="range-unavailable">Unavailable: {_esc(error)}</p></section>')
        return "\n".join(out)
    out.append('<table id="range-table"><thead><tr><th>axis</th><th>minimum</th><th>set by</th>'
               "<th>maximum</th><th>set by</th></tr></thead><tbody>")
    for axis, low, low_from, high, high_from in zip(analysis.axes, found.minimum, found.minimum_from,
                                                     found.maximum, found.maximum_from):
        out.append(f'<tr data-axis="{_esc(axis)}"><td>{_esc(axis)}</td><td class="num">{_esc(low)}</td>'
                   f"<td>{_esc(low_from or '-')}</td><td class=\"num\">{_esc(high)}</td>"
                   f"<td>{_esc(high_from or '-')}</td></tr>")
    out.append("</tbody></table>")
    out += [f'<p class="note">{_esc(note)}</p>' for note in found.notes]
    out.append("</section>")
    return "\n".join(out)


def _sort_value(values: tuple[Any, ...]) -> str:
    """Per-axis numbers for the script ('9 9', 'Infinity'); '' when unavailable on some axis."""
    if any(v is None for v in values):
        return ""
    return " ".join("Infinity" if v == math.inf else str(float(v) if isinstance(v, Fraction) else v)
                    for v in values)


def _axes_text(values: tuple[Any, ...]) -> str:
    return "-" if all(v is None for v in values) else fmt(values)


def _table(layers: list[NodeResult], verdicts: Verdicts | None) -> str:
    out = ['<section id="layers-section">', "<h2>Layers</h2>",
           '<p class="note">Click a column header to sort; click again to reverse.</p>',
           '<table id="layers"><thead><tr>']
    out += [f'<th data-key="{key}" data-type="{"number" if numeric else "text"}">{_esc(label)}</th>'
            for key, label, numeric in COLUMNS]
    out.append("</tr></thead><tbody>")
    for index, r in enumerate(layers):
        verdict = verdicts[r.name] if verdicts is not None else None
        cells = [
            _cell("index", str(index), str(index)),
            _cell("name", r.name),
            _cell("type", r.node.label or r.kind),
            _cell("kernel", kernel_stride(r.node.op)),
            *(_cell(key, _axes_text(values), _sort_value(values)) for key, values in (
                ("rf_min", r.size_min), ("rf_max", r.size_max), ("stride", r.stride),
                ("feature_map", r.output_shape))),
        ]
        if verdict is None:
            cells += [_cell("verdict", "", ""), _cell("reason", "")]
        else:
            style = f' style="background:{_esc(verdict.color)}"'
            cells += [_cell("verdict", verdict.kind, str(KINDS.index(verdict.kind)), style),
                      _cell("reason", verdict.reason)]
        kind = f' data-verdict="{_esc(verdict.kind)}"' if verdict is not None else ""
        out.append(f'<tr data-index="{index}" data-name="{_esc(r.name)}"{kind}>{"".join(cells)}</tr>')
    out.append("</tbody></table></section>")
    return "\n".join(out)


def _cell(key: str, text: str, value: str | None = None, extra: str = "") -> str:
    numeric = ' class="num"' if value is not None and key != "verdict" else ""
    data = "" if value is None else f' data-value="{_esc(value)}"'
    return f'<td data-key="{key}"{numeric}{data}{extra}>{_esc(text)}</td>'


def _graph(analysis: Analysis, verdicts: Verdicts | None) -> str:
    dot = analysis_dot(analysis, verdicts)
    head = '<section id="graph" data-rendered="{}"><h2>Graph</h2>'
    if not dot_available():
        return "\n".join([head.format("dot"), '<p class="note">The Graphviz program \'dot\' is not '
                          "installed, so the graph is not drawn (install graphviz); its DOT text:</p>",
                          f"<details><summary>DOT text</summary><pre>{_esc(dot)}</pre></details>",
                          "</section>"])
    return "\n".join([head.format("svg"), f'<div class="drawing">{_inline_svg(pipe(dot, "svg"))}</div>',
                      "</section>"])


def _inline_svg(data: bytes) -> str:
    """Graphviz's SVG document as an HTML element: no XML prolog or DOCTYPE (which name the
    SVG DTD by URL), no namespace declarations (the HTML parser puts <svg> in its namespace),
    no comments (they repeat node names, which must not end an HTML comment early)."""
    text = data.decode()
    text = re.sub(r"<!--.*?-->", "", text[text.index("<svg"):], flags=re.S)
    return re.sub(r'\s+xmlns(?::\w+)?="[^"]*"', "", text)


def _plots(analysis: Analysis, verdicts: Verdicts | None, regions: dict[str, list[Sequence[int]]],
           image: Any) -> str:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return (f'<section id="plots" data-available="0"><h2>Plots</h2>'
                f'<p class="note">{_esc(NO_MATPLOTLIB)}</p></section>')
    from .plots import plot_regions, plot_rf_sizes

    out = ['<section id="plots" data-available="1">', "<h2>Plots</h2>",
           _png(plot_rf_sizes(analysis, verdicts=verdicts), "receptive field size along depth", "rf-sizes")]
    out += [_png(plot_regions(analysis, node, features, image), f"input regions of {node}", "regions")
            for node, features in regions.items()]
    out.append("</section>")
    return "\n".join(out)


def _png(figure: Any, alt: str, kind: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img data-plot="{kind}" alt="{_esc(alt)}" src="data:image/png;base64,{data}">'
