"""The answer at a glance: what a user asks first, read off an analysis.

Every output that opens with a summary (the terminal table, `repr`, notebooks, the HTML report)
takes it from here, so they all say the same thing: the output's receptive field, and for a
classifier (global output) the last layer that still sees a part of the input, whose receptive
field, effective stride and effective padding are the numbers people quote (ResNet-50's layer4:
427, 32, 213); then, at the analysed input size, the verdict counts and the input-resolution range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import FovealError

if TYPE_CHECKING:
    from .analysis import Analysis, NodeResult
    from .productivity import ResolutionRange


def _axes(values: tuple[object, ...]) -> str:
    return " x ".join(map(str, values))


def field_text(r: NodeResult) -> str:
    """One node's receptive field in words: size, effective stride and padding per axis, with
    `global` for an axis that reads the whole input, and the status when it is not exact."""
    status = "" if r.status == "exact" else f" ({r.status})"
    if r.is_global and all(r.is_global):
        return "global: reads the whole input" + status
    size = _axes(tuple("global" if g else n for n, g in zip(r.size, r.is_global)))
    return (f"receptive field {size}, effective stride {_axes(r.stride)}, "
            f"effective padding {_axes(r.padding)}{status}")


@dataclass(frozen=True)
class Summary:
    """The facts of `summarize`; `lines()` writes them for a terminal."""

    graph: str
    input: str
    input_shape: tuple[int | None, ...] | None
    axes: tuple[str, ...]
    nodes: int
    output: NodeResult
    last_local: NodeResult | None
    """The last node the output depends on that sees a part of the input on every axis: set when
    the output is global on some axis (a classifier), else None (the output is that node)."""
    counts: dict[str, int] | None = None
    """Layers per verdict kind at input_shape (None without an input size)."""
    resolution_range: ResolutionRange | None = None
    range_unavailable: str | None = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        shape = "unknown size" if self.input_shape is None else " x ".join(map(str, self.input_shape))
        out = [f"{self.graph}: input {self.input!r} ({shape}, axes {' x '.join(self.axes)}), "
               f"{self.nodes} nodes",
               f"  output {self.output.name!r}: {field_text(self.output)}"]
        if self.last_local is not None:
            out.append(f"  last spatial layer {self.last_local.name!r}: {field_text(self.last_local)}")
        if self.counts is not None:
            counts = ", ".join(f"{n} {kind}" for kind, n in self.counts.items())
            out.append(f"  at {shape}: {counts}")
        found = self.resolution_range
        if found is not None:
            per_axis = ", ".join(f"{axis} {low} to {high}" for axis, low, high in
                                 zip(self.axes, found.minimum, found.maximum))
            out.append(f"  input-resolution range: {per_axis}")
        elif self.range_unavailable is not None:
            out.append(f"  input-resolution range: unavailable ({self.range_unavailable})")
        return out + [f"  note: {note}" for note in self.notes]


def last_local(a: Analysis, name: str) -> NodeResult | None:
    """The last ancestor of `name` that is local on every axis, under its outermost module name
    (`layer4` rather than its last relu); None when `name` is local itself or nothing is."""
    r = a[name]
    if not any(r.is_global):
        return None
    local = [n for n in reversed(a.ancestor_names(name)) if not any(a[n].is_global)]
    return a[a._outermost_name(local[0])] if local else None


VERDICT_NODES = 20_000
"""Above this many nodes the summary leaves the verdicts out (they cost tens of microseconds a
node: seconds on a synthetic graph of 10^5) and says how to ask for them."""


def summarize(a: Analysis, *, verdicts: bool = True) -> Summary:
    """The summary of `a`; with `verdicts` and an input size, the verdict counts and the range."""
    counts = found = unavailable = None
    notes = []
    if verdicts and a.input_shape is not None and len(a) > VERDICT_NODES:
        notes.append(f"verdicts and input-resolution range left out of the summary of a graph of "
                     f"{len(a):,} nodes: --verdicts (Analysis.verdicts()) gives them")
    elif verdicts and a.input_shape is not None:
        counts = dict(a.verdicts().counts())
        counts = {k: n for k, n in counts.items() if n}
        try:
            found = a.input_resolution_range()
        except FovealError as error:
            unavailable = str(error)
    return Summary(graph=a.graph.name, input=a.input, input_shape=a.input_shape, axes=tuple(a.axes),
                   nodes=len(a), output=a.output, last_local=last_local(a, a.output_name),
                   counts=counts, resolution_range=found, range_unavailable=unavailable, notes=notes)
