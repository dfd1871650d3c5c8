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

from .. import mixing, tokens
from .. import ops as O
from ..building import Value
from ..layout import Layout, LayoutError, broadcast, mixed
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
    return b.captured.root.get_submodule(str(n.target))


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


def emit_mixing(b: Builder, x: Value, found: mixing.Mixing, shape: tuple[int, ...] | None = None,
                step: str | None = None) -> Value:
    """The core's steps of an op over some dims (`foveal.mixing`) as nodes: the last one is the
    op's output (`step`, or the fx node's own name), those before it `<step>_<what>`, with the
    input's layout and shape."""
    y = x
    for k, s in enumerate(found.steps):
        if k == len(found.steps) - 1:
            return b.emit(s.op, [y], found.layout, shape, step)
        y = b.emit(s.op, [y], x.layout, x.shape, f"{step}_{s.name}" if step else s.name)
    return y


def global_over(b: Builder, x: Value, axes: tuple[int, ...], kind: str, keep_size: bool,
                layout: Layout, shape: tuple[int, ...] | None = None, step: str | None = None,
                bound: str = "") -> Value:
    """A global op on `axes` (reading the whole axis); an identity node if there are none. The
    extra tokens of a token dim over `axes` read every position too."""
    return emit_mixing(b, x, mixing.global_over(axes, kind, keep_size, layout, b.n_axes, bound), shape, step)


def mix_over(b: Builder, x: Value, dims: Sequence[int], kind: str, keep_size: bool, layout: Layout,
             shape: tuple[int, ...] | None = None, step: str | None = None, bound: str = "",
             axes: Sequence[int] | None = None) -> Value:
    """An op whose every output reads all positions of `dims` (on `axes` only, if given): global
    on an axis those dims hold whole, a block or a residue class of an axis split into blocks
    (`foveal.mixing.mix_over` says which ops)."""
    found = mixing.mix_over(x.layout, x.shape, [x.dim(d) for d in dims], kind, keep_size, layout,
                            b.n_axes, bound, axes)
    return emit_mixing(b, x, found, shape, step)


def whole_axes(x: Value, dims: Sequence[int]) -> tuple[int, ...]:
    """The spatial axes `dims` hold, for an op that reads them whole; a LayoutError when they hold
    only part of an axis split into blocks."""
    reads = mixed(x.layout, x.shape, [x.dim(d) for d in dims])
    if not all(r.whole for r in reads):
        raise LayoutError("an op reads dims holding part of a spatial axis split into blocks")
    return tuple(r.axis for r in reads)


def keys_selected(b: Builder, x: Value, layout: Layout, shape: tuple[int, ...] | None = None,
                  step: str | None = None) -> Value:
    """Part of a key dim (`foveal.layout.Keys`) selected: a bound, with its reason."""
    return b.emit(tokens.keys_selected(b.n_axes), [x], layout, shape, step)


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
            dims = list(range(x.rank))  # var(x, True): the flag is `unbiased`
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


def operand(v: Value) -> mixing.Operand:
    return mixing.Operand(v.layout, v.shape, v.node)


def emit_product(b: Builder, operands: Sequence[Value], product: mixing.Product,
                 shape: tuple[int, ...] | None = None) -> Value:
    """The core's op over several operands (`foveal.mixing.Product`): each part's mixing as
    `<name>` nodes, then the op."""
    parts = []
    for part in product.parts:
        t = operands[part.index]
        if part.mixing is not None:
            t = emit_mixing(b, t, part.mixing, t.shape, part.name)
        parts.append(t)
    return b.emit(product.op, parts, product.layout, shape)


def attention_op(b: Builder, q: Value, k: Value, v: Value, token_dim: int,
                 shape: tuple[int, ...]) -> Value:
    """Output at a query token reads that token and every key and value token; keys and values
    on another grid are one global position (`foveal.mixing.attention`)."""
    product = mixing.attention(operand(q), operand(k), operand(v), token_dim, b.n_axes)
    return emit_product(b, (q, k, v), product, shape)


def matmul_op(b: Builder, x: Value, y: Value) -> Value:
    """x @ y: the contracted dims' axes become global; attention scores written by hand have a
    `Keys` dim (`foveal.mixing.matmul`, docs/pytorch.md)."""
    product = mixing.matmul(operand(x), operand(y), len(b.out_shape()), b.n_axes)
    return emit_product(b, (x, y), product)


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
