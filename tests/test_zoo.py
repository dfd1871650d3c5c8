"""The built-in zoo: every shipped graph equals a fresh capture from the live frameworks, the zoo
works with only the core importable, and fixed-size graphs refuse other sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import resources

import pytest
from core_only import run_core_only

import foveal
from foveal import graph_json, zoo
from foveal.errors import FovealError
from foveal.zoo.capture import SOURCES, capture

TORCHVISION_SOURCES = [s for s in SOURCES if s.framework == "torchvision"]
KERAS_SOURCES = [s for s in SOURCES if s.framework == "keras"]


def _index() -> dict:
    return json.loads(resources.files(zoo).joinpath(zoo.INDEX).read_text())


def test_the_index_lists_every_source_and_nothing_else() -> None:
    assert zoo.names() == sorted(s.name for s in SOURCES)
    shipped = {p.name for p in resources.files(zoo).joinpath(zoo.GRAPHS).iterdir()}
    assert shipped == {f"{name}.json.gz" for name in zoo.names()}


@pytest.mark.parametrize("source", TORCHVISION_SOURCES, ids=lambda s: s.name)
def test_torchvision_graph_equals_a_fresh_capture(source) -> None:
    pytest.importorskip("torch")
    from torch_models import import_torchvision

    import_torchvision()
    fresh = capture(source)
    assert graph_json.graph_to_dict(zoo.load(source.name)) == graph_json.graph_to_dict(fresh.graph), (
        f"{source.name} changed: rerun scripts/capture-zoo")
    assert _index()["models"][source.name] == fresh.entry


RECAPTURE_KERAS = textwrap.dedent("""
    import json
    from foveal import graph_json, zoo
    from foveal.zoo.capture import SOURCES, capture
    changed = {}
    for source in SOURCES:
        if source.framework == "keras":
            fresh = capture(source)
            if graph_json.graph_to_dict(fresh.graph) != graph_json.graph_to_dict(zoo.load(source.name)):
                changed[source.name] = "graph"
            else:
                changed[source.name] = fresh.entry
    print(json.dumps(changed))
""")


def test_keras_graphs_equal_a_fresh_capture() -> None:
    """In a subprocess on the TensorFlow backend: Keras fixes its backend when first imported (other
    tests use torch), and keras.applications' NASNet refuses the torch backend."""
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", RECAPTURE_KERAS], env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = json.loads(done.stdout.splitlines()[-1])
    index = _index()["models"]
    assert sorted(fresh) == sorted(s.name for s in KERAS_SOURCES)
    assert {name: entry for name, entry in fresh.items() if entry != index[name]} == {}, (
        "rerun scripts/capture-zoo")


@pytest.mark.parametrize("name, node, size, stride", [
    ("resnet50", "layer4", 427, 32),  # golden values of the PyTorch issue
    ("resnet18", "layer4", 435, 32),
    ("keras.ResNet50", "conv5_block3_out", 483, 32),  # stride on the 1x1 conv: resnet_v1_50's 483
])
def test_analysis_offline_with_only_the_core(name: str, node: str, size: int, stride: int) -> None:
    done = run_core_only("analyze", name, "--input-size", "224", "--output-node", node, "--format", "json")
    assert done.returncode == 0, done.stderr
    rf = json.loads(done.stdout)["nodes"][-1]
    assert rf["size"] == [size, size] and rf["stride"] == [stride, stride] and rf["status"] == "exact"


def test_fixed_size_graphs_hold_only_at_their_size() -> None:
    entry = zoo.entry("fcn_resnet50")
    assert entry.fixed_size and entry.captured_at == (520, 520)
    default = foveal.receptive_field("fcn_resnet50")
    assert default.input_shape == (520, 520)
    again = foveal.receptive_field("fcn_resnet50", (1, 3, 520, 520))
    assert again.output.size == default.output.size
    with pytest.raises(FovealError, match="holds only at input size 520x520"):
        foveal.receptive_field("fcn_resnet50", 224)
    with pytest.raises(FovealError, match="holds only at input size 224x224"):
        foveal.receptive_field("vit_b_16", 256)
    assert not zoo.entry("resnet50").fixed_size and not zoo.entry("keras.NASNetLarge").fixed_size


def test_unknown_names_suggest_close_ones() -> None:
    with pytest.raises(FovealError, match="did you mean resnet50"):
        foveal.receptive_field("resnet5O")
    with pytest.raises(FovealError, match="not in the zoo; 'foveal zoo' lists"):
        zoo.entry("zzzz")


def test_each_load_is_a_fresh_graph() -> None:
    first = zoo.load("resnet18")
    first.nodes.clear()
    assert zoo.load("resnet18").nodes
