"""Exact regions clipped to the input: the hull of the input pixels a feature really depends on.

Zero padding contributes nothing, reflect/replicate/circular padding and clamped interpolation
read real border pixels, and dilation holes at the border are skipped. Computed on concrete sizes
by propagating one interval per position and axis (the hull of a union is the min/max of the
hulls), so the cost is O(sum over nodes of length x taps), paid only for the nodes asked about.

Per axis is exact for one path: a feature's region is a box, empty as soon as one axis reads no
real pixel. At a merge, a branch that is empty on one axis adds nothing on the others, so the
per-axis hulls of such a branch are kept apart as their own *component* until a later op fills
its holes; components without holes are merged. A region is the bounding box of the components
that are non-empty on every axis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from . import ops as O
from .engine import NodeState, live_inputs
from .errors import InvalidParameterError
from .graph import Graph
from .limits import MAX_CLIPPED_POSITIONS, LimitError
from .taps import concrete_taps

Hulls = list  # per position: (lo, hi) or None
Component = list  # per axis: Hulls


class ClippedRegions:
    def __init__(self, graph: Graph, states: Mapping[str, NodeState], input_name: str,
                 policy: str, stop_propagation: tuple[str, ...], order: list[str]) -> None:
        self.graph = graph
        self.rank = {n: i for i, n in enumerate(order)}
        self.states = states
        self.input_name = input_name
        self.policy = policy
        self.prefixes = stop_propagation
        self.cache: dict[str, list[Component]] = {}
        self.work = 0
        """Positions times taps visited so far (bounded by MAX_CLIPPED_POSITIONS)."""

    def region(self, name: str, index: tuple[int, ...]) -> tuple[tuple[int, int] | None, ...]:
        """Clipped region of feature `index` of `name`; None on every axis if it reads nothing."""
        box: list[tuple[int, int]] | None = None
        for component in self.of(name):
            parts = [hulls[o] for hulls, o in zip(component, index)]
            if any(p is None for p in parts):
                continue
            box = parts if box is None else [(min(a[0], b[0]), max(a[1], b[1]))
                                             for a, b in zip(box, parts)]
        return tuple(box) if box is not None else tuple(None for _ in index)

    def of(self, name: str) -> list[Component]:
        """The components of `name`: per axis, per output position, an interval or None."""
        if name in self.cache:
            return self.cache[name]
        todo = [name]
        order: list[str] = []
        seen = {name}
        while todo:  # ancestors, iteratively (deep graphs must not hit the recursion limit)
            current = todo.pop()
            order.append(current)
            if current == self.input_name:
                continue
            for src in self.graph.nodes[current].sources:
                if src not in seen and src not in self.cache:
                    seen.add(src)
                    todo.append(src)
        for current in sorted(order, key=self.rank.__getitem__):
            if current not in self.cache:
                self.cache[current] = self._compute(current)
        return self.cache[name]

    def _compute(self, name: str) -> list[Component]:
        state = self.states[name]
        if any(s is None for s in state.sizes):
            raise InvalidParameterError(
                f"regions clipped to the input need every size up to node {name!r}; give "
                f"input_shape to receptive_field()")
        sizes = cast(tuple[int, ...], state.sizes)
        if name == self.input_name:
            self._spend(name, sum(sizes))
            return [[[(o, o) for o in range(n)] for n in sizes]]
        node = self.graph.nodes[name]
        live = [r for r in live_inputs(self.graph, name, self.prefixes) if self.states[r].connected]
        components = []
        for ref in live:
            n_in = cast(tuple[int, ...], self.states[ref].sizes)
            steps = sum(n_out * _taps_bound(node.op, axis, n_in[axis], self.policy)
                        for axis, n_out in enumerate(sizes))
            self._spend(name, len(self.cache[ref]) * steps)
            for source in self.cache[ref]:
                components.append([self._apply(node.op, axis, source[axis], n_in[axis], n_out)
                                   for axis, n_out in enumerate(sizes)])
        return _merge_complete(components)

    def _spend(self, name: str, steps: int) -> None:
        self.work += steps
        if self.work > MAX_CLIPPED_POSITIONS:
            raise LimitError(f"regions clipped to the input are computed position by position; up to node "
                             f"{name!r} that needs more than foveal's limit of {MAX_CLIPPED_POSITIONS:,} "
                             f"steps: use the unclipped region (clip=False) or a smaller input")

    def _apply(self, op: O.Op, axis: int, source: Hulls, n_in: int, n_out: int) -> Hulls:
        hulls: Hulls = [None] * n_out
        for o in range(n_out):
            lo, hi = None, None
            for i in self._taps(op, axis, o, n_in, n_out):
                e = source[i]
                if e is None:
                    continue
                lo = e[0] if lo is None or e[0] < lo else lo
                hi = e[1] if hi is None or e[1] > hi else hi
            if lo is not None:
                hulls[o] = (lo, hi)
        return hulls

    def _taps(self, op: O.Op, axis: int, o: int, n_in: int, n_out: int) -> list[int] | range:
        if isinstance(op, O.Unknown):
            return range(n_in) if self.policy == "global" else [min(o, n_in - 1)]
        return concrete_taps(op, axis, o, n_in, n_out)


def _taps_bound(op: O.Op, axis: int, n_in: int, policy: str) -> int:
    """At most how many input positions one output position of `op` reads on `axis`."""
    if isinstance(op, (O.Window, O.TransposedWindow)):
        return min(op.kernel[axis], n_in)
    if isinstance(op, O.Resize):
        return 4
    if isinstance(op, O.PixelUnshuffle):
        return op.factor[axis]
    if isinstance(op, O.AdaptivePool) and op.size[axis]:
        return n_in // op.size[axis] + 2
    if (isinstance(op, O.Global) and op.axes[axis]) or (isinstance(op, O.Unknown) and policy == "global"):
        return n_in
    return 1


def _merge_complete(components: list[Component]) -> list[Component]:
    """Merge the components that read something at every position on every axis."""
    complete = [c for c in components if all(None not in hulls for hulls in c)]
    partial = [c for c in components if any(None in hulls for hulls in c)]
    if len(complete) > 1:
        merged = complete[0]
        for other in complete[1:]:
            merged = [[(min(a[0], b[0]), max(a[1], b[1])) for a, b in zip(x, y)]
                      for x, y in zip(merged, other)]
        complete = [merged]
    unique: list[Component] = []
    for c in partial:
        if c not in unique:
            unique.append(c)
    return complete + unique
