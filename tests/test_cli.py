"""The command line: tables, formats, and one-line errors with a non-zero exit status."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys

import pytest

import foveal
from foveal.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "foveal.cli", *args], capture_output=True, text=True)


def test_table_shows_golden_values(capsys) -> None:
    assert main(["analyze", "resnet18", "--input-size", "224", "--output-node", "layer4"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("layer4 "))
    assert "435x435" in line and "32x32" in line and "7x7" in line


def test_json_schema(capsys) -> None:
    assert main(["analyze", "vgg16", "--format", "json", "--output-node", "features.30"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "foveal-analysis" and data["output"] == "features.30"
    node = data["nodes"][-1]
    assert node["name"] == "features.30" and node["op"] == "window"
    assert node["inputs"] == ["features.29"] and node["output_shape"] is None
    rf = node
    assert rf["size"] == [212, 212] and rf["stride"] == [32, 32] and rf["padding"] == [90, 90]
    assert rf["exact"] is True and rf["global"] == [False, False] and rf["aligned"] is True
    assert rf["size_min"] == [212, 212] and rf["size_max"] == [212, 212]


def test_json_marks_unknowns(capsys) -> None:
    assert main(["analyze", "vgg16", "--format", "json", "--all"]) == 0
    nodes = {n["name"]: n for n in json.loads(capsys.readouterr().out)["nodes"]}
    assert nodes["classifier.6"]["status"] == "unavailable"
    assert nodes["classifier.6"]["size"] == [None, None]
    assert nodes["classifier.6"]["reasons"]


def test_csv_and_markdown(capsys) -> None:
    assert main(["analyze", "resnet18", "--input-size", "64", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["node"] == "x" and {r["node"] for r in rows} >= {"layer4.1.conv2", "fc"}
    assert main(["analyze", "resnet18", "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| node | op |")


def test_graph_file(tmp_path, capsys) -> None:
    path = tmp_path / "vgg.json"
    foveal.save_graph(foveal.load_model("vgg16"), path)
    assert main(["analyze", str(path), "--input-size", "224", "--output-node", "features"]) == 0
    assert "212x212" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["analyze", "missing.json"], "no such file"),
    (["analyze", "resnet18", "--output-node", "layer5"], "did you mean 'layer4'"),
    (["analyze", "vgg16", "--input-size", "16"], "input too small"),
    (["analyze", "resnet18", "--input-size", "3,3,3"], "does not fit"),
    (["analyze", "resnet18", "--input-size", "x"], "expected N or N,N"),
])
def test_errors_are_one_line(args, message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_zoo_listed(capsys) -> None:
    assert main(["zoo", "--names"]) == 0
    names = capsys.readouterr().out.split()
    assert names == sorted(names) and {"resnet50", "keras.ResNet50", "fcn_resnet50"} <= set(names)
    assert main(["zoo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(names) and any(line.startswith("resnet50 ") and "any input size" in line
                                            for line in lines)


# -- --verdicts, --graph, --report ------------------------------------------------------------

def test_verdicts_table(capsys) -> None:
    assert main(["analyze", "resnet18", "--input-size", "64", "--verdicts"]) == 0
    out = capsys.readouterr().out
    a = foveal.receptive_field("resnet18", 64)
    verdicts, (low, high) = a.verdicts(), a.input_resolution_range()
    table, _, section = out.partition("\nverdicts at 64x64: ")
    assert table.startswith("resnet18: input 'x' (64 x 64, axes H x W)") and "layer4.1.conv2 " in table
    assert "\nresnet18: receptive fields w.r.t. 'x'" in table
    counts = verdicts.counts()
    assert section.splitlines()[0] == ", ".join(f"{c} {k}" for k, c in counts.items())
    assert counts["unproductive"] == 10 and counts["critical"] == 2
    assert f"  H: {low[0]} to {high[0]} (minimum set by layer4.1.conv2, maximum by layer4.1.conv2)" in section
    flagged = [line.split()[0] for line in section.splitlines()
               if line.startswith("  ") and not line.startswith(("  H:", "  W:"))]
    assert flagged == [n for n in a.order if verdicts[n].kind in ("unproductive", "critical")]
    assert f"  layer4.1.conv2  {verdicts['layer4.1.conv2'].reason}" in section


def test_verdicts_json_keeps_the_schema(capsys) -> None:
    assert main(["analyze", "resnet18", "--input-size", "64", "--verdicts", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    a = foveal.receptive_field("resnet18", 64)
    assert data["format"] == "foveal-analysis" and len(data["nodes"]) == len(a.ancestors(a.output_name))
    verdicts = a.verdicts()
    assert data["verdicts"]["resolution"] == [64, 64]
    assert data["verdicts"]["counts"] == verdicts.counts()
    shown = {r.name for r in a.ancestors(a.output_name)}
    assert {n: v["kind"] for n, v in data["verdicts"]["nodes"].items()} == {
        n: v.kind for n, v in verdicts.items() if n in shown}
    assert data["input_resolution_range"] == {
        "minimum": [139, 139], "maximum": [435, 435], "minimum_from": ["layer4.1.conv2"] * 2,
        "maximum_from": ["layer4.1.conv2"] * 2, "notes": [], "unavailable": None}


def test_graph_and_report_files_with_the_normal_output(tmp_path, capsys) -> None:
    dot, report = tmp_path / "r.dot", tmp_path / "r.html"
    assert main(["analyze", "resnet18", "--input-size", "32", "--graph", str(dot),
                 "--report", str(report)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("resnet18: input 'x'") and "layer4.1.conv2 " in out
    assert err.splitlines() == [f"foveal: wrote the graph to {dot}", f"foveal: wrote the report to {report}"]
    assert dot.read_text().startswith('digraph "resnet18 at 32x32"')
    text = report.read_text()
    assert text.startswith("<!DOCTYPE html>") and 'data-layer="layer4.1.conv2"' in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.dot", "r.html"]  # no temporary files left


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graph_svg(tmp_path, capsys) -> None:
    path = tmp_path / "r.svg"
    assert main(["analyze", "resnet18", "--input-size", "32", "--graph", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["graph"] == "resnet18"
    assert "<svg" in path.read_text()


def test_torchvision_model_with_graph_and_report(tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    from torch_models import import_torchvision

    import_torchvision()  # this machine's torchvision wheel needs two op schemas defined first
    svg, report = tmp_path / "out.svg", tmp_path / "out.html"
    graph = svg if shutil.which("dot") else tmp_path / "out.dot"
    assert main(["analyze", "torchvision:resnet18", "--input-size", "32", "--graph", str(graph),
                 "--report", str(report)]) == 0
    assert "layer4.1.conv2" in capsys.readouterr().out
    assert graph.stat().st_size > 0 and 'data-layer="layer4.1.conv2"' in report.read_text()


@pytest.mark.parametrize("args, message", [
    (["--input-size", "0"], "argument --input-size: input sizes must be >= 1, got '0'"),
    (["--output-node", "layer5"], "unknown output node 'layer5'; did you mean 'layer4'"),
    (["--input-size", "32", "--graph", "{tmp}/r.jpeg"], "--graph takes the format from the suffix"),
    (["--input-size", "32", "--graph", "{tmp}/missing/r.svg"], "folder '{tmp}/missing' does not exist"),
    (["--input-size", "32", "--report", "{tmp}/r.pdf"], "give --report a path ending in .html"),
    (["--verdicts"], "--verdicts needs an input resolution: give --input-size"),
    (["--input-size", "32", "--verdicts", "--format", "csv"], "--verdicts works with --format table or json"),
])
def test_bad_new_input_is_one_line(args, message: str, tmp_path, capsys) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["analyze", "resnet18", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("foveal: error: ")
    assert message.replace("{tmp}", str(tmp_path)) in captured.err
    assert list(tmp_path.iterdir()) == []


def test_graph_write_failures_are_one_line(tmp_path, monkeypatch, capsys) -> None:
    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("foveal.drawing.atomic_write", refuse)
    assert main(["analyze", "resnet18", "--input-size", "32", "--graph", str(tmp_path / "r.dot")]) == 2
    assert capsys.readouterr().err == f"foveal: error: cannot write the graph to '{tmp_path}/r.dot': " \
                                      f"Permission denied\n"
    monkeypatch.setenv("PATH", str(tmp_path))  # no Graphviz
    assert main(["analyze", "resnet18", "--input-size", "32", "--graph", str(tmp_path / "r.svg")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "apt-get install graphviz" in captured.err


AUDIO_MODEL = '''
import torch
from torch import nn


class AddChannel(nn.Module):
    def forward(self, x):
        return x.unsqueeze(1)


def build():
    return nn.Sequential(AddChannel(), nn.Conv1d(1, 8, 10, stride=5), nn.Conv1d(8, 8, 3, stride=2))
'''


def test_a_raw_signal_model_takes_its_own_input_shape(tmp_path, monkeypatch, capsys) -> None:
    pytest.importorskip("torch")
    (tmp_path / "audio_model.py").write_text(AUDIO_MODEL, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["analyze", "audio_model:build", "--input-shape", "1,16000", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["axes"] == ["T"] and data["input_shape"] == [16000]
    out = data["nodes"][-1]
    assert out["name"] == "2" and out["output_shape"] == [1599]
    assert out["size"] == [20] and out["stride"] == [10]


def test_version_and_python_dash_m() -> None:
    """`foveal --version` and `python -m foveal` (the package itself) as users try them first."""
    done = subprocess.run([sys.executable, "-m", "foveal", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"foveal {foveal.__version__}"
    done = subprocess.run([sys.executable, "-m", "foveal", "analyze", "resnet18", "--input-size", "32",
                           "--format", "json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"]


@pytest.mark.parametrize("name, words", [("small.keras", "keras.saving.load_model"),
                                          ("weights.pth", "never unpickles")])
def test_a_model_file_foveal_does_not_read_by_path_says_what_to_do(tmp_path, capsys, name, words) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x80\x04PK\x03\x04 not text")
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "UTF-8" not in err
