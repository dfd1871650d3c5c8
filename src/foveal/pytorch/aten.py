"""The op table for exported graphs: ATen op (by packet name) to handler.

Arguments are first put in schema order (defaults filled in), so the handlers written for
torch.nn.functional calls, whose parameters come in the same order, serve the ATen ops too. An op
tagged pointwise is element-wise; an op without an entry is unknown, so the policy applies.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from .. import ops as O
from ..layout import LayoutError, spatial_axes
from .builder import Builder, Handler, Value
from .handlers import (
    _data_dependent,
    _expanded,
    _f_adaptive,
    _f_cat,
    _f_conv,
    _f_layer_norm,
    _f_linear,
    _f_matmul,
    _f_pad,
    _f_pool,
    _f_roll,
    _f_sdpa,
    _f_shuffle,
    _f_split,
    _f_stack,
    _f_unbind,
    _group_norm,
    _permuted,
    _squeezed,
    _transposed,
    along_dim,
    elementwise,
    global_over,
    index_op,
    layout_op,
    matmul_op,
    pad_op,
    reduction,
    reshaped,
    resize_op,
)


def params(n: fx.Node, args: tuple) -> dict[str, Any]:
    """Normalised positional arguments by schema name."""
    names = [a.name for a in n.target._schema.arguments if not a.kwarg_only]  # type: ignore[union-attr]
    return dict(zip(names, args))


def _normalised(handler: Handler) -> Handler:
    """Arguments in schema order, defaults filled in; keyword-only ones stay keywords."""

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        positional: list[Any] = []
        keywords: dict[str, Any] = {}
        for i, a in enumerate(n.target._schema.arguments):  # type: ignore[union-attr]
            if a.kwarg_only:
                if a.name in kwargs:
                    keywords[a.name] = kwargs[a.name]
            elif i < len(args):
                positional.append(args[i])
            elif a.name in kwargs:
                positional.append(kwargs[a.name])
            elif a.has_default_value():
                positional.append(a.default_value)
            else:
                break
        return handler(b, n, tuple(positional), keywords)

    return handle


_CONV, _CONV_TRANSPOSED = _f_conv(False), _f_conv(True)


def _convolution(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """aten.convolution, in the argument order of F.conv*d or F.conv_transpose*d."""
    x, w, bias, stride, padding, dilation, transposed, output_padding, groups = args[:9]
    if transposed:
        return _CONV_TRANSPOSED(b, n, (x, w, bias, stride, padding, output_padding, groups, dilation), {})
    return _CONV(b, n, (x, w, bias, stride, padding, dilation, groups), {})


def _pad_mode(mode: str) -> Handler:
    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
        return pad_op(b, args[0], args[1], mode)

    return handle


def _upsample(mode: str) -> Handler:
    """upsample_*.vec (output_size or scale_factors) and .default (output_size, scales_*)."""

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
        p = params(n, args)
        x = args[0]
        scales = p.get("scale_factors")
        if scales is None:
            found = [p[k] for k in ("scales_d", "scales_h", "scales_w", "scales") if k in p]
            scales = found if any(s is not None for s in found) else None
        kind, antialias = ("bilinear", True) if mode == "antialias" else (mode, False)
        if scales is not None:
            return resize_op(b, x, None, scales, kind, p.get("align_corners"), antialias=antialias)
        return resize_op(b, x, p["output_size"], None, kind, p.get("align_corners"), antialias=antialias)

    return handle


def _slice(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = params(n, args)
    x: Value = p["self"]
    d = x.dim(p["dim"])
    return index_op(b, x, (slice(None),) * d + (slice(p["start"], p["end"], p["step"]),))


def _narrow(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    x, dim, start, length = args[:4]
    d = x.dim(dim)
    start = start % x.shape[d]
    return index_op(b, x, (slice(None),) * d + (slice(start, start + length),))


def _select(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    x, dim, index = args[:3]
    return index_op(b, x, (slice(None),) * x.dim(dim) + (index,))


def _addmm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    bias, x, y = args[:3]
    if bias.node is not None:
        raise LayoutError("addmm with an input-dependent bias")
    return matmul_op(b, x, y)


def _instance_norm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = params(n, args)
    x: Value = p["input"]
    if not p["use_input_stats"]:
        return b.identity(x, "instance_norm")
    return global_over(b, x, spatial_axes(x.layout, range(2, x.rank)), "instance_norm", True, x.layout)


def _first_of(kind: str) -> Handler:
    """Ops returning (result, statistics...): the result is element-wise in the first input."""

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        meta = b.captured.values[n]
        x = args[0]
        shape = tuple(meta[0].shape)
        y = b.emit(O.Elementwise(kind), [x], x.layout, shape) if isinstance(x, Value) else b.constant(shape)
        return (y, *(b.constant(tuple(m.shape)) if isinstance(m, torch.Tensor) else m for m in meta[1:]))

    return handle


def _roll(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """aten.roll's dims=[] rolls the flattened tensor, as torch.roll(dims=None) does."""
    x, shifts, dims = args[:3]
    return _f_roll(b, n, (x, shifts, list(dims) or None), {})


_POSITION_WISE = (
    "clone", "contiguous", "alias", "detach", "_to_copy", "to", "lift_fresh_copy", "type_as",
    "dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout", "channel_shuffle",
    "native_channel_shuffle", "hardswish", "hardsigmoid", "mish", "batch_norm", "prelu",
    "_prelu_kernel", "rrelu", "celu", "selu", "softplus", "elu", "leaky_relu", "log_sigmoid",
    "hardshrink", "softshrink", "silu", "gelu")
"""Element-wise ATen ops that torch does not tag pointwise (or that stay whole when lowering)."""


def _table() -> dict[str, Handler]:
    table: dict[str, Handler] = {name: elementwise(name.strip("_")) for name in _POSITION_WISE}
    for k in (1, 2, 3):
        table[f"conv{k}d"] = _CONV
        table[f"conv_transpose{k}d"] = _CONV_TRANSPOSED
        table[f"max_pool{k}d"] = table[f"max_pool{k}d_with_indices"] = _f_pool("max_pool", k)
        table[f"avg_pool{k}d"] = _f_pool("avg_pool", k)
        for prefix in ("", "_"):
            table[f"{prefix}adaptive_avg_pool{k}d"] = _f_adaptive("adaptive_avg_pool")
        table[f"adaptive_max_pool{k}d"] = _f_adaptive("adaptive_max_pool")
        table[f"reflection_pad{k}d"] = _pad_mode("reflect")
        table[f"replication_pad{k}d"] = _pad_mode("replicate")
    for name, mode in (("upsample_nearest1d", "nearest"), ("upsample_nearest2d", "nearest"),
                       ("upsample_nearest3d", "nearest"), ("_upsample_nearest_exact1d", "nearest-exact"),
                       ("_upsample_nearest_exact2d", "nearest-exact"),
                       ("_upsample_nearest_exact3d", "nearest-exact"), ("upsample_linear1d", "linear"),
                       ("upsample_bilinear2d", "bilinear"), ("upsample_trilinear3d", "trilinear"),
                       ("upsample_bicubic2d", "bicubic"), ("_upsample_bilinear2d_aa", "antialias")):
        table[name] = _upsample(mode)
    table.update({
        "convolution": _convolution, "_convolution": _convolution,
        "pad": _f_pad, "constant_pad_nd": _pad_mode("constant"), "_pad_circular": _pad_mode("circular"),
        "pixel_shuffle": _f_shuffle(False), "pixel_unshuffle": _f_shuffle(True),
        "linear": _f_linear, "mm": _f_matmul, "bmm": _f_matmul, "matmul": _f_matmul, "addmm": _addmm,
        "layer_norm": _f_layer_norm, "group_norm": _group_norm, "instance_norm": _instance_norm,
        "_native_batch_norm_legit_no_training": _first_of("batch_norm"),
        "native_dropout": _first_of("dropout"),
        "scaled_dot_product_attention": _f_sdpa,
        "cat": _f_cat, "concat": _f_cat, "concatenate": _f_cat, "stack": _f_stack,
        "slice": _slice, "select": _select, "narrow": _narrow,
        **dict.fromkeys(("view", "_unsafe_view", "reshape", "flatten", "unflatten", "view_as",
                         "reshape_as", "_reshape_alias"), reshaped),
        "permute": layout_op(_permuted, ("self", "dims")),
        "transpose": layout_op(_transposed, ("self", "dim0", "dim1")),
        "squeeze": layout_op(_squeezed, ("self",)), "unsqueeze": layout_op(_squeezed, ("self",)),
        "expand": layout_op(_expanded, ("self",)), "expand_as": layout_op(_expanded, ("self",)),
        **{name: reduction(name) for name in ("mean", "sum", "amax", "amin", "std", "var", "logsumexp",
                                              "prod", "max", "min")},
        "softmax": along_dim("softmax"), "_softmax": along_dim("softmax"),
        "log_softmax": along_dim("log_softmax"), "_log_softmax": along_dim("log_softmax"),
        "split": _f_split, "split_with_sizes": _f_split, "chunk": _f_split, "unbind": _f_unbind,
        "roll": _roll,
        **dict.fromkeys(("grid_sampler", "grid_sampler_2d", "grid_sampler_3d"),
                        _data_dependent("grid_sample")),
    })
    return {name: _normalised(h) for name, h in table.items()}


ATEN = _table()
_POINTWISE: dict[str, Handler] = {}


def handled_packets() -> frozenset[str]:
    """The ATen ops kept whole when an exported program is lowered."""
    return frozenset(ATEN)


def aten_handler(target: Any) -> Handler | None:
    """The handler of an ATen op overload, or None (an unknown op)."""
    name = target.overloadpacket.__name__
    if torch.Tag.pointwise in target.tags:
        if name not in _POINTWISE:
            _POINTWISE[name] = _normalised(elementwise(name.strip("_")))
        return _POINTWISE[name]
    if target.namespace == "torchvision" and "deform_conv" in name:
        return _data_dependent("deform_conv2d")
    return ATEN.get(name) if target.namespace == "aten" else None
