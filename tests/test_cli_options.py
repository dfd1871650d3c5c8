"""The command line's habits (issue 19): options that do not apply are refused, every node-name
option suggests, the report's missing parts are said on the terminal, every file format is
read by path and a graph read from a file is named after it."""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

import pytest

import foveal
from foveal.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


def error_of(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("foveal: error: ") and captured.err.count("\n") == 1
    return captured.err


@pytest.mark.parametrize("argv, message", [
    (["--kwargs", "{}"], "--kwargs applies to a PyTorch factory (pkg.module:factory or torchvision:<name>), "
                         "not to 'resnet18'"),
    (["--capture", "fx"], "--capture applies to a PyTorch factory"),
    (["--stop-propagation", "layr4"], "--stop-propagation 'layr4' starts no node's name, so it cuts nothing; "
                                      "did you mean 'layer4'"),
    (["--stop-propagation", "zzz"], "--stop-propagation 'zzz' starts no node's name, so it cuts nothing"),
    (["--input-node", "foo"], "unknown input node 'foo'; input nodes: 'x'"),
    (["--input-node", "xx"], "unknown input node 'xx'; did you mean 'x'"),
    (["--output-node", "layr4"], "unknown output node 'layr4'; did you mean 'layer4'"),
])
def test_options_that_do_not_apply_and_unknown_names(argv, message, capsys) -> None:
    assert message in error_of(["analyze", "resnet18", *argv], capsys)


def test_a_stop_propagation_prefix_that_cuts_is_taken(capsys) -> None:
    assert main(["analyze", "resnet18", "--stop-propagation", "layer4.0.downsample", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["output"] == "fc"


def test_the_report_says_on_the_terminal_what_it_lacks(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no Graphviz
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # no matplotlib
    report = tmp_path / "r.html"
    assert main(["analyze", "resnet18", "--input-size", "32", "--report", str(report), "--format", "csv"]) \
        == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"foveal: wrote the report to {report}"
    assert err[1].startswith("foveal: note: the report has no graph drawing: the Graphviz program 'dot'")
    assert len(err) == 2  # the layer list, the RF view and the RF plot need no matplotlib
    assert report.read_text().startswith("<!DOCTYPE html>")


def test_the_report_draws_on_the_given_image(tmp_path, capsys) -> None:
    image = pytest.importorskip("PIL.Image")
    picture = tmp_path / "photo.png"
    image.new("RGB", (32, 32), (200, 10, 10)).save(picture)
    report = tmp_path / "r.html"
    assert main(["analyze", "resnet18", "--input-size", "32", "--report", str(report), "--image",
                 str(picture), "--format", "csv"]) == 0
    assert "data:image/png;base64," in report.read_text()
    assert main(["analyze", "resnet18", "--image", str(picture)]) == 2
    assert "--image is the picture of the HTML report" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_no_note_when_the_report_is_whole(tmp_path, capsys) -> None:
    pytest.importorskip("matplotlib")
    report = tmp_path / "r.html"
    assert main(["analyze", "resnet18", "--input-size", "32", "--report", str(report), "--format", "csv"]) \
        == 0
    assert capsys.readouterr().err == f"foveal: wrote the report to {report}\n"


def header(argv: list[str], capsys) -> dict:
    assert main(["analyze", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_gzipped_foveal_graph(tmp_path, capsys) -> None:
    plain = tmp_path / "net.json"
    foveal.save_graph(foveal.load_model("resnet18"), plain)
    packed = tmp_path / "net.json.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert header([str(packed)], capsys) == header([str(plain)], capsys)


def test_a_graph_def_is_named_after_its_file(tmp_path, capsys) -> None:
    pytest.importorskip("google.protobuf")
    data = header([str(FIXTURES / "slim" / "vgg_16.pb.gz"), "--input-size", "224"], capsys)
    assert data["graph"] == "vgg_16" and data["output"] == "vgg_16/pool5/MaxPool"
    assert main(["analyze", str(FIXTURES / "slim" / "vgg_16.pb.gz")]) == 0
    assert capsys.readouterr().out.startswith("vgg_16: ")


def test_an_onnx_file_is_named_after_it_unless_the_model_names_itself(tmp_path, capsys) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    def save(graph_name: str, path: Path) -> Path:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])
        pool = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], name="pool")
        graph = helper.make_graph([pool], graph_name, [x], [y])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
        return path

    assert header([str(save("main_graph", tmp_path / "tiny_pool.onnx"))], capsys)["graph"] == "tiny_pool"
    assert header([str(save("mynet", tmp_path / "other.onnx"))], capsys)["graph"] == "mynet"


def test_compute_rf_suggests_node_names_and_rejects_a_prefix_that_cuts_nothing(capsys) -> None:
    pytest.importorskip("google.protobuf")
    graph = "tests/fixtures/slim/alexnet_v2.pb.gz"
    base = ["compute-rf", "--graph_path", graph, "--output_path", ""]
    assert main([*base, "--input_node", "foo", "--output_node", "alexnet_v2/pool5/MaxPool"]) == 2
    assert "unknown input node 'foo'; input nodes: 'input_image'" in capsys.readouterr().err
    assert main([*base, "--input_node", "input_image", "--output_node", "bar"]) == 2
    assert "output nodes: 'alexnet_v2/pool5/MaxPool'" in capsys.readouterr().err
    assert main([*base, "--input_node", "input_image", "--output_node", "alexnet_v2/pool5/MaxPoo"]) == 2
    assert "did you mean 'alexnet_v2/pool5/MaxPool'" in capsys.readouterr().err
    assert main([*base, "--input_node", "input_image", "--output_node", "alexnet_v2/pool5/MaxPool",
                 "--stop_propagation", "alexnet_v2/conv9"]) == 2
    assert "--stop_propagation 'alexnet_v2/conv9' starts no node's name" in capsys.readouterr().err
