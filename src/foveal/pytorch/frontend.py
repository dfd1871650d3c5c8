"""PyTorch's side of the front-end contract (foveal.frontend): a module or a `.pt2` program."""

from __future__ import annotations

import os
from typing import Any

from ..errors import FovealError
from ..frontend import Conversion, Request
from . import graph_from_module, graph_from_pt2

HINT = ("register a handler, e.g. receptive_field(model, shape, handlers={TheModuleClass or "
        "the_function: foveal.conv(3, padding=1)})")


def convert(model: Any, request: Request) -> Conversion:
    shape_request = request.input_shape
    if shape_request.by_name is not None:
        raise FovealError("a PyTorch model is analysed from its first tensor argument: give one input_shape, "
                          "not a dict")
    spec = shape_request.one
    if isinstance(model, (str, os.PathLike)):
        full = None if spec is None else spec.full("a .pt2 program")
        graph, expected, shape = graph_from_pt2(model, full, request.handlers)
    else:
        if spec is None:
            raise FovealError("a PyTorch module needs input_shape, e.g. (1, 3, 224, 224): the "
                              "graph is captured by running the model on a meta tensor of that shape")
        shape = spec.full("a PyTorch module")
        graph, expected = graph_from_module(model, shape, request.handlers, request.capture)
    spatial = tuple(shape[2:]) if len(shape) >= 3 else tuple(shape[1:])
    return Conversion(graph, spatial, request.input, request.output, expected, "PyTorch", HINT)
