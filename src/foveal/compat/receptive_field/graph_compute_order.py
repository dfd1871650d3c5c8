"""Topological order and feature-map sizes, as the receptive_field library computes them.

The order of a node is the length of the longest data path from a source to it (control inputs
`^name` do not count; `name:k` counts as `name`); the input node is a source. Sizes follow each
node's first data input through its (k, s, total padding), with height paired with the y
parameters (the reference pairs height with x, which is wrong for non-square layers).
"""

from __future__ import annotations

import collections
from typing import Any

from ...errors import GraphFormatError, quoted
from ...tensorflow.convert import NodeReader
from ...tensorflow.fields import data_inputs, source
from ...tensorflow.load import load_graph_def
from .parse_layer_parameters import node_layer, output_size

NodeInfo = collections.namedtuple("NodeInfo", ["order", "node", "input_size", "output_size"])


def parse_graph_nodes(graph_def: Any) -> dict[str, Any]:
    """Node name -> NodeDef."""
    return {node.name: node for node in load_graph_def(graph_def).node}


def get_compute_order(graph_def: Any, input_node_name: str = "", input_node_size: Any = None
                      ) -> tuple[collections.defaultdict, dict[str, Any]]:
    """(node_info, name_to_node): node_info maps each name to NodeInfo(order, node, input_size,
    output_size), inserted in the reference's depth-first post-order (ties in the order keep
    it). input_node_size is the input's [H, W] (or one size per spatial axis)."""
    graph_def = load_graph_def(graph_def)
    name_to_node = {node.name: node for node in graph_def.node}
    if input_node_name and input_node_name not in name_to_node:
        from ...errors import UnknownNodeError

        raise UnknownNodeError(input_node_name, name_to_node, what="input node")
    reader = NodeReader.of(graph_def, [input_node_name] if input_node_name else [])
    if input_node_size is not None and len(input_node_size) != reader.rank - 2:
        raise ValueError(f"input_node_size {list(input_node_size)} needs {reader.rank - 2} sizes, "
                         f"one per spatial axis of the input")
    node_info: collections.defaultdict = collections.defaultdict(NodeInfo)  # type: ignore[arg-type]
    for root in graph_def.node:
        _visit(root.name, name_to_node, node_info, reader, input_node_name, input_node_size)
    return node_info, name_to_node


def _data_sources(node: Any, name_to_node: dict[str, Any]) -> list[str]:
    sources = []
    for ref in data_inputs(node):
        name = source(ref)
        if name not in name_to_node:
            raise GraphFormatError(f"input {quoted(ref)} of node {quoted(node.name)} names no node of the "
                                   f"GraphDef")
        sources.append(name)
    return sources


def _visit(root: str, name_to_node: dict[str, Any], node_info: dict[str, Any], reader: NodeReader,
           input_name: str, input_size: Any) -> None:
    """Iterative depth-first post-order from `root` (a recursive walk overflows on deep nets)."""
    if root in node_info:
        return
    stack: list[tuple[str, list[str]]] = [(root, [])]
    on_stack = {root}
    while stack:
        name, _ = stack[-1]
        node = name_to_node[name]
        sources = [] if name == input_name else _data_sources(node, name_to_node)
        pending = next((s for s in sources if s not in node_info), None)
        if pending is not None:
            if pending in on_stack:
                raise GraphFormatError(f"the GraphDef has a cycle through {quoted(pending)} and "
                                       f"{quoted(name)} (loops are not supported)")
            stack.append((pending, []))
            on_stack.add(pending)
            continue
        stack.pop()
        on_stack.discard(name)
        if name == input_name:
            node_info[name] = NodeInfo(0, node, None, None if input_size is None else list(input_size))
            continue
        order = max((node_info[s].order + 1 for s in sources), default=0)
        size_in = node_info[sources[0]].output_size if sources else None
        size_out = None
        if size_in is not None:
            layer = node_layer(reader, node, tuple(size_in))
            if layer is not None:
                sizes = output_size(*layer, tuple(size_in))
                size_out = None if sizes is None else list(sizes)
        node_info[name] = NodeInfo(order, node, size_in, size_out)
