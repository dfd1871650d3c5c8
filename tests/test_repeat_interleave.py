"""repeat_interleave under torch.fx: over a dim without a spatial axis (channels here; GCViT
repeats its global query over the windows of the batch, checked in tests/timm_families.py) the
positions stay; over a spatial dim each position is repeated in a row, nearest upsampling.
Checked against the NaN oracle (which uses the batch for its own probes, so the batch case is
checked on GCViT itself)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import foveal
from foveal.pytorch import convert, verify

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Repeats(nn.Module):
    """conv 3x3, then repeat_interleave along `dim` by 2, then conv 3x3."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.c1 = nn.Conv2d(3, 4, 3)
        self.c2 = nn.Conv2d(8 if dim == 1 else 4, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(self.c1(x).repeat_interleave(2, dim=self.dim))


@pytest.mark.parametrize("dim, size", [(1, (5, 5)), (2, (4, 5)), (-1, (5, 4))])
def test_repeat_interleave_is_followed_by_fx(dim: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = Repeats(dim).eval()
    shape = (1, 3, 12, 12)
    assert convert(model, shape, capture="fx").captured.method == "fx"
    out = foveal.receptive_field(model, shape, capture="fx").output
    assert out.status == "exact", out.reasons
    assert out.size == size
    check = verify(model, shape, [out.name])
    assert check.agrees, check.summary()


def test_a_flattening_repeat_is_not_followed() -> None:
    class Flat(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.repeat_interleave(2)

    with pytest.raises(foveal.UnsupportedOpError, match="repeat_interleave"):
        foveal.receptive_field(Flat(), (1, 3, 8, 8), capture="fx")
