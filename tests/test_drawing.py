"""GraphViz drawings: DOT text without any program, SVG through dot, colours by verdict, stable ids,
module clusters, and big networks collapsed into a readable number of boxes."""

from __future__ import annotations

import re
import shutil

import pytest

import foveal
from foveal import Graph, conv, dense
from foveal.drawing import analysis_boxes, analysis_dot, draw
from foveal.errors import FovealError

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def small() -> foveal.Analysis:
    g = Graph(2, name="small")
    x = g.input("x")
    for i in range(5):
        x = g.add(f"block{i // 2}.conv{i % 2}", conv(3, padding=1), x, label="Conv2d")
    g.add("fc", dense(), x, label="Linear")
    return foveal.receptive_field(g, (8, 8))


def node_lines(dot: str) -> dict[str, str]:
    return {m.group(1): m.group(0) for m in re.finditer(r'^\s*"([^"]+)" \[label=.*$', dot, re.M)}


def test_dot_text_needs_nothing_and_colours_by_verdict(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on the PATH
    a = small()
    dot = analysis_dot(a)
    nodes = node_lines(dot)
    assert set(nodes) == set(a.order)
    verdicts = a.verdicts()
    for name, line in nodes.items():
        assert f'fillcolor="{verdicts[name].color}"' in line
    assert 'fillcolor="red"' in nodes["block2.conv0"]  # its input sees 9 >= 8, its own 11 > 8
    assert "Conv2d 3x3 / 1x1" in nodes["block0.conv0"] and "RF 5x5" in nodes["block0.conv1"]
    assert "feature map 8x8" in nodes["block0.conv1"]
    assert 'subgraph "cluster_block0"' in dot
    assert dot == analysis_dot(small())  # ids are names: the same text every run
    path = draw(a, tmp_path / "small.dot")
    assert path.read_text() == dot
    with pytest.raises(FovealError, match="apt-get install graphviz"):
        draw(a, tmp_path / "small.svg")
    assert not (tmp_path / "small.svg").exists()


def test_bad_paths(tmp_path) -> None:
    with pytest.raises(FovealError, match="format is taken from the suffix"):
        draw(small(), tmp_path / "small.jpeg")
    with pytest.raises(FovealError, match="does not exist"):
        draw(small(), tmp_path / "missing" / "small.dot")


@needs_dot
def test_svg(tmp_path) -> None:
    path = draw(small(), tmp_path / "small.svg")
    svg = path.read_text()
    assert svg.lstrip().startswith("<?xml") and svg.count("<g id=\"node") == len(small().order)


@needs_dot
@pytest.mark.parametrize("name", ["resnet152", "densenet201"])
def test_big_networks_collapse_into_blocks(name, tmp_path) -> None:
    from torch_models import torchvision_model

    a = foveal.receptive_field(torchvision_model(name), (1, 3, 32, 32))
    boxes = analysis_boxes(a, a.verdicts())
    assert 10 <= len(boxes) <= 90
    assert sum(int(b.lines[1].split()[0]) for b in boxes if b.lines[1].endswith("layers")) > 300
    red = [b for b in boxes if b.color == "red"]
    assert red and all("unproductive" in b.lines[-1] for b in red if b.lines[1].endswith("layers"))
    svg = draw(a, tmp_path / f"{name}.svg").read_text()
    assert svg.count('<g id="node') == len(boxes)
    assert len(analysis_boxes(a, collapse=False)) > 300
