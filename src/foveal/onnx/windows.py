"""ONNX's sliding windows: Conv, the pools and ConvTranspose, and the global pools.

A window op runs over the tensor's dims 2, 3, ...; foveal follows it when those dims hold the
image's axes, each alone (`Context.window_dims`). A dim of the op that holds no axis (a 2-D
conv run on a 1-D signal with a length-1 axis) must be trivial there: one tap, stride 1, no pad.
"""

from __future__ import annotations

from typing import Any

from .. import ops as O
from ..limits import MAX_AXIS_LENGTH
from .context import Chain, Context

WINDOW_KINDS = {"Conv": "conv", "ConvInteger": "conv", "QLinearConv": "conv", "MaxPool": "max_pool",
                "AveragePool": "avg_pool", "LpPool": "lp_pool"}
WEIGHT_INPUT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "ConvTranspose": 1}
"""Which input holds the weight, whose spatial dims are the kernel when kernel_shape is absent."""
AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "")
GLOBAL_POOLS = ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")


def kernel_of(c: Context, node: Any) -> list[int] | None:
    """kernel_shape, or the weight's spatial dims; None when neither is known."""
    f = c.f
    kernel = f.integers("kernel_shape", None, minimum=1)
    if kernel is None and node.op_type in WEIGHT_INPUT:
        f.require_inputs(WEIGHT_INPUT[node.op_type] + 1)
        dims = c.dims(c.f.input(WEIGHT_INPUT[node.op_type]))
        if dims is None or len(dims) < 3 or not all(isinstance(d, int) for d in dims):
            return None
        kernel = f.lengths([d for d in dims[2:] if isinstance(d, int)], "the weight's spatial dims")
        if 0 in kernel:
            raise f.fail("the weight's shape", f"{list(dims)} has a spatial length of 0")
    return kernel


def taps_of(c: Context, node: Any) -> tuple[Any, list[int], list[int], list[int]] | O.Unknown:
    """`Context.window_dims`, then the kernel, strides and dilations, one per spatial dim of the
    op; an unknown op when the kernel is not known."""
    m = c.rank - 2
    index = c.window_dims()
    kernel = kernel_of(c, node)
    if kernel is None or len(kernel) != m:
        return O.unknown(f"{node.op_type} (kernel shape unknown, or not one entry per spatial dim of "
                         f"its rank-{m + 2} input)")
    return (index, kernel, c.f.integers("strides", [1] * m, length=m, minimum=1),
            c.f.integers("dilations", [1] * m, length=m, minimum=1))


def window(c: Context, node: Any) -> O.Op:
    """Conv and the pools: a foveal Window over the dims that hold the image's axes."""
    f, m = c.f, c.rank - 2
    taps = taps_of(c, node)
    if isinstance(taps, O.Unknown):
        return taps
    index, kernel, strides, dilations = taps
    pads = f.integers("pads", [0] * 2 * m, length=2 * m, minimum=0)
    auto_pad = f.string("auto_pad", "NOTSET", choices=AUTO_PADS)
    ceil_mode = f.integer("ceil_mode", 0, choices=(0, 1))
    if index is None or not trivial(index, m, kernel, strides, dilations, pads):
        return O.unknown(f"{node.op_type} (over dimensions that are not the input's spatial axes)")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        padding: Any = auto_pad.lower()
    elif auto_pad == "VALID":
        padding = 0
    else:
        padding = tuple((pads[j], pads[j + m]) for j in index)
    ceil = bool(ceil_mode) and auto_pad in ("NOTSET", "")
    pick = lambda values: tuple(values[j] for j in index)  # noqa: E731
    return O.Window(pick(kernel), pick(strides), pick(dilations), padding, ceil,
                    WINDOW_KINDS[node.op_type])


def trivial(index: list[int], m: int, *per_dim: list[int]) -> bool:
    """Spatial dims of the op that hold no graph axis (a 2-D conv on a 1-D signal with an axis
    of size 1) must have a 1-tap window, stride 1 and no padding there."""
    kernel, strides, dilations, pads = per_dim
    for j in set(range(m)) - set(index):
        if kernel[j] != 1 or strides[j] != 1 or pads[j] or pads[j + m]:
            return False
    return True


def transposed(c: Context, node: Any) -> O.Op:
    """ConvTranspose: pads, or pads derived from output_shape or auto_pad per the spec
    (output_shape wins over pads; the odd pixel goes after for SAME_UPPER)."""
    f, m = c.f, c.rank - 2
    taps = taps_of(c, node)
    if isinstance(taps, O.Unknown):
        return taps
    index, kernel, strides, dilations = taps
    out_pad = f.integers("output_padding", [0] * m, length=m, minimum=0)
    auto_pad = f.string("auto_pad", "NOTSET", choices=AUTO_PADS)
    pads = f.integers("pads", [0] * 2 * m, length=2 * m, minimum=0)
    shape = f.integers("output_shape", None, minimum=1, limit=MAX_AXIS_LENGTH)
    if shape is not None and len(shape) not in (m, m + 2):
        raise f.fail("attribute 'output_shape'", f"has {len(shape)} entries; {m} (or {m + 2}) expected")
    if index is None or not trivial(index, m, kernel, strides, dilations, pads) or any(
            out_pad[j] for j in set(range(m)) - set(index)):
        return O.unknown("ConvTranspose (over dimensions that are not the input's spatial axes)")
    sizes = c.int_dims(c.x)
    if shape is not None and sizes is None:
        return O.unknown(f"ConvTranspose (output_shape at an unknown input size: {c.no_size()})")
    padding, extra = [], []
    for j in index:
        k_eff = dilations[j] * (kernel[j] - 1) + 1
        if shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            # the spec's total padding; with SAME and no output_shape it is the same at any size
            n, target = (sizes[j + 2], shape[-m:][j]) if shape and sizes else (1, strides[j])
            total = strides[j] * (n - 1) + out_pad[j] + k_eff - target
            if total < 0:
                return O.unknown("ConvTranspose (output_shape larger than the transposed "
                                 "convolution's output)")
            small, large = total // 2, total - total // 2
            padding.append((small, large) if auto_pad == "SAME_UPPER" else (large, small))
        elif auto_pad == "VALID":
            padding.append((0, 0))
        else:
            padding.append((pads[j], pads[j + m]))
        extra.append(out_pad[j])
        if out_pad[j] >= max(strides[j], dilations[j]):
            return O.unknown("ConvTranspose (output_padding as large as the stride: outputs that "
                             "read nothing)")
    pick = lambda values: tuple(values[j] for j in index)  # noqa: E731
    return O.TransposedWindow(pick(kernel), pick(strides), pick(dilations), tuple(padding), tuple(extra))


def global_pool(c: Context, node: Any) -> tuple[Chain, None]:
    """A reduction over dims 2, 3, ... (`foveal.mixing`), which keeps them as length-1 dims."""
    kind = node.op_type[len("Global"):].lower().replace("pool", "_pool")
    return c.mixed(list(range(2, c.rank)), kind, False, c.layout), None

