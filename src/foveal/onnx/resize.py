"""ONNX Resize (opsets 10 to 19) and Upsample (7 to 9) as foveal Resize ops.

Every coordinate transformation is foveal's asymmetric, half_pixel or align_corners rule where
they read the same pixels, which is most of the time: pytorch_half_pixel is half_pixel except
for an output of length 1 (x = 0), half_pixel_symmetric is half_pixel and tf_crop_and_resize over
the whole image is align_corners when input size x scale is whole, and so is align_corners with a
scale. A part of the image (roi other than 0 to 1) is not supported: its float32 bounds give taps
of weight 1e-8 where exact bounds give none. Elsewhere ONNX's source coordinate depends on the
input size, and the op gets it as an explicit ratio and offset for that size (or is reported as
unsupported without input_shape).
Upsample and Resize-10 are asymmetric; their nearest pixel is floor(x) when enlarging and ceil(x)
when shrinking, as onnxruntime computes them.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from .. import ops as O
from ..limits import MAX_AXIS_LENGTH, MAX_PARAMETER, LimitError
from .context import Context
from .fields import MAX_RANK, Fields

METHODS = {"nearest": "nearest", "linear": "linear", "bilinear": "linear", "trilinear": "linear",
           "cubic": "cubic", "bicubic": "cubic"}
COORDINATES = {"half_pixel": "half_pixel", "pytorch_half_pixel": "half_pixel", "asymmetric": "asymmetric",
               "align_corners": "align_corners", "half_pixel_symmetric": "half_pixel",
               "tf_crop_and_resize": "align_corners"}
TRANSFORMATIONS = (*COORDINATES, "tf_half_pixel_for_nn")
"""Every coordinate_transformation_mode ONNX defines; foveal follows those in COORDINATES."""
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def resize_op(c: Context, node: Any) -> O.Op:
    f, rank, name = c.f, c.rank, node.op_type
    method = METHODS.get(f.string("mode", "nearest").lower())
    if method is None:
        return O.unknown(f"{name} (mode {f.string('mode')!r})")
    legacy = name == "Upsample" or c.opset < 11
    found = _scales_sizes(c, node, rank, legacy)
    if isinstance(found, str):
        return O.unknown(f"{name} ({found})")
    scales, sizes = found
    n_in = c.int_dims(c.x)
    for dim in range(rank):
        entry = c.layout[dim]
        if entry is None:
            if (scales[dim] is not None and scales[dim] != 1) or (sizes[dim] is not None and n_in is not None
                                                                  and sizes[dim] != n_in[dim]):
                return O.unknown(f"{name} (of the batch or channel dims)")
        elif not isinstance(entry, int):
            return O.unknown(f"{name} (of a dimension holding several spatial axes)")
    mode = "asymmetric" if legacy else f.string("coordinate_transformation_mode", "half_pixel",
                                                choices=TRANSFORMATIONS)
    coordinate = COORDINATES.get(mode)
    if coordinate is None:
        return O.unknown(f"{name} (coordinate_transformation_mode {mode!r})")
    roi = _roi(c, node, rank) if mode == "tf_crop_and_resize" else None
    if isinstance(roi, str):
        return O.unknown(f"{name} ({roi})")
    antialias = f.integer("antialias", 0, choices=(0, 1))
    rounding = f.string("nearest_mode", "round_prefer_floor", choices=NEAREST_MODES)
    scale: list[Fraction | None] = []
    size: list[int | None] = []
    factor: list[Fraction | None] = []
    ratio: list[Fraction | None] = []
    offset: list[Fraction] = []
    held = [c.dim_of(axis) for axis in range(c.n_axes)]
    dims = [d for d in held if d is not None]
    if len(dims) < len(held):  # a spatial axis that an earlier op folded away: nothing foveal follows
        return O.unknown(f"{name} (of a tensor that no longer holds every spatial axis)")
    for d in dims:
        n = n_in[d] if n_in is not None else None
        s = _fraction(f, scales[d]) if scales[d] is not None else None
        m = sizes[d] if sizes[d] is not None else (int(n * s) if n is not None and s is not None else None)
        if m is not None and m > MAX_AXIS_LENGTH:
            raise LimitError(f"{f.where}: the output length {m:,} is beyond foveal's limit of "
                             f"{MAX_AXIS_LENGTH:,}")
        scale.append(s)
        size.append(sizes[d])
        factor.append(s if s is not None else (Fraction(m, n) if n and m else None))
        source = _source_map(mode, n, factor[-1], m, sizes[d] is not None, roi[d] if roi else None)
        if isinstance(source, str):
            return O.unknown(f"{name} ({source})")
        if source is None:
            ratio.append(None)
            offset.append(Fraction(0))
        else:  # x = R*o + C, written as (o + a)*R - a + offset for the op's coordinate rule
            half = Fraction(1, 2) if coordinate == "half_pixel" else Fraction(0)
            ratio.append(source[0])
            offset.append(source[1] - half * source[0] + half)
    if antialias and method != "nearest" and any(x is None or x < 1 for x in factor):
        return O.unknown(f"{name} (antialias when shrinking, or at an unknown size: a wider filter)")
    if legacy:
        shrinking = {x < 1 for x in factor if x is not None and x != 1}  # 1: floor and ceil agree
        if any(x is None for x in factor) or len(shrinking) > 1:
            return O.unknown(f"{name} (nearest pixel rule unknown: enlarging on one axis, shrinking "
                             f"on another, or sizes unknown)")
        rounding = "ceil" if shrinking and shrinking.pop() else "floor"
    return O.Resize(method, tuple(scale), tuple(size), coordinate,
                    rounding if method == "nearest" else "floor", tuple(ratio), tuple(offset))


def _fraction(f: Fields, scale: float) -> Fraction:
    """A scale as the nearest fraction with denominator <= 10^6, checked positive and bounded."""
    out = Fraction(scale).limit_denominator(10**6)
    if out <= 0:
        raise LimitError(f"{f.where}: scale {scale!r} is below foveal's smallest scale, 10^-6")
    if out > MAX_PARAMETER:
        raise LimitError(f"{f.where}: scale {scale!r} is beyond foveal's limit of {MAX_PARAMETER:,}")
    return out


def _source_map(mode: str, n: int | None, factor: Fraction | None, m: int | None, sized: bool,
                roi: tuple[Fraction, Fraction] | None) -> tuple[Fraction, Fraction] | str | None:
    """The source coordinate x = R*o + C of ONNX's rule as (R, C) when foveal's own rule with the
    same name differs (it depends on the input size here); None when it does not; a reason when
    it depends on a size not known. `factor` is the scale ONNX uses: given, or output/input
    (`sized`: the output size m was given)."""
    if mode in ("asymmetric", "half_pixel"):
        return None
    if mode == "pytorch_half_pixel":
        if m == 1:
            return Fraction(0), Fraction(0)  # the spec: x = 0 for an output of length 1
        if m is None and (factor is None or factor < 1):
            return "pytorch_half_pixel to an output of unknown length: give input_shape"
        return None
    if mode == "tf_crop_and_resize" and roi != (0, 1):
        return ("tf_crop_and_resize of a part of the image (its float32 roi bounds put taps of "
                "weight 1e-8 where exact bounds would give none)")
    # ONNX's output_width, unrounded: the size when one is given
    width = m if sized else (None if n is None or factor is None else n * factor)
    if width is not None and width == m:
        return None  # align_corners, half_pixel_symmetric, tf_crop_and_resize: foveal's own rule
    if mode == "half_pixel_symmetric" and factor is not None and factor.denominator == 1:
        return None
    if width is None or n is None or m is None or factor is None:
        return f"{mode} at an unknown input size: give input_shape"
    if mode == "align_corners":
        return ((Fraction(n - 1) / (width - 1)) if width != 1 else Fraction(0)), Fraction(0)
    if mode == "half_pixel_symmetric":
        shift = Fraction(n, 2) * (1 - Fraction(m) / width)
        return 1 / factor, shift + 1 / (2 * factor) - Fraction(1, 2)
    # tf_crop_and_resize over the whole image: align_corners with the unrounded output width
    if width == 1:
        return Fraction(0), Fraction(n - 1, 2)
    return Fraction(n - 1) / (width - 1), Fraction(0)


def _roi(c: Context, node: Any, rank: int) -> list[tuple[Fraction, Fraction]] | str:
    """tf_crop_and_resize's region per tensor dim, as fractions of the image."""
    roi = c.consts.floats(c.f.input(1)) if c.given(1) else None
    axes = _axes(c, rank)
    if roi is None or len(roi) != 2 * len(axes):
        return "tf_crop_and_resize without a constant roi of two entries per resized dimension"
    if not all(math.isfinite(x) for x in roi):
        raise c.f.fail("input 'roi'", f"must hold finite numbers, got {roi}")
    out = [(Fraction(0), Fraction(1))] * rank
    k = len(axes)
    for i, d in enumerate(axes):
        out[d] = (Fraction(roi[i]).limit_denominator(10**6), Fraction(roi[i + k]).limit_denominator(10**6))
    return out


def _axes(c: Context, rank: int) -> list[int]:
    """The dims Resize's scales, sizes and roi are listed for (opset 18's `axes`; all by default)."""
    axes = c.f.integers("axes", None)
    return c.f.axes(axes, rank) if axes is not None else list(range(rank))


def _scales_sizes(c: Context, node: Any, rank: int, legacy: bool) -> tuple[list[Any], list[Any]] | str:
    """Per tensor dim, a scale or an output size (the other None), or why neither is known.
    Dims that opset 18's `axes` leaves out keep their length: scale 1."""
    f = c.f
    none: list[Any] = [None] * rank
    if node.op_type == "Upsample" and c.opset < 7:
        if rank != 4:
            raise f.fail("input", f"has rank {rank}; Upsample-1 takes 4-D tensors")
        return [1.0, 1.0, f.number("height_scale", 1.0), f.number("width_scale", 1.0)], none
    if node.op_type == "Upsample" and c.opset < 9:
        return _checked_scales(f, f.numbers("scales", length=rank)), none
    if legacy:
        f.require_inputs(2)
        given = c.consts.floats(c.f.input(1))
        if given is None:
            return "scales not constant"
        if len(given) != rank:
            raise f.fail("input 'scales'", f"has {len(given)} entries; {rank} expected")
        return _checked_scales(f, given), none
    scales: list[float] | None = c.consts.floats(node.input[2]) if c.given(2) else None
    sizes: list[int] | None = c.consts.ints(node.input[3]) if c.given(3) else None
    if scales is not None and sizes is not None:
        raise f.fail("inputs 'scales' and 'sizes'", "are both given; ONNX allows one")
    axes = _axes(c, rank)
    if scales is None and sizes is None:
        sizes = list(c.int_dims(node.output[0]) or []) or None  # the size ONNX's inference found
        axes = list(range(rank))
        if sizes is None:
            named = [n for n, i in (("scales", 2), ("sizes", 3)) if c.given(i)]
            hint = c.no_size()
            return f"{' and '.join(named) or 'scales and sizes'} not constant" + (
                f": {hint}" if hint == "give input_shape" or not named else "")
    if sizes is not None and f.string("keep_aspect_ratio_policy", "stretch",
                                      choices=("stretch", "not_larger", "not_smaller")) != "stretch":
        return "keep_aspect_ratio_policy other than stretch"
    if len(scales if scales is not None else sizes or []) != len(axes):
        return "scales or sizes do not have one entry per dimension"
    out_scales: list[float | None] = [1.0] * rank
    out_sizes: list[int | None] = [None] * rank
    if scales is not None:
        for d, s in zip(axes, _checked_scales(f, scales)):
            out_scales[d] = s
    elif sizes is not None:
        for d, n in zip(axes, f.lengths(sizes, "sizes")):
            if n < 1:
                raise f.fail("sizes", f"{sizes} must be >= 1")
            out_scales[d], out_sizes[d] = None, n
    return out_scales, out_sizes


def _checked_scales(f: Fields, scales: list[float]) -> list[float]:
    if not all(math.isfinite(s) and s > 0 for s in scales):
        raise f.fail("scales", f"{scales[:MAX_RANK]} must be positive finite numbers")
    return scales
