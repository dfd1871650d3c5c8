"""torch.export capture and saved programs (.pt2).

Oracles: the fx path on the same models (itself checked by NaN injection in test_pytorch.py) and
`foveal.pytorch.verify`, which runs the exported graph on NaN probes.
"""

from __future__ import annotations

import zipfile

import pytest
from pt2_archives import refuse_unpickling

torch = pytest.importorskip("torch")

import torch_models as TM  # noqa: E402
from torch import nn  # noqa: E402

import foveal  # noqa: E402
from foveal.cli import main  # noqa: E402
from foveal.pytorch import CaptureError, convert, verify  # noqa: E402

TM.import_torchvision()

# a spread of layer kinds: residual, inception branches, squeeze-excitation, depthwise, channels-last
# LayerNorm, channel shuffle, tokens with a class token
EXPORT_VS_FX = ["resnet50", "googlenet", "mobilenet_v3_small", "efficientnet_b0", "convnext_tiny",
                "shufflenet_v2_x0_5", "vit_b_16"]


def _same_results(a: foveal.Analysis, b: foveal.Analysis) -> list[str]:
    common = [n for n in a.graph.nodes if n in b.graph.nodes]
    return [n for n in common if (a[n].size, a[n].stride, a[n].padding, a[n].status, a[n].output_shape)
            != (b[n].size, b[n].stride, b[n].padding, b[n].status, b[n].output_shape)]


@pytest.mark.parametrize("name", EXPORT_VS_FX)
def test_export_agrees_with_fx_on_every_layer(name: str) -> None:
    model = TM.torchvision_model(name)
    shape = (1, 3, 224, 224)
    fx = foveal.receptive_field(model, shape, capture="fx")
    exported = foveal.receptive_field(model, shape, capture="export")
    # modules that compute nothing in inference (Dropout, Identity) leave no op in an export
    modules = [name for name, (n, _) in convert(model, shape, capture="fx").fx_node_of.items()
               if n.op == "call_module" and not isinstance(model.get_submodule(str(n.target)),
                                                           (nn.Dropout, nn.Identity))]
    missing = [m for m in modules if m not in exported.graph.nodes]
    assert not missing, f"module paths not named under export: {missing[:5]}"
    assert not _same_results(fx, exported)
    assert (fx.output.size, fx.output.stride) == (exported.output.size, exported.output.stride)


def test_export_is_the_fallback_and_keeps_structural_ops_whole() -> None:
    model = TM.ShapeBranch()
    builder = convert(model, (1, 3, 32, 32))
    assert builder.captured.method == "export"
    ops = {n: builder.graph.nodes[n].op for n in builder.graph.nodes}
    assert ops["conv/pad"] == foveal.ops.Pad((1, 1), (1, 1), "reflect")
    assert isinstance(ops["up"], foveal.ops.Resize) and ops["up"].method == "cubic"
    assert ops["shuffle"] == foveal.ops.PixelShuffle((2, 2))
    a = foveal.receptive_field(model, (1, 3, 32, 32))
    assert a["conv/pad"].output_shape == (34, 34)
    assert a["conv"].padding == (1, 1)
    check = verify(model, (1, 3, 32, 32), per_axis=5)
    assert check.agrees, check.summary()
    assert {"conv", "pool", "up", "shuffle", "head"} <= set(check.layers)


def test_auto_uses_export_when_fx_leaves_an_op_export_decomposes() -> None:
    model = TM.TensordotMix()
    with pytest.raises(foveal.UnsupportedOpError, match="tensordot"):
        foveal.receptive_field(model, (1, 3, 16, 16), capture="fx")
    builder = convert(model, (1, 3, 16, 16))
    assert builder.captured.method == "export"
    a = foveal.receptive_field(model, (1, 3, 16, 16))
    assert a.output.status == "exact" and a.output.size == (5, 5)  # 3 + (3 - 1) * 1
    check = verify(model, (1, 3, 16, 16), per_axis=6)
    assert check.agrees, check.summary()


def test_export_path_verifies_on_a_torchvision_model() -> None:
    model = TM.torchvision_model("resnet18")
    layers = ["layer1", "layer2.0.conv1", "layer3", "layer4.1.conv2"]
    check = verify(model, (1, 3, 48, 48), layers=layers, per_axis=4, capture="export")
    assert check.agrees, check.summary()


class _Flip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3)

    def forward(self, x):
        return torch.flip(self.conv(x), dims=[-1])


def test_handlers_keyed_by_an_aten_op_serve_exported_graphs(tmp_path, never_unpickle) -> None:
    builder = convert(_Flip(), (1, 1, 8, 8), capture="export")
    assert builder.unhandled == {"aten.flip.default": 1}
    handlers = {torch.ops.aten.flip: foveal.elementwise()}
    assert not convert(_Flip(), (1, 1, 8, 8), handlers=handlers, capture="export").unhandled
    a = foveal.receptive_field(_Flip(), (1, 1, 8, 8), handlers=handlers, capture="export")
    assert a.output.status == "exact" and a.output.size == (3, 3)
    path = _save(tmp_path, _Flip(), shape=(1, 1, 8, 8))
    saved = foveal.receptive_field(str(path), handlers={torch.ops.aten.flip.default: foveal.elementwise()})
    assert saved.output.status == "exact" and saved.output.size == (3, 3)


def test_when_neither_capture_works_both_reasons_are_given() -> None:
    with pytest.raises(CaptureError, match="torch.fx could not trace.*torch.export could not.*options"):
        foveal.receptive_field(TM.DataDependentBranch(), (1, 3, 8, 8))
    with pytest.raises(CaptureError, match="torch.fx could not trace ShapeBranch"):
        foveal.receptive_field(TM.ShapeBranch(), (1, 3, 32, 32), capture="fx")
    with pytest.raises(foveal.InvalidParameterError, match="capture must be one of"):
        foveal.receptive_field(TM.ShapeBranch(), (1, 3, 32, 32), capture="jit")


@pytest.mark.parametrize("capture", ["fx", "export"])
def test_cuda_only_half_precision_code_runs_on_the_cpu(capture: str) -> None:
    plain = foveal.receptive_field(TM.PlainFloat(), (1, 3, 40, 40))
    a = foveal.receptive_field(TM.CudaHalf().half(), (1, 3, 40, 40), capture=capture)
    assert (a["head"].size, a["head"].stride, a["head"].padding) == \
        (plain["head"].size, plain["head"].stride, plain["head"].padding)
    assert a["head"].size == (11, 11)  # 3 + (dilated kernel 5 - 1) * stride 2


# -- saved programs ----------------------------------------------------------------------------


def _seq() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Upsample(scale_factor=2, mode="bicubic"),
                         nn.PixelShuffle(2), nn.Conv2d(2, 2, 3))


@pytest.fixture
def never_unpickle(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_unpickling(monkeypatch)


def _save(tmp_path, model: nn.Module, dynamic: bool = False, shape: tuple[int, ...] = (1, 3, 32, 32)):
    example = torch.randn(shape)
    shapes = None
    if dynamic:
        h, w = torch.export.Dim("h", min=4, max=256), torch.export.Dim("w", min=4, max=256)
        shapes = ({2: 2 * h, 3: 2 * w},)
    program = torch.export.export(model, (example,), dynamic_shapes=shapes, strict=False)
    path = tmp_path / "model.pt2"
    torch.export.save(program, path)
    return path


def test_pt2_equals_the_module(tmp_path, never_unpickle) -> None:
    model = _seq()
    path = _save(tmp_path, model)
    saved = foveal.receptive_field(str(path))
    live = foveal.receptive_field(model, (1, 3, 32, 32))
    assert list(saved.graph.nodes)[1:] == list(live.graph.nodes)[1:]  # the input's name differs
    assert not _same_results(saved, live)
    assert saved.output_name == "5" and saved.output.size == live["5"].size


def test_pt2_with_dynamic_sizes_takes_any_shape(tmp_path, never_unpickle) -> None:
    model = _seq()
    path = _save(tmp_path, model, dynamic=True)
    for shape in ((1, 3, 64, 48), (1, 3, 20, 36)):
        saved = foveal.receptive_field(path, shape)
        assert not _same_results(saved, foveal.receptive_field(model, shape))
    with pytest.raises(foveal.FovealError, match="dynamic sizes.*give input_shape"):
        foveal.receptive_field(path)


def test_pt2_bad_files(tmp_path, capsys) -> None:
    static = _save(tmp_path, _seq())
    with pytest.raises(foveal.FovealError, match=r"exported for input shape \(1, 3, 32, 32\) only"):
        foveal.receptive_field(static, (1, 3, 64, 64))
    text = tmp_path / "text.pt2"
    text.write_text("not a zip")
    empty = tmp_path / "empty.pt2"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("archive/version", "1")
    broken = tmp_path / "broken.pt2"
    with zipfile.ZipFile(static) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data[: len(data) // 2] if item.filename.endswith("model.json") else data)
    for path, message in ((tmp_path / "missing.pt2", "no such file"), (text, "not a .pt2 archive"),
                          (empty, "no exported program"), (broken, "cannot read the exported program")):
        assert main(["analyze", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_pt2_on_the_command_line(tmp_path, capsys) -> None:
    path = _save(tmp_path, _seq(), dynamic=True)
    assert main(["analyze", str(path), "--input-shape", "1,3,40,40", "--format", "csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[-1].startswith("5,")
    assert main(["analyze", str(path), "--input-size", "40"]) == 2
    assert "takes --input-shape" in capsys.readouterr().err
    assert main(["analyze", "tests.torch_models:ShapeBranch", "--input-shape", "1,3,32,32",
                 "--capture", "export"]) == 0
    assert "head" in capsys.readouterr().out
