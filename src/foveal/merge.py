"""Where paths meet: the union of their maps and whether they are aligned.

Maps whose offset holds unknown paddings (TF SAME without an input size) are compared over every
joint value of those unknowns: a union or an alignment verdict is exact when all values agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from math import lcm

from .axis_map import Offset, Piece, add_offsets, expand, hull, same_stride, shift_between
from .limits import MAX_PERIOD, check, spend

MAX_ASSIGNMENTS = 4096


class Symbols:
    """Unknown paddings: each symbol takes one of a few integer values."""

    def __init__(self) -> None:
        self.values: list[tuple[int, ...]] = []

    def new(self, values: Iterable[int]) -> int:
        self.values.append(tuple(values))
        return len(self.values) - 1

    def assignments(self, offsets: Sequence[Offset]) -> list[list[int]] | None:
        """Each row: the value of every offset in `offsets` under one joint assignment."""
        syms = sorted({s for off in offsets for s, _ in off})
        total = 1
        for s in syms:
            total *= len(self.values[s])
        if total > MAX_ASSIGNMENTS:
            return None
        rows = []
        for combo in itertools.product(*(self.values[s] for s in syms)):
            value = dict(zip(syms, combo))
            rows.append([sum(c * value[s] for s, c in off) for off in offsets])
        return rows


def _common(a: Offset, b: Offset) -> tuple[Offset, Offset, Offset]:
    shared = tuple(sorted(set(a) & set(b)))
    return shared, tuple(x for x in a if x not in shared), tuple(x for x in b if x not in shared)


def union(pieces: Sequence[Piece], symbols: Symbols) -> tuple[tuple[Piece, ...], bool]:
    """Hull of several maps, grouped by stride. Returns (pieces, is_bound)."""
    groups: list[Piece] = []
    bound = False
    for p in pieces:
        for i, g in enumerate(groups):
            if same_stride(g, p):
                if g.offset == p.offset:
                    groups[i] = hull(g, p)
                else:
                    groups[i], b = _symbolic_hull(g, p, symbols)
                    bound = bound or b
                break
        else:
            groups.append(p)
    spend(len(pieces) * len(groups), "joining paths of different strides")
    return tuple(groups), bound


def _symbolic_hull(a: Piece, b: Piece, symbols: Symbols) -> tuple[Piece, bool]:
    shared, ra, rb = _common(a.offset, b.offset)
    rows = symbols.assignments([ra, rb])
    if rows is None:
        return hull(a, b, shared), True
    unions = [hull(a.shifted(ca), b.shifted(cb), shared) for ca, cb in rows]
    shifts = [shift_between(unions[0], u) for u in unions]
    if all(s is not None for s in shifts):
        if all(s == 0 for s in shifts):
            return unions[0], False
        sym = symbols.new(shifts)  # type: ignore[arg-type]
        return unions[0].with_offset(add_offsets(shared, ((sym, 1),))), False
    result = unions[0]
    for u in unions[1:]:
        result = hull(result, u, shared)
    return result, True


def _aligned_pair(a: Piece, b: Piece) -> bool:
    if a.period == 1 and b.period == 1:
        ea, eb = a.table[0], b.table[0]
        if ea is None or eb is None:
            return a.shift == b.shift and ea is eb
        return a.shift == b.shift and ea[0] + ea[1] == eb[0] + eb[1]
    if not same_stride(a, b):
        return False
    if a.period == b.period:
        return _centres_of(a.table) == _centres_of(b.table)
    period = check(lcm(a.period, b.period), MAX_PERIOD, "the joint period of two paths")
    return _centres_of(expand(a, period)) == _centres_of(expand(b, period))


def _centres_of(table: tuple[tuple[int, int] | None, ...]) -> list[int | None]:
    return [None if e is None else e[0] + e[1] for e in table]


def aligned(a: Piece, b: Piece, symbols: Symbols) -> bool | None:
    """Same stride and same centre for every feature; None if that depends on the input size."""
    if a.offset == b.offset:
        return _aligned_pair(a, b)
    _, ra, rb = _common(a.offset, b.offset)
    rows = symbols.assignments([ra, rb])
    if rows is None:
        return None
    verdicts = {_aligned_pair(a.shifted(ca), b.shifted(cb)) for ca, cb in rows}
    return verdicts.pop() if len(verdicts) == 1 else None
