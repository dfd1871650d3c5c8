"""Per-axis output sizes and the padding rules that depend on the input size.

All functions work on one axis. `n` is the input length or None when unknown.
"""

from __future__ import annotations

from fractions import Fraction
from math import floor

from . import ops as O
from .limits import MAX_SAME_CANDIDATES, check


def effective_kernel(kernel: int, dilation: int) -> int:
    """Span of a dilated kernel: d*(k-1) + 1."""
    return dilation * (kernel - 1) + 1


def same_padding(k_eff: int, stride: int, n: int, upper: bool) -> tuple[int, int]:
    """TF/ONNX SAME: out = ceil(n/s), total = max((out-1)*s + k_eff - n, 0); the odd pixel
    goes after (SAME_UPPER) or before (SAME_LOWER)."""
    total = max((-(-n // stride) - 1) * stride + k_eff - n, 0)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


def same_padding_candidates(k_eff: int, stride: int, upper: bool) -> tuple[int, ...]:
    """Every left padding SAME can produce over all input sizes (n mod s takes every value).

    One value means the padding does not depend on the input size: k_eff == 1, stride 1, or
    stride 2 with an even kernel, as the reference library found; several mean it does.
    """
    # total = max(k_eff - 1 - (n - 1) mod s, 0), and (n - 1) mod s takes every value below s, so
    # the totals are every integer from max(k_eff - s, 0) to k_eff - 1, and the left paddings a
    # range too (total // 2, or its ceiling for SAME_LOWER)
    def before(total: int) -> int:
        return total // 2 if upper else total - total // 2

    low, high = before(max(k_eff - stride, 0)), before(k_eff - 1)
    check(high - low + 1, MAX_SAME_CANDIDATES, f"the number of left paddings SAME can give a window of "
          f"span {k_eff:,} and stride {stride:,} at unknown input sizes (give the input size)")
    return tuple(range(low, high + 1))


def padding_pair(spec: object, k_eff: int, stride: int, n: int) -> tuple[int, int]:
    """(before, after) of a padding spec for a known input length n."""
    if isinstance(spec, tuple):
        return spec  # type: ignore[return-value]
    if spec == "valid":
        return (0, 0)
    if spec == "causal":
        return (k_eff - 1, 0)
    if spec == "torch_same":
        return ((k_eff - 1) // 2, k_eff - 1 - (k_eff - 1) // 2)
    return same_padding(k_eff, stride, n, spec == "same_upper")


def before_candidates(spec: object, k_eff: int, stride: int, n: int | None) -> tuple[int, ...]:
    """The possible left paddings: one value when known, several when SAME meets an unknown n."""
    if spec in ("same_upper", "same_lower") and n is None:
        return same_padding_candidates(k_eff, stride, spec == "same_upper")
    return (padding_pair(spec, k_eff, stride, n if n is not None else 0)[0],)


def window_out(n: int, k_eff: int, stride: int, before: int, after: int, ceil_mode: bool) -> int:
    """PyTorch/ONNX output length; in ceil mode the last window must start inside the input or
    the left padding."""
    span = n + before + after - k_eff
    if not ceil_mode:
        return span // stride + 1 if span >= 0 else 0
    out = -(-span // stride) + 1  # may be 1 when the one window sticks out past the end
    if (out - 1) * stride >= n + before:
        out -= 1
    return max(out, 0)


def crop_range(n: int, start: int, stop: int | None, step: int) -> range:
    """Python slice semantics on range(n)."""
    return range(n)[slice(start, stop, step)]


def resize_ratio(op: O.Resize, axis: int, n: int | None, n_out: int | None) -> Fraction | None:
    """Input pixels per output pixel in source coordinates; None if sizes are needed but unknown."""
    if op.ratio[axis] is not None:
        return op.ratio[axis]
    if op.coordinate == "align_corners":
        if n is None or n_out is None:
            return None
        return Fraction(n - 1, n_out - 1) if n_out > 1 else Fraction(0)
    scale = op.scale[axis]
    if scale is not None:
        return 1 / scale
    if n is None or n_out is None:
        return None
    return Fraction(n, n_out)


def output_size(op: O.Op, axis: int, n: int) -> int:
    """Length of the op's output along `axis` for input length n (before any validity check)."""
    if isinstance(op, O.Window):
        k_eff = effective_kernel(op.kernel[axis], op.dilation[axis])
        before, after = padding_pair(op.padding[axis], k_eff, op.stride[axis], n)
        return window_out(n, k_eff, op.stride[axis], before, after, op.ceil_mode)
    if isinstance(op, O.TransposedWindow):
        k_eff = effective_kernel(op.kernel[axis], op.dilation[axis])
        before, after = op.padding[axis]
        return (n - 1) * op.stride[axis] - before - after + k_eff + op.output_padding[axis]
    if isinstance(op, O.Pad):
        return n + op.before[axis] + op.after[axis]
    if isinstance(op, O.Crop):
        return len(crop_range(n, op.start[axis], op.stop[axis], op.step[axis]))
    if isinstance(op, O.Resize):
        if op.size[axis] is not None:
            return op.size[axis]
        return floor(n * op.scale[axis])
    if isinstance(op, O.PixelShuffle):
        return n * op.factor[axis]
    if isinstance(op, O.PixelUnshuffle):
        return n // op.factor[axis] if n % op.factor[axis] == 0 else 0
    if isinstance(op, O.AdaptivePool):
        return n if op.size[axis] is None else op.size[axis]
    if isinstance(op, O.Global):
        return n if (op.keep_size or not op.axes[axis]) else 1
    return n

