"""Ops that move positions between dims: reshape, permute, transpose, expand, cat, stack,
indexing and splitting. The positions stay; the layout (`foveal.layout`) follows them, and a
crop or a pad records what an index or a concatenation along a spatial axis does.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import fx

from .. import ops as O
from ..building import Value
from ..layout import Layout, LayoutError, Merged, Piece, broadcast, reshape
from .builder import Builder, Handler
from .nodes import bind, global_over, per_dim


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


def _expanded(b: Builder, x: Value, p: dict) -> Layout:
    out = b.out_shape()
    return (None,) * (len(out) - x.rank) + x.layout


reshaped = layout_op(_reshaped, ("input",))
"""view, reshape, flatten, unflatten, squeeze, unsqueeze, nn.Flatten: the layout follows the new
shape."""
permuted = layout_op(_permuted, ("input", "dims"))
swapped = layout_op(_transposed, ("input", "dim0", "dim1"))
"""transpose: two dims swapped."""
moved = layout_op(_moved, ("input", "source", "destination"))
expanded = layout_op(_expanded, ("input",))


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
    if len(entries) != 1:
        raise LayoutError("cat joins tensors with different spatial axes in one dimension")
    (entry,) = entries
    offsets, total = [], 0
    for v in items:
        offsets.append(total)
        total += v.shape[d]
    if isinstance(entry, Merged):  # tokens: extra tokens (a class token) put before or after
        if len(connected) != 1:
            raise LayoutError("cat joins two tensors of flattened spatial tokens")
        i = next(k for k, v in enumerate(items) if v.node is not None)
        exact = entry.exact and i == len(items) - 1
        merged = Merged(entry.axes, entry.extra + offsets[i], exact, entry.parts)
        layout = tuple(merged if k == d else e for k, e in enumerate(connected[0].layout))
        return b.emit(O.Elementwise("concat"), connected, layout)
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


def index_op(b: Builder, x: Value, index: Any) -> Value:
    """x[...] with ints, slices, None and Ellipsis; tensor indices are data-dependent."""
    items = list(index) if isinstance(index, tuple) else [index]
    if any(isinstance(i, (Value, torch.Tensor, list)) for i in items):
        return b.emit(O.Unknown("index with a tensor (gather)"), [x], (None,) * len(b.out_shape()))
    if Ellipsis in items:
        k = items.index(Ellipsis)
        fill = x.rank - (len(items) - 1 - sum(1 for i in items if i is None))
        items[k:k + 1] = [slice(None)] * fill
    start, step = [0] * b.n_axes, [1] * b.n_axes
    stop: list[int | None] = [None] * b.n_axes
    cropped, selected = False, list[int]()
    layout: list[Any] = []
    d = 0
    for item in items:
        if item is None:
            layout.append(None)
            continue
        entry = x.layout[d]
        n = x.shape[d]
        if isinstance(entry, Piece) and not (isinstance(item, slice) and item.indices(n) == (0, n, 1)):
            raise LayoutError("an index into a dimension holding part of a spatial axis split into "
                              "blocks")
        if isinstance(item, slice):
            lo, hi, st = item.indices(n)
            if isinstance(entry, int) and (lo, hi, st) != (0, n, 1):
                start[entry], stop[entry], step[entry] = lo, max(hi, lo), st
                cropped = True
            elif isinstance(entry, Merged) and (lo, hi, st) != (0, n, 1):
                raise LayoutError("a slice of flattened spatial tokens")
            layout.append(entry)
        else:
            i = operator.index(item) % n
            if isinstance(entry, int):
                start[entry], stop[entry] = i, i + 1
                cropped = True
            elif isinstance(entry, Merged):
                selected.extend(entry.axes)
        d += 1
    layout.extend(x.layout[d:])
    shape = b.out_shape()
    if cropped:
        x = b.emit(O.Crop(start, stop, step), [x], tuple(layout), shape,
                   step="crop" if selected else None)
    if selected:
        return global_over(b, x, tuple(selected), "select_token", False, tuple(layout), shape)
    if not cropped:
        return b.identity(x, "select", tuple(layout))
    return x


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
        if isinstance(entry, int):
            start, stop = [0] * b.n_axes, list[int | None]([None] * b.n_axes)
            start[entry], stop[entry] = offset, offset + size
            out.append(b.emit(O.Crop(start, stop, 1), [x], layout, shape, step=str(k)))
        elif isinstance(entry, Merged):
            raise LayoutError("a split of flattened spatial tokens")
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
