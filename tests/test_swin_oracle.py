"""torchvision's Swin (v1 and v2) position by position against the NaN oracle.

Window attention makes regions depend on where a token sits: tokens of one window share their
window's region, shifted windows (rolled by half a window) join neighbouring windows, and where
the roll wraps real tokens (no padding) the first and last tokens of an axis read each other.
The checks cover every token of the first stage on both axes (positions inside one window and in
different windows), then every stage's output. The default suite builds torchvision's own
SwinTransformer classes at width 16; the real swin_t and swin_v2_t run under the slow marker.
"""

from __future__ import annotations

import pytest
import torch_models as TM

import foveal
from foveal.pytorch import verify
from foveal.pytorch.load import build

STAGES = ["features.1.0", "features.1.1", "features.1", "features.3.0", "features.3", "features.5",
          "features.7", "features"]


def narrow_swin(version: int, window: int):
    """torchvision's SwinTransformer (v2: its V2 block and patch merging) at width 16, one head."""
    TM.import_torchvision()
    from torchvision.models import swin_transformer as swin

    kwargs = dict(patch_size=[4, 4], embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 1, 1, 1],
                  window_size=[window, window])
    if version == 2:
        kwargs.update(block=swin.SwinTransformerBlockV2, downsample_layer=swin.PatchMergingV2)
    return build("torchvision.models.swin_transformer:SwinTransformer", kwargs).eval()


def square(first: int, last: int) -> tuple[tuple[int, int], tuple[int, int]]:
    return ((first, last), (first, last))


def test_swin_v1_windows_and_wrapped_shifted_windows() -> None:
    """112 x 112: 28 x 28 tokens of 4 x 4 pixels, four windows of 7 per axis, no padding, so the
    shifted windows (roll by 3) put tokens 25..27 with tokens 0..3."""
    model = narrow_swin(1, 7)
    result = foveal.receptive_field(model, (1, 3, 112, 112))
    assert all(result[n].status == "exact" for n in STAGES)
    plain = result["features.1.0"]
    assert [plain.region(i, i) for i in (0, 6, 7, 13, 14, 27)] == [
        square(0, 27), square(0, 27), square(28, 55), square(28, 55), square(56, 83), square(84, 111)]
    assert plain.region(0, 7) == ((0, 27), (28, 55))
    shifted = result["features.1.1"]  # windows of tokens 3..9, 10..16, 17..23 and 24..27 + 0..2
    assert [shifted.region(i, i, clip=True) for i in (0, 2, 3, 9, 10, 17, 23, 24)] == [
        square(0, 111), square(0, 111), square(0, 55), square(0, 55), square(28, 83),
        square(56, 111), square(56, 111), square(0, 111)]
    check = verify(model, (1, 3, 112, 112), STAGES, per_axis=28)
    assert check.agrees, check.summary()
    assert check["features.1.0"].checked == 2 * 28


def test_swin_v2_windows_with_padding() -> None:
    """112 x 112 with windows of 8: 28 tokens padded to 32, so the shifted windows (roll by 4)
    meet only padding at the wrap; the second stage (14 tokens, padded to 16) is still local."""
    model = narrow_swin(2, 8)
    result = foveal.receptive_field(model, (1, 3, 112, 112))
    assert all(result[n].status == "exact" for n in STAGES)
    plain = result["features.1.0"]
    assert [plain.region(i, i, clip=True) for i in (0, 7, 8, 24, 27)] == [
        square(0, 31), square(0, 31), square(32, 63), square(96, 111), square(96, 111)]
    shifted = result["features.1.1"]  # windows of tokens 4..11, 12..19, 20..27 and 0..3
    assert [shifted.region(i, i, clip=True) for i in (0, 3, 4, 11, 12, 20, 27)] == [
        square(0, 31), square(0, 31), square(0, 63), square(0, 63), square(32, 95),
        square(64, 111), square(64, 111)]
    second = result["features.3.0"]
    assert second.region(0, 0, clip=True) == square(0, 95)
    assert second.region(13, 13, clip=True) == square(32, 111)
    check = verify(model, (1, 3, 112, 112), STAGES, per_axis=28)
    assert check.agrees, check.summary()
    assert check["features.3.0"].checked == 2 * 14


@pytest.mark.slow
@pytest.mark.parametrize("name", ["swin_t", "swin_v2_t"])
def test_torchvision_swin_every_stage(name: str) -> None:
    """The real models at 64 x 64: 16 x 16 tokens, windows of 7 (v1, padded to 21) or 8 (v2)."""
    model = TM.torchvision_model(name)
    result = foveal.receptive_field(model, (1, 3, 64, 64))
    assert all(result[n].status == "exact" for n in ["features.0", "features.2", *STAGES])
    window = 7 if name == "swin_t" else 8
    first = result["features.1.0"]
    assert first.region(0, 0) == first.region(window - 1, window - 1) == square(0, 4 * window - 1)
    assert first.region(window, window)[0][0] == 4 * window
    check = verify(model, (1, 3, 64, 64), ["features.0", "features.2", *STAGES], per_axis=16)
    assert check.agrees, check.summary()
