"""TensorFlow's side of the front-end contract (foveal.frontend): a GraphDef, read without
TensorFlow (a tf.function or SavedModel is frozen by TensorFlow first)."""

from __future__ import annotations

from typing import Any

from ..errors import FovealError
from ..frontend import Conversion, Request
from ..input_spec import Form
from .convert import graph_from_graph_def


def convert(model: Any, request: Request) -> Conversion:
    if request.handlers:
        raise FovealError("handlers= applies to PyTorch modules only")
    graph = graph_from_graph_def(model, [request.input] if request.input else None)
    sizes = request.input_shape.spatial(len(graph.axes), Form.CHANNELS_LAST, None, "the TensorFlow graph")
    return Conversion(graph, sizes, request.input, request.output)
