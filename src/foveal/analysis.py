"""The result objects: an `Analysis` of a graph and a `NodeResult` per node.

They read what the engine computed and never recompute it. Per-axis values are tuples in the
graph's axis order. A value of None means unavailable; `reasons` says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from . import ops as O
from . import paths
from .axis_map import Piece
from .clipped import ClippedRegions
from .engine import NodeState, Options, check_supported, run
from .errors import InvalidParameterError, UnknownNodeError
from .graph import Graph, Node
from .limits import MAX_PERIOD, check

if TYPE_CHECKING:
    from .productivity import ResolutionRange, Verdicts
    from .summary import Summary

Number = Any  # int, Fraction, math.inf or None


T = TypeVar("T")


class cached_property(Generic[T]):  # noqa: N801 - used as functools' decorator of the same name
    """functools.cached_property without the lock that Python 3.11 takes on every first access:
    the value is computed once and stored in the instance, where later reads find it directly.
    (A million-node JSON output reads a dozen of these per node.)"""

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> T:
        if instance is None:
            return self  # type: ignore[return-value]
        value = instance.__dict__[self.name] = self.compute(instance)
        return value


class Affine(NamedTuple):
    """A node in the common case, read without a NodeResult: one map on every axis, exact, aligned
    and without upsampling. Feature o reads [first + o*stride, last + o*stride] on each axis (size
    last - first + 1, padding -first); size_min / size_max are over all paths."""

    first: int
    last: int
    stride: int
    size_min: int
    size_max: int
    output_shape: tuple[int | None, ...]


def kind_of(op: Any) -> str:
    """An op's kind (conv, max_pool, add...), or its name for unknown ops."""
    return str(getattr(op, "kind", getattr(op, "name", op.op)))


def _plain(value: Fraction) -> int | Fraction:
    return value.numerator if value.denominator == 1 else value


class NodeResult:
    """Receptive field of one node's features with respect to the analysis input."""

    def __init__(self, analysis: Analysis, node: Node, state: NodeState) -> None:
        self._analysis = analysis
        self._state = state
        self.node = node
        self.name = node.name
        self.inputs = node.inputs
        self.status = state.status
        self.aligned = state.aligned
        self.misalignment = state.misalignment

    def __repr__(self) -> str:
        return (f"NodeResult({self.name!r}, size={self.size}, stride={self.stride}, "
                f"padding={self.padding}, status={self.status!r})")

    def _repr_html_(self) -> str:
        """Notebook display: the node's quantities, one column per axis."""
        from .notebook import node_html

        return node_html(self)

    # -- identity -------------------------------------------------------------------------
    @property
    def op(self) -> str:
        return self.node.op.op

    @property
    def kind(self) -> str:
        return kind_of(self.node.op)

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        return self._state.sizes

    @property
    def connected(self) -> bool:
        """Whether the node depends on the analysis input at all."""
        return self._state.connected

    @property
    def exact(self) -> bool:
        return self.status == "exact"

    @property
    def is_global(self) -> tuple[bool, ...]:
        if self._state.simple:
            return (self._state.axes[0].is_global,) * len(self._state.axes)
        return tuple(a.is_global for a in self._state.axes)

    @property
    def global_(self) -> bool:
        return any(self.is_global)

    @cached_property
    def reasons(self) -> tuple[str, ...]:
        if self._state.simple:
            return self._state.reasons
        notes = list(self._state.reasons)
        if not self._state.connected:
            notes.append(f"does not depend on input {self._analysis.input!r}")
        for axis_name, a in zip(self._analysis.axes, self._state.axes):
            if len(a.pieces) > 1 and not a.is_global:
                notes.append(f"paths have different strides on axis {axis_name}: size, stride and "
                             f"padding vary with the feature index; region(index) is exact")
            elif a.pieces and a.pieces[0].offset:
                notes.append(f"padding on axis {axis_name} depends on the input size (TF/ONNX "
                             f"SAME padding); give input_shape")
        return tuple(notes)

    # -- per-axis numbers -----------------------------------------------------------------
    def _single(self, axis: int) -> Piece | None:
        pieces = self._state.axes[axis].pieces
        return pieces[0] if len(pieces) == 1 and self.status != "unavailable" else None

    def _input_size(self, axis: int) -> int | None:
        return self._analysis.input_shape[axis] if self._analysis.input_shape else None

    @cached_property
    def affine(self) -> Affine | None:
        """The node in the common case (see Affine), None otherwise. The properties below read
        it without a loop."""
        return self._analysis.affine(self.name)

    @cached_property
    def size(self) -> tuple[Number, ...]:
        """Largest region size over the features (the RF size); inf if global with no input size."""
        if (affine := self.affine) is not None:
            return (affine.last - affine.first + 1,) * len(self._state.axes)
        out: list[Number] = []
        for axis, a in enumerate(self._state.axes):
            if a.is_global and self.status != "unavailable":
                out.append(self._global_size(axis))
                continue
            piece = self._single(axis)
            out.append(None if piece is None else max(piece.sizes()))
        return tuple(out)

    def _global_size(self, axis: int) -> Number:
        """Largest region of a global axis: inf without sizes, else measured over every feature
        (other paths may reach into padding beyond the input)."""
        n_out = self._state.sizes[axis]
        if self._input_size(axis) is None or n_out is None:
            return math.inf
        # Each path's bounds are linear in o plus a part periodic in o; so, for every residue of
        # o modulo the joint period, the hull's size is largest at the first or the last such o.
        period = 1
        for q in self._state.axes[axis].pieces:
            period = check(math.lcm(period, q.period), MAX_PERIOD, "the joint period of the paths")
        ends = range(n_out) if n_out <= 2 * period else (*range(period), *range(n_out - period, n_out))
        sizes = [iv[1] - iv[0] + 1 for o in ends if (iv := self._hull_at(axis, o))]
        return max(sizes, default=0)

    def _hull_at(self, axis: int, o: int) -> tuple[int, int] | None:
        found = [iv for iv in (q.at(o) for q in self._state.axes[axis].pieces) if iv]
        return (min(iv[0] for iv in found), max(iv[1] for iv in found)) if found else None

    @cached_property
    def phase_sizes(self) -> tuple[tuple[int, ...] | None, ...]:
        """Per axis, the region size of each phase o mod period (one entry without upsampling)."""
        if (affine := self.affine) is not None:
            return ((affine.last - affine.first + 1,),) * len(self._state.axes)
        return tuple(None if (p := self._single(axis)) is None or a.is_global else p.sizes()
                     for axis, a in enumerate(self._state.axes))

    @cached_property
    def period(self) -> tuple[int | None, ...]:
        if self.affine is not None:
            return (1,) * len(self._state.axes)
        return tuple(None if (p := self._single(axis)) is None or a.is_global else p.period
                     for axis, a in enumerate(self._state.axes))

    @cached_property
    def stride(self) -> tuple[Number, ...]:
        """Effective stride: input pixels per feature step (a Fraction after upsampling)."""
        if (affine := self.affine) is not None:
            return (affine.stride,) * len(self._state.axes)
        return tuple(None if (p := self._single(axis)) is None or a.is_global else _plain(p.stride)
                     for axis, a in enumerate(self._state.axes))

    @cached_property
    def padding(self) -> tuple[int | None, ...]:
        """Effective padding P: the region of feature 0 starts at input coordinate -P."""
        if (affine := self.affine) is not None:
            return (-affine.first,) * len(self._state.axes)
        out: list[int | None] = []
        for axis, a in enumerate(self._state.axes):
            p = self._single(axis)
            first = None if p is None or a.is_global or p.offset else p.at(0)
            out.append(None if first is None else -first[0])
        return tuple(out)

    @cached_property
    def size_min(self) -> tuple[Number, ...]:
        """Smallest receptive field over all input->node paths (rfa_toolbox semantics)."""
        if self._state.simple:
            r = paths.size_range(self._state.axes[0].paths)
            return (None if r is None else r[0],) * len(self._state.axes)
        return tuple(None if (r := paths.size_range(a.paths)) is None else r[0]
                     for a in self._state.axes)

    @cached_property
    def size_max(self) -> tuple[Number, ...]:
        """Largest receptive field over all input->node paths."""
        if self._state.simple:
            r = paths.size_range(self._state.axes[0].paths)
            return (None if r is None else r[1],) * len(self._state.axes)
        return tuple(None if (r := paths.size_range(a.paths)) is None else r[1]
                     for a in self._state.axes)

    # -- coordinates ----------------------------------------------------------------------
    def _index(self, index: tuple[Any, ...], what: str) -> tuple[int, ...]:
        n = len(self._state.axes)
        if len(index) == 1 and isinstance(index[0], (tuple, list)):
            index = tuple(index[0])
        if len(index) != n:
            raise InvalidParameterError(f"{what} of node {self.name!r} takes {n} indices "
                                        f"({', '.join(self._analysis.axes)}), got {len(index)}")
        return index

    def region(self, *index: int, clip: bool = False) -> tuple[tuple[Number, Number] | None, ...]:
        """Input interval [first, last] (inclusive) per axis that feature `index` depends on.

        Unclipped (default): on an unbounded input, as the reference library defines it; it may
        extend into padding. clip=True: the exact hull of the real input pixels the feature
        depends on (needs input_shape); None on an axis where it depends on none.
        """
        idx = self._index(index, "region")
        for i in idx:
            if isinstance(i, bool) or not isinstance(i, int):
                raise InvalidParameterError(f"feature indices must be ints, got {i!r}")
        if clip:
            return self._clipped(idx)
        out: list[tuple[Number, Number] | None] = []
        for axis, (o, a) in enumerate(zip(idx, self._state.axes)):
            if self.status == "unavailable" or any(q.offset for q in a.pieces):
                out.append(None)
            elif a.is_global and self._input_size(axis) is None:
                out.append((-math.inf, math.inf))
            else:
                out.append(self._hull_at(axis, o))
        return tuple(out)

    def _clipped(self, idx: tuple[int, ...]) -> tuple[tuple[int, int] | None, ...]:
        if not self._state.connected:
            return tuple(None for _ in idx)
        for axis, (o, n) in enumerate(zip(idx, self._state.sizes)):
            if n is not None and not 0 <= o < n:
                raise InvalidParameterError(f"feature index {o} is outside node {self.name!r} "
                                            f"(axis {self._analysis.axes[axis]} has {n})")
        return self._analysis._clipped.region(self.name, idx)

    def center(self, *index: int, clip: bool = False) -> tuple[float | None, ...]:
        """Centre (first + last) / 2 of the region of feature `index`, per axis."""
        return tuple(None if r is None else (r[0] + r[1]) / 2 for r in self.region(*index, clip=clip))

    def feature_at(self, *coord: float) -> tuple[float | None, ...]:
        """The feature whose region is centred at input coordinate `coord`.

        Without upsampling: the reference inverse (c + P - (r - 1)/2) / S, a float. After
        upsampling (period > 1): the index of the feature with the nearest centre.
        """
        xs = self._index(coord, "feature_at")
        out: list[float | None] = []
        for axis, x in enumerate(xs):
            p = self._single(axis)
            if p is None or p.offset or self._state.axes[axis].is_global or p.shift == 0:
                out.append(None)
                continue
            if p.period == 1 and p.table[0] is not None:
                lo, hi = p.table[0]
                out.append((x - (lo + hi) / 2) / p.shift)
                continue
            guess = math.floor((x - p.table[0][0] if p.table[0] else x) * p.period / p.shift)
            best = None
            for o in range(guess - 2 * p.period - 2, guess + 2 * p.period + 3):
                iv = p.at(o)
                if iv is None:
                    continue
                d = abs((iv[0] + iv[1]) / 2 - x)
                if best is None or d < best[0]:
                    best = (d, o)
            out.append(None if best is None else float(best[1]))
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        from .report import node_dict

        return node_dict(self)


class Analysis:
    """Receptive fields of every node of a graph with respect to one input node."""

    def __init__(self, graph: Graph, options: Options, output: str | None = None) -> None:
        self.graph = graph
        self.options = options
        self.order, self._states, self.input, unknown_ops = run(graph, options)
        self.axes = graph.axes
        self.input_shape = self._states[self.input].sizes if all(
            s is not None for s in self._states[self.input].sizes) else None
        outputs = graph.outputs
        if output is not None and output not in graph.nodes:
            raise UnknownNodeError(output, graph.nodes, what="output node")
        self.output_name = output or (outputs[-1] if outputs else self.order[-1])
        if unknown_ops and options.unknown_policy == "error":
            check_supported(graph, self._states, [output] if output else outputs or [self.output_name],
                            tuple(options.stop_propagation), self.order)
        self._results: dict[str, NodeResult] = {}

    def __repr__(self) -> str:
        """The answer at a glance on one line (foveal.summary): the output's receptive field and,
        for a classifier, the last spatial layer's."""
        from .summary import field_text, last_local

        given = "" if self.input_shape is None else \
            f", input {' x '.join(str(n) for n in self.input_shape)}"
        text = (f"<foveal.Analysis of {self.graph.name!r} ({', '.join(self.axes)}{given}), "
                f"{len(self)} nodes; output {self.output_name!r}: {field_text(self.output)}")
        local = last_local(self, self.output_name)
        if local is not None:
            text += f"; last spatial layer {local.name!r}: {field_text(local)}"
        return text + ">"

    def _outermost_name(self, name: str) -> str:
        """The last module-output name given to a node's tensor (`layer4` for its last relu)."""
        aliases: dict[str, list[str]] = {}
        for node in self.graph.nodes.values():
            if isinstance(node.op, O.Elementwise) and node.op.is_alias and len(node.inputs) == 1:
                aliases.setdefault(node.inputs[0], []).append(node.name)
        while aliases.get(name):
            name = aliases[name][-1]
        return name

    @cached_property
    def _clipped(self) -> ClippedRegions:
        return ClippedRegions(self.graph, self._states, self.input, self.options.unknown_policy,
                              tuple(self.options.stop_propagation), self.order)

    def __getitem__(self, name: str) -> NodeResult:
        result = self._results.get(name)
        if result is None:
            if name not in self._states:
                raise UnknownNodeError(name, self._states)
            result = self._results[name] = NodeResult(self, self.graph.nodes[name], self._states[name])
        return result

    def __contains__(self, name: object) -> bool:
        return name in self._states

    def __iter__(self) -> Iterator[NodeResult]:
        return (self[n] for n in self.order)

    def __len__(self) -> int:
        return len(self.order)

    @property
    def output(self) -> NodeResult:
        return self[self.output_name]

    @property
    def outputs(self) -> list[NodeResult]:
        return [self[n] for n in self.graph.outputs]

    @property
    def unsupported_ops(self) -> dict[str, int]:
        """Ops without a handler that the analysis met, with counts."""
        counts: dict[str, int] = {}
        for node in self.graph:
            name = getattr(node.op, "name", None) if node.op.op == "unknown" and not getattr(
                node.op, "data_dependent", False) else None
            if name is not None and self._states[node.name].connected:
                counts[name] = counts.get(name, 0) + 1
        return counts

    def ancestors(self, name: str) -> list[NodeResult]:
        """The node and everything it depends on, in topological order."""
        return [self[n] for n in self.ancestor_names(name)]

    def ancestor_names(self, name: str) -> list[str]:
        """The names of `ancestors(name)` (marked by node index: linear, and fast on big graphs)."""
        self[name]
        graph = self.graph
        nodes = graph.nodes
        records = list(nodes.values()) if graph.in_insertion_order else [nodes[n] for n in self.order]
        keep = bytearray(len(nodes))
        keep[nodes[name].index] = 1
        for node in reversed(records):
            if keep[node.index]:
                for i in graph.source_ids(node):
                    keep[i] = 1
        return [node.name for node in records if keep[node.index]]

    def result(self, name: str) -> NodeResult:
        """The NodeResult of `name`, made for the caller and not kept (see results)."""
        found = self._results.get(name)
        return found if found is not None else NodeResult(self, self.graph.nodes[name], self._states[name])

    def results(self, names: Iterable[str] | None = None) -> Iterator[NodeResult]:
        """NodeResults of `names` (default: every node in order), made as they are read and not
        kept: writing the output of a graph of a million nodes never holds a million of them."""
        for name in self.order if names is None else names:
            yield self.result(name)

    def affine(self, name: str) -> Affine | None:
        """Node `name` in the common case (see Affine), read straight from the analysis; None when
        it is not the common case. Outputs of graphs of millions of nodes use it per node."""
        found = self._states.affine(self.graph.nodes[name].index)
        return None if found is None else Affine(*found)

    # -- productivity at the input resolution (rfa_toolbox's questions) -------------------
    def verdicts(self, *, filter_kernel_size_1: bool = False) -> Verdicts:
        """Unproductive / critical / partially critical / productive, per node, at input_shape."""
        from .productivity import classify

        return classify(self, filter_kernel_size_1=filter_kernel_size_1)

    def input_resolution_range(self, *, filter_all_inf_rf: bool = True, filter_kernel_size_1: bool = False,
                               lower_bound: bool = False) -> ResolutionRange:
        """rfa_toolbox's feasible input resolutions per axis; unpacks as (minimum, maximum)."""
        from .productivity import input_resolution_range

        return input_resolution_range(self, filter_all_inf_rf=filter_all_inf_rf,
                                      filter_kernel_size_1=filter_kernel_size_1, lower_bound=lower_bound)

    # -- outputs --------------------------------------------------------------------------
    def to_dict(self, nodes: list[NodeResult] | None = None) -> dict[str, Any]:
        from .report import analysis_dict

        return analysis_dict(self, nodes)

    def to_json(self, nodes: list[NodeResult] | None = None, indent: int | None = 2) -> str:
        from .report import to_json

        return to_json(self, nodes, indent)

    def to_table(self, nodes: list[NodeResult] | None = None, *, summary: bool = False,
                 pointwise: bool = True) -> str:
        """The terminal table; `summary` puts the answer at a glance first, `pointwise=False` hides
        rows that change nothing (norms, activations: foveal.report.changes_nothing)."""
        from .report import to_table

        return to_table(self, nodes, summary=summary, pointwise=pointwise)

    def to_csv(self, nodes: list[NodeResult] | None = None) -> str:
        """CSV with one numeric column per quantity and axis (rf_H, stride_W, ...)."""
        from .report import to_csv

        return to_csv(self, nodes)

    def to_pandas(self, nodes: list[NodeResult] | None = None) -> Any:
        """A pandas DataFrame indexed by node, one numeric column per quantity and axis."""
        from .report import to_pandas

        return to_pandas(self, nodes)

    def summary(self) -> Summary:
        """The answer at a glance (foveal.summary): output, last spatial layer, verdict counts
        and input-resolution range at the input size."""
        from .summary import summarize

        return summarize(self)

    def _repr_html_(self) -> str:
        """Notebook display: the summary, then the table without rows that change nothing."""
        from .notebook import analysis_html

        return analysis_html(self)

    def to_markdown(self, nodes: list[NodeResult] | None = None) -> str:
        from .report import to_markdown

        return to_markdown(self, nodes)
