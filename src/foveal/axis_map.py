"""Exact feature-index -> input-interval maps on one axis, as quasi-periodic tables.

A `Piece` maps output index o = q*period + t to the input interval table[t] shifted by q*shift
(None: the feature reads no input at all, as after a transposed convolution with kernel < stride).
Without upsampling the period is 1 and table[0] = (-P, -P + r - 1): the classic size r, stride
S = shift and padding P. The stride is the rational shift/period, so everything stays exact.

`offset` is a symbolic part added to every interval: a sorted tuple of (symbol, coefficient) for
paddings that depend on an unknown input size (TF SAME). Sizes and strides never depend on it.
"""

from __future__ import annotations

from fractions import Fraction
from math import gcd, lcm

from .limits import MAX_PERIOD, MAX_TAP_WORK, check, spend
from .taps import LatticeTaps

Interval = tuple[int, int]
Offset = tuple[tuple[int, int], ...]


class Piece:
    __slots__ = ("period", "shift", "table", "offset")

    def __init__(self, period: int, shift: int, table: tuple[Interval | None, ...],
                 offset: Offset = ()) -> None:
        self.period = period
        self.shift = shift
        self.table = table
        self.offset = offset

    def __repr__(self) -> str:
        return f"Piece(period={self.period}, shift={self.shift}, table={self.table}, offset={self.offset})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Piece) and self.period == other.period
                and self.shift == other.shift and self.table == other.table
                and self.offset == other.offset)

    __hash__ = None  # type: ignore[assignment]

    @property
    def stride(self) -> Fraction:
        return Fraction(self.shift, self.period)

    def at(self, o: int) -> Interval | None:
        q, t = divmod(o, self.period)
        entry = self.table[t]
        if entry is None:
            return None
        d = q * self.shift
        return (entry[0] + d, entry[1] + d)

    def sizes(self) -> tuple[int, ...]:
        """Region size per phase (0 for phases that read nothing)."""
        return tuple(0 if e is None else e[1] - e[0] + 1 for e in self.table)

    def with_offset(self, offset: Offset) -> Piece:
        return Piece(self.period, self.shift, self.table, offset)

    def shifted(self, c: int) -> Piece:
        table = tuple(None if e is None else (e[0] + c, e[1] + c) for e in self.table)
        return Piece(self.period, self.shift, table, self.offset)


def add_offsets(a: Offset, b: Offset) -> Offset:
    if not b:
        return a
    if not a:
        return b
    merged: dict[int, int] = dict(a)
    for sym, coef in b:
        merged[sym] = merged.get(sym, 0) + coef
    return tuple(sorted((s, c) for s, c in merged.items() if c))


def compose(piece: Piece, taps: LatticeTaps, delta: int = 0) -> Piece:
    """The map of an op's output: hull over its taps of the input map `piece`.

    Output o reads taps at the input's index level; the region is the hull of their regions.
    The new period is the op's period times the number of op periods after which the taps'
    phase in `piece` repeats; the new shift follows.
    """
    p_period, p_shift, p_table = piece.period, piece.shift, piece.table
    t_period, t_shift, t_table = taps.period, taps.shift, taps.table
    if p_period == 1 and p_table[0] is not None:  # the common case: one affine map
        lo0, hi0 = p_table[0]
        s = p_shift
        out: list[Interval | None] = []
        for entry in t_table:
            if entry is None:
                out.append(None)
                continue
            first = entry[0] + delta
            out.append((s * first + lo0, s * (first + entry[1] * (entry[2] - 1)) + hi0))
        if t_period == 1:
            return Piece(1, t_shift * s, (out[0],), piece.offset)
        return _reduced(t_period, t_shift * s, out, piece.offset)
    repeat = p_period // gcd(t_shift, p_period)
    period = check(t_period * repeat, MAX_PERIOD, "the period of the feature-to-input map here "
                   "(each upsampling multiplies it)")
    shift = (repeat * t_shift // p_period) * p_shift
    # The hull over taps i = first + m*step: piece.at(i + p_period) = piece.at(i) + p_shift with
    # p_shift >= 0, so each phase of `piece` reaches its lowest start at its first visit and its
    # highest end at its last. Phases recur every p_period / gcd(step, p_period) taps, so the first
    # and the last `cycle` taps decide the hull, however large the kernel.
    work = 0
    visits: list[range | tuple[range, range] | None] = []
    for entry in t_table:
        if entry is None:
            visits.append(None)
            continue
        first, step, count = entry
        cycle = p_period // gcd(step, p_period)
        if count <= 2 * cycle:
            visits.append(range(count))
            work += count
        else:
            visits.append((range(cycle), range(count - cycle, count)))
            work += 2 * cycle
    check(work * repeat, MAX_TAP_WORK, "the steps needed to compose this map")
    spend(work * repeat + period, "composing the maps after upsampling")
    table: list[Interval | None] = []
    for t in range(period):
        q, phase = divmod(t, t_period)
        entry = t_table[phase]
        visit = visits[phase]
        if entry is None or visit is None:
            table.append(None)
            continue
        first, step, _ = entry
        first += q * t_shift + delta
        lo = hi = None
        for m in (visit if isinstance(visit, range) else (*visit[0], *visit[1])):
            qq, tt = divmod(first + m * step, p_period)
            e = p_table[tt]
            if e is None:
                continue
            base = qq * p_shift
            if lo is None or e[0] + base < lo:
                lo = e[0] + base
            if hi is None or e[1] + base > hi:
                hi = e[1] + base
        table.append(None if lo is None else (lo, hi))  # type: ignore[arg-type]
    return _reduced(period, shift, table, piece.offset)


def _reduced(period: int, shift: int, table: list[Interval | None], offset: Offset) -> Piece:
    """Shrink the period to the smallest one the table really has."""
    if period > 1:
        for p in range(1, period):
            if period % p or (shift * p) % period:
                continue
            d = shift * p // period
            if all(_shift_eq(table[t], table[t + p], d) for t in range(period - p)):
                return Piece(p, d, tuple(table[:p]), offset)
    return Piece(period, shift, tuple(table), offset)


def _shift_eq(a: Interval | None, b: Interval | None, d: int) -> bool:
    if a is None or b is None:
        return a is b
    return a[0] + d == b[0] and a[1] + d == b[1]


def expand(piece: Piece, period: int) -> tuple[Interval | None, ...]:
    """The table of `piece` written out over `period` (a multiple of its own period)."""
    reps = period // piece.period
    out: list[Interval | None] = []
    for q in range(reps):
        d = q * piece.shift
        out.extend(None if e is None else (e[0] + d, e[1] + d) for e in piece.table)
    return tuple(out)


def same_stride(a: Piece, b: Piece) -> bool:
    return a.shift * b.period == b.shift * a.period


def hull(a: Piece, b: Piece, offset: Offset | None = None) -> Piece:
    """Union (interval hull per feature) of two maps with the same stride, offsets ignored."""
    if a.period == b.period and a.shift == b.shift:
        period, shift, ta, tb = a.period, a.shift, a.table, b.table
    else:
        period = check(lcm(a.period, b.period), MAX_PERIOD, "the joint period of two paths")
        spend(period, "joining two paths")
        shift = a.shift * (period // a.period)
        ta, tb = expand(a, period), expand(b, period)
    table: list[Interval | None] = []
    for ea, eb in zip(ta, tb):
        if ea is None or eb is None:
            table.append(ea if eb is None else eb)
        else:
            table.append((min(ea[0], eb[0]), max(ea[1], eb[1])))
    return _reduced(period, shift, table, a.offset if offset is None else offset)


def shift_between(a: Piece, b: Piece) -> int | None:
    """c with b == a shifted by c (same period, shift and empty phases), else None."""
    if a.period != b.period or a.shift != b.shift:
        return None
    c = None
    for ea, eb in zip(a.table, b.table):
        if ea is None or eb is None:
            if ea is not eb:
                return None
            continue
        if eb[1] - eb[0] != ea[1] - ea[0]:
            return None
        if c is None:
            c = eb[0] - ea[0]
        elif eb[0] - ea[0] != c:
            return None
    return 0 if c is None else c

