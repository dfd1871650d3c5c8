"""The JSON graph format round-trips exactly, and bad files get one clear message each."""

from __future__ import annotations

from fractions import Fraction

import pytest

import foveal
from foveal import Graph, graph_json


def every_op_graph() -> Graph:
    g = Graph(("H", "W"), name="every-op")
    x = g.add("x", foveal.ops.Input(), label="InputLayer")  # a label and no params
    a = g.add("conv", foveal.conv((3, 5), (1, 2), ((1, 1), "same_upper"), (2, 1)), x, label="Conv2d")
    a = g.add("pool", foveal.max_pool(2, 2, 0, ceil_mode=True), a)
    a = g.add("pad", foveal.pad((1, 0), (2, -1), "reflect"), a)
    a = g.add("crop", foveal.crop((1, 0), (None, -1), (1, 2)), a)
    a = g.add("tconv", foveal.conv_transpose(4, 2, 1, output_padding=1), a)
    a = g.add("up", foveal.upsample(scale=(Fraction(3, 2), 2)), a)
    a = g.add("lin", foveal.upsample(size=(9, 10), mode="bilinear", align_corners=True), a)
    a = g.add("shuffle", foveal.pixel_shuffle(2), a)
    a = g.add("unshuffle", foveal.pixel_unshuffle(2), a)
    b = g.add("adaptive", foveal.adaptive_pool((3, None)), a)
    c = g.add("attn", foveal.attention((False, True)), a)
    m = g.add("cat", foveal.concat(), [b, c], outputs=2)
    m = g.add("odd", foveal.unknown("Erf"), "cat:1")
    g.add("fc", foveal.dense(), m)
    g.set_outputs("fc")
    return g


@pytest.mark.parametrize("factory", [every_op_graph, lambda: foveal.load_model("resnet18"),
                                     lambda: foveal.load_model("keras.InceptionV3")])
def test_round_trip_is_exact(factory, tmp_path) -> None:
    g = factory()
    text = graph_json.dumps(g)
    again = graph_json.loads(text)
    assert again == g
    assert graph_json.dumps(again) == text
    path = tmp_path / "g.json"
    foveal.save_graph(g, path)
    assert foveal.load_graph(path) == g


def test_saved_graph_analyses_like_the_original(tmp_path) -> None:
    path = tmp_path / "resnet18.json"
    foveal.save_graph(foveal.load_model("resnet18"), path)
    a = foveal.receptive_field(str(path), 224)
    assert a["layer4"].size == (435, 435)


@pytest.mark.parametrize("text, message", [
    ("{", "malformed JSON at line 1"),
    ("[]", "not a foveal graph"),
    ('{"format": "foveal-graph", "version": 99, "axes": ["H"], "nodes": []}', "version 99"),
    ('{"format": "foveal-graph", "version": 1, "axes": ["H"], "nodes": [{"name": "a", "op": "warp"}]}',
     "op 'warp'"),
    ('{"format": "foveal-graph", "version": 1, "axes": ["H"], "nodes": [{"name": "x", "op": "input"},'
     '{"name": "c", "op": "window", "inputs": ["x"], "params": {"kernel": 0}}]}', "kernel must be >= 1"),
    ('{"format": "foveal-graph", "version": 1, "axes": ["H"], "nodes": [{"name": "x", "op": "input"},'
     '{"name": "c", "op": "window", "inputs": ["y"], "params": {"kernel": 3}}]}', "unknown input"),
    ('{"format": "foveal-graph", "version": 1, "axes": ["H"], "nodes": [{"name": "x", "op": "input"},'
     '{"name": "c", "op": "window", "inputs": ["x"], "params": {"kernal": 3}}]}', "unknown params"),
])
def test_bad_files(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(foveal.FovealError, match=message):
        foveal.load_graph(path)


def test_missing_file() -> None:
    with pytest.raises(foveal.FovealError, match="no such file"):
        foveal.load_graph("/nonexistent/graph.json")


def test_save_is_atomic(tmp_path, monkeypatch) -> None:
    path = tmp_path / "g.json"
    path.write_text("old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(graph_json.os, "replace", boom)
    with pytest.raises(OSError):
        foveal.save_graph(every_op_graph(), path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]


def test_documented_example_file_loads() -> None:
    """docs/graph-format.md embeds an example; it must stay loadable."""
    import pathlib
    import re

    doc = (pathlib.Path(__file__).parents[1] / "docs" / "graph-format.md").read_text()
    block = re.search(r"```json\n(.*?)```", doc, re.S).group(1)
    g = graph_json.loads(block)
    out = foveal.receptive_field(g, 32).output
    assert (out.size, out.stride, out.padding) == ((12, 12), (2, 2), (5, 5))
