"""The op tables of function calls: torch functions and operators by object, tensor methods by
name, and the one mapping from op name to handler that they and the ATen table (`aten.py`)
refer to, so an op served under several names (torch.roll, Tensor.roll, aten.roll) is defined
once.

Adding an op is one entry here (its handler in `OPS`, its name in the lists of the namespaces
that have it) and one test.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from .. import ops as O
from ..building import Value
from ..handler_table import HandlerTable
from ..layout import LayoutError, broadcast, spatial_axes
from .builder import Builder, Handler
from .einsum import einsum
from .nodes import (
    REDUCTIONS,
    along_dim,
    attention_op,
    bind,
    data_dependent,
    elementwise,
    linear_op,
    matmul_op,
    mix_over,
    norm_over_last,
    per_dim,
    reduction,
    with_indices,
)
from .reshaping import (
    assigned,
    cat,
    expanded,
    getitem,
    moved,
    permuted,
    repeated,
    reshaped,
    split,
    stack,
    swapped,
    unbind,
)
from .spatial import (
    adaptive_op,
    conv_op,
    fold_op,
    pad_op,
    pool_op,
    resize_op,
    roll,
    shuffle_op,
    unfold_op,
)
from .torchvision_ops import FUNCTIONS_BY_NAME
from .writes import assign

# -- handlers of function calls ----------------------------------------------------------------


def convolution(transposed: bool) -> Handler:
    """F.conv*d / F.conv_transpose*d: the kernel is read off the weight's shape."""

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
        if w.node is not None and spatial_axes(w.layout):  # weights that vary over positions
            return b.emit(O.Unknown("convolution with input-dependent weights", data_dependent=True),
                          [x, w], x.layout)
        y = conv_op(b, x, k, kernel, p["stride"], p["padding"], p["dilation"], "zeros", transposed,
                    p.get("output_padding", 0))
        if w.node is None:
            return y
        # weights computed from the input but the same at every position (CondConv's routing
        # from a global pool): each output reads its window and whatever the weights read
        return b.emit(O.Merge("conv"), [y, w], y.layout, step="weights")

    return handle


def pool(kind: str, k: int) -> Handler:
    """F.max_pool*d, F.avg_pool*d and F.lp_pool*d over the last k dims."""
    names = {"max_pool": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode"),
             "avg_pool": ("input", "kernel_size", "stride", "padding", "ceil_mode"),
             "lp_pool": ("input", "norm_type", "kernel_size", "stride", "ceil_mode")}[kind]

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        p = bind(args, kwargs, names, {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False})
        y = pool_op(b, p["input"], k, kind, p["kernel_size"], p["stride"], p["padding"], p["dilation"],
                    p["ceil_mode"])
        return with_indices(b, n, y)

    return handle


def adaptive(kind: str) -> Handler:
    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        p = bind(args, kwargs, ("input", "output_size"), {})
        x = p["input"]
        y = adaptive_op(b, x, x.rank - 2, kind, p["output_size"])
        return with_indices(b, n, y)

    return handle


def pad(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("input", "pad", "mode", "value"), {"mode": "constant"})
    return pad_op(b, p["input"], p["pad"], p["mode"])


def interpolate(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("input", "size", "scale_factor", "mode", "align_corners",
                            "recompute_scale_factor", "antialias"),
             {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None,
              "recompute_scale_factor": None, "antialias": False})
    return resize_op(b, p["input"], p["size"], p["scale_factor"], p["mode"], p["align_corners"],
                     p["recompute_scale_factor"], bool(p["antialias"]))


def sliding(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """Tensor.unfold(dimension, size, step) (and aten.unfold): windows of `size` every `step`
    along one dim, their taps in a new last dim. On a dim holding an axis, that axis gets a
    window (the dim now indexes the windows: HaloNet's neighbourhoods); elsewhere it regroups
    features."""
    p = bind(args, kwargs, ("input", "dimension", "size", "step"), {})
    x: Value = p["input"]
    d = x.dim(p["dimension"])
    entry = x.layout[d]
    layout = x.layout + (None,)
    if entry is None:
        return b.emit(O.Elementwise("unfold"), [x], layout)
    if not isinstance(entry, int):
        raise LayoutError("Tensor.unfold along a dim of flattened or split spatial axes")
    kernel, stride = [1] * b.n_axes, [1] * b.n_axes
    kernel[entry], stride[entry] = p["size"], p["step"]
    return b.emit(O.Window(kernel, stride, 1, 0, False, "unfold"), [x], layout)


def unfold(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """F.unfold / aten.im2col (not Tensor.unfold, which slides along one dim)."""
    p = bind(args, kwargs, ("input", "kernel_size", "dilation", "padding", "stride"),
             {"dilation": 1, "padding": 0, "stride": 1})
    return unfold_op(b, p["input"], p["kernel_size"], p["dilation"], p["padding"], p["stride"])


def fold(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """F.fold / aten.col2im."""
    p = bind(args, kwargs, ("input", "output_size", "kernel_size", "dilation", "padding", "stride"),
             {"dilation": 1, "padding": 0, "stride": 1})
    return fold_op(b, p["input"], p["output_size"], p["kernel_size"], p["dilation"], p["padding"],
                   p["stride"])


def shuffle(unshuffle: bool) -> Handler:
    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
        return shuffle_op(b, args[0], args[1] if len(args) > 1 else next(iter(kwargs.values())),
                          unshuffle)

    return handle


def linear(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("input", "weight", "bias"), {})
    if isinstance(p["weight"], Value) and p["weight"].node is not None:
        return matmul_op(b, p["input"], p["weight"])
    return linear_op(b, p["input"])


def layer_norm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("input", "normalized_shape"), {})
    return norm_over_last(b, p["input"], len(per_dim(p["normalized_shape"], 1)))


def rms_norm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """F.rms_norm: the root mean square over the last len(normalized_shape) dims."""
    p = bind(args, kwargs, ("input", "normalized_shape"), {})
    return norm_over_last(b, p["input"], len(per_dim(p["normalized_shape"], 1)))


def scaled_dot_product_attention(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    p = bind(args, kwargs, ("query", "key", "value"), {})
    return attention_op(b, p["query"], p["key"], p["value"], -2, b.out_shape())


def matmul(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    x, y = args[0], args[1]
    if not isinstance(x, Value) or not isinstance(y, Value):
        return b.captured.values[n]
    return matmul_op(b, x, y)


def batch_norm_op(b: Builder, x: Value, batch_statistics: bool) -> Value:
    """Running statistics are position-wise; batch statistics (training, or none kept: the weight
    standardisation of NFNets) read every position of the channel, in every sample."""
    if not batch_statistics:
        return b.identity(x, "batch_norm")
    return mix_over(b, x, [d for d in range(x.rank) if d != 1], "batch_norm", True, x.layout, x.shape)


def batch_norm(names: tuple[str, ...]) -> Handler:
    """F.batch_norm and torch.batch_norm (whose arguments come in ATen's order), with or without
    running statistics; an op returning the statistics too gives them as constants."""

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        p = bind(args, kwargs, names, {"running_mean": None, "training": False})
        y = batch_norm_op(b, p["input"], bool(p["training"]) or p["running_mean"] is None)
        meta = b.captured.values[n]
        if isinstance(meta, (tuple, list)):
            return (y, *(b.constant(tuple(m.shape)) for m in meta[1:]))
        return y

    return handle


ATEN_BATCH_NORM = batch_norm(("input", "weight", "bias", "running_mean", "running_var", "training"))


def group_norm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """Statistics over channels and every spatial position: global on the spatial axes."""
    x = args[0] if args else kwargs["input"]
    return mix_over(b, x, range(1, x.rank), "group_norm", True, x.layout)


CONVOLUTION, TRANSPOSED_CONVOLUTION = convolution(False), convolution(True)

# -- the one mapping from op name to handler ---------------------------------------------------

OPS: dict[str, Handler] = {
    **{f"conv{k}d": CONVOLUTION for k in (1, 2, 3)},
    **{f"conv_transpose{k}d": TRANSPOSED_CONVOLUTION for k in (1, 2, 3)},
    **{f"max_pool{k}d": pool("max_pool", k) for k in (1, 2, 3)},
    **{f"avg_pool{k}d": pool("avg_pool", k) for k in (1, 2, 3)},
    **{f"lp_pool{k}d": pool("lp_pool", k) for k in (1, 2)},
    **{f"adaptive_avg_pool{k}d": adaptive("adaptive_avg_pool") for k in (1, 2, 3)},
    **{f"adaptive_max_pool{k}d": adaptive("adaptive_max_pool") for k in (1, 2, 3)},
    "pad": pad, "interpolate": interpolate, "upsample": interpolate,
    "pixel_shuffle": shuffle(False), "pixel_unshuffle": shuffle(True), "im2col": unfold, "col2im": fold,
    "linear": linear, "layer_norm": layer_norm, "group_norm": group_norm,
    "batch_norm": batch_norm(("input", "running_mean", "running_var", "weight", "bias", "training")),
    "scaled_dot_product_attention": scaled_dot_product_attention,
    "matmul": matmul, "bmm": matmul,
    "cat": cat, "concat": cat, "concatenate": cat, "stack": stack, "getitem": getitem,
    **dict.fromkeys(("view", "reshape", "view_as", "reshape_as", "flatten", "unflatten", "squeeze",
                     "unsqueeze"), reshaped),
    "permute": permuted, "transpose": swapped, "movedim": moved, "expand": expanded,
    "expand_as": expanded, "repeat_interleave": repeated,
    **{name: reduction(name) for name in REDUCTIONS},
    "rms_norm": rms_norm,
    "softmax": along_dim("softmax"), "log_softmax": along_dim("log_softmax"),
    "normalize": along_dim("normalize", default=1),
    "roll": roll, "chunk": split, "split": split, "unbind": unbind,
    "grid_sample": data_dependent("grid_sample"),
}
"""Every op that is not element-wise, by name; the tables below and the ATen table pick from it."""

F_OPS = (
    *(f"{op}{k}d" for op in ("conv", "conv_transpose", "max_pool", "avg_pool", "adaptive_avg_pool",
                             "adaptive_max_pool") for k in (1, 2, 3)),
    "lp_pool1d", "lp_pool2d", "pad", "interpolate", "upsample", "pixel_shuffle", "pixel_unshuffle",
    "linear", "layer_norm", "group_norm", "rms_norm", "batch_norm", "scaled_dot_product_attention",
    "softmax", "log_softmax", "normalize", "grid_sample")
"""The ops of torch.nn.functional."""

TORCH_OPS = (
    "conv1d", "conv2d", "conv3d", "max_pool2d", "pixel_shuffle", "pixel_unshuffle", "matmul", "bmm",
    "cat", "concat", "concatenate", "stack", "flatten", "reshape", "permute", "transpose", "movedim",
    "squeeze", "unsqueeze", "mean", "sum", "amax", "amin", "std", "var", "std_mean", "var_mean",
    "logsumexp", "prod", "max", "min", "nansum", "nanmean", "median", "norm", "softmax", "roll",
    "chunk", "split", "unbind", "repeat_interleave")
"""The ops of torch."""

LINALG_OPS = ("vector_norm", "norm", "matrix_norm")
"""The reductions of torch.linalg."""

METHOD_OPS = (
    "view", "reshape", "view_as", "reshape_as", "flatten", "unflatten", "squeeze", "unsqueeze",
    "permute", "transpose", "movedim", "expand", "expand_as", "mean", "sum", "amax", "amin", "std",
    "var", "logsumexp", "prod", "max", "min", "nansum", "nanmean", "median", "norm", "softmax",
    "log_softmax", "chunk", "split", "unbind", "matmul", "roll", "repeat_interleave")
"""The ops of torch.Tensor."""

# -- element-wise ops: the kind each is recorded as --------------------------------------------

ELEMENTWISE_FUNCTIONS: dict[Any, str] = {
    **{getattr(F, f): f for f in (
        "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "sigmoid",
        "tanh", "hardswish", "hardsigmoid", "hardtanh", "softplus", "softsign", "logsigmoid",
        "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
        "local_response_norm", "prelu", "threshold", "hardshrink", "tanhshrink",
        "softshrink", "rrelu", "relu_", "elu_", "leaky_relu_", "hardtanh_")},
    **{getattr(torch, f): f for f in (
        "relu", "sigmoid", "tanh", "exp", "log", "sqrt", "rsqrt", "abs", "neg", "clamp", "clip",
        "add", "sub", "subtract", "mul", "multiply", "div", "divide", "pow", "maximum", "minimum",
        "where", "sign", "square", "erf", "sin", "cos", "reciprocal", "relu_", "sigmoid_",
        "channel_shuffle", "native_channel_shuffle", "masked_fill",
        "clamp_min", "clamp_max", "floor", "ceil", "round", "logical_not", "lerp", "addcmul",
        "addcdiv")},
    operator.add: "add", operator.sub: "sub", operator.mul: "mul", operator.truediv: "div",
    operator.floordiv: "floordiv", operator.pow: "pow", operator.neg: "neg", operator.iadd: "add",
    operator.imul: "mul", operator.mod: "mod", operator.isub: "sub", operator.itruediv: "div",
}


ELEMENTWISE_METHODS = (
    "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "exp", "log", "sqrt", "rsqrt", "abs", "neg",
    "clamp", "clamp_", "clip", "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "pow",
    "masked_fill", "masked_fill_", "type_as", "to", "float", "half", "double", "type", "clone",
    "detach", "contiguous", "sign", "square", "erf", "sin", "cos", "reciprocal", "floor", "ceil",
    "round", "maximum", "minimum", "__add__", "__mul__", "lerp", "requires_grad_", "bool", "cuda", "cpu",
)
"""Recorded as the name without underscores (`relu_` is a relu)."""

# -- the tables --------------------------------------------------------------------------------

FUNCTIONS: HandlerTable[Handler] = HandlerTable({
    **{f: elementwise(kind) for f, kind in ELEMENTWISE_FUNCTIONS.items()},
    **{getattr(F, name): OPS[name] for name in F_OPS},
    **{getattr(torch, name): OPS[name] for name in TORCH_OPS},
    **{getattr(torch.linalg, name): OPS[f"linalg_{name}"] for name in LINALG_OPS},
    F.unfold: OPS["im2col"], F.fold: OPS["col2im"], torch.batch_norm: ATEN_BATCH_NORM,
    operator.matmul: OPS["matmul"], operator.getitem: OPS["getitem"], assign: assigned,
    torch.einsum: einsum,
    **FUNCTIONS_BY_NAME,
})
"""Function calls, by the function (torch, torch.nn.functional, operator), or by qualified name for
library functions that fx keeps whole and foveal never imports (torchvision's)."""

def overwritten(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """`x.copy_(y)`, `x.fill_(v)`, `x.zero_()`, and ATen's copy (what an exported slice
    assignment becomes): x's old values are not read, y's (broadcast to x's shape) are, if y is
    a tensor computed from the input."""
    shape = b.out_shape()
    src = args[1] if len(args) > 1 else None
    if not isinstance(src, Value) or src.node is None:
        return b.constant(shape)
    return b.emit(O.Elementwise("copy"), [src], broadcast([(src.layout, src.shape)], len(shape)))


METHODS: HandlerTable[Handler] = HandlerTable({
    **{m: elementwise(m.strip("_")) for m in ELEMENTWISE_METHODS},
    **{name: OPS[name] for name in METHOD_OPS},
    "unfold": sliding,
    **dict.fromkeys(("copy_", "fill_", "zero_"), overwritten),
})
"""Tensor method calls, by method name."""
