"""The one entry point: `receptive_field(model, input_shape=None, **options)`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .analysis import Analysis
from .engine import Options
from .errors import UnsupportedOpError
from .frontend import Request, check_sizes
from .frontends import find
from .gc_pause import paused_gc
from .input_spec import InputRequest, parse
from .native import load_model

__all__ = ["load_model", "receptive_field"]


InputShape = int | Iterable[int] | Mapping[str, Any] | InputRequest | None
"""Spatial sizes, a full shape, one per input, or a request parsed already (the CLI's)."""


def receptive_field(model: Any, input_shape: InputShape = None,
                    *, input: str | None = None, output: str | None = None,
                    stop_propagation: Iterable[str] | None = None,
                    unknown_policy: str = "error", handlers: Mapping[Any, Any] | None = None,
                    capture: str = "auto") -> Analysis:
    """Receptive field of every node of `model` with respect to one input.

    model: a foveal Graph, a foveal JSON graph file, a zoo name (`foveal zoo`), a torch.nn.Module,
    a saved torch.export program (`.pt2`), a Keras 3 model, an ONNX model (ModelProto or
    `.onnx`), or a TensorFlow GraphDef (message, tf.Graph, tf.function with an input_signature,
    `.pb` / `.pbtxt`, gzipped or not, or a SavedModel directory). No model file is unpickled or
    run; docs/architecture.md says how each is read.
    input_shape: spatial sizes (an int for every axis, or one per axis), or the full input shape
    in the model's own layout: (N, C, *spatial) for PyTorch, ONNX and foveal graphs; (N,
    *spatial, C) for Keras, TensorFlow and the zoo's keras.* graphs; (N, L) for a PyTorch model
    that takes a raw signal. A dict gives one per input. A PyTorch module needs the full shape
    (it is run on meta tensors of that shape). A shape that contradicts the model's layout is an
    error. Without it, sizes and strides are still exact and paddings that depend on the input
    size are None (Keras and ONNX models use their declared sizes when fixed).
    input / output: node names (defaults: the first input node, the last output); the
    framework's own names work too (an ONNX tensor, a TensorFlow placeholder).
    stop_propagation: cut every edge whose source name starts with one of these prefixes.
    unknown_policy: 'error' (default), 'identity' or 'global' for ops foveal cannot express;
    results downstream of a lenient choice are marked as bounds.
    handlers: extra op-table entries for a framework's model, keyed as its table is: a PyTorch
    module class, function, tensor-method name or ATen op; an ONNX op type (`domain::OpType`
    for a custom domain); a Keras layer class; a TensorFlow op name. A value is a foveal op
    (applied position-wise) or a callable taking the framework's layer / node and returning one.
    capture: PyTorch only; 'auto' (torch.fx; torch.export when fx cannot trace or leaves unknown
    ops that export decomposes), 'fx' or 'export'.
    """
    if isinstance(stop_propagation, str):
        stop_propagation = [stop_propagation]
    request = Request(parse(input_shape), input, output, dict(handlers or {}), capture)
    with paused_gc():  # reading a model makes many small acyclic objects (see gc_pause)
        return _analysed(model, request, stop_propagation, unknown_policy)


def _analysed(model: Any, request: Request, stop_propagation: Iterable[str] | None,
              unknown_policy: str) -> Analysis:
    conversion = find(model).convert(model, request)
    options = Options(conversion.input, conversion.input_sizes, tuple(stop_propagation or ()), unknown_policy)
    try:
        analysis = Analysis(conversion.graph, options, conversion.output)
    except UnsupportedOpError as err:
        if not conversion.handler_hint:
            raise
        raise UnsupportedOpError(err.node, err.op_name, err.others, conversion.handler_hint) from None
    check_sizes(analysis, conversion.expected, conversion.framework, bool(request.handlers))
    return analysis
