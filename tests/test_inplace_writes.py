"""In-place writes under torch.fx (`foveal.pytorch.writes`): fx records `x.add_(y)` but keeps
later reads of x on the node before the write, and refuses `x[i] = y`. foveal follows both, so
the fx route gives what PyTorch computes; a write seen through a view goes through torch.export.
Every case is checked against NaN injection on the real model (`verify`)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

import foveal
from foveal.pytorch import CaptureError, convert, verify

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SHAPE = (1, 3, 24, 24)


class TwoConvs(nn.Module):
    """A 3x3 conv `a`, then a 5x5 conv `b` on it; `write` says how b's output reaches a's."""

    def __init__(self, write: str) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 5, padding=2)
        self.write = write

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a(x)
        y = self.b(x)
        kept = x
        if self.write == "add_":
            x.add_(y)
        elif self.write == "+=":  # `kept` is x: it sees the write too
            x += y
            return kept
        elif self.write == "channels":
            x[:, :2] = y[:, :2]
        elif self.write == "all":
            x[...] = y
        elif self.write == "relu inplace":
            x = x + F.relu(y, inplace=True) * 0 + y  # y written by relu, then read again
        elif self.write == "through a view":
            v = x[:, :2]
            v.mul_(y[:, :2])  # writes into x
        elif self.write == "copy_":
            x.copy_(y)
        elif self.write == "clamp_ then add_":  # a method without an entry of its own
            x.clamp_(min=0).add_(y.clamp_min_(0))
        elif self.write == "zero_ then add_":
            x.zero_().add_(y)
        elif self.write == "mask":
            x[y.round().bool()] = 0.0
        elif self.write == "spatial part":
            x[:, :, :4] = y[:, :, :4]
        return x


@pytest.mark.parametrize("write", ["add_", "+=", "channels", "all", "relu inplace", "copy_",
                                   "clamp_ then add_", "zero_ then add_"])
def test_a_write_is_followed_under_fx(write: str) -> None:
    """Each write brings b's 7x7 field into the output, where fx's graph alone says 3x3."""
    torch.manual_seed(0)
    model = TwoConvs(write).eval()
    builder = convert(model, SHAPE, capture="fx")
    assert builder.captured.method == "fx"
    out = foveal.receptive_field(model, SHAPE).output
    assert out.status == "exact", out.reasons
    assert out.size == (7, 7)
    check = verify(model, SHAPE, [out.name])
    assert check.agrees, check.summary()


def test_fx_alone_misses_the_write() -> None:
    """The reason for all this: torch.fx's graph returns the node before `add_`."""
    graph = fx.symbolic_trace(TwoConvs("add_")).graph
    output = next(n for n in graph.nodes if n.op == "output")
    assert output.args[0].target == "a"


def test_a_write_through_a_view_goes_through_export() -> None:
    torch.manual_seed(0)
    model = TwoConvs("through a view").eval()
    with pytest.raises(CaptureError, match=r"writes into a tensor that .* reads afterwards through a view"):
        convert(model, SHAPE, capture="fx")
    analysis = foveal.receptive_field(model, SHAPE)
    assert analysis.output.size == (7, 7)
    check = verify(model, SHAPE, [analysis.output.name])
    assert check.agrees, check.summary()


@pytest.mark.parametrize(("write", "why"), [("spatial part", "an item assignment into part of a dimension"),
                                           ("mask", "an item assignment through a multi-dimensional index")])
def test_a_write_into_part_of_a_spatial_axis_is_unknown(write: str, why: str) -> None:
    """Part of the map from b, the rest from a (or as a mask of values picks): no one receptive
    field; the policy applies."""
    with pytest.raises(foveal.FovealError, match=why):
        foveal.receptive_field(TwoConvs(write), SHAPE, capture="fx")
    out = foveal.receptive_field(TwoConvs(write), SHAPE, capture="fx", unknown_policy="global").output
    assert out.status == "bound"


class CachesOnItself(nn.Module):
    """Stores a tensor computed in forward on itself (as timm's LeViT caches its attention
    biases, and ConViT rebuilds a buffer for the input's token count)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.register_buffer("grid", torch.zeros(1, 1, 1, 1), persistent=False)
        self.cache: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grid.shape[-1] != x.shape[-1]:
            self.grid = torch.zeros(1, 1, x.shape[-2], x.shape[-1])
            self.grid[..., 0] = 1.0
        self.cache[str(x.device)] = self.conv.weight.sum()
        return self.conv(x) + self.grid + self.cache[str(x.device)]


def test_nothing_traced_stays_on_the_model() -> None:
    """The analysis leaves no fx proxy on the module: forward runs afterwards as before."""
    torch.manual_seed(0)
    model = CachesOnItself().eval()
    out = foveal.receptive_field(model, (1, 3, 8, 8)).output
    assert out.size == (3, 3) and out.status == "exact"
    left = [(name, key) for name, m in model.named_modules() for key, value in vars(m).items()
            if isinstance(value, fx.Proxy)
            or (isinstance(value, dict) and any(isinstance(v, fx.Proxy) for v in value.values()))]
    assert left == []
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 8, 8)


class SizesAsArguments(nn.Module):
    """Sizes read from a traced tensor passed where PyTorch wants ints (fx's proxies are refused
    there): `torch.ones(B, N)` and a buffer's `expand(n, -1, 1)`."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.register_buffer("scale", torch.ones(4), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        b, c, h, w = x.shape
        ones = torch.ones(b, c, device=x.device)
        scale = self.scale[None, :, None].expand(b, -1, 1)
        return x * (ones[:, :, None] * scale).view(b, c, 1, 1)


def test_sizes_passed_as_ints_trace_with_fx() -> None:
    torch.manual_seed(0)
    model = SizesAsArguments().eval()
    builder = convert(model, SHAPE, capture="fx")
    assert builder.captured.method == "fx"
    out = foveal.receptive_field(model, SHAPE).output
    assert out.size == (3, 3) and out.status == "exact"
    check = verify(model, SHAPE, [out.name])
    assert check.agrees, check.summary()
