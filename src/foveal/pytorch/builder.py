"""Turns a captured fx graph into a foveal Graph, one fx node at a time, through the handler table.

Each fx node's output becomes a `Value` (for tensors) or stays a plain Python value (shapes,
sizes, flags). A Value names the foveal node whose receptive field the tensor has and carries
its layout (`layout.py`). Handlers (`handlers.py`) add foveal nodes through `Builder.emit`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx

from .. import ops as O
from ..errors import FovealError
from ..graph import Graph, fresh_name
from ..layout import Layout, LayoutError, size_of, standard
from .capture import Captured, first_line


@dataclass(frozen=True)
class Value:
    """A tensor: the foveal node it takes its receptive field from (None: it reads no input
    pixel, as a parameter or a constant), its layout and its shape."""

    node: str | None
    layout: Layout
    shape: tuple[int, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    def dim(self, d: int) -> int:
        """A possibly negative dim index, made positive."""
        return d + self.rank if d < 0 else d


Handler = Callable[["Builder", fx.Node, tuple, dict], Any]


class Builder:
    def __init__(self, captured: Captured, n_axes: int, name: str) -> None:
        self.captured = captured
        self.n_axes = n_axes
        self.graph = Graph(n_axes, name=name)
        self.env: dict[fx.Node, Any] = {}
        self.expected: dict[str, tuple[int | None, ...]] = {}
        """Each foveal node's axis lengths as PyTorch computed them (None: not comparable)."""
        self.node: fx.Node | None = None
        self.base = ""
        self._uses: dict[str, int] = {}
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

    def fresh(self, base: str) -> str:
        """`base`, or `base@k` for its k-th use (a module called several times)."""
        return fresh_name(base, self.graph.nodes, self._uses)

    # -- values ----------------------------------------------------------------------------
    def value_of(self, n: fx.Node) -> Any:
        return self.env[n]

    def out_shape(self) -> tuple[int, ...]:
        meta = self.captured.values[self.node]  # type: ignore[index]
        return tuple(meta.shape)

    def constant(self, shape: tuple[int, ...] | None = None) -> Value:
        shape = self.out_shape() if shape is None else shape
        return Value(None, (None,) * len(shape), shape)

    def emit(self, op: O.Op, inputs: list[Value], layout: Layout, shape: tuple[int, ...] | None = None,
             step: str | None = None) -> Value:
        """Add a foveal node reading the connected `inputs`; a constant if none is connected.

        `step` names an intermediate node of a handler that needs several (`<name>/<step>`)."""
        shape = self.out_shape() if shape is None else shape
        sources = list(dict.fromkeys(v.node for v in inputs if v.node is not None))
        if not sources:
            return Value(None, layout, shape)
        if len(sources) > 1 and not isinstance(op, (O.Merge, O.Unknown)):
            raise FovealError(f"internal: {op!r} given several inputs at {self.base!r}")
        name = self.fresh(f"{self.base}/{step}" if step else self.base)
        label = self.label()
        self.graph.add(name, op, sources, label=label)
        self.expected[name] = size_of(layout, shape, self.n_axes) if step is None else \
            (None,) * self.n_axes
        return Value(name, layout, shape)

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
        found = size_of(x.layout, x.shape, self.n_axes)
        return {a: 1 if n is None else n for a, n in enumerate(found)}

    # -- the walk --------------------------------------------------------------------------
    def run(self, handlers: Callable[[Builder, fx.Node], Handler | None]) -> Graph:
        outputs: list[str] = []
        for n in self.captured.gm.graph.nodes:
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
            handler = handlers(self, n)
            try:
                result = self.unknown(n, args, kwargs) if handler is None else handler(self, n, args, kwargs)
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
        name = self.fresh(str(n.target))
        self.graph.input(name)
        self.expected[name] = tuple(value.shape[2:])
        result = Value(name, standard(self.n_axes), tuple(value.shape))
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
            name = self.fresh(path)
            self.graph.add(name, O.Elementwise("module_output"), [value.node], label=cls)
            self.fx_node_of[name] = (n, value)
            self.expected[name] = self.expected.get(value.node, (None,) * self.n_axes)

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

    def unknown(self, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        """An op without a handler: a foveal `unknown` node, so the analysis can name it."""
        found = tensors((args, kwargs))
        meta = self.captured.values[n]
        if not isinstance(meta, torch.Tensor):
            return meta
        layout = found[0].layout if found and found[0].rank == meta.dim() else (None,) * meta.dim()
        return self.emit(O.Unknown(self.label() if n.op != "call_function" else op_name(n)),
                         found, layout)


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
