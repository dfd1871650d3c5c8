"""Per-layer kernel, stride and padding as the receptive_field library reads them.

`get_layer_params` keeps the reference's 8-tuple `(kx, ky, sx, sy, px, py, total_x, total_y)`,
x being the width axis. The numbers come from foveal's reading of the node (weights and
constants found by following edges, `data_format` respected, dilation counted as the effective
kernel d(k-1)+1), so frozen graphs, Keras depthwise kernels and NCHW graphs work.
"""

from __future__ import annotations

from typing import Any

from ... import ops as O
from ...tensorflow.convert import NodeReader
from ...tensorflow.fields import attr_text

AxisParams = tuple[int, int, int | None, int | None]
"""(effective kernel, stride, left padding, total padding) on one axis; None: depends on the
input size, which is unknown."""

REFERENCE_PASS_THROUGH = frozenset(["Const", "VariableV2", "VarHandleOp", "ReadVariableOp", "LRN",
                                    "GreaterEqual", "Pow"])
"""Ops the reference passes through that foveal's converter never meets on a spatial path
(weights, constants), or reads as pass-through where the reference does."""


def same_padding(k: int, s: int, n: int | None) -> tuple[int | None, int | None]:
    """TensorFlow SAME: total max(k - (n mod s or s), 0), the odd pixel after. Without n, the
    reference's rules: known when k == 1 or s == 1; for s == 2 and an even kernel only the left
    padding is known (k/2 - 1 for odd and even n alike); otherwise both depend on n."""
    if n is not None:
        total = max(k - (n % s or s), 0)
        return total // 2, total
    if k == 1:
        return 0, 0
    if s == 1:
        return (k - 1) // 2, k - 1
    if s == 2 and k % 2 == 0:
        return (k - 1) // 2, None
    return None, None


def axis_params(op: O.Op, sizes: tuple[int | None, ...]) -> list[AxisParams] | None:
    """Per graph axis, the layer's (k, s, p, total) at input sizes `sizes`; None when the op
    is not a window, pad, crop or pass-through (its map is not k, s, p)."""
    if isinstance(op, (O.Input, O.Elementwise, O.Merge)):
        return [(1, 1, 0, 0) for _ in sizes]
    if isinstance(op, O.Pad):
        return [(1, 1, b, b + a) for b, a in zip(op.before, op.after)]
    if isinstance(op, O.Crop):
        out: list[AxisParams] = []
        for start, step, n in zip(op.start, op.step, sizes):
            if start < 0 and n is None:
                return None
            first = start + n if start < 0 and n is not None else start
            out.append((1, step, -first, None))
        return out
    if isinstance(op, O.Window):
        return [_window_axis(k, s, d, pad, n)
                for k, s, d, pad, n in zip(op.kernel, op.stride, op.dilation, op.padding, sizes)]
    return None


def _window_axis(k: int, s: int, d: int, pad: Any, n: int | None) -> AxisParams:
    k_eff = d * (k - 1) + 1
    if pad == "same_upper":
        return (k_eff, s, *same_padding(k_eff, s, n))
    if pad == "same_lower":
        left, total = same_padding(k_eff, s, n)
        return (k_eff, s, None if total is None else total - total // 2, total)
    if pad == "valid":
        return k_eff, s, 0, 0
    if pad == "causal":
        return k_eff, s, k_eff - 1, k_eff - 1
    if pad == "torch_same":
        return k_eff, s, (k_eff - 1) // 2, k_eff - 1
    before, after = pad
    return k_eff, s, before, before + after


def output_size(op: O.Op, params: list[AxisParams], sizes: tuple[int | None, ...]) -> tuple[int, ...] | None:
    """Per axis ceil((n + total - k + 1) / s), the reference's rule; crops by their slice."""
    out = []
    for (k, s, _, total), n, axis in zip(params, sizes, range(len(sizes))):
        if n is None:
            return None
        if isinstance(op, O.Crop):
            out.append(len(range(*slice(op.start[axis], op.stop[axis], op.step[axis]).indices(n))))
        elif total is None:
            return None
        else:
            out.append(-(-(n + total - k + 1) // s))
    return tuple(out)


def node_layer(reader: NodeReader, node: Any, sizes: tuple[int | None, ...]
               ) -> tuple[O.Op, list[AxisParams]] | None:
    """A NodeDef as (normalized foveal op, its (k, s, p, total) per graph axis), or None for an
    op without them."""
    op: O.Op = O.elementwise() if node.op in REFERENCE_PASS_THROUGH else reader.op_for(node)
    if isinstance(op, O.Unknown):
        return None
    op = O.normalize(op, len(sizes), node.name)
    params = axis_params(op, sizes)
    return None if params is None else (op, params)


def get_layer_params(node: Any, name_to_node: dict[str, Any], input_resolution: Any = None,
                     force: bool = False) -> tuple[int | None, ...]:
    """(kx, ky, sx, sy, px, py, total_x, total_y) of a 2-D layer; `input_resolution` is [H, W]
    of its input. An op without a kernel/stride/padding reading raises the reference's
    ValueError, or gives eight Nones with force=True."""
    channels_first = attr_text(node, "data_format", "NHWC").startswith("NC")
    reader = NodeReader(name_to_node, [], channels_first, 4)
    sizes = tuple(input_resolution) if input_resolution is not None else (None, None)
    layer = node_layer(reader, node, sizes)
    if layer is None:
        if force:
            return (None,) * 8
        raise ValueError(f"Unknown layer for operation '{node.name}': {node.op}")
    (ky, sy, py, ty), (kx, sx, px, tx) = layer[1]
    return kx, ky, sx, sy, px, py, tx, ty
