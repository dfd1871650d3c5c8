"""Keras 3 front-end on the torch backend: every layer kind against the gradient (or NaN) oracle run
on the real model, naming of nested models and shared layers, honesty about what is not
followed, keras.applications, FLOPs, rfa_toolbox's create_graph_from_tensorflow_model, and one
run on the TensorFlow backend (a subprocess).

Keras picks its backend when first imported. Other test files import Keras with TensorFlow, so
the `keras` fixture imports it afresh with KERAS_BACKEND=torch (what keras.config.set_backend
does) and puts the previous modules and environment back afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from keras_models import keras_on  # noqa: E402

import foveal  # noqa: E402
from foveal import receptive_field as analyse  # noqa: E402
from foveal.errors import FovealError, UnsupportedOpError  # noqa: E402
from foveal.keras import flops_by_layer, graph_from_model, is_keras_model  # noqa: E402


@pytest.fixture(scope="module")
def keras():
    with keras_on("torch") as keras:
        yield keras


@pytest.fixture(scope="module")
def L(keras):
    return keras.layers


def oracle_check(keras, inputs, outputs: dict, input_shape, oracle="gradient", channels_first=False,
                 order=None, handlers=None):
    """Every listed output: the oracle's region of each (sampled) feature == foveal's clipped one."""
    from keras_models import gradient_regions, nan_regions, positive_weights

    model = keras.Model(inputs, list(outputs.values()))
    positive_weights(model)
    spatial = input_shape[2:] if channels_first else input_shape[1:-1]
    a = analyse(model, tuple(spatial), handlers=handlers)
    fn = gradient_regions if oracle == "gradient" else nan_regions
    checked = 0
    for name, tensor in outputs.items():
        truth = fn(keras, inputs, tensor, input_shape, channels_first=channels_first)
        reorder = (order or {}).get(name)
        for f, region in truth.items():
            index = tuple(f[k] for k in reorder) if reorder else f
            assert a[name].region(*index, clip=True) == region, (name, f, region)
            checked += 1
        assert a[name].status == "exact", (name, a[name].reasons)
    return a, checked


# -- every layer kind against the oracles --------------------------------------------------------


def test_2d_layers_match_the_gradient_oracle(keras, L) -> None:
    inp = keras.Input((20, 18, 2), name="image")
    pad = L.ZeroPadding2D(((1, 2), (0, 1)), name="pad")(inp)
    t1 = L.Conv2D(4, 3, strides=2, padding="same", name="c1")(pad)
    r = L.ReLU(name="relu")(L.BatchNormalization(name="bn")(t1))
    t2 = L.DepthwiseConv2D(3, dilation_rate=2, padding="same", name="dw")(r)
    gap = L.GlobalAveragePooling2D(keepdims=True, name="gap")(t1)
    outputs = {
        "c1": t1, "dw": t2,
        "sep": L.SeparableConv2D(4, (2, 3), strides=(1, 2), name="sep")(t2),
        "dil": L.Conv2D(2, (3, 2), dilation_rate=(2, 3), padding="same", name="dil")(t2),
        "up": L.UpSampling2D(2, name="up")(t2),
        "upb": L.UpSampling2D((2, 4), interpolation="bilinear", name="upb")(t2),
        "ct1": L.Conv2DTranspose(3, 3, strides=2, padding="same", name="ct1")(t2),
        "ct2": L.Conv2DTranspose(3, 4, strides=2, padding="valid", output_padding=1, name="ct2")(t2),
        "ct3": L.Conv2DTranspose(2, 4, strides=3, padding="same", name="ct3")(t2),
        "ct4": L.Conv2DTranspose(2, 3, strides=2, padding="same", output_padding=1, name="ct4")(t2),
        "ct5": L.Conv2DTranspose(2, 2, strides=3, dilation_rate=1, padding="valid", name="ct5")(t2),
        "avg": L.AveragePooling2D(3, 2, padding="same", name="avg")(t1),
        "avgv": L.AveragePooling2D((2, 3), name="avgv")(t1),
        "rs": L.Resizing(7, 5, name="rs")(t1),
        "rsn": L.Resizing(11, 13, interpolation="nearest", name="rsn")(t1),
        "rsc": L.Resizing(6, 6, crop_to_aspect_ratio=True, name="rsc")(t1),
        "rsp": L.Resizing(6, 6, pad_to_aspect_ratio=True, name="rsp")(t1),
        "crop": L.Cropping2D(((1, 0), (2, 1)), name="crop")(t2),
        "permconv": L.Conv2D(2, (3, 1), name="permconv")(L.Permute((2, 1, 3), name="perm")(t1)),
        "dense": L.Dense(3, name="dense")(t1),
        "ln": L.LayerNormalization(name="ln")(t1),
        "sm": L.Softmax(name="sm")(t1),
        "acts": L.Activation("elu", name="acts")(L.PReLU(name="prelu")(L.LeakyReLU(name="lrelu")(
            L.ELU(name="elu")(L.Rescaling(0.5, 1.0, name="resc")(t1))))),
        "drop": L.GaussianNoise(0.1, name="noise")(L.SpatialDropout2D(0.2, name="sd")(
            L.Dropout(0.5, name="drop")(t1))),
        "add": L.Add(name="add")([t1, L.Conv2D(4, 3, padding="same", name="side")(t1)]),
        "sub": L.Subtract(name="sub")([t1, L.Conv2D(4, (1, 3), padding="same", name="side2")(t1)]),
        "mul": L.Multiply(name="mul")([t1, gap]),
        "avgm": L.Average(name="avgm")([t1, t2]),
        "cat": L.Concatenate(name="cat")([t1, t2]),
        "head": L.Dense(2, name="head")(L.Flatten(name="flat")(t1)),
    }
    shape = (1, 20, 18, 2)
    a, checked = oracle_check(keras, inp, {k: v for k, v in outputs.items() if k != "head"}, shape,
                              order={"permconv": (1, 0)})
    assert checked > 1000
    for name, tensor in outputs.items():  # sizes as Keras computed them
        spatial = tuple(tensor.shape[1:-1])
        if name == "permconv":
            spatial = spatial[::-1]
        if len(spatial) == 2:
            assert a[name].output_shape == spatial, name
    head = analyse(keras.Model(inp, outputs["head"]), (20, 18))
    assert head["head"].is_global == (True, True)
    assert head["head"].region(0, 0, clip=True) == ((0, 19), (0, 17))
    assert head["flat"].op == "elementwise" and a["dense"].op == "elementwise"  # Dense per position


def test_max_type_layers_match_the_nan_oracle(keras, L) -> None:
    """Max pooling, Maximum and Minimum pass the gradient to one input only: NaN injection."""
    inp = keras.Input((13, 11, 1), name="image")
    t = L.Conv2D(2, 2, name="c")(inp)
    outputs = {
        "mp": L.MaxPooling2D(3, 2, padding="same", name="mp")(t),
        "mpv": L.MaxPooling2D((2, 3), strides=(1, 2), name="mpv")(t),
        "max": L.Maximum(name="max")([t, L.Conv2D(2, 3, padding="same", name="c3")(t)]),
        "min": L.Minimum(name="min")([t, L.Conv2D(2, (1, 3), padding="same", name="c4")(t)]),
        "gmp": L.GlobalMaxPooling2D(keepdims=True, name="gmp")(t),
    }
    oracle_check(keras, inp, outputs, (1, 13, 11, 1), oracle="nan")


def test_1d_layers(keras, L) -> None:
    inp = keras.Input((23, 2), name="wave")
    causal = L.Conv1D(3, 3, dilation_rate=2, padding="causal", name="causal")(inp)
    outputs = {
        "causal": causal,
        "same": L.Conv1D(3, 4, strides=2, padding="same", name="same")(causal),
        "dw": L.DepthwiseConv1D(3, padding="same", name="dw")(causal),
        "sep": L.SeparableConv1D(2, 3, dilation_rate=2, name="sep")(causal),
        "ct": L.Conv1DTranspose(2, 3, strides=2, padding="same", name="ct")(causal),
        "avg": L.AveragePooling1D(3, 2, padding="same", name="avg")(causal),
        "pad": L.ZeroPadding1D((2, 1), name="pad")(causal),
        "crop": L.Cropping1D((1, 3), name="crop")(causal),
        "up": L.UpSampling1D(3, name="up")(causal),
    }
    oracle_check(keras, inp, outputs, (1, 23, 2))
    oracle_check(keras, inp, {"mp": L.MaxPooling1D(3, 2, padding="same", name="mp")(causal)}, (1, 23, 2),
                 oracle="nan")
    model = keras.Model(inp, L.GlobalAveragePooling1D(name="gap")(causal))
    assert analyse(model, 23)["gap"].region(0, clip=True) == ((0, 22),)


def test_3d_layers(keras, L) -> None:
    inp = keras.Input((7, 8, 6, 1), name="volume")
    c = L.Conv3D(2, 3, strides=(2, 1, 2), padding="same", name="c")(inp)
    outputs = {
        "c": c,
        "ct": L.Conv3DTranspose(2, (2, 3, 3), strides=2, padding="same", name="ct")(c),
        "avg": L.AveragePooling3D(2, name="avg")(c),
        "pad": L.ZeroPadding3D((1, 2, 0), name="pad")(c),
        "crop": L.Cropping3D(((0, 1), (1, 1), (1, 0)), name="crop")(c),
        "up": L.UpSampling3D((1, 2, 2), name="up")(c),
    }
    oracle_check(keras, inp, outputs, (1, 7, 8, 6, 1))


def test_channels_first(keras, L) -> None:
    inp = keras.Input((2, 12, 10), name="image")
    c = L.Conv2D(3, 3, strides=2, padding="same", data_format="channels_first", name="c")(inp)
    outputs = {
        "c": c,
        "pool": L.AveragePooling2D(2, data_format="channels_first", name="pool")(c),
        "pad": L.ZeroPadding2D(1, data_format="channels_first", name="pad")(c),
        "up": L.UpSampling2D(2, data_format="channels_first", interpolation="bilinear", name="up")(c),
        "bn": L.BatchNormalization(axis=1, name="bn")(c),
    }
    oracle_check(keras, inp, outputs, (1, 2, 12, 10), channels_first=True)


# -- naming: nested models, Sequential, shared layers ----------------------------------------------


def test_nested_models_and_shared_layers(keras, L) -> None:
    block = keras.Sequential([keras.Input((None, None, 2)), L.Conv2D(2, 3, padding="same", name="conv"),
                              L.MaxPooling2D(name="pool")], name="block")
    inner_in = keras.Input((None, None, 2))
    inner = keras.Model(inner_in, L.Conv2D(2, 3, name="k")(inner_in), name="inner")
    inp = keras.Input((16, 16, 2), name="image")
    shared = L.Conv2D(2, 3, padding="same", name="shared")
    x = shared(shared(inp))
    y = block(x)
    z = inner(y)
    z2 = inner(y)
    out = L.Add(name="sum")([z, z2])
    model = keras.Model(inp, out)
    graph = graph_from_model(model)
    assert list(graph.nodes) == ["image", "shared", "shared@2", "block/conv", "block/pool", "block",
                                 "inner/k", "inner", "inner@2/k", "inner@2", "sum"]
    assert graph.nodes["block"].label == "Sequential" and graph.nodes["block/conv"].label == "Conv2D"
    a, _ = oracle_check(keras, inp, {"shared@2": x, "sum": out}, (1, 16, 16, 2), oracle="nan")
    assert a["sum"].size == (12, 12) and a["sum"].stride == (2, 2)  # 1 + 2 + 2 + 2, pool +1, + 2 * 2
    assert a["block/pool"].size == a["block"].size == (8, 8)


def test_sequential_without_input_needs_the_full_shape(keras, L) -> None:
    model = keras.Sequential([L.Conv2D(2, 3, name="c"), L.Conv2D(2, 3, strides=2, name="d")])
    with pytest.raises(FovealError, match="not built"):
        graph_from_model(model)
    a = analyse(model, (1, 15, 15, 3))
    assert a["d"].size == (5, 5) and a["d"].output_shape == (6, 6)



def test_a_nested_model_has_the_verdicts_of_the_same_pytorch_model(keras, L) -> None:
    """backbone (a nested model of two convs) -> conv, and nn.Sequential(nn.Sequential(conv, conv),
    conv): the nested model's name is an alias (as a module's path is), which verdicts skip."""
    from torch import nn

    inner_in = keras.Input((None, None, 2))
    x = L.Conv2D(2, 5, padding="same", name="c1")(inner_in)
    backbone = keras.Model(inner_in, L.Conv2D(2, 5, padding="same", name="c2")(x), name="backbone")
    inp = keras.Input((12, 12, 2), name="image")
    model = keras.Model(inp, L.Conv2D(2, 5, padding="same", name="head")(backbone(inp)))
    ours = analyse(model)
    assert ours.graph.nodes["backbone"].op == foveal.ops.alias(foveal.ops.MODEL_OUTPUT)
    torch_model = nn.Sequential(nn.Sequential(nn.Conv2d(2, 2, 5, padding=2), nn.Conv2d(2, 2, 5, padding=2)),
                                nn.Conv2d(2, 2, 5, padding=2))
    theirs = foveal.receptive_field(torch_model, (1, 2, 12, 12))
    counts = ours.verdicts().counts()
    assert counts == theirs.verdicts().counts() and sum(counts.values()) == 4, counts
    assert "productive" in counts and len(counts) > 1  # RF 5, 9, 13 on 12 x 12: not all alike

# -- honesty --------------------------------------------------------------------------------------


def test_unsupported_layers_are_named(keras, L) -> None:
    inp = keras.Input((8, 8, 1), name="image")
    x = L.Lambda(lambda t: t * 2, name="double")(L.Conv2D(2, 3, name="c")(inp))
    model = keras.Model(inp, L.Conv2D(1, 3, name="after")(x))
    with pytest.raises(UnsupportedOpError, match="'double'.*Lambda"):
        analyse(model)
    a = analyse(model, unknown_policy="identity")
    assert a["after"].status == "bound" and a.unsupported_ops


def test_reshapes_and_concatenation_are_honest(keras, L) -> None:
    inp = keras.Input((6, 4, 3), name="image")
    c = L.Conv2D(4, 3, padding="same", name="c")(inp)
    tokens = L.Reshape((24, 4), name="tokens")(c)  # merges H and W: exact
    mixed = L.Dense(4, name="mix")(tokens)  # over channels: per token
    back = L.Reshape((6, 4, 4), name="back")(mixed)  # splits the merged dim back into H, W: exact
    after = L.Conv2D(2, 3, name="after")(back)
    split = L.Reshape((3, 2, 4, 4), name="split")(c)  # splits H: not followed
    squeezed = L.Reshape((6, 4, 4, 1), name="unsqueeze")(c)  # adds a size-1 dim: exact
    side = L.Concatenate(axis=1, name="stack")([c, c])  # along H: not followed
    head = L.Dense(2, name="head")(L.Reshape((96,), name="flat")(c))
    model = keras.Model(inp, [back, squeezed, side, head, mixed, split])
    a = analyse(model, unknown_policy="identity")
    assert a["mix"].status == "exact" and a["mix"].size == (3, 3)
    assert a["back"].status == a["unsqueeze"].status == "exact"
    assert set(a.unsupported_ops) == {
        "keras.layers.reshaping.reshape.Reshape (a reshape of dims (6,) to (3, 2) splits or regroups "
        "spatial axes (window partitioning, say), which foveal cannot follow)",
        "keras.layers.merging.concatenate.Concatenate (a concatenation along a spatial axis)"}
    assert a["head"].is_global == (True, True) and a["head"].status == "exact"
    oracle_check(keras, inp, {"after": after}, (1, 6, 4, 3))  # through tokens and back


def test_sizes_after_an_op_the_policy_guesses_are_not_checked(keras, L) -> None:
    """A concatenation along H changes the size; under unknown_policy='identity' foveal's sizes
    after it are the policy's guess (marked bounds), so they are not compared with Keras's."""
    inp = keras.Input((5, 5, 3))
    c = L.Conv2D(2, 3, padding="same", name="c")(inp)
    side = L.Concatenate(axis=1, name="stack")([c, c])
    out = L.Conv2D(2, 3, name="after")(side)
    a = analyse(keras.Model(inp, out), unknown_policy="identity")
    assert a["after"].status == "bound" and a["c"].status == "exact"
    with pytest.raises(UnsupportedOpError, match="stack"):
        analyse(keras.Model(inp, out))


def test_bad_input(keras, L) -> None:
    assert not is_keras_model(object()) and is_keras_model(L.Dense(2))
    with pytest.raises(FovealError, match="expected a Keras 3 model"):
        graph_from_model(object())

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = L.Conv2D(2, 3)

        def call(self, x):
            return self.conv(x)

    with pytest.raises(FovealError, match="subclassed keras.Model"):
        graph_from_model(Net())
    with pytest.raises(FovealError, match="no input with spatial axes"):
        inp = keras.Input((5,))
        graph_from_model(keras.Model(inp, L.Dense(2)(inp)))
    # a bare layer, called on an Input of the given full shape
    assert analyse(L.Conv2D(2, 5, strides=2), (1, 16, 16, 3)).output.size == (5, 5)



def blur_layer(keras):
    class Blur(keras.layers.Layer):
        """A fixed 3x3 box filter per channel with 'same' padding, written in call()."""

        def call(self, x):
            kernel = keras.ops.ones((3, 3, x.shape[-1], 1)) / 9.0
            return keras.ops.depthwise_conv(x, kernel, padding="same")

    return Blur


def test_a_custom_layer_by_handlers(keras, L) -> None:
    from foveal.keras.frontend import build

    Blur = blur_layer(keras)
    inp = keras.Input((16, 16, 1), name="image")
    blurred = Blur(name="blur")(L.Conv2D(2, 3, strides=2, name="c")(inp))
    out = L.Conv2D(1, 3, name="after")(blurred)
    model = keras.Model(inp, out)
    with pytest.raises(UnsupportedOpError, match="'blur'.*Blur.*handlers="):
        analyse(model)
    assert build(model).unhandled == {"test_keras.Blur": 1}
    for key, value in ((Blur, foveal.conv(3, padding=1)), ("Blur", foveal.conv(3, padding=1)),
                       (Blur, lambda layer: foveal.conv(3, padding=1))):
        a, _ = oracle_check(keras, inp, {"blur": blurred, "after": out}, (1, 16, 16, 1),
                            handlers={key: value})
        assert a["blur"].size == (7, 7) and a["blur"].output_shape == (7, 7), key
        assert a.graph.nodes["blur"].label == "Blur"
    assert build(model, handlers={Blur: foveal.conv(3, padding=1)}).unhandled == {}


def test_handlers_replace_a_keras_layer_and_bad_keys_are_refused(keras, L) -> None:
    inp = keras.Input((10, 10, 1), name="image")
    model = keras.Model(inp, L.Conv2D(1, 3, name="c")(inp))
    assert analyse(model, handlers={"Conv2D": foveal.max_pool(3, 1)}).graph.nodes["c"].op.kind == "max_pool"
    wider = {L.Conv2D: lambda layer: foveal.conv([k + 2 for k in layer.kernel_size], 1, 1)}  # the layer given
    a = analyse(model, handlers=wider)
    assert a["c"].size == (5, 5) and a["c"].output_shape == (8, 8)
    with pytest.raises(FovealError, match="at node 'c' .* where Keras gives 8"):  # a wrong handler
        analyse(model, handlers={"Conv2D": foveal.conv(5)})
    with pytest.raises(FovealError, match="layer classes or class names"):
        analyse(model, handlers={3: foveal.conv(3)})
    with pytest.raises(FovealError, match="not a foveal op"):
        analyse(model, handlers={"Conv2D": lambda layer: 3})

# -- keras.applications ----------------------------------------------------------------------------

APPLICATIONS = {  # name: input size (the smallest that each accepts, or small)
    "ResNet50": 32, "MobileNetV2": 32, "VGG16": 32, "MobileNetV3Small": 32, "EfficientNetB0": 32,
    "ConvNeXtTiny": 32, "DenseNet121": 32, "InceptionV3": 75, "Xception": 71,
}


def check_application(keras, name: str, size: int) -> None:
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3))
    a = analyse(model)  # which checks every size against Keras's
    assert a.output.status == "exact" and all(r.status == "exact" for r in a), name
    from foveal.frontend import Request
    from foveal.keras.frontend import convert

    conversion = convert(model, Request())
    checked = [node for node, sizes in conversion.expected.items() if None not in sizes]
    assert conversion.framework == "Keras" and len(checked) > 0.7 * len(a.graph.nodes), name
    assert a.output.region(0, 0, clip=True) == ((0, size - 1), (0, size - 1))


@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_keras_applications(keras, name: str) -> None:
    check_application(keras, name, APPLICATIONS[name])


@pytest.mark.slow
def test_every_keras_application(keras) -> None:
    minimum = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71, "NASNetLarge": 331,
               "NASNetMobile": 224}
    for name in dir(keras.applications):
        if name[0].isupper() and name != "NASNetMobile":  # not available with the torch backend
            check_application(keras, name, minimum.get(name, 32))


def test_vgg16_matches_torchvision(keras) -> None:
    """The same architecture through two front-ends: Keras's block5_pool is torchvision's features."""
    import torch_models as TM

    ours = analyse(keras.applications.VGG16(weights=None, include_top=False, input_shape=(64, 64, 3)))
    theirs = foveal.receptive_field(TM.torchvision_model("vgg16"), (1, 3, 64, 64))
    for k, t in (("block1_conv2", "features.2"), ("block3_pool", "features.16"),
                 ("block5_pool", "features")):
        assert (ours[k].size, ours[k].stride, ours[k].padding) == \
            (theirs[t].size, theirs[t].stride, theirs[t].padding), k


def test_analysis_at_the_declared_size_by_default(keras, L) -> None:
    inp = keras.Input((30, 20, 1), name="image")
    model = keras.Model(inp, L.Conv2D(1, 3, strides=2, padding="same", name="c")(inp))
    assert analyse(model)["c"].output_shape == (15, 10)
    assert analyse(model, (9, 9))["c"].output_shape == (5, 5)
    assert analyse(model, (1, 9, 7, 1))["c"].output_shape == (5, 4)
    assert foveal.receptive_field(model, (9, 9))["c"].output_shape == (5, 5)  # the one entry point



def test_the_input_shape_follows_the_models_layout(keras) -> None:
    model = keras.applications.ResNet50(weights=None, include_top=False)
    assert analyse(model, (1, 224, 224, 3)).output.output_shape == (7, 7)
    assert analyse(model, (224, 224)).output.output_shape == (7, 7)
    assert analyse(model, 64).output.output_shape == (2, 2)
    with pytest.raises(FovealError, match=r"contradicts .* \(N, H, W, C\).* give \(1, 224, 224, 3\)"):
        analyse(model, (1, 3, 224, 224))


def test_input_shapes_by_input_name(keras, L) -> None:
    a_in, b_in = keras.Input((None, None, 1), name="a"), keras.Input((None, None, 2), name="b")
    c = L.Conv2D(2, 3, name="c")(a_in)
    d = L.Conv2D(2, 5, name="d")(b_in)
    model = keras.Model([a_in, b_in], L.Add(name="sum")([c, d]))
    a = analyse(model, {"a": (9, 9), "b": (1, 11, 11, 2)})
    assert a["sum"].output_shape == (7, 7) and a["sum"].size == (3, 3)
    assert analyse(model, {"a": 9, "b": 11}, input="b")["sum"].size == (5, 5)
    with pytest.raises(FovealError, match=r"\['x'\], which are not inputs"):
        analyse(model, {"a": 9, "x": 11})
    with pytest.raises(FovealError, match="contradicts"):
        analyse(model, {"a": 9, "b": (1, 11, 11, 3)})
    cf_in = keras.Input((2, None, None), name="cf_in")
    model_cf = keras.Model(cf_in, L.Conv2D(2, 3, data_format="channels_first", name="cf")(cf_in))
    assert analyse(model_cf, (1, 2, 9, 7))["cf"].output_shape == (7, 5)
    with pytest.raises(FovealError, match=r"\(N, C, H, W\).* give \(1, 2, 9, 7\)"):
        analyse(model_cf, (1, 9, 7, 2))

# -- FLOPs ------------------------------------------------------------------------------------------


def test_flops_by_hand(keras, L) -> None:
    inp = keras.Input((16, 12, 3), name="image")
    c = L.Conv2D(8, 3, strides=2, padding="same", name="c")(inp)  # 8 x 6 x 8 out
    d = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="d")(c)
    s = L.SeparableConv2D(4, 3, depth_multiplier=2, padding="same", name="s")(d)
    t = L.Conv2DTranspose(2, 3, strides=2, padding="same", name="t")(s)  # 16 x 12 x 2 out
    p = L.MaxPooling2D(2, name="p")(t)  # 8 x 6 x 2
    g = L.GlobalAveragePooling2D(name="g")(p)
    out = L.Dense(5, name="fc")(L.ReLU(name="r")(g))
    a = L.Add(name="a")([s, L.BatchNormalization(name="bn")(s)])
    model = keras.Model(inp, [out, a])
    flops = flops_by_layer(model, (16, 12))
    positions = 8 * 6
    assert flops["c"] == 2 * 9 * 3 * 8 * positions + 8 * positions
    assert flops["d"] == 2 * 9 * 8 * positions
    assert flops["s"] == 2 * positions * (9 * 8 * 2 + 16 * 4) + 4 * positions
    assert flops["t"] == 2 * positions * 9 * 4 * 2 + 16 * 12 * 2
    assert flops["p"] == 4 * 8 * 6 * 2 and flops["g"] == 8 * 6 * 2
    assert flops["r"] == 2 and flops["fc"] == 2 * 2 * 5 + 5
    assert flops["bn"] == 2 * positions * 4 and flops["a"] == positions * 4
    assert flops["image"] == 0 and set(flops) == set(graph_from_model(model).nodes)


@pytest.mark.parametrize("name, size", [("ResNet50", 224), ("MobileNetV2", 96)])
def test_flops_match_pytorchs_flop_counter(keras, name: str, size: int) -> None:
    """An independent count: torch.utils.flop_counter on the real forward pass (torch backend)
    counts convolutions and matrix products as 2 * multiply-adds, without bias adds."""
    from torch.utils.flop_counter import FlopCounterMode

    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3))
    flops = flops_by_layer(model, (size, size))
    weighted = {layer.name: layer for layer in model.layers if hasattr(layer, "kernel")
                or hasattr(layer, "depthwise_kernel")}
    weighted = {k: v for k, v in weighted.items() if type(v).__name__ != "BatchNormalization"}
    bias = sum(int(np.prod(layer.output.shape[1:])) for layer in weighted.values() if layer.use_bias)
    ours = sum(flops[k] for k in weighted) - bias
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, size, size, 3), training=False)
    assert abs(ours - counter.get_total_flops()) <= 0.01 * ours


# -- rfa_toolbox -------------------------------------------------------------------------------------


def test_create_graph_from_tensorflow_model(keras, L) -> None:
    from foveal.compat.rfa_toolbox import create_graph_from_tensorflow_model, input_resolution_range

    inp = keras.Input((None, None, 3), name="image")
    x = L.Conv2D(4, 3, strides=2, name="c1")(inp)
    x = L.Conv2D(4, 3, dilation_rate=2, name="c2")(x)
    model = keras.Model(inp, L.GlobalAveragePooling2D(name="gap")(x))
    node = create_graph_from_tensorflow_model(model, input_res=(32, 32))
    layers = {n.name: n for n in node.all_layers}
    assert set(layers) >= {"image", "c1", "c2", "gap"}
    assert layers["c2"].receptive_field_min == (11, 11)
    native = analyse(model, (32, 32)).input_resolution_range()
    assert input_resolution_range(node) == (native.minimum, native.maximum)
    with pytest.raises(FovealError, match="Keras front-end"):
        create_graph_from_tensorflow_model(object())


# -- the TensorFlow backend ---------------------------------------------------------------------------

TF_SCRIPT = textwrap.dedent('''
    import os, sys
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    import keras
    from keras import layers as L
    import foveal
    from foveal.compat.rfa_toolbox import create_graph_from_tensorflow_model
    assert keras.backend.backend() == "tensorflow"
    analyse = foveal.receptive_field

    # rfa_toolbox's README example, unchanged but for weights=None
    from tensorflow.keras.applications.resnet50 import ResNet50
    graph = create_graph_from_tensorflow_model(ResNet50(weights=None))
    assert graph.name == "predictions", graph.name

    # transposed convolutions and SAME windows against tf.GradientTape
    inp = keras.Input((11, 9, 1))
    t = L.Conv2D(2, 3, strides=2, padding="same", name="c")(inp)
    outs = [L.Conv2DTranspose(2, 3, strides=2, padding="same", name="ct1")(t),
            L.Conv2DTranspose(2, 4, strides=3, padding="same", output_padding=1, name="ct2")(t),
            L.Conv2DTranspose(2, 3, strides=2, padding="valid", output_padding=1, name="ct3")(t),
            L.UpSampling2D(2, interpolation="bilinear", name="up")(t),
            L.Resizing(5, 7, interpolation="nearest", name="rs")(t)]
    model = keras.Model(inp, outs)
    rng = np.random.default_rng(0)
    for v in model.weights:
        v.assign(rng.uniform(0.5, 1.5, v.shape).astype("float32"))
    a = analyse(model)
    checked = 0
    for out in outs:
        name = out._keras_history.operation.name
        sub = keras.Model(inp, out)
        h, w = out.shape[1:3]
        assert a[name].output_shape == (h, w), name
        for i in range(h):
            for j in range(w):
                x = tf.constant(rng.uniform(0.5, 1.5, (1, 11, 9, 1)).astype("float32"))
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = sub(x)[0, i, j, 0]
                g = tape.gradient(y, x).numpy()[0, :, :, 0] != 0
                rows, cols = np.nonzero(g)
                truth = ((int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max()))) \
                    if len(rows) else (None, None)
                assert a[name].region(i, j, clip=True) == truth, (name, i, j, truth)
                checked += 1

    # Keras ResNet50 and MobileNetV2 against the GraphDef front-end on the same model
    for app, layer, op in (("ResNet50", "conv5_block3_out", "Relu"), ("MobileNetV2", "out_relu", "Relu6")):
        model = getattr(keras.applications, app)(weights=None, include_top=False, input_shape=(64, 64, 3))
        fn = tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec((1, 64, 64, 3)))
        graph_def = convert_variables_to_constants_v2(fn).graph.as_graph_def()  # weights as Const
        target = [n.name for n in graph_def.node if layer in n.name and n.op == op]
        assert len(target) == 1, target
        theirs = foveal.receptive_field(graph_def, (64, 64))[target[0]]
        ours = analyse(model)[layer]
        assert (ours.size, ours.stride, ours.padding) == (theirs.size, theirs.stride, theirs.padding), app
    print("checked", checked)
''')


def test_tensorflow_backend_in_a_subprocess() -> None:
    pytest.importorskip("tensorflow")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    start = time.time()
    done = subprocess.run([sys.executable, "-c", TF_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "checked" in done.stdout and time.time() - start < 300
