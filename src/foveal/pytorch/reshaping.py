"""Ops that move positions between dims: reshape, permute, transpose, expand, cat, stack,
indexing and splitting. The positions stay; the layout (`foveal.layout`) follows them, and a
crop or a pad records what an index or a concatenation along a spatial axis does.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import fx

from .. import ops as O
from ..building import Value
from ..layout import Keys, Layout, LayoutError, Merged, Piece, broadcast, regrown, reshape, spatial_axes
from ..tokens import joined_tokens, kept_tokens, reads_everything, token_position
from .builder import Builder, Handler
from .nodes import bind, global_over, keys_selected, per_dim


def layout_op(compute: Callable[[Builder, Value, dict], Layout], names: Sequence[str],
              defaults: dict[str, Any] | None = None, kind: str = "reshape") -> Handler:
    """Reshapes, permutes and the like: the same positions, a new layout."""

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        p = bind(args, kwargs, names, defaults or {})
        p["*rest"] = args[1:]
        x = p[names[0]]
        if not isinstance(x, Value):
            return b.captured.values[n]
        return b.identity(x, kind, compute(b, x, p))

    return handle


def _reshaped(b: Builder, x: Value, p: dict) -> Layout:
    return reshape(x.layout, x.shape, b.out_shape(), b.sizes(x), blocks=True)


def _permuted(b: Builder, x: Value, p: dict) -> Layout:
    dims = p["*rest"] or p["dims"]  # x.permute(0, 2, 1) or x.permute((0, 2, 1)) or dims=...
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = dims[0]
    return tuple(x.layout[x.dim(d)] for d in dims)


def _transposed(b: Builder, x: Value, p: dict) -> Layout:
    layout = list(x.layout)
    i, j = x.dim(p["dim0"]), x.dim(p["dim1"])
    layout[i], layout[j] = layout[j], layout[i]
    return tuple(layout)


def _moved(b: Builder, x: Value, p: dict) -> Layout:
    src = [x.dim(d) for d in per_dim(p["source"], 1)]
    dst = [x.dim(d) for d in per_dim(p["destination"], 1)]
    rest = [d for d in range(x.rank) if d not in src]
    order: list[int | None] = [None] * x.rank
    for s, d in zip(src, dst):
        order[d] = s
    it = iter(rest)
    return tuple(x.layout[d if d is not None else next(it)] for d in order)


def expanded(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    """expand / expand_as: new leading dims hold no axis; a spatial dim of length 1 (a statistic
    kept with keepdim, or one position) broadcast to length m is that axis upsampled from 1 to
    m, every position reading the one position (EvoNorm's instance_std); a length-1 dim of
    flattened tokens expanded back to its tokens is each of their axes upsampled so."""
    x = args[0] if args else kwargs.get("input")
    if not isinstance(x, Value):
        return b.captured.values[n]
    out = b.out_shape()
    new = len(out) - x.rank
    layout = (None,) * new + x.layout
    sizes: list[int | None] = [None] * b.n_axes
    for d, (entry, before, after) in enumerate(zip(x.layout, x.shape, out[new:])):
        if not spatial_axes((entry,)) or before == after:
            continue
        if isinstance(entry, int):
            sizes[entry] = after
            continue
        grid = [(a, n) for a, n in entry.parts if n != 1] if isinstance(entry, Merged) else []
        if grid and all(isinstance(a, int) for a, _ in grid):  # a statistic over flattened tokens
            if not (isinstance(entry, Merged) and entry.exact and not entry.extra
                    and math.prod(n for _, n in grid) == after):
                raise LayoutError("an expand of a length-1 dim of flattened spatial axes")
            for a, length in grid:
                sizes[a] = length
            continue
        return _regrown(b, x, layout, new + d, out)  # a statistic over pieces of axes
    if all(s is None for s in sizes):
        return b.identity(x, "expand", layout)
    return b.emit(O.upsample([1 if s is None else None for s in sizes], sizes), [x], layout)


def repeated(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    """repeat_interleave by an int count along a dim: over a dim that holds no spatial axis
    (batch, heads, channels: GCViT repeats its global query over the windows of the batch) the
    same positions at a new length; over a dim holding one whole axis, each position r times in
    a row, which is nearest upsampling by r. A tensor of counts, a flattened input (dim=None) or a
    dim of pieces or flattened axes is not followed (an unknown op: export decomposes it)."""
    p = bind(args, kwargs, ("input", "repeats", "dim", "output_size"), {"dim": None, "output_size": None})
    x, r, dim = p["input"], p["repeats"], p["dim"]
    if not isinstance(x, Value):
        return b.captured.values[n]
    if isinstance(r, bool) or not isinstance(r, int) or not isinstance(dim, int):
        raise LayoutError("repeat_interleave with a tensor of counts or without a dim")
    entry = x.layout[x.dim(dim)]
    if not spatial_axes((entry,)):
        return b.identity(x, "repeat_interleave")
    if not isinstance(entry, int):
        raise LayoutError("repeat_interleave along a dim of window pieces or flattened axes")
    scales = [r if a == entry else 1 for a in range(b.n_axes)]
    return b.emit(O.Resize("nearest", scales, None, "asymmetric", "floor"), [x], x.layout)


def _regrown(b: Builder, x: Value, layout: Layout, d: int, out: tuple[int, ...]) -> Value:
    """expand of a length-1 dim left by a reduction over pieces of axes (`layout.regrown`): a
    residue class tiled back by circular pads (each at most the current length, as PyTorch's
    circular padding allows), a block upsampled back by its width."""
    lengths = b.sizes(x)
    new_layout, tiles, blocks = regrown(layout, d, lengths)
    if any(lengths[a] != s for a, (s, _) in tiles.items()):
        raise LayoutError("an expand of a reduced residue class over an axis of another length")
    y, current = x, dict(lengths)
    step = 0
    while any(current[a] < full for a, (_, full) in tiles.items()):
        after = [min(current[a], tiles[a][1] - current[a]) if a in tiles else 0 for a in range(b.n_axes)]
        for a in tiles:
            current[a] += after[a]
        step += 1
        y = b.emit(O.Pad([0] * b.n_axes, after, "circular"), [y], x.layout, x.shape, step=f"tile{step}")
    if blocks:
        w = [blocks.get(a, 1) for a in range(b.n_axes)]
        return b.emit(O.Resize("nearest", w, None, "asymmetric", "floor"), [y], new_layout, out)
    return b.identity(y, "expand", new_layout)


reshaped = layout_op(_reshaped, ("input",))
"""view, reshape, flatten, unflatten, squeeze, unsqueeze, nn.Flatten: the layout follows the new
shape."""
permuted = layout_op(_permuted, ("input", "dims"))
swapped = layout_op(_transposed, ("input", "dim0", "dim1"))
"""transpose: two dims swapped."""
moved = layout_op(_moved, ("input", "source", "destination"))


def cat_op(b: Builder, items: Sequence[Value], dim: int) -> Value:
    items = [v for v in items if isinstance(v, Value)]
    d = items[0].dim(dim)
    connected = [v for v in items if v.node is not None]
    entries = {v.layout[d] for v in connected}
    out = b.out_shape()
    if entries <= {None}:  # channels or batch
        layout = broadcast([(v.layout, v.shape) for v in items], len(out))
        op = O.Merge("concat") if len(connected) > 1 else O.Elementwise("concat")
        return b.emit(op, connected, layout)
    if any(isinstance(e, Merged) for e in entries):
        return _cat_tokens(b, items, d)
    if len(entries) != 1:
        raise LayoutError("cat joins tensors with different spatial axes in one dimension")
    (entry,) = entries
    offsets, total = [], 0
    for v in items:
        offsets.append(total)
        total += v.shape[d]
    # along a spatial axis: each part padded to the full length with nothing, then merged
    a = entry
    if not isinstance(a, int):
        raise LayoutError("cat along a dimension holding part of a spatial axis split into blocks")
    parts: list[Value] = []
    for v, off in zip(items, offsets):
        if v.node is None:
            continue
        before, after = [0] * b.n_axes, [0] * b.n_axes
        before[a], after[a] = off, total - off - v.shape[d]
        shape = v.shape[:d] + (total,) + v.shape[d + 1:]
        parts.append(b.emit(O.Pad(before, after, "constant"), [v], v.layout, shape,
                            step=f"part{len(parts)}"))
    op = O.Merge("concat") if len(parts) > 1 else O.Elementwise("concat")
    return b.emit(op, parts, connected[0].layout)


def _cat_tokens(b: Builder, items: Sequence[Value], d: int) -> Value:
    """Extra tokens (class, distillation, register) put next to the grid tokens: the grid keeps
    its layout. An extra token that reads input must read every position (a class token that
    attended to the grid, as CaiT's); the extra tokens then read every position."""
    grids = [k for k, v in enumerate(items) if isinstance(v.layout[d], Merged)]
    if len(grids) != 1 or items[grids[0]].node is None:
        raise LayoutError("cat joins two tensors of flattened spatial tokens")
    grid = items[grids[0]]
    entry = grid.layout[d]
    assert isinstance(entry, Merged)
    extra_global = entry.extra_global
    for v in items:
        if v.node is None or v is grid:
            continue
        if spatial_axes(v.layout) or not reads_everything(b.graph, v.node, entry.axes):
            raise LayoutError("cat puts tokens that read part of the grid next to grid tokens")
        extra_global = True
    before = sum(v.shape[d] for v in items[:grids[0]])
    merged = joined_tokens(entry, before, grids[0] == len(items) - 1, extra_global)
    layout = tuple(merged if k == d else e for k, e in enumerate(grid.layout))
    return b.emit(O.Elementwise("concat"), [grid], layout)


def index_op(b: Builder, x: Value, index: Any) -> Value:
    """x[...] with ints, slices, None and Ellipsis; tensor indices are data-dependent."""
    items = list(index) if isinstance(index, tuple) else [index]
    if Ellipsis in items:
        k = items.index(Ellipsis)
        fill = x.rank - (len(items) - 1 - sum(1 for i in items if i is None))
        items[k:k + 1] = [slice(None)] * fill
    gathers = [k for k, i in enumerate(items) if isinstance(i, (Value, torch.Tensor, list))]
    if gathers:
        as_slices = _feature_gather(x, items, gathers)
        if as_slices is None:
            return b.emit(O.Unknown("index with a tensor (gather)"), [x], (None,) * len(b.out_shape()))
        items = as_slices
    start, step = [0] * b.n_axes, [1] * b.n_axes
    stop: list[int | None] = [None] * b.n_axes
    cropped, extras, some_keys = False, list[Merged](), False
    layout: list[Any] = []
    d = 0
    for item in items:
        if item is None:
            layout.append(None)
            continue
        entry = x.layout[d]
        n = x.shape[d]
        if isinstance(entry, Keys) and not (isinstance(item, slice) and item.indices(n) == (0, n, 1)):
            some_keys = True
            entry = entry if isinstance(item, slice) else None
        if isinstance(entry, Piece) and not (isinstance(item, slice) and item.indices(n) == (0, n, 1)):
            raise LayoutError("an index into a dimension holding part of a spatial axis split into "
                              "blocks")
        if isinstance(item, slice):
            lo, hi, st = item.indices(n)
            if isinstance(entry, int) and (lo, hi, st) != (0, n, 1):
                start[entry], stop[entry], step[entry] = lo, max(hi, lo), st
                cropped = True
            elif isinstance(entry, Merged) and (lo, hi, st) != (0, n, 1):
                kept = kept_tokens(entry, n, lo, hi, st)
                if kept is None:
                    extras.append(entry)
                entry = kept
            layout.append(entry)
        else:
            i = operator.index(item) % n
            if isinstance(entry, int):
                start[entry], stop[entry] = i, i + 1
                cropped = True
            elif isinstance(entry, Merged):
                position = token_position(entry, i)
                if position is None:
                    extras.append(entry)
                for a, p in zip(entry.axes, position or ()):
                    start[a], stop[a] = p, p + 1
                    cropped = True
        d += 1
    layout.extend(x.layout[d:])
    shape = b.out_shape()
    if extras:  # extra tokens only: they read every position, or none
        if cropped:
            raise LayoutError("an index that picks extra tokens and crops the grid")
        if all(e.extra_global for e in extras):
            axes = tuple(a for e in extras for a in e.axes)
            return global_over(b, x, axes, "select_token", False, tuple(layout), shape)
        return Value(None, tuple(layout), shape)
    if some_keys and not cropped:
        return keys_selected(b, x, tuple(layout), shape)
    if some_keys:
        x = keys_selected(b, x, x.layout, x.shape, step="keys")
    if cropped:
        x = b.emit(O.Crop(start, stop, step), [x], tuple(layout), shape)
    if not cropped:
        return b.identity(x, "select", tuple(layout))
    return x


def _feature_gather(x: Value, items: list[Any], gathers: list[int]) -> list[Any] | None:
    """x[..., idx, ...] with one constant 1-D index on a dim that holds no spatial axis (a
    reordering of channels, as CSATv2's zigzag of DCT coefficients): the same positions, so the
    index is a full slice for the layout. None for anything else (several or input-dependent
    indices, a mask, an index of a spatial dim): a gather foveal does not follow."""
    if len(gathers) != 1 or None in items:
        return None
    k = gathers[0]
    index = items[k]
    if isinstance(index, Value):
        if index.node is not None or len(index.shape) != 1:
            return None
    elif isinstance(index, torch.Tensor):
        if index.dim() != 1 or index.dtype == torch.bool:
            return None
    elif not all(isinstance(i, int) and not isinstance(i, bool) for i in index):
        return None
    if k >= x.rank or spatial_axes(x.layout, [k]) or isinstance(x.layout[k], Keys):
        return None
    return [slice(None) if j == k else item for j, item in enumerate(items)]


def split_op(b: Builder, x: Value, sizes: Sequence[int], dim: int) -> tuple[Value, ...]:
    """chunk/split/unbind parts: views of channels, or crops of a spatial axis."""
    d = x.dim(dim)
    entry = x.layout[d]
    metas = b.captured.values[b.node]  # type: ignore[index]
    out, offset = [], 0
    for k, (size, meta) in enumerate(zip(sizes, metas)):
        shape = tuple(meta.shape)
        squeezed = len(shape) < x.rank
        layout = x.layout[:d] + x.layout[d + 1:] if squeezed else x.layout
        if isinstance(entry, Piece):
            raise LayoutError("a split of a dimension holding part of a spatial axis split into blocks")
        if isinstance(entry, Keys) and size != x.shape[d]:
            out.append(keys_selected(b, x, layout, shape, step=str(k)))
        elif isinstance(entry, int):
            start, stop = [0] * b.n_axes, list[int | None]([None] * b.n_axes)
            start[entry], stop[entry] = offset, offset + size
            out.append(b.emit(O.Crop(start, stop, 1), [x], layout, shape, step=str(k)))
        elif isinstance(entry, Merged):
            kept = kept_tokens(entry, x.shape[d], offset, offset + size, 1)
            if kept is not None:
                out.append(Value(x.node, tuple(kept if k == d else e for k, e in enumerate(layout)),
                                 shape))
            elif entry.extra_global:
                out.append(global_over(b, x, entry.axes, "select_token", False, layout, shape,
                                       step=str(k)))
            else:
                out.append(Value(None, layout, shape))
        else:
            out.append(Value(x.node, layout, shape))
        offset += size
    return tuple(out)


def cat(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("tensors", "dim"), {"dim": 0})
    return cat_op(b, p["tensors"], p["dim"])


def stack(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("tensors", "dim"), {"dim": 0})
    items = [v for v in p["tensors"] if isinstance(v, Value)]
    d = p["dim"] + items[0].rank + 1 if p["dim"] < 0 else p["dim"]
    connected = [v for v in items if v.node is not None]
    layout = broadcast([(v.layout, v.shape) for v in items], items[0].rank)
    layout = layout[:d] + (None,) + layout[d:]
    op = O.Merge("concat") if len(connected) > 1 else O.Elementwise("concat")
    return b.emit(op, connected, layout)


def getitem(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    obj, index = args
    if isinstance(obj, Value):
        return index_op(b, obj, index)
    return obj[index]


def _split_sizes(b: Builder, x: Value, dim: int) -> list[int]:
    """The parts' lengths along `dim`, as PyTorch split them."""
    return [tuple(m.shape)[x.dim(dim)] for m in b.captured.values[b.node]]  # type: ignore[index]


def split(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    """chunk and split (split_with_sizes too): the part lengths are read off PyTorch's result."""
    p = bind(args, kwargs, ("input", "how", "dim"), {"dim": 0})
    x = p["input"]
    return split_op(b, x, _split_sizes(b, x, p["dim"]), p["dim"])


def unbind(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    p = bind(args, kwargs, ("input", "dim"), {"dim": 0})
    x = p["input"]
    return split_op(b, x, [1] * x.shape[x.dim(p["dim"])], p["dim"])


def assigned(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """`x[key] = value` (`writes.assign`)."""
    x, key, value = args
    if not isinstance(x, Value):
        return b.constant()
    items = list(key) if isinstance(key, tuple) else [key]
    if Ellipsis in items:
        k = items.index(Ellipsis)
        items[k:k + 1] = [slice(None)] * (x.rank - (len(items) - 1))
    if None in items:
        raise LayoutError("an item assignment with a new axis (None) in the index")
    if any(len(getattr(item, "shape", ())) > 1 for item in items):  # a mask over several dims
        raise LayoutError("an item assignment through a multi-dimensional index")
    return assign_op(b, x, items, value, "assign", "an item assignment")


def assign_op(b: Builder, x: Value, items: Sequence[Any], value: Any, kind: str, what: str) -> Value:
    """x with the part `items` selects (an int or a slice per leading dim) replaced by `value`:
    item assignment, and ATen's slice_scatter and select_scatter. Where the part covers every
    position of each dim that holds positions (or the grid part of a token dim), the result
    reads the value alone; where it takes part of a feature dim or of a key dim (`layout.Keys`:
    a bound, as the replaced keys may not be read any more), x and the value both; part of a
    spatial axis is not followed."""
    reads_x, some_keys = False, False
    for d, item in enumerate(items):
        entry, length = x.layout[d], x.shape[d]
        if isinstance(item, slice):
            part = item.indices(length)
            if part == (0, length, 1) or (isinstance(entry, Merged) and entry.exact
                                          and part == (entry.extra, length, 1)):
                continue
        elif length == 1:  # x[:, 0] = v on a dim of one: all of it
            continue
        if entry is None:
            reads_x = True
        elif isinstance(entry, Keys):
            reads_x = some_keys = True
        else:
            raise LayoutError(f"{what} into part of a dimension holding spatial axes")
    fresh = [value] if isinstance(value, Value) and value.node is not None else []
    sources = [v for v in ([x] if reads_x else []) + fresh if v.node is not None]
    if not sources:
        return b.constant(x.shape)
    y = b.emit(O.Merge(kind) if len(sources) > 1 else O.Elementwise(kind), sources, x.layout)
    return keys_selected(b, y, x.layout, x.shape, "keys") if some_keys else y
