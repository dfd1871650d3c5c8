"""The graph builder every front-end converts with: values, fresh names, emit, alias, unknown.

A front-end walks its framework's graph in order and turns each tensor into a `Value`: the foveal
node its receptive field comes from (None: it reads no input pixel, as a weight or a constant),
its layout (`foveal.layout`: which spatial axis each dim holds) and its shape. Its handlers add
foveal nodes through `GraphBuilder.add`, which also records the axis lengths the framework
computed, so `frontend.check_sizes` can compare them with foveal's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import ops as O
from .errors import FovealError
from .graph import Graph, fresh_name
from .layout import Layout, size_of


@dataclass(frozen=True)
class Value:
    """A tensor: the foveal node it takes its receptive field from, its layout and its shape
    (a None size: unknown to the framework, as Keras's batch dim)."""

    node: str | None
    layout: Layout
    shape: tuple[Any, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    def dim(self, d: int) -> int:
        """A possibly negative dim index, made positive."""
        return d + self.rank if d < 0 else d


def constant(shape: tuple[Any, ...]) -> Value:
    """A tensor that reads no input pixel."""
    return Value(None, (None,) * len(shape), shape)


class GraphBuilder:
    """The foveal Graph under construction and what the size check needs."""

    def __init__(self, n_axes: int, name: str) -> None:
        self.n_axes = n_axes
        self.graph = Graph(n_axes, name=name)
        self.expected: dict[str, tuple[int | None, ...]] = {}
        """Each foveal node's axis lengths as the framework computed them (None: not comparable)."""
        self.unhandled: Counter[str] = Counter()
        """Ops met without a handler, by name (each became an `unknown` node)."""
        self._uses: dict[str, int] = {}

    def fresh(self, base: str) -> str:
        """`base`, or `base@k` for its k-th use (a module or layer called several times)."""
        return fresh_name(base, self.graph.nodes, self._uses)

    def input(self, base: str, sizes: tuple[int | None, ...]) -> str:
        """An input node (its spatial `sizes` as the framework has them)."""
        name = self.fresh(base)
        self.graph.input(name)
        self.expected[name] = sizes
        return name

    def add(self, base: str, op: O.Op, inputs: Iterable[Value], layout: Layout, shape: tuple[Any, ...],
            label: str = "", checked: bool = True) -> Value:
        """A foveal node named `base` (or `base@k`) reading the connected `inputs`; a constant
        when none is connected. `checked`: the framework's sizes for it are comparable (False for
        a handler's intermediate steps, whose tensors the framework never made)."""
        sources = list(dict.fromkeys(v.node for v in inputs if v.node is not None))
        if not sources:
            return Value(None, layout, shape)
        if len(sources) > 1 and not isinstance(op, (O.Merge, O.Unknown)):
            raise FovealError(f"internal: {op!r} given several inputs at {base!r}")
        name = self.fresh(base)
        self.graph.add(name, op, sources, label=label)
        self.expected[name] = size_of(layout, shape, self.n_axes) if checked else (None,) * self.n_axes
        return Value(name, layout, shape)

    def alias(self, value: Value, base: str, label: str, kind: str = O.MODULE_OUTPUT) -> Value:
        """A node that names `value` (a module's or a nested model's output): an identity that
        the verdicts skip, so the name refers to what its last layer computed."""
        assert value.node is not None
        name = self.fresh(base)
        self.graph.add(name, O.alias(kind), [value.node], label=label)
        self.expected[name] = self.expected.get(value.node, (None,) * self.n_axes)
        return Value(name, value.layout, value.shape)

    def unknown(self, base: str, what: str, inputs: list[Value], layout: Layout, shape: tuple[Any, ...],
                label: str = "", counted: str | None = None) -> Value:
        """An op foveal has no handler for: an `unknown` node, so the analysis names it and the
        user's policy applies; `counted` is the name it is counted under in `unhandled`."""
        if counted is not None:
            self.unhandled[counted] += 1
        return self.add(base, O.Unknown(what), inputs, layout, shape, label)
