"""PyTorch front-end: an nn.Module and an input shape become a foveal Graph named by module path.

Imported only when a torch model is given (the core never imports torch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .. import ops as O
from ..errors import FovealError
from ..graph import Graph
from .builder import Builder, Handler, tensors
from .capture import CaptureError, capture, check_input_shape
from .handlers import handler_for, module_of

__all__ = ["graph_from_module", "convert", "CaptureError", "check_sizes", "verify"]


def _user_handler(spec: Any) -> Handler:
    """A user's entry: a foveal op, or a callable(module or fx node) returning one."""

    def handle(b: Builder, n: Any, args: tuple, kwargs: dict) -> Any:
        op = spec
        if not isinstance(spec, O.OP_TYPES):
            op = spec(module_of(b, n) if n.op == "call_module" else n)
        found = tensors((args, kwargs))
        connected = [v for v in found if v.node is not None]
        return b.emit(op, connected, found[0].layout)

    return handle


def graph_from_module(module: torch.nn.Module, input_shape: Any,
                      handlers: Mapping[Any, Any] | None = None) -> tuple[Graph, dict]:
    """The module as a foveal Graph, and each node's axis lengths as PyTorch computed them."""
    builder = convert(module, input_shape, handlers)
    return builder.graph, builder.expected


def convert(module: torch.nn.Module, input_shape: Any,
            handlers: Mapping[Any, Any] | None = None) -> Builder:
    """Capture and convert; the builder keeps the graph, the sizes PyTorch computed and the fx
    node behind each foveal node.

    handlers: extra entries for the op table, keyed by module class, function or tensor-method
    name; a value is a foveal op (applied position-wise to the inputs) or a callable taking the
    module (or the fx node of a function) and returning one. Module classes given here are
    captured whole (their forward is not traced).
    """
    if not isinstance(module, torch.nn.Module):
        raise FovealError(f"expected a torch.nn.Module, got {type(module).__name__}")
    shape = check_input_shape(input_shape)
    extra = {k: _user_handler(v) for k, v in (handlers or {}).items()}
    leaves = tuple(k for k in extra if isinstance(k, type))
    captured = capture(module, shape, leaves)
    builder = Builder(captured, len(shape) - 2, type(module).__name__)
    builder.run(lambda b, n: handler_for(b, n, extra))
    return builder


def check_sizes(analysis: Any, expected: dict) -> None:
    """foveal's output sizes must equal PyTorch's: a mismatch is a bug in a handler."""
    for name, sizes in expected.items():
        if name not in analysis:
            continue
        got = analysis[name].output_shape
        for axis, (want, have) in enumerate(zip(sizes, got)):
            if want is not None and have is not None and want != have:
                node = analysis.graph.nodes[name]
                raise FovealError(
                    f"internal: at node {name!r} ({node.label or node.op.op}) foveal computes "
                    f"length {have} on axis {analysis.axes[axis]} where PyTorch gives {want}; "
                    f"please report this with the model")


def verify(*args: Any, **kwargs: Any) -> Any:
    from .verify import verify as run

    return run(*args, **kwargs)
