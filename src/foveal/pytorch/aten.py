"""The op table of exported graphs: ATen op (by packet name) to handler.

Arguments are first put in schema order (defaults filled in), so the handlers written for
torch.nn.functional calls, whose parameters come in the same order, serve the ATen ops too: most
entries are the functional table's (`functional.OPS`) under the same name or an ATen alias. An
op tagged pointwise is element-wise; an op without an entry is unknown, so the policy applies.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import torch
from torch import fx

from .. import ops as O
from ..building import Value
from ..handler_table import HandlerTable
from ..layout import LayoutError
from .builder import Builder, Handler
from .functional import ATEN_BATCH_NORM, CONVOLUTION, OPS, TRANSPOSED_CONVOLUTION, overwritten, sliding
from .nodes import REDUCTIONS, elementwise, instance_norm_op, matmul_op
from .reshaping import assign_op, index_op
from .spatial import pad_op, resize_op


def params(n: fx.Node, args: tuple) -> dict[str, Any]:
    """Normalised positional arguments by schema name."""
    names = [a.name for a in n.target._schema.arguments if not a.kwarg_only]  # type: ignore[union-attr]
    return dict(zip(names, args))


def normalised(handler: Handler) -> Handler:
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


# -- ATen's own ops ----------------------------------------------------------------------------


def _convolution(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """aten.convolution, in the argument order of F.conv*d or F.conv_transpose*d."""
    x, w, bias, stride, padding, dilation, transposed, output_padding, groups = args[:9]
    if transposed:
        return TRANSPOSED_CONVOLUTION(b, n, (x, w, bias, stride, padding, output_padding, groups, dilation),
                                      {})
    return CONVOLUTION(b, n, (x, w, bias, stride, padding, dilation, groups), {})


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


def _scatter(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """slice_scatter / select_scatter(self, src, dim, ...): self with part of `dim` replaced by
    src, as the item assignment it was (`reshaping.assign_op`)."""
    p = params(n, args)
    x, src = p["self"], p["src"]
    d = x.dim(p["dim"])
    part = p["index"] if "index" in p else slice(p["start"], p["end"], p["step"])
    return assign_op(b, x, [slice(None)] * d + [part], src, "scatter", "a scatter")


def _addmm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    bias, x, y = args[:3]
    if bias.node is not None:
        raise LayoutError("addmm with an input-dependent bias")
    return matmul_op(b, x, y)


def _instance_norm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = params(n, args)
    return instance_norm_op(b, p["input"], p["use_input_stats"])


def _batch_norm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    """batch_norm, native_batch_norm, _native_batch_norm_legit (with running statistics or
    without: no_stats) by schema name, in ATen's order."""
    p = params(n, args)
    return ATEN_BATCH_NORM(b, n, (), {k: p.get(k) for k in ("input", "running_mean", "training")})


def _first_of(kind: str) -> Handler:
    """Ops returning (result, statistics...): the result is element-wise in the first input."""

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        meta = b.captured.values[n]
        x = args[0]
        shape = tuple(meta[0].shape)
        y = b.emit(O.Elementwise(kind), [x], x.layout, shape) if isinstance(x, Value) else b.constant(shape)
        return (y, *(b.constant(tuple(m.shape)) if isinstance(m, torch.Tensor) else m for m in meta[1:]))

    return handle


# -- the table ---------------------------------------------------------------------------------

POSITION_WISE = (
    "clone", "contiguous", "alias", "detach", "_to_copy", "to", "lift_fresh_copy", "type_as",
    "dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout", "channel_shuffle",
    "native_channel_shuffle", "hardswish", "hardsigmoid", "mish", "prelu",
    "_prelu_kernel", "rrelu", "celu", "selu", "softplus", "elu", "leaky_relu", "log_sigmoid",
    "hardshrink", "softshrink", "silu", "gelu")
"""Element-wise ATen ops that torch does not tag pointwise (or that stay whole when lowering)."""

SAME_AS_FUNCTIONAL = (
    *(f"{op}{k}d" for op in ("conv", "conv_transpose", "max_pool", "avg_pool", "adaptive_avg_pool",
                             "adaptive_max_pool") for k in (1, 2, 3)),
    "pad", "pixel_shuffle", "pixel_unshuffle", "im2col", "col2im", "linear", "matmul", "bmm", "layer_norm",
    "group_norm", "scaled_dot_product_attention", "cat", "concat", "concatenate", "stack", "view", "reshape",
    "flatten", "unflatten", "view_as", "reshape_as", "permute", "transpose", "squeeze", "unsqueeze",
    "expand", "expand_as", *REDUCTIONS, "rms_norm", "softmax", "log_softmax", "split", "chunk",
    "unbind", "roll")
"""ATen ops whose handler is the functional table's of the same name."""

ALIASES = {
    **{f"max_pool{k}d_with_indices": f"max_pool{k}d" for k in (1, 2, 3)},
    **{f"_adaptive_avg_pool{k}d": f"adaptive_avg_pool{k}d" for k in (1, 2, 3)},
    "mm": "matmul", "_unsafe_view": "view", "_reshape_alias": "view", "_softmax": "softmax",
    "_log_softmax": "log_softmax", "split_with_sizes": "split",
    **dict.fromkeys(("grid_sampler", "grid_sampler_2d", "grid_sampler_3d"), "grid_sample"),
}
"""ATen ops that are a functional op under another name."""

UPSAMPLE_MODES = {
    "upsample_nearest1d": "nearest", "upsample_nearest2d": "nearest", "upsample_nearest3d": "nearest",
    "_upsample_nearest_exact1d": "nearest-exact", "_upsample_nearest_exact2d": "nearest-exact",
    "_upsample_nearest_exact3d": "nearest-exact", "upsample_linear1d": "linear",
    "upsample_bilinear2d": "bilinear", "upsample_trilinear3d": "trilinear",
    "upsample_bicubic2d": "bicubic", "_upsample_bilinear2d_aa": "antialias"}


def _table() -> dict[str, Handler]:
    table: dict[str, Handler] = {name: elementwise(name.strip("_")) for name in POSITION_WISE}
    table.update({name: OPS[name] for name in SAME_AS_FUNCTIONAL})
    table.update({name: OPS[same] for name, same in ALIASES.items()})
    table.update({name: _upsample(mode) for name, mode in UPSAMPLE_MODES.items()})
    for k in (1, 2, 3):
        table[f"reflection_pad{k}d"] = _pad_mode("reflect")
        table[f"replication_pad{k}d"] = _pad_mode("replicate")
    table.update({
        "convolution": _convolution, "_convolution": _convolution,
        "constant_pad_nd": _pad_mode("constant"), "_pad_circular": _pad_mode("circular"),
        "addmm": _addmm, "instance_norm": _instance_norm,
        "_native_batch_norm_legit_no_training": _first_of("batch_norm"),
        **dict.fromkeys(("batch_norm", "native_batch_norm", "_native_batch_norm_legit",
                         "_native_batch_norm_legit_functional"), _batch_norm),
        "native_dropout": _first_of("dropout"),
        "slice": _slice, "select": _select, "narrow": _narrow,
        "copy": overwritten, "slice_scatter": _scatter, "select_scatter": _scatter, "unfold": sliding,
    })
    return {name: normalised(h) for name, h in table.items()}


ATEN: HandlerTable[Handler] = HandlerTable(_table())
"""ATen ops of the `aten` namespace by packet name (`torch.ops.aten.flip` is "flip"); the user's
entries are keyed by the op (`torch.ops.aten.flip` or one overload of it), any namespace."""


def handled_packets() -> frozenset[str]:
    """The ATen ops kept whole when an exported program is lowered."""
    return frozenset(ATEN.defaults)


@cache
def pointwise(name: str) -> Handler:
    """The handler of an ATen op tagged pointwise."""
    return normalised(elementwise(name.strip("_")))
