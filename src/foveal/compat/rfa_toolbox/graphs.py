"""rfa_toolbox's graph model: LayerDefinition, ReceptiveFieldInfo and EnrichedNetworkNode.

A hand-built node computes, as in rfa_toolbox, the set of distinct (receptive field r, cumulative
stride j) pairs over every path from the roots: r' = r + (k - 1) j, j' = s j, per axis; a scalar
infinite kernel (a dense layer) resets the set to {(inf, 1)}. Two of rfa_toolbox's bugs are fixed:
`all_layers` holds every node of a graph with several roots, and every comparison works per axis
on tuples. Nodes made by `create_graph_from_pytorch_model` carry foveal's exact numbers instead
(see `foveal.compat.rfa_toolbox.pytorch`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import InvalidParameterError

INF = math.inf
Value = Any  # a number or a tuple with one number per axis


# -- per-axis arithmetic on "a number or a tuple" ----------------------------------------------

def _length(*values: Value) -> int | None:
    lengths = {len(v) for v in values if isinstance(v, tuple)}
    if len(lengths) > 1:
        raise ValueError(f"values with different numbers of axes: {values}")
    return lengths.pop() if lengths else None


def _at(value: Value, axis: int) -> Any:
    return value[axis] if isinstance(value, tuple) else value


def elementwise(fn: Callable[[Any, Any], Any], a: Value, b: Value) -> Value:
    n = _length(a, b)
    return fn(a, b) if n is None else tuple(fn(_at(a, i), _at(b, i)) for i in range(n))


def every_axis(fn: Callable[[Any, Any], bool], a: Value, b: Value) -> bool:
    n = _length(a, b)
    return bool(fn(a, b)) if n is None else all(fn(_at(a, i), _at(b, i)) for i in range(n))


def some_axis(fn: Callable[[Any, Any], bool], a: Value, b: Value) -> bool:
    n = _length(a, b)
    return bool(fn(a, b)) if n is None else any(fn(_at(a, i), _at(b, i)) for i in range(n))


def reduce_axes(fn: Callable[[Iterable[Any]], Any], values: Sequence[Value]) -> Value:
    """Per-axis min/max over values; a scalar if every value is one (scalars broadcast)."""
    n = _length(*values)
    if n is None:
        return fn(values)
    return tuple(fn(_at(v, i) for v in values) for i in range(n))


def _tuple(value: Any) -> Any:
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        value = value.tolist() if hasattr(value, "tolist") else value
        return tuple(_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value
    return value


def resolution(value: Any) -> Value:
    """An input resolution as given (a number or one per axis), checked to be >= 1."""
    value = _tuple(value)
    values = value if isinstance(value, tuple) else (value,)
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 1 for v in values):
        raise InvalidParameterError(f"an input resolution must be a number >= 1 or one per axis, "
                                    f"got {value!r}")
    return value


def is_infinite(value: Value) -> bool:
    """Infinite on some axis."""
    return any(v == INF for v in value) if isinstance(value, tuple) else value == INF


def is_scalar_inf(value: Value) -> bool:
    return not isinstance(value, tuple) and value == INF


# -- records --------------------------------------------------------------------------------------

def _check_positive(value: Any, what: str) -> None:
    for v in value if isinstance(value, tuple) else (value,):
        if v < 1:
            raise ValueError(f"{what} must be >= 1 on every axis, got {value}")


@dataclass(frozen=True)
class LayerDefinition:
    """A layer: kernel None means dense / global (infinite), stride None means 1."""

    name: str
    kernel_size: Any = None
    stride_size: Any = None
    filters: int | None = None
    units: int | None = None

    def __post_init__(self) -> None:
        kernel = INF if self.kernel_size is None else _tuple(self.kernel_size)
        stride = 1 if self.stride_size is None else _tuple(self.stride_size)
        _check_positive(kernel, "kernel_size")
        _check_positive(stride, "stride_size")
        if isinstance(kernel, tuple) and isinstance(stride, tuple) and len(kernel) != len(stride):
            raise ValueError(f"kernel_size {kernel} and stride_size {stride} have different lengths")
        object.__setattr__(self, "kernel_size", kernel)
        object.__setattr__(self, "stride_size", stride)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> LayerDefinition:
        return cls(**config)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kernel_size": self.kernel_size, "stride_size": self.stride_size}

    @classmethod
    def _unchecked(cls, name: str, kernel_size: Any, stride_size: Any) -> LayerDefinition:
        """For captured layers, whose stride may be a fraction (upsampling, transposed conv)."""
        layer = cls.__new__(cls)
        for key, value in (("name", name), ("kernel_size", kernel_size), ("stride_size", stride_size),
                           ("filters", None), ("units", None)):
            object.__setattr__(layer, key, value)
        return layer


@dataclass(frozen=True)
class ReceptiveFieldInfo:
    """One (receptive field size, cumulative stride) pair; tuples per axis."""

    receptive_field: Any
    multiplicator: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "receptive_field", _tuple(self.receptive_field))
        object.__setattr__(self, "multiplicator", _tuple(self.multiplicator))


Infos = tuple[ReceptiveFieldInfo, ...]


def noop_filter(infos: Infos) -> Infos:
    return infos


def filter_all_rf_info_with_infinite_receptive_field(infos: Infos) -> Infos:
    """Drop the pairs that are infinite on some axis, unless that drops them all."""
    finite = tuple(i for i in infos if not is_infinite(i.receptive_field))
    return finite or infos


def naive_minmax_filter(infos: Infos) -> Infos:
    """The smallest and the largest pair, as rfa_toolbox returns them (the same pair twice when
    there is one); lossy: the growth depends on the stride too."""
    if not infos:
        return infos
    keyed = sorted(infos, key=lambda i: i.receptive_field if isinstance(i.receptive_field, tuple)
                   else (i.receptive_field,))
    return keyed[0], keyed[-1]


KNOWN_FILTER_MAPPING: dict[Any, Callable[[Infos], Infos]] = {
    "inf": filter_all_rf_info_with_infinite_receptive_field, None: noop_filter}


def compute_receptive_field_sizes(infos: Iterable[ReceptiveFieldInfo], layer_info: LayerDefinition) -> Infos:
    """Apply one layer to every pair: r + (k - 1) j and s j, per axis. One result per given pair,
    equal results kept: rfa_toolbox removes duplicates among the predecessors' pairs before the
    layer, not after it (a scalar 3 and a tuple (3, 3) differ before a 1x1 layer, not after)."""
    k, s = layer_info.kernel_size, layer_info.stride_size
    out: list[ReceptiveFieldInfo] = []
    for info in infos:
        r, j = info.receptive_field, info.multiplicator
        grown = elementwise(operator.add, r, elementwise(operator.mul, elementwise(operator.sub, k, 1), j))
        out.append(ReceptiveFieldInfo(grown, elementwise(operator.mul, s, j)))
    return tuple(out)


def receptive_field_provider(node: EnrichedNetworkNode) -> Value:
    return node.receptive_field_min


_DEFAULT_PROVIDER = receptive_field_provider


def receptive_field_provider_with_1x1_handling(node: EnrichedNetworkNode) -> Value:
    """rfa_toolbox's hypothesis that 1x1 layers never add context: their min RF counts as inf."""
    return INF if every_axis(operator.eq, node.kernel_size, 1) else node.receptive_field_min


# -- nodes --------------------------------------------------------------------------------------

class _Layers:
    """The list of every node of one connected graph, shared by its nodes, in creation order."""

    def __init__(self) -> None:
        self.nodes: list[EnrichedNetworkNode] = []
        self.ids: set[int] = set()

    def append(self, node: EnrichedNetworkNode) -> None:
        self.nodes.append(node)
        self.ids.add(id(node))
        node._layers = self

    def absorb(self, other: _Layers) -> None:
        for node in other.nodes:
            if id(node) not in self.ids:
                self.append(node)


@dataclass(eq=False)
class EnrichedNetworkNode:
    """A layer with its predecessors; the receptive fields are computed when it is created, so a
    graph is built in topological order. Any node is a handle for the whole graph."""

    name: str
    layer_info: LayerDefinition
    predecessors: list[EnrichedNetworkNode] = field(default_factory=list)
    receptive_field_info_filter: Callable[[Infos], Infos] = noop_filter
    receptive_field_info: Infos = field(init=False)
    receptive_field_min: Any = field(init=False)
    receptive_field_max: Any = field(init=False)
    succecessors: list[EnrichedNetworkNode] = field(init=False, default_factory=list)
    _layers: _Layers = field(init=False, repr=False)
    _captured: Any = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.predecessors = list(self.predecessors)
        kernel = self.layer_info.kernel_size
        if is_scalar_inf(kernel):
            seed: Iterable[ReceptiveFieldInfo] = (ReceptiveFieldInfo(INF, 1),)
        elif self.predecessors:  # distinct pairs of the inputs (rfa_toolbox's set), in order
            seed = dict.fromkeys(i for p in self.predecessors for i in p.receptive_field_info)
        else:
            seed = (ReceptiveFieldInfo(1, 1),)
        self._set_infos(self.receptive_field_info_filter(
            compute_receptive_field_sizes(seed, self.layer_info)))
        self._join()

    def _set_infos(self, infos: Infos) -> None:
        self.receptive_field_info = tuple(infos)
        sizes = [i.receptive_field for i in self.receptive_field_info]
        self.receptive_field_min = reduce_axes(min, sizes)
        self.receptive_field_max = reduce_axes(max, sizes)

    def _join(self) -> None:
        lists = list({id(p._layers): p._layers for p in self.predecessors}.values())
        layers = lists[0] if lists else _Layers()
        for other in lists[1:]:
            layers.absorb(other)
        layers.append(self)
        for p in self.predecessors:
            p.succecessors.append(self)

    # -- rfa_toolbox's read API -------------------------------------------------------------
    @property
    def all_layers(self) -> list[EnrichedNetworkNode]:
        return self._layers.nodes

    @property
    def successors(self) -> list[EnrichedNetworkNode]:
        return self.succecessors

    @property
    def receptive_field_sizes(self) -> list[Any]:
        return [i.receptive_field for i in self.receptive_field_info]

    @property
    def kernel_size(self) -> Any:
        return self.layer_info.kernel_size

    @property
    def stride_size(self) -> Any:
        return self.layer_info.stride_size

    def get_maximum_scale_factor(self) -> Any:
        """Largest cumulative stride over the node's pairs, its own stride included."""
        return reduce_axes(max, [i.multiplicator for i in self.receptive_field_info])

    def compute_feature_map_size(self, input_resolution: Any) -> Any:
        """rfa_toolbox: resolution // cumulative stride. Captured nodes: the exact size."""
        if self._captured is not None:
            return self._captured.feature_map(self.name, resolution(input_resolution))
        return elementwise(operator.floordiv, resolution(input_resolution), self.get_maximum_scale_factor())

    def is_border(self, input_resolution: Any,
                  receptive_field_provider: Callable[[EnrichedNetworkNode], Any] = receptive_field_provider,
                  filter_kernel_size_1: bool = False) -> bool:
        """Predicted unproductive: every input's feature map fits in the kernel, or every input
        already sees the whole image while this layer's min RF exceeds it."""
        res = resolution(input_resolution)
        if self._captured is not None and receptive_field_provider is _DEFAULT_PROVIDER:
            return self._captured.verdict(self.name, res, filter_kernel_size_1).border
        kernel = self.kernel_size
        if not is_scalar_inf(kernel) and self.predecessors and all(
                every_axis(operator.le, p.compute_feature_map_size(res), kernel) for p in self.predecessors):
            return True
        return (all(every_axis(operator.le, res, receptive_field_provider(p)) for p in self.predecessors)
                and every_axis(operator.lt, res, self.receptive_field_min)
                and not (filter_kernel_size_1 and every_axis(operator.eq, kernel, 1)))

    def is_in(self, container: Any) -> bool:
        keys = container.keys() if isinstance(container, dict) else container
        return any(x is self for x in keys)

    def __repr__(self) -> str:
        return (f"EnrichedNetworkNode(name={self.name!r}, "
                f"predecessors={[p.name for p in self.predecessors]}, "
                f"successors={[s.name for s in self.succecessors]}, layer_info={self.layer_info}, "
                f"receptive_field_min={self.receptive_field_min}, "
                f"receptive_field_max={self.receptive_field_max}, "
                f"receptive_field_sizes={self.receptive_field_sizes})")

    @classmethod
    def _from_capture(cls, name: str, layer_info: LayerDefinition, predecessors: list[EnrichedNetworkNode],
                      infos: Infos, captured: Any,
                      receptive_field_info_filter: Callable[[Infos], Infos] = noop_filter
                      ) -> EnrichedNetworkNode:
        """A node whose pairs foveal computed (dilation, upsampling, attention modelled)."""
        node = cls.__new__(cls)
        node.name, node.layer_info, node.predecessors = name, layer_info, list(predecessors)
        node.receptive_field_info_filter = receptive_field_info_filter
        node.succecessors = []
        node._captured = captured
        node._set_infos(receptive_field_info_filter(infos))
        node._join()
        return node
