"""Keras 3 front-end: a Functional or Sequential model (nested models, shared layers, any backend)
as a foveal Graph, read from Keras's layer graph without running the model (docs/keras.md).

Keras is only touched when the caller already imported it: `is_keras_model` checks sys.modules.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..graph import Graph

__all__ = ["flops_by_layer", "graph_from_model", "is_keras_model"]


def is_keras_model(obj: Any) -> bool:
    """A Keras 3 Model (Functional, Sequential, subclassed) or Layer, without importing Keras:
    only a loaded Keras can have made the object."""
    keras = sys.modules.get("keras")
    layer = getattr(getattr(keras, "layers", None), "Layer", None)
    return isinstance(layer, type) and isinstance(obj, layer)


def graph_from_model(model: Any, input_shape: Any = None, handlers: Mapping[Any, Any] | None = None) -> Graph:
    """The model's layers as a foveal Graph. Node names are layer names (`layer@k` for the k-th
    call of a shared layer, `model/layer` inside a nested model); inputs are the Input layers.

    input_shape: None (the shapes Keras recorded when the model was built), spatial sizes (an
    int, or one per axis), the full shape in the model's own layout ((N, H, W, C) for
    channels_last), or a dict by input name. With it, shapes are recomputed at that size, so
    size-dependent layers (Resizing with crop_to_aspect_ratio) are exact there.
    handlers: extra table entries, as `foveal.receptive_field` takes them.
    """
    from ..input_spec import parse
    from .frontend import build

    return build(model, parse(input_shape), handlers).graph


def flops_by_layer(model: Any, input_shape: Any = None) -> dict[str, int]:
    """FLOPs of every graph node at `input_shape` (multiply-add = 2; docs/keras.md lists the
    convention per layer). Nodes that compute nothing (reshapes, padding, dropout) count 0."""
    from ..input_spec import parse
    from .flops import count
    from .frontend import build

    builder = build(model, parse(input_shape))
    return {name: count(builder.calls[name]) if name in builder.calls else 0 for name in builder.graph.nodes}
