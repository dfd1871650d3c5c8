"""torch.einsum under torch.fx (`foveal.pytorch.einsum`): a label the output keeps keeps its
positions, a summed feature label reads no other position, a summed spatial label reads its
whole axis; what the labels cannot say (attention scores) goes through torch.export. Checked
against NaN injection on the real model (`verify`)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import foveal
from foveal.pytorch import convert, verify

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SHAPE = (1, 3, 20, 20)


class Einsum(nn.Module):
    """A 3x3 conv, then one einsum (`case`), then a 3x3 conv so that the field shows."""

    def __init__(self, case: str) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.weight = nn.Parameter(torch.randn(4, 4))
        self.table = nn.Parameter(torch.randn(20, 20, 4))
        self.case = case

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a(x)
        if self.case == "channels":  # a 1x1 convolution
            x = torch.einsum("bchw,oc->bohw", x, self.weight)
        elif self.case == "two operands":
            x = torch.einsum("bchw,bchw->bhw", x, x.sigmoid()).unsqueeze(1).expand(-1, 4, -1, -1)
        elif self.case == "relative positions":  # MViTv2's, on a (B, H, W, C) map
            r = torch.einsum("bhwc,hkc->bhwk", x.permute(0, 2, 3, 1), self.table)
            x = r.permute(0, 3, 1, 2)[:, :4]
        elif self.case == "windows":  # SAM's: relative positions inside 5 x 5 windows
            w = x.permute(0, 2, 3, 1).reshape(-1, 4, 5, 4, 5, 4).permute(0, 1, 3, 2, 4, 5)
            w = w.reshape(-1, 5, 5, 4)  # (B * windows, 5, 5, C)
            r = torch.einsum("bhwc,hkc->bhwk", w, self.table[:5, :5])[..., :4]
            r = r.reshape(-1, 4, 4, 5, 5, 4).permute(0, 1, 3, 2, 4, 5).reshape(-1, 20, 20, 4)
            x = r.permute(0, 3, 1, 2)
        elif self.case == "ellipsis":
            x = torch.einsum("...chw,oc->...ohw", x, self.weight)
        elif self.case == "summed rows":  # every output row reads every input row
            x = torch.einsum("bchw->bcw", x).unsqueeze(2).expand(-1, -1, 20, -1)
        elif self.case == "attention":
            t = x.flatten(2)
            x = torch.einsum("bcq,bck->bqk", t, t).softmax(-1)
            x = torch.einsum("bqk,bck->bcq", x, t).view(-1, 4, 20, 20)
        return self.b(x)


@pytest.mark.parametrize(("case", "size"), [("channels", 5), ("two operands", 5), ("relative positions", 5),
                                            ("windows", 5), ("ellipsis", 5)])
def test_einsum_keeps_positions(case: str, size: int) -> None:
    torch.manual_seed(0)
    model = Einsum(case).eval()
    assert convert(model, SHAPE, capture="fx").captured.method == "fx"
    out = foveal.receptive_field(model, SHAPE, capture="fx").output
    assert out.status == "exact", out.reasons
    assert out.size == (size, size)
    check = verify(model, SHAPE, [out.name])
    assert check.agrees, check.summary()


def test_a_summed_spatial_label_reads_its_whole_axis() -> None:
    torch.manual_seed(0)
    model = Einsum("summed rows").eval()
    out = foveal.receptive_field(model, SHAPE, capture="fx").output
    assert out.status == "exact", out.reasons
    assert out.is_global == (True, False) and out.size[1] == 5
    check = verify(model, SHAPE, [out.name])
    assert check.agrees, check.summary()


def test_attention_written_as_einsum_goes_through_export() -> None:
    torch.manual_seed(0)
    model = Einsum("attention").eval()
    with pytest.raises(foveal.FovealError, match="an einsum that pairs positions of one axis in two dims"):
        foveal.receptive_field(model, SHAPE, capture="fx")
    analysis = foveal.receptive_field(model, SHAPE)
    assert analysis.output.status == "exact", analysis.output.reasons
    check = verify(model, SHAPE, [analysis.output.name])
    assert check.agrees, check.summary()
