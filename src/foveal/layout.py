"""Which network spatial axis each dimension of a tensor holds, through reshapes and permutes
(shared by the PyTorch, ONNX and Keras front-ends).

A layout has one entry per tensor dimension: None (batch, channels, features), an int (that
spatial axis of the input, position by position) or `Merged` (several axes flattened into one
dimension, as ViT's tokens). Spatial ops read their axes from the layout, so a conv on a
permuted or channels-last tensor is still mapped to the right axis.

A `Piece` is part of an axis split into blocks by a view (window partitioning): the block index
or the position within the block. Pieces are followed through permutes and views until they are
merged back, in order, into the axis; an op that mixes over some pieces of an axis reads a block
or a residue class of it (`mixed`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .errors import FovealError


class LayoutError(FovealError):
    """A tensor operation mixes spatial axes in a way foveal cannot follow."""


@dataclass(frozen=True)
class Merged:
    """A dimension holding `axes` flattened row-major, after `extra` leading tokens (class,
    distillation, register tokens) that hold no grid position. `exact` is False once channels
    were flattened in too. `parts` are the flattened dims' entries and lengths (batch or
    channels too), so a reshape to those lengths splits the dim back into them.

    The extra tokens read no input position until an op reads across the dim (attention): then
    they read every position (`extra_global`), while the grid tokens keep their own regions
    (the node's regions are the grid tokens'; an extra token is a node of its own once selected).
    """

    axes: tuple[int, ...]
    extra: int = 0
    exact: bool = True
    parts: tuple[tuple[Any, int], ...] = ()
    extra_global: bool = False


@dataclass(frozen=True)
class Piece:
    """Part of a spatial axis split into blocks: the dim holds digit (p // stride) % count of
    each position p of `axis`. A view of a length-L axis as (L/w, w) gives Piece(a, w, L/w) (the
    block) and Piece(a, 1, w) (the position in the block); merged back in that order they are
    the axis again."""

    axis: int
    stride: int
    count: int


@dataclass(frozen=True)
class Keys:
    """The key-token dim of attention scores written by hand (`q @ k.transpose(-2, -1)`): entry
    j reads key token j of `axes` only. A node's region is the union over its non-spatial dims,
    which here is every key its query row reads: exact, and still so once an op mixes over the
    dim (softmax, `attn @ v`), which turns it into a plain feature dim. Selecting part of it
    before that would report keys the selection does not read: such a selection is a bound."""

    axes: tuple[int, ...]


Entry = int | Merged | Piece | Keys | None
Layout = tuple[Entry, ...]


def standard(n_axes: int) -> Layout:
    """(N, C, *spatial)."""
    return (None, None, *range(n_axes))


def axes_in(entry: Entry) -> tuple[int, ...]:
    if entry is None or isinstance(entry, Keys):
        return ()
    if isinstance(entry, Merged):
        return entry.axes
    if isinstance(entry, Piece):
        return (entry.axis,)
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
            entry = layout[-k]
            if found is not None and entry != found:
                entry = _same_tokens(found, entry)
                if entry is None:
                    raise LayoutError(f"an element-wise op combines different spatial axes in one "
                                      f"dimension ({found} and {layout[-k]})")
            found = entry
        out.append(found)
    return tuple(reversed(out))


def _same_tokens(a: Entry, b: Entry) -> Entry:
    """Two token dims that differ only in what their extra tokens read: they read the union."""
    if isinstance(a, Merged) and isinstance(b, Merged) \
            and replace(a, extra_global=b.extra_global) == b:
        return replace(a, extra_global=True)
    return None


def keys_mixed(layout: Layout, dims: Sequence[int]) -> Layout:
    """`layout` after an op that mixes over `dims` (size kept: softmax): a key dim among them
    becomes a plain feature dim, each entry now reading every key."""
    return tuple(None if isinstance(e, Keys) and d in dims else e for d, e in enumerate(layout))


def extras_read_all(layout: Layout, axes: Sequence[int]) -> Layout:
    """`layout` after an op that reads every position of `axes` for each output: the extra tokens
    of a token dim over those axes now read them all (a class token after attention)."""
    return tuple(replace(e, extra_global=True)
                 if isinstance(e, Merged) and e.extra and set(e.axes) & set(axes) else e
                 for e in layout)


def reshape(layout: Layout, shape: tuple[int, ...], new_shape: tuple[int, ...],
            sizes: dict[int, int], blocks: bool = False) -> Layout:
    """Layout after view/reshape/flatten/unflatten, by grouping dims of equal products.

    `sizes` gives each axis's length, to tell when a flattened dim is split back into its axes.
    `blocks`: an axis split into blocks becomes `Piece`s (for a front-end whose mixing ops read
    them through `mixed`); otherwise such a reshape is a LayoutError.
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
                            [new_shape[d] for d in b], sizes, blocks))
    return tuple(out)


def _regroup(entries: list[Entry], before: list[int], after: list[int],
             sizes: dict[int, int], blocks: bool = False) -> list[Entry]:
    axes = [a for e in entries for a in axes_in(e)]
    if len(entries) == 1 and len(after) == 1:
        return list(entries)
    if not axes:  # key dims regrouped with others: each new dim may select keys
        keys = next((e for e in entries if isinstance(e, Keys)), None)
        return [keys if keys is not None and n != 1 else None for n in after]
    if blocks and any(_has_piece(e) for e in entries):
        return _by_digits(entries, before, after, sizes)
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
    if blocks:
        return _by_digits(entries, before, after, sizes)
    raise LayoutError(f"a reshape of dims {tuple(before)} to {tuple(after)} splits or regroups "
                      f"spatial axes (window partitioning, say), which foveal cannot follow")


def merged(entries: Sequence[Entry], lengths: Sequence[int | None]) -> Entry:
    """The entry of one dim that flattens dims holding `entries`, of `lengths`, row-major (a
    Flatten layer): None when no spatial axis is among them. A None length is unknown: the
    result is then never split back."""
    axes = tuple(a for e in entries for a in axes_in(e))
    if not axes:
        return None
    exact = all(e is not None and not isinstance(e, Keys)
                and not (isinstance(e, Merged) and (e.extra or not e.exact))
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
    """Each axis's current length, 1 for an axis no dim holds alone (for `reshape`'s `sizes`);
    an axis split into pieces has the product of their counts."""
    out = {a: 1 if n is None else n for a, n in enumerate(size_of(layout, shape, n_axes))}
    for axis, found in _pieces_by_axis(layout, shape).items():
        if any(isinstance(p, Piece) for p in found):
            out[axis] = math.prod(p.count for p in found)
    return out


def axis_per_dim(layout: Layout, dims: Sequence[int]) -> tuple[int | None, ...]:
    """The spatial axis each of `dims` holds (None: batch, channels, features), for an op that
    slides a window over those dims; a window cannot run over a dim of flattened axes."""
    out: list[int | None] = []
    for d in dims:
        entry = layout[d]
        if isinstance(entry, Merged):
            raise LayoutError("a spatial op runs over a dimension of flattened spatial axes")
        if isinstance(entry, Piece):
            raise LayoutError("a spatial op runs over a dimension holding part of a spatial axis "
                              "split into blocks (the positions of a window, say)")
        out.append(None if isinstance(entry, Keys) else entry)
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


# -- axes split into blocks (window partitioning) ----------------------------------------------


def _has_piece(entry: Entry) -> bool:
    if isinstance(entry, Merged):
        return any(isinstance(e, Piece) for e, _ in entry.parts)
    return isinstance(entry, Piece)


def _digits(entry: Entry, n: int) -> list[tuple[Piece | None, int]] | None:
    """A dim of length n as digits, most significant first: a whole axis is one Piece of stride
    1, batch or channels None; None when a flattening's parts are unknown."""
    if n == 1:
        return []
    if isinstance(entry, Merged):  # extra tokens hold no digit
        if not entry.parts:
            return None
        out: list[tuple[Piece | None, int]] = []
        for e, m in entry.parts:
            found = _digits(e, m)
            if found is None:
                return None
            out.extend(found)
        return out
    if isinstance(entry, int):
        return [(Piece(entry, 1, n), n)]
    if isinstance(entry, Keys):
        return [(None, n)]
    return [(entry, n)]


def _by_digits(entries: list[Entry], before: list[int], after: list[int],
               sizes: dict[int, int]) -> list[Entry]:
    """A reshape of a group of dims as a change of mixed-radix digits: each new dim takes the
    next digits, most significant first, splitting one where its length divides the digit's."""
    queue: list[tuple[Piece | None, int]] = []
    for e, n in zip(entries, before):
        found = None if isinstance(e, Merged) and e.extra else _digits(e, n)
        if found is None:
            raise LayoutError(f"a reshape of dims {tuple(before)} to {tuple(after)} splits flattened "
                              f"tokens whose parts foveal does not know (or extra tokens)")
        queue.extend(found)
    out: list[Entry] = []
    for m in after:
        group: list[tuple[Piece | None, int]] = []
        while m > 1:
            if not queue:
                raise LayoutError(f"cannot follow a reshape of dims {tuple(before)} to {tuple(after)}")
            piece, n = queue.pop(0)
            if m % n == 0:
                group.append((piece, n))
                m //= n
            elif n % m == 0:  # this dim takes the high digit of count m, the rest stays
                low = n // m
                group.append((None if piece is None else Piece(piece.axis, piece.stride * low, m), m))
                queue.insert(0, (None if piece is None else Piece(piece.axis, piece.stride, low), low))
                m = 1
            else:
                raise LayoutError(f"a reshape of dims {tuple(before)} to {tuple(after)} regroups "
                                  f"spatial positions across blocks, which foveal cannot follow")
        out.append(_fused(group, sizes))
    return out


def _fused(group: list[tuple[Piece | None, int]], sizes: dict[int, int]) -> Entry:
    """One dim's entry from its digits: adjacent digits of one axis, in order, fuse back (into
    the axis itself when they cover it); several left make a flattened dim."""
    parts: list[tuple[Piece | None, int]] = []
    for piece, n in group:
        if parts:
            last, m = parts[-1]
            if last is None and piece is None:
                parts[-1] = (None, m * n)
                continue
            if last is not None and piece is not None and last.axis == piece.axis \
                    and last.stride == piece.stride * piece.count:
                parts[-1] = (Piece(piece.axis, piece.stride, last.count * piece.count), m * n)
                continue
        parts.append((piece, n))
    entries: list[tuple[Entry, int]] = [
        (p.axis if p is not None and p.stride == 1 and p.count == sizes.get(p.axis) else p, n)
        for p, n in parts]
    if not any(e is not None for e, _ in entries):
        return None
    if len(entries) == 1:
        return entries[0][0]
    axes = tuple(dict.fromkeys(a for e, _ in entries for a in axes_in(e)))
    return Merged(axes, 0, all(e is not None for e, _ in entries), tuple(entries))


def pieces_by_axis(layout: Layout, shape: tuple[int, ...]) -> dict[int, list[Piece]]:
    """Every digit of each axis the layout holds (a whole axis: one digit of stride 1)."""
    return _pieces_by_axis(layout, shape)


def _pieces_by_axis(layout: Layout, shape: tuple[int, ...]) -> dict[int, list[Piece]]:
    """Every digit of each axis the layout holds, with the dim it is in (a whole axis: one
    digit); axes in a flattening of unknown parts are left out."""
    out: dict[int, list[Piece]] = {}
    for entry, n in zip(layout, shape):
        for piece, _ in _digits(entry, n) or []:
            if piece is not None:
                out.setdefault(piece.axis, []).append(piece)
    return out


@dataclass(frozen=True)
class Reads:
    """What an op that mixes positions over some dims reads on one axis: output position p reads
    p - p % (stride * count) + p % stride + k * stride, k < count. The whole axis when stride is 1
    and count the length (or the length is unknown); a block of `count` when stride is 1 (window
    attention); a residue class mod `stride` when stride * count is the length (grid attention)."""

    axis: int
    stride: int = 1
    count: int = 1
    length: int | None = None

    @property
    def whole(self) -> bool:
        return self.length is None or (self.stride == 1 and self.count == self.length)


def mixed(layout: Layout, shape: tuple[int, ...], dims: Sequence[int]) -> tuple[Reads, ...]:
    """Per axis, what an op that mixes over `dims` (softmax, attention, a norm or product over
    them) reads, for every axis those dims hold: the digits of the axis in `dims` must be
    consecutive (a block, a residue class, or a block of residues)."""
    chosen = set(dims)
    out: dict[int, Reads] = {}
    digits: dict[int, list[tuple[Piece, bool]]] = {}
    for d, (entry, n) in enumerate(zip(layout, shape)):
        found = _digits(entry, n)
        if found is None:  # flattened tokens of unknown parts: the whole axes
            if d in chosen:
                out.update((a, Reads(a)) for a in axes_in(entry))
            continue
        for piece, _ in found:
            if piece is not None:
                digits.setdefault(piece.axis, []).append((piece, d in chosen))
        if d in chosen:  # an axis of length 1 has no digit
            out.update((a, Reads(a, 1, 1, 1)) for a in axes_in(entry) if a not in out)
    for axis, pieces in digits.items():
        if axis in out and out[axis].length is None or not any(m for _, m in pieces):
            continue
        pieces.sort(key=lambda item: item[0].stride)
        stride = 1
        for piece, _ in pieces:
            if piece.stride != stride:
                raise LayoutError(f"the pieces of spatial axis {axis} do not make up the axis "
                                  f"(a block was dropped or repeated)")
            stride *= piece.count
        flags = [m for _, m in pieces]
        first, last = flags.index(True), len(flags) - 1 - flags[::-1].index(True)
        if not all(flags[first:last + 1]):
            raise LayoutError(f"an op mixes pieces of spatial axis {axis} that are not adjacent "
                              f"blocks, which foveal cannot follow")
        count = math.prod(p.count for p, _ in pieces[first:last + 1])
        out[axis] = Reads(axis, pieces[first][0].stride, count, stride)
    return tuple(out[a] for a in sorted(out))


def shrunk(layout: Layout, reads: Sequence[Reads]) -> Layout:
    """`layout` after a reduction over some pieces of the axes of `reads` (each block, or each
    residue class, down to one position): the other pieces of those axes index the shorter axis,
    which they make up whole again when only one is left."""
    scale = {r.axis: r.count for r in reads if r.stride == 1}
    length = {r.axis: (r.length or 0) // r.count if r.stride == 1 else r.stride for r in reads}

    def fix(entry: Entry) -> Entry:
        if isinstance(entry, Merged) and any(isinstance(e, Piece) for e, _ in entry.parts):
            parts = tuple((fix(e), n) for e, n in entry.parts)
            return replace(entry, parts=parts, axes=tuple(dict.fromkeys(
                a for e, _ in parts for a in axes_in(e))))
        if not isinstance(entry, Piece) or entry.axis not in length:
            return entry
        piece = Piece(entry.axis, entry.stride // scale.get(entry.axis, 1), entry.count)
        return piece.axis if piece.stride == 1 and piece.count == length[piece.axis] else piece

    return tuple(fix(e) for e in layout)



def regrown(layout: Layout, d: int,
            lengths: dict[int, int]) -> tuple[Layout, dict[int, tuple[int, int]], dict[int, int]]:
    """`layout` after dim d, a length-1 dim left by a reduction over pieces of axes (`shrunk`),
    is expanded back to its pieces (MobileViT-v2's context vector broadcast over the patches).
    `lengths`: each axis's current length. Returns the layout and what each position reads of
    the reduced tensor, per axis: a residue class reduced (its pieces were the high digits,
    stride s > 1) is tiled from length s to s * count, position p reading p mod s
    (`tiles[axis] = (s, s * count)`); a block reduced (the low digit, left with stride 0 by
    `shrunk`) is upsampled by its width w, position p reading p // w (`blocks[axis] = w`)."""
    entry = layout[d]
    parts = [entry] if isinstance(entry, Piece) else \
        [e for e, n in entry.parts if n != 1] if isinstance(entry, Merged) and not entry.extra else []
    if not parts or not all(isinstance(p, Piece) for p in parts) \
            or len({p.axis for p in parts}) != len(parts):  # type: ignore[union-attr]
        raise LayoutError("an expand of a length-1 dim of flattened or partitioned spatial axes")
    tiles: dict[int, tuple[int, int]] = {}
    blocks: dict[int, int] = {}
    for p in parts:
        assert isinstance(p, Piece)
        if p.stride > 1:
            tiles[p.axis] = (p.stride, p.stride * p.count)
        elif p.stride == 0:
            blocks[p.axis] = p.count
        else:
            raise LayoutError("an expand of a length-1 dim of flattened or partitioned spatial axes")

    def fix(e: Entry, own: bool) -> Entry:
        if isinstance(e, Merged) and e.parts:
            return replace(e, parts=tuple((fix(q, own), n) for q, n in e.parts))
        if isinstance(e, Piece) and e.axis in blocks:
            return Piece(e.axis, 1, e.count) if own else Piece(e.axis, e.stride * blocks[e.axis], e.count)
        if isinstance(e, int) and not own and e in tiles:
            return Piece(e, 1, tiles[e][0])
        if isinstance(e, int) and not own and e in blocks:
            return Piece(e, blocks[e], lengths[e])
        return e

    return tuple(fix(e, k == d) for k, e in enumerate(layout)), tiles, blocks
