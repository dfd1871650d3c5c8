"""Walks a Keras 3 functional graph (Functional, Sequential, nested models) into a foveal Graph.

Every Keras tensor becomes a `building.Value` whose layout (`foveal.layout`) names what each dim
holds: batch and channels, a spatial axis, or axes a Flatten or Reshape merged. Handlers
(`handlers.py`) read layer attributes, never weights, and add the current layer's nodes through
`Builder.layer_node`, which names them and records the sizes Keras computed (`GraphBuilder.add`).

Naming: a layer's node is the layer's name; its k-th call (a shared layer) is `name@k`; layers
inside a nested model are `model/layer`, and the nested model's own name is an alias
(`ops.MODEL_OUTPUT`) of its output. A handler that needs several foveal nodes names the extra
ones `name/step`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import ops as O
from ..building import GraphBuilder, Value, constant
from ..errors import FovealError
from ..graph import fresh_name
from ..handler_table import HandlerTable
from ..layout import Layout, LayoutError

Shape = tuple[Any, ...]


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
        return [v for v in flatten((self.args, self.kwargs)) if isinstance(v, Value)]

    @property
    def x(self) -> Value:
        found = self.inputs
        if not found:
            raise LayoutError("a layer without tensor inputs")
        return found[0]

    @property
    def out(self) -> Shape:
        return self.out_shapes[0]


Handler = Callable[["Builder", Call], Any]


def flatten(tree: Any) -> list[Any]:
    """The leaves of Keras's nested call arguments (dicts, lists, tuples)."""
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in flatten(v)]
    if isinstance(tree, (list, tuple)):
        return [x for v in tree for x in flatten(v)]
    return [tree]


def shape_of(tensor: Any) -> Shape:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def channels_first_model(model: Any) -> bool:
    """The input's layout: channels_first when every layer that has a data_format says so."""
    formats = {getattr(layer, "data_format", None) for layer in _all_layers(model)} - {None}
    return bool(formats) and formats == {"channels_first"}


def _all_layers(model: Any) -> Any:
    for layer in getattr(model, "layers", ()):
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def spatial_layout(rank: int, channels_first: bool) -> Layout:
    axes = tuple(range(rank - 2))
    return (None, None) + axes if channels_first else (None,) + axes + (None,)


class Builder(GraphBuilder):
    """Builds the foveal Graph call by call; `concrete`: shapes are recomputed at the requested
    input size (else the ones Keras recorded are used)."""

    def __init__(self, keras: Any, n_axes: int, name: str, concrete: bool,
                 handler_for: Callable[[HandlerTable[Handler], Any], Handler | None],
                 table: HandlerTable[Handler]) -> None:
        super().__init__(n_axes, name)
        self.keras = keras
        self.backend = keras.backend.backend()
        self.concrete = concrete
        self.handler_for = handler_for
        self.table = table
        self.prefix = ""
        self.call: Call | None = None
        self.calls: dict[str, Call] = {}
        """The layer call each foveal node stands for (the last node of a call; for FLOPs)."""
        self.input_sizes: Any = None
        """The spatial input size(s) for the analysis (None when neither given nor fixed)."""

    def layer_node(self, op: O.Op, inputs: list[Value], layout: Layout, shape: Shape | None = None,
                   step: str | None = None) -> Value:
        """A node of the current layer call (`step`: a handler's extra node, `name/step`)."""
        call = self.call
        assert call is not None
        base = self.prefix + call.layer.name
        value = self.add(f"{base}/{step}" if step else base, op, inputs, layout,
                         call.out if shape is None else shape, label=type(call.layer).__name__)
        if step is None and value.node is not None:
            self.calls[value.node] = call
        return value

    def input_node(self, base: str, layout: Layout, shape: Shape) -> Value:
        """An Input layer's node (labelled InputLayer, as Keras names the class)."""
        name = self.fresh(base)
        self.graph.add(name, O.Input(), (), label="InputLayer")
        self.expected[name] = tuple(shape[d] for d in range(len(shape)) if layout[d] is not None)
        return Value(name, layout, shape)

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
            out_specs = flatten(result)
        else:
            out_specs = list(node.outputs)
        out_shapes = [shape_of(s) for s in out_specs]
        in_specs = [shape_of(s) for s in flatten((spec_args, spec_kwargs))
                    if isinstance(s, self.keras.KerasTensor)]
        inner = graph_of(self.keras, op)
        if inner is not None:
            return self._nested(op, inner, args, kwargs, prefix), out_specs
        call = Call(op, args, kwargs, out_shapes, in_specs)
        if not any(v.node is not None for v in call.inputs):  # a constant branch (no input pixel)
            return [constant(s) for s in out_shapes], out_specs
        return self.apply_handler(call, prefix), out_specs

    def apply_handler(self, call: Call, prefix: str) -> list[Value]:
        """The layer's nodes by its handler; an unknown node (counted) when it has none, or
        when the handler cannot follow the layout."""
        self.call, self.prefix = call, prefix
        handler = self.handler_for(self.table, call.layer)
        label = op_label(call.layer)
        try:
            result = self.unknown_layer(call, label, counted=True) if handler is None else handler(self, call)
        except LayoutError as exc:
            result = self.unknown_layer(call, f"{label} ({exc})")
        return list(result) if isinstance(result, (list, tuple)) else [result]

    def _nested(self, model: Any, inner: Any, args: tuple, kwargs: dict, prefix: str) -> list[Any]:
        """A model used as a layer: its layers under `model/`, and an alias named after the model
        on each output (so the model's name refers to its output, as a layer's does)."""
        # the name the alias gets after the walk: inner layers are named under it
        base = fresh_name(prefix + model.name, self.graph.nodes, {})
        flat = flatten((args, kwargs))
        inputs: list[Value | None] = [v for v in flat if isinstance(v, Value) or v is None]
        outputs: list[Any]
        if isinstance(inner, list):  # a Sequential without a functional graph: a chain
            first = inputs[0]
            assert first is not None
            outputs = [self._chain(inner, first, base + "/")]
        else:
            outputs = self.walk(inner, inputs[:len(inner.inputs)], base + "/")
        result: list[Any] = []
        for k, value in enumerate(outputs):
            if not isinstance(value, Value) or value.node is None:
                result.append(value)
                continue
            result.append(self.alias(value, base if k == 0 else f"{base}/output{k}", type(model).__name__,
                                     kind=O.MODEL_OUTPUT))
        return result

    def _chain(self, layers: list[Any], x: Value, prefix: str) -> Value:
        """An unbuilt Sequential's layers one after the other, shapes from compute_output_shape."""
        spec = self.keras.KerasTensor(x.shape)
        value: Value = x
        for layer in layers:
            out = layer.compute_output_spec(spec)
            call = Call(layer, (value,), {}, [shape_of(out)], [shape_of(spec)])
            value = self.apply_handler(call, prefix)[0]
            spec = out
        return value

    def unknown_layer(self, call: Call, what: str, counted: bool = False) -> list[Value]:
        """A layer foveal cannot express: one unknown node per output, named by the layer
        (`counted`: it had no handler, so `unhandled` counts it by its class)."""
        found = [v for v in call.inputs if v.node is not None]
        base = self.prefix + call.layer.name
        out: list[Value] = []
        for k, shape in enumerate(call.out_shapes):
            layout = found[0].layout if found and found[0].rank == len(shape) else (None,) * len(shape)
            value = self.unknown(base if k == 0 else f"{base}/output{k}", what, found, layout, shape,
                                 label=type(call.layer).__name__,
                                 counted=op_label(call.layer) if counted and k == 0 else None)
            if value.node is not None:
                # foveal's size here is the unknown_policy's guess, not a handler's result
                self.expected[value.node] = (None,) * self.n_axes
                if k == 0:
                    self.calls[value.node] = call
            out.append(value)
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


def op_label(op: Any) -> str:
    """A layer's class as the user knows it: keras.layers... rather than keras.src.layers..."""
    cls = type(op)
    return f"{cls.__module__.replace('keras.src.', 'keras.')}.{cls.__name__}"
