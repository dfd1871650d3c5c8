"""`foveal erf`: the sub-command end to end (numbers on stdout, a PNG, status 0), its one-line errors
(status 2, no traceback, checked before the long computation) and the progress bar.

The sub-command is run through foveal.erf.cli's add_parser/main on foveal's own Parser, which is
what foveal.cli does with it.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from foveal.cli import Parser  # noqa: E402
from foveal.erf import cli as erf_cli  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


BUILT: list[str] = []


def ones_stack(layers: int = 3) -> nn.Module:
    """For `test_erf_cli:ones_stack`: a linear all-ones Conv2d stack (exact Gaussian numbers)."""
    BUILT.append("ones_stack")
    model = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 1, 1, 3, bias=False) for i in range(layers)])
    for layer in model:
        nn.init.ones_(layer.weight)
    return model


def volume() -> nn.Module:
    return nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU())


def run(*argv: str) -> int:
    parser = Parser(prog="foveal")
    erf_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(["erf", *argv])
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 2
    return erf_cli.main(args)


@pytest.fixture(scope="module")
def torchvision():
    from torch_models import import_torchvision

    return import_torchvision()


def test_torchvision_model_end_to_end(torchvision, tmp_path, capsys) -> None:
    out = tmp_path / "erf.png"
    assert run("torchvision:resnet18", "--layer", "layer1", "--input-size", "48", "--samples", "2",
               "--out", str(out)) == 0
    captured = capsys.readouterr()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = captured.out.splitlines()
    assert lines[0].startswith("ERF of layer 'layer1': luo protocol, 2 noise sample(s), 1 random weight draw")
    assert any(line.startswith("Gaussian fit (H, W): mean (") for line in lines)
    assert any(line.strip().startswith("t=0.99") for line in lines)
    assert any(line.startswith("analytic RF of the centre feature: H ") for line in lines)
    assert lines[-1] == f"wrote {out}"
    assert captured.err == ""  # not a terminal: no progress bar


def test_json_and_exact_numbers(tmp_path, capsys) -> None:
    module = __name__
    assert run(f"{module}:ones_stack", "--layer", "2", "--input-shape", "1,3,21,25", "--no-reinitialize",
               "--samples", "1", "--json", "--kwargs", '{"layers": 3}') == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "foveal-erf" and data["plot"] is None and data["weight_draws"] == 0
    assert data["analytic_box"] == [[7, 13], [9, 15]] == data["effective_box"]
    assert [s ** 2 for s in data["gaussian"]["sigma"]] == pytest.approx([3 * 8 / 12] * 2)
    assert data["gaussian"]["mean"] == pytest.approx([10, 12])


def test_images_and_replknet(tmp_path, capsys) -> None:
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (30 + i, 28), (40 * i, 90, 200)).save(tmp_path / f"{i}.png")
    out = tmp_path / "erf.svg"
    assert run(f"{__name__}:ones_stack", "--layer", "2", "--images", str(tmp_path), "--input-size", "16,20",
               "--protocol", "replknet", "--out", str(out), "--mean", "0,0,0", "--std", "1,1,1") == 0
    text = capsys.readouterr().out
    assert "replknet protocol, 3 image(s), the model's weights" in text
    assert "note: 3 image file(s)" in text and out.exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--out", "missing/erf.png"], "folder 'missing' does not exist"),
    (["--out", "erf.jpg"], "--out takes the format from the suffix"),
    (["--images", "no/such/folder"], "image folder 'no/such/folder' does not exist"),
    (["--input-size", "8", "--input-shape", "1,3,8,8"], "not both"),
    (["--kwargs", "{oops"], "--kwargs is not valid JSON"),
    (["--kwargs", "[1]"], "must be a JSON object"),
    (["--mean", "0.5,0.5,0.5"], "--mean normalises the images of --images"),
])
def test_errors_before_building(argv, message, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    BUILT.clear()
    assert run(f"{__name__}:ones_stack", "--layer", "2", *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("foveal: error: ") and message in err and err.count("\n") == 1
    assert BUILT == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("model", "argv", "message"), [
    ("ones_stack", ["--layer", "20"], "unknown layer '20'; did you mean '2'"),
    ("ones_stack", ["--layer", "zzz"], "unknown layer 'zzz'; layers: '0', '1', '2'"),
    ("ones_stack", ["--layer", "2", "--input-shape", "1,3,4,4"], "running the model on an input of shape"),
    ("volume", ["--layer", "1", "--input-shape", "1,1,6,6,6", "--out", "v.png"], "this map is 3-D"),
    ("nothing_here", ["--layer", "x"], "has no callable 'nothing_here'"),
])
def test_errors_are_one_line(model, argv, message, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(f"{__name__}:{model}", *argv, "--samples", "1") == 2
    err = capsys.readouterr().err
    assert err.startswith("foveal: error: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_zoo_name_is_rebuilt_from_its_source(torchvision, tmp_path, capsys) -> None:
    """`foveal erf resnet18`: the zoo model's own factory (random weights), as for
    torchvision:resnet18; a detection backbone through its attribute."""
    from foveal.erf.cli import zoo_factory

    assert zoo_factory("fasterrcnn_resnet50_fpn.backbone") == (
        "torchvision.models:fasterrcnn_resnet50_fpn", {"weights_backbone": None}, ("backbone",))
    assert run("resnet18", "--layer", "layer1", "--input-size", "48", "--samples", "2", "--json") == 0
    assert json.loads(capsys.readouterr().out)["layer"] == "layer1"


def test_bad_model_specs_and_usage(capsys) -> None:
    assert run("resnet_18", "--layer", "x") == 2
    assert "MODEL is a zoo model, torchvision:<name> or pkg.module:factory" in capsys.readouterr().err
    assert run("no_such_module_xyz:f", "--layer", "x") == 2
    assert "cannot import 'no_such_module_xyz'" in capsys.readouterr().err
    assert run("torch.nn:Conv2d", "--layer", "") == 2  # the factory needs arguments
    assert "failed to build: TypeError" in capsys.readouterr().err
    assert run("m:f", "--layer", "x", "--samples", "0") == 2
    err = capsys.readouterr().err
    assert "expected a positive integer" in err and err.count("\n") == 1
    assert run("m:f") == 2
    assert "--layer" in capsys.readouterr().err
    assert run("resnet_18.onnx", "--layer", "x") == 2  # a file: the ERF runs models, not files
    err = capsys.readouterr().err
    assert "a file ('resnet_18.onnx') is not run" in err and "foveal analyze resnet_18.onnx" in err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal() -> None:
    screen = Terminal()
    bar = erf_cli.ProgressBar(screen, width=10)
    for done in (0, 4, 8):
        bar(done, 8)
    bar.close()
    assert screen.getvalue() == ("\rerf [..........] 0/8 samples\rerf [#####.....] 4/8 samples"
                                 "\rerf [##########] 8/8 samples\n")
    unknown = Terminal()
    bar = erf_cli.ProgressBar(unknown)
    bar(3, None)
    bar.close()
    assert unknown.getvalue() == "\rerf 3 samples\n"
    log = io.StringIO()
    bar = erf_cli.ProgressBar(log)
    bar(1, 2)
    bar.close()
    assert log.getvalue() == ""
    quiet = Terminal()
    bar = erf_cli.ProgressBar(quiet, enabled=False)
    bar.status("erf: building m ...")
    bar(1, 2)
    bar.close()
    assert quiet.getvalue() == ""


def test_a_status_line_before_the_bar() -> None:
    """The seconds of building the model are not silent: a status line the bar then draws over
    (padded with spaces where the status was longer)."""
    screen = Terminal()
    bar = erf_cli.ProgressBar(screen, width=4)
    bar.status("erf: building torchvision:resnet18 ...")
    bar(0, 2)
    bar.close()
    status = "erf: building torchvision:resnet18 ..."
    assert screen.getvalue() == f"\r{status}\r{'erf [....] 0/2 samples'.ljust(len(status))}\n"
    log = io.StringIO()
    erf_cli.ProgressBar(log).status("erf: building m ...")
    assert log.getvalue() == ""


def test_the_command_imports_nothing_heavy_until_it_runs() -> None:
    """foveal.cli imports foveal.erf.cli at start-up: `foveal --help` must stay fast."""
    code = ("import sys, foveal.erf, foveal.erf.cli; "
            "print(sorted({'torch', 'numpy', 'matplotlib', 'PIL', 'keras'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
