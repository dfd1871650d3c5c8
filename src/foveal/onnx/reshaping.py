"""ONNX ops that move, regroup, cut or pad dimensions: the layout follows the image's axes.

Transpose, Reshape, Flatten, Squeeze, Unsqueeze and Gather give the output a new layout (which
dimension holds which axis, `foveal.layout`); Pad, Slice and Split become foveal pads and crops
on the axes their dimensions hold; Concat joins along a dimension that holds no axis;
DepthToSpace and SpaceToDepth are pixel (un)shuffles.
"""

from __future__ import annotations

import math
from typing import Any

from .. import ops as O
from ..layout import Layout, Merged, reshape, spatial_axes
from ..limits import MAX_AXIS_LENGTH, LimitError
from .context import Context
from .fields import MAX_RANK, Fields, bounded
from .fold import reshaped

PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def transpose(c: Context, node: Any) -> tuple[Any, Any]:
    rank = c.rank
    perm = c.f.permutation(c.f.integers("perm", list(range(rank))[::-1]), rank)
    dims = c.int_dims(c.x)
    if dims is not None and node.output[0] not in c.shapes:  # an input ONNX could not infer
        c.shapes[node.output[0]] = tuple(dims[p] for p in perm)
    return O.elementwise("transpose"), tuple(c.layout[p] for p in perm)


def reshape_op(c: Context, node: Any) -> tuple[Any, Any]:
    f = c.f
    before = c.int_dims(c.x)
    after = c.int_dims(node.output[0])
    if after is None and before is not None:
        if c.opset >= 5:
            f.require_inputs(2)
            target = c.consts.ints(c.f.input(1))
        else:
            target = f.integers("shape", None)
        if target is not None:
            after = reshaped(f, before, target, bool(f.integer("allowzero", 0, choices=(0, 1))))
            if after is None:
                return O.unknown(f"Reshape (no shape fits target {target} for dims {before})"), None
    if before is None:
        return O.unknown(f"Reshape (shapes unknown: {c.no_size()})"), None
    if after is None:
        return O.unknown("Reshape (target shape not constant)"), None
    if math.prod(before) != math.prod(after) or 0 in before or 0 in after:
        return O.unknown(f"Reshape (of dims {before} to {after}: element counts differ, or are 0)"), None
    c.shapes[node.output[0]] = after  # where ONNX's inference did not find it (Reshape-1)
    return O.elementwise("reshape"), reshape(c.layout, before, after, c.axis_lengths())


def flatten(c: Context, node: Any) -> tuple[Any, Any]:
    rank = c.rank
    axis = c.f.axis(c.f.integer("axis", 1), rank, extra=1)
    before = c.int_dims(c.x)
    if before is not None and 0 not in before:
        after = (math.prod(before[:axis]), math.prod(before[axis:]))
        return O.elementwise("flatten"), reshape(c.layout, before, after, c.axis_lengths())
    parts = (c.layout[:axis], c.layout[axis:])
    return O.elementwise("flatten"), tuple(_merged(p) for p in parts)


def squeeze(c: Context, node: Any) -> tuple[Any, Any]:
    axes = c.param(1, "axes", 13)
    rank = c.rank
    if isinstance(axes, str):
        return O.unknown("Squeeze (axes not constant)"), None
    if axes is None:
        dims = c.int_dims(c.x)
        if dims is None:
            return O.unknown(f"Squeeze (which dims have size 1 is unknown: {c.no_size()})"), None
        axes = [d for d, n in enumerate(dims) if n == 1]
    drop = set(c.f.axes(axes, rank))
    return O.elementwise("squeeze"), tuple(e for d, e in enumerate(c.layout) if d not in drop)


def unsqueeze(c: Context, node: Any) -> tuple[Any, Any]:
    axes = c.param(1, "axes", 13)
    if axes is None:
        raise c.f.fail("axes", "are required but missing")
    if isinstance(axes, str):
        return O.unknown("Unsqueeze (axes not constant)"), None
    rank = c.rank + len(axes)
    if rank > MAX_RANK:
        raise LimitError(f"{c.f.where}: the output would have rank {rank}, beyond foveal's limit "
                         f"of {MAX_RANK}")
    new = set(c.f.axes(axes, c.rank, extra=len(axes)))
    rest = iter(c.layout)
    return O.elementwise("unsqueeze"), tuple(None if d in new else next(rest) for d in range(rank))


def gather(c: Context, node: Any) -> tuple[Any, Any]:
    c.f.require_inputs(2)
    axis = c.f.axis(c.f.integer("axis", 0), c.rank)
    if node.input[0] != c.x or c.layout[axis] is not None:
        return O.unknown("Gather (along a spatial axis, or with spatial indices)"), None
    indices = c.dims(c.f.input(1))
    if indices is None:
        return O.unknown("Gather (indices of unknown rank)"), None
    if c.rank - 1 + len(indices) > MAX_RANK:
        raise LimitError(f"{c.f.where}: the output's rank is beyond foveal's limit of {MAX_RANK}")
    layout = c.layout[:axis] + (None,) * len(indices) + c.layout[axis + 1:]
    return O.elementwise("gather"), layout


def pad(c: Context, node: Any) -> tuple[Any, Any]:
    f, rank = c.f, c.rank
    if c.opset < 11:
        pads = f.integers("pads" if f.has("pads") or c.opset >= 2 else "paddings", None)
        if pads is None:
            raise f.fail("attribute 'pads'", "is required but missing")
    else:
        f.require_inputs(2)
        pads = c.consts.ints(c.f.input(1))
    if pads is None:
        return O.unknown("Pad (pads not constant)"), None
    axes: Any = c.f.input(3) if c.opset >= 18 else ""
    if axes:
        axes = c.consts.ints(axes)
        if axes is None:
            return O.unknown("Pad (axes not constant)"), None
    axes = f.axes(axes, rank) if axes else list(range(rank))
    k = len(axes)
    if len(pads) != 2 * k:
        raise f.fail("pads", f"has {len(pads)} entries; {2 * k} expected (two per padded dimension)")
    for p in pads:
        bounded(p, f"{f.where}: pads")
    mode = PAD_MODES[f.string("mode", "constant", choices=PAD_MODES)]
    before, after = [0] * c.n_axes, [0] * c.n_axes
    for i, d in enumerate(axes):
        entry = c.layout[d]
        if entry is None:
            continue
        if not isinstance(entry, int):
            return O.unknown("Pad (of a dimension holding several spatial axes)"), None
        before[entry], after[entry] = pads[i], pads[i + k]
    return O.pad(tuple(before), tuple(after), mode), None


def slice_op(c: Context, node: Any) -> tuple[Any, Any]:
    f, rank = c.f, c.rank
    if c.opset < 10:
        starts, ends = f.integers("starts", limit=2**63), f.integers("ends", limit=2**63)
        axes, steps = f.integers("axes", None), None
    else:
        f.require_inputs(3)
        starts, ends = c.consts.ints(c.f.input(1)), c.consts.ints(c.f.input(2))
        axes = c.consts.ints(c.f.input(3)) if c.f.input(3) else None
        steps = c.consts.ints(c.f.input(4)) if c.f.input(4) else None
        if (c.f.input(3) and axes is None) or (c.f.input(4) and steps is None):
            starts = None
    if starts is None or ends is None:
        return O.unknown("Slice (bounds not constant)"), None
    axes, steps = f.slice_axes(starts, ends, axes, steps, rank)
    start, stop, step = [0] * c.n_axes, [None] * c.n_axes, [1] * c.n_axes
    top = MAX_AXIS_LENGTH  # no axis is longer: bounds beyond it clamp to the same slice
    for axis, b, e, s in zip(axes, starts, ends, steps):
        entry = c.layout[axis]
        if entry is None:
            continue
        if not isinstance(entry, int):
            return O.unknown("Slice (of a dimension holding several spatial axes)"), None
        if s < 1:
            return O.unknown("Slice (a negative step along a spatial axis: a flip)"), None
        start[entry], step[entry] = max(-top, min(b, top)), min(s, top)
        stop[entry] = None if e >= top else max(-top, e)
    return O.crop(tuple(start), tuple(stop), tuple(step)), None


def split_op(c: Context, node: Any) -> tuple[Any, Any]:
    f, rank = c.f, c.rank
    axis = f.axis(f.integer("axis", 0), rank)
    entry = c.layout[axis]
    if entry is None:
        return O.elementwise("split"), None
    if not isinstance(entry, int):
        return O.unknown("Split (of a dimension holding several spatial axes)"), None
    parts = c.param(1, "split", 13)
    if isinstance(parts, str):
        return O.unknown("Split (sizes not constant)"), None
    dims = c.int_dims(c.x)
    if parts is None:
        count = f.integer("num_outputs", len(node.output), minimum=1)
        if count != len(node.output):
            raise f.fail("attribute 'num_outputs'", f"is {count}, but the node has {len(node.output)} "
                         f"outputs")
        if dims is None:
            return O.unknown(f"Split (along a spatial axis at an unknown size: {c.no_size()})"), None
        size = -(-dims[axis] // count)
        parts = [max(0, min(size, dims[axis] - i * size)) for i in range(count)]
    parts = f.lengths(parts, "split")
    if len(parts) != len(node.output):
        raise f.fail("split", f"has {len(parts)} entries, but the node has {len(node.output)} outputs")
    crops, at = [], 0
    for n in parts:
        start, stop = [0] * c.n_axes, [None] * c.n_axes  # type: list[int], list[int | None]
        start[entry], stop[entry] = min(at, MAX_AXIS_LENGTH), min(at + n, MAX_AXIS_LENGTH)
        crops.append(O.crop(tuple(start), tuple(stop)))
        at += n
    return crops, None


def concat(c: Context, node: Any) -> tuple[Any, Any]:
    axis = c.f.axis(c.f.integer("axis", 1 if c.opset < 4 else Fields.REQUIRED), c.rank)
    if c.layout[axis] is not None:
        return O.unknown("Concat (along a spatial axis)"), None
    return (O.concat() if len(c.spatial_inputs(node)) > 1 else O.elementwise("concat")), None


def space_depth(c: Context, node: Any) -> tuple[Any, Any]:
    index = c.window_dims()
    block = c.f.integer("blocksize", minimum=1)
    if index is None or len(index) != c.rank - 2:
        return O.unknown(f"{node.op_type} (on dimensions that are not the input's spatial axes)"), None
    return (O.pixel_shuffle(block) if node.op_type == "DepthToSpace" else O.pixel_unshuffle(block)), None


def _merged(entries: Layout) -> Any:
    """What one dimension made of `entries` holds (Flatten at an unknown size)."""
    axes = spatial_axes(entries)
    if not axes:
        return None
    if len(entries) == 1:
        return entries[0]
    return Merged(axes, 0, False)
