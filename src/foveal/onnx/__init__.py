"""ONNX front-end: a model file or ModelProto as a foveal Graph, read per the ONNX specification
without running it (docs/onnx.md). Needs the `onnx` package (foveal[onnx]) only when used: this
module and `load` import nothing beyond the standard library at module level, and a model is
read (a missing file reported as such) before the modules that need numpy are imported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .load import is_onnx_model

if TYPE_CHECKING:
    from ..graph import Graph

__all__ = ["graph_from_onnx", "is_onnx_model"]


def graph_from_onnx(model: Any, input_shape: Any = None, input: str | None = None,
                    handlers: Mapping[str, Any] | None = None) -> Graph:
    """The spatial part of `model` (a path, bytes or a ModelProto) as a foveal Graph. Node names
    are the ONNX nodes' names (a node without one is named by its first output tensor).

    input_shape: spatial sizes, or the full input shape in the model's layout; by default the
    model's declared sizes when they are fixed. It sets the sizes shape inference works with,
    which some ops need (Reshape, Resize to computed sizes, ConvTranspose with output_shape).
    handlers: extra op-table entries, keyed by op type ("Blur", or "com.example::Blur" for a
    custom domain): a foveal op, or a callable taking the NodeProto and returning one.
    """
    from ..input_spec import parse
    from .load import read_model

    model = read_model(model)
    from .convert import Converter  # numpy: importable once onnx is

    return Converter(model, input, parse(input_shape), handlers).graph()
