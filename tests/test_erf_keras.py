"""The ERF of Keras 3 models on the torch backend (a sub-model to the layer, torch autograd), in
both layouts, and the clear error on another backend.

Keras picks its backend when first imported and other test files import it with TensorFlow, so
`keras_models.keras_on(backend)` imports it afresh with KERAS_BACKEND set and puts the previous
modules and environment back afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from keras_models import keras_on  # noqa: E402

from foveal.erf import effective_receptive_field  # noqa: E402
from foveal.errors import FovealError, UnknownNodeError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def keras():
    with keras_on("torch") as keras:
        yield keras


def ones_stack(keras, n: int, kernel: tuple[int, int], shape: tuple[int | None, ...],
               data_format: str = "channels_last"):
    inputs = keras.Input(shape)
    x = inputs
    for i in range(n):
        x = keras.layers.Conv2D(2, kernel, use_bias=False, kernel_initializer="ones", data_format=data_format,
                                name=f"conv{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(data_format=data_format, name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_linear_stack_is_the_theory_gaussian(keras, data_format: str) -> None:
    shape = (23, 30, 1) if data_format == "channels_last" else (1, 23, 30)
    model = ones_stack(keras, 3, (3, 5), shape, data_format)
    r = effective_receptive_field(model, "conv2", reinitialize=False, samples=2)  # the declared size
    assert r.input_shape == (23, 30) and r.channels == 1 and r.feature_shape == (17, 18)
    for axis, k in enumerate((3, 5)):
        start = r.analytic_box[axis][0]
        assert r.gaussian.mean[axis] - start == pytest.approx(3 * (k - 1) / 2, abs=1e-6)
        assert r.gaussian.sigma[axis] ** 2 == pytest.approx(3 * (k * k - 1) / 12, rel=1e-6)
    assert r.effective_box == r.analytic_box == ((8, 14), (9, 21))


def test_tensors_in_the_model_layout_and_replknet(keras) -> None:
    model = ones_stack(keras, 2, (3, 3), (None, None, 1))
    x = np.ones((3, 12, 14, 1), dtype="float32")
    r = effective_receptive_field(model, "conv1", x, protocol="replknet")
    assert r.input_shape == (12, 14) and r.samples == 3
    start = r.analytic_box[0][0], r.analytic_box[1][0]
    # two all-ones 3x3 layers of 2 channels: per output channel 2 * (box * box), two channels
    row = np.convolve(np.ones(3), np.ones(3))
    window = r.raw_map[start[0]:start[0] + 5, start[1]:start[1] + 5]
    assert np.allclose(window, 2 * 2 * np.outer(row, row))
    with pytest.raises(FovealError, match="noise inputs need input_shape"):
        effective_receptive_field(model, "conv1")  # no declared size
    r = effective_receptive_field(model, "conv1", input_shape=(1, 9, 10, 1), samples=1, reinitialize=False)
    assert r.input_shape == (9, 10)


def test_luo_clones_with_fresh_weights(keras) -> None:
    """The clone re-runs each layer's own initialiser (glorot_uniform by default), seeded."""
    inputs = keras.Input((15, 15, 1))
    x = keras.layers.Conv2D(2, 3, name="conv0")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="conv1")(x))
    before = [w.copy() for w in model.get_weights()]
    fixed = effective_receptive_field(model, "conv1", reinitialize=False, samples=2, batch_size=1)
    drawn = effective_receptive_field(model, "conv1", samples=2, batch_size=1)
    again = effective_receptive_field(model, "conv1", samples=2, batch_size=1)
    other = effective_receptive_field(model, "conv1", samples=2, batch_size=1, seed=3)
    assert drawn.weight_draws == 2 and fixed.weight_draws == 0
    assert not np.allclose(drawn.raw_map, fixed.raw_map) and not np.allclose(drawn.raw_map, other.raw_map)
    assert np.array_equal(drawn.raw_map, again.raw_map)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_bad_layers(keras) -> None:
    model = ones_stack(keras, 2, (3, 3), (15, 15, 1))
    with pytest.raises(UnknownNodeError, match="unknown layer 'conv_1'; did you mean 'conv1'"):
        effective_receptive_field(model, "conv_1")
    with pytest.raises(FovealError, match=r"'head' outputs shape \(4, 3\), which has no spatial axes"):
        effective_receptive_field(model, "head")


def test_other_backends_are_refused() -> None:
    """TensorFlow, in a subprocess (this process has Keras on torch or TensorFlow already)."""
    code = textwrap.dedent("""
        import keras
        from foveal.erf import effective_receptive_field
        inputs = keras.Input((8, 8, 1))
        model = keras.Model(inputs, keras.layers.Conv2D(1, 3, name="conv")(inputs))
        try:
            effective_receptive_field(model, "conv")
        except Exception as error:
            print(type(error).__name__, error)
    """)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.stdout.startswith("FovealError the ERF of a Keras model needs the torch backend"), done.stderr
    assert "runs on 'tensorflow'" in done.stdout
