"""PyTorch front-end: an nn.Module and an input shape become a foveal Graph named by module path.

`frontend.convert` is the front-end contract's entry (`foveal.frontend`); the functions here
give the Graph, or the whole conversion (`convert`: the builder, with the fx graph behind each
node), to tests, benchmarks and tools. Imported only when a torch model is given (the core
never imports torch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..graph import Graph
from .capture import CaptureError
from .frontend import convert_module as convert
from .frontend import convert_program

__all__ = ["graph_from_module", "graph_from_pt2", "convert", "CaptureError", "verify"]


def graph_from_module(module: torch.nn.Module, input_shape: Any,
                      handlers: Mapping[Any, Any] | None = None,
                      capture: str = "auto") -> tuple[Graph, dict]:
    """The module as a foveal Graph, and each node's axis lengths as PyTorch computed them."""
    builder = convert(module, input_shape, handlers, capture)
    return builder.graph, builder.expected


def graph_from_pt2(path: Any, input_shape: Any = None, handlers: Mapping[Any, Any] | None = None
                   ) -> tuple[Graph, dict, tuple[int, ...]]:
    """A saved torch.export program as a foveal Graph, the sizes PyTorch computed, and the input
    shape used: the recorded one, or `input_shape` for a program exported with dynamic sizes."""
    builder, shape = convert_program(path, input_shape, handlers)
    return builder.graph, builder.expected, shape


def verify(*args: Any, **kwargs: Any) -> Any:
    from .verify import verify as run

    return run(*args, **kwargs)
