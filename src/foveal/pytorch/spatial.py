"""Window-like ops on the spatial axes: convolution, pooling, padding, resizing, pixel shuffle,
roll. Each maps the op's last dims to network axes through the input's layout, so a conv over
a permuted or channels-last tensor lands on the right axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from torch import fx

from .. import ops as O
from ..building import Value
from ..layout import Keys, Layout, LayoutError, Merged, Piece, axes_in, axis_per_dim, merged, spatial_axes
from ..layout import mask as layout_mask
from ..layout import per_axis as layout_per_axis
from .builder import Builder
from .nodes import bind, per_dim, whole_axes


def op_axes(x: Value, n_op: int,
            trivial: Sequence[bool] = ()) -> tuple[tuple[int | None, ...], tuple[int, ...]]:
    """Network axis of each of the last n_op dims (None: not spatial), and the axes elsewhere.
    A dim where the op is `trivial` (one tap, stride 1, no padding: a 1x1 conv) is read position
    by position whatever it holds (EfficientFormer-V2's talking heads run a 1x1 conv over
    attention scores): a dim of flattened or split axes then maps to no axis and keeps its layout
    entry (a dim holding one axis stays that axis: a 1x1 conv is a window of one tap there)."""
    first = x.rank - n_op
    dims = range(first, x.rank)
    flags = [bool(t) and not isinstance(x.layout[d], int) for d, t in zip(dims, trivial)] or [False] * n_op
    picked = [d for d, t in zip(dims, flags) if not t]
    found = iter(axis_per_dim(x.layout, picked))
    return tuple(None if t else next(found) for t in flags), spatial_axes(x.layout, range(0, first))


def per_axis(b: Builder, mapped: tuple[int | None, ...], values: Sequence[Any],
             identity: Any) -> tuple[Any, ...]:
    """Per network axis: the op's value on the dim holding it, `identity` elsewhere; a tuple, so
    that equal ops are validated once (Graph.add memoizes ops made of ints and tuples)."""
    return tuple(layout_per_axis(mapped, values, identity, b.n_axes))


Geometry = Sequence[tuple[int, int, tuple[int, int], int]]
"""Per op dim: kernel, stride, (padding before, after), dilation."""

IN_WINDOWS = ("a window op inside the windows of a window partition, which clip it at their border: "
              "foveal reports it unclipped")


def spatial(b: Builder, x: Value, n_op: int, make: Callable[[tuple[int | None, ...]], O.Op],
            mixes_channels: bool, kind: str, trivial: Sequence[bool] = (),
            geometry: Geometry = ()) -> Value:
    """A window-like op on the last n_op dims; axes held by the channel dim become global if the
    op mixes channels (a conv over a permuted tensor)."""
    first = x.rank - n_op
    layout = x.layout
    if geometry and n_op == 1 and isinstance(layout[-1], Merged) and not mixes_channels:
        return _over_tokens(b, x, geometry[0], make, kind)
    if mixes_channels and any(isinstance(layout[d], Piece) and layout[d].stride > 1  # type: ignore[union-attr]
                              for d in range(first, x.rank)):
        x = _space_to_depth(b, x, n_op)
        layout = x.layout
    if geometry and any(isinstance(layout[d], Piece) for d in range(first, x.rank)):
        layout, mapped, bound = _in_windows(b, x, n_op, geometry)
        y = b.emit(make(mapped), [x], layout, step="windows" if bound else None)
        if bound:
            y = b.emit(O.Global(kind, (False,) * b.n_axes, True, IN_WINDOWS), [y], layout)
        return _channels_mixed(b, x, y, n_op, layout) if mixes_channels else y
    mapped, others = op_axes(x, n_op, trivial)
    if not any(a is not None for a in mapped):
        y = b.emit(O.Elementwise(kind), [x], layout)
    else:
        y = b.emit(make(mapped), [x], layout)
    if mixes_channels and others:
        y = _channels_mixed(b, x, y, n_op, layout)
    return y


def _channels_mixed(b: Builder, x: Value, y: Value, n_op: int, layout: Layout) -> Value:
    channel_axes = whole_axes(x, [x.rank - n_op - 1]) if spatial_axes(x.layout, [x.rank - n_op - 1]) else ()
    if channel_axes:
        y = b.emit(O.Global("dense", layout_mask(channel_axes, b.n_axes), True), [y], layout,
                   step="channels")
    return y


def _space_to_depth(b: Builder, x: Value, n_op: int) -> Value:
    """A conv over block indices whose positions-in-block are in the channel dim (TResNet's
    space-to-depth written as view / permute / reshape): that is a pixel unshuffle by the block
    width, after which the op dims hold their axes whole; anything else is refused."""
    first = x.rank - n_op
    channel = x.layout[first - 1] if first >= 1 else None
    inner = [e for e, _ in channel.parts] if isinstance(channel, Merged) else [channel]
    factor = [1] * b.n_axes
    layout = list(x.layout)
    lengths = b.sizes(x)
    for d in range(first, x.rank):
        e = x.layout[d]
        if not isinstance(e, Piece):
            continue
        low = Piece(e.axis, 1, e.stride)
        others = [q for k, q in enumerate(x.layout) if k not in (d, first - 1) and e.axis in axes_in(q)]
        if e.stride * e.count != lengths[e.axis] or low not in inner or others:
            raise LayoutError("a spatial op runs over a dimension holding the blocks of a split axis")
        factor[e.axis] = e.stride
        layout[d] = e.axis
    layout[first - 1] = None
    return b.emit(O.PixelUnshuffle(factor), [x], tuple(layout), step="space_to_depth")


def _over_tokens(b: Builder, x: Value, geometry: tuple[int, int, tuple[int, int], int],
                 make: Callable[[tuple[int | None, ...]], O.Op], kind: str) -> Value:
    """A 1-D pool over flattened tokens (NextViT's spatial reduction: AvgPool1d of r * r tokens)
    whose windows tile the grid row-major (kernel = stride, no padding, the kernel a divisor of
    the last axis's length or a multiple of whole rows): the same windows on the axes."""
    k, s, pads, _ = geometry
    entry = x.layout[-1]
    assert isinstance(entry, Merged)
    grid = [(e, n) for e, n in entry.parts if n != 1]
    if k != s or pads != (0, 0) or entry.extra or not entry.exact or not grid \
            or not all(isinstance(e, int) for e, _ in grid):
        raise LayoutError("a spatial op runs over a dimension of flattened spatial axes")
    window: dict[int, int] = {}
    left = k
    for e, n in reversed(grid):
        if left == 1:
            break
        if n % left == 0:
            window[e], left = left, 1
        elif left % n == 0:
            window[e], left = n, left // n
        else:
            return _token_spans(b, x, entry, k, kind)
    if left != 1:
        raise LayoutError("a window over flattened spatial tokens longer than the grid")
    op = make((None,))
    assert isinstance(op, O.Window)
    taps = [window.get(a, 1) for a in range(b.n_axes)]
    parts = tuple((e, n // window.get(e, 1)) if isinstance(e, int) else (e, n) for e, n in entry.parts)
    layout = x.layout[:-1] + (replace(entry, parts=parts),)
    return b.emit(O.Window(taps, taps, 1, 0, False, kind), [x], layout)


def _token_spans(b: Builder, x: Value, entry: Merged, k: int, kind: str) -> Value:
    """Windows of k consecutive tokens that straddle rows: pooled token j reads tokens
    [j k, j k + k - 1] of the row-major grid, no box of the axes. Its dim becomes a `Keys` dim
    (entry j reads span j), so the node's region is the union of the spans, which is exact: the
    grid cropped to the rows the spans reach, read whole (the keys and values of NextViT's
    attention, which reads every pooled token)."""
    axes = tuple(e for e, n in entry.parts if n != 1)
    lengths = [n for e, n in entry.parts if n != 1]
    used = (math.prod(lengths) // k) * k  # tokens the pooled ones cover (a floor drops the rest)
    start, stop = [0] * b.n_axes, list[int | None]([None] * b.n_axes)
    inner = math.prod(lengths[1:])
    if used < inner:
        raise LayoutError("windows over flattened spatial tokens that cover part of one row only")
    if used < math.prod(lengths):
        stop[axes[0]] = -(-used // inner)  # rows (along the first axis) the spans reach
    y = b.emit(O.Crop(start, stop, 1), [x], x.layout, step="spans") if used < math.prod(lengths) else x
    return b.emit(O.Global(kind, layout_mask(axes, b.n_axes), False), [y],
                  x.layout[:-1] + (Keys(axes),))


def _in_windows(b: Builder, x: Value, n_op: int,
                geometry: Geometry) -> tuple[Layout, tuple[int | None, ...], bool]:
    """A window op over dims holding positions inside the windows of a window partition
    (`layout.Piece` of stride 1: SAM2-Hiera's query pooling, EfficientViT-M's convs in its
    cascaded group attention). Windows of k taps with stride k that tile each window (k divides
    its width, no padding) are the same windows on the whole axis: exact, the pieces of the
    axis shrink by k. Any other op with stride 1 is clipped at the windows' borders, which
    foveal does not model: the unclipped window on the axis, marked a bound."""
    first = x.rank - n_op
    mapped: list[int | None] = []
    factor: dict[int, int] = {}
    tiles = True
    for d, (k, s, pads, dilation) in zip(range(first, x.rank), geometry):
        entry = x.layout[d]
        if isinstance(entry, Piece):
            if entry.stride != 1:
                raise LayoutError("a spatial op runs over a dimension holding the blocks of a split axis")
            tiles = tiles and k == s and pads == (0, 0) and entry.count % k == 0 and (k == 1 or dilation == 1)
            factor[entry.axis] = s
            mapped.append(entry.axis)
        else:
            mapped.extend(axis_per_dim(x.layout, [d]))
            if isinstance(entry, int) and s != 1:
                factor[entry] = s
    if not tiles and any(f != 1 for a, f in factor.items()):
        raise LayoutError("a strided window op inside the windows of a window partition that does not "
                          "tile them")
    if not tiles:
        return x.layout, tuple(mapped), True
    lengths = b.sizes(x)

    def fix(e: Any) -> Any:
        if isinstance(e, Merged) and e.parts:
            return replace(e, parts=tuple((fix(q), n // factor.get(q.axis, 1) if isinstance(q, Piece)
                                           and q.stride == 1 else n) for q, n in e.parts))
        if not isinstance(e, Piece) or factor.get(e.axis, 1) == 1:
            return e
        f = factor[e.axis]
        piece = Piece(e.axis, 1, e.count // f) if e.stride == 1 else Piece(e.axis, e.stride // f, e.count)
        return piece.axis if piece.stride == 1 and piece.count == lengths[e.axis] // f else piece

    return tuple(fix(e) if k < first or not isinstance(e, int) else e
                 for k, e in enumerate(x.layout)), tuple(mapped), False


def conv_op(b: Builder, x: Value, n_op: int, kernel, stride, padding, dilation, padding_mode: str,
            transposed: bool = False, output_padding: Any = 0) -> Value:
    kernel, stride, dilation = per_dim(kernel, n_op), per_dim(stride, n_op), per_dim(dilation, n_op)
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
        pairs = _pairs(padding, n_op)
    trivial = [k == 1 and s == 1 and p == (0, 0) for k, s, p in zip(kernel, stride, pairs)]
    if padding_mode != "zeros" and any(p != (0, 0) for p in pairs):
        mapped, _ = op_axes(x, n_op, trivial)
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

    geometry = list(zip(kernel, stride, pairs, dilation))
    return spatial(b, x, n_op, make, True, "conv", trivial, geometry)


def _pairs(padding: Any, n_op: int) -> list[tuple[int, int]]:
    """Per op dim (before, after): an int pads both sides; a pair (TensorFlow's 'same', which puts
    the odd pixel after) is taken as it is."""
    return [(p[0], p[1]) if isinstance(p, tuple) else (p, p) for p in per_dim(padding, n_op)]


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding of one axis (timm's `pad_same`): enough for ceil(L / s)
    outputs, half before and the odd pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def pool_op(b: Builder, x: Value, n_op: int, kind: str, kernel, stride, padding, dilation,
            ceil_mode: bool) -> Value:
    kernel = per_dim(kernel, n_op)
    stride = kernel if stride is None or stride == [] or stride == () else per_dim(stride, n_op)
    pairs = _pairs(padding, n_op)
    dilation = per_dim(dilation, n_op)

    def make(m: tuple[int | None, ...]) -> O.Op:
        return O.Window(per_axis(b, m, kernel, 1), per_axis(b, m, stride, 1),
                        per_axis(b, m, dilation, 1), per_axis(b, m, pairs, (0, 0)), bool(ceil_mode),
                        kind)

    return spatial(b, x, n_op, make, False, kind, (), list(zip(kernel, stride, pairs, dilation)))


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
    padded = [d for d, p in zip(range(x.rank - k, x.rank), pairs) if p != (0, 0) and x.layout[d] is not None]
    if len(padded) == 1 and isinstance(x.layout[padded[0]], Merged):
        return _pad_tokens(b, x, padded[0], pairs[padded[0] - x.rank + k], mode)
    mapped, _ = op_axes(x, k)
    if not any(a is not None for a in mapped):
        return b.identity(x, "pad")
    return b.emit(O.Pad(per_axis(b, mapped, [p[0] for p in pairs], 0),
                        per_axis(b, mapped, [p[1] for p in pairs], 0), mode), [x], x.layout)


def _pad_tokens(b: Builder, x: Value, d: int, pair: tuple[int, int], mode: str) -> Value:
    """Zero tokens put before a dim of flattened spatial tokens (CoaT's room for the class
    token): extra tokens that read nothing."""
    entry = x.layout[d]
    assert isinstance(entry, Merged)
    if mode != "constant" or pair[0] < 0 or pair[1] != 0 or (entry.extra and entry.extra_global):
        raise LayoutError("a pad of flattened spatial tokens other than zero tokens put before them")
    tokens = replace(entry, extra=entry.extra + pair[0])
    return b.identity(x, "pad", tuple(tokens if k == d else e for k, e in enumerate(x.layout)))


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
    sizes: list[Any] = list(per_axis(b, mapped, list(out), None))
    if size is not None or recompute_scale_factor or (align_corners and mode != "nearest"):
        scales: list[Any] = [1 if s is None else None for s in sizes]
    else:
        scales = list(per_axis(b, mapped, per_dim(scale, n_op), 1))
        sizes = [n if s is None else None for n, s in zip(sizes, scales)]
    op = O.upsample(scales, sizes, mode, bool(align_corners))
    return spatial(b, x, n_op, lambda m: op, False, "resize")


def shuffle_op(b: Builder, x: Value, factor: int, unshuffle: bool) -> Value:
    mapped, _ = op_axes(x, 2)
    # pixel (un)shuffle always works on the last two dims
    f = per_axis(b, mapped, (factor, factor), 1)
    op = O.PixelUnshuffle(f) if unshuffle else O.PixelShuffle(f)
    return spatial(b, x, 2, lambda m: op, False, "pixel_unshuffle" if unshuffle else "pixel_shuffle")


def roll_op(b: Builder, x: Value, mapped: Sequence[Any], shifts: Sequence[int], sizes: Sequence[int],
            shape: tuple[int, ...], step: str) -> Value:
    """torch.roll by `shifts`: circular padding before by shift mod n, then the first n."""
    amounts = [s % n_ for s, n_ in zip(shifts, sizes)]
    before = per_axis(b, tuple(mapped), amounts, 0)
    grown = b.emit(O.Pad(before, [0] * b.n_axes, "circular"), [x], x.layout, None, step=step + "_pad")
    return b.emit(O.Crop([0] * b.n_axes, per_axis(b, tuple(mapped), sizes, None), 1), [grown],
                  x.layout, shape, step=step)



def roll(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """torch.roll, Tensor.roll and aten.roll: no dims (None, or ATen's []) rolls the flattened
    tensor, which only a tensor without spatial dims survives."""
    p = bind(args, kwargs, ("input", "shifts", "dims"), {"dims": None})
    x: Value = p["input"]
    if p["dims"] is None or (isinstance(p["dims"], (list, tuple)) and not p["dims"]):
        if spatial_axes(x.layout):
            raise LayoutError("torch.roll of the flattened tensor")
        return b.identity(x, "roll")
    dims = [x.dim(d) for d in per_dim(p["dims"], 1)]
    shifts = per_dim(p["shifts"], len(dims))
    picked = [(x.layout[d], s, x.shape[d]) for d, s in zip(dims, shifts) if spatial_axes(x.layout, [d])]
    if any(isinstance(e, (Merged, Piece)) for e, _, _ in picked):
        raise LayoutError("torch.roll of flattened spatial tokens or of part of a split axis")
    if not picked:
        return b.identity(x, "roll")
    mapped = tuple(e for e, _, _ in picked)
    y = roll_op(b, x, mapped, [s for _, s, _ in picked], [n_ for _, _, n_ in picked], x.shape, "roll")
    return b.identity(y, "roll")


def unfold_op(b: Builder, x: Value, kernel, dilation, padding, stride) -> Value:
    """F.unfold (im2col): (N, C, H, W) -> (N, C*kh*kw, L), L the output grid flattened. Each
    column l reads the k x k window at grid position l: a window on each axis, then the grid
    merged into the last dim (the C*kh*kw dim holds the window's taps, no axis)."""
    kernel, dilation, stride = per_dim(kernel, 2), per_dim(dilation, 2), per_dim(stride, 2)
    pads = [(p, p) for p in per_dim(padding, 2)]
    if x.layout[-3] is not None:
        raise LayoutError("unfold of a tensor whose channel dim holds spatial axes")
    mapped, _ = op_axes(x, 2)
    grid = tuple((n + 2 * p[0] - d * (k - 1) - 1) // s + 1
                 for n, p, d, k, s in zip(x.shape[-2:], pads, dilation, kernel, stride))
    windows = O.Window(per_axis(b, mapped, kernel, 1), per_axis(b, mapped, stride, 1),
                       per_axis(b, mapped, dilation, 1), per_axis(b, mapped, pads, (0, 0)), False,
                       "unfold")
    y = b.emit(windows, [x], x.layout, x.shape[:-2] + grid, step="windows") \
        if any(a is not None for a in mapped) else x
    return b.emit(O.Elementwise("unfold"), [y], x.layout[:-3] + (None, merged(mapped, grid)))


def fold_op(b: Builder, x: Value, output_size, kernel, dilation, padding, stride) -> Value:
    """F.fold (col2im), the inverse layout of unfold: (N, C*kh*kw, L) -> (N, C, H, W), each
    pixel summing the taps of every window that covers it: a transposed window, when L is the
    grid of two axes flattened row-major (as unfold makes it)."""
    kernel, dilation, stride = per_dim(kernel, 2), per_dim(dilation, 2), per_dim(stride, 2)
    padding, size = per_dim(padding, 2), per_dim(output_size, 2)
    grid = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                 for n, p, d, k, s in zip(size, padding, dilation, kernel, stride))
    entry = x.layout[-1]
    if x.layout[-2] is not None:
        raise LayoutError("fold of a tensor whose window dim holds spatial axes")
    if entry is None:
        return b.emit(O.Elementwise("fold"), [x], x.layout[:-2] + (None, None, None))
    parts = tuple(p for p in entry.parts if p != (None, 1)) if isinstance(entry, Merged) else ()
    if (not isinstance(entry, Merged) or entry.extra or tuple(n for _, n in parts) != grid
            or not all(isinstance(a, int) for a, _ in parts)):
        raise LayoutError("fold of columns that are not an output grid of two spatial axes "
                          "flattened row-major")
    mapped = tuple(a for a, _ in parts)
    layout = x.layout[:-2] + (None,) + mapped
    y = b.emit(O.Elementwise("fold"), [x], layout, x.shape[:-1] + grid, step="grid")
    out_pad = [n - ((g - 1) * s - 2 * p + d * (k - 1) + 1)
               for n, g, s, p, d, k in zip(size, grid, stride, padding, dilation, kernel)]
    return b.emit(O.TransposedWindow(per_axis(b, mapped, kernel, 1), per_axis(b, mapped, stride, 1),
                                     per_axis(b, mapped, dilation, 1),
                                     per_axis(b, mapped, [(p, p) for p in padding], (0, 0)),
                                     per_axis(b, mapped, out_pad, 0)), [y], layout)
