"""The table from PyTorch op (module class, function, tensor method) to foveal op.

Adding an op is one entry here and one test. Each handler gets the builder, the fx node and the
node's arguments (tensors as `Value`s) and returns the output Value (or a plain value for shape
arithmetic). Parameters come from module attributes or call arguments, never from weights.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import fx, nn

from .. import ops as O
from ..layout import Layout, LayoutError, Merged, axes_in, broadcast, reshape, spatial_axes
from .builder import Builder, Handler, Value, op_name, tensors
from .capture import qualified_name

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


# -- generic shapes of ops ---------------------------------------------------------------------


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
    """A global op on `axes` (reading the whole axis); an identity node if there are none."""
    if not axes:
        return b.emit(O.Elementwise(kind), [x], layout, shape, step)
    mask = tuple(a in axes for a in range(b.n_axes))
    return b.emit(O.Global(kind, mask, keep_size, bound), [x], layout, shape, step)


PAIRWISE = ("a product of two token tensors (attention scores written by hand): entry (i, j) reads "
            "token i of the left side and token j of the right, and foveal reports every token "
            "of the right side")


def reduction(kind: str, dim_name: str = "dim", keep_name: str = "keepdim") -> Handler:
    """mean/sum/amax...: the reduced dims' axes become global (size 1)."""

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        p = bind(args, kwargs, ("input", dim_name, keep_name), {dim_name: None, keep_name: False})
        x: Value = p["input"]
        dims = p[dim_name]
        meta = b.captured.values[n]
        if not isinstance(meta, torch.Tensor):  # max(x) -> (values, indices) etc.
            meta = meta[0] if isinstance(meta, (tuple, list)) else meta
        if dims is None:
            dims = list(range(x.rank))
        dims = [x.dim(d) for d in per_dim(dims, 1)] if not isinstance(dims, int) else [x.dim(dims)]
        axes = spatial_axes(x.layout, dims)
        layout = x.layout if p[keep_name] else tuple(e for d, e in enumerate(x.layout) if d not in dims)
        result = global_over(b, x, axes, kind, False, layout, tuple(meta.shape))
        value = b.captured.values[n]
        if isinstance(value, (tuple, list)) and not isinstance(value, torch.Size):
            return (result, b.constant(tuple(value[1].shape)))  # (values, indices)
        return result

    return handle


def along_dim(kind: str, dim_name: str = "dim", default: Any = -1) -> Handler:
    """softmax and friends: every output reads the whole of `dim` (size kept)."""

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        p = bind(args, kwargs, ("input", dim_name), {dim_name: default})
        x: Value = p["input"]
        d = x.dim(p[dim_name])
        return global_over(b, x, axes_in(x.layout[d]), kind, True, x.layout)

    return handle


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
    return reshape(x.layout, x.shape, b.out_shape(), b.sizes(x))


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
"""view, reshape, flatten, unflatten, nn.Flatten: the layout follows the new shape."""


def _squeezed(b: Builder, x: Value, p: dict) -> Layout:
    out = b.out_shape()
    return reshape(x.layout, x.shape, out, b.sizes(x))


# -- spatial ops -------------------------------------------------------------------------------


def op_axes(x: Value, n_op: int) -> tuple[tuple[int | None, ...], tuple[int, ...]]:
    """Network axis of each of the last n_op dims (None: not spatial), and the axes elsewhere."""
    dims = range(x.rank - n_op, x.rank)
    mapped: list[int | None] = []
    for d in dims:
        entry = x.layout[d]
        if isinstance(entry, Merged):
            raise LayoutError("a spatial op runs over a dimension of flattened spatial axes")
        mapped.append(entry)
    others = spatial_axes(x.layout, range(0, x.rank - n_op))
    return tuple(mapped), others


def per_axis(b: Builder, mapped: tuple[int | None, ...], values: Sequence[Any], identity: Any) -> list[Any]:
    """Per network axis: the op's value on the dim holding it, `identity` elsewhere."""
    out = [identity] * b.n_axes
    for a, v in zip(mapped, values):
        if a is not None:
            out[a] = v
    return out


def spatial(b: Builder, x: Value, n_op: int, make: Callable[[tuple[int | None, ...]], O.Op],
            mixes_channels: bool, kind: str) -> Value:
    """A window-like op on the last n_op dims; axes held by the channel dim become global if the
    op mixes channels (a conv over a permuted tensor)."""
    mapped, others = op_axes(x, n_op)
    layout = x.layout
    if not any(a is not None for a in mapped):
        y = b.emit(O.Elementwise(kind), [x], layout)
    else:
        y = b.emit(make(mapped), [x], layout)
    if mixes_channels and others:
        channel_axes = spatial_axes(layout, [x.rank - n_op - 1])
        if channel_axes:
            mask = tuple(a in channel_axes for a in range(b.n_axes))
            y = b.emit(O.Global("dense", mask, True), [y], layout, step="channels")
    return y


def conv_op(b: Builder, x: Value, n_op: int, kernel, stride, padding, dilation, padding_mode: str,
            transposed: bool = False, output_padding: Any = 0) -> Value:
    kernel, stride, dilation = per_dim(kernel, n_op), per_dim(stride, n_op), per_dim(dilation, n_op)
    mapped, _ = op_axes(x, n_op)
    if transposed:
        pads = [(p, p) for p in per_dim(padding, n_op)]
        out_pad = per_dim(output_padding, n_op)

        def make_t(m: tuple[int | None, ...]) -> O.Op:
            return O.TransposedWindow(per_axis(b, m, kernel, 1), per_axis(b, m, stride, 1),
                                      per_axis(b, m, dilation, 1), per_axis(b, m, pads, (0, 0)),
                                      per_axis(b, m, out_pad, 0))

        return spatial(b, x, n_op, make_t, True, "conv_transpose")
    if isinstance(padding, str):
        if padding == "valid":
            pairs = [(0, 0)] * n_op
        else:  # 'same': d(k-1) in total, the odd pixel after
            pairs = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]
    else:
        pairs = [(p, p) for p in per_dim(padding, n_op)]
    if padding_mode != "zeros" and any(p != (0, 0) for p in pairs):
        mode = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}[padding_mode]
        before = per_axis(b, mapped, [p[0] for p in pairs], 0)
        after = per_axis(b, mapped, [p[1] for p in pairs], 0)
        padded_shape = x.shape[:-n_op] + tuple(
            s + p[0] + p[1] for s, p in zip(x.shape[-n_op:], pairs))
        x = b.emit(O.Pad(before, after, mode), [x], x.layout, padded_shape, step="pad")
        pairs = [(0, 0)] * n_op

    def make(m: tuple[int | None, ...]) -> O.Op:
        return O.Window(per_axis(b, m, kernel, 1), per_axis(b, m, stride, 1),
                        per_axis(b, m, dilation, 1), per_axis(b, m, pairs, (0, 0)), False, "conv")

    return spatial(b, x, n_op, make, True, "conv")


def pool_op(b: Builder, x: Value, n_op: int, kind: str, kernel, stride, padding, dilation,
            ceil_mode: bool) -> Value:
    kernel = per_dim(kernel, n_op)
    stride = kernel if stride is None or stride == [] or stride == () else per_dim(stride, n_op)
    pairs = [(p, p) for p in per_dim(padding, n_op)]
    dilation = per_dim(dilation, n_op)

    def make(m: tuple[int | None, ...]) -> O.Op:
        return O.Window(per_axis(b, m, kernel, 1), per_axis(b, m, stride, 1),
                        per_axis(b, m, dilation, 1), per_axis(b, m, pairs, (0, 0)), bool(ceil_mode),
                        kind)

    return spatial(b, x, n_op, make, False, kind)


def adaptive_op(b: Builder, x: Value, n_op: int, kind: str, output_size: Any) -> Value:
    sizes = per_dim(output_size, n_op)
    sizes = tuple(c if s is None else s for s, c in zip(sizes, x.shape[-n_op:]))
    current = b.sizes(x)
    return spatial(b, x, n_op, lambda m: O.AdaptivePool(_adaptive_sizes(b, m, sizes, current), kind),
                   False, kind)


def _adaptive_sizes(b: Builder, mapped: tuple[int | None, ...], sizes: Sequence[int],
                    current: dict[int, int]) -> list[int]:
    out = [current[a] for a in range(b.n_axes)]
    for a, s in zip(mapped, sizes):
        if a is not None:
            out[a] = s
    return out


def pad_op(b: Builder, x: Value, pad: Sequence[int], mode: str) -> Value:
    """F.pad: pairs for the last dims, last dim first."""
    k = len(pad) // 2
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(k)][::-1]  # now in dim order
    mode = {"constant": "constant", "reflect": "reflect", "replicate": "replicate",
            "circular": "circular"}[mode]
    mapped, _ = op_axes(x, k)
    if not any(a is not None for a in mapped):
        return b.identity(x, "pad")
    return b.emit(O.Pad(per_axis(b, mapped, [p[0] for p in pairs], 0),
                        per_axis(b, mapped, [p[1] for p in pairs], 0), mode), [x], x.layout)


def resize_op(b: Builder, x: Value, size: Any, scale: Any, mode: str, align_corners: bool | None,
              recompute_scale_factor: bool | None = None, antialias: bool = False) -> Value:
    n_op = x.rank - 2
    out = b.out_shape()[-n_op:]
    if antialias and any(o < i for o, i in zip(out, x.shape[-n_op:])):  # a wider, scale-dependent filter
        return b.emit(O.Unknown("interpolate with antialias (downsampling)"), [x], x.layout)
    mapped, _ = op_axes(x, n_op)
    if mode == "area":  # adaptive average pooling
        return adaptive_op(b, x, n_op, "area", out)
    # PyTorch maps coordinates by the sizes whenever align_corners is set, and by 1/scale
    # otherwise (unless the scale is recomputed from the sizes); an axis without a scale (ATen's
    # scales_h=None) maps by the sizes
    sizes: list[Any] = per_axis(b, mapped, list(out), None)
    if size is not None or recompute_scale_factor or (align_corners and mode != "nearest"):
        scales: list[Any] = [1 if s is None else None for s in sizes]
    else:
        scales = per_axis(b, mapped, per_dim(scale, n_op), 1)
        sizes = [n if s is None else None for n, s in zip(sizes, scales)]
    op = O.upsample(scales, sizes, mode, bool(align_corners))
    return spatial(b, x, n_op, lambda m: op, False, "resize")


def shuffle_op(b: Builder, x: Value, factor: int, unshuffle: bool) -> Value:
    mapped, _ = op_axes(x, 2)
    # pixel (un)shuffle always works on the last two dims
    f = per_axis(b, mapped, (factor, factor), 1)
    op = O.PixelUnshuffle(f) if unshuffle else O.PixelShuffle(f)
    return spatial(b, x, 2, lambda m: op, False, "pixel_unshuffle" if unshuffle else "pixel_shuffle")


# -- ops with their own rules ------------------------------------------------------------------


def linear_op(b: Builder, x: Value, kind: str = "dense") -> Value:
    """A matrix product over the last dim: its axes become global (nn.Linear on W only, say)."""
    axes = axes_in(x.layout[-1])
    return global_over(b, x, axes, kind, False, x.layout[:-1] + (None,))


def attention_op(b: Builder, q: Value, k: Value, v: Value, token_dim: int,
                 shape: tuple[int, ...]) -> Value:
    """Output at a query token reads that token and every key and value token."""
    parts = [q]
    for name, t in (("key", k), ("value", v)):
        if t.node is None:
            continue
        axes = axes_in(t.layout[t.dim(token_dim)])
        if axes:
            t = global_over(b, t, axes, "attention", True, t.layout, t.shape, step=name)
        parts.append(t)
    connected = list(dict.fromkeys(p.node for p in parts if p.node is not None))
    op = O.Merge("attention") if len(connected) > 1 else O.Elementwise("attention")
    return b.emit(op, [p for p in parts if p.node is not None], q.layout, shape)


def matmul_op(b: Builder, x: Value, y: Value) -> Value:
    """x @ y: the contracted dims' axes become global; a token axis on both sides (attention
    scores) is reported global on the right operand's side (see docs/pytorch.md)."""
    out_rank = len(b.out_shape())
    xl = x.layout if x.rank > 1 else (None,) + x.layout
    yl = y.layout if y.rank > 1 else y.layout + (None,)
    parts: list[Value] = []
    kept_x = xl[-2]
    for t, contracted, kept, step in ((x, xl[-1], xl[-2], "left"), (y, yl[-2], yl[-1], "right")):
        if t.node is None:
            continue
        axes = set(axes_in(contracted))
        pairwise = step == "right" and x.node is not None and set(axes_in(kept)) & set(axes_in(kept_x))
        if pairwise:
            axes |= set(axes_in(kept)) & set(axes_in(kept_x))
        if axes:
            t = global_over(b, t, tuple(sorted(axes)), "matmul", True, t.layout, t.shape, step=step,
                            bound=PAIRWISE if pairwise else "")
        parts.append(t)
    right = yl[-1] if not (set(axes_in(yl[-1])) & set(axes_in(kept_x))) else None
    batch = broadcast([(xl[:-2], ()), (yl[:-2], ())], max(len(xl), len(yl)) - 2)
    layout = (batch + (kept_x, right))[-out_rank:] if out_rank else ()
    op = O.Merge("matmul") if len(parts) > 1 else O.Elementwise("matmul")
    return b.emit(op, parts, layout)


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
    assert isinstance(a, int)
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


# -- module handlers ---------------------------------------------------------------------------


def with_indices(b: Builder, n: fx.Node, y: Value) -> Any:
    """Pools with return_indices give (values, indices); the indices read what the values read."""
    meta = b.captured.values[n]
    if isinstance(meta, tuple):
        return (y, Value(y.node, y.layout, tuple(meta[1].shape)))
    return y


def module_of(b: Builder, n: fx.Node) -> Any:
    return b.captured.gm.get_submodule(str(n.target))


def _m_conv(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    m = module_of(b, n)
    x = args[0]
    k = len(m.kernel_size)
    if isinstance(m, nn.modules.conv._ConvTransposeNd):
        out = b.out_shape()[-k:]
        # output padding from the actual size (forward(output_size=...) chooses it)
        out_pad = [o - ((i - 1) * s - 2 * p + d * (kk - 1) + 1) for o, i, s, p, d, kk in zip(
            out, x.shape[-k:], m.stride, m.padding, m.dilation, m.kernel_size)]
        return conv_op(b, x, k, m.kernel_size, m.stride, m.padding, m.dilation, "zeros", True, out_pad)
    return conv_op(b, x, k, m.kernel_size, m.stride, m.padding, m.dilation, m.padding_mode)


def _m_pool(kind: str) -> Handler:
    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        m = module_of(b, n)
        x = args[0]
        k = x.rank - 2 if x.rank >= 3 else 1
        dilation = getattr(m, "dilation", 1)
        padding = getattr(m, "padding", 0)
        y = pool_op(b, x, k, kind, m.kernel_size, m.stride, padding, dilation, m.ceil_mode)
        return with_indices(b, n, y)

    return handle


def _m_adaptive(kind: str) -> Handler:
    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        m = module_of(b, n)
        x = args[0]
        y = adaptive_op(b, x, x.rank - 2, kind, m.output_size)
        return with_indices(b, n, y)

    return handle


def _m_pad(mode: str) -> Handler:
    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
        return pad_op(b, args[0], module_of(b, n).padding, mode)

    return handle


def _m_upsample(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    m = module_of(b, n)
    align = getattr(m, "align_corners", None)
    if isinstance(m, nn.UpsamplingBilinear2d):
        align = True
    return resize_op(b, args[0], m.size, m.scale_factor, m.mode, align,
                     getattr(m, "recompute_scale_factor", None))


def _m_shuffle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    m = module_of(b, n)
    if isinstance(m, nn.PixelUnshuffle):
        return shuffle_op(b, args[0], m.downscale_factor, True)
    return shuffle_op(b, args[0], m.upscale_factor, False)


def _m_linear(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    return linear_op(b, args[0])


def _m_layer_norm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    m = module_of(b, n)
    return norm_over_last(b, args[0], len(m.normalized_shape))


def norm_over_last(b: Builder, x: Value, k: int) -> Value:
    """Normalisation over the last k dims: their spatial axes become global (size kept)."""
    axes = spatial_axes(x.layout, range(x.rank - k, x.rank))
    return global_over(b, x, axes, "layer_norm", True, x.layout)


def _group_norm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """Statistics over channels and every spatial position: global on the spatial axes."""
    x = args[0] if args else kwargs["input"]
    return global_over(b, x, spatial_axes(x.layout, range(1, x.rank)), "group_norm", True, x.layout)


def _m_instance_norm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    m = module_of(b, n)
    x = args[0]
    if m.track_running_stats:  # inference with running statistics: position-wise
        return b.identity(x, "instance_norm")
    return global_over(b, x, spatial_axes(x.layout, range(2, x.rank)), "instance_norm", True,
                       x.layout)


def _m_softmax(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    m = module_of(b, n)
    x = args[0]
    dim = m.dim if m.dim is not None else (0 if x.rank in (0, 1, 3) else 1)
    return global_over(b, x, axes_in(x.layout[x.dim(dim)]), "softmax", True, x.layout)


def _m_mha(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    m = module_of(b, n)
    p = bind(args, kwargs, ("query", "key", "value"), {})
    token_dim = 1 if m.batch_first and p["query"].rank == 3 else 0
    meta = b.captured.values[n]
    out = attention_op(b, p["query"], p["key"], p["value"], token_dim, tuple(meta[0].shape))
    weights = meta[1]
    return (out, None if weights is None else b.constant(tuple(weights.shape)))


ELEMENTWISE_MODULES: tuple[type, ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus, nn.Softsign,
    nn.Tanhshrink, nn.Threshold, nn.LogSigmoid, nn.Hardshrink, nn.Softshrink, nn.RReLU,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
    nn.Identity, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
    nn.LocalResponseNorm, nn.ChannelShuffle, nn.Softmax2d,
)

MODULES: dict[type, Handler] = {
    **{cls: elementwise(cls.__name__.lower()) for cls in ELEMENTWISE_MODULES},
    nn.Conv1d: _m_conv, nn.Conv2d: _m_conv, nn.Conv3d: _m_conv,
    nn.ConvTranspose1d: _m_conv, nn.ConvTranspose2d: _m_conv, nn.ConvTranspose3d: _m_conv,
    nn.MaxPool1d: _m_pool("max_pool"), nn.MaxPool2d: _m_pool("max_pool"),
    nn.MaxPool3d: _m_pool("max_pool"),
    nn.AvgPool1d: _m_pool("avg_pool"), nn.AvgPool2d: _m_pool("avg_pool"),
    nn.AvgPool3d: _m_pool("avg_pool"),
    nn.LPPool1d: _m_pool("lp_pool"), nn.LPPool2d: _m_pool("lp_pool"), nn.LPPool3d: _m_pool("lp_pool"),
    nn.AdaptiveAvgPool1d: _m_adaptive("adaptive_avg_pool"),
    nn.AdaptiveAvgPool2d: _m_adaptive("adaptive_avg_pool"),
    nn.AdaptiveAvgPool3d: _m_adaptive("adaptive_avg_pool"),
    nn.AdaptiveMaxPool1d: _m_adaptive("adaptive_max_pool"),
    nn.AdaptiveMaxPool2d: _m_adaptive("adaptive_max_pool"),
    nn.AdaptiveMaxPool3d: _m_adaptive("adaptive_max_pool"),
    nn.ZeroPad1d: _m_pad("constant"), nn.ZeroPad2d: _m_pad("constant"), nn.ZeroPad3d: _m_pad("constant"),
    nn.ConstantPad1d: _m_pad("constant"), nn.ConstantPad2d: _m_pad("constant"),
    nn.ConstantPad3d: _m_pad("constant"),
    nn.ReflectionPad1d: _m_pad("reflect"), nn.ReflectionPad2d: _m_pad("reflect"),
    nn.ReflectionPad3d: _m_pad("reflect"),
    nn.ReplicationPad1d: _m_pad("replicate"), nn.ReplicationPad2d: _m_pad("replicate"),
    nn.ReplicationPad3d: _m_pad("replicate"),
    nn.CircularPad1d: _m_pad("circular"), nn.CircularPad2d: _m_pad("circular"),
    nn.CircularPad3d: _m_pad("circular"),
    nn.Upsample: _m_upsample, nn.UpsamplingNearest2d: _m_upsample,
    nn.UpsamplingBilinear2d: _m_upsample,
    nn.PixelShuffle: _m_shuffle, nn.PixelUnshuffle: _m_shuffle,
    nn.Linear: _m_linear, nn.Bilinear: _m_linear, nn.Flatten: reshaped, nn.Unflatten: reshaped,
    nn.LayerNorm: _m_layer_norm, nn.GroupNorm: _group_norm,
    nn.InstanceNorm1d: _m_instance_norm, nn.InstanceNorm2d: _m_instance_norm,
    nn.InstanceNorm3d: _m_instance_norm,
    nn.Softmax: _m_softmax, nn.LogSoftmax: _m_softmax, nn.Softmin: _m_softmax,
    nn.MultiheadAttention: _m_mha,
}


# -- function and method handlers --------------------------------------------------------------


def _f_conv(transposed: bool) -> Handler:
    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
        if transposed:
            p = bind(args, kwargs, ("input", "weight", "bias", "stride", "padding", "output_padding",
                                    "groups", "dilation"),
                     {"stride": 1, "padding": 0, "output_padding": 0, "dilation": 1})
        else:
            p = bind(args, kwargs, ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
                     {"stride": 1, "padding": 0, "dilation": 1})
        x, w = p["input"], p["weight"]
        kernel = w.shape[2:]
        k = len(kernel)
        if w.node is not None:
            return b.emit(O.Unknown("convolution with input-dependent weights"), [x, w],
                          x.layout)
        return conv_op(b, x, k, kernel, p["stride"], p["padding"], p["dilation"], "zeros", transposed,
                       p.get("output_padding", 0))

    return handle


def _f_pool(kind: str, k: int) -> Handler:
    names = {"max_pool": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode"),
             "avg_pool": ("input", "kernel_size", "stride", "padding", "ceil_mode"),
             "lp_pool": ("input", "norm_type", "kernel_size", "stride", "ceil_mode")}[kind]

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        p = bind(args, kwargs, names, {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False})
        y = pool_op(b, p["input"], k, kind, p["kernel_size"], p["stride"], p["padding"], p["dilation"],
                    p["ceil_mode"])
        return with_indices(b, n, y)

    return handle


def _f_adaptive(kind: str) -> Handler:
    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        p = bind(args, kwargs, ("input", "output_size"), {})
        x = p["input"]
        y = adaptive_op(b, x, x.rank - 2, kind, p["output_size"])
        return with_indices(b, n, y)

    return handle


def _f_pad(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("input", "pad", "mode", "value"), {"mode": "constant"})
    return pad_op(b, p["input"], p["pad"], p["mode"])


def _f_interpolate(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("input", "size", "scale_factor", "mode", "align_corners",
                            "recompute_scale_factor", "antialias"),
             {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None,
              "recompute_scale_factor": None, "antialias": False})
    return resize_op(b, p["input"], p["size"], p["scale_factor"], p["mode"], p["align_corners"],
                     p["recompute_scale_factor"], bool(p["antialias"]))


def _f_shuffle(unshuffle: bool) -> Handler:
    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
        return shuffle_op(b, args[0], args[1] if len(args) > 1 else next(iter(kwargs.values())),
                          unshuffle)

    return handle


def _f_linear(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("input", "weight", "bias"), {})
    if isinstance(p["weight"], Value) and p["weight"].node is not None:
        return matmul_op(b, p["input"], p["weight"])
    return linear_op(b, p["input"])


def _f_layer_norm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("input", "normalized_shape"), {})
    return norm_over_last(b, p["input"], len(per_dim(p["normalized_shape"], 1)))


def _f_sdpa(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("query", "key", "value"), {})
    return attention_op(b, p["query"], p["key"], p["value"], -2, b.out_shape())


def _f_matmul(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    x, y = args[0], args[1]
    if not isinstance(x, Value) or not isinstance(y, Value):
        return b.captured.values[n]
    return matmul_op(b, x, y)


def _f_cat(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("tensors", "dim"), {"dim": 0})
    return cat_op(b, p["tensors"], p["dim"])


def _f_stack(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("tensors", "dim"), {"dim": 0})
    items = [v for v in p["tensors"] if isinstance(v, Value)]
    d = p["dim"] + items[0].rank + 1 if p["dim"] < 0 else p["dim"]
    connected = [v for v in items if v.node is not None]
    layout = broadcast([(v.layout, v.shape) for v in items], items[0].rank)
    layout = layout[:d] + (None,) + layout[d:]
    op = O.Merge("concat") if len(connected) > 1 else O.Elementwise("concat")
    return b.emit(op, connected, layout)


def _f_getitem(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    obj, index = args
    if isinstance(obj, Value):
        return index_op(b, obj, index)
    return obj[index]


def _split_sizes(b: Builder, x: Value, dim: int) -> list[int]:
    """The parts' lengths along `dim`, as PyTorch split them."""
    return [tuple(m.shape)[x.dim(dim)] for m in b.captured.values[b.node]]  # type: ignore[index]


def _f_split(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    """chunk and split: the part lengths are read off PyTorch's result."""
    p = bind(args, kwargs, ("input", "how", "dim"), {"dim": 0})
    x = p["input"]
    return split_op(b, x, _split_sizes(b, x, p["dim"]), p["dim"])


def _f_unbind(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    p = bind(args, kwargs, ("input", "dim"), {"dim": 0})
    x = p["input"]
    return split_op(b, x, [1] * x.shape[x.dim(p["dim"])], p["dim"])


def _data_dependent(name: str) -> Handler:
    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
        found = tensors((args, kwargs))
        x = found[0]
        return b.emit(O.Unknown(name, data_dependent=True), [v for v in found if v.node],
                      x.layout if x.rank == len(b.out_shape()) else (None,) * len(b.out_shape()))

    return handle


def _swin_pad(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """torchvision's _patch_merging_pad: (B, H, W, C) padded at the end to even H and W, then the
    four pixels of every 2x2 block stacked on channels: a 2x2 window with stride 2."""
    x = args[0]
    dims = (x.rank - 3, x.rank - 2)
    mapped = tuple(x.layout[d] for d in dims)
    if not all(isinstance(a, int) for a in mapped):
        raise LayoutError("patch merging over a tensor whose H and W are not spatial")
    after = per_axis(b, mapped, [x.shape[d] % 2 for d in dims], 0)
    if any(after):
        shape = tuple(s_ + (s_ % 2 if d in dims else 0) for d, s_ in enumerate(x.shape))
        x = b.emit(O.Pad([0] * b.n_axes, after, "constant"), [x], x.layout, shape, step="pad")
    two = per_axis(b, mapped, (2, 2), 1)
    return b.emit(O.Window(two, two, 1, 0, False, "patch_merging"), [x], x.layout)


def _swin_attention(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """torchvision's shifted_window_attention on (B, H, W, C): pad H and W to multiples of the
    window, roll by -shift, attention inside each window, roll back, crop. Every token reads its
    whole (rolled) window: the -100 mask of shifted windows scales weights, it does not zero them."""
    p = bind(args, kwargs, ("input", "qkv_weight", "proj_weight", "relative_position_bias",
                            "window_size", "num_heads", "shift_size"), {})
    x: Value = p["input"]
    window, shift = list(p["window_size"]), list(p["shift_size"])
    dims = (x.rank - 3, x.rank - 2)
    mapped = [x.layout[d] for d in dims]
    if not all(isinstance(a, int) for a in mapped):
        raise LayoutError("shifted window attention over a tensor whose H and W are not spatial")
    size = [x.shape[d] for d in dims]
    padded = [n_ + (w - n_ % w) % w for n_, w in zip(size, window)]
    shift = [0 if w >= pn else s for s, w, pn in zip(shift, window, padded)]
    ident = [0] * b.n_axes

    def axis_values(values: Sequence[Any], default: Any) -> list[Any]:
        return per_axis(b, cast(tuple[int, ...], tuple(mapped)), values, default)

    shape = list(x.shape)
    for d, pn in zip(dims, padded):
        shape[d] = pn
    padded_shape = tuple(shape)
    y = x
    if padded != size:
        y = b.emit(O.Pad(ident, axis_values([pn - n_ for pn, n_ in zip(padded, size)], 0), "constant"),
                   [y], x.layout, padded_shape, step="pad")
    if any(shift):
        y = _roll(b, y, mapped, [-s for s in shift], padded, padded_shape, "roll")
    y = b.emit(O.Window(axis_values(window, 1), axis_values(window, 1), 1, 0, False, "window"), [y],
               x.layout, None, step="windows")
    y = b.emit(O.Resize("nearest", axis_values(window, 1), None, "asymmetric", "floor"), [y],
               x.layout, padded_shape, step="attention")
    if any(shift):
        y = _roll(b, y, mapped, shift, padded, padded_shape, "unroll")
    if padded != size:
        return b.emit(O.Crop(ident, axis_values(size, None), 1), [y], x.layout)
    return b.identity(y, "shifted_window_attention")


def _roll(b: Builder, x: Value, mapped: Sequence[Any], shifts: Sequence[int], sizes: Sequence[int],
          shape: tuple[int, ...], step: str) -> Value:
    """torch.roll by `shifts`: circular padding before by shift mod n, then the first n."""
    amounts = [s % n_ for s, n_ in zip(shifts, sizes)]
    before = per_axis(b, tuple(mapped), amounts, 0)
    grown = b.emit(O.Pad(before, [0] * b.n_axes, "circular"), [x], x.layout, None, step=step + "_pad")
    return b.emit(O.Crop([0] * b.n_axes, per_axis(b, tuple(mapped), sizes, None), 1), [grown],
                  x.layout, shape, step=step)


def _f_roll(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("input", "shifts", "dims"), {"dims": None})
    x: Value = p["input"]
    if p["dims"] is None:
        if any(e is not None for e in x.layout):
            raise LayoutError("torch.roll of the flattened tensor")
        return b.identity(x, "roll")
    dims = [x.dim(d) for d in per_dim(p["dims"], 1)]
    shifts = per_dim(p["shifts"], len(dims))
    picked = [(x.layout[d], s, x.shape[d]) for d, s in zip(dims, shifts) if x.layout[d] is not None]
    if any(isinstance(e, Merged) for e, _, _ in picked):
        raise LayoutError("torch.roll of flattened spatial tokens")
    if not picked:
        return b.identity(x, "roll")
    mapped = tuple(e for e, _, _ in picked)
    y = _roll(b, x, mapped, [s for _, s, _ in picked], [n_ for _, _, n_ in picked], x.shape, "roll")
    return b.identity(y, "roll")


def _maxvit_partition_attention(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """torchvision's MaxViT PartitionAttentionLayer on (B, C, H, W): attention and MLP inside
    each partition, added to the input. Block ("window") partitions of p x p: a token reads its
    whole block (a p-window with stride p, then nearest upsampling by p). "grid" partitions: a
    token reads every position of its residue class mod p on each axis (stride-p tokens across the
    whole axis): a circular pad by L - p before and a window of L/p taps with dilation p, which
    reads exactly those positions."""
    m = module_of(b, n)
    x: Value = args[0]
    mapped = (x.layout[-2], x.layout[-1])
    if not all(isinstance(a, int) for a in mapped):
        raise LayoutError("partition attention over a tensor whose H and W are not spatial")
    axes = cast(tuple[int, ...], mapped)
    p = m.p
    sizes = x.shape[-2:]

    def axis_values(values: Sequence[Any], default: Any) -> list[Any]:
        return per_axis(b, axes, values, default)

    if m.partition_type == "window":
        y = b.emit(O.Window(axis_values((p, p), 1), axis_values((p, p), 1), 1, 0, False, "window"), [x],
                   x.layout, None, step="windows")
        y = b.emit(O.Resize("nearest", axis_values((p, p), 1), None, "asymmetric", "floor"), [y],
                   x.layout, x.shape, step="attention")
    else:
        before = axis_values([size - p for size in sizes], 0)
        grown = x.shape[:-2] + tuple(2 * size - p for size in sizes)
        y = b.emit(O.Pad(before, [0] * b.n_axes, "circular"), [x], x.layout, grown, step="wrap")
        y = b.emit(O.Window(axis_values([size // p for size in sizes], 1), 1, axis_values((p, p), 1), 0,
                            False, "grid"), [y], x.layout, x.shape, step="attention")
    return b.emit(O.Merge("add"), [x, y], x.layout)


MODULES_BY_NAME: dict[str, Handler] = {
    # library modules kept whole under fx and handled here; matched by name, never imported
    "torchvision.models.maxvit.PartitionAttentionLayer": _maxvit_partition_attention,
}


BY_NAME: dict[str, Handler] = {
    # torchvision functions that fx keeps whole (torch.fx.wrap); matched by name, never imported
    "torchvision.ops.stochastic_depth.stochastic_depth": elementwise("stochastic_depth"),
    "torchvision.models.swin_transformer._patch_merging_pad": _swin_pad,
    "torchvision.models.swin_transformer.shifted_window_attention": _swin_attention,
}


ELEMENTWISE_FUNCTIONS: dict[Any, str] = {
    **{getattr(F, f): f for f in (
        "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "sigmoid",
        "tanh", "hardswish", "hardsigmoid", "hardtanh", "softplus", "softsign", "logsigmoid",
        "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
        "batch_norm", "local_response_norm", "prelu", "threshold", "hardshrink", "tanhshrink",
        "softshrink", "rrelu", "relu_", "elu_", "leaky_relu_", "hardtanh_")},
    **{getattr(torch, f): f for f in (
        "relu", "sigmoid", "tanh", "exp", "log", "sqrt", "rsqrt", "abs", "neg", "clamp", "clip",
        "add", "sub", "subtract", "mul", "multiply", "div", "divide", "pow", "maximum", "minimum",
        "where", "sign", "square", "erf", "sin", "cos", "reciprocal", "relu_", "sigmoid_",
        "batch_norm", "channel_shuffle", "native_channel_shuffle", "masked_fill",
        "clamp_min", "clamp_max", "floor", "ceil", "round", "logical_not", "lerp")},
    operator.add: "add", operator.sub: "sub", operator.mul: "mul", operator.truediv: "div",
    operator.floordiv: "floordiv", operator.pow: "pow", operator.neg: "neg", operator.iadd: "add",
    operator.imul: "mul", operator.mod: "mod",
}


def _function_table() -> dict[Any, Handler]:
    table: dict[Any, Handler] = {f: elementwise(kind) for f, kind in ELEMENTWISE_FUNCTIONS.items()}
    for k in (1, 2, 3):
        table[getattr(F, f"conv{k}d")] = _f_conv(False)
        table[getattr(torch, f"conv{k}d")] = _f_conv(False)
        table[getattr(F, f"conv_transpose{k}d")] = _f_conv(True)
        table[getattr(F, f"max_pool{k}d")] = _f_pool("max_pool", k)
        table[getattr(F, f"avg_pool{k}d")] = _f_pool("avg_pool", k)
        table[getattr(F, f"adaptive_avg_pool{k}d")] = _f_adaptive("adaptive_avg_pool")
        table[getattr(F, f"adaptive_max_pool{k}d")] = _f_adaptive("adaptive_max_pool")
    table[torch.max_pool2d] = _f_pool("max_pool", 2)
    table[F.lp_pool1d] = _f_pool("lp_pool", 1)
    table[F.lp_pool2d] = _f_pool("lp_pool", 2)
    table.update({
        F.pad: _f_pad, F.interpolate: _f_interpolate, F.upsample: _f_interpolate,
        F.pixel_shuffle: _f_shuffle(False), F.pixel_unshuffle: _f_shuffle(True),
        torch.pixel_shuffle: _f_shuffle(False), torch.pixel_unshuffle: _f_shuffle(True),
        F.linear: _f_linear, F.layer_norm: _f_layer_norm, F.group_norm: _group_norm,
        F.scaled_dot_product_attention: _f_sdpa,
        torch.matmul: _f_matmul, torch.bmm: _f_matmul, operator.matmul: _f_matmul,
        torch.cat: _f_cat, torch.concat: _f_cat, torch.concatenate: _f_cat, torch.stack: _f_stack,
        operator.getitem: _f_getitem,
        torch.flatten: reshaped, torch.reshape: reshaped,
        torch.permute: layout_op(_permuted, ("input", "dims")),
        torch.transpose: layout_op(_transposed, ("input", "dim0", "dim1")),
        torch.movedim: layout_op(_moved, ("input", "source", "destination")),
        torch.squeeze: layout_op(_squeezed, ("input",)), torch.unsqueeze: layout_op(_squeezed, ("input",)),
        torch.mean: reduction("mean"), torch.sum: reduction("sum"), torch.amax: reduction("amax"),
        torch.amin: reduction("amin"), torch.std: reduction("std"), torch.var: reduction("var"),
        torch.logsumexp: reduction("logsumexp"),
        F.softmax: along_dim("softmax"), F.log_softmax: along_dim("log_softmax"),
        torch.softmax: along_dim("softmax"), F.normalize: along_dim("normalize", default=1),
        torch.roll: _f_roll, torch.chunk: _f_split, torch.split: _f_split,
        torch.unbind: _f_unbind,
        F.grid_sample: _data_dependent("grid_sample"),
    })
    return table


FUNCTIONS = _function_table()

ELEMENTWISE_METHODS = (
    "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "exp", "log", "sqrt", "rsqrt", "abs", "neg",
    "clamp", "clamp_", "clip", "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "pow",
    "masked_fill", "masked_fill_", "type_as", "to", "float", "half", "double", "type", "clone",
    "detach", "contiguous", "sign", "square", "erf", "sin", "cos", "reciprocal", "floor", "ceil",
    "round", "maximum", "minimum", "__add__", "__mul__", "lerp", "requires_grad_", "bool", "cuda", "cpu",
)

METHODS: dict[str, Handler] = {
    **{m: elementwise(m.strip("_")) for m in ELEMENTWISE_METHODS},
    "view": reshaped, "reshape": reshaped,
    "view_as": reshaped, "reshape_as": reshaped,
    "flatten": reshaped, "unflatten": reshaped,
    "squeeze": layout_op(_squeezed, ("self",)), "unsqueeze": layout_op(_squeezed, ("self",)),
    "permute": layout_op(_permuted, ("self", "dims")),
    "transpose": layout_op(_transposed, ("self", "dim0", "dim1")),
    "movedim": layout_op(_moved, ("self", "source", "destination")),
    "expand": layout_op(_expanded, ("self",)), "expand_as": layout_op(_expanded, ("self",)),
    "mean": reduction("mean"), "sum": reduction("sum"), "amax": reduction("amax"),
    "amin": reduction("amin"), "std": reduction("std"), "var": reduction("var"),
    "softmax": along_dim("softmax"), "log_softmax": along_dim("log_softmax"),
    "chunk": _f_split, "split": _f_split, "unbind": _f_unbind,
    "matmul": _f_matmul, "roll": _f_roll,
}


def handler_for(b: Builder, n: fx.Node, extra: dict[Any, Handler] | None = None) -> Handler | None:
    """The handler of an fx node, or None (an unknown op)."""
    if n.op == "call_module":
        cls = b.captured.leaf_types[str(n.target)]
        if extra and cls in extra:
            return extra[cls]
        by_name = MODULES_BY_NAME.get(qualified_name(cls))
        if by_name is not None:
            return by_name
        for klass in cls.__mro__:
            found = MODULES.get(klass)
            if found is not None and (klass is cls or klass not in (nn.Module,)):
                return found if klass is cls or _same_forward(cls, klass) else None
        return None
    if n.op == "call_method":
        if extra and n.target in extra:
            return extra[n.target]
        return METHODS.get(str(n.target))
    if extra and n.target in extra:
        return extra[n.target]
    if isinstance(n.target, torch._ops.OpOverload):
        if extra and n.target.overloadpacket in extra:
            return extra[n.target.overloadpacket]
        from .aten import aten_handler

        return aten_handler(n.target)
    found = FUNCTIONS.get(n.target)
    if found is None:
        name = op_name(n)
        found = BY_NAME.get(name)
        if found is None and "deform_conv" in name:
            return _data_dependent("deform_conv2d")
    return found


def _same_forward(cls: type, base: type) -> bool:
    """A subclass that keeps its base's forward behaves as the base."""
    return getattr(cls, "forward", None) is getattr(base, "forward", None)
