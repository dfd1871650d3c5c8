"""The command line: tables, formats, and one-line errors with a non-zero exit status."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

import foveal
from foveal.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "foveal.cli", *args], capture_output=True, text=True)


def test_table_shows_golden_values(capsys) -> None:
    assert main(["analyze", "resnet18", "--input-size", "224"]) == 0
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
    rf = node["rf"]
    assert rf["size"] == [212, 212] and rf["stride"] == [32, 32] and rf["padding"] == [90, 90]
    assert rf["exact"] is True and rf["global"] == [False, False] and rf["aligned"] is True
    assert rf["size_min"] == [212, 212] and rf["size_max"] == [212, 212]


def test_json_marks_unknowns(capsys) -> None:
    assert main(["analyze", "vgg16", "--format", "json", "--all"]) == 0
    nodes = {n["name"]: n for n in json.loads(capsys.readouterr().out)["nodes"]}
    assert nodes["classifier.6"]["rf"]["status"] == "unavailable"
    assert nodes["classifier.6"]["rf"]["size"] == [None, None]
    assert nodes["classifier.6"]["rf"]["reasons"]


def test_csv_and_markdown(capsys) -> None:
    assert main(["analyze", "resnet18", "--input-size", "64", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["node"] == "input" and {r["node"] for r in rows} >= {"layer4", "fc"}
    assert main(["analyze", "resnet18", "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| node | op |")


def test_graph_file(tmp_path, capsys) -> None:
    path = tmp_path / "vgg.json"
    foveal.save_graph(foveal.examples.vgg16(), path)
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


def test_examples_listed(capsys) -> None:
    assert main(["examples"]) == 0
    assert capsys.readouterr().out.split() == ["resnet18", "vgg16"]
