"""What an op that mixes positions over some dims reads, as foveal ops: the one rule every
front-end follows for softmax, norms, reductions, linear layers, matrix products and attention
over dims that hold spatial axes, whole or split into blocks (`foveal.layout`).

A front-end gives the layouts and shapes it sees; these functions say which foveal ops, in which
order, and the output's layout. The front-end only emits them: `Mixing.steps` one after the
other on its input (the last one is the op's output), and a `Product`'s parts, each operand's
mixing first, then `Product.op` over them. The core imports no framework.

On an axis held whole an op over it is global; on an axis split into blocks (`layout.Piece`) an
output reads its own block of w (window attention: a window of w with stride w, then nearest
upsampling by w), or its own residue class mod s (grid attention: a circular pad by L - s, then a
window of L/s taps dilated by s). Without keeping the size (a reduction, patch merging written as
a view and a linear layer) the window alone gives one position per block.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from . import ops as O
from .layout import (
    Keys,
    Layout,
    LayoutError,
    Merged,
    Piece,
    Reads,
    axes_in,
    broadcast,
    extras_read_all,
    keys_mixed,
    lengths,
    mask,
    mixed,
    pieces_by_axis,
    shrunk,
    spatial_axes,
)


@dataclass(frozen=True)
class Step:
    """One foveal op of a mixing; `name` says what it does (the front-end names an intermediate
    node after it; the last step is the op's own output)."""

    op: O.Op
    name: str


@dataclass(frozen=True)
class Mixing:
    """The steps of an op over some dims, applied one after the other to its input, and the
    layout of the last one's output (the steps before it keep the input's layout and shape)."""

    steps: tuple[Step, ...]
    layout: Layout


def global_over(axes: Sequence[int], kind: str, keep_size: bool, layout: Layout, n_axes: int,
                bound: str = "") -> Mixing:
    """A global op on `axes` (reading each whole); position-wise if there are none. The extra
    tokens of a token dim over `axes` then read every position too."""
    if not axes:
        return Mixing((Step(O.Elementwise(kind), "global"),), layout)
    op = O.Global(kind, mask(axes, n_axes), keep_size, bound)
    return Mixing((Step(op, "global"),), extras_read_all(layout, tuple(axes)))


def reads_of(layout: Layout, shape: Sequence[int] | None, dims: Sequence[int]) -> tuple[Reads, ...]:
    """`layout.mixed`, or, at an unknown size, every axis the dims hold whole (an axis split into
    blocks needs the lengths: a LayoutError then)."""
    if shape is not None:
        return mixed(layout, tuple(shape), dims)
    if any(in_blocks(e) for e in layout):
        raise LayoutError("an op mixes over an axis split into blocks at an unknown size")
    return tuple(Reads(a) for a in sorted(set(spatial_axes(layout, list(dims)))))


def in_blocks(entry: object) -> bool:
    """Whether a dim holds part of an axis split into blocks (a `Piece`, or a flattening of some)."""
    if isinstance(entry, Merged):
        return any(isinstance(e, Piece) for e, _ in entry.parts)
    return isinstance(entry, Piece)


def mix_over(layout: Layout, shape: Sequence[int] | None, dims: Sequence[int], kind: str,
             keep_size: bool, out_layout: Layout, n_axes: int, bound: str = "",
             axes: Sequence[int] | None = None) -> Mixing:
    """An op whose every output reads all positions of `dims` (non-negative; of the axes `axes`
    only, if given) of a tensor of `layout` and `shape`, giving `out_layout` (a key dim among
    `dims` becomes a plain feature dim). `bound`: the caller's over-approximation, as a reason."""
    if len(out_layout) == len(layout):  # a key dim mixed over reads every key
        out_layout = keys_mixed(out_layout, dims)
    reads = [r for r in reads_of(layout, shape, dims) if axes is None or r.axis in axes]
    partial = [r for r in reads if not r.whole]
    whole = tuple(r.axis for r in reads if r.whole)
    if not partial:
        return global_over(whole, kind, keep_size, out_layout, n_axes, bound)
    blocks = {r.axis: r.count for r in partial if r.stride == 1}
    residues = {r.axis: r for r in partial if r.stride > 1}
    if any(r.stride * r.count != r.length for r in residues.values()):
        raise LayoutError("an op mixes the middle pieces of a spatial axis split in three or more")
    steps: list[Step] = []
    if whole:
        steps.append(Step(O.Global(kind, mask(whole, n_axes), keep_size), "global"))
    if blocks:  # without keep_size, one position per block: the window alone
        w = [blocks.get(a, 1) for a in range(n_axes)]
        steps.append(Step(O.Window(w, w, 1, 0, False, kind), "blocks"))
        if keep_size:
            steps.append(Step(O.Resize("nearest", w, None, "asymmetric", "floor"), "block"))
    if residues:  # without keep_size, one position per residue class: the dilated window alone
        wrap = [r.stride * (r.count - 1) if (r := residues.get(a)) else 0 for a in range(n_axes)]
        taps = [r.count if (r := residues.get(a)) else 1 for a in range(n_axes)]
        apart = [r.stride if (r := residues.get(a)) else 1 for a in range(n_axes)]
        if keep_size:
            steps.append(Step(O.Pad(wrap, [0] * n_axes, "circular"), "wrap"))
        steps.append(Step(O.Window(taps, 1, apart, 0, False, kind), "residues"))
    if not keep_size:
        out_layout = shrunk(out_layout, partial)
    if bound:  # on no axis of its own
        steps.append(Step(O.Global(kind, (False,) * n_axes, True, bound), "bound"))
    return Mixing(tuple(steps), out_layout)


# -- products of several operands --------------------------------------------------------------


@dataclass(frozen=True)
class Operand:
    """A tensor an op reads: its layout, its shape (None: unknown) and what it reads (`source`:
    the front-end's name of its node, None for a constant that reads no input pixel)."""

    layout: Layout
    shape: tuple[int, ...] | None
    source: Hashable | None

    @property
    def rank(self) -> int:
        return len(self.layout)

    def length(self, d: int) -> int | None:
        return None if self.shape is None else self.shape[d]


@dataclass(frozen=True)
class Part:
    """One input of a `Product`: operand `index` (of those given), mixed first unless `mixing` is
    None; `name` names the mixing's nodes ('left', 'right', 'key', 'value')."""

    index: int
    name: str
    mixing: Mixing | None


@dataclass(frozen=True)
class Product:
    """An op over several operands: each part, then `op` over the parts, giving `layout`."""

    parts: tuple[Part, ...]
    op: O.Op
    layout: Layout


def matmul(x: Operand, y: Operand, out_rank: int, n_axes: int) -> Product:
    """x @ y: the contracted dims' axes become global; a token axis on both sides (attention
    scores) reads every key token of the right side, its dim a `Keys` dim. An operand on another
    grid than the output's tokens (keys pooled to fewer tokens), or whose contracted axes no
    output dim holds (a class token's query over the grid's keys, a product by a weight), is
    reduced to one global position, which every output position reads: the same answer as
    `attention` gives the same computation written as one op."""
    xl = x.layout if x.rank > 1 else (None,) + x.layout
    yl = y.layout if y.rank > 1 else y.layout + (None,)
    xs = _padded(x.shape, x.rank > 1, front=True)
    ys = _padded(y.shape, y.rank > 1, front=False)
    both = x.source is not None and y.source is not None
    kept_x = xl[-2]
    shared = tuple(sorted(set(axes_in(yl[-1])) & set(axes_in(kept_x))))
    right = Keys(shared) if shared and both else None if shared else yl[-1]
    tiles = _tiled_queries(x, y, shared, n_axes) if both and shared else None
    if tiles is not None:
        kept_x = yl[-1]  # the queries now index the keys' positions in their windows
    kept_out = ((kept_x, xs[-2]), (right, ys[-1]))
    parts: list[Part] = []
    read = set[int]()
    for index, (t, contracted, kept, length, name) in enumerate(
            ((x, xl[-1], xl[-2], xs[-1], "left"), (y, yl[-2], yl[-1], ys[-2], "right"))):
        if t.source is None:
            continue
        axes = set(axes_in(contracted))
        pairwise = name == "right" and x.source is not None and set(axes_in(kept)) & set(axes_in(kept_x))
        dims = [t.rank - 1] if name == "left" else [max(t.rank - 2, 0)] + [t.rank - 1] * bool(pairwise)
        if pairwise:
            axes |= set(axes_in(kept)) & set(axes_in(kept_x))
            length = ys[-1]
        mixing = None
        if axes:
            # kept where the output holds those axes on the same grid; else one global position
            held = [n for e, n in kept_out if set(axes_in(e)) & axes]
            same_grid = bool(held) and all(n is not None and n == length for n in held)
            mixing = mix_over(t.layout, t.shape, dims, "matmul", same_grid, t.layout, n_axes,
                              axes=tuple(sorted(axes)))
            read |= axes
        if name == "left" and tiles is not None:
            mixing = Mixing((*(mixing.steps if mixing else ()), *tiles), t.layout)
        parts.append(Part(index, name, mixing))
    try:
        batch = broadcast([(_one_free(xl[:-2], xs[:-2]), ()), (_one_free(yl[:-2], ys[:-2]), ())],
                          max(len(xl), len(yl)) - 2)
    except LayoutError:
        batch, parts = _blocks_aligned(x, y, parts, n_axes)
    layout = (batch + (kept_x, right))[-out_rank:] if out_rank else ()
    op = O.Merge("matmul") if len(parts) > 1 else O.Elementwise("matmul")
    return Product(tuple(parts), op, extras_read_all(layout, tuple(read)))


def _one_free(layout: Layout, shape: Sequence[int | None]) -> Layout:
    """Batch dims of length 1 hold no position (a single block): they broadcast as no axis."""
    return tuple(None if n == 1 else e for e, n in zip(layout, shape)) if len(shape) == len(layout) \
        else layout


def _blocks_aligned(x: Operand, y: Operand, parts: list[Part], n_axes: int) -> tuple[Layout, list[Part]]:
    """Batch dims where one operand indexes blocks as pieces of the axes (`Piece(a, s, n)`: the
    queries of HaloNet's blocks) and the other as whole axes of length n (its keys and values,
    one neighbourhood per block, cut by `Tensor.unfold` with step s): the second is upsampled by
    s on those axes (position p reads block p // s), and the batch dims are the first's."""
    xb, yb = x.layout[:-2], y.layout[:-2]
    if len(xb) != len(yb) or x.shape is None or y.shape is None:
        raise LayoutError("an element-wise op combines different spatial axes in one dimension")
    factor: dict[int, tuple[int, list[int]]] = {}  # operand -> per-axis upsampling
    for ex, ey in zip(xb, yb):
        if ex == ey or not spatial_axes((ex,)) or not spatial_axes((ey,)):
            continue
        for fine, coarse, which, shape in ((ex, ey, 1, y.shape), (ey, ex, 0, x.shape)):
            up = _block_factor(fine, coarse, (y if which else x).layout, shape, n_axes)
            if up is not None:
                factor.setdefault(which, (which, [1] * n_axes))
                for a, f in enumerate(up):
                    factor[which][1][a] *= f
                break
        else:
            raise LayoutError("an element-wise op combines different spatial axes in one dimension")
    if len(factor) != 1:
        raise LayoutError("an element-wise op combines different spatial axes in one dimension")
    (which, up), = factor.values()
    batch = xb if which == 1 else yb
    step = Step(O.Resize("nearest", up, None, "asymmetric", "floor"), "onto_blocks")
    aligned = [Part(p.index, p.name, Mixing((*(p.mixing.steps if p.mixing else ()), step),
                                            p.mixing.layout if p.mixing else (y if which else x).layout))
               if p.index == which else p for p in parts]
    return tuple(batch), aligned


def _block_factor(fine: object, coarse: object, layout: Layout, shape: tuple[int, ...],
                  n_axes: int) -> list[int] | None:
    """Per axis, how much `coarse` (whole axes) must be upsampled to index `fine`'s blocks."""
    fine_parts = [e for e, n in fine.parts if n != 1] if isinstance(fine, Merged) else [fine]
    current = dict(lengths(layout, shape, n_axes))
    if isinstance(coarse, Merged):
        current.update((a, n) for a, n in coarse.parts if isinstance(a, int))
        coarse_axes = [e for e, n in coarse.parts if n != 1]
    else:
        coarse_axes = [coarse]
    if not all(isinstance(p, Piece) for p in fine_parts) or not all(isinstance(a, int) for a in coarse_axes):
        return None
    up = [1] * n_axes
    pieces = {p.axis: p for p in fine_parts if isinstance(p, Piece)}
    if sorted(pieces) != sorted(a for a in coarse_axes if isinstance(a, int)):
        return None
    for axis, piece in pieces.items():
        if current[axis] != piece.count:
            return None
        up[axis] = piece.stride
    return up


def _padded(shape: tuple[int, ...] | None, matrix: bool, front: bool) -> tuple[int | None, ...]:
    """A vector operand's shape as a matrix's (a length-1 dim before x's, after y's)."""
    if shape is None:
        return (None, None)
    if matrix:
        return shape
    return (1,) + shape if front else shape + (1,)


def attention(q: Operand, k: Operand, v: Operand, token_dim: int, n_axes: int) -> Product:
    """Output at a query token reads that token and every key and value token. Keys and values
    on another grid than the queries (spatial-reduction attention, pooled keys) are reduced to
    one global position, which every query position reads."""
    parts = [Part(0, "query", None)] if q.source is not None else []
    sources: set[Hashable] = {q.source} if q.source is not None else set()
    mixed_parts = 0
    read = set[int]()
    queries = q.length(token_dim % q.rank) if q.rank else None
    for index, (name, t) in enumerate((("key", k), ("value", v)), start=1):
        if t.source is None:
            continue
        d = token_dim % t.rank
        axes = axes_in(t.layout[d])
        mixing = None
        if axes:
            same_grid = t.length(d) is not None and t.length(d) == queries
            mixing = mix_over(t.layout, t.shape, [d], "attention", same_grid, t.layout, n_axes)
            if not same_grid:
                mixing = _onto_query_blocks(mixing, t, d, q, n_axes)
            read |= set(axes)
            mixed_parts += 1
        else:
            sources.add(t.source)
        parts.append(Part(index, name, mixing))
    op = O.Merge("attention") if len(sources) + mixed_parts > 1 else O.Elementwise("attention")
    return Product(tuple(parts), op, extras_read_all(q.layout, tuple(read)))


def _onto_query_blocks(mixing: Mixing, t: Operand, d: int, q: Operand, n_axes: int) -> Mixing:
    """Keys reduced to one position per block (window attention with pooled queries: Hiera's
    mask units) for queries that keep those blocks on a finer grid: each query reads its own
    block's keys, so the reduced keys are upsampled by the queries' positions per block. Only
    when the queries' layout holds the block index as a digit (`Piece(axis, f, blocks)`); any
    other keys on another grid stay one global position."""
    if t.shape is None or q.shape is None:
        return mixing
    reads = reads_of(t.layout, t.shape, [d])
    blocks = {r.axis: r for r in reads if not r.whole}
    if not blocks or any(r.stride != 1 or not r.length for r in blocks.values()):
        return mixing
    q_lengths = lengths(q.layout, q.shape, n_axes)
    q_pieces = pieces_by_axis(q.layout, q.shape)
    factor = [1] * n_axes
    for axis, r in blocks.items():
        count = (r.length or 0) // r.count
        f, rest = divmod(q_lengths[axis], count)
        if rest or Piece(axis, f, count) not in q_pieces.get(axis, []):
            return mixing
        factor[axis] = f
    step = Step(O.Resize("nearest", factor, None, "asymmetric", "floor"), "onto_queries")
    return Mixing((*mixing.steps, step), mixing.layout)


def _tiled_queries(x: Operand, y: Operand, shared: Sequence[int], n_axes: int) -> tuple[Step, ...] | None:
    """Queries on a grid of one window (GCViT's global query: the image pooled to w x w, the
    same for every window) against keys split into windows of w: query i of every window is
    grid position i, so the queries are tiled over the axis (position p reads p mod w: circular
    pads, each at most the current length). None unless every shared axis is so."""
    if x.shape is None or y.shape is None:
        return None
    x_lengths = lengths(x.layout, x.shape, n_axes)
    y_lengths = lengths(y.layout, y.shape, n_axes)
    x_pieces = pieces_by_axis(x.layout, x.shape)
    y_pieces = pieces_by_axis(y.layout, y.shape)
    for axis in shared:
        w, full = x_lengths[axis], y_lengths[axis]
        if x_pieces.get(axis) != [Piece(axis, 1, w)] or Piece(axis, 1, w) not in y_pieces.get(axis, []) \
                or full <= w or full % w:
            return None
    steps: list[Step] = []
    current = {a: x_lengths[a] for a in shared}
    while any(current[a] < y_lengths[a] for a in shared):
        after = [min(current[a], y_lengths[a] - current[a]) if a in shared else 0 for a in range(n_axes)]
        for a in shared:
            current[a] += after[a]
        steps.append(Step(O.Pad([0] * n_axes, after, "circular"), f"tile{len(steps) + 1}"))
    return tuple(steps)
