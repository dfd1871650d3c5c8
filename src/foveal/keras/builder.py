"""Walks a Keras 3 functional graph (Functional, Sequential, nested models) into a foveal Graph.

Every Keras tensor becomes a `Value`: the foveal node its receptive field comes from (None: it
reads no input pixel), its layout and its shape. The layout names, per tensor dim, what the dim
holds: None (batch, channels, units), a foveal axis (an int), or a frozenset of axes that a
Flatten or Reshape merged into one dim. Handlers (`handlers.py`) read layer attributes, never
weights, and add foveal nodes through `Builder.emit`.

Naming: a layer's node is the layer's name; its k-th call (a shared layer) is `name@k`; layers
inside a nested model are `model/layer`, and the nested model's own name is an identity node on
its output. A handler that needs several foveal nodes names the extra ones `name/step`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import ops as O
from ..errors import FovealError
from ..graph import Graph, fresh_name

Entry = Any  # None, an axis (int) or a frozenset of merged axes
Layout = tuple[Entry, ...]
Shape = tuple[Any, ...]


class NotFollowed(Exception):
    """A layer foveal cannot map onto the axes (a spatial op over merged dims, a concat along a
    spatial axis): the layer becomes an unknown node, so the user's policy applies."""


@dataclass(frozen=True)
class Value:
    node: str | None
    layout: Layout
    shape: Shape

    @property
    def rank(self) -> int:
        return len(self.shape)

    def dim(self, d: int) -> int:
        return d + self.rank if d < 0 else d


@dataclass
class Call:
    """One call of a layer: its arguments with Values for tensors, and the output shapes."""

    layer: Any
    args: tuple
    kwargs: dict
    out_shapes: list[Shape]
    in_specs: list[Shape]

    @property
    def inputs(self) -> list[Value]:
        return [v for v in _flatten((self.args, self.kwargs)) if isinstance(v, Value)]

    @property
    def x(self) -> Value:
        found = self.inputs
        if not found:
            raise NotFollowed("a layer without tensor inputs")
        return found[0]

    @property
    def out(self) -> Shape:
        return self.out_shapes[0]


Handler = Callable[["Builder", Call], Any]


def _flatten(tree: Any) -> list[Any]:
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in _flatten(v)]
    if isinstance(tree, (list, tuple)):
        return [x for v in tree for x in _flatten(v)]
    return [tree]


def _shape(tensor: Any) -> Shape:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def channels_first_model(model: Any) -> bool:
    """The input's layout: channels_first when every layer that has a data_format says so."""
    formats = {getattr(layer, "data_format", None) for layer in _all_layers(model)} - {None}
    return bool(formats) and formats == {"channels_first"}


def _all_layers(model: Any) -> Iterable[Any]:
    for layer in getattr(model, "layers", ()):
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def spatial_layout(rank: int, channels_first: bool) -> Layout:
    n = rank - 2
    axes = tuple(range(n))
    return (None, None) + axes if channels_first else (None,) + axes + (None,)


class Builder:
    """Builds the foveal Graph call by call; `specs` chooses the shapes (recorded or concrete)."""

    def __init__(self, keras: Any, n_axes: int, name: str, concrete: bool,
                 handler_for: Callable[[Any], Handler | None]) -> None:
        self.keras = keras
        self.backend = keras.backend.backend()
        self.n_axes = n_axes
        self.graph = Graph(n_axes, name=name)
        self.concrete = concrete
        self.handler_for = handler_for
        self.prefix = ""
        self.call: Call | None = None
        self._uses: dict[str, int] = {}
        self.calls: dict[str, Call] = {}
        """The layer call each foveal node stands for (the last node of a call; for FLOPs)."""
        self.expected: dict[str, Shape] = {}
        """Each node's output shape as Keras computed it."""

    # -- naming ------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        """`base`, or `base@k` for its k-th call (a shared layer)."""
        return fresh_name(base, self.graph.nodes, self._uses)

    # -- nodes --------------------------------------------------------------------------------
    def emit(self, op: O.Op, inputs: Sequence[Value], layout: Layout, shape: Shape | None = None,
             step: str | None = None) -> Value:
        """A foveal node reading the connected `inputs`; a constant when none is connected."""
        call = self.call
        assert call is not None
        shape = call.out if shape is None else shape
        sources = list(dict.fromkeys(v.node for v in inputs if v.node is not None))
        if not sources:
            return Value(None, layout, shape)
        if len(sources) > 1 and not isinstance(op, (O.Merge, O.Unknown)):
            raise FovealError(f"internal: {op!r} given several inputs at {call.layer.name!r}")
        base = self.prefix + call.layer.name
        name = self.fresh(f"{base}/{step}" if step else base)
        self.graph.add(name, op, sources, label=type(call.layer).__name__)
        self.expected[name] = shape
        if step is None:
            self.calls[name] = call
        return Value(name, layout, shape)

    def identity(self, x: Value, kind: str, layout: Layout | None = None) -> Value:
        return self.emit(O.Elementwise(kind), [x], x.layout if layout is None else layout)

    # -- the walk -----------------------------------------------------------------------------
    def walk(self, function: Any, inputs: list[Value | None], prefix: str) -> list[Value | None]:
        """Run a Functional's nodes by depth, as Keras's `_run_through_graph` does."""
        values: dict[int, Any] = {}
        specs: dict[int, Any] = {}
        for tensor, value in zip(function.inputs, inputs):
            values[id(tensor)] = value
            specs[id(tensor)] = self._spec(tensor, value)
        by_depth = function._nodes_by_depth
        for depth in sorted(by_depth, reverse=True):
            for node in by_depth[depth]:
                if not node.operation or node.is_input:
                    continue
                if any(id(t) not in values for t in node.input_tensors):
                    continue
                args, kwargs = node.arguments.fill_in(values)
                spec_args, spec_kwargs = node.arguments.fill_in(specs)
                outputs, out_specs = self._apply(node, args, kwargs, spec_args, spec_kwargs, prefix)
                for tensor, value, spec in zip(node.outputs, outputs, out_specs):
                    values[id(tensor)] = value
                    specs[id(tensor)] = spec
        return [values.get(id(t)) for t in function.outputs]

    def _spec(self, tensor: Any, value: Value | None) -> Any:
        if value is None or not self.concrete:
            return tensor
        return self.keras.KerasTensor(value.shape, dtype=tensor.dtype)

    def _apply(self, node: Any, args: tuple, kwargs: dict, spec_args: tuple, spec_kwargs: dict,
               prefix: str) -> tuple[list[Any], list[Any]]:
        op = node.operation
        if self.concrete:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = op.compute_output_spec(*spec_args, **spec_kwargs)
            except Exception as exc:  # Keras's own shape error, e.g. a Dense after Flatten
                raise FovealError(f"layer {prefix + op.name!r} ({type(op).__name__}) cannot run at "
                                  f"this input size: {str(exc).splitlines()[0]}") from None
            out_specs = _flatten(result)
        else:
            out_specs = list(node.outputs)
        out_shapes = [_shape(s) for s in out_specs]
        in_specs = [_shape(s) for s in _flatten((spec_args, spec_kwargs))
                    if isinstance(s, self.keras.KerasTensor)]
        inner = graph_of(self.keras, op)
        if inner is not None:
            return self._nested(op, inner, args, kwargs, out_shapes, prefix), out_specs
        call = Call(op, args, kwargs, out_shapes, in_specs)
        self.call, self.prefix = call, prefix
        found = [v for v in call.inputs if v.node is not None]
        if not found:  # a constant branch (no input pixel): no node
            return [Value(None, (None,) * len(s), s) for s in out_shapes], out_specs
        handler = self.handler_for(op)
        try:
            result = self.unknown(call, _op_label(op)) if handler is None else handler(self, call)
        except NotFollowed as exc:
            result = self.unknown(call, f"{_op_label(op)} ({exc})")
        outputs = list(result) if isinstance(result, (list, tuple)) else [result]
        return outputs, out_specs

    def _nested(self, model: Any, inner: Any, args: tuple, kwargs: dict, out_shapes: list[Shape],
                prefix: str) -> list[Any]:
        """A model used as a layer: its layers under `model/`, and an identity node named after
        the model on each output (so the model's name refers to its output, as a layer's does)."""
        base = self.fresh(prefix + model.name)
        flat = _flatten((args, kwargs))
        inputs: list[Value | None] = [v for v in flat if isinstance(v, Value) or v is None]
        outputs: list[Any]
        if isinstance(inner, list):  # a Sequential without a functional graph: a chain
            first = inputs[0]
            assert first is not None
            outputs = [self._chain(inner, first, base + "/")]
        else:
            outputs = self.walk(inner, inputs[:len(inner.inputs)], base + "/")
        result: list[Any] = []
        for k, (value, shape) in enumerate(zip(outputs, out_shapes)):
            if not isinstance(value, Value) or value.node is None:
                result.append(value)
                continue
            name = base if k == 0 else self.fresh(f"{base}/output{k}")
            self.graph.add(name, O.Elementwise("model_output"), [value.node], label=type(model).__name__)
            self.expected[name] = shape
            result.append(Value(name, value.layout, value.shape))
        return result

    def _chain(self, layers: list[Any], x: Value, prefix: str) -> Value:
        """An unbuilt Sequential's layers one after the other, shapes from compute_output_shape."""
        spec = self.keras.KerasTensor(x.shape)
        value: Value = x
        for layer in layers:
            out = layer.compute_output_spec(spec)
            shape = _shape(out)
            call = Call(layer, (value,), {}, [shape], [_shape(spec)])
            self.call, self.prefix = call, prefix
            handler = self.handler_for(layer)
            try:
                result = self.unknown(call, _op_label(layer)) if handler is None else handler(self, call)
            except NotFollowed as exc:
                result = self.unknown(call, f"{_op_label(layer)} ({exc})")
            value = result[0] if isinstance(result, list) else result
            spec = out
        return value

    def unknown(self, call: Call, what: str) -> list[Value]:
        """A layer without a handler: one unknown node per output, named by the layer."""
        found = [v for v in call.inputs if v.node is not None]
        out: list[Value] = []
        for k, shape in enumerate(call.out_shapes):
            layout = found[0].layout if found and found[0].rank == len(shape) else (None,) * len(shape)
            out.append(self.emit(O.Unknown(what), found, layout, shape,
                                 step=None if k == 0 else f"output{k}"))
        return out


def graph_of(keras: Any, op: Any) -> Any:
    """The functional graph of a model used as a layer (a layer list for an unbuilt Sequential),
    or None for an ordinary layer."""
    if isinstance(op, keras.Sequential):
        functional = getattr(op, "_functional", None)
        return functional if functional is not None else [
            layer for layer in op.layers if not isinstance(layer, keras.layers.InputLayer)]
    if isinstance(op, keras.Function) and hasattr(op, "_nodes_by_depth"):
        return op
    return None


def _op_label(op: Any) -> str:
    cls = type(op)
    return f"{cls.__module__.replace('keras.src.', 'keras.')}.{cls.__name__}"
