"""Numbers read off an ERF map: normalisation, high-contribution area ratios, a Gaussian fit and
the effective region. numpy only; maps are arrays whose axes are the input's spatial axes.
"""

from __future__ import annotations

import math

import numpy as np

from . import THRESHOLDS
from .result import AreaRatio, Box, Gaussian


def log_normalise(contribution: np.ndarray) -> np.ndarray:
    """RepLKNet's post-processing: log10(M + 1) / max(log10(M + 1)); all zero stays all zero.

    The log compresses the few central pixels that hold most of the gradient so the tails show.
    """
    logged = np.log10(np.asarray(contribution, dtype=np.float64) + 1.0)
    return _over_peak(logged)


def peak_normalise(values: np.ndarray) -> np.ndarray:
    """values / max(values), so the peak is 1; all zero stays all zero."""
    return _over_peak(np.asarray(values, dtype=np.float64))


def _over_peak(values: np.ndarray) -> np.ndarray:
    peak = float(values.max()) if values.size else 0.0
    return values / peak if peak > 0 else np.zeros_like(values)


def centre_of(shape: tuple[int, ...]) -> tuple[int, ...]:
    """size // 2 per axis: the centre pixel (the right one of the two middles for an even size)."""
    return tuple(n // 2 for n in shape)


def centred_box(shape: tuple[int, ...], centre: tuple[int, ...], half: int) -> Box:
    """[c - half, c + half] per axis, clipped to the map."""
    return tuple((max(c - half, 0), min(c + half, n - 1)) for n, c in zip(shape, centre))


def _box_sum(values: np.ndarray, box: Box) -> float:
    return float(values[tuple(slice(lo, hi + 1) for lo, hi in box)].sum())


def area_ratios(normalised: np.ndarray, thresholds: tuple[float, ...] = THRESHOLDS,
                centre: tuple[int, ...] | None = None) -> tuple[AreaRatio, ...]:
    """High-contribution area ratio at each threshold t: the smallest odd side 2i + 1 (i >= 0) of
    the box centred at `centre` (default: size // 2 per axis), clipped to the map, whose sum
    exceeds t * sum(map); reported as the clipped box's side (its longest extent, never more than
    the map's: a 129 square about pixel 64 of a 128 map is the whole 128 map) and its clipped
    area / map area.

    The map must be non-negative, so the box sum grows with i and a bisection finds i. The box
    that covers the whole map holds everything, so every t < 1 has an answer.
    """
    values = np.asarray(normalised, dtype=np.float64)
    if values.ndim == 0 or values.min(initial=0.0) < 0:
        raise ValueError("area ratios need a non-negative map with at least one axis")
    shape = values.shape
    centre = centre_of(shape) if centre is None else centre
    total = float(values.sum())
    widest = max(max(c, n - 1 - c) for n, c in zip(shape, centre))
    out = []
    for t in thresholds:
        if not 0 < t < 1:
            raise ValueError(f"area-ratio thresholds lie in (0, 1), got {t}")
        if total <= 0:
            out.append(AreaRatio(t, None, None))
            continue
        lo, hi = 0, widest  # hi always holds more than t of the total
        while lo < hi:
            mid = (lo + hi) // 2
            if _box_sum(values, centred_box(shape, centre, mid)) > t * total:
                hi = mid
            else:
                lo = mid + 1
        box = centred_box(shape, centre, lo)
        extents = [b - a + 1 for a, b in box]
        out.append(AreaRatio(t, max(extents), math.prod(extents) / values.size))
    return tuple(out)


def gaussian_fit(values: np.ndarray) -> Gaussian | None:
    """Mean and sigma of each axis' marginal, the map taken as a density over pixel coordinates.

    These are the maximum-likelihood Gaussian parameters for samples weighted by the map:
    mean_a = sum_i i p_a(i), sigma_a^2 = sum_i (i - mean_a)^2 p_a(i), p_a the normalised marginal.
    For a linear stack of n uniform k-tap layers they are exactly n(k-1)/2 past the region's
    start and sqrt(n(k^2-1)/12) (Luo et al.). None for an all-zero map.
    """
    values = np.asarray(values, dtype=np.float64)
    total = float(values.sum())
    if total <= 0:
        return None
    means, sigmas = [], []
    for axis in range(values.ndim):
        others = tuple(a for a in range(values.ndim) if a != axis)
        marginal = values.sum(axis=others) / total
        position = np.arange(values.shape[axis], dtype=np.float64)
        mean = float((position * marginal).sum())
        means.append(mean)
        sigmas.append(math.sqrt(max(float(((position - mean) ** 2 * marginal).sum()), 0.0)))
    return Gaussian(tuple(means), tuple(sigmas))


def nonzero_box(values: np.ndarray) -> Box | None:
    """The bounding box of the map's non-zero entries: where the centre feature reacted at all."""
    found = np.argwhere(np.asarray(values) != 0)
    if not len(found):
        return None
    return tuple((int(lo), int(hi)) for lo, hi in zip(found.min(axis=0), found.max(axis=0)))
