"""The op table of module calls: torch.nn module class to handler.

A module's parameters come from its attributes (kernel_size, stride, ...), never from its
weights. A subclass that keeps its base's forward is handled as the base (`tables.py`).
Adding a module is one entry here and one test.
"""

from __future__ import annotations

from typing import Any

from torch import fx, nn

from ..building import Value
from ..handler_table import HandlerTable
from ..layout import LayoutError
from .builder import Builder, Handler, tensors
from .functional import group_norm
from .nodes import (
    attention_op,
    bind,
    elementwise,
    global_along,
    global_over,
    instance_norm_op,
    linear_op,
    module_of,
    norm_over_last,
    whole_axes,
    with_indices,
)
from .reshaping import reshaped
from .spatial import adaptive_op, conv_op, fold_op, pad_op, pool_op, resize_op, shuffle_op, unfold_op
from .timm_ops import MODULES_BY_NAME as TIMM_MODULES_BY_NAME
from .torchvision_ops import MODULES_BY_NAME


def _conv(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
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


def _pool(kind: str) -> Handler:
    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        m = module_of(b, n)
        x = args[0]
        k = x.rank - 2 if x.rank >= 3 else 1
        dilation = getattr(m, "dilation", 1)
        padding = getattr(m, "padding", 0)
        y = pool_op(b, x, k, kind, m.kernel_size, m.stride, padding, dilation, m.ceil_mode)
        return with_indices(b, n, y)

    return handle


def _adaptive(kind: str) -> Handler:
    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        m = module_of(b, n)
        x = args[0]
        y = adaptive_op(b, x, x.rank - 2, kind, m.output_size)
        return with_indices(b, n, y)

    return handle


def _pad(mode: str) -> Handler:
    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
        return pad_op(b, args[0], module_of(b, n).padding, mode)

    return handle


def _upsample(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    m = module_of(b, n)
    align = getattr(m, "align_corners", None)
    if isinstance(m, nn.UpsamplingBilinear2d):
        align = True
    return resize_op(b, args[0], m.size, m.scale_factor, m.mode, align,
                     getattr(m, "recompute_scale_factor", None))


def _shuffle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    m = module_of(b, n)
    if isinstance(m, nn.PixelUnshuffle):
        return shuffle_op(b, args[0], m.downscale_factor, True)
    return shuffle_op(b, args[0], m.upscale_factor, False)


def _unfold(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    m = module_of(b, n)
    if isinstance(m, nn.Fold):
        return fold_op(b, args[0], m.output_size, m.kernel_size, m.dilation, m.padding, m.stride)
    return unfold_op(b, args[0], m.kernel_size, m.dilation, m.padding, m.stride)


def _rms_norm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    return norm_over_last(b, args[0], len(module_of(b, n).normalized_shape))


def _linear(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    return linear_op(b, args[0])


def _layer_norm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    m = module_of(b, n)
    return norm_over_last(b, args[0], len(m.normalized_shape))


def _instance_norm(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    # inference with running statistics is position-wise
    return instance_norm_op(b, args[0], not module_of(b, n).track_running_stats)


def _softmax(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """nn.Softmax, nn.LogSoftmax, nn.Softmin: dim None is PyTorch's legacy choice."""
    m = module_of(b, n)
    x = args[0]
    dim = m.dim if m.dim is not None else (0 if x.rank in (0, 1, 3) else 1)
    return global_along(b, x, dim, "softmax")


def _mha(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    m = module_of(b, n)
    p = bind(args, kwargs, ("query", "key", "value"), {})
    token_dim = 1 if m.batch_first and p["query"].rank == 3 else 0
    meta = b.captured.values[n]
    out = attention_op(b, p["query"], p["key"], p["value"], token_dim, tuple(meta[0].shape))
    weights = meta[1]
    return (out, None if weights is None else b.constant(tuple(weights.shape)))


ONE_WAY = ("a unidirectional RNN reads only the positions up to its own; foveal reports the "
           "whole sequence")


def _rnn(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    """nn.RNN, nn.GRU, nn.LSTM: an output step reads the whole sequence (both directions; a
    unidirectional one reads a prefix, a bound) and its own batch entries; the final states read
    the whole sequence. Features are mixed, as by a linear layer."""
    m = module_of(b, n)
    p = bind(args, kwargs, ("input", "hx"), {"hx": None})
    x = p["input"]
    if not isinstance(x, Value):
        raise LayoutError(f"{type(m).__name__} on a packed sequence")
    if any(v.node is not None for v in tensors(p["hx"])):
        raise LayoutError(f"{type(m).__name__} with an input-dependent initial state")
    seq = 1 if m.batch_first and x.rank == 3 else 0
    read = whole_axes(x, [seq, x.rank - 1])
    bound = "" if m.bidirectional else ONE_WAY
    meta = b.captured.values[n]
    out = global_over(b, x, read, "rnn", True, x.layout[:-1] + (None,), tuple(meta[0].shape),
                      bound=bound)
    batch = tuple(e for d, e in enumerate(x.layout[:-1]) if d != seq)

    def final(state: Any, step: str) -> Value:
        shape = tuple(state.shape)
        return global_over(b, x, read, "rnn", False, ((None,) + batch + (None,))[-len(shape):], shape,
                           step=step, bound=bound)

    states = meta[1]
    if isinstance(states, tuple):  # LSTM: (h_n, c_n)
        return (out, (final(states[0], "h_n"), final(states[1], "c_n")))
    return (out, final(states, "h_n"))


ELEMENTWISE_MODULES: tuple[type, ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus, nn.Softsign,
    nn.Tanhshrink, nn.Threshold, nn.LogSigmoid, nn.Hardshrink, nn.Softshrink, nn.RReLU,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
    nn.Identity, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
    nn.LocalResponseNorm, nn.ChannelShuffle, nn.Softmax2d,
)

MODULES: HandlerTable[Handler] = HandlerTable({
    **{cls: elementwise(cls.__name__.lower()) for cls in ELEMENTWISE_MODULES},
    nn.Conv1d: _conv, nn.Conv2d: _conv, nn.Conv3d: _conv,
    nn.ConvTranspose1d: _conv, nn.ConvTranspose2d: _conv, nn.ConvTranspose3d: _conv,
    nn.MaxPool1d: _pool("max_pool"), nn.MaxPool2d: _pool("max_pool"),
    nn.MaxPool3d: _pool("max_pool"),
    nn.AvgPool1d: _pool("avg_pool"), nn.AvgPool2d: _pool("avg_pool"),
    nn.AvgPool3d: _pool("avg_pool"),
    nn.LPPool1d: _pool("lp_pool"), nn.LPPool2d: _pool("lp_pool"), nn.LPPool3d: _pool("lp_pool"),
    nn.AdaptiveAvgPool1d: _adaptive("adaptive_avg_pool"),
    nn.AdaptiveAvgPool2d: _adaptive("adaptive_avg_pool"),
    nn.AdaptiveAvgPool3d: _adaptive("adaptive_avg_pool"),
    nn.AdaptiveMaxPool1d: _adaptive("adaptive_max_pool"),
    nn.AdaptiveMaxPool2d: _adaptive("adaptive_max_pool"),
    nn.AdaptiveMaxPool3d: _adaptive("adaptive_max_pool"),
    nn.ZeroPad1d: _pad("constant"), nn.ZeroPad2d: _pad("constant"), nn.ZeroPad3d: _pad("constant"),
    nn.ConstantPad1d: _pad("constant"), nn.ConstantPad2d: _pad("constant"),
    nn.ConstantPad3d: _pad("constant"),
    nn.ReflectionPad1d: _pad("reflect"), nn.ReflectionPad2d: _pad("reflect"),
    nn.ReflectionPad3d: _pad("reflect"),
    nn.ReplicationPad1d: _pad("replicate"), nn.ReplicationPad2d: _pad("replicate"),
    nn.ReplicationPad3d: _pad("replicate"),
    nn.CircularPad1d: _pad("circular"), nn.CircularPad2d: _pad("circular"),
    nn.CircularPad3d: _pad("circular"),
    nn.Upsample: _upsample, nn.UpsamplingNearest2d: _upsample,
    nn.UpsamplingBilinear2d: _upsample,
    nn.PixelShuffle: _shuffle, nn.PixelUnshuffle: _shuffle,
    nn.Linear: _linear, nn.Bilinear: _linear, nn.Flatten: reshaped, nn.Unflatten: reshaped,
    nn.LayerNorm: _layer_norm, nn.GroupNorm: group_norm, nn.RMSNorm: _rms_norm,
    nn.Unfold: _unfold, nn.Fold: _unfold,
    nn.InstanceNorm1d: _instance_norm, nn.InstanceNorm2d: _instance_norm,
    nn.InstanceNorm3d: _instance_norm,
    nn.Softmax: _softmax, nn.LogSoftmax: _softmax, nn.Softmin: _softmax,
    nn.MultiheadAttention: _mha, nn.RNN: _rnn, nn.GRU: _rnn, nn.LSTM: _rnn,
    **MODULES_BY_NAME,
    **TIMM_MODULES_BY_NAME,
})
"""Module calls, by class, or by qualified name for library modules foveal never imports (kept
whole under fx: torchvision's and timm's)."""
