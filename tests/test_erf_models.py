"""The effective region (non-zero gradient) never leaves the analytic receptive field: torchvision
models, dilated, strided, transposed-convolution and upsampling stacks, and random small stacks.

On linear stacks with generic random weights no gradient cancels, so there the two are equal,
which checks foveal's analysis of the centre feature against autograd as well.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

from foveal.erf import effective_receptive_field  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def inside(inner, outer) -> bool:
    return all(o[0] <= i[0] and i[1] <= o[1] for i, o in zip(inner, outer))


@pytest.fixture(scope="module")
def torchvision():
    from torch_models import import_torchvision

    return import_torchvision()


@pytest.mark.parametrize(("name", "layer", "strict"), [
    ("resnet18", "layer1", True),
    ("resnet18", "layer2.0.conv1", True),
    ("mobilenet_v3_small", "features.0", True),
    ("mobilenet_v3_small", "features.3", False),  # after squeeze-excitation: global
])
def test_torchvision_effective_region_is_inside(torchvision, name: str, layer: str, strict: bool) -> None:
    model = torchvision.models.get_model(name)
    r = effective_receptive_field(model, layer, input_shape=(1, 3, 64, 64), samples=2, batch_size=2)
    assert r.analytic_box is not None and r.analytic_note is None, r.analytic_note
    assert r.effective_box is not None and inside(r.effective_box, r.analytic_box)
    whole = ((0, 63), (0, 63))
    assert (r.analytic_box != whole) == strict
    assert all(0 < x <= 1 for x in r.extent_ratio)


def test_replknet_protocol_on_a_torchvision_model(torchvision) -> None:
    model = torchvision.models.get_model("resnet18")
    r = effective_receptive_field(model, "layer1", input_shape=(1, 3, 48, 48), protocol="replknet", samples=3)
    assert r.weight_draws == 0 and r.effective_box is not None and inside(r.effective_box, r.analytic_box)
    sides = [a.side for a in r.area_ratios]
    assert r.normalised_map.max() == 1 and sides == sorted(sides)


STACKS = {
    "dilated": lambda: nn.Sequential(
        nn.Conv2d(1, 3, 3, dilation=2), nn.Conv2d(3, 3, 3, dilation=3), nn.Conv2d(3, 1, 2, dilation=(1, 4))),
    "strided": lambda: nn.Sequential(
        nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.Conv2d(3, 3, 4, stride=(2, 3)),
        nn.Conv2d(3, 1, 3, padding=(0, 2))),
    "transposed": lambda: nn.Sequential(
        nn.Conv2d(1, 3, 3, stride=2), nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1), nn.Conv2d(3, 1, 3)),
    "upsample nearest": lambda: nn.Sequential(
        nn.Conv2d(1, 3, 3, stride=2), nn.Upsample(scale_factor=2), nn.Conv2d(3, 1, 3)),
    "upsample bilinear": lambda: nn.Sequential(
        nn.Conv2d(1, 3, 3, stride=2), nn.Upsample(scale_factor=3, mode="bilinear"), nn.Conv2d(3, 1, 3)),
    "pooled": lambda: nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.AvgPool2d(3, stride=2), nn.Conv2d(3, 1, 3, padding=1)),
}


@pytest.mark.parametrize("kind", sorted(STACKS))
def test_linear_stacks_effective_equals_analytic(kind: str) -> None:
    model = STACKS[kind]()
    last = str(len(model) - 1)
    r = effective_receptive_field(model, last, input_shape=(1, 1, 31, 34), samples=2, batch_size=2)
    assert r.analytic_box is not None and r.analytic_box != ((0, 30), (0, 33))
    assert r.effective_box == r.analytic_box


@pytest.mark.parametrize("kind", sorted(STACKS))
def test_relu_stacks_effective_is_inside(kind: str) -> None:
    layers = list(STACKS[kind]())
    model = nn.Sequential(*[m for layer in layers for m in (layer, nn.ReLU())])
    r = effective_receptive_field(model, str(len(model) - 1), input_shape=(1, 1, 31, 34), samples=4,
                                  protocol="replknet", reinitialize=True)
    assert r.analytic_box is not None
    assert r.effective_box is None or inside(r.effective_box, r.analytic_box)


@st.composite
def stacks(draw):
    """A small 1-D stack: convolutions (kernel, stride, dilation, padding), transposed convolutions,
    max pooling and nearest upsampling, each followed by ReLU or not."""
    layers, channels = [], 1
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "tconv", "pool", "up"]))
        out = draw(st.integers(1, 3))
        k, s = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        if kind == "conv":
            d = draw(st.integers(1, 3))
            padding = draw(st.integers(0, (k - 1) * d))
            layers.append(nn.Conv1d(channels, out, k, stride=s, dilation=d, padding=padding))
            channels = out
        elif kind == "tconv":
            layers.append(nn.ConvTranspose1d(channels, out, k, stride=s, padding=draw(st.integers(0, k - 1))))
            channels = out
        elif kind == "pool":
            layers.append(nn.MaxPool1d(max(k, s), stride=s))
        else:
            layers.append(nn.Upsample(scale_factor=s))
        if draw(st.booleans()):
            layers.append(nn.ReLU())
    layers.append(nn.Conv1d(channels, 1, 1))
    return layers


def output_length(model: nn.Module, length: int) -> int:
    with torch.no_grad():
        try:
            return model(torch.zeros(1, 1, length)).shape[-1]
        except RuntimeError:  # too short for some layer
            return 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks(), st.integers(24, 48), st.sampled_from(["luo", "replknet"]))
def test_random_stacks_effective_is_inside_analytic(layers, length: int, protocol: str) -> None:
    model = nn.Sequential(*layers)
    if output_length(model, length) < 1:
        return
    r = effective_receptive_field(model, str(len(model) - 1), input_shape=(1, 1, length), samples=2,
                                  batch_size=2, protocol=protocol, reinitialize=True)
    if r.analytic_box is None:  # a transposed convolution's hole: the feature reads no input
        assert "does not depend on the input" in r.analytic_note and r.effective_box is None
    elif r.effective_box is not None:
        assert inside(r.effective_box, r.analytic_box), (r.effective_box, r.analytic_box)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks(), st.integers(24, 48))
def test_random_linear_stacks_effective_equals_analytic(layers, length: int) -> None:
    """Without ReLU and max pooling the gradient is input-independent and, for random weights,
    non-zero on every pixel the feature reads: the two regions coincide."""
    model = nn.Sequential(*[m for m in layers if not isinstance(m, (nn.ReLU, nn.MaxPool1d))])
    if output_length(model, length) < 1:
        return
    r = effective_receptive_field(model, str(len(model) - 1), input_shape=(1, 1, length), samples=1)
    assert r.effective_box == r.analytic_box, r.analytic_note
