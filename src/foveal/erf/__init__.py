"""Effective receptive field: how much each input pixel moves a layer's centre feature, measured.

The analytic receptive field (foveal.receptive_field) says which pixels a feature *can* depend
on; the ERF measures how much it does, by the gradient of the centre feature with respect to
the input, averaged over inputs. Two protocols (docs/erf.md):

- 'luo' (Luo et al., NeurIPS 2016): random weights, redrawn for every batch; the map is the mean
  of |dz/dx| summed over input channels. For n linear uniform k-tap layers it is the Gaussian of
  the theory: mean n(k-1)/2 past the region's start, variance n(k^2-1)/12.
- 'replknet' (Ding et al., CVPR 2022, reused by SLaK, WTConv, VMamba): the model's weights,
  z = sum ReLU(centre features), M = the mean over images of ReLU(dz/dx) summed over channels
  (RepLKNet's script averages), the map log10(M + 1) / max, and the high-contribution area
  ratios at t = 0.2, 0.3, 0.5, 0.99.

This package imports torch, numpy and (for images) Pillow only when a measurement runs, so
`import foveal.erf` costs nothing; the CLI sub-command lives in foveal.erf.cli.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import FovealError, InvalidParameterError
from ..graph import DEFAULT_AXES
from .result import ErfResult

__all__ = ["effective_receptive_field", "ErfResult", "PROTOCOLS", "THRESHOLDS", "DEFAULT_SAMPLES",
           "DEFAULT_BATCH_SIZE"]

PROTOCOLS = ("luo", "replknet")
DEFAULT_SAMPLES = {"luo": 32, "replknet": 50}
"""luo: noise samples (8 weight draws of 4); replknet: RepLKNet's 50 images."""
DEFAULT_BATCH_SIZE = {"luo": 4, "replknet": 10}
THRESHOLDS = (0.2, 0.3, 0.5, 0.99)
"""RepLKNet's thresholds t of the high-contribution area ratio."""
MAX_NAMED = 5


def effective_receptive_field(model: Any, layer: str, inputs: Any = None, *,
                              input_shape: Sequence[int] | None = None, protocol: str = "luo",
                              samples: int | None = None, batch_size: int | None = None,
                              reinitialize: bool | None = None, seed: int = 0,
                              mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                              thresholds: Sequence[float] | None = None,
                              progress: Callable[[int, int | None], None] | None = None) -> ErfResult:
    """The ERF of the centre feature of `layer` (index size // 2 on every spatial axis).

    model: a torch.nn.Module with real weights (on the CPU or any device), or a Keras 3 model on
    the torch backend. It is copied; its weights and training flags never change.
    layer: a module path from named_modules() ('' for the whole model) or a Keras layer name.
    inputs: None (standard-normal noise of input_shape, seeded), an image folder (read with
    Pillow, resized by 256/224 and centre-cropped, normalised by mean/std: ImageNet's by default),
    a tensor (N, C, *spatial), or an iterable of tensors or of (images, labels) pairs, as a
    DataLoader gives them (Keras: in the model's layout).
    input_shape: (N, C, *spatial) (Keras: the model's layout; default its declared size); N is
    not used. Images default to 224 x 224.
    protocol: 'luo' or 'replknet'. samples: how many inputs (default 32 for luo, 50 for replknet;
    tensors: all of them). batch_size: inputs per pass (default 4 / 10); with luo, each batch has
    its own weight draw. reinitialize: redraw the weights (default: True for luo, False for
    replknet). thresholds: of the area ratios (default 0.2, 0.3, 0.5, 0.99).
    progress: called as progress(samples done, samples in all or None) after every batch.
    """
    chosen = _check_arguments(protocol, samples, batch_size, seed, thresholds)
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
    except ImportError as error:
        raise FovealError(f"the ERF needs PyTorch and numpy ({error}): pip install foveal[erf]") from None
    from .analytic import analytic_box
    from .inputs import input_source
    from .measure import measure
    from .probe import KerasProbe, probe_for
    from .stats import area_ratios, centre_of, gaussian_fit, log_normalise, nonzero_box, peak_normalise

    probe = probe_for(model, layer, seed)
    keras = isinstance(probe, KerasProbe)
    redraw = protocol == "luo" if reinitialize is None else bool(reinitialize)
    shape = _channels_first(input_shape, probe) if keras else _plain_shape(input_shape)
    source = input_source(inputs, shape, samples=samples, default_samples=DEFAULT_SAMPLES[protocol],
                          batch_size=batch_size or DEFAULT_BATCH_SIZE[protocol], seed=seed, mean=mean,
                          std=std, channels_last=keras and probe.input_channels_last)
    measured = measure(probe, source.batches, protocol, redraw=redraw, total=source.total, progress=progress)
    values = measured.values
    normalised = peak_normalise(values) if protocol == "luo" else log_normalise(values)
    analytic = analytic_box(probe.analysed_model, layer, measured.input_shape, measured.feature_shape, keras)
    notes = [*source.notes, *_notes(protocol, bool(values.any()), measured.skipped,
                                    probe.kept_parameters() if redraw else [])]
    return ErfResult(
        layer=layer, protocol=protocol, inputs=source.kind,
        axes=DEFAULT_AXES.get(values.ndim, tuple(f"X{i}" for i in range(values.ndim))),
        input_shape=tuple(values.shape), channels=measured.input_shape[0], samples=measured.samples,
        weight_draws=measured.weight_draws, centre=centre_of(values.shape),
        feature_shape=measured.feature_shape, feature_centre=centre_of(measured.feature_shape),
        raw_map=values, normalised_map=normalised, gaussian=gaussian_fit(values),
        area_ratios=area_ratios(normalised, chosen), analytic_box=analytic.box,
        analytic_note=analytic.note, effective_box=nonzero_box(values), notes=tuple(notes))


def _check_arguments(protocol: str, samples: int | None, batch_size: int | None, seed: int,
                     thresholds: Sequence[float] | None) -> tuple[float, ...]:
    """Fail on a bad argument before the model runs; returns the area-ratio thresholds."""
    if protocol not in PROTOCOLS:
        raise InvalidParameterError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    for name, value, least in (("samples", samples, 1), ("batch_size", batch_size, 1), ("seed", seed, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise InvalidParameterError(f"{name} must be an integer >= {least}, got {value!r}")
    chosen = THRESHOLDS if thresholds is None else tuple(thresholds)
    if not chosen or not all(isinstance(t, (int, float)) and 0 < t < 1 for t in chosen):
        raise InvalidParameterError(f"area-ratio thresholds lie in (0, 1), got {thresholds!r}")
    return tuple(float(t) for t in chosen)


def _notes(protocol: str, any_signal: bool, skipped: int, kept: list[str]) -> list[str]:
    """What the numbers should be read with."""
    notes = []
    if skipped:
        notes.append(f"left out {skipped} input(s) whose gradient was not finite (NaN or inf)")
    if kept:
        more = len(kept) - MAX_NAMED
        named = ", ".join(kept[:MAX_NAMED]) + (f" and {more} more" if more > 0 else "")
        notes.append(f"{len(kept)} parameter(s) kept their values when the weights were redrawn (their "
                     f"modules have no reset_parameters()): {named}")
    if not any_signal:
        notes.append("the map is all zero: " + ("the gradient vanished everywhere" if protocol == "luo" else
                     "the centre activation (after ReLU) or its input gradient was never positive"))
    return notes


def _plain_shape(input_shape: Sequence[int] | None) -> tuple[int, ...] | None:
    from .inputs import check_shape

    return None if input_shape is None else check_shape(input_shape)


def _channels_first(input_shape: Sequence[int] | None, probe: Any) -> tuple[int, ...] | None:
    """A Keras input shape in channels-first order; by default the model's declared size (batch 1)."""
    from ..input_spec import Form, reordered
    from .inputs import check_shape

    if input_shape is None:
        declared = tuple(probe.source.inputs[0].shape)
        if any(n is None for n in declared[1:]):
            return None
        input_shape = (1, *declared[1:])
    shape = check_shape(input_shape)
    if probe.input_channels_last:
        return reordered(shape, Form.CHANNELS_LAST, Form.CHANNELS_FIRST)
    return shape
