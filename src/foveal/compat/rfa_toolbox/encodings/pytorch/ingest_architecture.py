"""rfa_toolbox.encodings.pytorch.ingest_architecture: `create_graph_from_model` and `make_graph`.

rfa_toolbox walks the TorchScript graph of `torch.jit.trace(model)`; foveal captures the model
itself (torch.fx or torch.export on meta tensors). `make_graph(traced, ref_mod=model)` therefore
analyses `ref_mod` at the shape the module was traced with and returns a `Digraph` holding
foveal's layers and edges; its node counts are foveal's, not TorchScript's.
"""

from __future__ import annotations

from typing import Any

from .....errors import FovealError
from ...pytorch import _filter, create_graph_from_pytorch_model
from .intermediate_graph import Digraph

create_graph_from_model = create_graph_from_pytorch_model
"""rfa_toolbox's name for create_graph_from_pytorch_model."""

DEFAULT_INPUT = (1, 3, 399, 399)


def traced_input_shape(mod: Any) -> tuple[int, ...]:
    """The input shape a torch.jit.trace'd module was traced with (rfa_toolbox's 399 x 399 default
    when the graph does not say)."""
    graph = getattr(mod, "graph", None)
    inputs = list(graph.inputs()) if graph is not None else []
    if len(inputs) > 1:
        try:
            sizes = inputs[1].type().sizes()
        except (AttributeError, RuntimeError):
            sizes = None
        if sizes and all(isinstance(v, int) for v in sizes):
            return tuple(sizes)
    return DEFAULT_INPUT


def make_graph(mod: Any, classes_to_visit: Any = None, classes_found: Any = None, dot: Digraph | None = None,
               prefix: str = "", input_preds: Any = None, parent_dot: Any = None, ref_mod: Any = None,
               classes_to_not_visit: Any = None, filter_rf: Any = None) -> Digraph:
    """A Digraph of the model: `ref_mod` (the module `mod` was traced from) analysed by foveal at
    the traced input shape. classes_to_not_visit are custom_layers; classes_to_visit, prefix and
    the recursion arguments are rfa_toolbox's TorchScript walk and have no effect here."""
    model = mod if ref_mod is None else ref_mod
    if type(model).__module__.startswith("torch.jit"):
        raise FovealError("make_graph needs the module a TorchScript graph was traced from: "
                          "make_graph(torch.jit.trace(model, x), ref_mod=model)")
    output = create_graph_from_pytorch_model(model, filter_rf=filter_rf, input_res=traced_input_shape(mod),
                                             custom_layers=list(classes_to_not_visit or ()))
    if dot is None:
        dot = Digraph(ref_mod=model, format="svg", filter_rf=_filter(filter_rf))
    for node in output.all_layers:
        dot.layer_definitions[node.name] = node.layer_info
        dot.edge_collection.extend((p.name, node.name) for p in node.predecessors)
    dot._output = output
    return dot


__all__ = ["create_graph_from_model", "make_graph", "traced_input_shape"]
