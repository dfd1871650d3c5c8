"""Test-only helpers for the PyTorch front-end: torchvision import and small models.

The torchvision 0.28.0 wheel on this machine is built against CUDA torch and fails to import with
"operator torchvision::nms does not exist" next to the CPU torch. Defining the two op schemas it
looks for makes the import work; this lives in test code only, never in the library.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def import_torchvision():
    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        lib = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _KEEP.append(lib)
        import torchvision  # noqa: F401
    import torchvision

    return torchvision


_KEEP: list = []


def torchvision_model(name: str, **kwargs) -> nn.Module:
    """A torchvision model with meta weights, built as the CLI builds it (RegNet's factory computes
    while building: its weights move to meta as they are registered)."""
    from foveal.pytorch.load import build

    import_torchvision()
    return build(f"torchvision:{name}", kwargs).eval()


def resnet18():
    """For the CLI test: `tests.torch_models:resnet18`."""
    return torchvision_model("resnet18")


class UNet(nn.Module):
    """Two levels down, transposed convolutions up, skip connections concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.down1 = nn.MaxPool2d(2)
        self.enc2 = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU())
        self.down2 = nn.MaxPool2d(2)
        self.bottom = nn.Conv2d(8, 8, 3, padding=1)
        self.up2 = nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.dec2 = nn.Conv2d(16, 8, 3, padding=1)
        self.up1 = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.dec1 = nn.Conv2d(8, 2, 3, padding=1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.down1(e1))
        b = self.bottom(self.down2(e2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        return self.dec1(torch.cat([self.up1(d2), e1], dim=1))


class WaveNet(nn.Module):
    """Causal dilated 1-D convolutions (left padding d(k-1) by F.pad), residual adds."""

    def __init__(self, dilations=(1, 2, 4, 8), kernel=2) -> None:
        super().__init__()
        self.kernel = kernel
        self.dilations = dilations
        self.inp = nn.Conv1d(1, 8, 1)
        self.layers = nn.ModuleList(nn.Conv1d(8, 8, kernel, dilation=d) for d in dilations)
        self.out = nn.Conv1d(8, 1, 1)

    def forward(self, x):
        h = self.inp(x)
        for d, conv in zip(self.dilations, self.layers):
            h = h + torch.tanh(conv(F.pad(h, ((self.kernel - 1) * d, 0))))
        return self.out(h)


class TCN(nn.Module):
    """A temporal convolutional network block stack with symmetric padding and a lookahead."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(),
            nn.Conv1d(4, 4, 3, padding=2, dilation=2), nn.ReLU(),
            nn.Conv1d(4, 4, 3, padding=4, dilation=4), nn.ReLU(),
        )

    def forward(self, x):
        return self.body(x)


class DataDependentBranch(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x


class GridSampler(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x):
        grid = self.conv(x).permute(0, 2, 3, 1).tanh()
        return F.grid_sample(x, grid, align_corners=False)


class Opaque(nn.Module):
    """A custom module whose forward fx keeps whole (via a leaf function)."""

    def forward(self, x):
        return _opaque(x)


@torch.fx.wrap
def _opaque(x):
    return torch.flip(x, dims=[-1])


class WithOpaque(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.block = Opaque()

    def forward(self, x):
        return self.block(self.conv(x))


class ShapeBranch(nn.Module):
    """fx cannot trace a loop over a tensor (nor, in its plain trace, `if x.shape[-1] > 16`, which
    foveal's retry decides at the analysed shape); torch.export can. Reflect padding, bicubic
    resize and pixel shuffle must stay whole ops there."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="bicubic")
        self.shuffle = nn.PixelShuffle(2)
        self.head = nn.Conv2d(2, 4, 3)

    def forward(self, x):
        x = self.conv(x)
        if x.shape[-1] > 16:
            x = self.pool(x)
        x = torch.cat([xi.unsqueeze(0) for xi in x])  # iterating a tensor
        return self.head(self.shuffle(self.up(x)))


class CudaHalf(nn.Module):
    """Code written for a GPU in half precision: `.cuda()` and `device="cuda"` in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.head = nn.Conv2d(8, 4, 3, dilation=2)

    def forward(self, x):
        x = x.cuda().half()
        bias = torch.ones(1, 8, 1, 1, device="cuda", dtype=torch.half)
        return self.head(self.conv(x) + bias.to(x.device))


class PlainFloat(CudaHalf):
    """CudaHalf's layers without the device and dtype code."""

    def forward(self, x):
        return self.head(self.conv(x) + 1)


class TensordotMix(nn.Module):
    """torch.tensordot, which fx keeps whole (foveal has no handler for it) and torch.export
    decomposes into permutes and a matrix product."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.mix = nn.Parameter(torch.randn(6, 4))
        self.head = nn.Conv2d(6, 2, 3, stride=2)

    def forward(self, x):
        return self.head(torch.tensordot(self.conv(x), self.mix, dims=([1], [1])).permute(0, 3, 1, 2))


def import_timm():
    """timm (it imports torchvision, which needs the shim above first), or skip the test."""
    import pytest

    import_torchvision()
    return pytest.importorskip("timm")


def features(model):
    """A module whose forward is `model.forward_features` (timm's backbone without its head)."""
    import torch

    class Features(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner.forward_features(x)

    return Features(model)
