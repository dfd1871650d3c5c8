"""rfa_toolbox's graph queries: border and critical layers, and the input-resolution range.

Fixed against rfa_toolbox: every function works per axis on tuple receptive fields (rfa raises
TypeError there), `lower_bound` gives one value per axis (rfa reuses axis 0, and fails for three
axes), and the number of axes of a graph with tuple receptive fields is its own (`cardinality` only
sizes the answer for graphs built from scalars). Captured graphs answer with foveal's verdicts.
"""

from __future__ import annotations

import operator
from typing import Any

from ..graphs import (
    EnrichedNetworkNode,
    _length,
    elementwise,
    every_axis,
    is_infinite,
    is_scalar_inf,
    reduce_axes,
    resolution,
    some_axis,
)


def obtain_all_nodes(output_node: EnrichedNetworkNode) -> list[EnrichedNetworkNode]:
    return output_node.all_layers


def filters_non_convolutional_node(nodes: list[EnrichedNetworkNode]) -> list[EnrichedNetworkNode]:
    """The nodes whose min receptive field is finite on every axis."""
    return [n for n in nodes if not is_infinite(n.receptive_field_min)]


def filters_non_infinite_rf_sizes(values: list[Any]) -> list[Any]:
    return [v for v in values if not is_infinite(v)]


def filter_layers_not_expanding_receptive_field(nodes: list[EnrichedNetworkNode]
                                                ) -> list[EnrichedNetworkNode]:
    """Drop the nodes whose kernel is infinite or 1 on every axis."""
    return [n for n in nodes
            if not _all_equal(n.kernel_size, float("inf")) and not _all_equal(n.kernel_size, 1)]


def _all_equal(value: Any, target: Any) -> bool:
    return all(v == target for v in value) if isinstance(value, tuple) else value == target


def obtain_border_layers(output_node: EnrichedNetworkNode, input_resolution: Any,
                         filter_dense: bool = True) -> list[EnrichedNetworkNode]:
    """Layers predicted unproductive at `input_resolution`; filter_dense leaves out layers with
    an infinite receptive field."""
    found = [n for n in obtain_all_nodes(output_node) if n.is_border(input_resolution)]
    return filters_non_convolutional_node(found) if filter_dense else found


def obtain_all_critical_layers(output_node: EnrichedNetworkNode, input_resolution: Any,
                               filter_dense: bool = True) -> list[EnrichedNetworkNode]:
    """Layers whose min receptive field exceeds the resolution on every axis."""
    res = resolution(input_resolution)
    found = [n for n in obtain_all_nodes(output_node)
             if every_axis(operator.gt, n.receptive_field_min, res)]
    return filters_non_convolutional_node(found) if filter_dense else found


def obtain_partially_critical_layers(output_node: EnrichedNetworkNode, input_resolution: Any,
                                     filter_dense: bool = True) -> list[EnrichedNetworkNode]:
    """Layers whose min receptive field exceeds the resolution on some axes but not all (yellow)."""
    res = resolution(input_resolution)
    found = [n for n in obtain_all_nodes(output_node)
             if some_axis(operator.gt, n.receptive_field_min, res)
             and not every_axis(operator.gt, n.receptive_field_min, res)]
    return filters_non_convolutional_node(found) if filter_dense else found


def unproductive_resolution(node: EnrichedNetworkNode) -> Any:
    """Per axis, the smallest min RF among the node's inputs (0 without inputs)."""
    if not node.predecessors:
        return 0
    return reduce_axes(min, [p.receptive_field_min for p in node.predecessors])


def find_smallest_resolution_with_no_unproductive_layer(graph: EnrichedNetworkNode) -> Any:
    """Per axis, the largest unproductive_resolution over the layers that expand the RF."""
    values = [unproductive_resolution(n)
              for n in filter_layers_not_expanding_receptive_field(obtain_all_nodes(graph))]
    return reduce_axes(max, values) if values else 0


def _finite_sizes(node: EnrichedNetworkNode) -> list[Any]:
    return filters_non_infinite_rf_sizes(node.receptive_field_sizes)


def input_resolution_range(graph: EnrichedNetworkNode, filter_all_inf_rf: bool = True,
                           filter_kernel_size_1: bool = False, cardinality: int = 2,
                           lower_bound: bool = False) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(min_res, max_res) per axis: below min_res some layers are unproductive; above max_res
    the input may hold patterns larger than any feature extractor's receptive field."""
    captured = graph._captured
    if captured is not None:
        found = captured.resolution_range(filter_all_inf_rf, filter_kernel_size_1, lower_bound)
        return found.minimum, found.maximum
    nodes = obtain_all_nodes(graph)
    n_axes = _length(*(v for n in nodes for v in (n.receptive_field_min, n.kernel_size))) or cardinality
    finite = filters_non_convolutional_node(nodes)
    kernel_terms = [_mul(n.kernel_size, _input_stride(n)) for n in finite]
    if filter_kernel_size_1:
        finite = [n for n in finite if not _all_equal(n.kernel_size, 1)]
    if filter_all_inf_rf:
        lows = [reduce_axes(min, s) if (s := _finite_sizes(n)) else 0 for n in finite]
        highs = [reduce_axes(max, s) if (s := _finite_sizes(n)) else 0 for n in finite]
    else:
        lows = [p.receptive_field_min for n in finite for p in n.predecessors]
        highs = [n.receptive_field_max for n in finite]

    def axis_max(values: list[Any], axis: int) -> Any:
        return max((v[axis] if isinstance(v, tuple) else v for v in values), default=0)

    maximum = tuple(axis_max(highs, i) for i in range(n_axes))
    if lower_bound:
        smallest = find_smallest_resolution_with_no_unproductive_layer(graph)
        minimum = tuple(max(axis_max([smallest], i), axis_max(kernel_terms, i)) for i in range(n_axes))
    else:
        minimum = tuple(axis_max(lows + kernel_terms, i) for i in range(n_axes))
    return minimum, maximum


def _input_stride(node: EnrichedNetworkNode) -> Any:
    """The largest cumulative stride of the node's inputs (rfa_toolbox uses the node's own, which
    includes its stride and over-asks: a 16x16/16 patch embedding would need 256 pixels)."""
    if not node.predecessors:
        return 1
    return reduce_axes(max, [p.get_maximum_scale_factor() for p in node.predecessors])


def _mul(kernel: Any, stride: Any) -> Any:
    if is_scalar_inf(kernel):
        return kernel
    return elementwise(operator.mul, kernel, stride)
