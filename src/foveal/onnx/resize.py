"""ONNX Resize (opsets 10 to 19) and Upsample (7 to 9) as foveal Resize ops.

Every coordinate transformation maps onto foveal's three where the pixels read are the same:
pytorch_half_pixel is half_pixel except for an output of length 1 (it then reads pixel 0);
half_pixel_symmetric is half_pixel when input size x scale is a whole number; tf_crop_and_resize
over the whole image (roi 0 to 1) is align_corners except for an output of length 1. Where the
sizes do not tell which case holds, the op is reported as unsupported with the reason.
Upsample and Resize-10 are asymmetric; their nearest pixel is floor(x) when enlarging and ceil(x)
when shrinking, as onnxruntime computes them.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .. import ops as O
from .fold import attributes

if TYPE_CHECKING:
    from .convert import Converter

METHODS = {"nearest": "nearest", "linear": "linear", "bilinear": "linear", "trilinear": "linear",
           "cubic": "cubic", "bicubic": "cubic"}
COORDINATES = {"half_pixel": "half_pixel", "pytorch_half_pixel": "half_pixel", "asymmetric": "asymmetric",
               "align_corners": "align_corners", "half_pixel_symmetric": "half_pixel",
               "tf_crop_and_resize": "align_corners"}


def resize_op(c: Converter, node: Any) -> O.Op:
    a, rank, name = attributes(node), c._rank(), node.op_type
    method = METHODS.get(str(a.get("mode", "nearest")).lower())
    if method is None:
        return O.unknown(f"{name} (mode {a.get('mode')!r})")
    legacy = name == "Upsample" or c.opset < 11
    found = _scales_sizes(c, node, a, rank, legacy)
    if isinstance(found, str):
        return O.unknown(f"{name} ({found})")
    scales, sizes = found
    n_in = c._int_dims(c.x)
    scale: list[Fraction | None] = []
    size: list[int | None] = []
    out: list[int | None] = []
    ratio: list[Fraction | None] = []
    for dim in range(rank):
        entry = c.layout[dim]
        if entry is None:
            if (scales is not None and scales[dim] != 1) or (sizes is not None and n_in is not None
                                                              and sizes[dim] != n_in[dim]):
                return O.unknown(f"{name} (of the batch or channel dims)")
            continue
        if not isinstance(entry, int):
            return O.unknown(f"{name} (of a dimension holding several spatial axes)")
    for axis in range(c.n_axes):
        d = c._dim_of(axis)
        n = n_in[d] if n_in is not None and d is not None else None
        if d is None:
            return O.unknown(f"{name} (of a dimension holding several spatial axes)")
        if scales is not None:
            f = Fraction(scales[d]).limit_denominator(10**6)
            scale.append(f)
            size.append(None)
            out.append(int(n * f) if n is not None else None)
            ratio.append(f)
        elif sizes is not None:
            scale.append(None)
            size.append(sizes[d])
            out.append(sizes[d])
            ratio.append(Fraction(sizes[d], n) if n else None)
    coordinate_name = "asymmetric" if legacy else a.get("coordinate_transformation_mode", "half_pixel")
    coordinate = COORDINATES.get(coordinate_name)
    if coordinate is None:
        return O.unknown(f"{name} (coordinate_transformation_mode {coordinate_name!r})")
    why = _differs(c, node, coordinate_name, scale, out, n_in, rank)
    if why:
        return O.unknown(f"{name} ({why})")
    if a.get("antialias", 0) and method != "nearest" and any(r is None or r < 1 for r in ratio):
        return O.unknown(f"{name} (antialias when shrinking, or at an unknown size: a wider filter)")
    rounding = a.get("nearest_mode", "round_prefer_floor")
    if legacy:
        shrinking = {r is not None and r < 1 for r in ratio}
        if any(r is None for r in ratio) or len(shrinking) > 1:
            return O.unknown(f"{name} (nearest pixel rule unknown: enlarging on one axis, shrinking "
                             f"on another, or sizes unknown)")
        rounding = "ceil" if shrinking.pop() else "floor"
    return O.Resize(method, tuple(scale) if scales is not None else None,
                    tuple(size) if sizes is not None else None, coordinate,
                    rounding if method == "nearest" else "floor")


def _scales_sizes(c: Converter, node: Any, a: dict[str, Any], rank: int,
                  legacy: bool) -> tuple[list[float] | None, list[int] | None] | str:
    """Per tensor dim: the scales, or the output sizes (or why neither is known)."""
    if node.op_type == "Upsample" and c.opset < 7:
        return [1.0, 1.0, a.get("height_scale", 1.0), a.get("width_scale", 1.0)], None
    if node.op_type == "Upsample" and c.opset < 9:
        listed = list(a.get("scales", []))
        return (listed, None) if listed else "scales missing"
    if legacy:
        given = c.consts.floats(c._input(node, 1))
        return (given, None) if given is not None else "scales not constant"
    scales: list[float] | None = c.consts.floats(node.input[2]) if c._given(node, 2) else None
    sizes: list[int] | None = c.consts.ints(node.input[3]) if c._given(node, 3) else None
    if scales is None and sizes is None:
        sizes = list(c._int_dims(node.output[0]) or []) or None
        if sizes is None:
            return "scales and sizes not constant: give input_shape"
    axes = a.get("axes")
    if axes is not None:
        full_scales, full_sizes = [1.0] * rank, list(c._int_dims(c.x) or [0] * rank)
        for i, d in enumerate(axes):
            if scales is not None:
                full_scales[d % rank] = scales[i]
            if sizes is not None:
                full_sizes[d % rank] = sizes[i]
        scales = full_scales if scales is not None else None
        sizes = full_sizes if sizes is not None else None
    if sizes is not None and a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        return "keep_aspect_ratio_policy other than stretch"
    if (scales is not None and len(scales) != rank) or (sizes is not None and len(sizes) != rank):
        return "scales or sizes do not have one entry per dimension"
    return scales, sizes


def _differs(c: Converter, node: Any, mode: str, scale: list[Fraction | None], out: list[int | None],
             n_in: tuple[int, ...] | None, rank: int) -> str:
    """Why `mode` does not read what its foveal counterpart reads here ('' when it does)."""
    sizes = [n_in[d] if n_in is not None and (d := c._dim_of(axis)) is not None else None
             for axis in range(c.n_axes)]
    if mode in ("pytorch_half_pixel", "tf_crop_and_resize"):
        for n, m in zip(sizes, out):
            if m is None or (m == 1 and n != 1):
                return f"{mode} to an output of length 1, or of unknown length: give input_shape"
    if mode == "half_pixel_symmetric":
        for n, f in zip(sizes, scale):
            if f is not None and (f.denominator != 1 if n is None else (n * f).denominator != 1):
                return "half_pixel_symmetric with a scale that does not give a whole output size"
    if mode == "tf_crop_and_resize":
        roi = c.consts.floats(c._input(node, 1)) if c._given(node, 1) else None
        axes = attributes(node).get("axes", list(range(rank)))
        if roi is None or len(roi) != 2 * len(axes):
            return "tf_crop_and_resize without a constant roi"
        k = len(axes)
        for i, d in enumerate(axes):
            if c.layout[d % rank] is not None and (roi[i], roi[i + k]) != (0.0, 1.0):
                return "tf_crop_and_resize of a part of the image (roi other than 0 to 1)"
    return ""
