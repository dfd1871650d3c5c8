"""The gradient of a layer's centre feature with respect to the input, accumulated over inputs in
one of two protocols.

With F the layer's output (N, C, *S), c = S // 2 its centre and x the input (N, C_in, *spatial):

- **luo** (Luo et al. 2016): z = sum_{b,k} F[b, k, c]; the map is the mean over samples of
  sum_{channels} |dz/dx|, with fresh random weights for every batch unless told otherwise.
- **replknet** (RepLKNet 2022, the protocol later papers reuse): z = sum_{b,k} ReLU(F[b, k, c]);
  the contribution map M = the mean over samples of sum_{channels} ReLU(dz/dx). RepLKNet's
  script averages too (it saves the running mean), which matters: log10(M + 1) is not scale-free,
  so a sum would make the normalised map depend on the number of images.

In eval mode no sample sees another, so a batch gives the sum of its samples' gradients. A batch
whose gradient is not finite (NaN or inf) is left out and counted, as RepLKNet's script does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import FovealError, ShapeError
from .probe import KerasProbe, TorchProbe

Progress = Callable[[int, "int | None"], None]
"""progress(samples done, samples in all or None when unknown), called after every batch."""


@dataclass(frozen=True)
class Measurement:
    """The accumulated map and what it was accumulated over."""

    values: np.ndarray
    """luo: mean |gradient|; replknet: the mean contribution M. Axes: the input's spatial axes."""
    samples: int
    """Samples in the map (those of skipped batches not counted)."""
    weight_draws: int
    input_shape: tuple[int, ...]
    """(C, *spatial), channels-first."""
    feature_shape: tuple[int, ...]
    """The layer's spatial sizes."""
    skipped: int = 0
    """Samples left out because their batch's gradient was not finite."""


def centre_objective(features: torch.Tensor, protocol: str) -> torch.Tensor:
    """The scalar whose input gradient is the ERF: the centre features summed (ReLU'd for replknet)."""
    index: tuple[slice | int, ...] = (slice(None), slice(None), *(n // 2 for n in features.shape[2:]))
    centre = features[index]
    return centre.sum() if protocol == "luo" else torch.relu(centre).sum()


def batch_map(probe: TorchProbe | KerasProbe, x: torch.Tensor, protocol: str,
              ) -> tuple[np.ndarray, tuple[int, ...]]:
    """The batch's map summed over its samples (float64, spatial axes) and the layer's spatial size."""
    x = x.to(device=probe.device, dtype=probe.dtype).requires_grad_(True)
    with torch.enable_grad():
        features = probe.features(x)
        objective = centre_objective(features, protocol)
        gradient = None
        if objective.requires_grad:
            (gradient,) = torch.autograd.grad(objective, x, allow_unused=True)
    if gradient is None:
        raise FovealError(f"layer {probe.layer!r} does not depend on the input through autograd (its "
                          f"output is constant, detached or computed under no_grad)")
    per_pixel = gradient.abs() if protocol == "luo" else torch.relu(gradient)
    summed = per_pixel.sum(dim=(0, 1)).detach().to("cpu", torch.float64).numpy()
    return summed, tuple(features.shape[2:])


def measure(probe: TorchProbe | KerasProbe, batches: Iterable[torch.Tensor], protocol: str, *,
            redraw: bool, total: int | None = None, progress: Progress | None = None) -> Measurement:
    """Accumulate batch maps; with redraw, the weights are drawn afresh before every batch (one
    weight draw per batch, so the expectation runs over draws and inputs together)."""
    accumulated: np.ndarray | None = None
    seen = False
    input_shape: tuple[int, ...] = ()
    feature_shape: tuple[int, ...] = ()
    samples = draws = skipped = 0
    if progress is not None:
        progress(0, total)
    for batch in batches:
        if not seen:
            seen, input_shape = True, tuple(batch.shape[1:])
        elif tuple(batch.shape[1:]) != input_shape:
            raise ShapeError(f"every input must have one shape (C, *spatial) {input_shape}; got "
                             f"{tuple(batch.shape[1:])}")
        if redraw:
            probe.redraw(draws)
            draws += 1
        values, feature_shape = batch_map(probe, batch, protocol)
        if np.isfinite(values).all():
            accumulated = values if accumulated is None else accumulated + values
            samples += len(batch)
        else:
            skipped += len(batch)
        if progress is not None:
            progress(samples + skipped, total)
    if accumulated is None:
        raise FovealError("no input to measure the ERF on" if not skipped else
                          f"the gradient was not finite (NaN or inf) for all {skipped} inputs")
    return Measurement(accumulated / samples, samples, draws, input_shape, feature_shape, skipped)
