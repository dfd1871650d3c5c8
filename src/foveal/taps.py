"""Which input positions one output position reads, per op and axis.

Two views of the same rule:
- `lattice_taps`: on an unbounded axis (no border), as a periodic table. Output o = q*T + t
  reads the arithmetic progression first + q*D, step, count of table[t]. This is what the
  unclipped receptive field (the reference library's semantics) composes.
- `concrete_taps`: on an axis of known length, with border rules (zero padding reads nothing,
  reflect/replicate/circular read real pixels, interpolation clamps). This gives the exact
  region clipped to the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil, floor, gcd

from . import ops as O
from .limits import MAX_PERIOD, check, spend
from .shapes import before_candidates, crop_range, effective_kernel, padding_pair, resize_ratio

Tap = tuple[int, int, int]  # (first, step, count)


@dataclass(frozen=True)
class LatticeTaps:
    period: int
    shift: int
    table: tuple[Tap | None, ...]
    alternatives: tuple[int, ...] = ()
    """Other possible index offsets (added to every `first`) when the padding depends on an
    unknown input size; empty when the taps are known."""


IDENTITY = LatticeTaps(1, 1, ((0, 1, 1),))
BROADCAST = LatticeTaps(1, 0, ((0, 1, 1),))


class GlobalTaps:
    """Every output reads the whole axis."""


GLOBAL = GlobalTaps()


class NeedsSize(Exception):
    """The taps depend on a size that is not known (adaptive pooling, resize to a size)."""


def _progression(indices: list[int]) -> Tap | None:
    if not indices:
        return None
    indices = sorted(set(indices))
    step = indices[1] - indices[0] if len(indices) > 1 else 1
    if any(b - a != step for a, b in zip(indices, indices[1:])):
        raise AssertionError(f"taps {indices} are not an arithmetic progression")
    return (indices[0], step, len(indices))


def transposed_sources(c: int, k: int, s: int, d: int) -> Tap | None:
    """Inputs i = (c - j*d) / s over the taps j < k for which the division is exact, as one
    progression (O(1), however large k and s are): j*d = c (mod s) has the solutions
    j = j0 + m*(s/g), g = gcd(d, s), when g divides c; i then steps by d/g."""
    g = gcd(d, s)
    if c % g:
        return None
    period = s // g
    j0 = (c // g) * pow(d // g, -1, period) % period if period > 1 else 0
    if j0 >= k:
        return None
    last = j0 + (k - 1 - j0) // period * period
    count = (last - j0) // period + 1
    return ((c - last * d) // s, d // g if count > 1 else 1, count)


def within(tap: Tap | None, n: int) -> range:
    """The positions of a progression that lie in [0, n), as a range (no loop over the taps)."""
    if tap is None:
        return range(0)
    first, step, count = tap
    skip = -(first // step) if first < 0 else 0
    last = min(count - 1, (n - 1 - first) // step)
    return range(first + skip * step, first + last * step + 1, step) if skip <= last else range(0)


def resize_source(op: O.Resize, ratio: Fraction, o: int, axis: int) -> list[int]:
    """Source indices with non-zero weight for output o, on an unbounded axis."""
    half = Fraction(1, 2) if op.coordinate == "half_pixel" else Fraction(0)
    x = (o + half) * ratio - half + op.offset[axis]
    if op.method == "nearest":
        rounding = op.rounding
        if rounding == "floor":
            return [floor(x)]
        if rounding == "ceil":
            return [ceil(x)]
        if rounding == "round_prefer_floor":
            return [ceil(x - Fraction(1, 2))]
        return [floor(x + Fraction(1, 2))]
    base = floor(x)
    if x == base:
        return [base]
    if op.method == "linear":
        return [base, base + 1]
    return [base - 1, base, base + 1, base + 2]


def lattice_taps(op: O.Op, axis: int, n_in: int | None, n_out: int | None) -> LatticeTaps | GlobalTaps:
    """Periodic tap table of `op` on `axis`; raises NeedsSize when sizes are required."""
    if isinstance(op, O.Window):
        k, s, d = op.kernel[axis], op.stride[axis], op.dilation[axis]
        befores = before_candidates(op.padding[axis], effective_kernel(k, d), s, n_in)
        alternatives = tuple(befores[0] - b for b in befores[1:])
        return LatticeTaps(1, s, ((-befores[0], d, k),), alternatives)
    if isinstance(op, O.TransposedWindow):
        k, s, d = op.kernel[axis], op.stride[axis], op.dilation[axis]
        before = op.padding[axis][0]
        check(s, MAX_PERIOD, "the stride of a transposed window (the period of its output map)")
        spend(s, "the taps of a transposed window")
        return LatticeTaps(s, 1, tuple(transposed_sources(t + before, k, s, d) for t in range(s)))
    if isinstance(op, O.Pad):
        return LatticeTaps(1, 1, ((-op.before[axis], 1, 1),))
    if isinstance(op, O.Crop):
        start, step = op.start[axis], op.step[axis]
        if n_in is not None:
            start = crop_range(n_in, start, op.stop[axis], step).start
        elif start < 0:
            raise NeedsSize("a crop that starts from the end needs the input size")
        return LatticeTaps(1, step, ((start, 1, 1),))
    if isinstance(op, O.Resize):
        ratio = resize_ratio(op, axis, n_in, n_out)
        if ratio is None:
            raise NeedsSize("a resize to a fixed size (or with align_corners) needs the input size")
        period, shift = ratio.denominator, ratio.numerator
        check(period, MAX_PERIOD, f"the period of a resize by {1 / ratio if ratio else 0} (its output map "
              f"repeats every {period:,} positions)")
        spend(period, "the taps of a resize")
        table = tuple(_progression(resize_source(op, ratio, t, axis)) for t in range(period))
        return LatticeTaps(period, shift, table)
    if isinstance(op, O.PixelShuffle):
        r = check(op.factor[axis], MAX_PERIOD, "the factor of a pixel shuffle (the period of its map)")
        return LatticeTaps(r, 1, ((0, 1, 1),) * r)
    if isinstance(op, O.PixelUnshuffle):
        r = op.factor[axis]
        return LatticeTaps(1, r, ((0, 1, r),))
    if isinstance(op, O.AdaptivePool):
        m = op.size[axis]
        if m is None:
            return IDENTITY
        if m == 1:
            return GLOBAL
        if n_in is None:
            raise NeedsSize(f"adaptive pooling to {m} needs the input size")
        g = gcd(n_in, m)
        check(m // g, MAX_PERIOD, f"the period of an adaptive pooling from {n_in:,} to {m:,}")
        windows = []
        for t in range(m // g):
            lo = t * n_in // m
            hi = -(-(t + 1) * n_in // m) - 1
            windows.append((lo, 1, hi - lo + 1))
        return LatticeTaps(m // g, n_in // g, tuple(windows))
    if isinstance(op, O.Global):
        return GLOBAL if op.axes[axis] else IDENTITY
    return IDENTITY


def concrete_taps(op: O.Op, axis: int, o: int, n_in: int, n_out: int) -> list[int] | range:
    """Input positions in [0, n_in) that output o reads, with the op's border rules."""
    if isinstance(op, O.Window):
        k, s, d = op.kernel[axis], op.stride[axis], op.dilation[axis]
        before = padding_pair(op.padding[axis], effective_kernel(k, d), s, n_in)[0]
        return within((s * o - before, d, k), n_in)
    if isinstance(op, O.TransposedWindow):
        k, s, d = op.kernel[axis], op.stride[axis], op.dilation[axis]
        return within(transposed_sources(o + op.padding[axis][0], k, s, d), n_in)
    if isinstance(op, O.Pad):
        return _pad_source(o - op.before[axis], n_in, op.mode)
    if isinstance(op, O.Crop):
        r = crop_range(n_in, op.start[axis], op.stop[axis], op.step[axis])
        return [r[o]]
    if isinstance(op, O.Resize):
        ratio = resize_ratio(op, axis, n_in, n_out)
        assert ratio is not None
        return sorted({min(max(i, 0), n_in - 1) for i in resize_source(op, ratio, o, axis)})
    if isinstance(op, O.PixelShuffle):
        return [o // op.factor[axis]]
    if isinstance(op, O.PixelUnshuffle):
        r = op.factor[axis]
        return range(r * o, r * o + r)
    if isinstance(op, O.AdaptivePool):
        m = op.size[axis]
        if m is None:
            return [o]
        return range(o * n_in // m, -(-(o + 1) * n_in // m))
    if isinstance(op, O.Global) and op.axes[axis]:
        return range(n_in)
    if n_in == 1 and n_out > 1:  # broadcasting merge input
        return [0]
    return [o]


def _pad_source(i: int, n: int, mode: str) -> list[int]:
    if 0 <= i < n:
        return [i]
    if mode == "constant":
        return []
    if mode == "replicate":
        return [min(max(i, 0), n - 1)]
    if mode == "circular":
        return [i % n]
    period = 2 * (n - 1) if n > 1 else 1  # reflect without repeating the edge
    j = i % period
    return [j if j < n else period - j]
