"""Capture an nn.Module as a torch.fx graph whose every node carries its output on the meta device.

torch.fx symbolic tracing is the fast path: it records module calls and the functional ops
between them in a few milliseconds. Shapes come from running that graph once on meta tensors:
parameters and buffers are swapped for meta stand-ins of the same shape, so no weight is read
or allocated and the user's module is never modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx
from torch.func import functional_call

from ..errors import FovealError, InvalidParameterError


class CaptureError(FovealError):
    """The model could not be turned into a graph (tracing or shape propagation failed)."""


@dataclass
class Captured:
    """A traced module: the fx graph, each node's meta output, and which module produced what."""

    gm: fx.GraphModule
    values: dict[fx.Node, Any]
    module_outputs: list[tuple[str, fx.Node, str]] = field(default_factory=list)
    """(module path, node it returned, class name) per non-leaf module call, innermost first."""
    leaf_types: dict[str, type] = field(default_factory=dict)


class _Tracer(fx.Tracer):
    """fx's tracer, also noting what every non-leaf module call returned."""

    def __init__(self, leaves: tuple[type, ...] = ()) -> None:
        super().__init__()
        self.module_outputs: list[tuple[str, fx.Node, str]] = []
        self.leaves = leaves

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, self.leaves) or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m: torch.nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        result = super().call_module(m, forward, args, kwargs)
        if not self.is_leaf_module(m, self.path_of_module(m)) and isinstance(result, fx.Proxy):
            self.module_outputs.append((self.path_of_module(m), result.node, type(m).__name__))
        return result


def check_input_shape(input_shape: Any) -> tuple[int, ...]:
    """(N, C, *spatial) with 1 to 3 spatial axes."""
    if isinstance(input_shape, torch.Size):
        input_shape = tuple(input_shape)
    if not isinstance(input_shape, (tuple, list)) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in input_shape):
        raise InvalidParameterError(
            f"input_shape for a PyTorch module must be a tuple of positive ints (N, C, *spatial), "
            f"got {input_shape!r}")
    if not 3 <= len(input_shape) <= 5:
        raise InvalidParameterError(
            f"input_shape {tuple(input_shape)} has rank {len(input_shape)}; a PyTorch model takes "
            f"(N, C, L), (N, C, H, W) or (N, C, D, H, W)")
    return tuple(input_shape)


def trace(module: torch.nn.Module, leaves: tuple[type, ...] = ()) -> tuple[fx.GraphModule, _Tracer]:
    tracer = _Tracer(leaves)
    graph = tracer.trace(module)
    name = module.__class__.__name__
    return fx.GraphModule(tracer.root, graph, name), tracer


class _MetaRun(fx.Interpreter):
    """Runs the graph on meta tensors, with meta stand-ins for parameters and buffers."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.values: dict[fx.Node, Any] = {}
        self._meta: dict[int, torch.Tensor] = {}

    def _as_meta(self, value: Any) -> Any:
        if not isinstance(value, torch.Tensor) or value.device.type == "meta":
            return value
        found = self._meta.get(id(value))
        if found is None:
            found = self._meta[id(value)] = torch.empty_like(value, device="meta")
        return found

    def get_attr(self, target: Any, args: Any, kwargs: Any) -> Any:
        return self._as_meta(super().get_attr(target, args, kwargs))

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        sub = self.fetch_attr(target)
        state = dict(sub.named_parameters())
        state.update(sub.named_buffers())
        if all(v.device.type == "meta" for v in state.values()):
            return sub(*args, **kwargs)
        return functional_call(sub, {k: self._as_meta(v) for k, v in state.items()}, args, kwargs)

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        self.values[n] = result
        return result


def propagate(gm: fx.GraphModule, input_shape: tuple[int, ...]) -> dict[fx.Node, Any]:
    run = _MetaRun(gm)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if not placeholders:
        raise CaptureError("the module's forward takes no input")
    args = [torch.empty(input_shape, device="meta")]
    for extra in placeholders[1:]:
        if extra.args:  # a default value from the signature
            args.append(extra.args[0])
        else:
            raise CaptureError(f"forward() takes more than one input ({extra.target!r} too); "
                               f"wrap the model so that it takes one tensor")
    try:
        with torch.no_grad():
            run.run(*args)
    except FovealError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model, said plainly
        where = next(reversed(run.values), None)
        after = f" after node {where.name!r}" if where is not None else ""
        raise CaptureError(
            f"running the model on a meta tensor of shape {input_shape} failed{after}: "
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            f". Check the input shape (too small an input, a wrong rank or a model that asserts "
            f"one size fail here)") from None
    return run.values


def capture(module: torch.nn.Module, input_shape: tuple[int, ...],
            leaves: tuple[type, ...] = ()) -> Captured:
    """fx trace plus meta shapes."""
    try:
        gm, tracer = trace(module, leaves)
    except Exception as exc:  # noqa: BLE001 - fx fails in many ways on dynamic code
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CaptureError(
            f"torch.fx could not trace {type(module).__name__}: {reason}. Control flow that "
            f"depends on tensor values cannot be captured; options: make that part a leaf "
            f"(torch.fx.wrap a function, or keep the code in a submodule of torch.nn), analyse a "
            f"submodule that traces, or describe the model as a foveal Graph") from None
    values = propagate(gm, input_shape)
    leaf_types = {n.target: type(gm.get_submodule(n.target)) for n in gm.graph.nodes
                  if n.op == "call_module"}
    return Captured(gm, values, tracer.module_outputs, leaf_types)

