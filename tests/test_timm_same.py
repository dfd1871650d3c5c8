"""timm's TensorFlow-'same' convolutions and pools (Conv2dSame, StdConv2dSame, MaxPool2dSame,
AvgPool2dSame) compute their padding from the input's size with Python's max(), which torch.fx
cannot trace; foveal keeps them whole under fx and pads as they do (`timm_ops.py`), so models
built from them (NASNet, PNASNet, the tf_ EfficientNets) need no torch.export. Checked against
the NaN oracle on every layer, at sizes where the odd pixel of padding falls after."""

from __future__ import annotations

import importlib

import pytest
import torch
import torch_models as TM
from torch import nn

from foveal.pytorch import convert, verify

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def timm():
    return TM.import_timm()


def _layers(timm):
    conv = importlib.import_module("timm.layers.conv2d_same")
    pool = importlib.import_module("timm.layers.pool2d_same")
    std = importlib.import_module("timm.layers.std_conv")
    return conv, pool, std


@pytest.mark.parametrize("shape", [(1, 3, 13, 17), (1, 3, 16, 16), (1, 3, 9, 24)])
def test_same_padding_blocks_follow_the_oracle(timm, shape):
    conv, pool, std = _layers(timm)
    torch.manual_seed(0)
    model = nn.Sequential(
        conv.Conv2dSame(3, 4, 3, stride=2),
        pool.MaxPool2dSame(3, stride=2),
        std.StdConv2dSame(4, 4, 4, stride=1, padding="same"),
        pool.AvgPool2dSame(2, stride=2),
        conv.Conv2dSame(4, 4, 3, stride=1, dilation=2),
    ).eval()
    builder = convert(model, shape)
    assert builder.captured.method == "fx"
    assert not builder.unhandled
    check = verify(model, shape)
    assert check.agrees, check.summary()


def test_nasnet_is_captured_by_fx(timm):
    with torch.device("meta"):
        model = timm.create_model("nasnetalarge", pretrained=False).eval()
    builder = convert(model, (1, 3, 64, 64))
    assert builder.captured.method == "fx"
    assert not builder.unhandled
