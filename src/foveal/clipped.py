"""Exact regions clipped to the input: the hull of the input pixels a feature really depends on.

Zero padding contributes nothing, reflect/replicate/circular padding and clamped interpolation
read real border pixels, and dilation holes at the border are skipped. Computed on concrete sizes
by propagating one interval per position (the hull of a union is the min/max of the hulls), so
the cost is O(sum over nodes of length x taps), paid only for the nodes asked about.
"""

from __future__ import annotations

from typing import cast

from . import ops as O
from .engine import NodeState, live_inputs
from .errors import InvalidParameterError
from .graph import Graph, split_ref
from .taps import concrete_taps

Hulls = list  # per position: (lo, hi) or None


class ClippedRegions:
    def __init__(self, graph: Graph, states: dict[str, NodeState], input_name: str,
                 policy: str, stop_propagation: tuple[str, ...], order: list[str]) -> None:
        self.graph = graph
        self.rank = {n: i for i, n in enumerate(order)}
        self.states = states
        self.input_name = input_name
        self.policy = policy
        self.prefixes = stop_propagation
        self.cache: dict[str, list[Hulls]] = {}

    def of(self, name: str) -> list[Hulls]:
        """Per axis, per output position of `name`: the clipped input interval or None."""
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
            for ref in self.graph.nodes[current].inputs:
                src = split_ref(ref)[0]
                if src not in seen and src not in self.cache:
                    seen.add(src)
                    todo.append(src)
        for current in sorted(order, key=self.rank.__getitem__):
            if current not in self.cache:
                self.cache[current] = self._compute(current)
        return self.cache[name]

    def _compute(self, name: str) -> list[Hulls]:
        state = self.states[name]
        if any(s is None for s in state.sizes):
            raise InvalidParameterError(
                f"regions clipped to the input need every size up to node {name!r}; give "
                f"input_shape to receptive_field()")
        sizes = cast(tuple[int, ...], state.sizes)
        if name == self.input_name:
            return [[(o, o) for o in range(n)] for n in sizes]
        node = self.graph.nodes[name]
        live = [r for r in live_inputs(self.graph, name, self.prefixes) if self.states[r].connected]
        result = []
        for axis, n_out in enumerate(sizes):
            hulls: Hulls = [None] * n_out
            for ref in live:
                source = self.cache[ref][axis]
                n_in = cast(int, self.states[ref].sizes[axis])
                for o in range(n_out):
                    lo, hi = None, None
                    for i in self._taps(node.op, axis, o, n_in, n_out):
                        e = source[i]
                        if e is None:
                            continue
                        lo = e[0] if lo is None or e[0] < lo else lo
                        hi = e[1] if hi is None or e[1] > hi else hi
                    if lo is None:
                        continue
                    old = hulls[o]
                    hulls[o] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
            result.append(hulls)
        return result

    def _taps(self, op: O.Op, axis: int, o: int, n_in: int, n_out: int) -> list[int] | range:
        if isinstance(op, O.Unknown):
            return range(n_in) if self.policy == "global" else [min(o, n_in - 1)]
        return concrete_taps(op, axis, o, n_in, n_out)
