"""PyTorch front-end on real models: torchvision, a U-Net, WaveNet/TCN, r3d_18, bad input.

The oracle is `foveal.pytorch.verify`: NaN injection on the real model, independent of the
analytic code (it only reads which outputs turn NaN).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch_models as TM  # noqa: E402

import foveal  # noqa: E402
from foveal.pytorch import CaptureError, verify  # noqa: E402

tv = TM.import_torchvision()

ALL_CLASSIFIERS = tv.models.list_models(module=tv.models)


def image(size: int) -> tuple[int, int, int, int]:
    return (1, 3, size, size)


@pytest.mark.parametrize("name", ALL_CLASSIFIERS)
def test_every_torchvision_classifier_analyses(name: str) -> None:
    model = TM.torchvision_model(name)
    size = 299 if name == "inception_v3" else 224
    a = foveal.receptive_field(model, image(size))
    out = a.output
    assert out.status == "exact", (out.name, out.reasons)
    assert all(r.status == "exact" for r in a), [r.name for r in a if r.status != "exact"]
    # the classifier reads the whole image (SqueezeNet's stem drops the last row and column)
    region = out.region(0, 0, clip=True)
    assert all(region[k][0] == 0 and region[k][1] >= size - 2 for k in range(2)), region


def test_maxvit_block_and_grid_attention_verify() -> None:
    """A small MaxViT (torchvision's classes): window attention reads its p x p block, grid
    attention its residue class mod p on each axis; NaN injection measures every layer."""
    from torchvision.models.maxvit import MaxVit

    model = MaxVit(input_size=(32, 32), stem_channels=8, partition_size=2, block_channels=[8, 16],
                   block_layers=[1, 1], head_dim=4, stochastic_depth_prob=0.0, num_classes=10)
    check = verify(model, image(32), per_axis=6)
    assert check.agrees, check.summary()
    assert {"blocks.0.layers.0.layers.window_attention", "blocks.1.layers.0.layers.grid_attention"} \
        <= set(check.layers)


def test_readme_pytorch_example() -> None:
    from test_readme import python_blocks, run_block

    block = next(b for b in python_blocks() if "torchvision" in b)
    assert run_block(block) == 1


def test_golden_resnet_values() -> None:
    r50 = foveal.receptive_field(TM.torchvision_model("resnet50"), image(224))
    assert r50["layer4"].size == (427, 427) and r50["layer4"].stride == (32, 32)
    r18 = foveal.receptive_field(TM.torchvision_model("resnet18"), image(224))
    assert r18["layer4"].size == (435, 435) and r18["layer4"].stride == (32, 32)
    assert r18["layer4.1.conv2"].size == (435, 435)
    assert r18["layer1"].size == (43, 43)


VERIFIED = [
    ("resnet18", {}, 64, ["conv1", "maxpool", "layer1", "layer2.0", "layer3", "layer4", "avgpool"]),
    ("resnet50", {}, 64, ["layer1.0.conv2", "layer2", "layer4"]),
    ("vgg16", {}, 48, ["features.4", "features.16", "features"]),
    ("densenet121", {}, 64, ["features.denseblock1", "features.transition2", "features.denseblock3"]),
    ("inception_v3", {"aux_logits": False, "init_weights": False}, 96,
     ["Conv2d_4a_3x3", "Mixed_5b", "Mixed_6a", "Mixed_7c"]),
    ("googlenet", {"aux_logits": False, "init_weights": False}, 64,
     ["maxpool1", "inception3a", "inception4e", "inception5b"]),
    ("mobilenet_v2", {}, 64, ["features.3", "features.10", "features"]),
    ("mobilenet_v3_small", {}, 64, ["features.2", "features.6", "features"]),
    ("efficientnet_b0", {}, 64, ["features.2", "features.5", "features"]),
    ("regnet_x_400mf", {}, 64, ["stem", "trunk_output.block2", "trunk_output"]),
    ("convnext_tiny", {}, 64, ["features.1", "features.3", "features"]),
    ("shufflenet_v2_x0_5", {}, 64, ["stage2", "stage3", "conv5"]),
    ("swin_t", {}, 64, ["features.0", "features.1.0", "features.1.1", "features.3", "features"]),
    ("vit_b_16", {"image_size": 32}, 32, ["conv_proj", "encoder.layers.encoder_layer_0", "encoder"]),
]


@pytest.mark.parametrize("name, kwargs, size, layers", VERIFIED, ids=[v[0] for v in VERIFIED])
def test_analytic_equals_measured(name: str, kwargs: dict, size: int, layers: list[str]) -> None:
    model = TM.torchvision_model(name, **kwargs)
    result = verify(model, image(size), layers)
    for check in result.layers.values():
        assert check.agrees, (check.layer, check.note, check.mismatches[:3])


def test_verify_catches_a_wrong_handler() -> None:
    """The oracle can fail: a 5x5 conv claimed to be 3x3 (same output size) is caught."""
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 5, padding=2), torch.nn.ReLU())
    wrong = {torch.nn.Conv2d: foveal.conv(3, padding=1)}
    result = verify(model, (1, 1, 16, 16), ["0"], handlers=wrong)
    assert not result.agrees and result["0"].mismatches


def test_segmentation_models() -> None:
    for name, layers in (("fcn_resnet50", ["backbone.layer4", "classifier"]),
                         ("deeplabv3_resnet50", ["backbone.layer3", "backbone.layer4"]),
                         ("lraspp_mobilenet_v3_large", ["backbone.4", "backbone.16", "classifier"])):
        model = TM.torchvision_model(name, weights_backbone=None, aux_loss=None) \
            if name != "lraspp_mobilenet_v3_large" else TM.torchvision_model(name, weights_backbone=None)
        a = foveal.receptive_field(model, image(64))
        assert all(r.status == "exact" for r in a), name
        result = verify(model, image(64), layers)
        for check in result.layers.values():
            assert check.agrees, (name, check.layer, check.note, check.mismatches[:3])
    # dilated ResNet: stride stays 8 through layer3 and layer4
    dl = foveal.receptive_field(TM.torchvision_model("deeplabv3_resnet50", weights_backbone=None),
                                image(224))
    assert dl["backbone.layer4"].stride == (8, 8)


def test_fpn_levels_of_faster_rcnn() -> None:
    model = TM.torchvision_model("fasterrcnn_resnet50_fpn", weights_backbone=None).backbone
    a = foveal.receptive_field(model, image(256))
    strides = {}
    for level, node in zip(("0", "1", "2", "3"), ("fpn.layer_blocks.0", "fpn.layer_blocks.1",
                                                   "fpn.layer_blocks.2", "fpn.layer_blocks.3")):
        strides[level] = a[node].stride
    assert strides == {"0": (4, 4), "1": (8, 8), "2": (16, 16), "3": (32, 32)}
    # each level also sees the coarser ones through the top-down path: larger RF than its own
    assert a["fpn.layer_blocks.0"].size[0] > a["body.layer1"].size[0]
    result = verify(model, image(64), ["fpn.layer_blocks.0", "fpn.layer_blocks.3", "body.layer2"])
    assert result.agrees, result.summary()


def test_unet_with_transposed_convolutions_per_phase() -> None:
    model = TM.UNet()
    a = foveal.receptive_field(model, (1, 1, 32, 32))
    assert a["up2"].period == (2, 2)  # after a stride-2 transposed conv, two phases
    result = verify(model, (1, 1, 32, 32), ["up2", "dec2", "up1", "dec1"], per_axis=32)
    assert result.agrees, result.summary()


def test_wavenet_causal_context() -> None:
    model = TM.WaveNet()
    a = foveal.receptive_field(model, (1, 1, 64))
    out = a.output
    assert out.size == (16,)  # 1 + (2-1)*(1+2+4+8)
    first, last = out.region(40)[0]
    assert (40 - first, last - 40) == (15, 0)  # 15 samples of past context, no lookahead
    assert verify(model, (1, 1, 64), per_axis=64).agrees


def test_tcn_lookahead() -> None:
    a = foveal.receptive_field(TM.TCN(), (1, 2, 50))
    first, last = a.output.region(20)[0]
    assert (20 - first, last - 20) == (7, 7)
    assert verify(TM.TCN(), (1, 2, 50), per_axis=50).agrees


def test_r3d_18_video() -> None:
    model = TM.torchvision_model("r3d_18")
    a = foveal.receptive_field(model, (1, 3, 16, 112, 112))
    assert a.axes == ("D", "H", "W")
    assert a["layer4"].stride == (8, 16, 16)
    result = verify(model, (1, 3, 8, 32, 32), ["stem", "layer2", "layer4"], per_axis=3)
    assert result.agrees, result.summary()


# -- ops and honesty ---------------------------------------------------------------------------


def test_grid_sample_is_unavailable_not_identity() -> None:
    a = foveal.receptive_field(TM.GridSampler(), image(16))
    out = a.output
    assert out.status == "unavailable" and out.size == (None, None)
    assert any("depend on the data" in r for r in out.reasons)


def test_unknown_op_names_op_and_module_path() -> None:
    with pytest.raises(foveal.UnsupportedOpError) as err:
        foveal.receptive_field(TM.WithOpaque(), image(16))
    assert "block._opaque" in str(err.value) and "_opaque" in str(err.value)
    assert "handlers=" in str(err.value)
    a = foveal.receptive_field(TM.WithOpaque(), image(16), unknown_policy="identity")
    assert a.unsupported_ops == {"torch_models._opaque": 1}
    assert a.output.status == "bound"
    # a handler makes it exact: a horizontal flip reads one pixel per output
    b = foveal.receptive_field(TM.WithOpaque(), image(16), handlers={TM.Opaque: foveal.elementwise()})
    assert b.output.status == "exact" and b.output.size == (3, 3)


def test_ops_coverage_small_models() -> None:
    """Each op family on a tiny model, against the NaN oracle."""
    nn, F = torch.nn, torch.nn.functional

    class Mix(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.reflect = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
            self.same = nn.Conv2d(4, 4, 4, padding="same", dilation=2)
            self.circ = nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular", groups=4)
            self.pool = nn.MaxPool2d(3, 2, 1, dilation=1, ceil_mode=True)
            self.lp = nn.LPPool2d(2, 2)
            self.shuffle = nn.PixelShuffle(2)
            self.unshuffle = nn.PixelUnshuffle(2)
            self.tconv = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)
            self.adapt = nn.AdaptiveAvgPool2d((5, 3))

        def forward(self, x):
            y = self.circ(self.same(self.reflect(x)))
            y = F.pad(y, (1, 0, 2, 0), mode="replicate")
            y = self.pool(y)
            y = self.unshuffle(self.shuffle(y))
            y = self.tconv(y)
            y = y[:, :, 1:, ::2]
            w = torch.cat([y, y.roll(3, dims=-1)], dim=1)
            return self.adapt(w), self.lp(y)

    model = Mix()
    a = foveal.receptive_field(model, image(23))
    assert all(r.status == "exact" for r in a)
    result = verify(model, image(23), ["reflect", "same", "circ", "pool", "shuffle", "tconv",
                                       "adapt", "lp"], per_axis=25)
    for check in result.layers.values():
        assert check.agrees, (check.layer, check.note, check.mismatches[:3])


@pytest.mark.parametrize("mode, align, size, scale", [
    ("nearest", None, None, 2), ("nearest", None, (7, 9), None), ("nearest-exact", None, (7, 9), None),
    ("bilinear", False, None, 2), ("bilinear", True, None, 2), ("bilinear", False, (7, 9), None),
    ("bilinear", True, (29, 31), None), ("bicubic", False, (7, 9), None), ("bicubic", True, None, 3),
    ("area", None, (5, 4), None)])
def test_interpolate_against_gradients(mode, align, size, scale) -> None:
    """Resize is linear, so the gradient's non-zero set is exactly what a feature reads (NaN
    injection would also count taps whose weight is exactly zero, which foveal does not)."""
    F = torch.nn.functional

    class Up(torch.nn.Module):
        def forward(self, x):
            return F.interpolate(x, size=size, scale_factor=scale, mode=mode, align_corners=align)

    shape = (1, 1, 12, 21)
    a = foveal.receptive_field(Up(), shape)
    out = a.output
    x = torch.rand(shape, requires_grad=True)
    y = Up()(x)
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            (grad,) = torch.autograd.grad(y[0, 0, i, j], x, retain_graph=True)
            rows = torch.nonzero(grad[0, 0].abs().sum(1)).flatten().tolist()
            cols = torch.nonzero(grad[0, 0].abs().sum(0)).flatten().tolist()
            assert out.region(i, j, clip=True) == ((rows[0], rows[-1]), (cols[0], cols[-1])), (i, j)


def test_linear_on_last_axis_is_global_along_w_only() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.Linear(20, 6))
    a = foveal.receptive_field(model, (1, 3, 10, 20))
    out = a.output
    assert out.is_global == (False, True)
    assert out.size[0] == 3 and out.region(4, 0, clip=True) == ((3, 5), (0, 19))


def test_attention_is_global_over_tokens() -> None:
    class Attn(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Conv2d(3, 8, 4, stride=4)
            self.qkv = torch.nn.Linear(8, 24)

        def forward(self, x):
            t = self.embed(x).flatten(2).transpose(1, 2)  # (N, tokens, C)
            q, k, v = self.qkv(t).chunk(3, dim=-1)
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    a = foveal.receptive_field(Attn(), image(16))
    assert a["embed"].size == (4, 4)
    assert a.output.is_global == (True, True)
    assert a.output.status == "exact"


class ScoresByHand(torch.nn.Module):
    """softmax(t t^T) t over the 4 x 4 tokens of a stride-4 patch embedding; `pick` selects
    some key columns of the scores before the softmax."""

    def __init__(self, pick: bool = False) -> None:
        super().__init__()
        self.embed = torch.nn.Conv2d(3, 8, 4, stride=4)
        self.pick = pick

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        scores = t @ t.transpose(-2, -1)
        if self.pick:
            return scores[..., :3].softmax(-1).sum(-1, keepdim=True) * t
        return scores.softmax(-1) @ t


def test_hand_written_attention_scores_read_every_key() -> None:
    """scores[i, j] reads query token i and key token j; the node's region is the union over
    its key dim (a feature dim, as channels are), which is exact, and so is the softmax after."""
    a = foveal.receptive_field(ScoresByHand(), image(16))
    assert a["embed"].status == "exact"
    assert a["matmul"].status == "exact" and a["matmul"].is_global == (True, True)
    assert a.output.status == "exact" and a.output.is_global == (True, True)
    assert verify(ScoresByHand(), image(16), [a.output_name]).agrees


def test_selecting_some_keys_of_hand_written_scores_is_a_bound() -> None:
    a = foveal.receptive_field(ScoresByHand(pick=True), image(16))
    assert a.output.status == "bound"
    assert any("some keys of attention scores" in r for r in a["getitem"].reasons)


# -- bad input ---------------------------------------------------------------------------------


def test_data_dependent_control_flow_says_why() -> None:
    with pytest.raises(CaptureError, match="could not trace.*options"):
        foveal.receptive_field(TM.DataDependentBranch(), image(8))


def test_wrong_rank_and_missing_shape() -> None:
    model = TM.torchvision_model("resnet18")
    with pytest.raises(foveal.InvalidParameterError, match="rank 6"):
        foveal.receptive_field(model, (1, 3, 2, 2, 2, 2))
    # rank 2 is a raw signal, (N, L): an image model fails on it, naming the shape
    with pytest.raises(CaptureError, match=r"shape \(3, 224\) failed"):
        foveal.receptive_field(model, (3, 224))
    with pytest.raises(foveal.FovealError, match="needs input_shape"):
        foveal.receptive_field(model)


def test_input_too_small() -> None:
    with pytest.raises(foveal.FovealError, match="too small|input size|failed"):
        foveal.receptive_field(TM.torchvision_model("vgg16"), image(16))


def test_weights_are_never_read() -> None:
    """A model on the meta device has no data at all, and the analysis still works."""
    model = TM.torchvision_model("resnet18")
    assert next(model.parameters()).device.type == "meta"
    assert foveal.receptive_field(model, image(224))["layer4"].size == (435, 435)


def test_cli_factory() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [sys.executable, "-m", "foveal.cli", "analyze", "tests.torch_models:resnet18",
         "--input-shape", "1,3,224,224", "--output-node", "layer4"],
        cwd=root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    line = next(x for x in run.stdout.splitlines() if x.startswith("layer4 "))
    assert "435x435" in line and "32x32" in line
    bad = subprocess.run(
        [sys.executable, "-m", "foveal.cli", "analyze", "tests.torch_models:resnet18",
         "--input-shape", "1,3,224,224", "--kwargs", "{oops"],
        cwd=root, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr and "Traceback" not in bad.stderr


def test_a_model_in_training_mode_is_captured_in_eval_mode_and_left_as_it_was() -> None:
    """torchvision builds models in training mode; batch norm there needs more than one value per
    channel, which a 1x1 map with batch 1 does not have. The modes come back after capture."""
    model = TM.torchvision_model("resnet18").train()
    model.layer4.eval()
    a = foveal.receptive_field(model, (1, 3, 32, 32))
    assert a["layer4.1.bn2"].output_shape == (1, 1)
    assert model.training and model.layer1.training and not model.layer4.training


@pytest.mark.parametrize("pool, length", [
    (torch.nn.MaxPool1d(3, 3, ceil_mode=True), 2),  # the one window sticks out past the end
    (torch.nn.AvgPool1d(5, 2, 1, ceil_mode=True), 3),
    (torch.nn.MaxPool1d(4, 3, 1, dilation=1, ceil_mode=True), 2),
])
def test_ceil_mode_window_larger_than_the_input(pool, length: int) -> None:
    model = torch.nn.Sequential(torch.nn.Conv1d(1, 1, 1), pool)
    a = foveal.receptive_field(model, (1, 1, length))  # the capture checks every size against torch
    assert a.output.output_shape == tuple(model(torch.zeros(1, 1, length)).shape[2:])
    assert verify(model, (1, 1, length), per_axis=length).agrees


class _Halving(torch.nn.ReLU):
    """A ReLU subclass whose forward changes the shape: it must run, not be assumed elementwise."""

    def forward(self, x):
        return torch.relu(x[..., ::2])


def test_modules_assumed_elementwise_are_only_the_stock_ones() -> None:
    model = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), _Halving(), torch.nn.BatchNorm1d(2),
                                torch.nn.ReLU6())
    a = foveal.receptive_field(model, (1, 1, 21), handlers={_Halving: foveal.crop(step=2)})
    assert a.output.output_shape == tuple(model(torch.zeros(1, 1, 21)).shape[2:]) == (10,)
    wrong = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(3))
    with pytest.raises(CaptureError, match="running the model on a meta tensor"):
        foveal.receptive_field(wrong, (1, 1, 8, 8))


# -- handlers= and ops without a handler -------------------------------------------------------


class _Flip(torch.nn.Module):
    def forward(self, x):
        return torch.flip(x, dims=[-1])


class _Flips(torch.nn.Module):
    """A flip as a module, a function and a tensor method: one op for each table."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3)
        self.flip = _Flip()

    def forward(self, x):
        x = self.flip(self.conv(x))
        x = torch.flip(x, dims=[-2])
        return x.flip(-1)


UNHANDLED_FLIPS = {"torch._VariableFunctionsClass.flip": 2, "Tensor.flip": 1}
"""By the name of the unknown node each became (torch.flip is a builtin of that class)."""


def test_ops_without_a_handler_are_counted_by_name() -> None:
    from foveal.pytorch import convert

    builder = convert(_Flips(), (1, 1, 8, 8), capture="fx")
    assert builder.unhandled == UNHANDLED_FLIPS
    assert not convert(torch.nn.Conv2d(1, 1, 3), (1, 1, 8, 8)).unhandled


def test_handlers_extend_each_table_for_one_call() -> None:
    """A module class, a function and a tensor-method name each go to their own table, for
    that call only: the defaults stay as they were."""
    from foveal.pytorch import convert
    from foveal.pytorch.tables import TABLES

    handlers = {_Flip: foveal.elementwise(), torch.flip: foveal.elementwise(), "flip": foveal.elementwise()}
    builder = convert(_Flips(), (1, 1, 8, 8), handlers=handlers, capture="fx")
    assert not builder.unhandled
    assert builder.graph.nodes["flip"].label == "_Flip"  # the module captured whole
    a = foveal.receptive_field(_Flips(), (1, 1, 8, 8), handlers=handlers)
    assert a.output.status == "exact" and a.output.size == (3, 3)
    assert not (TABLES.modules.extras or TABLES.functions.extras or TABLES.methods.extras)
    assert convert(_Flips(), (1, 1, 8, 8), capture="fx").unhandled == UNHANDLED_FLIPS


def test_one_handler_serves_every_name_of_an_op() -> None:
    """torch.roll, Tensor.roll and aten.roll share one handler; softmax's likewise."""
    from foveal.pytorch.aten import ATEN
    from foveal.pytorch.functional import FUNCTIONS, METHODS, OPS

    for name in ("roll", "softmax"):
        assert FUNCTIONS[getattr(torch, name)] is METHODS[name] is OPS[name]
    assert FUNCTIONS[torch.nn.functional.softmax] is OPS["softmax"]
    assert set(ATEN.defaults) >= {"roll", "softmax", "_softmax"}


# -- raw signals -------------------------------------------------------------------------------


class _AddChannel(torch.nn.Module):
    """A wav2vec2-style front: the model takes (N, L) and adds its own channel dim."""

    def forward(self, x):
        return x.unsqueeze(1)


def test_a_raw_signal_model_takes_n_by_l() -> None:
    def convs() -> list[torch.nn.Module]:
        return [torch.nn.Conv1d(1, 8, 10, stride=5), torch.nn.Conv1d(8, 8, 3, stride=2)]

    raw = foveal.receptive_field(torch.nn.Sequential(_AddChannel(), *convs()), (1, 16000))
    channels_first = foveal.receptive_field(torch.nn.Sequential(*convs()), (1, 1, 16000))
    out, reference = raw.output, channels_first.output
    assert out.status == "exact" and out.size == (20,) and out.stride == (10,)
    assert (out.size, out.stride, out.padding, out.output_shape) == (
        reference.size, reference.stride, reference.padding, reference.output_shape) == (
        (20,), (10,), (0,), (1599,))
    assert verify(torch.nn.Sequential(_AddChannel(), *convs()), (1, 120)).agrees
