"""Test-only helpers for the Keras front-end: positive weights and two oracles run on the real model
(torch backend), independent of foveal's engine.

- gradient oracle: the input pixels with a non-zero gradient for one output position (summed over
  channels); weights and inputs positive so that nothing cancels;
- NaN oracle (for max-type layers, whose gradient reaches only the argmax): the outputs that turn
  NaN when one input pixel is NaN.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def _keras_modules() -> dict:
    return {k: v for k, v in sys.modules.items() if k == "keras" or k.startswith("keras.")}


@contextmanager
def keras_on(backend: str) -> Iterator:
    saved_env, saved = os.environ.get("KERAS_BACKEND"), _keras_modules()
    for name in saved:
        del sys.modules[name]
    os.environ["KERAS_BACKEND"] = backend
    try:
        import keras

        assert keras.backend.backend() == backend
        yield keras
    finally:
        for name in _keras_modules():
            del sys.modules[name]
        sys.modules.update(saved)
        if saved_env is None:
            os.environ.pop("KERAS_BACKEND", None)
        else:
            os.environ["KERAS_BACKEND"] = saved_env


def positive_weights(model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for v in model.weights:
        if "moving_mean" in v.path or v.name == "mean":
            v.assign(np.zeros(v.shape, dtype="float32"))
        else:
            v.assign(rng.uniform(0.5, 1.5, v.shape).astype("float32"))


def _spatial(shape, channels_first):
    return tuple(shape[2:]) if channels_first else tuple(shape[1:-1])


def _hull(mask: np.ndarray):
    """Per-axis hull of the True positions of an N-D mask; None everywhere when empty."""
    if not mask.any():
        return (None,) * mask.ndim
    idx = np.nonzero(mask)
    return tuple((int(i.min()), int(i.max())) for i in idx)


def features(shape, limit: int = 96):
    every = list(itertools.product(*(range(n) for n in shape)))
    step = max(1, len(every) // limit)
    return every[::step]


def gradient_regions(keras, inputs, output, input_shape, channels_first=False, seed=0):
    """{feature index: per-axis hull of the input pixels whose gradient is non-zero}."""
    model = keras.Model(inputs, output)
    out_spatial = _spatial(output.shape, channels_first)
    picked = features(out_spatial)
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand((len(picked), *input_shape[1:]), generator=gen) + 0.5).requires_grad_()
    y = model(x, training=False)
    channels = y.shape[1 if channels_first else -1]
    mix = torch.rand(channels, generator=gen) + 0.5  # a positive mix of channels: softmax is not constant
    total = 0
    for k, f in enumerate(picked):
        total = total + ((y[(k, slice(None), *f)] if channels_first else y[(k, *f)]) * mix).sum()
    total.backward()
    g = x.grad.abs().sum(1 if channels_first else -1)
    return {f: _hull((g[k] > 0).numpy()) for k, f in enumerate(picked)}


def nan_regions(keras, inputs, output, input_shape, channels_first=False):
    """{feature index: per-axis hull of the input pixels whose NaN reaches it}."""
    model = keras.Model(inputs, output)
    in_spatial = _spatial(input_shape, channels_first)
    pixels = list(itertools.product(*(range(n) for n in in_spatial)))
    x = torch.rand((len(pixels), *input_shape[1:])) + 0.5
    for k, p in enumerate(pixels):
        if channels_first:
            x[(k, slice(None), *p)] = float("nan")
        else:
            x[(k, *p)] = float("nan")
    with torch.no_grad():
        y = model(x, training=False)
    bad = torch.isnan(y).any(1 if channels_first else -1).numpy()  # (pixels, *out_spatial)
    out_spatial = bad.shape[1:]
    result = {}
    for f in features(out_spatial):
        mask = np.zeros(in_spatial, dtype=bool)
        for k, p in enumerate(pixels):
            if bad[(k, *f)]:
                mask[p] = True
        result[f] = _hull(mask)
    return result
