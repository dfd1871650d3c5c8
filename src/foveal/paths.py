"""Minimum and maximum receptive field over all input->node paths, without enumerating paths.

rfa_toolbox keeps the set of distinct (size, stride) pairs per node, which grows exponentially on
adversarial graphs. Here each path's map is split into a translation-free *shape* (its stride,
and after upsampling its per-phase layout) and its size r. Every op adds a constant to r that
depends only on the shape, so per shape only the smallest and largest r can ever matter: a dict
shape -> (r_min, r_max) per node and axis is exact and stays as small as the number of distinct
strides. A path's size is its largest per-phase region size; paths through a global op are inf.
"""

from __future__ import annotations

import math
from typing import cast

from .axis_map import Piece, compose
from .limits import spend
from .taps import IDENTITY, GlobalTaps, LatticeTaps

GLOBAL_SHAPE = "global"
PathStats = dict | tuple
"""shape -> (r_min, r_max); or, for the common single period-1 shape, the 3-tuple
(stride, r_min, r_max), a third of the memory on graphs of millions of nodes."""

SEED: PathStats = (1, 1, 1)


def entries(stats: PathStats):
    """(shape, (r_min, r_max)) pairs of either form."""
    if isinstance(stats, tuple):
        return ((stats[0], (stats[1], stats[2])),)
    return stats.items()


def compact(stats: dict) -> PathStats:
    """The 3-tuple form when there is one period-1 shape."""
    if len(stats) == 1:
        ((shape, (rmin, rmax)),) = stats.items()
        if type(shape) is int:
            return (shape, rmin, rmax)
    return stats


def _piece(shape: object, r: int) -> Piece:
    if isinstance(shape, int):
        return Piece(1, shape, ((0, r - 1),))
    period, shift, ref, lows, highs = cast(tuple, shape)
    table = tuple(None if lo is None else (lo, r - 1 + hi) for lo, hi in zip(lows, highs))
    return Piece(period, shift, table)


def _shape(piece: Piece) -> tuple[object, int] | None:
    """(shape, r) of a path map, or None if no feature reads any input."""
    table = piece.table
    ref = next((t for t, e in enumerate(table) if e is not None), None)
    if ref is None:
        return None
    lo0, hi0 = table[ref]  # type: ignore[misc]
    r = hi0 - lo0 + 1
    if piece.period == 1:
        return piece.shift, r
    lows = tuple(None if e is None else e[0] - lo0 for e in table)
    highs = tuple(None if e is None else e[1] - hi0 for e in table)
    return (piece.period, piece.shift, ref, lows, highs), r


def _extra(shape: object) -> int:
    """Largest phase size minus the reference phase's size."""
    if isinstance(shape, int) or shape == GLOBAL_SHAPE:
        return 0
    _, _, _, lows, highs = cast(tuple, shape)
    return max(h - lo for lo, h in zip(lows, highs) if lo is not None)


def _put(out: dict, shape: object, rmin: float, rmax: float) -> None:
    old = out.get(shape)
    out[shape] = (rmin, rmax) if old is None else (min(old[0], rmin), max(old[1], rmax))


def step(stats: PathStats, taps: LatticeTaps | GlobalTaps, out: dict | None = None) -> dict:
    """Apply one op to every path shape (and merge into `out`, for multi-input nodes)."""
    out = {} if out is None else out
    if type(stats) is dict:  # several shapes: counted, as a graph can make them many
        spend(4 * len(stats), "following the paths of different strides")
    if isinstance(taps, GlobalTaps):
        if stats:
            _put(out, GLOBAL_SHAPE, math.inf, math.inf)
        return out
    if taps is IDENTITY:  # merges, elementwise ops: every path shape passes unchanged
        for shape, (rmin, rmax) in entries(stats):
            _put(out, shape, rmin, rmax)
        return out
    single = taps.table[0] if taps.period == 1 else None
    for shape, (rmin, rmax) in entries(stats):
        if shape == GLOBAL_SHAPE:
            _put(out, shape, rmin, rmax)
            continue
        if single is not None and isinstance(shape, int):
            growth = shape * single[1] * (single[2] - 1)
            _put(out, shape * taps.shift, rmin + growth, rmax + growth)
            continue
        for delta in (0,) + taps.alternatives:
            found = _shape(compose(_piece(shape, rmin), taps, delta))
            if found is not None:
                new_shape, r = found
                _put(out, new_shape, r, rmax + (r - rmin))
    return out


def merged(inputs: list[PathStats]) -> PathStats:
    """The path ranges of a merge: every input's paths, unchanged."""
    first = inputs[0]
    if isinstance(first, tuple) and all(
            isinstance(s, tuple) and s[0] == first[0] for s in inputs):
        return (first[0], min(s[1] for s in inputs), max(s[2] for s in inputs))
    out: dict = {}
    for stats in inputs:
        step(stats, IDENTITY, out)
    return compact(out)


def size_range(stats: PathStats) -> tuple[float, float] | None:
    """(min, max) over paths of the path's largest region size; None if no path reads input."""
    if not stats:
        return None
    if type(stats) is tuple:  # one period-1 shape: no phase is larger than another
        return stats[1], stats[2]
    low = min(rmin + _extra(s) for s, (rmin, _) in entries(stats))
    high = max(rmax + _extra(s) for s, (_, rmax) in entries(stats))
    return low, high
