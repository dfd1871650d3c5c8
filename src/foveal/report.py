"""Text outputs of an analysis: JSON (documented schema), terminal table, CSV and Markdown, and
the same with the verdicts and the input-resolution range added (the CLI's --verdicts)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING, Any

from .analysis import kind_of
from .errors import FovealError
from .ops import Elementwise
from .productivity import KINDS, fmt

if TYPE_CHECKING:
    from .analysis import Analysis, NodeResult
    from .productivity import ResolutionRange, Verdicts

SCHEMA_VERSION = 2
"""2: a node's quantities sit beside its name (version 1 nested them under "rf")."""

if TYPE_CHECKING:
    from typing import TypeAlias

    Nodes: TypeAlias = "Iterable[str | NodeResult] | None"
    """Which nodes an output shows: names or results (default: every node in order). Names let
    the common case be written without a NodeResult (Analysis.affine)."""


def json_value(v: Any) -> Any:
    """ints stay ints; Fractions become "p/q"; inf becomes "inf"; None stays null."""
    kind = type(v)
    if kind is int or v is None:
        return v
    if kind is tuple and all(type(x) is int or x is None for x in v):
        return list(v)
    if isinstance(v, Fraction):
        return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, (tuple, list)):
        return [json_value(x) for x in v]
    return v


def node_dict(r: NodeResult) -> dict[str, Any]:
    """One node, flat: what it is, then its receptive field per axis (JSON values)."""
    shape = r.output_shape
    return {
        "name": r.name,
        "op": r.op,
        "kind": r.kind,
        "inputs": list(r.inputs),
        "output_shape": None if any(s is None for s in shape) else list(shape),
        "size": json_value(r.size),
        "stride": json_value(r.stride),
        "padding": json_value(r.padding),
        "period": json_value(r.period),
        "phase_sizes": json_value(r.phase_sizes),
        "exact": r.exact,
        "status": r.status,
        "global": list(r.is_global),
        "size_min": json_value(r.size_min),
        "size_max": json_value(r.size_max),
        "aligned": r.aligned,
        "misalignment": r.misalignment,
        "reasons": list(r.reasons),
    }


def _header(a: Analysis) -> dict[str, Any]:
    return {
        "format": "foveal-analysis",
        "version": SCHEMA_VERSION,
        "graph": a.graph.name,
        "axes": list(a.axes),
        "input": a.input,
        "input_shape": None if a.input_shape is None else list(a.input_shape),
        "output": a.output_name,
    }


def analysis_dict(a: Analysis, nodes: Nodes = None) -> dict[str, Any]:
    items = a.order if nodes is None else nodes
    return {**_header(a), "nodes": [node_dict(a.result(r) if isinstance(r, str) else r) for r in items]}


def to_json(a: Analysis, nodes: Nodes = None, indent: int | None = 2) -> str:
    return json.dumps(analysis_dict(a, nodes), indent=indent)


def iter_json(a: Analysis, nodes: Nodes = None,
              extra: dict[str, Any] | None = None) -> Iterator[str]:
    """The same JSON object as to_json, made piece by piece with one node per line: a graph of a
    million nodes is written in seconds and never held in memory as a whole. `extra` adds keys;
    a dict value with a "nodes" object is written one node per line too."""
    yield "{\n"
    for key, value in _header(a).items():
        yield f" {json.dumps(key)}: {json.dumps(value)},\n"
    yield ' "nodes": ['
    separator = "\n  "
    for item in (a.order if nodes is None else nodes):
        yield separator + _node_json(a, item)
        separator = ",\n  "
    yield "\n ]" if separator != "\n  " else "]"
    for key, value in (extra or {}).items():
        yield f",\n {json.dumps(key)}: "
        if isinstance(value, dict) and isinstance(value.get("nodes"), dict):
            rest = {k: v for k, v in value.items() if k != "nodes"}
            yield json.dumps(rest)[:-1] + ', "nodes": {' if rest else '{"nodes": {'
            separator = "\n  "
            for name, entry in value["nodes"].items():
                yield f"{separator}{json.dumps(name)}: {json.dumps(entry)}"
                separator = ",\n  "
            yield "\n }}" if separator != "\n  " else "}}"
        else:
            yield json.dumps(value)
    yield "\n}\n"


_quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]  # json's own, in C


@cache
def _affine_template(n: int) -> str:
    """node_dict's JSON for a node in the common case with n axes, as a %-template."""
    def axes(item: str) -> str:
        return "[" + ", ".join([item] * n) + "]"

    return ('{"name": %s, "op": %s, "kind": %s, "inputs": [%s], "output_shape": %s, "size": '
            + axes("%d") + ', "stride": ' + axes("%d") + ', "padding": ' + axes("%d") + ', "period": '
            + axes("1") + ', "phase_sizes": ' + axes("[%d]") + ', "exact": true, "status": "exact", '
            + '"global": ' + axes("false") + ', "size_min": ' + axes("%d") + ', "size_max": ' + axes("%d")
            + ', "aligned": true, "misalignment": null, "reasons": []}')


def _node_json(a: Analysis, item: str | NodeResult) -> str:
    """One node as JSON: node_dict through json.dumps, or, in the common case (Analysis.affine),
    the same JSON written from the few numbers it holds (a third of the time per node)."""
    name = item if isinstance(item, str) else item.name
    affine = a.affine(name)
    if affine is None:
        return json.dumps(node_dict(a.result(name) if isinstance(item, str) else item))
    first, last, stride, low, high, shape = affine
    node = a.graph.nodes[name]
    n = len(shape)
    size = last - first + 1
    return _affine_template(n) % (
        _quote(name), _quote(node.op.op), _quote(kind_of(node.op)), ", ".join(map(_quote, node.inputs)),
        "null" if None in shape else "[" + ", ".join(map(str, shape)) + "]",
        *(size,) * n, *(stride,) * n, *(-first,) * n, *(size,) * n, *(low,) * n, *(high,) * n)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if isinstance(v, Fraction):
        return str(v)
    return str(v)


def shown(text: str) -> str:
    """Text as a terminal may show it: control characters (a newline in a name, or an escape
    sequence a hostile model file could use to rewrite the screen) written as \\x.. escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _axes(v: tuple[Any, ...], is_global: tuple[bool, ...] = ()) -> str:
    """Per-axis values joined with 'x' (427x427); 'global' on an axis that reads the whole input
    (every axis: just 'global'); 'inf' when infinite on every axis; '-' when unavailable on every
    axis."""
    if is_global and all(is_global):
        return "global"
    if all(x is None for x in v):
        return "-"
    if all(x == math.inf for x in v):
        return "global"
    return "x".join("global" if g else _cell(x) for x, g in zip(v, is_global or (False,) * len(v)))


COLUMNS = ("node", "op", "output", "rf", "eff. stride", "eff. padding", "rf min", "rf max", "aligned",
           "status")
"""The table's headings: the receptive field, then the effective (cumulative, input-relative)
stride and padding, then the smallest and largest field over all paths."""
NUMERIC = frozenset(range(2, 8))

LAYER_WORDS = ("conv", "dense", "linear", "gemm", "matmul", "attention", "embed", "proj")
"""Kinds of point-wise ops that are still layers a reader looks for (a 1x1 conv, a dense layer)."""


def changes_nothing(a: Analysis, name: str) -> bool:
    """Whether a row only repeats its input's: a point-wise op that is not a learned layer
    (norms, activations, dropout, reshapes, module-output names). Readers' tables hide these
    rows by default; the graph's outputs are always shown."""
    op = a.graph.nodes[name].op
    if not isinstance(op, Elementwise) or name == a.output_name:
        return False
    kind = op.kind.lower()
    return not any(word in kind for word in LAYER_WORDS)


def rows(a: Analysis, nodes: Nodes = None) -> Iterator[list[str]]:
    """The table's cells, node by node (names and kinds with control characters escaped); the
    common case (Analysis.affine) without a NodeResult."""
    n = len(a.axes)
    each = "x".join(["%d"] * n)  # one value on every axis: "427x427"
    for item in (a.order if nodes is None else nodes):
        name = item if isinstance(item, str) else item.name
        affine = a.affine(name)
        if affine is not None:
            first, last, stride, low, high, shape = affine
            output = "-" if None in shape else each % shape
            yield [shown(name), shown(kind_of(a.graph.nodes[name].op)), output,
                   each % ((last - first + 1,) * n), each % ((stride,) * n), each % ((-first,) * n),
                   each % ((low,) * n), each % ((high,) * n), "yes", "exact"]
            continue
        r = a.result(name) if isinstance(item, str) else item
        aligned = {True: "yes", False: "no", None: "?"}[r.aligned]
        yield [shown(r.name), shown(r.kind), _axes(r.output_shape), _axes(r.size, r.is_global),
               _axes(r.stride), _axes(r.padding), _axes(r.size_min), _axes(r.size_max), aligned, r.status]


def iter_table(a: Analysis, nodes: Nodes = None, *, summary: bool = False,
               pointwise: bool = True) -> Iterator[str]:
    """The table's lines; with `summary`, the summary first (foveal.summary); without
    `pointwise`, rows that change nothing (changes_nothing) are left out and counted in a last
    line. The column widths need every row first: rows are kept as one string each (cells joined
    by a character `shown` never leaves in a cell), a tenth of a list of cells."""
    items: Iterable[str | NodeResult] = a.order if nodes is None else nodes
    hidden = 0
    if not pointwise:
        kept_items = [i for i in items if not changes_nothing(a, i if isinstance(i, str) else i.name)]
        hidden = sum(1 for _ in (a.order if nodes is None else nodes)) - len(kept_items)
        items = kept_items
    widths = [len(h) for h in COLUMNS]
    kept = []
    for cells in rows(a, items):
        for i, c in enumerate(cells):
            if len(c) > widths[i]:
                widths[i] = len(c)
        kept.append("\x1f".join(cells))
    template = "  ".join(f"{{:{'>' if i in NUMERIC else '<'}{w}}}" for i, w in enumerate(widths))
    if summary:
        from .summary import summarize

        yield from (shown(line) for line in summarize(a).lines())
        yield ""
    shape = "x".join(str(s) for s in a.input_shape) if a.input_shape else "unknown size"
    yield (f"{shown(a.graph.name)}: receptive fields w.r.t. {shown(repr(a.input))} ({shape}, axes "
           f"{shown('x'.join(a.axes))})")
    yield template.format(*COLUMNS).rstrip()
    yield template.format(*("-" * w for w in widths)).rstrip()
    for row in kept:
        yield template.format(*row.split("\x1f")).rstrip()
    if hidden:
        yield (f"({hidden} rows that change nothing hidden: norms, activations, dropout, reshapes; "
               "--pointwise shows them)")


def to_table(a: Analysis, nodes: Nodes = None, *, summary: bool = False, pointwise: bool = True) -> str:
    return "\n".join(iter_table(a, nodes, summary=summary, pointwise=pointwise))


QUANTITIES = ("output", "rf", "global", "stride", "padding", "rf_min", "rf_max")
"""Per-axis quantities of the numeric rows (CSV, pandas): one column per quantity and axis."""


def numeric_columns(a: Analysis) -> list[str]:
    """node, op, then `<quantity>_<axis>` for every quantity and axis, then aligned and status."""
    return ["node", "op", *(f"{q}_{axis}" for q in QUANTITIES for axis in a.axes), "aligned", "status"]


def _number(v: Any) -> int | float | None:
    """A cell as a number: ints stay ints, a fraction becomes a float (JSON keeps it exact)."""
    if v is None or isinstance(v, (int, float)):
        return v
    return float(v)


def numeric_rows(a: Analysis, nodes: Nodes = None) -> Iterator[list[Any]]:
    """One row of numbers per node, in numeric_columns' order: None where unavailable, inf for
    an infinite size, a float for a fractional stride, booleans for global and aligned."""
    n = len(a.axes)
    for item in (a.order if nodes is None else nodes):
        name = item if isinstance(item, str) else item.name
        affine = a.affine(name)
        if affine is not None:
            first, last, stride, low, high, shape = affine
            yield [name, kind_of(a.graph.nodes[name].op), *shape, *(last - first + 1,) * n, *(False,) * n,
                   *(stride,) * n, *(-first,) * n, *(low,) * n, *(high,) * n, True, "exact"]
            continue
        r = a.result(name) if isinstance(item, str) else item
        values = (r.output_shape, r.size, r.is_global, r.stride, r.padding, r.size_min, r.size_max)
        yield [r.name, r.kind, *(v if isinstance(v, bool) else _number(v) for per_axis in values
                                 for v in per_axis), r.aligned, r.status]


def iter_csv(a: Analysis, nodes: Nodes = None) -> Iterator[str]:
    """CSV with one numeric column per quantity and axis (numeric_rows): empty where
    unavailable, `inf`, `true`/`false`, so that every reader parses numbers. Names and kinds
    are escaped (shown) as in every text output; to_pandas keeps them as they are."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([shown(c) for c in numeric_columns(a)])
    cell = {True: "true", False: "false", None: ""}
    for values in numeric_rows(a, nodes):  # names and kinds escaped as in every text output
        writer.writerow([cell[v] if v is None or isinstance(v, bool) else shown(v) if isinstance(v, str)
                         else v for v in values])
        if buffer.tell() > 1 << 16:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def to_pandas(a: Analysis, nodes: Nodes = None) -> Any:
    """A pandas DataFrame of numeric_rows: one numeric column per quantity and axis."""
    try:
        import pandas  # type: ignore[import-untyped]
    except ImportError:
        raise FovealError("to_pandas needs pandas, which is not installed: pip install pandas") from None
    frame = pandas.DataFrame(list(numeric_rows(a, nodes)), columns=numeric_columns(a))
    for column in frame.columns[2:-2]:
        if not column.startswith("global_"):
            frame[column] = pandas.to_numeric(frame[column])
    frame["aligned"] = frame["aligned"].astype("boolean")
    return frame.set_index("node")


def to_csv(a: Analysis, nodes: Nodes = None) -> str:
    return "".join(iter_csv(a, nodes))


def iter_markdown(a: Analysis, nodes: Nodes = None, *, pointwise: bool = True) -> Iterator[str]:
    """A Markdown table of the rows; without `pointwise`, rows that change nothing are left out."""
    def esc(c: str) -> str:
        return c.replace("|", "\\|")

    items: Iterable[str | NodeResult] = a.order if nodes is None else nodes
    if not pointwise:
        items = [i for i in items if not changes_nothing(a, i if isinstance(i, str) else i.name)]
    yield "| " + " | ".join(COLUMNS) + " |\n"
    yield "|" + "|".join("---:" if i in NUMERIC else "---" for i in range(len(COLUMNS))) + "|\n"
    for cells in rows(a, items):
        yield "| " + " | ".join(esc(c) for c in cells) + " |\n"


def to_markdown(a: Analysis, nodes: Nodes = None) -> str:
    return "".join(iter_markdown(a, nodes))


FLAGGED = ("unproductive", "critical", "partially critical", "unknown")
"""Verdicts listed layer by layer (productive and unrelated are only counted)."""


def with_verdicts(analysis: Analysis, nodes: Nodes, format: str, *, pointwise: bool = True) -> str:
    """The table or JSON of the analysis with its verdicts and input-resolution range added."""
    return "".join(iter_with_verdicts(analysis, nodes, format, pointwise=pointwise))


def iter_with_verdicts(analysis: Analysis, nodes: Nodes, format: str, *,
                       pointwise: bool = True) -> Iterator[str]:
    """with_verdicts, piece by piece (see iter_json)."""
    if analysis.input_shape is None:
        raise FovealError("--verdicts needs an input resolution: give --input-size N (or --input-shape)")
    results = list(analysis.order) if nodes is None else [n if isinstance(n, str) else n.name for n in nodes]
    judged = analysis.verdicts()
    shown_names = [n for n in results if not judged[n].alias]
    try:
        found: ResolutionRange | None = analysis.input_resolution_range()
        unavailable = None
    except FovealError as error:
        found, unavailable = None, str(error)
    if format == "json":
        verdicts = {"resolution": list(judged.resolution), "counts": _counts(judged, shown_names),
                    "nodes": {n: {"kind": judged[n].kind, "reason": judged[n].reason} for n in shown_names}}
        yield from iter_json(analysis, results, {"verdicts": verdicts,
                                                 "input_resolution_range": _range_dict(found, unavailable)})
        return
    counts = ", ".join(f"{c} {k}" for k, c in _counts(judged, shown_names).items())
    for line in iter_table(analysis, results, summary=True, pointwise=pointwise):
        yield line + "\n"
    lines = ["", f"verdicts at {fmt(judged.resolution)}: {counts}",
             *_range_lines(analysis.axes, found, unavailable)]
    flagged = [judged[n] for n in shown_names if judged[n].kind in FLAGGED]
    if flagged:
        width = max(len(shown(v.name)) for v in flagged)
        lines.append("layers that are not productive:")
        lines += [f"  {shown(v.name).ljust(width)}  {shown(v.reason)}" for v in flagged]
    yield "\n".join(lines)


def _range_dict(found: ResolutionRange | None, unavailable: str | None) -> dict[str, object]:
    """The range for JSON: every key always there, null with the reason in 'unavailable'."""
    return {"minimum": None if found is None else json_value(found.minimum),
            "maximum": None if found is None else json_value(found.maximum),
            "minimum_from": None if found is None else list(found.minimum_from),
            "maximum_from": None if found is None else list(found.maximum_from),
            "notes": [] if found is None else list(found.notes),
            "unavailable": unavailable}


def _range_lines(axes: tuple[str, ...], found: ResolutionRange | None, unavailable: str | None) -> list[str]:
    if found is None:
        return [f"input-resolution range: unavailable ({unavailable})"]
    per_axis = zip(axes, found.minimum, found.maximum, found.minimum_from, found.maximum_from)
    return ["input-resolution range:",
            *(f"  {axis}: {low} to {high} (minimum set by {low_from}, maximum by {high_from})"
              for axis, low, high, low_from, high_from in per_axis),
            *(f"  note: {note}" for note in found.notes)]


def _counts(judged: Verdicts, names: list[str]) -> dict[str, int]:
    """Layers per verdict kind among `names`, in severity order."""
    kinds = [judged[n].kind for n in names]
    return {k: kinds.count(k) for k in KINDS if k in kinds}
