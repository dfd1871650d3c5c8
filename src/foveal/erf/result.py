"""The result of an ERF measurement: the maps, the numbers read off them, and the analytic box.

Outputs (to_dict, summary, plot) read these fields and never recompute them. Per-axis values are
tuples in the input's axis order (T; H, W; D, H, W); boxes are inclusive (first, last) pixels.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure


Box = tuple[tuple[int, int], ...]
"""Per axis, an inclusive (first, last) interval of input pixels."""


@dataclass(frozen=True)
class AreaRatio:
    """The smallest centred square (cube, interval) holding more than `threshold` of the map's sum.

    side: 2i + 1, clipped to the map (its longest extent after clipping: never more than the
    input's size); area_ratio: its clipped area / the map's area.
    Both None when the map is all zero (there is no mass to hold).
    """

    threshold: float
    side: int | None
    area_ratio: float | None


@dataclass(frozen=True)
class Gaussian:
    """Per-axis Gaussian fitted by moments to the map's marginals, in input pixel coordinates."""

    mean: tuple[float, ...]
    sigma: tuple[float, ...]


def extent_ratio(effective: Box | None, analytic: Box | None) -> tuple[float, ...] | None:
    """Per axis, the effective region's length over the analytic one's."""
    if effective is None or analytic is None:
        return None
    return tuple((e[1] - e[0] + 1) / (a[1] - a[0] + 1) for e, a in zip(effective, analytic))


INPUT_WORDS = {"noise": "noise sample(s)", "images": "image(s)", "tensors": "input(s)"}


@dataclass(frozen=True, eq=False)
class ErfResult:
    """An effective receptive field (see foveal.erf for the protocols)."""

    layer: str
    protocol: str
    """'luo' or 'replknet'."""
    inputs: str
    """'noise', 'images' or 'tensors'."""
    axes: tuple[str, ...]
    input_shape: tuple[int, ...]
    """Spatial sizes of the input."""
    channels: int
    samples: int
    weight_draws: int
    """How many times the weights were drawn afresh (0: the model's own weights)."""
    centre: tuple[int, ...]
    """The input's centre pixel, size // 2 per axis: the area-ratio boxes are centred there."""
    feature_shape: tuple[int, ...]
    feature_centre: tuple[int, ...]
    """The probed feature: the layer's size // 2 per axis."""
    raw_map: np.ndarray
    """The mean over samples of sum_channels |dz/dx| (luo) or of sum_channels ReLU(dz/dx) (replknet:
    the contribution map M)."""
    normalised_map: np.ndarray
    """luo: raw_map / its max; replknet: log10(M + 1) / max log10(M + 1). All zero if raw_map is."""
    gaussian: Gaussian | None
    """Fitted to raw_map by moments; None when it is all zero."""
    area_ratios: tuple[AreaRatio, ...]
    """Of normalised_map, at the thresholds asked for (default 0.2, 0.3, 0.5, 0.99)."""
    analytic_box: Box | None
    analytic_note: str | None
    """Why analytic_box is None, or why it is a bound; None when it is exact."""
    effective_box: Box | None
    """Bounding box of raw_map's non-zero entries; None when it is all zero."""
    notes: tuple[str, ...] = ()

    @property
    def extent_ratio(self) -> tuple[float, ...] | None:
        """Per axis, the effective region's length over the analytic region's."""
        return extent_ratio(self.effective_box, self.analytic_box)

    def to_dict(self, maps: bool = False) -> dict[str, Any]:
        """Plain JSON-able values; the maps (nested lists) only with maps=True."""
        out: dict[str, Any] = {
            "format": "foveal-erf", "layer": self.layer, "protocol": self.protocol, "inputs": self.inputs,
            "axes": list(self.axes), "input_shape": list(self.input_shape), "channels": self.channels,
            "samples": self.samples, "weight_draws": self.weight_draws, "centre": list(self.centre),
            "feature_shape": list(self.feature_shape), "feature_centre": list(self.feature_centre),
            "gaussian": None if self.gaussian is None else {
                "mean": list(self.gaussian.mean), "sigma": list(self.gaussian.sigma)},
            "area_ratios": [{"threshold": a.threshold, "side": a.side, "area_ratio": a.area_ratio}
                            for a in self.area_ratios],
            "analytic_box": _boxes(self.analytic_box), "analytic_note": self.analytic_note,
            "effective_box": _boxes(self.effective_box),
            "extent_ratio": None if self.extent_ratio is None else list(self.extent_ratio),
            "notes": list(self.notes),
        }
        if maps:
            out["raw_map"] = self.raw_map.tolist()
            out["normalised_map"] = self.normalised_map.tolist()
        return out

    def to_json(self, maps: bool = False, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(maps), indent=indent)

    def summary(self) -> str:
        """The numbers as text, as `foveal erf` prints them."""
        axes = ", ".join(self.axes)
        how = (f"{self.weight_draws} random weight draw(s)" if self.weight_draws else "the model's weights")
        lines = [
            f"ERF of {f'layer {self.layer!r}' if self.layer else 'the model output'}: {self.protocol} "
            f"protocol, {self.samples} "
            f"{INPUT_WORDS[self.inputs]}, {how}",
            f"input {self.channels} x {_by(self.input_shape)} ({axes}), centre {_tuple(self.centre)}; "
            f"layer {_by(self.feature_shape)}, centre feature {_tuple(self.feature_centre)}",
        ]
        if self.gaussian is None:
            lines.append("Gaussian fit: none (the map is all zero)")
        else:
            lines.append(f"Gaussian fit ({axes}): mean {_tuple(self.gaussian.mean, '.1f')}, "
                         f"sigma {_tuple(self.gaussian.sigma, '.2f')}")
        lines.append("high-contribution area ratio (centred square holding > t of the normalised map):")
        for a in self.area_ratios:
            found = ("none (all zero)" if a.side is None or a.area_ratio is None
                     else f"side {a.side:<5d} area ratio {a.area_ratio:.4f}")
            lines.append(f"  t={a.threshold:<5g} {found}")
        lines.append(f"analytic RF of the centre feature: {_box_text(self.analytic_box, self.axes)}"
                     + (f" ({self.analytic_note})" if self.analytic_note else ""))
        effective = _box_text(self.effective_box, self.axes)
        ratio = self.extent_ratio
        if ratio is not None:
            effective += f", {_by(ratio, '.2f')} of the analytic extent"
        lines.append(f"effective region (non-zero gradient): {effective}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def plot(self, path: str | os.PathLike | None = None, ax: Axes | None = None,
             title: str | None = None) -> Figure | SubFigure:
        """The normalised map (a heat map in 2-D, a line in 1-D) with the analytic box (solid) and the
        effective region (dashed) over it; written to `path` (.png, .svg, .pdf) whole or not at all."""
        from .plot import plot_erf

        return plot_erf(self, path=path, ax=ax, title=title)

    def __repr__(self) -> str:
        where = f"layer {self.layer!r}" if self.layer else "the model output"
        box = "none" if self.effective_box is None else " x ".join(f"{a}..{b}" for a, b in self.effective_box)
        return (f"<foveal.ErfResult of {where}: {self.protocol}, {self.samples} {self.inputs}, "
                f"input {_by(self.input_shape)}, effective box {box}>")

    def _repr_html_(self) -> str:
        """Notebook display: the numbers (summary) and, with matplotlib, the map."""
        from ..notebook import erf_html

        return erf_html(self)


def _boxes(box: Box | None) -> list[list[int]] | None:
    return None if box is None else [list(b) for b in box]


def _tuple(values: tuple[Any, ...], spec: str = "") -> str:
    return "(" + ", ".join(format(v, spec) for v in values) + ")"


def _by(values: tuple[Any, ...], spec: str = "") -> str:
    return " x ".join(format(v, spec) for v in values)


def _box_text(box: Box | None, axes: tuple[str, ...]) -> str:
    if box is None:
        return "none"
    sides = " x ".join(str(hi - lo + 1) for lo, hi in box)
    return ", ".join(f"{a} {lo}..{hi}" for a, (lo, hi) in zip(axes, box)) + f" ({sides})"
