"""The front-end contract (docs/architecture.md): one input specification, one registry, front-ends
that never reach back into the API, and a library call without process-wide side effects.

Real zoo graphs and real framework models; the per-framework tests (handlers=, raw signals,
nested Keras models) sit beside each front-end's other tests.
"""

from __future__ import annotations

import ast
import gc
from pathlib import Path

import numpy as np
import pytest

import foveal
from foveal import Graph, conv
from foveal.errors import FovealError, InvalidParameterError
from foveal.frontends import FRONTENDS, find
from foveal.input_spec import Form, Given, parse, parse_one

SRC = Path(foveal.__file__).parent
FRONTEND_PACKAGES = ("pytorch", "keras", "onnx", "tensorflow")


@pytest.mark.parametrize("name", ["keras.ResNet50", "keras.ConvNeXtBase"])
def test_keras_zoo_graphs_take_their_channels_last_shape(name: str) -> None:
    analysis = foveal.receptive_field(name, (1, 224, 224, 3))
    assert analysis.result(analysis.output_name).output_shape == (7, 7)
    assert foveal.receptive_field(name, (224, 224)).result(analysis.output_name).output_shape == (7, 7)


def test_a_shape_that_contradicts_the_layout_is_an_error() -> None:
    channels_last = r"contradicts .*\(N, H, W, C\).*C = 3.*give \(1, 224, 224, 3\)"
    with pytest.raises(InvalidParameterError, match=channels_last):
        foveal.receptive_field("keras.ResNet50", (1, 3, 224, 224))
    with pytest.raises(InvalidParameterError, match=r"contradicts .*\(N, C, H, W\).*give \(1, 3, 224, 224\)"):
        foveal.receptive_field("resnet18", (1, 224, 224, 3))
    assert foveal.receptive_field("resnet18", (1, 3, 224, 224)).result("layer4").output_shape == (7, 7)


def test_input_shapes_are_parsed_once_with_one_set_of_rules() -> None:
    assert parse(7).one.spatial(2, Form.CHANNELS_FIRST) == (7, 7)
    assert parse(np.int64(7)).one.spatial(1, Form.SIGNAL) == (7,)
    assert parse((1, 16000)).one.spatial(1, Form.SIGNAL) == (16000,)
    assert parse((2, 5, 6, 3)).one.spatial(2, Form.CHANNELS_LAST, 3) == (5, 6)
    assert parse({"x": (9, 9)}).spatial(2, Form.CHANNELS_FIRST) == {"x": (9, 9)}
    for bad in [True, (3, True), (0, 4), "224", (), (1,) * 9, {1: 3}]:
        with pytest.raises(InvalidParameterError):
            parse(bad)
    with pytest.raises(InvalidParameterError, match="does not fit"):
        parse_one((1, 3, 224, 224), Given.SPATIAL).spatial(2, Form.CHANNELS_FIRST)
    with pytest.raises(InvalidParameterError, match="needs the full input shape"):
        parse_one(224, Given.EITHER).full("a PyTorch module")
    with pytest.raises(InvalidParameterError, match="does not fit"):
        parse((1, 3, 9)).one.spatial(2, Form.CHANNELS_FIRST)


def test_a_graph_reads_full_shapes_as_channels_first() -> None:
    g = foveal.sequential([conv(3, stride=2)])
    assert foveal.receptive_field(g, (1, 3, 9, 9)).output.output_shape == (4, 4)
    with pytest.raises(FovealError, match="handlers= applies to models read from a framework"):
        foveal.receptive_field(g, 9, handlers={"x": conv(3)})


def test_every_model_kind_has_one_front_end() -> None:
    assert [f.name for f in FRONTENDS] == ["ONNX", "TensorFlow", "Keras", "PyTorch", "foveal"]
    assert find("model.onnx").name == "ONNX"
    assert find("frozen.pb").name == "TensorFlow"
    assert find("program.pt2").name == "PyTorch"
    assert find("resnet18").name == find(Graph(2)).name == "foveal"
    with pytest.raises(FovealError, match="cannot analyse a int"):
        find(3)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved against its package."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("package", FRONTEND_PACKAGES)
def test_no_front_end_imports_the_api(package: str) -> None:
    files = sorted((SRC / package).rglob("*.py"))
    assert files
    offenders = [str(f.relative_to(SRC)) for f in files
                 if {"foveal.api", "foveal.receptive_field"} & _imports(f)]
    assert offenders == []


@pytest.mark.parametrize("enabled", [True, False])
def test_an_analysis_leaves_the_garbage_collector_as_it_was(enabled: bool) -> None:
    was = gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        gc.enable() if enabled else gc.disable()
        foveal.receptive_field("resnet18", 64)
        foveal.load_model("resnet18")
        assert gc.isenabled() is enabled
        assert gc.get_freeze_count() == frozen
    finally:
        gc.enable() if was else gc.disable()


def test_a_wrong_handler_is_caught_by_the_size_check() -> None:
    torch = pytest.importorskip("torch")

    class Blur(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), Blur())
    handled = foveal.receptive_field(model, (1, 3, 16, 16), handlers={Blur: conv(3, padding=1)})
    assert handled.output.size == (5, 5)
    with pytest.raises(FovealError, match="PyTorch gives 14; check the handlers= entries"):
        foveal.receptive_field(model, (1, 3, 16, 16), handlers={Blur: conv(3)})
