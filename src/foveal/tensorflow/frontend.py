"""TensorFlow's side of the front-end contract (foveal.frontend): a GraphDef, read without
TensorFlow (a tf.function or SavedModel is frozen by TensorFlow first, `load`).

The input shape is read in the layout the converter reads the graph in: NHWC (channels last),
or NCHW when every op with a `data_format` says NC (NCHW / NCDHW), which is when the input's
consumers do; the placeholder's recorded channel count, when known, is checked against it.
`handlers=` are extra entries of the op table (`convert.TABLE`), keyed by TF op name.

`expected` stays empty: a GraphDef records no computed tensor sizes (`_output_shapes` only on
request, and never the sizes of the shape the caller gives), and computing them would mean
running TensorFlow. The tests compare foveal's sizes with TensorFlow's shape inference instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..frontend import Conversion, Request
from ..input_spec import Form, InputRequest
from ..ops import printable
from . import fields as F
from .convert import Converter
from .load import load_graph_def

HINT = ("register a handler by TensorFlow op name, e.g. receptive_field(model, shape, "
        "handlers={'TheOpName': foveal.conv(3, padding=1)})")
WHAT = "the TensorFlow graph"


def convert(model: Any, request: Request) -> Conversion:
    converter = Converter(load_graph_def(model), [request.input] if request.input else None, request.handlers)
    form = Form.CHANNELS_FIRST if converter.channels_first else Form.CHANNELS_LAST
    graph = converter.graph()
    if isinstance(model, (str, os.PathLike)):  # a GraphDef has no name: the file's (or folder's)
        path = Path(model)
        stem = (path.with_suffix("") if path.suffix.lower() == ".gz" else path).stem
        graph.name = stem if stem and printable(stem) else graph.name
    sizes = input_sizes(request.input_shape, converter, form, len(graph.axes))
    return Conversion(graph, sizes, request.input, request.output, {}, "TensorFlow", HINT)


def input_sizes(shapes: InputRequest, converter: Converter, form: Form, n_axes: int) -> Any:
    """The spatial sizes for the engine: None, a tuple (for the input analysed) or a dict by
    input name, each full shape read in `form` and checked against its placeholder's channels."""
    if shapes.by_name is not None:
        return {name: spec.spatial(n_axes, form, channels(converter, name, form, n_axes),
                                   f"input {name!r} of {WHAT}")
                for name, spec in shapes.by_name.items()}
    if shapes.one is None:
        return None
    return shapes.one.spatial(n_axes, form, channels(converter, converter.inputs[0], form, n_axes), WHAT)


def channels(converter: Converter, name: str, form: Form, n_axes: int) -> int | None:
    """The channel count the input node `name` records (None: not recorded, or not a node)."""
    node = converter.nodes.get(name)
    shape = None if node is None else F.attr_shape(node, "shape")
    if shape is None or len(shape) != form.rank(n_axes):
        return None
    count = shape[form.channel_dim(len(shape))]  # type: ignore[index]
    return None if count == -1 else count
