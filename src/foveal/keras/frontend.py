"""Keras's side of the front-end contract (foveal.frontend): a Functional or Sequential model
(nested models, shared layers, any backend), or a bare layer, read from Keras's layer graph
without running it.

The input's layout is the model's: channels_first when every layer with a data_format says so,
else channels_last, with the channel count of its Input. A full `input_shape` that contradicts
it is an error (`input_spec`); spatial sizes go where the layout puts them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from ..building import constant
from ..errors import FovealError
from ..frontend import Conversion, Request
from ..input_spec import NOTHING, Form, Given, InputRequest
from . import is_keras_model
from .builder import Builder, Shape, channels_first_model, shape_of, spatial_layout
from .handlers import handler_for, table_with

HANDLER_HINT = ("pass handlers={LayerClass: op} to foveal.receptive_field, keyed by the Keras layer "
                "class or its class name (op: a foveal op applied position-wise, or a callable(layer) "
                "returning one)")


def convert(model: Any, request: Request) -> Conversion:
    builder = build(model, request.input_shape, request.handlers)
    return Conversion(builder.graph, builder.input_sizes, request.input, request.output, builder.expected,
                      "Keras", HANDLER_HINT)


def build(model: Any, shapes: InputRequest = NOTHING, handlers: Mapping[Any, Any] | None = None) -> Builder:
    """The builder after the walk: the graph, the sizes Keras computed, each node's layer call,
    and the spatial input size(s) for the analysis (None when neither given nor fixed)."""
    if not is_keras_model(model):
        raise FovealError(f"expected a Keras 3 model (keras.Model, keras.Sequential or a keras layer), "
                          f"got a {type(model).__module__}.{type(model).__name__}")
    keras = sys.modules["keras"]
    form = Form.CHANNELS_FIRST if channels_first_model(model) else Form.CHANNELS_LAST
    function = _functional(keras, model, shapes)
    tensors = function.inputs
    ranks = [len(t.shape) for t in tensors]
    if not any(r >= 3 for r in ranks):
        raise FovealError(f"model {model.name!r} has no input with spatial axes (input ranks {ranks}); "
                          f"foveal needs an image, sequence or volume input")
    rank = next(r for r in ranks if r >= 3)
    names = [t._keras_history.operation.name for t in tensors]
    if shapes.by_name is not None and set(shapes.by_name) - set(names):
        raise FovealError(f"input_shape names {sorted(set(shapes.by_name) - set(names))}, which are not "
                          f"inputs of model {model.name!r}; its inputs are {names}")
    builder = Builder(keras, rank - 2, model.name, shapes.given, handler_for, table_with(handlers or {}))
    layout = spatial_layout(rank, form is Form.CHANNELS_FIRST)
    values: list[Any] = []
    spatial: dict[str, tuple[int, ...]] = {}
    for tensor, name in zip(tensors, names):
        what = f"Keras model {model.name!r}"
        what = what if len(names) == 1 else f"input {name!r} of {what}"
        shape = _input_shape(shape_of(tensor), shapes, name, form, rank, what)
        if len(shape) != rank:
            values.append(constant(shape))
            continue
        value = builder.input_node(name, layout, shape)
        values.append(value)
        assert value.node is not None
        sizes = builder.expected[value.node]
        if all(isinstance(s, int) for s in sizes):
            spatial[value.node] = sizes  # type: ignore[assignment]
    outputs = builder.walk(function, values, "")
    found = [v.node for v in outputs if v is not None and v.node is not None]
    if found:
        builder.graph.set_outputs(*dict.fromkeys(found))
    inputs = builder.graph.inputs
    if len(spatial) < len(inputs):
        builder.input_sizes = spatial or None
    else:
        builder.input_sizes = spatial[inputs[0]] if len(inputs) == 1 else spatial
    return builder


def _input_shape(recorded: Shape, shapes: InputRequest, name: str, form: Form, rank: int, what: str) -> Shape:
    """An input's full shape: as Keras recorded it, or at the requested size (batch 1)."""
    if not shapes.given:
        return recorded
    spec = shapes.one if shapes.by_name is None else shapes.by_name.get(name)
    if spec is None or len(recorded) != rank:
        return (1 if recorded[0] is None else recorded[0], *recorded[1:])
    dim = form.channel_dim(rank)
    assert dim is not None
    channels = recorded[dim]
    sizes = spec.spatial(rank - 2, form, channels, what)
    if channels is None:
        if spec.one_for_all or len(spec.sizes) != rank:
            raise FovealError(f"{what} has an unknown channel count; pass the full input_shape "
                              f"{form.pattern(rank - 2)}")
        channels = spec.sizes[dim]
    full = list(recorded)
    full[0], full[dim] = 1, channels
    for d, size in zip(form.spatial_dims(rank), sizes):
        full[d] = size
    return tuple(full)


def _full_shape(shapes: InputRequest) -> tuple[int, ...] | None:
    """The full input shape, when that is what was given (to build a model that has no Input)."""
    spec = shapes.one
    if spec is None or spec.one_for_all or spec.given is Given.SPATIAL or len(spec.sizes) < 3:
        return None
    return spec.sizes


def _functional(keras: Any, model: Any, shapes: InputRequest) -> Any:
    """The functional graph behind a model (or a bare layer called on an Input)."""
    if isinstance(model, keras.Sequential):
        if getattr(model, "_functional", None) is None:
            full = _full_shape(shapes)
            if full is None:
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
    full = _full_shape(shapes)
    if full is None:
        raise FovealError(f"a single Keras layer ({type(model).__name__}) needs the full input_shape, e.g. "
                          f"(1, 32, 32, 3), to be called on a keras.Input")
    inputs = keras.Input(batch_shape=(None, *full[1:]), name="input")
    return keras.Model(inputs, model(inputs))
