"""The core's own front-end: a foveal Graph, a foveal JSON graph file, or a zoo name.

A graph has no tensor layout of its own, so a full input shape is read as (N, C, *spatial); a
zoo graph has its model's (channels last for the keras.* graphs) and checks the channel count.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import graph_json, zoo
from .errors import FovealError
from .frontend import Conversion, Request
from .graph import Graph
from .input_spec import Form

OTHER_FILES = {
    **dict.fromkeys((".keras", ".h5", ".hdf5"), (
        "a Keras file: foveal reads Keras models as objects; load it with "
        "keras.saving.load_model(path) and pass the model to foveal.receptive_field")),
    **dict.fromkeys((".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle"), (
        "a pickled file, which foveal never unpickles (it can run code); build the model in Python "
        "and pass it, or save it with torch.export (.pt2) and analyse that")),
}
"""Model files foveal does not read as a path, and what to do instead (rather than failing to
read them as a foveal JSON graph)."""


def load_model(model: Any) -> Graph:
    """A foveal Graph, a path to a foveal JSON graph, or the name of a zoo model (`foveal zoo`)."""
    if isinstance(model, Graph):
        return model
    if isinstance(model, (str, os.PathLike)):
        text = str(model)
        if zoo.is_zoo_name(text):
            return zoo.load(text)
        path = Path(text)
        hint = OTHER_FILES.get(path.suffix.lower())
        if hint:
            raise FovealError(f"{text!r}: {hint}")
        if text.lower().endswith((".json", ".json.gz")) or path.exists():
            return graph_json.load(path)
        raise FovealError(f"{text!r} is neither a graph file nor a zoo model{zoo.suggest(text)}")
    raise FovealError(f"cannot analyse a {type(model).__name__}: pass a foveal Graph, a path to a "
                      f"foveal JSON graph, or the name of a zoo model")


def convert(model: Any, request: Request) -> Conversion:
    if request.handlers:
        raise FovealError("handlers= applies to models read from a framework (PyTorch, Keras, ONNX, "
                          "TensorFlow); a foveal graph already names its ops")
    if zoo.is_zoo_name(model):
        entry = zoo.entry(model)
        graph = zoo.load(model)
        form = Form.CHANNELS_LAST if entry.channels_last else Form.CHANNELS_FIRST
        sizes = request.input_shape.spatial(len(graph.axes), form, entry.channels, f"zoo model {model!r}")
        return Conversion(graph, zoo.input_size(model, sizes), request.input, request.output)
    graph = load_model(model)
    sizes = request.input_shape.spatial(len(graph.axes), Form.CHANNELS_FIRST, None,
                                        f"graph {graph.name!r}" if graph.name else "the graph")
    return Conversion(graph, sizes, request.input, request.output)
