"""torchvision's blocks that foveal handles whole: functions fx keeps whole (torch.fx.wrap) and
modules kept whole under fx, matched by qualified name so torchvision is never imported.

Swin's shifted windows are exact: pad to whole windows, roll (a circular pad and a crop), a
block window (window then nearest upsampling by the window size), roll back, crop. MaxViT's
partition attention is exact too (see its handler).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from torch import fx

from .. import ops as O
from ..building import Value
from ..layout import LayoutError
from .builder import Builder, Handler
from .nodes import bind, data_dependent, elementwise, module_of
from .spatial import per_axis, roll_op


def swin_patch_merging_pad(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
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


def swin_shifted_window_attention(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
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
        return list(per_axis(b, cast(tuple[int, ...], tuple(mapped)), values, default))

    shape = list(x.shape)
    for d, pn in zip(dims, padded):
        shape[d] = pn
    padded_shape = tuple(shape)
    y = x
    if padded != size:
        y = b.emit(O.Pad(ident, axis_values([pn - n_ for pn, n_ in zip(padded, size)], 0), "constant"),
                   [y], x.layout, padded_shape, step="pad")
    if any(shift):
        y = roll_op(b, y, mapped, [-s for s in shift], padded, padded_shape, "roll")
    y = b.emit(O.Window(axis_values(window, 1), axis_values(window, 1), 1, 0, False, "window"), [y],
               x.layout, None, step="windows")
    y = b.emit(O.Resize("nearest", axis_values(window, 1), None, "asymmetric", "floor"), [y],
               x.layout, padded_shape, step="attention")
    if any(shift):
        y = roll_op(b, y, mapped, shift, padded, padded_shape, "unroll")
    if padded != size:
        return b.emit(O.Crop(ident, axis_values(size, None), 1), [y], x.layout)
    return b.identity(y, "shifted_window_attention")


def maxvit_partition_attention(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
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
        return list(per_axis(b, axes, values, default))

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


DEFORM_CONV = data_dependent("deform_conv2d")
"""torchvision's deformable convolution (any function or op whose name says so): it reads where
its offsets point."""

FUNCTIONS_BY_NAME: dict[str, Handler] = {
    "torchvision.ops.stochastic_depth.stochastic_depth": elementwise("stochastic_depth"),
    "torchvision.models.swin_transformer._patch_merging_pad": swin_patch_merging_pad,
    "torchvision.models.swin_transformer.shifted_window_attention": swin_shifted_window_attention,
}

MODULES_BY_NAME: dict[str, Handler] = {
    "torchvision.models.maxvit.PartitionAttentionLayer": maxvit_partition_attention,
}
