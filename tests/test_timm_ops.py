"""timm's functional idioms through the PyTorch front-end, each against the NaN oracle
(`foveal.pytorch.verify`): reductions written as functions (one rule for norms, var, std,
logsumexp, rms_norm), F.unfold / F.fold as the windows they are, a statistic expanded back
(EvoNorm), batch statistics (NFNets' weight standardisation), RNNs over a spatial axis
(Sequencer); then the timm models that crashed or mis-sized, on the meta device."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torch_models as TM
from torch import nn

import foveal
from foveal.pytorch import verify


def image(size: int, channels: int = 3) -> tuple[int, int, int, int]:
    return (1, channels, size, size)


def agrees(model: nn.Module, shape: tuple[int, ...], capture: str = "auto", status: str = "exact"):
    """The output's status, and NaN injection agreeing with it at several positions."""
    analysis = foveal.receptive_field(model, shape, capture=capture)
    out = analysis.output
    assert out.status == status, (out.name, out.reasons)
    check = verify(model, shape, [out.name], capture=capture)
    assert check.agrees, check.summary()
    return out


class Stem(nn.Module):
    """A 3x3 conv, then `body` (a function of the feature map)."""

    def __init__(self, body, channels: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.conv(x))


def grn(x):  # ConvNeXt-V2's global response normalisation
    gx = torch.linalg.vector_norm(x, dim=(2, 3), keepdim=True)
    return x * (gx / gx.mean(dim=1, keepdim=True)) + x


def var_mean_sum(pair):
    return pair[0] + pair[1]


REDUCTIONS = {
    "linalg_vector_norm": (grn, "global"),
    "norm_over_w": (lambda x: x + x.norm(p=2, dim=3, keepdim=True), "rows"),
    "torch_norm": (lambda x: x * torch.norm(x, dim=(2, 3))[..., None, None], "global"),
    "var_mean": (lambda x: var_mean_sum(torch.var_mean(x, dim=2, keepdim=True)) + x, "columns"),
    "std": (lambda x: x * x.std(dim=(2, 3), keepdim=True), "global"),
    "var_unbiased_positional": (lambda x: x * torch.var(x, (2, 3), False, True), "global"),
    "logsumexp_channels": (lambda x: torch.logsumexp(x, 1, keepdim=True), "local"),
    "amax_channels_last": (lambda x: x.permute(0, 2, 3, 1).amax(dim=(1,), keepdim=True).permute(0, 3, 1, 2)
                           + x, "columns"),
    "rms_norm_channels": (lambda x: F.rms_norm(x.permute(0, 2, 3, 1), (4,)).permute(0, 3, 1, 2), "local"),
    "rms_norm_w": (lambda x: F.rms_norm(x, (x.shape[-1],)), "rows"),
    "batch_statistics": (lambda x: F.batch_norm(x, None, None, training=True), "global"),
    "instance_std_expand": (lambda x: x / x.var(dim=(2, 3), unbiased=False, keepdim=True).add(1e-5)
                            .sqrt().expand(x.shape), "global"),
}


@pytest.mark.parametrize("capture", ["fx", "export"])
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_over_dims(name: str, capture: str) -> None:
    """A reduction over dims is global on the spatial axes those dims hold, position-wise over
    channels only; keepdim and expand give the axis back."""
    body, reads = REDUCTIONS[name]
    out = agrees(Stem(body), image(8), capture)
    size = {"global": (8, 8), "rows": (3, 8), "columns": (8, 3), "local": (3, 3)}[reads]
    assert tuple(out.region(4, 4, clip=True)[k][1] - out.region(4, 4, clip=True)[k][0] + 1
                 for k in range(2)) == size


def test_rms_norm_module() -> None:
    model = Stem(nn.RMSNorm((8, 8)))
    out = agrees(model, image(8))
    assert out.global_


class UnfoldFold(nn.Module):
    """VOLO's outlook aggregation in miniature: windows out, a per-window mix, windows back."""

    def __init__(self, k: int, stride: int, padding: int, dilation: int = 1, modules: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.args = dict(kernel_size=k, stride=stride, padding=padding, dilation=dilation)
        self.unfold = nn.Unfold(**self.args) if modules else None
        self.fold = nn.Fold((8, 8), **self.args) if modules else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        cols = self.unfold(x) if self.unfold is not None else F.unfold(x, **self.args)
        cols = cols.sigmoid() * cols.mean(dim=1, keepdim=True)
        if self.fold is not None:
            return self.fold(cols)
        return F.fold(cols, (8, 8), **self.args)


@pytest.mark.parametrize("capture", ["fx", "export"])
@pytest.mark.parametrize("k, stride, padding, dilation, modules", [
    (3, 1, 1, 1, False), (3, 2, 1, 1, False), (2, 2, 0, 1, True), (3, 1, 2, 2, True)])
def test_unfold_then_fold(k: int, stride: int, padding: int, dilation: int, modules: bool,
                          capture: str) -> None:
    agrees(UnfoldFold(k, stride, padding, dilation, modules), image(8), capture)


def test_unfold_columns_are_windows() -> None:
    """Column l of F.unfold reads the window at grid position l (TNT's pixel embedding)."""

    class Pixels(nn.Module):
        def forward(self, x):
            cols = F.unfold(x, 4, stride=4)  # (N, C*16, 4) for an 8x8 input
            return cols.transpose(1, 2).reshape(x.shape[0], 2, 2, -1).permute(0, 3, 1, 2)

    out = agrees(Pixels(), image(8))
    assert out.region(1, 0) == ((4, 7), (0, 3))


def test_fold_of_columns_that_are_not_a_grid_is_unknown() -> None:
    class Wrong(nn.Module):
        def forward(self, x):
            return F.fold(x.flatten(2), (4, 16), 1)  # 8x8 tokens read as a 4x16 grid

    with pytest.raises(foveal.FovealError, match="fold"):
        foveal.receptive_field(Wrong(), image(8))


class Rows(nn.Module):
    """Sequencer's RNN along W: every row a sequence (the batch dim holds H)."""

    def __init__(self, bidirectional: bool, cell=nn.LSTM) -> None:
        super().__init__()
        self.rnn = cell(3, 4, batch_first=True, bidirectional=bidirectional)

    def forward(self, x):
        n, c, h, w = x.shape
        y, _ = self.rnn(x.permute(0, 2, 3, 1).reshape(n * h, w, c))
        return y.reshape(n, h, w, -1).permute(0, 3, 1, 2)


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU, nn.RNN])
def test_bidirectional_rnn_reads_its_row(cell) -> None:
    out = agrees(Rows(True, cell), image(6))
    assert out.region(2, 3, clip=True) == ((2, 2), (0, 5))


def test_unidirectional_rnn_is_a_bound() -> None:
    analysis = foveal.receptive_field(Rows(False), image(6))
    assert analysis.output.status == "bound"
    assert "unidirectional" in " ".join(analysis["rnn"].reasons)


# -- timm models ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def timm():
    return TM.import_timm()



EXACT_ON_META = ("convnextv2_atto", "dm_nfnet_f0", "sequencer2d_s", "bat_resnext26ts",
                 "vit_small_r26_s32_224", "regnetz_b16_evos", "resnetv2_50d_evos", "resnetv2_50d_frn",
                 "mvitv2_tiny", "efficientnet_cc_b0_4e", "efficientformerv2_s0", "mobilevitv2_050",
                 "halonet26t")
"""Models that crashed (internal exceptions, a mis-sized expand) or met an op without a handler
(linalg_vector_norm, LSTM, an exported slice assignment), at their default input size on the
meta device."""


@pytest.mark.parametrize("name", EXACT_ON_META)
def test_timm_model_on_meta(timm, name: str) -> None:
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    size = tuple(model.pretrained_cfg["input_size"])
    assert foveal.receptive_field(TM.features(model), (1, *size)).output.status == "exact"


@pytest.mark.parametrize("name", ["tnt_s_patch16_224", "volo_d1_224", "convit_tiny", "efficientformer_l1"])
def test_timm_model_on_meta_without_internal_error(timm, name: str) -> None:
    """No internal exception and no refusal of unfold / fold; class tokens and attention scores
    written by hand are followed elsewhere (an honest bound or refusal naming them)."""
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    size = tuple(model.pretrained_cfg["input_size"])
    try:
        status = foveal.receptive_field(TM.features(model), (1, *size)).output.status
    except foveal.FovealError as exc:
        assert not str(exc).startswith("internal") and "nfold" not in str(exc) \
            and "fold'" not in str(exc), str(exc)
    else:
        assert status in ("exact", "bound")


class Outlookers(nn.Module):
    """VOLO's patch embedding and outlook-attention stage (unfold, a per-window mix, fold)."""

    def __init__(self, volo: nn.Module) -> None:
        super().__init__()
        self.patch_embed, self.stage = volo.patch_embed, volo.network[0]

    def forward(self, x):
        return self.stage(self.patch_embed(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def test_volo_outlook_attention_against_nan_injection(timm) -> None:
    model = Outlookers(timm.create_model("volo_d1_224", pretrained=False, img_size=64))
    out = agrees(model, image(64))
    assert not out.global_


class ChannelGather(nn.Module):
    """A constant reordering of channels by a tensor index (CSATv2's zigzag)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.register_buffer("order", torch.tensor([5, 0, 3, 1]))

    def forward(self, x):
        return self.conv(x)[:, self.order]


def test_a_constant_channel_index_keeps_the_positions() -> None:
    assert agrees(ChannelGather(), image(12)).size == (3, 3)


class CondConv(nn.Module):
    """A conv whose weights are a function of the input's global pool, one set per sample
    (timm's CondConv2d: the batch folded into the groups)."""

    def __init__(self) -> None:
        super().__init__()
        self.route = nn.Linear(3, 2)
        self.experts = nn.Parameter(torch.rand(2, 4 * 3 * 3 * 3))

    def forward(self, x):
        B, C, H, W = x.shape
        weights = torch.sigmoid(self.route(x.mean((2, 3)))) @ self.experts
        y = F.conv2d(x.reshape(1, B * C, H, W), weights.view(B * 4, 3, 3, 3), padding=1, groups=B)
        return y.view(B, 4, H, W)


def test_weights_computed_from_a_global_pool_make_the_conv_global() -> None:
    assert agrees(CondConv(), image(12)).is_global == (True, True)


@pytest.mark.parametrize("name, kwargs, size", [
    ("mvitv2_tiny", {"img_size": 64}, 64),
    ("convnextv2_atto", {}, 32),
    ("regnetz_b16_evos", {}, 32),
    ("sequencer2d_s", {"img_size": 28, "layers": (1, 1, 1, 1)}, 28),
])
def test_timm_model_against_nan_injection(timm, name: str, kwargs: dict, size: int) -> None:
    model = timm.create_model(name, pretrained=False, **kwargs)
    agrees(TM.features(model), image(size))


class ScaledByMean(nn.Module):
    """y * y.mean(): a reduction over every dim (no dim given), captured by torch.export too."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return y * y.mean()


@pytest.mark.parametrize("capture", ["fx", "export"])
def test_a_reduction_over_every_dim(capture: str) -> None:
    assert agrees(ScaledByMean(), image(12), capture=capture).is_global == (True, True)


class RelativeLogits(nn.Module):
    """BotNet's relative-position logits over the 4 x 4 tokens of a 3 x 3 conv (stride 2)."""

    def __init__(self, pos_embed: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.pos_embed = pos_embed

    def forward(self, x):
        return self.pos_embed(self.conv(x).flatten(2).transpose(1, 2))


def test_relative_position_logits_read_their_query_token(timm) -> None:
    """logit (i, j) = q_i . rel[j - i]: each query token's row reads that token alone."""
    from timm.layers.bottleneck_attn import PosEmbedRel

    out = agrees(RelativeLogits(PosEmbedRel((4, 4), 8, 1.0)), image(8))
    assert out.size == (3, 3) and out.stride == (2, 2)


@pytest.mark.parametrize("name", ["botnet26t_256", "sebotnet33ts_256"])
def test_timm_botnet_on_meta(timm, name: str) -> None:
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    size = tuple(model.pretrained_cfg["input_size"])
    assert foveal.receptive_field(TM.features(model), (1, *size)).output.status == "exact"


class Halo(nn.Module):
    """timm's HaloAttn (blocks of 4 x 4 attending to their 6 x 6 neighbourhood, Tensor.unfold and
    relative-position logits) after a 1 x 1 conv, on a 16 x 12 map."""

    def __init__(self) -> None:
        super().__init__()
        from timm.layers.halo_attn import HaloAttn

        self.conv = nn.Conv2d(3, 8, 1)
        self.attn = HaloAttn(8, 8, num_heads=1, dim_head=8, block_size=4, halo_size=1)

    def forward(self, x):
        return self.attn(self.conv(x))


def test_halo_attention_reads_its_neighbourhood(timm) -> None:
    out = agrees(Halo().eval(), image(16)[:3] + (12,))
    assert out.region(5, 6) == ((3, 8), (3, 8))  # block (1, 1) and its halo of 1
