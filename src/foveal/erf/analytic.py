"""The analytic receptive field of the probed feature, from foveal's own analysis, to draw and
compare the ERF against. It is optional: a model foveal cannot analyse still gets its ERF, with
the reason the box is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .result import Box


@dataclass(frozen=True)
class AnalyticBox:
    """The input pixels the centre feature can depend on (clipped to the input), per axis."""

    box: Box | None
    note: str | None = None
    """Why the box is missing, or why it is only a bound."""


def analytic_box(model: Any, layer: str, input_shape: tuple[int, ...], feature_shape: tuple[int, ...],
                 keras: bool) -> AnalyticBox:
    """`foveal.receptive_field(model, ...)[layer].region(*centre, clip=True)`.

    input_shape is (C, *spatial); a PyTorch module is analysed at (1, C, *spatial), a Keras model
    at its spatial sizes. The centre is the layer's size // 2 per axis, the feature the ERF probes.
    """
    from ..api import receptive_field

    spatial = input_shape[1:]
    try:
        analysis = receptive_field(model, spatial if keras else (1, *input_shape))
        name = layer or analysis.output_name
        if name not in analysis:
            return AnalyticBox(None, f"the analysis has no node {name!r}")
        node = analysis[name]
        if tuple(node.output_shape) != feature_shape:
            return AnalyticBox(None, f"the analysis gives node {name!r} the size {node.output_shape}, the "
                                     f"model {feature_shape}")
        region = node.region(*(n // 2 for n in feature_shape), clip=True)
    except Exception as error:  # noqa: BLE001 - the ERF stands without the box; keep the reason
        first_line = (str(error).strip().splitlines() or [""])[0]
        return AnalyticBox(None, f"analysis failed: {type(error).__name__}: {first_line}")
    if any(r is None for r in region):
        return AnalyticBox(None, f"node {name!r} does not depend on the input on every axis")
    box = tuple((int(lo), int(hi)) for lo, hi in region)  # type: ignore[misc]
    note = None if node.exact else f"a {node.status}: {'; '.join(node.reasons)}"
    return AnalyticBox(box, note)
