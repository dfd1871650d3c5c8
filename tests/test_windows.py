"""Window partitioning by view and permute (Swin, MaxViT, NesT...): the layout's pieces of split
axes (`foveal.layout.Piece`), what an op over some of them reads (`foveal.layout.mixed`), and
real and hand-written window attention against the NaN oracle at several output positions."""

from __future__ import annotations

import pytest

from foveal.layout import LayoutError, Merged, Piece, Reads, lengths, mixed, reshape, shrunk

# -- the layout model (core) -------------------------------------------------------------------

BHWC = (None, 0, 1, None)
SHAPE = (1, 56, 56, 96)


def _view(layout, shape, new_shape):
    return reshape(layout, shape, new_shape, lengths(layout, shape, 2), blocks=True)


def _permute(layout, order):
    return tuple(layout[d] for d in order)


def _windows(layout=BHWC, shape=SHAPE):
    """Swin's window_partition then the tokens of each window: (B * nW, 49, C)."""
    split = _view(layout, shape, (1, 8, 7, 8, 7, 96))
    blocks = _permute(split, (0, 1, 3, 2, 4, 5))
    windows = _view(blocks, (1, 8, 8, 7, 7, 96), (64, 7, 7, 96))
    return windows, _view(windows, (64, 7, 7, 96), (64, 49, 96))


def test_a_split_axis_is_its_block_and_its_position_in_the_block() -> None:
    split = _view(BHWC, SHAPE, (1, 8, 7, 8, 7, 96))
    assert split == (None, Piece(0, 7, 8), Piece(0, 1, 7), Piece(1, 7, 8), Piece(1, 1, 7), None)


def test_window_partition_puts_blocks_in_the_batch_and_positions_in_the_tokens() -> None:
    windows, tokens = _windows()
    assert windows[0] == Merged((0, 1), 0, True, ((Piece(0, 7, 8), 8), (Piece(1, 7, 8), 8)))
    assert windows[1:3] == (Piece(0, 1, 7), Piece(1, 1, 7))
    assert tokens[1] == Merged((0, 1), 0, True, ((Piece(0, 1, 7), 7), (Piece(1, 1, 7), 7)))
    assert lengths(tokens, (64, 49, 96), 2) == {0: 56, 1: 56}


def test_window_reverse_merges_the_pieces_back_into_the_axes() -> None:
    _, tokens = _windows()
    windows = _view(tokens, (64, 49, 96), (64, 7, 7, 96))
    blocks = _view(windows, (64, 7, 7, 96), (1, 8, 8, 7, 7, 96))
    assert blocks == (None, Piece(0, 7, 8), Piece(1, 7, 8), Piece(0, 1, 7), Piece(1, 1, 7), None)
    back = _permute(blocks, (0, 1, 3, 2, 4, 5))
    assert _view(back, (1, 8, 7, 8, 7, 96), (1, 56, 56, 96)) == BHWC


def test_pieces_merged_out_of_order_stay_flattened_tokens() -> None:
    split = _view(BHWC, SHAPE, (1, 8, 7, 8, 7, 96))
    swapped = _permute(split, (0, 2, 1, 3, 4, 5))  # (B, 7, 8, ...): position first, block second
    merged = _view(swapped, (1, 7, 8, 8, 7, 96), (1, 56, 56, 96))
    assert merged[1] == Merged((0,), 0, True, ((Piece(0, 1, 7), 7), (Piece(0, 7, 8), 8)))
    assert merged[2] == 1


def test_mixing_over_window_tokens_reads_the_block() -> None:
    _, tokens = _windows()
    assert mixed(tokens, (64, 49, 96), [1]) == (Reads(0, 1, 7, 56), Reads(1, 1, 7, 56))
    assert mixed(tokens, (64, 49, 96), [2]) == ()  # channels: position-wise


def test_mixing_over_block_indices_reads_a_residue_class() -> None:
    """MaxViT's grid: (B, g, H/g, ...) with the g blocks as tokens: p reads p mod H/g + k H/g."""
    grid = _view(BHWC, SHAPE, (1, 7, 8, 7, 8, 96))
    tokens = _permute(grid, (0, 2, 4, 1, 3, 5))
    assert mixed(tokens, (1, 8, 8, 7, 7, 96), [3, 4]) == (Reads(0, 8, 7, 56), Reads(1, 8, 7, 56))
    assert not any(r.whole for r in mixed(tokens, (1, 8, 8, 7, 7, 96), [3]))


def test_mixing_over_every_piece_reads_the_whole_axis() -> None:
    _, tokens = _windows()
    reads = mixed(tokens, (64, 49, 96), [0, 1])
    assert [r.whole for r in reads] == [True, True]


def test_middle_and_apart_pieces() -> None:
    three = _view(BHWC, SHAPE, (1, 2, 4, 7, 56, 96))
    assert mixed(three, (1, 2, 4, 7, 56, 96), [2]) == (Reads(0, 7, 4, 56),)
    with pytest.raises(LayoutError, match="not adjacent"):
        mixed(three, (1, 2, 4, 7, 56, 96), [1, 3])


def test_a_reduction_over_window_positions_leaves_the_blocks_as_the_axis() -> None:
    """Patch merging written as a view: the 2x2 positions flattened into channels, then a linear
    layer: one position per block, which the block index now is."""
    split = _view(BHWC, SHAPE, (1, 28, 2, 28, 2, 96))
    moved = _permute(split, (0, 1, 3, 2, 4, 5))
    flat = _view(moved, (1, 28, 28, 2, 2, 96), (1, 28, 28, 384))
    reads = mixed(flat, (1, 28, 28, 384), [3])
    assert reads == (Reads(0, 1, 2, 56), Reads(1, 1, 2, 56))
    assert shrunk(flat[:3] + (None,), reads) == BHWC


def test_without_blocks_a_split_is_still_refused() -> None:
    with pytest.raises(LayoutError, match="splits or regroups"):
        reshape(BHWC, SHAPE, (1, 8, 7, 8, 7, 96), {0: 56, 1: 56})


def test_blocks_regrouped_along_digits_and_across_them() -> None:
    split = _view(BHWC, SHAPE, (1, 8, 7, 56, 96))
    assert _view(split, (1, 8, 7, 56, 96), (1, 4, 14, 56, 96))[1:3] == (Piece(0, 14, 4), Piece(0, 1, 14))
    with pytest.raises(LayoutError, match="across blocks"):
        _view(split, (1, 8, 7, 56, 96), (1, 7, 8, 56, 96))


# -- the PyTorch front-end -----------------------------------------------------------------------

torch = pytest.importorskip("torch")
import torch_models as TM  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import foveal  # noqa: E402
from foveal.pytorch import verify  # noqa: E402


class WindowAttention(nn.Module):
    """Attention inside windows of w x w (or across a grid of w x w blocks), written with view and
    permute as timm writes it; `by_hand`: softmax(q k^T) v instead of the fused op."""

    def __init__(self, w: int, grid: bool = False, by_hand: bool = False) -> None:
        super().__init__()
        self.w, self.grid, self.by_hand = w, grid, by_hand
        self.embed = nn.Conv2d(3, 8, 1)
        self.qkv = nn.Linear(8, 24)

    def forward(self, x):
        x = self.embed(x).permute(0, 2, 3, 1)
        B, H, W, C = x.shape
        w = self.w
        if self.grid:
            x = x.view(B, w, H // w, w, W // w, C).permute(0, 2, 4, 1, 3, 5)
        else:
            x = x.view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5)
        q, k, v = self.qkv(x.reshape(-1, w * w, C)).chunk(3, dim=-1)
        if self.by_hand:
            y = (q @ k.transpose(-2, -1)).softmax(-1) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v)
        if self.grid:
            y = y.view(B, H // w, W // w, w, w, C).permute(0, 3, 1, 4, 2, 5)
        else:
            y = y.view(B, H // w, W // w, w, w, C).permute(0, 1, 3, 2, 4, 5)
        return y.reshape(B, H, W, C).permute(0, 3, 1, 2)


class PatchMerging(nn.Module):
    """2x2 patch merging written as a view: positions into channels, then a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.reduction = nn.Linear(12, 4)

    def forward(self, x):
        B, C, H, W = x.shape
        x = x.permute(0, 2, 3, 1).reshape(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5)
        return self.reduction(x.flatten(3))


def _agrees(model, shape, layers=None) -> int:
    """NaN-oracle check: no mismatch, and the number of layers compared."""
    result = verify(model, shape, layers, per_axis=6)
    assert not [c for c in result.layers.values() if c.mismatches], result.summary()
    return sum(1 for c in result.layers.values() if c.checked)


def test_window_attention_reads_its_window() -> None:
    model = WindowAttention(4).eval()
    result = foveal.receptive_field(model, (1, 3, 16, 8))
    assert result.output.status == "exact"
    assert result.output.region(0, 0) == ((0, 3), (0, 3))
    assert result.output.region(5, 7) == ((4, 7), (4, 7))
    assert result.output.region(15, 4) == ((12, 15), (4, 7))
    assert _agrees(model, (1, 3, 16, 8), [result.output_name]) == 1


def test_grid_attention_reads_a_residue_class() -> None:
    """(B, w, H/w, w, W/w, C) with the w x w grid as tokens: rows i mod 4 (H/w = 4), columns
    j mod 2 (W/w = 2), across the whole image."""
    model = WindowAttention(4, grid=True).eval()
    result = foveal.receptive_field(model, (1, 3, 16, 8))
    assert result.output.status == "exact"
    assert result.output.region(0, 0, clip=True) == ((0, 12), (0, 6))
    assert result.output.region(6, 5, clip=True) == ((2, 14), (1, 7))
    assert _agrees(model, (1, 3, 16, 8), [result.output_name]) == 1


@pytest.mark.parametrize("grid", [False, True])
def test_window_attention_by_hand_reads_its_window(grid: bool) -> None:
    """softmax(q k^T) v: the scores' key dim reads every key of the window, exactly."""
    model = WindowAttention(4, grid=grid, by_hand=True).eval()
    result = foveal.receptive_field(model, (1, 3, 16, 8))
    assert result.output.status == "exact"
    assert result.output.region(5, 7, clip=True) == (((1, 13), (1, 7)) if grid else ((4, 7), (4, 7)))
    assert _agrees(model, (1, 3, 16, 8), [result.output_name]) == 1


def test_patch_merging_by_view_is_a_two_by_two_window() -> None:
    model = PatchMerging().eval()
    result = foveal.receptive_field(model, (1, 3, 8, 8))
    assert result.output.status == "exact"
    assert result.output.region(2, 3) == ((4, 5), (6, 7))
    assert result.output.size == (2, 2) and result.output.stride == (2, 2)
    assert _agrees(model, (1, 3, 8, 8), [result.output_name]) == 1


def test_a_conv_over_the_block_indices_is_refused() -> None:
    class ConvOverBlocks(nn.Module):
        def forward(self, x):
            B, C, H, W = x.shape
            x = x.view(B, C, H // 4, 4, W // 4, 4).permute(0, 1, 3, 5, 2, 4)
            x = x.reshape(B, C * 16, H // 4, W // 4)
            return F.avg_pool2d(x, 2)

    with pytest.raises(foveal.FovealError, match="blocks of a split axis"):
        foveal.receptive_field(ConvOverBlocks(), (1, 3, 16, 16))


# -- timm ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def timm():
    return TM.import_timm()



def _fused(model):
    """timm's attention through scaled_dot_product_attention (Swin's default writes it by hand)."""
    for m in model.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = True
    return model


def _blocks(result, prefix: str) -> list[str]:
    return [n for n in result.graph.nodes if n.startswith(prefix) and n.count(".") <= 4
            and "/" not in n and result[n].status == "exact"]


@pytest.mark.parametrize("fused", [False, True])
def test_timm_swin_regions_per_window(timm, fused: bool) -> None:
    """Swin as timm writes it (scores by hand, relative position bias, shift mask) and fused."""
    model = TM.features(timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, img_size=56,
                                       window_size=7, embed_dim=16, num_heads=(1, 1, 1, 1),
                                       depths=(2, 2, 1, 1)).eval())
    if fused:
        model = _fused(model)
    result = foveal.receptive_field(model, (1, 3, 56, 56))
    assert result.output.status == "exact"
    first = result["inner.layers.0.blocks.0"]  # 14 x 14 tokens of 4 x 4 pixels, windows of 7
    assert first.region(0, 0) == ((0, 27), (0, 27))
    assert first.region(7, 13) == ((28, 55), (28, 55))
    shifted = result["inner.layers.0.blocks.1"]  # rolled windows over the first windows: all
    assert shifted.region(4, 4, clip=True) == ((0, 55), (0, 55))
    assert shifted.region(13, 13, clip=True) == ((0, 55), (0, 55))
    assert _agrees(model, (1, 3, 56, 56), _blocks(result, "inner.layers.")) >= 6


def test_timm_maxvit_block_and_grid_attention(timm) -> None:
    from timm.models.maxxvit import MaxxVit, MaxxVitCfg, MaxxVitConvCfg, MaxxVitTransformerCfg

    cfg = MaxxVitCfg(embed_dim=(16, 32), depths=(1, 1), block_type=("M", "M"), stem_width=16,
                     conv_cfg=MaxxVitConvCfg(expand_ratio=1.0, attn_layer=""),
                     transformer_cfg=MaxxVitTransformerCfg(dim_head=8, expand_ratio=1.0,
                                                           window_size=(4, 4), grid_size=(2, 2)))
    model = TM.features(_fused(MaxxVit(cfg, img_size=64).eval()))
    result = foveal.receptive_field(model, (1, 3, 64, 64))
    assert result.output.status == "exact"
    block = result["inner.stages.0.blocks.0.attn_block"]
    assert block.region(0, 0, clip=True)[0] != block.region(4, 4, clip=True)[0]
    grid = result["inner.stages.0.blocks.0.attn_grid"]
    assert grid.region(0, 0, clip=True) == ((0, 49), (0, 49))
    assert _agrees(model, (1, 3, 64, 64), _blocks(result, "inner.stages.")) >= 6


class ContextVector(nn.Module):
    """MobileViT-v2's linear attention on (B, C, P, N) patches of 2 x 2 (P: the position in the
    patch, N: the patch): a statistic over N (`over_patches`: each position reads its residue
    class) or over P (each reads its patch), kept with keepdim and expanded back."""

    def __init__(self, over_patches: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.dim = -1 if over_patches else -2

    def forward(self, x):
        x = self.conv(x)
        B, C, H, W = x.shape
        t = x.reshape(B, C, H // 2, 2, W // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(B, C, 4, -1)
        context = (t.softmax(self.dim) * t).sum(self.dim, keepdim=True)
        y = t * context.expand_as(t)
        return y.reshape(B, C, 2, 2, H // 2, W // 2).permute(0, 1, 4, 2, 5, 3).reshape(B, C, H, W)


@pytest.mark.parametrize("over_patches", [True, False])
def test_a_statistic_over_pieces_expanded_back(over_patches: bool) -> None:
    model = ContextVector(over_patches).eval()
    result = foveal.receptive_field(model, (1, 3, 16, 12))
    assert result.output.status == "exact"
    if over_patches:  # rows of the same parity, over the whole image
        assert result.output.region(5, 4, clip=True) == ((0, 15), (0, 11))
    else:  # its 2 x 2 patch and the 3 x 3 conv around it
        assert result.output.region(5, 4, clip=True) == ((3, 6), (3, 6))
    assert _agrees(model, (1, 3, 16, 12), [result.output_name]) == 1


class OpInWindows(nn.Module):
    """A window op run on the (B * windows, C, w, w) windows of a 4 x 4 partition, then the
    windows put back: `pool` (2 x 2, stride 2: SAM2-Hiera's query pooling) or a 3 x 3 depthwise
    conv (EfficientViT-M's cascaded group attention), which the window's border clips."""

    def __init__(self, pool: bool) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 4, 1)
        self.op = nn.MaxPool2d(2, 2) if pool else nn.Conv2d(4, 4, 3, padding=1, groups=4)

    def forward(self, x):
        x = self.embed(x)
        B, C, H, W = x.shape
        t = x.view(B, C, H // 4, 4, W // 4, 4).permute(0, 2, 4, 1, 3, 5).reshape(-1, C, 4, 4)
        t = self.op(t)
        w = t.shape[-1]
        t = t.view(B, H // 4, W // 4, C, w, w).permute(0, 3, 1, 4, 2, 5)
        return t.reshape(B, C, H // 4 * w, W // 4 * w)


def test_a_pool_that_tiles_the_windows_is_the_pool_on_the_axis() -> None:
    model = OpInWindows(pool=True).eval()
    result = foveal.receptive_field(model, (1, 3, 16, 8))
    assert result.output.status == "exact"
    assert result.output.output_shape == (8, 4) and result.output.size == (2, 2)
    assert _agrees(model, (1, 3, 16, 8), [result.output_name]) == 1


def test_a_conv_inside_windows_is_an_unclipped_bound() -> None:
    result = foveal.receptive_field(OpInWindows(pool=False).eval(), (1, 3, 16, 8))
    assert result.output.status == "bound"
    assert any("clip" in r for r in result[result.output_name].reasons + result["op"].reasons)
    assert result["op"].region(4, 4) == ((3, 5), (3, 5))  # exactly (4, 5): clipped at the window


class SpaceToDepth(nn.Module):
    """TResNet's stem: 4 x 4 blocks into the channels by view / permute, then a 3 x 3 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(48, 8, 3, padding=1)

    def forward(self, x):
        N, C, H, W = x.shape
        x = x.view(N, C, H // 4, 4, W // 4, 4).permute(0, 3, 5, 1, 2, 4)
        return self.conv(x.reshape(N, C * 16, H // 4, W // 4))


def test_space_to_depth_then_conv_is_a_pixel_unshuffle() -> None:
    model = SpaceToDepth().eval()
    result = foveal.receptive_field(model, (1, 3, 16, 8))
    assert result.output.status == "exact"
    assert result.output.size == (12, 12) and result.output.stride == (4, 4)
    assert _agrees(model, (1, 3, 16, 8), [result.output_name]) == 1


class PooledQueries(nn.Module):
    """Mask-unit attention with pooled queries (Hiera): units of 4 x 4, queries max-pooled 2 x 2
    inside each unit, keys and values every token of the unit; the output on the pooled grid."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 1)
        self.qkv = nn.Linear(8, 24)

    def forward(self, x):
        x = self.embed(x).permute(0, 2, 3, 1)
        B, H, W, C = x.shape
        u = x.view(B, H // 4, 2, 2, W // 4, 2, 2, C).permute(0, 1, 4, 3, 6, 2, 5, 7)
        q, k, v = self.qkv(u.reshape(B, H // 4 * (W // 4), 4, 4, C)).chunk(3, dim=-1)
        q = q.amax(dim=2)  # over the 2 x 2 positions inside each quarter of a unit
        y = F.scaled_dot_product_attention(q, k.flatten(2, 3), v.flatten(2, 3))
        y = y.view(B, H // 4, W // 4, 2, 2, C).permute(0, 1, 3, 2, 4, 5)
        return y.reshape(B, H // 2, W // 2, C).permute(0, 3, 1, 2)


def test_pooled_queries_read_their_mask_unit() -> None:
    model = PooledQueries().eval()
    result = foveal.receptive_field(model, (1, 3, 16, 8))
    assert result.output.status == "exact" and result.output.output_shape == (8, 4)
    assert result.output.region(0, 0) == ((0, 3), (0, 3))
    assert result.output.region(3, 3) == ((4, 7), (4, 7))
    assert _agrees(model, (1, 3, 16, 8), [result.output_name]) == 1


class GlobalQuery(nn.Module):
    """GCViT's global query: the image pooled to one window's grid (4 x 4), the same queries for
    every 4 x 4 window, against that window's keys and values (attention written by hand)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 1)
        self.q = nn.Linear(8, 8)
        self.kv = nn.Linear(8, 16)

    def forward(self, x):
        x = self.embed(x)
        B, C, H, W = x.shape
        n = (H // 4) * (W // 4)
        g = self.q(F.adaptive_avg_pool2d(x, 4).flatten(2).transpose(1, 2))  # (B, 16, C)
        t = x.permute(0, 2, 3, 1).reshape(B, H // 4, 4, W // 4, 4, C).permute(0, 1, 3, 2, 4, 5)
        k, v = self.kv(t.reshape(B * n, 16, C)).chunk(2, dim=-1)
        q = g.unsqueeze(1).expand(B, n, 16, C).reshape(B * n, 16, C)
        y = (q @ k.transpose(-2, -1)).softmax(-1) @ v
        y = y.view(B, H // 4, W // 4, 4, 4, C).permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)
        return y.permute(0, 3, 1, 2)


def test_a_global_query_is_tiled_over_the_windows() -> None:
    """Position (5, 6) is (1, 2) in window (1, 1): the window's 4 x 4 and query (1, 2), which
    pools rows 4-7 and columns 4-5."""
    model = GlobalQuery().eval()
    result = foveal.receptive_field(model, (1, 3, 16, 8))
    assert result.output.status == "exact"
    assert result.output.region(5, 6, clip=True) == ((4, 7), (4, 7))
    assert result.output.region(9, 1, clip=True) == ((4, 11), (0, 3))  # (1, 1) in window (2, 0)
    assert _agrees(model, (1, 3, 16, 8), [result.output_name]) == 1
