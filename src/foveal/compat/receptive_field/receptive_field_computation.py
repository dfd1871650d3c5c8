"""`compute_receptive_field_from_graph_def` and `ReceptiveField`, as in the receptive_field library.

The backward pass is the reference's (spec: shared/spec/google_receptive_field.md §2.5-2.6): nodes
in decreasing topological order, R_in = s*R + k - s, S_in = s*S, P_in = s*P + p, the per-axis
max-RF merge, the four alignment ValueErrors, and one sticky "undefined padding" flag that turns
every later padding into None and skips later alignment checks. So on every graph the reference
supports the results, the None paddings and the errors are the same.

Where the reference is wrong foveal is right: dilation counts (k' = d(k-1)+1), sizes pair height
with y, weights are found by edge (frozen graphs, Keras depthwise kernels), NCHW, and `name:k`
inputs work. Graphs with ops that have no (k, s, p) (upsampling, transposed convolution, global
pooling) are answered by foveal's exact engine instead, with the same error on misalignment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ... import api
from ... import ops as O
from ...errors import UnknownNodeError
from ...graph import Graph
from ...tensorflow.convert import Converter
from ...tensorflow.load import load_graph_def
from .graph_compute_order import get_compute_order
from .parse_layer_parameters import AxisParams, axis_params

log = logging.getLogger("foveal.compat.receptive_field")


class ReceptiveField:
    """size, stride and padding per axis, x (width) first; iterating gives size, then stride,
    then padding, so `rf_x, rf_y, sx, sy, px, py = ReceptiveField(...)` unpacks."""

    def __init__(self, size: Any, stride: Any, padding: Any) -> None:
        self.size = np.asarray(size)
        self.stride = np.asarray(stride)
        self.padding = np.asarray(padding)

    def __iter__(self) -> Iterator[Any]:
        return iter(np.concatenate([self.size, self.stride, self.padding]))

    def __repr__(self) -> str:
        return (f"ReceptiveField(size={self.size.tolist()}, stride={self.stride.tolist()}, "
                f"padding={self.padding.tolist()})")

    def _axes(self, coords: Any, axis: Iterable[int] | None, what: str) -> tuple[Any, list[int]]:
        coords = np.asarray(coords)
        axes = list(range(len(self.size)) if axis is None else axis)
        if coords.shape[-1] != len(axes):
            raise ValueError(f"Dimensionality of the {what} (={coords.shape[-1]}) does not match "
                             f"dimensionality of `axis` (={len(axes)})")
        return coords, axes

    def compute_input_center_coordinates(self, y: Any, axis: Iterable[int] | None = None) -> Any:
        """Centre of the region of feature `y`: -P + y*S + (R - 1)/2."""
        y, axes = self._axes(y, axis, "feature coordinates `y`")
        return -self.padding[axes] + y * self.stride[axes] + (self.size[axes] - 1) / 2

    def compute_feature_coordinates(self, x: Any, axis: Iterable[int] | None = None) -> Any:
        """The feature whose region is centred at input position `x`: (x + P - (R - 1)/2) / S."""
        x, axes = self._axes(x, axis, "input center coordinates `x`")
        return (x + self.padding[axes] + (1 - self.size[axes]) / 2) / self.stride[axes]


def _name(node: Any) -> str:
    """A node name from a name, a `name:0` tensor name or a tf.Tensor (its op's name)."""
    op = getattr(node, "op", None)
    name = op.name if op is not None and hasattr(op, "name") else str(node)
    base, sep, slot = name.rpartition(":")
    return base if sep and slot.isdigit() else name


def _sinks(graph_def: Any) -> list[str]:
    """Nodes no other node reads: the candidates for an output node."""
    read = {_name(i.lstrip("^")) for n in graph_def.node for i in n.input}
    return [n.name for n in graph_def.node if n.name not in read]


def compute_receptive_field_from_graph_def(graph_def: Any, input_node: Any, output_node: Any,
                                           stop_propagation: Iterable[str] | None = None,
                                           input_resolution: Any = None) -> ReceptiveField:
    """Receptive field of `output_node`'s features in the coordinates of `input_node`'s output.

    graph_def: GraphDef, tf.Graph, or a .pb/.pbtxt path. stop_propagation: name prefixes whose
    edges are cut. input_resolution: [H, W] of the input; without it SAME paddings that depend
    on the size are None. Raises ValueError for unknown nodes or ops and misaligned graphs.
    """
    graph_def = load_graph_def(graph_def)
    input_name, output_name = _name(input_node), _name(output_node)
    names = [n.name for n in graph_def.node]
    known = set(names)
    for name, what in ((output_name, "Output"), (input_name, "Input")):
        if name not in known:  # with the few names that fit when none is close: placeholders, sinks
            listed = [n.name for n in graph_def.node if n.op == "Placeholder"] if what == "Input" else \
                _sinks(graph_def)
            error = UnknownNodeError(name, names, what=f"{what.lower()} node", listed=listed)
            raise ValueError(f"{what} node was not found: {error}")
    prefixes = tuple(stop_propagation or ())
    graph = Converter(graph_def, [input_name]).graph()
    relevant = _relevant(graph, output_name, prefixes)
    if input_name not in relevant:
        raise ValueError(f"Input node was not found: {output_name!r} does not depend on {input_name!r}"
                         + (" through edges not cut by stop_propagation" if prefixes else ""))
    for name in relevant:
        op = graph.nodes[name].op
        if isinstance(op, O.Unknown):
            tf_op = graph.nodes[name].label or ""
            detail = op.name[len(tf_op):] if op.name.startswith(tf_op) else f" ({op.name})"
            raise ValueError(f"Unknown layer for operation '{name}': {tf_op}{detail}")
    if input_resolution is not None:
        input_resolution = tuple(input_resolution)
    analysis = api.receptive_field(graph, input_resolution, input=input_name, output=output_name,
                                   stop_propagation=prefixes)
    layers = {}
    for name in relevant:
        node = graph.nodes[name]
        sizes = analysis[node.sources[0]].output_shape if node.sources else input_resolution
        params = axis_params(node.op, tuple(sizes) if sizes else (None,) * len(graph.axes))
        if params is None:
            return _exact(analysis, output_name)
        layers[name] = params
    node_info, _ = get_compute_order(graph_def, input_name)
    walk = sorted(relevant, key=lambda n: -node_info[n].order)
    return _backward(graph, walk, layers, input_name, output_name, prefixes)


def _relevant(graph: Graph, output: str, prefixes: tuple[str, ...]) -> list[str]:
    """The output and everything it reads through edges not cut by stop_propagation."""
    if output not in graph.nodes:
        return []
    seen, stack = {output}, [output]
    while stack:
        node = graph.nodes[stack.pop()]
        for ref, source in zip(node.inputs, node.sources):
            if source not in seen and not ref.startswith(prefixes):
                seen.add(source)
                stack.append(source)
    return [n for n in graph.nodes if n in seen]


AXIS_WORDS = ("horizontal", "vertical", "depth")
"""The reference's names for x and y (and, beyond it, z), in its x-first order."""


def _backward(graph: Graph, walk: list[str], layers: dict[str, list[AxisParams]], input_name: str,
              output_name: str, prefixes: tuple[str, ...]) -> ReceptiveField:
    """The reference's backward pass; per axis in x-first order (reversed graph axes)."""
    axes = len(graph.axes)
    values: dict[str, list[tuple[int, int, int | None]]] = {output_name: [(1, 1, 0)] * axes}
    undefined = False
    for name in walk:
        if name == input_name:
            break
        if name not in values:
            continue
        params = layers[name][::-1]
        if not undefined and any(p is None for _, _, p, _ in params):
            undefined = True
            log.warning("Padding of %r depends on the input size, which is unknown; later paddings "
                        "are None and the alignment check is skipped. If you know the input "
                        "resolution, please set it.", name)
        candidate = [(s * r + k - s, s * j, None if undefined or p is None or pad is None else s * pad + p)
                     for (k, s, p, _), (r, j, pad) in zip(params, values[name])]
        node = graph.nodes[name]
        for ref, source in zip(node.inputs, node.sources):
            if ref.startswith(prefixes):
                continue
            old = values.get(source)
            if old is None:
                values[source] = list(candidate)
                continue
            if not undefined:
                _check_aligned(old, candidate)
            values[source] = [new if new[0] > was[0] else was for was, new in zip(old, candidate)]
    if input_name not in values:
        raise ValueError("Input node was not found")
    found = values[input_name]
    return ReceptiveField([v[0] for v in found], [v[1] for v in found], [v[2] for v in found])


def _check_aligned(old: list[Any], new: list[Any]) -> None:
    """Equal effective stride, then equal centre offset (R - 1)/2 - P, x before y."""
    for (_, s_old, _), (_, s_new, _), word in zip(old, new, AXIS_WORDS):
        if s_old != s_new:
            raise ValueError("Graph is not aligned since effective stride from different paths is "
                             f"different in {word} direction")
    for (r_old, _, p_old), (r_new, _, p_new), word in zip(old, new, AXIS_WORDS):
        if (r_old - 1) / 2 - p_old != (r_new - 1) / 2 - p_new:
            raise ValueError("Graph is not aligned since center shift from different paths is "
                             f"different in {word} direction")


def _exact(analysis: Any, output_name: str) -> ReceptiveField:
    """foveal's engine, for graphs beyond the reference's ops; misalignment still raises."""
    result = analysis[output_name]
    if result.aligned is False:
        raise ValueError(f"Graph is not aligned: {result.misalignment}")
    return ReceptiveField(result.size[::-1], result.stride[::-1], result.padding[::-1])
