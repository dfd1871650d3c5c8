"""ONNX's side of the front-end contract (foveal.frontend): a ModelProto or a `.onnx` file."""

from __future__ import annotations

from typing import Any

from ..errors import FovealError
from ..frontend import Conversion, Request
from ..graph import split_ref
from .load import read_model


def convert(model: Any, request: Request) -> Conversion:
    if request.handlers:
        raise FovealError("handlers= applies to PyTorch modules only")
    shapes = request.input_shape
    raw: Any = None
    if shapes.by_name is not None:
        raw = {k: (v.sizes[0] if v.one_for_all else v.sizes) for k, v in shapes.by_name.items()}
    elif shapes.one is not None:
        raw = shapes.one.sizes[0] if shapes.one.one_for_all else shapes.one.sizes
    model = read_model(model)
    from .convert import Converter  # numpy: importable once onnx is

    converter = Converter(model, request.input, raw)
    graph = converter.graph()
    output = request.output
    if output is not None and output not in graph and output in converter.refs:
        output = split_ref(converter.refs[output])[0]
    return Conversion(graph, converter.spatial_size, converter.refs[converter.input], output)
