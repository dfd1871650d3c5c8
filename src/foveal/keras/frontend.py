"""Keras's side of the front-end contract (foveal.frontend): a Functional or Sequential model."""

from __future__ import annotations

from typing import Any

from ..errors import FovealError
from ..frontend import Conversion, Request
from . import build


def convert(model: Any, request: Request) -> Conversion:
    if request.handlers:
        raise FovealError("handlers= applies to PyTorch modules only")
    shapes = request.input_shape
    raw: Any = None
    if shapes.by_name is not None:
        raw = {k: (v.sizes[0] if v.one_for_all else v.sizes) for k, v in shapes.by_name.items()}
    elif shapes.one is not None:
        raw = shapes.one.sizes[0] if shapes.one.one_for_all else shapes.one.sizes
    builder, spatial = build(model, raw)
    return Conversion(builder.graph, spatial, request.input, request.output)
