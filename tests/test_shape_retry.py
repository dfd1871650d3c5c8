"""Control flow on sizes under torch.fx: when the plain trace refuses a branch, a second trace whose
proxies carry their meta values decides branches, `len`, `int()` and iteration on sizes at the
analysed shape (timm's CrossViT, BAT, CPUBone). A branch on tensor values still refuses fx and
takes the route it took before (torch.export, then the CPU run)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

import foveal
from foveal.pytorch import CaptureError, convert, verify

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class SizeBranches(nn.Module):
    """conv 3x3; a 2x2 max pool when the map is wider than 8 (its kernel from the size); a 3x3
    conv when the map is 8 wide: an 8x8 receptive field from a 16x16 input, 5x5 from 8x8."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c1(x)
        if x.shape[-1] != 8:
            x = F.max_pool2d(x, x.shape[-1] // 8)
        assert len(x.shape) == 4
        if [int(s) for s in x.shape[2:]] == [8, 8]:
            x = self.c2(x)
        return x


class DataBranch(nn.Module):
    """A branch on the values of a tensor: no trace can decide it for every input."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c1(x)
        if x.mean() > 0:
            x = x.relu()
        return x


def test_plain_fx_refuses_the_size_branch() -> None:
    with pytest.raises(fx.proxy.TraceError, match="control flow"):
        fx.symbolic_trace(SizeBranches())


@pytest.mark.parametrize("side, size", [(16, 8), (8, 5)])
def test_size_branches_trace_with_fx_and_are_exact(side: int, size: int) -> None:
    torch.manual_seed(0)
    model = SizeBranches().eval()
    shape = (1, 3, side, side)
    builder = convert(model, shape, capture="fx")
    assert builder.captured.method == "fx" and builder.captured.ran_on == "meta"
    out = foveal.receptive_field(model, shape).output
    assert out.status == "exact", out.reasons
    assert out.size == (size, size)
    check = verify(model, shape, [out.name])
    assert check.agrees, check.summary()


def test_size_branches_leave_no_size_reads_behind() -> None:
    """The decided branch's `x.shape`, `[-1]` and `!=` are dropped; the pool's kernel, computed
    from the size, stays in the graph."""
    graph = convert(SizeBranches(), (1, 3, 16, 16), capture="fx").captured.graph
    assert all(n.users or n.op == "output" for n in graph.nodes)
    assert any(n.target is F.max_pool2d or "max_pool2d" in str(n.target) for n in graph.nodes)


def test_size_branches_on_meta_weights() -> None:
    with torch.device("meta"):
        model = SizeBranches()
    out = foveal.receptive_field(model, (1, 3, 16, 16)).output
    assert out.status == "exact" and out.size == (8, 8)


def test_data_branch_still_refuses_fx() -> None:
    with pytest.raises(CaptureError, match=r"torch.fx could not trace DataBranch: symbolically "
                                           r"traced variables cannot be used as inputs to control flow"):
        convert(DataBranch(), (1, 3, 8, 8), capture="fx")


def test_data_branch_takes_the_export_route_as_before() -> None:
    """torch.export cannot decide the branch either: the error names the fx refusal first, as
    before the shape retry."""
    with pytest.raises(CaptureError, match=r"^torch.fx could not trace DataBranch \(symbolically "
                                           r"traced variables cannot be used as inputs to control "
                                           r"flow\); torch.export"):
        foveal.receptive_field(DataBranch(), (1, 3, 8, 8))


class IntOfSize(nn.Module):
    """`int()` of a traced size, the first thing fx refuses (NesT's): the retry takes it."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = int(x.shape[-1] ** 0.5)
        return F.max_pool2d(self.c1(x), side)


def test_int_of_a_size_is_retried_under_fx() -> None:
    with pytest.raises(TypeError, match="Proxy'"):
        from foveal.pytorch.capture import trace
        trace(IntOfSize())
    builder = convert(IntOfSize(), (1, 3, 16, 16))
    assert builder.captured.method == "fx"
    out = foveal.receptive_field(IntOfSize(), (1, 3, 16, 16)).output
    assert out.size == (6, 6) and out.stride == (4, 4)
