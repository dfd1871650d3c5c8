"""Notebook display (`_repr_html_`) of analyses, node results, verdicts and ERF results.

Jupyter shows an object's `_repr_html_`; these return small HTML fragments (tables, escaped
text, no script) built from the same summary and rows as the terminal, so a notebook and the
command line say the same thing. Long tables are cut at MAX_ROWS with a line saying so.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .productivity import fmt

if TYPE_CHECKING:
    from .analysis import Analysis, NodeResult
    from .productivity import Verdicts

MAX_ROWS = 300
"""Rows a notebook table shows; the rest are counted (to_pandas or to_table give them all)."""


def _table(headings: Sequence[str], rows: Iterable[Sequence[Any]], numeric: frozenset[int] = frozenset(),
           limit: int = MAX_ROWS) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headings)
    body, left = [], 0
    for i, row in enumerate(rows):
        if i >= limit:
            left += 1
            continue
        cells = "".join(f"<td style=\"text-align:{'right' if j in numeric else 'left'}\">"
                        f"{html.escape(str(c))}</td>" for j, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    more = f"<p><i>{left} more rows not shown.</i></p>" if left else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _lines(lines: Sequence[str]) -> str:
    first, *rest = lines
    items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in rest)
    return f"<p><b>{html.escape(first)}</b></p><ul>{items}</ul>"


def analysis_html(a: Analysis) -> str:
    """The summary, then the table of the output and its ancestors without rows that change
    nothing (as the command line shows by default)."""
    from .report import COLUMNS, NUMERIC, changes_nothing, rows

    names = [n for n in a.ancestor_names(a.output_name) if not changes_nothing(a, n)]
    hidden = len(a.ancestor_names(a.output_name)) - len(names)
    note = (f"<p><i>{hidden} rows that change nothing (norms, activations, dropout, reshapes) hidden: "
            f"<code>to_table()</code> or <code>to_pandas()</code> show every node.</i></p>") if hidden else ""
    return (f"<div class=\"foveal-analysis\">{_lines(a.summary().lines())}"
            f"{_table(COLUMNS, rows(a, names), NUMERIC)}{note}</div>")


def node_html(r: NodeResult) -> str:
    """One node: a row per quantity, a column per axis."""
    axes = r._analysis.axes
    quantities = (("output", r.output_shape), ("receptive field", r.size), ("global", r.is_global),
                  ("effective stride", r.stride), ("effective padding", r.padding),
                  ("rf min (over paths)", r.size_min), ("rf max (over paths)", r.size_max))
    body = _table(("", *axes), ([label, *("-" if v is None else v for v in values)]
                                for label, values in quantities), frozenset(range(1, len(axes) + 1)))
    reasons = "".join(f"<li>{html.escape(x)}</li>" for x in r.reasons)
    return (f"<div class=\"foveal-node\"><p><b>{html.escape(r.name)}</b> ({html.escape(r.kind)}): "
            f"{html.escape(r.status)}, aligned: {html.escape(str(r.aligned))}</p>{body}"
            f"{'<ul>' + reasons + '</ul>' if reasons else ''}</div>")


def verdicts_html(v: Verdicts) -> str:
    """The counts, then every layer that is not productive with its reason."""
    counts = ", ".join(f"{n} {kind}" for kind, n in v.counts().items())
    flagged = [(name, x.kind, x.reason) for name, x in v.items()
               if not x.alias and x.kind not in ("productive", "unrelated")]
    table = (_table(("layer", "verdict", "reason"), flagged) if flagged
             else "<p>Every layer is productive.</p>")
    return (f"<div class=\"foveal-verdicts\"><p><b>Verdicts at {html.escape(fmt(v.resolution))}</b>: "
            f"{html.escape(counts)}</p>{table}</div>")


def erf_html(result: Any) -> str:
    """An ERF result: its summary lines, then its map as an inline PNG when it can be drawn
    (matplotlib installed, a 1-D or 2-D map); otherwise a line says why."""
    import base64
    import io

    from .errors import FovealError

    text = f"<pre>{html.escape(result.summary())}</pre>"
    try:
        figure = result.plot()
    except FovealError as error:
        return f"<div class=\"foveal-erf\">{text}<p><i>{html.escape(str(error))}</i></p></div>"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    image = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f"<div class=\"foveal-erf\">{text}"
            f"<img alt=\"ERF map\" src=\"data:image/png;base64,{image}\"></div>")
