"""timm's blocks that foveal handles whole, matched by qualified name so timm is never imported.

Relative-position logits (BotNet's and HaloNet's `PosEmbedRel`) turn each query token's features
into one logit per key position through a chain of pads, flattens and slices over (query, relative
offset) dims: logit (i, j) is q_i . rel[j - i], which reads query token i only (the table is a
parameter). That shift trick mixes a spatial dim with a feature dim in ways no layout rule can
follow op by op, but the block as a whole is position-wise in the query token: its output keeps
q's token dims, with the key positions as a feature dim.
"""

from __future__ import annotations

from typing import Any

from torch import fx

from .. import ops as O
from ..building import Value
from .builder import Builder, Handler
from .nodes import module_of, per_dim
from .spatial import conv_op, pool_op, same_padding


def relative_position_logits(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
    """q (..., query tokens, dim) -> (..., query tokens, key positions): position-wise in q."""
    q = args[0] if args else next(iter(kwargs.values()))
    out = b.out_shape()
    if not isinstance(q, Value) or q.node is None:
        return b.constant(out)
    if len(out) != q.rank:
        return b.emit(O.Unknown("PosEmbedRel (an output of another rank than its query)"), [q],
                      (None,) * len(out))
    return b.emit(O.Elementwise("relative_position"), [q], q.layout[:-1] + (None,))


def _same_pairs(x: Value, kernel: Any, stride: Any, dilation: Any) -> list[tuple[int, int]]:
    """TensorFlow 'same' padding of the last two dims of x, from their sizes."""
    return [same_padding(size, k, s, d) for size, k, s, d in zip(
        x.shape[-2:], per_dim(kernel, 2), per_dim(stride, 2), per_dim(dilation, 2))]


def conv_same(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    """timm's Conv2dSame and the 'same' weight-standardised convs: TensorFlow 'same' padding from
    the input's size (a Python max() of sizes, which fx cannot trace), then the conv. StdConv2dSame
    pads so only when built with dynamic padding (`same_pad`), else as a plain conv."""
    m = module_of(b, n)
    x = args[0]
    kernel = m.weight.shape[-2:]
    padding: Any = m.padding
    if getattr(m, "same_pad", True):
        padding = [(p + a, p + c) for p, (a, c) in zip(per_dim(m.padding, 2),
                                                      _same_pairs(x, kernel, m.stride, m.dilation))]
    return conv_op(b, x, 2, tuple(kernel), m.stride, padding, m.dilation, "zeros")


def pool_same(kind: str) -> Handler:
    """timm's MaxPool2dSame / AvgPool2dSame: 'same' padding (max pooling's with -inf, average
    pooling's without its dilation), then the pool."""

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
        m = module_of(b, n)
        x = args[0]
        dilation = getattr(m, "dilation", 1) if kind == "max_pool" else 1
        pairs = _same_pairs(x, m.kernel_size, m.stride, dilation)
        padding = [(p + a, p + c) for p, (a, c) in zip(per_dim(m.padding, 2), pairs)]
        return pool_op(b, x, 2, kind, m.kernel_size, m.stride, padding, dilation, m.ceil_mode)

    return handle


MODULES_BY_NAME: dict[str, Handler] = {
    "timm.layers.conv2d_same.Conv2dSame": conv_same,
    "timm.layers.std_conv.StdConv2dSame": conv_same,
    "timm.layers.std_conv.ScaledStdConv2dSame": conv_same,
    "timm.layers.pool2d_same.MaxPool2dSame": pool_same("max_pool"),
    "timm.layers.pool2d_same.AvgPool2dSame": pool_same("avg_pool"),
    "timm.layers.bottleneck_attn.PosEmbedRel": relative_position_logits,
    "timm.layers.halo_attn.PosEmbedRel": relative_position_logits,
}
"""timm modules kept whole under fx, by qualified name."""
