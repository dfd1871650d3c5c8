"""The front-end contract: how a model of any framework becomes a foveal Graph.

A front-end is a name, a test that recognises its models without importing the framework, and a
`convert(model, request) -> Conversion` in a module imported only when such a model is given.
`foveal.receptive_field` finds the front-end (`frontends.find`), converts, runs the engine on the
Graph and checks foveal's sizes against the framework's (`check_sizes`); no front-end imports the
API. docs/architecture.md shows the whole flow and where each front-end's op table lives.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import FovealError
from .graph import Graph
from .input_spec import NOTHING, InputRequest


@dataclass(frozen=True)
class Request:
    """What the caller asked for, the same for every front-end."""

    input_shape: InputRequest = NOTHING
    input: str | None = None
    """The input node (a framework's own name: a placeholder, an ONNX tensor, a Keras Input)."""
    output: str | None = None
    handlers: Mapping[Any, Any] = field(default_factory=dict)
    """The caller's extra op-table entries, keyed as the front-end's table is (docs/architecture.md)."""
    capture: str = "auto"
    """PyTorch's capture method; other front-ends have one way to read a model."""


@dataclass
class Conversion:
    """A front-end's answer: the graph and what the engine and the size check need."""

    graph: Graph
    input_sizes: Any = None
    """Spatial sizes for the engine: None, a tuple, or a dict by input node."""
    input: str | None = None
    """The input node to analyse from (None: the graph's first input)."""
    output: str | None = None
    """The output node, as a graph node name (None: the graph's last output)."""
    expected: Mapping[str, tuple[int | None, ...]] = field(default_factory=dict)
    """Each node's axis lengths as the framework computed them (None where not comparable)."""
    framework: str = ""
    """Who computed `expected`, for the mismatch message."""
    handler_hint: str = ""
    """How to register a handler for an op this front-end does not know."""


@dataclass(frozen=True)
class Frontend:
    """A framework's entry: `recognises` must not import the framework; `module` is imported on
    first use and has `convert(model, request) -> Conversion`."""

    name: str
    recognises: Callable[[Any], bool]
    module: str
    extra: str = ""
    """The pip extra that installs the framework (for the error when it is missing)."""

    def convert(self, model: Any, request: Request) -> Conversion:
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            need = f"; install {self.extra}" if self.extra else ""
            raise FovealError(f"a {self.name} model needs {self.name} support, which is not importable "
                              f"({exc}){need}") from None
        return module.convert(model, request)


def check_sizes(analysis: Any, expected: Mapping[str, tuple[int | None, ...]], framework: str,
                user_handlers: bool = False) -> None:
    """foveal's output sizes must equal the framework's: a mismatch is a bug in a handler (one
    of foveal's, or one the user gave). Under a lenient unknown_policy, nodes whose numbers are
    bounds are not checked: their sizes follow the policy's guess for an op foveal does not know."""
    lenient = analysis.options.unknown_policy != "error"
    for name, sizes in expected.items():
        if name not in analysis:
            continue
        result = analysis.result(name)
        if lenient and result.status != "exact":
            continue
        got = result.output_shape
        for axis, (want, have) in enumerate(zip(sizes, got)):
            if want is not None and have is not None and want != have:
                node = analysis.graph.nodes[name]
                cause = ("check the handlers= entries for this node and those before it; if they are "
                         "right, please report this with the model" if user_handlers else
                         "please report this with the model")
                raise FovealError(
                    f"internal: at node {name!r} ({node.label or node.op.op}) foveal computes "
                    f"length {have} on axis {analysis.axes[axis]} where {framework} gives {want}; {cause}")
