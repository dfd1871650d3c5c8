"""rfa_toolbox.encodings.pytorch.intermediate_graph: `Digraph`, the graphviz-like recorder that
rfa_toolbox fills while walking a TorchScript graph and turns into nodes with `to_graph()`.

Here it records layers (`node`) and edges (`edge`) the same way and builds hand-made nodes from
them. `make_graph` returns one filled from foveal's capture instead of TorchScript; its
`to_graph()` gives foveal's nodes (exact numbers, one node per layer, so node counts differ from
rfa_toolbox's TorchScript encoding: docs/compat-rfa-toolbox.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...graphs import KNOWN_FILTER_MAPPING, EnrichedNetworkNode, Infos, LayerDefinition


@dataclass
class Digraph:
    """Layers and edges by node id; `to_graph()` makes EnrichedNetworkNodes of them."""

    ref_mod: Any
    format: str = ""
    graph_attr: dict[str, str] = field(default_factory=dict)
    edge_collection: list[tuple[str, str]] = field(default_factory=list)
    layer_definitions: dict[str, LayerDefinition] = field(default_factory=dict)
    filter_rf: Callable[[Infos], Infos] = KNOWN_FILTER_MAPPING[None]
    _output: EnrichedNetworkNode | None = field(default=None, repr=False)

    # -- graphviz.Digraph's calls, as rfa_toolbox's recorder takes them --------------------
    def attr(self, *args: Any, **kwargs: Any) -> None:
        """graphviz's call; records nothing."""

    def edge(self, node_id1: str, node_id2: str) -> None:
        self.edge_collection.append((node_id1, node_id2))

    def node(self, name: str, label: str | None = None, shape: str = "box", style: str | None = None,
             kernel_size: Any = None, stride_size: Any = None, units: int | None = None,
             filters: int | None = None) -> None:
        """A layer: its label names it; kernel None is a dense layer, as in LayerDefinition."""
        self.layer_definitions[name] = LayerDefinition(label if label is not None else name, kernel_size,
                                                       stride_size, filters, units)

    def subgraph(self, name: str | None = None, **kwargs: Any) -> Digraph:
        return self

    def __enter__(self) -> Digraph:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    # -- building nodes ---------------------------------------------------------------------
    def _find_predecessors(self, name: str) -> list[str]:
        return [a for a, b in self.edge_collection if b == name]

    def _check_for_lone_node(self, resolved_nodes: dict[str, EnrichedNetworkNode]) -> None:
        """Warn about nodes without predecessors and successors (control flow that skipped them)."""
        for node in resolved_nodes.values():
            if not node.predecessors and not node.succecessors:
                warnings.warn(f"Found a node with no predecessors and no successors: "
                              f"'{node.layer_info.name}', this may be caused by some control-flow in "
                              f"this node disabling any processing within the node.", UserWarning,
                              stacklevel=2)

    def to_graph(self) -> EnrichedNetworkNode:
        """The output node: foveal's for a Digraph from make_graph; else the last node built from
        the recorded layers, each built once its predecessors are."""
        if self._output is not None:
            return self._output
        preds = {name: self._find_predecessors(name) for name in self.layer_definitions}
        resolved: dict[str, EnrichedNetworkNode] = {}
        last = None
        progress = True
        while progress and len(resolved) < len(preds):
            progress = False
            for name, before in preds.items():
                if name not in resolved and all(p in resolved for p in before):
                    last = resolved[name] = EnrichedNetworkNode(
                        name, self.layer_definitions[name], [resolved[p] for p in before],
                        receptive_field_info_filter=self.filter_rf)
                    progress = True
        if last is None:
            raise ValueError("the Digraph holds no layer")
        self._check_for_lone_node(resolved)
        return last


__all__ = ["Digraph"]
