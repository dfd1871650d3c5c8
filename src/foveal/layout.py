"""Which network spatial axis each dimension of a tensor holds, through reshapes and permutes
(shared by the PyTorch, ONNX and Keras front-ends).

A layout has one entry per tensor dimension: None (batch, channels, features), an int (that
spatial axis of the input, position by position) or `Merged` (several axes flattened into one
dimension, as ViT's tokens). Spatial ops read their axes from the layout, so a conv on a
permuted or channels-last tensor is still mapped to the right axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import FovealError


class LayoutError(FovealError):
    """A tensor operation mixes spatial axes in a way foveal cannot follow."""


@dataclass(frozen=True)
class Merged:
    """A dimension holding `axes` flattened row-major, after `extra` leading tokens that read no
    spatial position (a class token). `exact` is False once channels were flattened in too.
    `parts` are the flattened dims' entries and lengths (batch or channels too), so a reshape
    to those lengths splits the dim back into them."""

    axes: tuple[int, ...]
    extra: int = 0
    exact: bool = True
    parts: tuple[tuple[Any, int], ...] = ()


Entry = int | Merged | None
Layout = tuple[Entry, ...]


def standard(n_axes: int) -> Layout:
    """(N, C, *spatial)."""
    return (None, None, *range(n_axes))


def axes_in(entry: Entry) -> tuple[int, ...]:
    if entry is None:
        return ()
    if isinstance(entry, Merged):
        return entry.axes
    return (entry,)


def spatial_axes(layout: Layout, dims: list[int] | range | None = None) -> tuple[int, ...]:
    """Network axes held by `dims` (all dims if None), in dim order."""
    picked = layout if dims is None else [layout[d] for d in dims]
    return tuple(a for e in picked for a in axes_in(e))


def broadcast(layouts: list[tuple[Layout, tuple[int, ...]]], out_rank: int) -> Layout:
    """Layout of an element-wise result: dims aligned from the right; one spatial entry per dim."""
    out: list[Entry] = []
    for k in range(1, out_rank + 1):
        found: Entry = None
        for layout, _shape in layouts:
            if k > len(layout) or layout[-k] is None:
                continue
            if found is not None and layout[-k] != found:
                raise LayoutError(f"an element-wise op combines different spatial axes in one "
                                  f"dimension ({found} and {layout[-k]})")
            found = layout[-k]
        out.append(found)
    return tuple(reversed(out))


def reshape(layout: Layout, shape: tuple[int, ...], new_shape: tuple[int, ...],
            sizes: dict[int, int]) -> Layout:
    """Layout after view/reshape/flatten/unflatten, by grouping dims of equal products.

    `sizes` gives each axis's length, to tell when a flattened dim is split back into its axes.
    """
    out: list[Entry] = []
    i = j = 0
    while i < len(shape) or j < len(new_shape):
        # size-1 dims come and go freely
        if i < len(shape) and shape[i] == 1 and (j >= len(new_shape) or new_shape[j] != 1):
            i += 1
            continue
        if j < len(new_shape) and new_shape[j] == 1 and (i >= len(shape) or shape[i] != 1):
            out.append(None)
            j += 1
            continue
        if i >= len(shape) or j >= len(new_shape):
            raise LayoutError(f"cannot follow a reshape of {shape} to {new_shape}")
        a, b = [i], [j]
        pa, pb = shape[i], new_shape[j]
        while pa != pb:
            if pa < pb:
                i += 1
                a.append(i)
                pa *= shape[i]
            else:
                j += 1
                b.append(j)
                pb *= new_shape[j]
        i += 1
        j += 1
        out.extend(_regroup([layout[d] for d in a], [shape[d] for d in a],
                            [new_shape[d] for d in b], sizes))
    return tuple(out)


def _regroup(entries: list[Entry], before: list[int], after: list[int],
             sizes: dict[int, int]) -> list[Entry]:
    axes = [a for e in entries for a in axes_in(e)]
    if not axes:
        return [None] * len(after)
    if len(entries) == 1 and len(after) == 1:
        return list(entries)
    if len(after) == 1:  # flatten: spatial dims (and maybe channels) into one
        return [merged(entries, before)]
    if len(entries) == 1 and isinstance(entries[0], Merged):
        m = entries[0]
        real = [n for n in after if n != 1]
        if m.parts and not m.extra and real == [n for _, n in m.parts if n != 1]:
            it = iter(e for e, n in m.parts if n != 1)
            return [next(it) if n != 1 else None for n in after]
        if m.exact and not m.extra and real == [sizes[a] for a in m.axes if sizes[a] != 1]:
            it = iter(a for a in m.axes if sizes[a] != 1)
            return [next(it) if n != 1 else None for n in after]
    raise LayoutError(f"a reshape of dims {tuple(before)} to {tuple(after)} splits or regroups "
                      f"spatial axes (window partitioning, say), which foveal cannot follow")


def merged(entries: Sequence[Entry], lengths: Sequence[int | None]) -> Entry:
    """The entry of one dim that flattens dims holding `entries`, of `lengths`, row-major (a
    Flatten layer): None when no spatial axis is among them. A None length is unknown: the
    result is then never split back."""
    axes = tuple(a for e in entries for a in axes_in(e))
    if not axes:
        return None
    exact = all(e is not None and not (isinstance(e, Merged) and (e.extra or not e.exact))
                for e, n in zip(entries, lengths) if n != 1)
    known = [n for n in lengths if n is not None]
    parts = _parts(list(entries), known) if len(known) == len(lengths) else ()
    return Merged(axes, 0, exact, parts)


def _parts(entries: list[Entry], lengths: list[int]) -> tuple[tuple[Any, int], ...]:
    """The flattened dims, nested flattenings unrolled; () when one of them is unknown."""
    out: list[tuple[Any, int]] = []
    for e, n in zip(entries, lengths):
        if isinstance(e, Merged):
            if not e.parts or e.extra:
                return ()
            out.extend(e.parts)
        else:
            out.append((e, n))
    return tuple(out)


def size_of(layout: Layout, shape: tuple[int, ...], n_axes: int) -> tuple[int | None, ...]:
    """Each axis's length as the tensor shows it; None where no dim holds it alone."""
    out: list[int | None] = [None] * n_axes
    for entry, n in zip(layout, shape):
        if isinstance(entry, int):
            out[entry] = n
        elif isinstance(entry, Merged):
            for a in entry.axes:
                out[a] = None
    return tuple(out)



def lengths(layout: Layout, shape: tuple[int, ...], n_axes: int) -> dict[int, int]:
    """Each axis's current length, 1 for an axis no dim holds alone (for `reshape`'s `sizes`)."""
    return {a: 1 if n is None else n for a, n in enumerate(size_of(layout, shape, n_axes))}


def axis_per_dim(layout: Layout, dims: Sequence[int]) -> tuple[int | None, ...]:
    """The spatial axis each of `dims` holds (None: batch, channels, features), for an op that
    slides a window over those dims; a window cannot run over a dim of flattened axes."""
    out: list[int | None] = []
    for d in dims:
        entry = layout[d]
        if isinstance(entry, Merged):
            raise LayoutError("a spatial op runs over a dimension of flattened spatial axes")
        out.append(entry)
    return tuple(out)


def per_axis(mapped: Sequence[int | None], values: Sequence[Any], identity: Any, n_axes: int) -> list[Any]:
    """An op's per-dim `values` as per network axis: `mapped[k]` is the axis dim k holds (None:
    the value is dropped); an axis no dim holds gets `identity` (kernel 1, padding 0)."""
    out = [identity] * n_axes
    for a, v in zip(mapped, values):
        if a is not None:
            out[a] = v
    return out


def mask(axes: Sequence[int], n_axes: int) -> tuple[bool, ...]:
    """A Global op's `axes`: True for each network axis in `axes`."""
    return tuple(a in axes for a in range(n_axes))
