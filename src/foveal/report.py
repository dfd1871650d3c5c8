"""Text outputs of an analysis: JSON (documented schema), terminal table, CSV and Markdown, and
the same with the verdicts and the input-resolution range added (the CLI's --verdicts)."""

from __future__ import annotations

import csv
import io
import json
import math
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .errors import FovealError
from .productivity import KINDS, fmt

if TYPE_CHECKING:
    from .analysis import Analysis, NodeResult
    from .productivity import ResolutionRange, Verdicts

SCHEMA_VERSION = 1


def json_value(v: Any) -> Any:
    """ints stay ints; Fractions become "p/q"; inf becomes "inf"; None stays null."""
    if isinstance(v, Fraction):
        return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, (tuple, list)):
        return [json_value(x) for x in v]
    return v


def node_dict(r: NodeResult) -> dict[str, Any]:
    shape = r.output_shape
    return {
        "name": r.name,
        "op": r.op,
        "kind": r.kind,
        "inputs": list(r.inputs),
        "output_shape": None if any(s is None for s in shape) else list(shape),
        "rf": {
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
        },
    }


def analysis_dict(a: Analysis, nodes: list[NodeResult] | None = None) -> dict[str, Any]:
    return {
        "format": "foveal-analysis",
        "version": SCHEMA_VERSION,
        "graph": a.graph.name,
        "axes": list(a.axes),
        "input": a.input,
        "input_shape": None if a.input_shape is None else list(a.input_shape),
        "output": a.output_name,
        "nodes": [node_dict(r) for r in (list(a) if nodes is None else nodes)],
    }


def to_json(a: Analysis, nodes: list[NodeResult] | None = None, indent: int | None = 2) -> str:
    return json.dumps(analysis_dict(a, nodes), indent=indent)


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


def _axes(v: tuple[Any, ...]) -> str:
    """Per-axis values joined with 'x' (427x427); 'inf' when infinite on every axis; '-' when
    unavailable on every axis."""
    if all(x is None for x in v):
        return "-"
    if all(x == math.inf for x in v):
        return "inf"
    return "x".join(_cell(x) for x in v)


COLUMNS = ("node", "op", "output", "rf", "stride", "padding", "rf min", "rf max", "aligned", "status")


def rows(a: Analysis, nodes: list[NodeResult] | None = None) -> list[list[str]]:
    out = []
    for r in (list(a) if nodes is None else nodes):
        aligned = {True: "yes", False: "no", None: "?"}[r.aligned]
        out.append([r.name, r.kind, _axes(r.output_shape), _axes(r.size), _axes(r.stride),
                    _axes(r.padding), _axes(r.size_min), _axes(r.size_max), aligned, r.status])
    return out


def to_table(a: Analysis, nodes: list[NodeResult] | None = None) -> str:
    body = rows(a, nodes)
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h)
              for i, h in enumerate(COLUMNS)]
    numeric = set(range(2, 8))

    def line(cells: list[str] | tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    shape = "x".join(str(s) for s in a.input_shape) if a.input_shape else "unknown size"
    title = f"{a.graph.name}: receptive fields w.r.t. {a.input!r} ({shape}, axes {'x'.join(a.axes)})"
    return "\n".join([title, line(COLUMNS), line(["-" * w for w in widths])] + [line(r) for r in body])


def to_csv(a: Analysis, nodes: list[NodeResult] | None = None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.replace(" ", "_") for c in COLUMNS])
    writer.writerows(rows(a, nodes))
    return buffer.getvalue()


def to_markdown(a: Analysis, nodes: list[NodeResult] | None = None) -> str:
    def esc(c: str) -> str:
        return c.replace("|", "\\|")

    lines = ["| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---:" if i in range(2, 8) else "---" for i in range(len(COLUMNS))) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows(a, nodes)]
    return "\n".join(lines) + "\n"


FLAGGED = ("unproductive", "critical", "partially critical", "unknown")
"""Verdicts listed layer by layer (productive and unrelated are only counted)."""


def with_verdicts(analysis: Analysis, nodes: list[NodeResult] | None, format: str) -> str:
    """The table or JSON of the analysis with its verdicts and input-resolution range added."""
    if analysis.input_shape is None:
        raise FovealError("--verdicts needs an input resolution: give --input-size N (or --input-shape)")
    judged = analysis.verdicts()
    shown = [n for n in (analysis.order if nodes is None else [r.name for r in nodes]) if not judged[n].alias]
    try:
        found: ResolutionRange | None = analysis.input_resolution_range()
        unavailable = None
    except FovealError as error:
        found, unavailable = None, str(error)
    if format == "json":
        data = analysis.to_dict(nodes)
        data["verdicts"] = {"resolution": list(judged.resolution), "counts": _counts(judged, shown),
                            "nodes": {n: {"kind": judged[n].kind, "reason": judged[n].reason} for n in shown}}
        data["input_resolution_range"] = _range_dict(found, unavailable)
        return json.dumps(data, indent=2)
    counts = ", ".join(f"{c} {k}" for k, c in _counts(judged, shown).items())
    lines = [analysis.to_table(nodes), "", f"verdicts at {fmt(judged.resolution)}: {counts}",
             *_range_lines(analysis.axes, found, unavailable)]
    flagged = [judged[n] for n in shown if judged[n].kind in FLAGGED]
    if flagged:
        width = max(len(v.name) for v in flagged)
        lines.append("layers that are not productive:")
        lines += [f"  {v.name.ljust(width)}  {v.reason}" for v in flagged]
    return "\n".join(lines)


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
