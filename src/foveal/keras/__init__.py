"""Keras 3 front-end: a Functional or Sequential model (nested models, shared layers, any backend)
as a foveal Graph, read from Keras's layer graph without running the model (docs/keras.md).

Keras is only touched when the caller already imported it: `is_keras_model` checks sys.modules.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import FovealError

if TYPE_CHECKING:
    from ..graph import Graph
    from .builder import Builder

__all__ = ["flops_by_layer", "graph_from_model", "is_keras_model"]


def is_keras_model(obj: Any) -> bool:
    """A Keras 3 Model (Functional, Sequential, subclassed) or Layer, without importing Keras:
    only a loaded Keras can have made the object."""
    keras = sys.modules.get("keras")
    layer = getattr(getattr(keras, "layers", None), "Layer", None)
    return isinstance(layer, type) and isinstance(obj, layer)


def _keras() -> Any:
    return sys.modules["keras"]


def graph_from_model(model: Any, input_shape: Any = None) -> Graph:
    """The model's layers as a foveal Graph. Node names are layer names (`layer@k` for the k-th
    call of a shared layer, `model/layer` inside a nested model); inputs are the Input layers.

    input_shape: None (the shapes Keras recorded when the model was built), spatial sizes (an
    int, or one per axis), the full shape in the model's own layout ((N, H, W, C) for
    channels_last), or a dict by input name. With it, shapes are recomputed at that size, so
    size-dependent layers (Resizing with crop_to_aspect_ratio) are exact there.
    """
    return build(model, input_shape)[0].graph


def flops_by_layer(model: Any, input_shape: Any = None) -> dict[str, int]:
    """FLOPs of every graph node at `input_shape` (multiply-add = 2; docs/keras.md lists the
    convention per layer). Nodes that compute nothing (reshapes, padding, dropout) count 0."""
    from .flops import count

    builder, _ = build(model, input_shape)
    return {name: count(builder.calls[name]) if name in builder.calls else 0 for name in builder.graph.nodes}


# -- building -----------------------------------------------------------------------------------


def build(model: Any, input_shape: Any = None) -> tuple[Builder, Any]:
    """The builder after the walk, and the spatial input size(s) for the analysis (None when
    neither given nor fixed by the model)."""
    from .builder import Builder, Value, channels_first_model, spatial_layout
    from .handlers import handler_for

    if not is_keras_model(model):
        raise FovealError(f"expected a Keras 3 model (keras.Model, keras.Sequential or a keras layer), "
                          f"got a {type(model).__module__}.{type(model).__name__}")
    keras = _keras()
    channels_first = channels_first_model(model)
    function = _functional(keras, model, input_shape, channels_first)
    tensors = function.inputs
    ranks = [len(t.shape) for t in tensors]
    if not any(r >= 3 for r in ranks):
        raise FovealError(f"model {model.name!r} has no input with spatial axes (input ranks {ranks}); "
                          f"foveal needs an image, sequence or volume input")
    rank = next(r for r in ranks if r >= 3)
    n_axes = rank - 2
    names = [t._keras_history.operation.name for t in tensors]
    shapes = _input_shapes(tensors, names, input_shape, rank, channels_first)
    builder = Builder(keras, n_axes, model.name, input_shape is not None, handler_for)
    values: list[Any] = []
    spatial: dict[str, tuple[int, ...]] = {}
    layout = spatial_layout(rank, channels_first)
    for name, shape in zip(names, shapes):
        if len(shape) != rank:
            values.append(Value(None, (None,) * len(shape), shape))
            continue
        node = builder.fresh(name)
        builder.graph.add(node, _input_op(), (), label="InputLayer")
        builder.expected[node] = shape
        values.append(Value(node, layout, shape))
        sizes = tuple(shape[d] for d in range(rank) if layout[d] is not None)
        if all(isinstance(s, int) for s in sizes):
            spatial[node] = sizes
    outputs = builder.walk(function, values, "")
    found = [v.node for v in outputs if isinstance(v, Value) and v.node is not None]
    if found:
        builder.graph.set_outputs(*dict.fromkeys(found))
    inputs = builder.graph.inputs
    if len(spatial) < len(inputs):
        return builder, spatial or None
    return builder, spatial[inputs[0]] if len(inputs) == 1 else spatial


def _input_op() -> Any:
    from .. import ops as O

    return O.Input()


def _functional(keras: Any, model: Any, input_shape: Any, channels_first: bool) -> Any:
    """The functional graph behind a model (or a bare layer called on an Input)."""
    if isinstance(model, keras.Sequential):
        if getattr(model, "_functional", None) is None:
            full = input_shape if isinstance(input_shape, (tuple, list)) else None
            if full is None or len(full) < 3:
                raise FovealError(f"Sequential model {model.name!r} is not built, so its input rank and "
                                  f"channels are unknown: start it with keras.Input(shape), or pass the "
                                  f"full input_shape, e.g. (1, 224, 224, 3)")
            model.build((None, *full[1:]))
        return model._functional
    if isinstance(model, keras.Function) and hasattr(model, "_nodes_by_depth"):
        return model
    if isinstance(model, keras.Model):
        raise FovealError(f"model {model.name!r} is a subclassed keras.Model ({type(model).__name__}): it "
                          f"has no layer graph foveal can read; build it functionally "
                          f"(keras.Model(inputs, outputs)) or as a keras.Sequential")
    full = input_shape if isinstance(input_shape, (tuple, list)) else None
    if full is None or len(full) < 3:
        raise FovealError(f"a single Keras layer ({type(model).__name__}) needs the full input_shape, e.g. "
                          f"(1, 32, 32, 3), to be called on a keras.Input")
    inputs = keras.Input(batch_shape=(None, *full[1:]), name="input")
    return keras.Model(inputs, model(inputs))


def _input_shapes(tensors: list[Any], names: list[str], input_shape: Any, rank: int,
                  channels_first: bool) -> list[tuple[Any, ...]]:
    """Each input's full shape: as recorded, or with the requested spatial sizes."""
    recorded = [tuple(None if d is None else int(d) for d in t.shape) for t in tensors]
    if input_shape is None:
        return recorded
    n = rank - 2
    spatial_dims = list(range(2, rank)) if channels_first else list(range(1, rank - 1))
    out = []
    for name, shape in zip(names, recorded):
        wanted = input_shape.get(name) if isinstance(input_shape, Mapping) else input_shape
        if len(shape) != rank or wanted is None:
            out.append(tuple(1 if (d is None and k == 0) else d for k, d in enumerate(shape)))
            continue
        if isinstance(wanted, int) and not isinstance(wanted, bool):
            wanted = (wanted,) * n
        wanted = tuple(wanted)
        full = list(shape)
        full[0] = 1
        if len(wanted) == rank:
            full = [w if s is None else s for w, s in zip(wanted, full)]
            wanted = tuple(wanted[d] for d in spatial_dims)
        if len(wanted) != n or not all(isinstance(w, int) and w >= 1 for w in wanted):
            raise FovealError(f"input_shape for {name!r} must be {n} spatial sizes or the full shape "
                              f"of rank {rank} in the model's layout, got {wanted!r}")
        for d, w in zip(spatial_dims, wanted):
            full[d] = w
        if None in full:
            raise FovealError(f"input {name!r} has an unknown channel count; pass the full input_shape")
        out.append(tuple(full))
    return out
