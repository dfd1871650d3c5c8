"""ONNX's side of the front-end contract (foveal.frontend): a ModelProto or a `.onnx` file.

`input_shape` is resolved against the input's layout (channels first; channels last for the
NHWC input of a tf2onnx model, found by its Transpose); `handlers` are op-table entries keyed
by op type, or "domain::OpType" outside ONNX's own domains (onnx/handlers.py).

No `expected` sizes: the shapes ONNX's inference gives are not exact enough to call a
difference foveal's bug. For ops it cannot infer (other domains, control flow) they are the
model's own declared shapes, which a model may get wrong, and Upsample and Resize-10 follow
onnxruntime's sizes where the spec's inference differs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..frontend import Conversion, Request
from ..graph import split_ref
from ..ops import printable
from .load import read_model

EXPORTER_NAMES = frozenset(["", "main_graph", "torch_jit", "torch-jit-export", "tf2onnx", "onnx"])
"""Graph names exporters write whatever the model (torch.onnx, tf2onnx): a file read by path is
named after the file instead."""

HINT = ("register a handler, e.g. receptive_field(model, shape, handlers={'OpType' or "
        "'domain::OpType': foveal.conv(3, padding=1)})")


def convert(model: Any, request: Request) -> Conversion:
    source = model
    model = read_model(model)
    from .convert import Converter  # numpy: importable once onnx is

    converter = Converter(model, request.input, request.input_shape, request.handlers)
    graph = converter.graph()
    if isinstance(source, (str, os.PathLike)) and model.graph.name in EXPORTER_NAMES:
        stem = Path(source).stem
        graph.name = stem if stem and printable(stem) else graph.name
    output = request.output
    if output is not None and output not in graph and output in converter.refs:
        output = split_ref(converter.refs[output])[0]
    return Conversion(graph, converter.spatial_size, converter.refs[converter.input], output,
                      framework="ONNX", handler_hint=HINT)
