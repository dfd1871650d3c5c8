"""ONNX ops that move, regroup, cut or pad dimensions: the layout follows the image's axes.

Transpose, Reshape, Flatten, Squeeze, Unsqueeze and Gather give the output a new layout (which
dimension holds which axis, `foveal.layout`); Pad, Slice and Split become foveal pads and crops
on the axes their dimensions hold; Concat joins along a dimension that holds no axis;
DepthToSpace and SpaceToDepth are pixel (un)shuffles.
"""

from __future__ import annotations

import math
from typing import Any

from .. import mixing
from .. import ops as O
from ..layout import Keys, Layout, LayoutError, Merged, reshape, spatial_axes
from ..limits import MAX_AXIS_LENGTH, LimitError
from ..mixing import in_blocks
from ..tokens import joined_tokens, kept_tokens, keys_selected, reads_everything, token_position
from .context import Chain, Context, Link, mixed_chain
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
    return O.elementwise("reshape"), reshape(c.layout, before, after, c.axis_lengths(), blocks=True)


def flatten(c: Context, node: Any) -> tuple[Any, Any]:
    rank = c.rank
    axis = c.f.axis(c.f.integer("axis", 1), rank, extra=1)
    before = c.int_dims(c.x)
    if before is not None and 0 not in before:
        after = (math.prod(before[:axis]), math.prod(before[axis:]))
        return O.elementwise("flatten"), reshape(c.layout, before, after, c.axis_lengths(), blocks=True)
    if any(in_blocks(e) for e in c.layout):
        return O.unknown(f"Flatten (of an axis split into blocks at an unknown size: {c.no_size()})"), None
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
    """Gather along a dim of no axis keeps the layout; along a spatial dim, constant indices: one
    position (a scalar) or evenly spaced ones are a crop, one token of a grid of flattened tokens
    a crop of its position, extra tokens alone a constant (or global once they attended), part
    of a key dim a bound (`foveal.tokens`)."""
    c.f.require_inputs(2)
    axis = c.f.axis(c.f.integer("axis", 0), c.rank)
    if node.input[0] != c.x:
        return O.unknown("Gather (with spatial indices)"), None
    indices = c.dims(c.f.input(1))
    if indices is None:
        return O.unknown("Gather (indices of unknown rank)"), None
    if c.rank - 1 + len(indices) > MAX_RANK:
        raise LimitError(f"{c.f.where}: the output's rank is beyond foveal's limit of {MAX_RANK}")
    entry = c.layout[axis]
    before, after = c.layout[:axis], c.layout[axis + 1:]
    if entry is None:
        return O.elementwise("gather"), before + (None,) * len(indices) + after
    dims = c.int_dims(c.x)
    values = c.consts.ints(c.f.input(1))
    if dims is None or values is None or len(indices) > 1:
        return O.unknown("Gather (along a spatial dim: indices not constant, of rank above 1, or "
                         "at an unknown size)"), None
    n = dims[axis]
    if any(not -n <= i < n for i in values):
        raise c.f.fail("input 'indices'", f"has an index outside [-{n}, {n - 1}]")
    picked = [i % n for i in values]
    if indices:  # a list of indices: a slice when evenly spaced
        step = picked[1] - picked[0] if len(picked) > 1 else 1
        if not picked or step < 1 or picked != list(range(picked[0], picked[-1] + 1, step)):
            return O.unknown("Gather (indices along a spatial dim that are not evenly spaced)"), None
        return _selected(c, {axis: (picked[0], picked[-1] + 1, step)}, c.layout)
    return _selected(c, {axis: (picked[0], picked[0] + 1, 1)}, before + after, dropped=axis)


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
    if all(isinstance(c.layout[d], int | None) for d in axes):
        return _crop(c, axes, starts, ends, steps), None
    dims = c.int_dims(c.x)
    if dims is None:
        return O.unknown(f"Slice (of tokens or blocks at an unknown size: {c.no_size()})"), None
    cuts: dict[int, tuple[int, int, int]] = {}
    for d, b, e, st in zip(axes, starts, ends, steps):
        if c.layout[d] is None:
            continue
        if st < 1:
            return O.unknown("Slice (a negative step along a spatial dim: a flip)"), None
        cuts[d] = slice(b, e, st).indices(dims[d])
    return _selected(c, cuts, c.layout)


def _crop(c: Context, axes: list[int], starts: list[int], ends: list[int], steps: list[int]) -> O.Op:
    """A Slice of dims that each hold one axis, or none: a crop."""
    start, step = [0] * c.n_axes, [1] * c.n_axes
    stop: list[int | None] = [None] * c.n_axes
    top = MAX_AXIS_LENGTH  # no axis is longer: bounds beyond it clamp to the same slice
    for axis, b, e, s in zip(axes, starts, ends, steps):
        entry = c.layout[axis]
        if not isinstance(entry, int):
            continue
        if s < 1:
            return O.unknown("Slice (a negative step along a spatial axis: a flip)")
        start[entry], step[entry] = max(-top, min(b, top)), min(s, top)
        stop[entry] = None if e >= top else max(-top, e)
    return O.crop(tuple(start), tuple(stop), tuple(step))


def _selected(c: Context, cuts: dict[int, tuple[int, int, int]], layout: Layout,
              dropped: int | None = None) -> tuple[Any, Any]:
    """The selection [start:stop:step] (clamped) of some dims of the first spatial input, as
    PyTorch's indexing follows it (`foveal.tokens`): a crop of an axis, the grid or the extra
    tokens of a token dim, part of a key dim; the dim `dropped` is gone from `layout` (one
    index). A dim holding part of an axis split into blocks is refused."""
    dims = c.int_dims(c.x)
    start, step = [0] * c.n_axes, [1] * c.n_axes
    stop: list[int | None] = [None] * c.n_axes
    cropped, some_keys = False, False
    extras: list[Merged] = []
    out = list(layout)
    for d, (lo, hi, st) in cuts.items():
        entry = c.layout[d]
        n = dims[d] if dims is not None else None
        whole = n is not None and (lo, hi, st) == (0, n, 1)
        if entry is None or whole:
            continue
        if in_blocks(entry):
            raise LayoutError("a selection in a dimension holding part of a spatial axis split into blocks")
        if isinstance(entry, Keys):
            some_keys = True
        elif isinstance(entry, int):
            start[entry], stop[entry], step[entry] = lo, max(hi, lo), st
            cropped = True
        elif isinstance(entry, Merged):
            assert n is not None
            if d == dropped:
                position = token_position(entry, lo)
                if position is None:
                    extras.append(entry)
                for a, p in zip(entry.axes, position or ()):
                    start[a], stop[a] = p, p + 1
                    cropped = True
                continue
            kept = kept_tokens(entry, n, lo, hi, st)
            if kept is None:
                extras.append(entry)
            out[d if dropped is None or d < dropped else d - 1] = kept
    layout = tuple(out)
    if extras:  # extra tokens only: they read every position, or none
        if cropped:
            raise LayoutError("a selection that picks extra tokens and crops the grid")
        if all(e.extra_global for e in extras):
            axes = tuple(a for e in extras for a in e.axes)
            return mixed_chain(c.x, mixing.global_over(axes, "select_token", False, layout, c.n_axes)), None
        return Chain((), layout), None
    links: list[Link] = []
    if some_keys:
        links.append(Link(keys_selected(c.n_axes), (c.x,), "keys"))
    if cropped:
        links.append(Link(O.Crop(start, stop, step), (0,) if links else (c.x,), "crop"))
    if not links:
        return O.elementwise("select"), layout
    return Chain(tuple(links), layout), None


def split_op(c: Context, node: Any) -> tuple[Any, Any]:
    f, rank = c.f, c.rank
    axis = f.axis(f.integer("axis", 0), rank)
    entry = c.layout[axis]
    if entry is None:
        return O.elementwise("split"), None
    if in_blocks(entry):
        raise LayoutError("a split of a dimension holding part of a spatial axis split into blocks")
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
    if not isinstance(entry, int):
        return _split_tokens(c, axis, parts, dims), None
    crops, at = [], 0
    for n in parts:
        start, stop = [0] * c.n_axes, [None] * c.n_axes  # type: list[int], list[int | None]
        start[entry], stop[entry] = min(at, MAX_AXIS_LENGTH), min(at + n, MAX_AXIS_LENGTH)
        crops.append(O.crop(tuple(start), tuple(stop)))
        at += n
    return crops, None


def _split_tokens(c: Context, axis: int, parts: list[int], dims: tuple[int, ...] | None) -> list[Chain]:
    """The parts of a token dim (the grid, extra tokens) or a key dim (a bound unless whole)."""
    if dims is None:
        raise LayoutError("a split of a token or key dim at an unknown size")
    chains, at = [], 0
    for n in parts:
        chains.append(_part(c, axis, at, at + n, dims[axis]))
        at += n
    return chains


def _part(c: Context, axis: int, lo: int, hi: int, n: int) -> Chain:
    entry = c.layout[axis]
    if (lo, hi) == (0, n):
        return Chain((), c.layout, same=c.x)
    if isinstance(entry, Keys):
        return Chain((Link(keys_selected(c.n_axes), (c.x,), ""),), c.layout)
    assert isinstance(entry, Merged)
    kept = kept_tokens(entry, n, lo, hi, 1)
    if kept is not None:
        return Chain((), c.layout[:axis] + (kept,) + c.layout[axis + 1:], same=c.x)
    layout = c.layout[:axis] + (None,) + c.layout[axis + 1:]
    if entry.extra_global:
        return mixed_chain(c.x, mixing.global_over(entry.axes, "select_token", False, layout, c.n_axes))
    return Chain((), layout)


def concat(c: Context, node: Any) -> tuple[Any, Any]:
    """Concat over channels merges; along a spatial axis each part is padded to the whole length
    with nothing, then merged (exact); extra tokens put next to a grid of tokens (a class token)
    become its extra tokens, reading every position once one of them does (`foveal.tokens`)."""
    axis = c.f.axis(c.f.integer("axis", 1 if c.opset < 4 else Fields.REQUIRED), c.rank)
    spatial = c.spatial_inputs(node)
    entries = {c.layouts[t][axis] for t in spatial}
    if entries <= {None}:
        return (O.concat() if len(spatial) > 1 else O.elementwise("concat")), None
    found = [_length(c, t, axis) for t in node.input]
    lengths = [n for n in found if n is not None]
    if len(lengths) != len(found):
        return O.unknown(f"Concat (along a spatial dim, at an unknown size: {c.no_size()})"), None
    if any(isinstance(e, Merged) for e in entries):
        return _cat_tokens(c, node, axis, lengths), None
    target = next(iter(entries))
    if len(entries) != 1 or not isinstance(target, int):
        raise LayoutError("a Concat along a dimension holding different axes, tokens or blocks")
    rolled = _rolled(c, node, axis, target)
    if rolled is not None:
        return rolled, None
    total = sum(lengths)
    links: list[Link] = []
    at = 0
    for t, n in zip(node.input, lengths):
        if t in c.refs:
            before, after = [0] * c.n_axes, [0] * c.n_axes
            before[target], after[target] = at, total - at - n
            links.append(Link(O.pad(tuple(before), tuple(after)), (t,), f"part{len(links)}"))
        at += n
    if len(links) == 1:
        return Chain(tuple(links), c.layout), None
    return Chain((*links, Link(O.concat(), tuple(range(len(links))), "")), c.layout), None


def _rolled(c: Context, node: Any, axis: int, target: int) -> Chain | None:
    """Concat(x[k:], x[:k]) along a spatial axis, as exporters write torch.roll, read as PyTorch
    reads the roll: a circular pad by L - k before, then the first L (regions in circularly
    padded coordinates, the same as the PyTorch front-end's; clip=True gives the real pixels)."""
    if len(node.input) != 2:
        return None
    first, second = (_sliced(c, t, axis) for t in node.input)
    if first is None or second is None:
        return None
    (source, lo, hi, n), (other, lo2, hi2, _) = first, second
    if source != other or c.layouts[source][axis] != target or not 0 < lo == hi2 or (hi, lo2) != (n, 0):
        return None
    before = [0] * c.n_axes
    stop: list[int | None] = [None] * c.n_axes
    before[target], stop[target] = n - lo, n
    return Chain((Link(O.Pad(before, [0] * c.n_axes, "circular"), (source,), "roll_pad"),
                  Link(O.Crop([0] * c.n_axes, stop, 1), (0,), "")), c.layout)


def _sliced(c: Context, tensor: str, axis: int) -> tuple[str, int, int, int] | None:
    """(x, lo, hi, length) when `tensor` is x[lo:hi] along `axis` only (a Slice of opset 10 or
    later with constant bounds, step 1), x spatial and its length known."""
    node = c.producers.get(tensor)
    if node is None or node.op_type != "Slice" or c.opset < 10 or len(node.input) < 3:
        return None
    source = node.input[0]
    dims = c.int_dims(source) if source in c.refs else None
    values = [c.consts.ints(name) if name else None for name in list(node.input[1:5])]
    if dims is None or values[0] is None or values[1] is None or len(values[0]) != 1:
        return None
    axes = values[2] if len(values) > 2 and values[2] is not None else [0]
    steps = values[3] if len(values) > 3 and values[3] is not None else [1]
    if len(axes) != 1 or axes[0] % len(dims) != axis or steps != [1]:
        return None
    lo, hi, _ = slice(values[0][0], values[1][0]).indices(dims[axis])
    return source, lo, hi, dims[axis]


def _length(c: Context, tensor: str, axis: int) -> int | None:
    dims = c.int_dims(tensor) if tensor in c.refs else c.dims(tensor)
    n = dims[axis] if dims is not None and len(dims) > axis else None
    return n if isinstance(n, int) else None


def _cat_tokens(c: Context, node: Any, axis: int, lengths: list[int]) -> Chain:
    """Extra tokens (constants, or tensors of no grid dim that read every position of the grid's
    axes) next to one grid of flattened tokens."""
    grids = [k for k, t in enumerate(node.input) if t in c.refs and isinstance(c.layouts[t][axis], Merged)]
    if len(grids) != 1:
        raise LayoutError("a Concat joins two tensors of flattened spatial tokens")
    grid = node.input[grids[0]]
    entry = c.layouts[grid][axis]
    assert isinstance(entry, Merged)
    attended = False
    for t in node.input:
        if t == grid or t not in c.refs:
            continue
        if spatial_axes(c.layouts[t]) or not reads_everything(c.builder.graph, c.refs[t], entry.axes):
            raise LayoutError("a Concat puts tokens that read part of the grid next to grid tokens")
        attended = True
    joined = joined_tokens(entry, sum(lengths[:grids[0]]), grids[0] == len(node.input) - 1, attended)
    layout = c.layouts[grid][:axis] + (joined,) + c.layouts[grid][axis + 1:]
    return Chain((Link(O.elementwise("concat"), (grid,), ""),), layout)


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
