"""Node-building helpers every op table shares: arguments, element-wise ops, global ops
(reductions, softmax, matrix products, attention), and ops known only by their data.

A handler gets the builder, the fx node and the node's arguments (tensors as `Value`s) and
returns the output Value (or a plain value for shape arithmetic). Parameters come from module
attributes or call arguments, never from weights. Spatial window ops are in `spatial.py`,
layout-changing ops (reshape, permute, cat, index, split) in `reshaping.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import torch
from torch import fx

from .. import ops as O
from ..building import Value
from ..layout import Keys, Layout, LayoutError, axes_in, broadcast, extras_read_all, keys_mixed, mixed, shrunk
from ..layout import mask as axes_mask
from .builder import Builder, Handler, tensors

# -- arguments ---------------------------------------------------------------------------------


def bind(args: tuple, kwargs: dict, names: Sequence[str], defaults: dict[str, Any]) -> dict[str, Any]:
    """Positional and keyword arguments by parameter name."""
    out = dict(defaults)
    out.update(zip(names, args))
    out.update(kwargs)
    return out


def per_dim(value: Any, n: int) -> tuple[Any, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(value) if len(value) == n else tuple(value) * n if len(value) == 1 else tuple(value)
    return (value,) * n


def module_of(b: Builder, n: fx.Node) -> Any:
    """The module an fx `call_module` node calls."""
    return b.captured.gm.get_submodule(str(n.target))


def with_indices(b: Builder, n: fx.Node, y: Value) -> Any:
    """Pools with return_indices give (values, indices); the indices read what the values read."""
    meta = b.captured.values[n]
    if isinstance(meta, tuple):
        return (y, Value(y.node, y.layout, tuple(meta[1].shape)))
    return y


# -- element-wise and global ops ---------------------------------------------------------------


@cache
def elementwise(kind: str) -> Handler:
    """Position-wise ops (activations, arithmetic, normalisation over channels): broadcasting."""

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        found = tensors((args, kwargs))
        meta = b.captured.values[n]
        if not isinstance(meta, torch.Tensor):
            return meta
        out = tuple(meta.shape)
        layout = broadcast([(v.layout, v.shape) for v in found], len(out))
        connected = [v for v in found if v.node is not None]
        op = O.Merge(kind) if len(connected) > 1 else O.Elementwise(kind)
        return b.emit(op, connected, layout)

    return handle


def global_over(b: Builder, x: Value, axes: tuple[int, ...], kind: str, keep_size: bool,
                layout: Layout, shape: tuple[int, ...] | None = None, step: str | None = None,
                bound: str = "") -> Value:
    """A global op on `axes` (reading the whole axis); an identity node if there are none. The
    extra tokens of a token dim over `axes` read every position too."""
    if not axes:
        return b.emit(O.Elementwise(kind), [x], layout, shape, step)
    op = O.Global(kind, axes_mask(axes, b.n_axes), keep_size, bound)
    return b.emit(op, [x], extras_read_all(layout, axes), shape, step)


def mix_over(b: Builder, x: Value, dims: Sequence[int], kind: str, keep_size: bool, layout: Layout,
             shape: tuple[int, ...] | None = None, step: str | None = None, bound: str = "",
             axes: Sequence[int] | None = None) -> Value:
    """An op whose every output reads all positions of `dims` (on `axes` only, if given): global
    on an axis those dims hold whole. On an axis split into blocks (`foveal.layout.Piece`) it reads
    its own block of w (window attention: a w-window with stride w, upsampled back by w) or its
    own residue class mod s across the axis (grid attention: a circular pad by L - s, then a
    window of L/s taps dilated by s)."""
    if len(layout) == x.rank:  # a key dim mixed over reads every key
        layout = keys_mixed(layout, [x.dim(d) for d in dims])
    reads = [r for r in mixed(x.layout, x.shape, [x.dim(d) for d in dims])
             if axes is None or r.axis in axes]
    partial = [r for r in reads if not r.whole]
    whole = tuple(r.axis for r in reads if r.whole)
    if not partial:
        return global_over(b, x, whole, kind, keep_size, layout, shape, step, bound)
    blocks = {r.axis: r.count for r in partial if r.stride == 1}
    residues = {r.axis: r for r in partial if r.stride > 1}
    if any(r.stride * r.count != r.length for r in residues.values()):
        raise LayoutError("an op mixes the middle pieces of a spatial axis split in three or more")
    ops: list[tuple[O.Op, str]] = []
    if whole:
        ops.append((O.Global(kind, axes_mask(whole, b.n_axes), keep_size), "global"))
    if blocks:  # without keep_size, one position per block: the window alone
        w = [blocks.get(a, 1) for a in range(b.n_axes)]
        ops.append((O.Window(w, w, 1, 0, False, kind), "blocks"))
        if keep_size:
            ops.append((O.Resize("nearest", w, None, "asymmetric", "floor"), "block"))
    if residues:  # without keep_size, one position per residue class: the dilated window alone
        wrap = [r.stride * (r.count - 1) if (r := residues.get(a)) else 0 for a in range(b.n_axes)]
        taps = [r.count if (r := residues.get(a)) else 1 for a in range(b.n_axes)]
        apart = [r.stride if (r := residues.get(a)) else 1 for a in range(b.n_axes)]
        if keep_size:
            ops.append((O.Pad(wrap, [0] * b.n_axes, "circular"), "wrap"))
        ops.append((O.Window(taps, 1, apart, 0, False, kind), "residues"))
    if not keep_size:
        layout = shrunk(layout, partial)
    if bound:  # the caller's over-approximation (a unidirectional RNN), on no axis of its own
        ops.append((O.Global(kind, (False,) * b.n_axes, True, bound), "bound"))
    y = x
    for k, (op, name) in enumerate(ops):
        if k == len(ops) - 1:
            return b.emit(op, [y], layout, shape, step)
        y = b.emit(op, [y], x.layout, x.shape, f"{step}_{name}" if step else name)
    return y


def whole_axes(x: Value, dims: Sequence[int]) -> tuple[int, ...]:
    """The spatial axes `dims` hold, for an op that reads them whole; a LayoutError when they hold
    only part of an axis split into blocks."""
    reads = mixed(x.layout, x.shape, [x.dim(d) for d in dims])
    if not all(r.whole for r in reads):
        raise LayoutError("an op reads dims holding part of a spatial axis split into blocks")
    return tuple(r.axis for r in reads)


KEYS_SELECTED = ("a selection of some keys of attention scores written by hand (q @ k^T), before "
                 "an op mixes over them: foveal reports every key of the row")


def keys_selected(b: Builder, x: Value, layout: Layout, shape: tuple[int, ...] | None = None,
                  step: str | None = None) -> Value:
    """Part of a key dim (`foveal.layout.Keys`) selected: a bound, with its reason."""
    return b.emit(O.Global("select_keys", (False,) * b.n_axes, True, KEYS_SELECTED), [x], layout,
                  shape, step)


REDUCTIONS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("mean", "sum", "amax", "amin", "logsumexp", "prod", "max", "min", "nansum",
                     "nanmean", "median", "frobenius_norm"), ("input", "dim", "keepdim")),
    **dict.fromkeys(("std", "var", "std_mean", "var_mean"), ("input", "dim", "unbiased", "keepdim")),
    "norm": ("input", "p", "dim", "keepdim"),
    **dict.fromkeys(("linalg_vector_norm", "linalg_norm", "linalg_matrix_norm"),
                    ("input", "ord", "dim", "keepdim")),
}
"""Every reduction over dims, by name: its positional parameters (torch's, Tensor's and ATen's
agree). A matrix norm reduces dims (-2, -1) by default, the others every dim."""


def reduction(kind: str) -> Handler:
    """One rule for every reduction over dims (mean, var, norms, logsumexp...): the spatial axes
    the reduced dims hold become global, of length 1 (kept as a size-1 dim with keepdim); a
    reduction over channel dims only is position-wise. No dims (None, or ATen's []) is every dim.
    An op returning two tensors gives (result, statistic) for var_mean / std_mean (both read the
    same), (values, indices) otherwise; max(x, y) of two tensors is element-wise."""
    names = REDUCTIONS[kind]
    default = (-2, -1) if "matrix" in kind else None

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        p = bind(args, kwargs, names, {"dim": default, "keepdim": False})
        x: Value = p["input"]
        dims = p["dim"]
        if isinstance(dims, Value):  # torch.max(x, y)
            return elementwise(kind)(b, n, args, kwargs)
        if dims is None or isinstance(dims, bool) or (isinstance(dims, (list, tuple)) and not dims):
            dims = range(x.rank)  # var(x, True): the flag is `unbiased`
        dims = sorted({x.dim(d) for d in per_dim(dims, 1)})
        layout = x.layout if p["keepdim"] else tuple(e for d, e in enumerate(x.layout) if d not in dims)
        result = mix_over(b, x, dims, kind, False, layout, b.out_shape())
        value = b.captured.values[n]
        if isinstance(value, (tuple, list)) and not isinstance(value, torch.Size):
            second = tuple(value[1].shape)
            if kind.endswith("_mean"):
                return (result, Value(result.node, layout, second))
            return (result, b.constant(second))  # (values, indices)
        return result

    return handle


def global_along(b: Builder, x: Value, dim: int, kind: str) -> Value:
    """Every output reads the whole of `dim` (size kept): softmax and friends."""
    return mix_over(b, x, [dim], kind, True, x.layout)


def along_dim(kind: str, dim_name: str = "dim", default: Any = -1) -> Handler:
    """softmax(input, dim) and friends, as functions and methods."""

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        p = bind(args, kwargs, ("input", dim_name), {dim_name: default})
        return global_along(b, p["input"], p[dim_name], kind)

    return handle


def linear_op(b: Builder, x: Value, kind: str = "dense") -> Value:
    """A matrix product over the last dim: its axes become global (nn.Linear on W only, say)."""
    return mix_over(b, x, [-1], kind, False, x.layout[:-1] + (None,))


def attention_op(b: Builder, q: Value, k: Value, v: Value, token_dim: int,
                 shape: tuple[int, ...]) -> Value:
    """Output at a query token reads that token and every key and value token. Keys and values
    on another grid than the queries (spatial-reduction attention, pooled keys) are reduced to
    one global position, which every query position reads."""
    parts, read = [q], set[int]()
    queries = q.shape[q.dim(token_dim)] if q.rank else None
    for name, t in (("key", k), ("value", v)):
        if t.node is None:
            continue
        d = t.dim(token_dim)
        axes = axes_in(t.layout[d])
        if axes:
            t = mix_over(b, t, [d], "attention", t.shape[d] == queries, t.layout, t.shape, step=name)
            read |= set(axes)
        parts.append(t)
    connected = list(dict.fromkeys(p.node for p in parts if p.node is not None))
    op = O.Merge("attention") if len(connected) > 1 else O.Elementwise("attention")
    return b.emit(op, [p for p in parts if p.node is not None], extras_read_all(q.layout, tuple(read)),
                  shape)


def matmul_op(b: Builder, x: Value, y: Value) -> Value:
    """x @ y: the contracted dims' axes become global; a token axis on both sides (attention
    scores) reads every key token of the right side, its dim a `Keys` dim (see
    docs/pytorch.md). An operand on another grid than the output's tokens (keys pooled to fewer
    tokens) is reduced to one global position, which every output position reads."""
    out_rank = len(b.out_shape())
    xl = x.layout if x.rank > 1 else (None,) + x.layout
    yl = y.layout if y.rank > 1 else y.layout + (None,)
    xs = x.shape if x.rank > 1 else (1,) + x.shape
    ys = y.shape if y.rank > 1 else y.shape + (1,)
    parts: list[Value] = []
    kept_x = xl[-2]
    shared = tuple(sorted(set(axes_in(yl[-1])) & set(axes_in(kept_x))))
    right = Keys(shared) if shared and x.node is not None and y.node is not None else \
        None if shared else yl[-1]
    kept_out = ((kept_x, xs[-2]), (right, ys[-1]))
    read = set[int]()
    for t, contracted, kept, length, step in ((x, xl[-1], xl[-2], xs[-1], "left"),
                                              (y, yl[-2], yl[-1], ys[-2], "right")):
        if t.node is None:
            continue
        axes = set(axes_in(contracted))
        pairwise = step == "right" and x.node is not None and set(axes_in(kept)) & set(axes_in(kept_x))
        dims = [t.rank - 1] if step == "left" else [max(t.rank - 2, 0)] + [t.rank - 1] * bool(pairwise)
        if pairwise:
            axes |= set(axes_in(kept)) & set(axes_in(kept_x))
            length = ys[-1]
        if axes:
            same_grid = all(n == length for e, n in kept_out if set(axes_in(e)) & axes)
            t = mix_over(b, t, dims, "matmul", same_grid, t.layout, t.shape, step=step,
                         axes=tuple(sorted(axes)))
            read |= axes
        parts.append(t)
    batch = broadcast([(xl[:-2], ()), (yl[:-2], ())], max(len(xl), len(yl)) - 2)
    layout = (batch + (kept_x, right))[-out_rank:] if out_rank else ()
    op = O.Merge("matmul") if len(parts) > 1 else O.Elementwise("matmul")
    return b.emit(op, parts, extras_read_all(layout, tuple(read)))


def norm_over_last(b: Builder, x: Value, k: int) -> Value:
    """Normalisation over the last k dims: their spatial axes become global (size kept)."""
    return mix_over(b, x, range(x.rank - k, x.rank), "layer_norm", True, x.layout)



def instance_norm_op(b: Builder, x: Value, use_input_stats: bool) -> Value:
    """Statistics over each sample's spatial positions: global on them (size kept); with running
    statistics (inference), position-wise."""
    if not use_input_stats:
        return b.identity(x, "instance_norm")
    return mix_over(b, x, range(2, x.rank), "instance_norm", True, x.layout)


def data_dependent(name: str) -> Handler:
    """A known op whose reads depend on the values (grid_sample, deformable convolution): its
    receptive field is unavailable, which is a result, not an error."""

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
        found = tensors((args, kwargs))
        x = found[0]
        return b.emit(O.Unknown(name, data_dependent=True), [v for v in found if v.node],
                      x.layout if x.rank == len(b.out_shape()) else (None,) * len(b.out_shape()))

    return handle
