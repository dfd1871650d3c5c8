"""The one entry point: `receptive_field(model, input_shape=None, **options)`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import graph_json, zoo
from .analysis import Analysis
from .engine import Options
from .errors import FovealError, UnsupportedOpError
from .graph import Graph
from .keras import is_keras_model
from .onnx import is_onnx_model


def _is_torch_module(model: Any) -> bool:
    """Without importing torch: only a loaded torch can have made the object."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def load_model(model: Any) -> Graph:
    """A foveal Graph, a path to a foveal JSON graph, or the name of a zoo model (`foveal zoo`)."""
    if isinstance(model, Graph):
        return model
    if isinstance(model, (str, os.PathLike)):
        text = str(model)
        if zoo.is_zoo_name(text):
            return zoo.load(text)
        path = Path(text)
        if path.suffix.lower() == ".json" or path.exists():
            return graph_json.load(path)
        raise FovealError(f"{text!r} is neither a graph file nor a zoo model{zoo.suggest(text)}")
    raise FovealError(f"cannot analyse a {type(model).__name__}: pass a foveal Graph, a path to a "
                      f"foveal JSON graph, or the name of a zoo model")


def receptive_field(model: Any, input_shape: int | Iterable[int] | Mapping[str, Any] | None = None,
                    *, input: str | None = None, output: str | None = None,
                    stop_propagation: Iterable[str] | None = None,
                    unknown_policy: str = "error", handlers: Mapping[Any, Any] | None = None,
                    capture: str = "auto") -> Analysis:
    """Receptive field of every node of `model` with respect to one input.

    input_shape: spatial sizes (an int for every axis, a tuple per axis, or N, C and the spatial
    sizes); a dict gives one per input node. Without it, sizes and strides are still exact and
    paddings that depend on the input size are None.
    input / output: node names (defaults: the first input node, the last output).
    stop_propagation: cut every edge whose source name starts with one of these prefixes.
    unknown_policy: 'error' (default), 'identity' or 'global' for ops foveal cannot express;
    results downstream of a lenient choice are marked as bounds.
    handlers: PyTorch only; extra op-table entries (see foveal.pytorch.graph_from_module).
    capture: PyTorch only; 'auto' (torch.fx; torch.export when fx cannot trace or leaves unknown
    ops that export decomposes), 'fx' or 'export'.

    A torch.nn.Module needs input_shape as (N, C, *spatial); it is captured on meta tensors (no
    weight is read) and its nodes are named by module path. A `.pt2` file (a saved
    torch.export program) is read without unpickling anything. A TensorFlow GraphDef (message,
    tf.Graph, `.pb` or `.pbtxt`, gzipped or not) is read without TensorFlow; a tf.function with an
    input_signature, a concrete function or a SavedModel directory is frozen by TensorFlow first.
    input_shape is the spatial size (the placeholder's recorded shape is not used, as in the
    receptive_field library), and `input` names the input node (default: every Placeholder of
    rank 3 or more). A Keras 3 model (any backend) takes spatial sizes or its full input shape in
    its own layout; without input_shape its declared sizes are used when they are fixed. An ONNX
    model (ModelProto or `.onnx` path) is read without running it, structure only; input_shape
    is the spatial size or the full input shape, by default the declared size when fixed, and
    `input` / `output` take node or tensor names.
    """
    if is_onnx_model(model):
        from .onnx import analyse as analyse_onnx

        return analyse_onnx(model, input_shape, input=input, output=output, stop_propagation=stop_propagation,
                            unknown_policy=unknown_policy, handlers=handlers)
    if _is_graph_def(model):
        from .tensorflow.convert import graph_from_graph_def

        model = graph_from_graph_def(model, [input] if input else None)
    elif is_keras_model(model):
        from .keras import analyse

        return analyse(model, input_shape, input=input, output=output, stop_propagation=stop_propagation,
                       unknown_policy=unknown_policy, handlers=handlers)
    elif _is_torch_module(model) or _is_pt2(model):
        return _analyse_torch(model, input_shape, input=input, output=output,
                              stop_propagation=stop_propagation, unknown_policy=unknown_policy,
                              handlers=handlers, capture=capture)
    if handlers:
        raise FovealError("handlers= applies to PyTorch modules only")
    if zoo.is_zoo_name(model):
        input_shape = zoo.input_size(model, input_shape)
    graph = load_model(model)
    if isinstance(stop_propagation, str):
        stop_propagation = [stop_propagation]
    options = Options(input, input_shape if not isinstance(input_shape, Iterable) or isinstance(
        input_shape, Mapping) else tuple(input_shape), tuple(stop_propagation or ()), unknown_policy)
    return Analysis(graph, options, output)


GRAPH_DEF_SUFFIXES = (".pb", ".pbtxt", ".pb.gz", ".pbtxt.gz")


def _is_graph_def(model: Any) -> bool:
    """A TensorFlow GraphDef message, a tf.Graph, a tf.function, a .pb / .pbtxt path or a SavedModel
    directory (no TensorFlow import)."""
    if isinstance(model, (str, os.PathLike)):
        return str(model).lower().endswith(GRAPH_DEF_SUFFIXES) or (Path(model) / "saved_model.pb").is_file()
    return type(model).__name__ in ("GraphDef", "Function", "ConcreteFunction") or (
        type(model).__name__ in ("Graph", "FuncGraph") and hasattr(model, "as_graph_def"))


def _is_pt2(model: Any) -> bool:
    return isinstance(model, (str, os.PathLike)) and str(model).lower().endswith(".pt2")


def _analyse_torch(module: Any, input_shape: Any, **options: Any) -> Analysis:
    try:
        from .pytorch import check_sizes, graph_from_module, graph_from_pt2
    except ImportError as exc:
        raise FovealError(f"{module} needs PyTorch, which is not importable ({exc}); install "
                          f"foveal[torch]") from None

    handlers, capture = options.pop("handlers"), options.pop("capture")
    if _is_pt2(module):
        graph, expected, input_shape = graph_from_pt2(module, input_shape, handlers)
    else:
        if input_shape is None:
            raise FovealError("a PyTorch module needs input_shape, e.g. (1, 3, 224, 224): the "
                              "graph is captured by running the model on a meta tensor of that shape")
        graph, expected = graph_from_module(module, input_shape, handlers, capture)
    spatial = tuple(input_shape)[2:]
    try:
        analysis = receptive_field(graph, spatial, **options)
    except UnsupportedOpError as err:
        raise UnsupportedOpError(
            err.node, err.op_name, err.others,
            "register a handler, e.g. receptive_field(model, shape, handlers={TheModuleClass or "
            "the_function: foveal.conv(3, padding=1)})") from None
    check_sizes(analysis, expected)
    return analysis
