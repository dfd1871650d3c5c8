"""Turns a captured fx graph into a foveal Graph, one fx node at a time, through the op tables.

Each fx node's output becomes a `Value` (for tensors) or stays a plain Python value (shapes,
sizes, flags). A Value names the foveal node whose receptive field the tensor has and carries
its layout (`foveal.layout`). The Builder is the shared `foveal.building.GraphBuilder` plus the
fx walk: handlers (`tables.py` says which) add foveal nodes through `Builder.emit`, which names
them after the fx node being converted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import fx

from .. import ops as O
from ..building import GraphBuilder, Value
from ..errors import FovealError
from ..graph import Graph
from ..layout import Layout, LayoutError, lengths, size_of
from .capture import Captured, first_line, input_form

Handler = Callable[["Builder", fx.Node, tuple, dict], Any]
Lookup = Callable[["Builder", fx.Node], Handler | None]


def input_layout(rank: int) -> Layout:
    """(N, C, *spatial); a raw signal (N, L) has its one spatial axis in dim 1."""
    spatial = input_form(rank).spatial_dims(rank)
    return tuple(spatial.index(d) if d in spatial else None for d in range(rank))


class Builder(GraphBuilder):
    def __init__(self, captured: Captured, n_axes: int, name: str) -> None:
        super().__init__(n_axes, name)
        self.captured = captured
        self.env: dict[fx.Node, Any] = {}
        self.node: fx.Node | None = None
        self.base = ""
        self._has_input = False
        self.fx_node_of: dict[str, tuple[fx.Node, Value]] = {}
        """The fx node (and its Value) whose output each foveal node stands for (for verify)."""

    # -- naming ----------------------------------------------------------------------------
    def base_name(self, n: fx.Node) -> str:
        """Module path for a module call; `<enclosing module>.<function>` for functional ops."""
        if n.op == "call_module":
            return str(n.target)
        if n in self.captured.names:
            return self.captured.names[n]
        stack = n.meta.get("nn_module_stack") or {}
        scope = next(reversed(stack.values()))[0] if stack else ""
        short = str(n.target) if n.op == "call_method" else getattr(n.target, "__name__", None) or n.name
        return f"{scope}.{short}" if scope else short

    # -- values ----------------------------------------------------------------------------
    def value_of(self, n: fx.Node) -> Any:
        return self.env[n]

    def out_shape(self) -> tuple[int, ...]:
        """The shape of the node's output; of its first, for an op returning (values, indices)."""
        meta = self.captured.values[self.node]  # type: ignore[index]
        if isinstance(meta, (tuple, list)) and not isinstance(meta, torch.Size):
            meta = meta[0]
        return tuple(meta.shape)

    def constant(self, shape: tuple[int, ...] | None = None) -> Value:
        shape = self.out_shape() if shape is None else shape
        return Value(None, (None,) * len(shape), shape)

    def emit(self, op: O.Op, inputs: list[Value], layout: Layout, shape: tuple[int, ...] | None = None,
             step: str | None = None) -> Value:
        """Add a foveal node for the fx node being converted, reading the connected `inputs`; a
        constant if none is connected.

        `step` names an intermediate node of a handler that needs several (`<name>/<step>`),
        whose sizes PyTorch never computed."""
        shape = self.out_shape() if shape is None else shape
        base = f"{self.base}/{step}" if step else self.base
        return self.add(base, op, inputs, layout, shape, self.label(), checked=step is None)

    def label(self) -> str:
        n = self.node
        if n is None:
            return ""
        if n.op == "call_module":
            return self.captured.leaf_types[str(n.target)].__name__
        if n in self.captured.labels:
            return self.captured.labels[n]
        if isinstance(n.target, torch._ops.OpOverload):
            return n.target.overloadpacket.__name__
        if n.op == "call_method":
            return f"Tensor.{n.target}"
        return getattr(n.target, "__name__", str(n.target))

    def identity(self, x: Value, kind: str, layout: Layout | None = None) -> Value:
        return self.emit(O.Elementwise(kind), [x], x.layout if layout is None else layout)

    def sizes(self, x: Value) -> dict[int, int]:
        """Each axis's current length (1 for an axis no dim holds)."""
        return lengths(x.layout, x.shape, self.n_axes)

    # -- the walk --------------------------------------------------------------------------
    def run(self, lookup: Lookup) -> Graph:
        """Convert every fx node in order; `lookup` gives a node's handler (None: no handler)."""
        outputs: list[str] = []
        for n in self.captured.graph.nodes:
            self.node = n
            if n.op == "placeholder":
                self.env[n] = self._placeholder(n)
                continue
            if n.op == "output":
                outputs = self._outputs(n)
                continue
            if n.op == "get_attr":
                value = self.captured.values[n]
                self.env[n] = self.constant(tuple(value.shape)) if isinstance(value, torch.Tensor) \
                    else value
                continue
            meta = self.captured.values[n]
            if not _holds_tensor(meta):  # shape arithmetic, asserts, sizes: plain Python
                self.env[n] = meta
                continue
            self.base = self.base_name(n)
            args = fx.node.map_arg(n.args, self.value_of)
            kwargs = fx.node.map_arg(n.kwargs, self.value_of)
            handler = lookup(self, n)
            try:
                result = self.without_handler(n, args, kwargs) if handler is None else \
                    handler(self, n, args, kwargs)
            except LayoutError as exc:  # an op foveal cannot follow: unknown, so the policy applies
                result = self._not_followed(n, args, kwargs, str(exc))
            except FovealError:
                raise
            except Exception as exc:  # noqa: BLE001 - arguments a handler does not expect (a hostile
                # saved program, or a bug): one line naming the node, never a traceback
                target = getattr(n.target, "__name__", str(n.target))
                raise FovealError(f"internal: the handler of {target} at node {self.base!r} failed on its "
                                  f"arguments ({first_line(exc)}); please report this "
                                  f"with the model") from None
            self.env[n] = result
            if isinstance(result, Value) and result.node is not None:
                self.fx_node_of.setdefault(result.node, (n, result))
        self._module_outputs()
        if outputs:
            self.graph.set_outputs(*outputs)
        return self.graph

    def _placeholder(self, n: fx.Node) -> Any:
        value = self.captured.values[n]
        if not isinstance(value, torch.Tensor):
            return value
        chosen = self.captured.input_node
        if self._has_input or (chosen is not None and n is not chosen):
            # the analysis is taken with respect to one input: the first tensor argument
            return self.constant(tuple(value.shape))
        self._has_input = True
        shape = tuple(value.shape)
        layout = input_layout(len(shape))
        name = self.input(str(n.target), size_of(layout, shape, self.n_axes))
        result = Value(name, layout, shape)
        self.fx_node_of[name] = (n, result)
        return result

    def _outputs(self, n: fx.Node) -> list[str]:
        found: list[str] = []

        def visit(v: Any) -> Any:
            if isinstance(v, Value) and v.node is not None:
                found.append(v.node)
            return v

        fx.node.map_aggregate(fx.node.map_arg(n.args, self.value_of), visit)
        return list(dict.fromkeys(found))

    def _module_outputs(self) -> None:
        """A module's name refers to its output: an identity node per non-leaf module call."""
        for path, n, cls in self.captured.module_outputs:
            value = self.env.get(n)
            if not isinstance(value, Value) or value.node is None or not path:
                continue
            alias = self.alias(value, path, cls, O.MODULE_OUTPUT)
            assert alias.node is not None
            self.fx_node_of[alias.node] = (n, value)

    def _not_followed(self, n: fx.Node, args: tuple, kwargs: dict, why: str) -> Any:
        meta = self.captured.values[n]
        found = [v for v in tensors((args, kwargs)) if v.node is not None]
        out = []
        for m in (meta if isinstance(meta, (tuple, list)) else [meta]):
            if isinstance(m, torch.Tensor):
                layout = (None,) * m.dim()
                out.append(self.emit(O.Unknown(f"{self.label()} ({why})"), found, layout,
                                     tuple(m.shape)))
            else:
                out.append(m)
        return out[0] if not isinstance(meta, (tuple, list)) else type(meta)(out)

    def without_handler(self, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        """An op no table has a handler for: a foveal `unknown` node, so the analysis can name
        it, counted in `unhandled` under the same name."""
        what = self.label() if n.op != "call_function" else op_name(n)
        found = tensors((args, kwargs))
        meta = self.captured.values[n]
        if not isinstance(meta, torch.Tensor):  # several outputs (an LSTM's): an unknown node each
            self.unhandled[what] += 1
            return fx.node.map_aggregate(meta, lambda m: self._unknown_part(what, found, m))
        shape = tuple(meta.shape)
        layout = found[0].layout if found and found[0].rank == len(shape) else (None,) * len(shape)
        return self.unknown(self.base, what, found, layout, shape, self.label(), counted=what)

    def _unknown_part(self, what: str, found: list[Value], meta: Any) -> Any:
        """One tensor output of an op without a handler; other outputs stay as PyTorch made them."""
        if not isinstance(meta, torch.Tensor):
            return meta
        shape = tuple(meta.shape)
        layout = found[0].layout if found and found[0].rank == len(shape) else (None,) * len(shape)
        return self.unknown(self.base, what, found, layout, shape, self.label())


def op_name(n: fx.Node) -> str:
    target = n.target
    if isinstance(target, torch._ops.OpOverload):
        return str(target)
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", getattr(target, "__name__", str(target)))
    return f"{module}.{name}" if module and module != "builtins" and module != "_operator" else name


def tensors(tree: Any) -> list[Value]:
    """The tensor Values in nested args."""
    out: list[Value] = []

    def visit(v: Any) -> Any:
        if isinstance(v, Value):
            out.append(v)
        return v

    fx.node.map_aggregate(tree, visit)
    return out


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)) and not isinstance(value, torch.Size):
        return any(_holds_tensor(v) for v in value)
    return False
