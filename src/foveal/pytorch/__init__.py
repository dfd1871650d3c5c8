"""PyTorch front-end: an nn.Module and an input shape become a foveal Graph named by module path.

Imported only when a torch model is given (the core never imports torch).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .. import ops as O
from ..errors import FovealError
from ..graph import Graph
from .builder import Builder, Handler, tensors
from .capture import Captured, CaptureError, check_input_shape
from .capture import capture as capture_module
from .handlers import MODULES_BY_NAME, handler_for, module_of

__all__ = ["graph_from_module", "graph_from_pt2", "convert", "CaptureError", "check_sizes", "verify"]


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
                      handlers: Mapping[Any, Any] | None = None,
                      capture: str = "auto") -> tuple[Graph, dict]:
    """The module as a foveal Graph, and each node's axis lengths as PyTorch computed them."""
    builder = convert(module, input_shape, handlers, capture)
    return builder.graph, builder.expected


def convert(module: torch.nn.Module, input_shape: Any,
            handlers: Mapping[Any, Any] | None = None, capture: str = "auto") -> Builder:
    """Capture and convert; the builder keeps the graph, the sizes PyTorch computed and the fx
    node behind each foveal node.

    handlers: extra entries for the op table, keyed by module class, function or tensor-method
    name (or an ATen op, for exported graphs); a value is a foveal op (applied position-wise to
    the inputs) or a callable taking the module (or the fx node of a function) and returning one.
    Module classes given here are captured whole (their forward is not traced).
    capture: 'auto' (torch.fx; torch.export when fx cannot trace, or leaves unknown ops that the
    exported graph has fewer of), 'fx' or 'export'. The model is captured in eval mode (its
    modes are restored after), so a model left in training mode, as torchvision builds them,
    gives its inference graph and batch norm does not need more than one value per channel.
    """
    if not isinstance(module, torch.nn.Module):
        raise FovealError(f"expected a torch.nn.Module, got {type(module).__name__}")
    training = [m for m in module.modules() if m.training]
    module.eval()  # the inference graph: no training-only branches, no batch-norm batch statistics
    try:
        return _convert(module, check_input_shape(input_shape), handlers, capture)
    finally:
        for m in training:
            m.training = True


def _convert(module: torch.nn.Module, shape: tuple[int, ...], handlers: Mapping[Any, Any] | None,
             capture: str) -> Builder:
    extra = {k: _user_handler(v) for k, v in (handlers or {}).items()}
    leaves = tuple(k for k in extra if isinstance(k, type))
    captured = capture_module(module, shape, leaves, capture, frozenset(MODULES_BY_NAME))
    builder = convert_captured(captured, len(shape) - 2, type(module).__name__, extra)
    if capture == "auto" and captured.method == "fx" and not leaves and _unknown_ops(builder.graph):
        # fx kept a call whole that torch.export can decompose (einsum, say): use export when
        # that leaves fewer unknown ops
        try:
            exported = capture_module(module, shape, (), "export")
            other = convert_captured(exported, len(shape) - 2, type(module).__name__, extra)
        except FovealError:  # the fx graph stands, with its unknown ops named
            return builder
        if len(_unknown_ops(other.graph)) < len(_unknown_ops(builder.graph)):
            return other
    return builder


def _unknown_ops(graph: Graph) -> list[str]:
    return [name for name, node in graph.nodes.items()
            if isinstance(node.op, O.Unknown) and not node.op.data_dependent]


def convert_captured(captured: Captured, n_axes: int, name: str,
                     extra: dict[Any, Handler] | None = None) -> Builder:
    builder = Builder(captured, n_axes, name)
    builder.run(lambda b, n: handler_for(b, n, extra or {}))
    return builder


def graph_from_pt2(path: Any, input_shape: Any = None, handlers: Mapping[Any, Any] | None = None
                   ) -> tuple[Graph, dict, tuple[int, ...]]:
    """A saved torch.export program as a foveal Graph, the sizes PyTorch computed, and the input
    shape used: the recorded one, or `input_shape` for a program exported with dynamic sizes (the
    program is made static at that shape before torch reads it; see pt2.py)."""
    from .export import from_program
    from .pt2 import load_program

    program, shape = load_program(path, None if input_shape is None else check_input_shape(input_shape))
    try:
        check_input_shape(shape)
    except FovealError as err:
        raise FovealError(f"{str(path)!r}: the program's input has shape {shape}; {err}") from None
    with torch.device("meta"):  # tensors that decompositions make without a device: meta, as all others
        captured = from_program(program)
    extra = {k: _user_handler(v) for k, v in (handlers or {}).items()}
    builder = convert_captured(captured, len(shape) - 2, Path(str(path)).stem, extra)
    return builder.graph, builder.expected, shape


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
