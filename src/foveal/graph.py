"""The framework-neutral graph: named nodes, each an op with per-axis parameters and its inputs.

Front-ends (PyTorch, Keras, ONNX, GraphDef) and hand-built models all end up here; the engine
reads nothing else. Edges name a producer as "name" or "name:k" (output k of a multi-output node).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import Any

from . import ops as O
from .errors import CycleError, GraphError, UnknownNodeError
from .toposort import topological

DEFAULT_AXES = {1: ("T",), 2: ("H", "W"), 3: ("D", "H", "W")}


def split_ref(ref: str) -> tuple[str, int]:
    """'conv1:2' -> ('conv1', 2); 'conv1' -> ('conv1', 0)."""
    name, sep, index = ref.rpartition(":")
    if sep and index.isascii() and index.isdigit() and len(index) < 10 and name:
        return name, int(index)
    return ref, 0


def fresh_name(base: str, taken: Any, uses: dict[str, int]) -> str:
    """`base`, or `base@k` for its k-th use (a module or layer called several times); `uses`
    remembers the last k per base, `taken` is the set (or dict) of names already in use."""
    k = uses.get(base, 0) + 1
    while True:
        name = base if k == 1 else f"{base}@{k}"
        if name not in taken:
            uses[base] = k
            return name
        k += 1


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    op: O.Op
    inputs: tuple[str, ...] = ()
    outputs: int = 1
    label: str | None = None
    """What the layer was in its framework (e.g. 'Conv2d', 'torchvision.ops.misc.Conv2dNormActivation')."""
    sources: tuple[str, ...] = field(default=(), compare=False, repr=False)
    """The producers' names (inputs without their ':k' output slot)."""
    index: int = field(default=-1, compare=False, repr=False)
    """Position in insertion order: the engine keeps its per-node state in a list by this index,
    which on graphs of millions of nodes is several times faster than a dict keyed by name."""
    source_ids: tuple[int, ...] | None = field(default=None, compare=False, repr=False)
    """The producers' indices; None if a producer was added later (see Graph.source_ids)."""


_INPUT, _MULTI_INPUT = O.Input, (O.Merge, O.Unknown)
_UNUSED = bytes([1]) + bytes(255)
"""bytes.translate table: 0 (nobody reads the node) -> 1, 1 -> 0."""

MAX_AXES = 8
"""More spatial axes than any network has (1-D to 3-D, some 4-D): a guard against absurd files."""


_SETTERS = tuple(getattr(Node, f).__set__ for f in ("name", "op", "inputs", "outputs", "label",
                                                     "sources", "index", "source_ids"))


def _new_node(name: str, op: O.Op, inputs: tuple[str, ...], outputs: int, label: str | None,
              sources: tuple[str, ...], index: int, source_ids: tuple[int, ...] | None) -> Node:
    """Node(...) without the frozen dataclass's field-by-field __init__ (object.__setattr__ per
    field): the slots are written through their descriptors, twice as fast, which is a second per
    million nodes. Slots rather than a __dict__: about 200 bytes less per node."""
    node = object.__new__(Node)
    s_name, s_op, s_inputs, s_outputs, s_label, s_sources, s_index, s_ids = _SETTERS
    s_name(node, name)
    s_op(node, op)
    s_inputs(node, inputs)
    s_outputs(node, outputs)
    s_label(node, label)
    s_sources(node, sources)
    s_index(node, index)
    s_ids(node, source_ids)
    return node


_ATOMS = frozenset((int, str, bool, type(None)))


def _signature(value: Any) -> Any:
    """The exact types of a field value, nested for tuples (a conv's (3, 3) kernel, its
    ((1, 1), (1, 1)) padding); None for anything else (lists, fractions: normalized each time)."""
    kind = type(value)
    if kind in _ATOMS:
        return kind
    if kind is tuple:
        inner = tuple(map(_signature, value))
        return None if None in inner else inner
    return None


def _plain_key(op: O.Op) -> tuple | None:
    """A key under which `op`, as given, normalizes to one known result: its type, field values
    and their exact types, nested in tuples (3, 3.0 and True are equal in Python but not to
    `normalize`); None if a field holds anything but ints, strs, bools, None and tuples of them.
    Graphs built call by call (`g.add('c', conv(3, 1, 1), [x])`) or by a front-end (a PyTorch
    conv's tuples) then validate each distinct op once, not per node."""
    fields = getattr(op, "__dict__", None)
    if fields is None:
        return None
    values = tuple(fields.values())
    types = tuple(map(_signature, values))
    if None in types:
        return None
    return type(op), values, types


def _axes(axes: int | Sequence[str]) -> tuple[str, ...]:
    if isinstance(axes, int) and not isinstance(axes, bool):
        if not 1 <= axes <= MAX_AXES:
            raise GraphError(f"a graph needs at least one spatial axis and at most {MAX_AXES}, got {axes}")
        return DEFAULT_AXES.get(axes, tuple(f"X{i}" for i in range(axes)))
    if isinstance(axes, str) or not isinstance(axes, Iterable):
        raise GraphError(f"axes must be a number or a list of axis names, got {axes!r}")
    names = tuple(axes)
    if not all(isinstance(a, str) and a and O.printable(a) for a in names):
        raise GraphError(f"axis names must be non-empty strings, got {names!r}")
    if not names or len(names) > MAX_AXES or len(set(names)) != len(names):
        raise GraphError(f"a graph has 1 to {MAX_AXES} distinct axis names, got {names!r}")
    return names


class Graph:
    """A DAG of named nodes over `axes` spatial axes (names in input order, e.g. ('H', 'W'))."""

    def __init__(self, axes: int | Sequence[str] = 2, name: str = "graph") -> None:
        if not isinstance(name, str) or not O.printable(name):
            raise GraphError(f"a graph's name must be a string of text, got {name!r}")
        self.axes = _axes(axes)
        self.nodes: dict[str, Node] = {}
        self.declared_outputs: list[str] = []
        self._ops: dict[O.Op, O.Op] = {}  # equal ops share one object, so per-op work is cached
        self._normalized: dict[tuple, O.Op] = {}  # _plain_key(op as given) -> its normalized op
        self._in_order = True  # every node was added after all its producers
        self._slotted = False  # some edge names an output slot ('name:k')
        self._inputs: list[str] = []  # the input nodes' names, in insertion order
        self._used = bytearray()  # by Node.index: 1 if an added node reads it (complete if _in_order)
        self.name = name

    __hash__ = None  # type: ignore[assignment]

    # -- building ------------------------------------------------------------------------
    def add(self, name: str, op: O.Op, inputs: Iterable[str] | str = (), outputs: int = 1,
            label: str | None = None, *, normalized: bool = False) -> str:
        """Add a node and return its name, so calls chain: x = g.add('c1', conv(3), [x]).

        normalized: `op` is already `ops.normalize(op, len(graph.axes), ...)`'s result (a reader
        that meets the same op many times normalises it once)."""
        nodes = self.nodes
        if (type(name) is not str or not name or not name.isascii()) and (
                not isinstance(name, str) or not name or not O.printable(name)):
            raise GraphError(f"node names must be non-empty strings of text, got {name!r}")
        if name in nodes:
            raise GraphError(f"node {name!r} is defined twice; node names must be unique")
        refs = (inputs,) if isinstance(inputs, str) else tuple(inputs)
        if len(refs) == 1:  # the common case, in a few steps
            ref = refs[0]
            if type(ref) is not str:
                raise GraphError(f"node {name!r}: inputs must be node names, got {list(refs)!r}")
            if ":" in ref:
                sources: tuple[str, ...] = (split_ref(ref)[0],)
                self._slotted = self._slotted or sources != refs
            else:
                sources = refs
        else:
            if not all(isinstance(r, str) for r in refs):
                raise GraphError(f"node {name!r}: inputs must be node names, got {list(refs)!r}")
            sources = tuple([split_ref(r)[0] for r in refs])
            self._slotted = self._slotted or sources != refs
        if label is not None and (not isinstance(label, str) or not O.printable(label)):
            raise GraphError(f"node {name!r}: label must be a string of text, got {label!r}")
        if type(outputs) is not int or outputs < 1:
            raise GraphError(f"node {name!r}: outputs must be a number >= 1, got {outputs!r}")
        if isinstance(op, _INPUT):
            if refs:
                raise GraphError(f"input node {name!r} cannot have inputs")
        elif not refs:
            raise GraphError(f"node {name!r} ({op.op}) has no inputs; only input nodes may have none")
        elif len(refs) > 1 and not isinstance(op, _MULTI_INPUT):
            raise GraphError(f"node {name!r} ({op.op}) takes one input, got {len(refs)}; "
                             f"use a merge op (add, multiply, concat) to combine paths")
        if not normalized:  # (a reader passing normalized ops shares equal ones itself)
            key = _plain_key(op)
            known = None if key is None else self._normalized.get(key)
            if known is None:
                op = O.normalize(op, len(self.axes), name)
                op = self._ops.setdefault(op, op)
                if key is not None:
                    self._normalized[key] = op
            else:
                op = known
        ids: tuple[int, ...] | None
        used = self._used
        try:
            if len(sources) == 1:
                ids = (nodes[sources[0]].index,)
                used[ids[0]] = 1
            else:
                ids = tuple([nodes[s].index for s in sources])
                for i in ids:
                    used[i] = 1
        except KeyError:
            ids = None
            self._in_order = False
        if isinstance(op, _INPUT):
            self._inputs.append(name)
        used.append(0)
        nodes[name] = _new_node(name, op, refs, outputs, label, sources, len(nodes), ids)
        return name

    @property
    def in_insertion_order(self) -> bool:
        """Every node was added after all its producers, so insertion order is topological."""
        return self._in_order

    def input(self, name: str = "input") -> str:
        return self.add(name, O.Input())

    def set_outputs(self, *names: str) -> None:
        for n in names:
            if not isinstance(n, str):
                raise GraphError(f"outputs must be node names, got {n!r}")
            self.node(n)
        self.declared_outputs = list(names)

    # -- reading -------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise UnknownNodeError(name, self.nodes) from None

    def source_ids(self, node: Node) -> tuple[int, ...]:
        """Indices of a node's producers (resolved now if one was added after the node)."""
        if node.source_ids is not None:
            return node.source_ids
        return tuple(self.node(src).index for src in node.sources)

    @property
    def inputs(self) -> list[str]:
        """The input nodes' names, in insertion order (kept by `add`: no pass over the nodes)."""
        return list(self._inputs)

    @property
    def outputs(self) -> list[str]:
        """Declared outputs, else the nodes nothing consumes (in insertion order)."""
        if self.declared_outputs:
            return list(self.declared_outputs)
        if self._in_order:  # every edge was marked by `add`: the unread nodes, at C speed
            return list(compress(self.nodes, self._used.translate(_UNUSED)))
        used = bytearray(len(self.nodes))  # by index: no string hashing on huge graphs
        nodes = self.nodes
        for n in nodes.values():
            ids = n.source_ids
            if ids is None:
                ids = tuple(nodes[s].index for s in n.sources if s in nodes)
            for i in ids:
                used[i] = 1
        return [name for name, u in zip(nodes, used) if not u]

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes.values())

    def __contains__(self, name: object) -> bool:
        return name in self.nodes

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Graph) and self.axes == other.axes and self.name == other.name
                and list(self.nodes.values()) == list(other.nodes.values())
                and self.declared_outputs == other.declared_outputs)

    def validate(self) -> None:
        """Every edge names an existing node and output slot."""
        if self._in_order and not self._slotted:
            return  # every producer existed when its consumer was added, and no slot is named
        for node in self.nodes.values():
            for ref, src in zip(node.inputs, node.sources):
                if src not in self.nodes:
                    raise UnknownNodeError(src, self.nodes, what=f"input of node {node.name!r}:")
                if ref == src:
                    continue
                slot = split_ref(ref)[1]
                if slot >= self.nodes[src].outputs:
                    raise GraphError(f"node {node.name!r} reads output {slot} of {src!r}, which "
                                     f"has only {self.nodes[src].outputs} output(s)")

    def topological_order(self) -> list[str]:
        """Insertion order when every node comes after its producers (the usual case, checked in
        one pass); else Kahn's algorithm, O(nodes + edges). Raises on cycles."""
        if self._in_order:  # producers all exist and come first: only output slots to check
            if self._slotted:
                self.validate()
            return list(self.nodes)
        self.validate()
        index = {name: i for i, name in enumerate(self.nodes)}
        names = list(self.nodes)
        nodes = list(self.nodes.values())
        ordered, stuck = topological(len(names), lambda i: (index[s] for s in nodes[i].sources))
        if stuck:
            raise CycleError(f"the graph has a cycle through {', '.join(repr(names[i]) for i in stuck[:6])}"
                             f"{' ...' if len(stuck) > 6 else ''}; receptive fields need a DAG")
        return [names[i] for i in ordered]


def sequential(layers: Iterable[Any], axes: int | Sequence[str] = 2, input_name: str = "input",
               name: str = "sequential") -> Graph:
    """A chain: `layers` are ops or (name, op) pairs; unnamed ones get '<kind>_<i>'."""
    graph = Graph(axes, name=name)
    previous = graph.input(input_name)
    for i, layer in enumerate(layers, start=1):
        if isinstance(layer, tuple):
            layer_name, op = layer
        else:
            op = layer
            layer_name = f"{getattr(op, 'kind', op.op)}_{i}"
        previous = graph.add(layer_name, op, [previous])
    return graph
