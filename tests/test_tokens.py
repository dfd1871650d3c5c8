"""Token sequences with extra tokens (class, distillation, register) and attention between grids
of different sizes, through the PyTorch front-end.

A token dim holds the extra tokens, then the flattened grid. Slicing, concatenating and indexing
keep the grid tokens' own regions; an extra token reads nothing until it attends to the grid,
and every position after. Keys and values on a coarser grid than the queries (spatial-reduction
attention) are read whole by every query position. The oracle is `foveal.pytorch.verify` (NaN
injection on the real model, every token position checked through the token dim's layout).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch_models as TM  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import foveal  # noqa: E402
from foveal.pytorch import verify  # noqa: E402


def image(size: int) -> tuple[int, int, int, int]:
    return (1, 3, size, size)


def checked(model: nn.Module, shape: tuple[int, ...], status: str = "exact"):
    """The output's analysis, NaN injection agreeing with it at several positions."""
    analysis = foveal.receptive_field(model, shape)
    out = analysis.output
    assert out.status == status, (out.name, out.reasons)
    if status == "exact":
        check = verify(model, shape, [out.name])
        assert check.agrees, check.summary()
    return analysis


class Tokens(nn.Module):
    """A 4x4 patch embedding, `extra` learnt tokens before the 16 grid tokens, then `body`."""

    def __init__(self, body, extra: int = 2, dim: int = 8) -> None:
        super().__init__()
        self.body = body
        self.embed = nn.Conv2d(3, dim, 4, stride=4)
        self.extra = nn.Parameter(torch.rand(1, extra, dim))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.mix = nn.Conv2d(dim, dim, 3, padding=1)

    def grid(self, x):
        t = self.embed(x)
        return t.flatten(2).transpose(1, 2), t.shape

    def forward(self, x):
        t, shape = self.grid(x)
        t = torch.cat((self.extra.expand(t.shape[0], -1, -1), t), dim=1)
        return self.body(self, t, shape)


def attend(m, t):
    q, k, v = m.qkv(t).chunk(3, dim=-1)
    return F.scaled_dot_product_attention(q, k, v)


def back_to_grid(t, shape):
    return t.transpose(1, 2).reshape(shape)


def test_slicing_off_the_extra_tokens_keeps_the_grid() -> None:
    a = checked(Tokens(lambda m, t, s: back_to_grid(t[:, 2:], s)), image(16))
    assert a.output.size == (4, 4) and a.output.region(1, 2) == ((4, 7), (8, 11))


def test_the_token_dim_with_extra_tokens_is_checked_token_by_token() -> None:
    """CoaT's convolutional position encoding: extra tokens and grid split, the grid convolved,
    then put back after the extra tokens; foveal's regions are the grid tokens'."""

    def cpe(m, t, s):
        extra, grid = t[:, :2], t[:, 2:]
        grid = m.mix(back_to_grid(grid, s)).flatten(2).transpose(1, 2)
        return torch.cat((extra, grid), dim=1) + t

    a = checked(Tokens(cpe), image(16))
    assert a.output.size == (12, 12) and not any(a.output.is_global)


def test_an_extra_token_reads_nothing_until_it_attends() -> None:
    """Before attention a class token is a constant: the sum reads grid token 5 only, (1, 1)."""
    a = checked(Tokens(lambda m, t, s: t[:, 0] + t[:, 2 + 5]), image(16))
    assert a.output.region(0, 0) == ((4, 7), (4, 7))
    after = checked(Tokens(lambda m, t, s: attend(m, t)[:, 1]), image(16))
    assert after.output.is_global == (True, True)


def test_a_slice_of_extra_tokens_after_attention_is_global() -> None:
    a = checked(Tokens(lambda m, t, s: attend(m, t)[:, :2]), image(16))
    assert a.output.is_global == (True, True)
    grid = checked(Tokens(lambda m, t, s: back_to_grid(attend(m, t)[:, 2:], s)), image(16))
    assert grid.output.is_global == (True, True)


def test_a_class_token_that_attended_joins_a_local_grid() -> None:
    """CaiT's class attention on a grid that did not attend: the class token reads everything,
    the grid tokens next to it keep their own regions."""

    def class_attention(m, t, s):
        grid = t[:, 2:]
        q, k, v = m.qkv(t).chunk(3, dim=-1)
        cls = F.scaled_dot_product_attention(q[:, :1], k, v)  # one query: the class token
        joined = torch.cat((cls, grid), dim=1)
        return joined, back_to_grid(joined[:, 1:], s), joined[:, 0]

    model = Tokens(class_attention)
    a = foveal.receptive_field(model, image(16))
    joined, grid, cls = (a[n] for n in ("cat@2", "reshape", "getitem@3"))
    assert joined.status == grid.status == cls.status == "exact"
    assert joined.size == grid.size == (4, 4) and cls.is_global == (True, True)
    check = verify(model, image(16), ["cat@2", "reshape", "getitem@3"])
    assert check.agrees, check.summary()


def test_zero_tokens_padded_before_the_grid_are_extra_tokens() -> None:
    """CoaT's relative position encoding pads a zero row for the class token."""

    def crpe(m, t, s):
        grid = m.mix(back_to_grid(t[:, 2:], s)).flatten(2).transpose(1, 2)
        return F.pad(grid, (0, 0, 2, 0, 0, 0)) * t

    a = checked(Tokens(crpe), image(16))
    assert a.output.size == (12, 12)


def test_a_slice_that_cuts_the_grid_is_refused() -> None:
    with pytest.raises(foveal.UnsupportedOpError, match="cuts the grid"):
        foveal.receptive_field(Tokens(lambda m, t, s: t[:, 1:9]), image(16))


# -- attention between grids of different sizes --------------------------------------------------


class Reduced(nn.Module):
    """Spatial-reduction attention (PVT v2): queries on the 4x4 grid, keys and values on the 2x2
    grid a stride-2 conv makes of it; by scaled_dot_product_attention or by hand."""

    def __init__(self, by_hand: bool, dim: int = 8) -> None:
        super().__init__()
        self.by_hand = by_hand
        self.embed = nn.Conv2d(3, dim, 4, stride=4)
        self.sr = nn.Conv2d(dim, dim, 2, stride=2)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)

    def forward(self, x):
        g = self.embed(x)
        t = g.flatten(2).transpose(1, 2)
        k, v = self.kv(self.sr(g).flatten(2).transpose(1, 2)).chunk(2, dim=-1)
        q = self.q(t)
        if self.by_hand:
            y = (q @ k.transpose(-2, -1)).softmax(-1) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v)
        return back_to_grid(y + t, g.shape)


def test_attention_with_keys_on_a_coarser_grid() -> None:
    """The output lives on the query grid and reads every position."""
    a = checked(Reduced(by_hand=False), image(16))
    assert a.output.is_global == (True, True) and a.output.output_shape == (4, 4)


def test_hand_written_attention_with_keys_on_a_coarser_grid() -> None:
    a = checked(Reduced(by_hand=True), image(16))
    assert a.output.is_global == (True, True) and a.output.output_shape == (4, 4)


# -- timm models -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def timm():
    return TM.import_timm()



@pytest.mark.parametrize("name, kwargs, size", [
    ("vit_tiny_patch16_224", {"img_size": 32, "depth": 2, "reg_tokens": 2}, 32),
    ("deit_tiny_distilled_patch16_224", {"img_size": 32, "depth": 2}, 32),
    ("pit_ti_224", {"img_size": 64}, 64),
    ("coat_lite_tiny", {"img_size": 64}, 64),
    ("xcit_nano_12_p16_224", {"img_size": 64, "depth": 2}, 64),
    ("eva02_tiny_patch14_224", {"img_size": 28, "depth": 2}, 28),
    ("pvt_v2_b0", {}, 64),
    ("cait_xxs24_224", {"img_size": 32, "depth": 2, "depth_token_only": 1}, 32),
    ("levit_128s", {"img_size": 64}, 64),
])
def test_timm_tokens_against_nan_injection(timm, name: str, kwargs: dict, size: int) -> None:
    """Every module output NaN injection can compare (the exact ones) agrees with foveal."""
    model = TM.features(timm.create_model(name, pretrained=False, **kwargs))
    a = foveal.receptive_field(model, image(size))
    assert a.output.status == "exact", a.output.reasons
    nodes = {r.name for r in a}
    layers = [n for n, _ in model.named_modules() if n in nodes] + [a.output.name]
    check = verify(model, image(size), dict.fromkeys(layers), per_axis=3)
    compared = [c for c in check.layers.values() if c.checked]
    assert len(compared) > 5 and all(not c.mismatches for c in compared), check.summary()
    assert check[a.output.name].agrees


@pytest.mark.parametrize("name, status", [
    ("crossvit_tiny_240", "exact"), ("mobilenetv4_hybrid_medium", "exact"),
    ("cait_xxs24_224", "exact"), ("levit_128s", "exact"),
])
def test_timm_tokens_on_meta(timm, name: str, status: str) -> None:
    """At the default size (CaiT's and LeViT's attention scores are written by hand)."""
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    size = tuple(model.pretrained_cfg["input_size"])
    out = foveal.receptive_field(TM.features(model), (1, *size)).output
    assert out.status == status, out.reasons
    assert out.is_global == (True, True)


class TokenPool(nn.Module):
    """NextViT's spatial reduction: AvgPool1d(k, k) over the flattened 8 x 8 tokens, then the
    pooled tokens viewed back as their (rows, columns) grid."""

    def __init__(self, k: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 4, 2, stride=2)
        self.pool = nn.AvgPool1d(k, k)
        self.grid = grid

    def forward(self, x):
        g = self.embed(x)
        return self.pool(g.flatten(2)).unflatten(2, self.grid)


@pytest.mark.parametrize("k, window", [(4, (1, 4)), (16, (2, 8))])
def test_a_pool_over_flattened_tokens_is_a_window_on_the_axes(k: int, window: tuple[int, int]) -> None:
    a = checked(TokenPool(k, (8 // window[0], 8 // window[1])), image(16))
    assert a.output.size == (2 * window[0], 2 * window[1])


class TokenSpans(nn.Module):
    """AvgPool1d(24, 24) over 8 x 8 flattened tokens: two pooled tokens, each 3 rows long (the
    last 16 tokens dropped), as NextViT pools its keys and values before attention."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 4, 2, stride=2)
        self.pool = nn.AvgPool1d(24, 24)

    def forward(self, x):
        return self.pool(self.embed(x).flatten(2))


def test_windows_that_straddle_rows_read_the_rows_they_reach() -> None:
    a = checked(TokenSpans(), image(16))
    assert a.output.region(0, 0, clip=True) == ((0, 11), (0, 15))
