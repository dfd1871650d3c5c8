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


MODULES_BY_NAME: dict[str, Handler] = {
    "timm.layers.bottleneck_attn.PosEmbedRel": relative_position_logits,
    "timm.layers.halo_attn.PosEmbedRel": relative_position_logits,
}
"""timm modules kept whole under fx, by qualified name."""
