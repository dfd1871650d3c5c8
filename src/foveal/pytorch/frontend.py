"""PyTorch's side of the front-end contract (`foveal.frontend`): an nn.Module or a saved `.pt2`
program becomes a foveal Graph named by module path.

A module is captured (`capture.py`: torch.fx, or torch.export when fx cannot trace) on meta
tensors of the full input shape, then converted node by node (`builder.py`) through the op
tables (`tables.py`) with the call's `handlers=` as their extras. Imported only when a torch
model is given (the core never imports torch).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .. import ops as O
from ..errors import FovealError
from ..frontend import Conversion, Request
from ..graph import Graph
from .builder import Builder
from .capture import Captured, check_input_shape, input_form, spatial_sizes
from .capture import capture as capture_module
from .tables import TABLES, Tables

HINT = ("register a handler, e.g. receptive_field(model, shape, handlers={TheModuleClass or "
        "the_function: foveal.conv(3, padding=1)})")


def convert(model: Any, request: Request) -> Conversion:
    """A module (run at the full input shape) or a `.pt2` path (at its recorded shape, or the one
    given for a program exported with dynamic sizes)."""
    if request.input_shape.by_name is not None:
        raise FovealError("a PyTorch model is analysed from its first tensor argument: give one input_shape, "
                          "not a dict")
    spec = request.input_shape.one
    if isinstance(model, (str, os.PathLike)):
        builder, shape = convert_program(model, None if spec is None else spec.full("a .pt2 program"),
                                         request.handlers)
    else:
        if spec is None:
            raise FovealError("a PyTorch module needs input_shape, e.g. (1, 3, 224, 224): the "
                              "graph is captured by running the model on a meta tensor of that shape")
        shape = check_input_shape(spec.full("a PyTorch module"))
        builder = convert_module(model, shape, request.handlers, request.capture)
    return Conversion(builder.graph, spatial_sizes(shape), request.input, request.output, builder.expected,
                      "PyTorch", HINT)


def convert_module(module: torch.nn.Module, input_shape: Any, handlers: Mapping[Any, Any] | None = None,
                   capture: str = "auto") -> Builder:
    """Capture and convert; the builder keeps the graph, the sizes PyTorch computed, the ops met
    without a handler (`unhandled`) and the fx node behind each foveal node.

    handlers: extra entries for the op tables, keyed by module class, function or tensor-method
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
    if training:  # the inference graph: no training-only branches, no batch-norm batch statistics
        module.eval()  # (not called on a model in eval mode already: nn.Module.__setattr__ is slow)
    try:
        return _convert(module, check_input_shape(input_shape), TABLES.with_extras(handlers), capture)
    finally:
        for m in training:
            m.training = True


def _convert(module: torch.nn.Module, shape: tuple[int, ...], tables: Tables, capture: str) -> Builder:
    captured = capture_module(module, shape, tables.leaves, capture, tables.leaf_names)
    builder = convert_captured(captured, shape, type(module).__name__, tables)
    if capture == "auto" and captured.method == "fx" and not tables.leaves and _unknown_ops(builder.graph):
        # fx kept a call whole that torch.export can decompose (einsum, say): use export when
        # that leaves fewer unknown ops
        try:
            exported = capture_module(module, shape, (), "export")
            other = convert_captured(exported, shape, type(module).__name__, tables)
        except FovealError:  # the fx graph stands, with its unknown ops named
            return builder
        if len(_unknown_ops(other.graph)) < len(_unknown_ops(builder.graph)):
            return other
    return builder


def _unknown_ops(graph: Graph) -> list[str]:
    return [name for name, node in graph.nodes.items()
            if isinstance(node.op, O.Unknown) and not node.op.data_dependent]


def convert_captured(captured: Captured, shape: tuple[int, ...], name: str,
                     tables: Tables = TABLES) -> Builder:
    """A captured graph, whose input has `shape`, converted through `tables`."""
    builder = Builder(captured, len(input_form(len(shape)).spatial_dims(len(shape))), name)
    builder.run(tables.handler_for)
    return builder


def convert_program(path: Any, input_shape: Any = None, handlers: Mapping[Any, Any] | None = None
                    ) -> tuple[Builder, tuple[int, ...]]:
    """A saved torch.export program converted, and the input shape used: the recorded one, or
    `input_shape` for a program exported with dynamic sizes (the program is made static at that
    shape before torch reads it; see pt2.py)."""
    from .export import from_program
    from .pt2 import load_program

    program, shape = load_program(path, None if input_shape is None else check_input_shape(input_shape))
    try:
        check_input_shape(shape)
    except FovealError as err:
        raise FovealError(f"{str(path)!r}: the program's input has shape {shape}; {err}") from None
    with torch.device("meta"):  # tensors that decompositions make without a device: meta, as all others
        captured = from_program(program)
    return convert_captured(captured, shape, Path(str(path)).stem, TABLES.with_extras(handlers)), shape
