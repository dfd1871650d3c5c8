"""foveal.compat.rfa_toolbox against rfa_toolbox's own test-suite numbers (shared/spec/rfa_toolbox.md
§6), its README examples (only the import lines changed), and the cases where rfa_toolbox is wrong."""

from __future__ import annotations

import json
import math
import random

import pytest

from foveal.compat.rfa_toolbox import (
    EnrichedNetworkNode,
    LayerDefinition,
    input_resolution_range,
    obtain_all_critical_layers,
    obtain_border_layers,
    visualize_architecture,
)
from foveal.compat.rfa_toolbox.architectures import resnet, vgg
from foveal.compat.rfa_toolbox.graphs import (
    filter_all_rf_info_with_infinite_receptive_field,
    is_infinite,
    naive_minmax_filter,
    noop_filter,
)
from foveal.compat.rfa_toolbox.utils.graph_utils import obtain_all_nodes

INF = math.inf


def node(name, kernel=3, stride=1, preds=(), **kw):
    layer = LayerDefinition(name=name, kernel_size=kernel, stride_size=stride)
    return EnrichedNetworkNode(name=name, layer_info=layer, predecessors=list(preds), **kw)


# -- LayerDefinition ------------------------------------------------------------------------------

def test_layer_definition_round_trips_through_json() -> None:
    layer = LayerDefinition.from_dict({"name": "test", "kernel_size": 3, "stride_size": 1})
    assert set(layer.to_dict()) == {"name", "kernel_size", "stride_size"}
    assert LayerDefinition.from_dict(json.loads(json.dumps(layer.to_dict()))) == layer
    assert LayerDefinition(name="fc").kernel_size == INF and LayerDefinition(name="fc").stride_size == 1
    assert LayerDefinition(name="t", kernel_size=(3, 4), stride_size=(4, 5)).kernel_size == (3, 4)


def test_layer_definition_rejects_bad_values() -> None:
    rng = random.Random(0)
    for value in [*range(-9, 1), *(rng.randint(-100, -1) for _ in range(10))]:
        with pytest.raises(ValueError):
            LayerDefinition(name="x", kernel_size=value)
        with pytest.raises(ValueError):
            LayerDefinition(name="x", kernel_size=3, stride_size=value)
    for _ in range(50):
        a, b = rng.sample(range(1, 6), 2)
        with pytest.raises(ValueError):
            LayerDefinition(name="x", kernel_size=(3,) * a, stride_size=(1,) * b)


# -- receptive fields of hand-built graphs --------------------------------------------------------

@pytest.mark.parametrize("kernels, strides, expected", [
    ([3] * 5, [1] * 5, [3, 5, 7, 9, 11]),
    ([3] * 5, [1, 2, 1, 2, 1], [3, 5, 9, 13, 21]),
    ([1, 1, 1, 3, 1], [1, 2, 1, 2, 1], [1, 1, 1, 5, 5]),
])
def test_chains(kernels, strides, expected) -> None:
    previous: list = []
    for i, (k, s) in enumerate(zip(kernels, strides)):
        previous = [node(f"conv{i}", k, s, previous)]
        assert previous[0].receptive_field_min == previous[0].receptive_field_max == expected[i]


def test_branching() -> None:
    c1 = node("conv1", 3, 1)
    c2, c3 = node("conv2", 3, 2, [c1]), node("conv3", 5, 2, [c1])
    c4 = node("conv4", 3, 1, [c2, c3])
    c5 = node("conv5", 3, 1, [c4])
    assert [c.receptive_field_min for c in (c1, c2, c3)] == [3, 5, 7]
    assert (c4.receptive_field_min, c4.receptive_field_max) == (9, 11)
    assert (c5.receptive_field_min, c5.receptive_field_max) == (13, 15)
    assert [n.name for n in obtain_all_nodes(c3)] == ["conv1", "conv2", "conv3", "conv4", "conv5"]


@pytest.mark.parametrize("name, expected", [
    ("vgg11", [1, 3, 4, 8, 10, 18, 26, 30, 46, 62, 70, 102, 134, 150, INF, INF, INF]),
    ("vgg13", [1, 3, 5, 6, 10, 14, 16, 24, 32, 36, 52, 68, 76, 108, 140, 156, INF, INF, INF]),
    ("vgg16", [1, 3, 5, 6, 10, 14, 16, 24, 32, 40, 44, 60, 76, 92, 100, 132, 164, 196, 212, INF, INF, INF]),
    ("vgg19", [1, 3, 5, 6, 10, 14, 16, 24, 32, 40, 48, 52, 68, 84, 100, 116, 124, 156, 188, 220, 252, 268,
               INF, INF, INF]),
])
def test_hand_built_vgg(name, expected) -> None:
    assert [n.receptive_field_min for n in getattr(vgg, name)().all_layers] == expected


def test_hand_built_resnet18_max_rf() -> None:
    (add,) = [n for n in resnet.resnet18().all_layers if n.name == "Stage3-Block1-Addition"]
    assert add.receptive_field_max == 435


def tuple_graph(stride1=1):
    c1 = node("conv1", (3, 3), stride1)
    c2, c3 = node("conv2", (3, 3), 1, [c1]), node("conv3", (5, 5), 1, [c1])
    c4 = node("conv4", (3, 3), 1, [c2, c3])
    fc = node("fc", None, None, [c4])
    return c1, c2, c3, c4, fc


def test_tuple_kernels() -> None:
    c1, c2, c3, c4, fc = tuple_graph()
    assert [c.receptive_field_min for c in (c1, c2, c3)] == [(3, 3), (5, 5), (7, 7)]
    assert (c4.receptive_field_min, c4.receptive_field_max) == ((7, 7), (9, 9))
    assert fc.receptive_field_min == fc.receptive_field_max == INF
    c1, c2, c3, c4, _ = tuple_graph(stride1=(1, 2))
    assert [c.receptive_field_min for c in (c1, c2, c3)] == [(3, 3), (5, 7), (7, 11)]
    assert (c4.receptive_field_min, c4.receptive_field_max) == ((7, 11), (9, 15))
    c4 = tuple_graph()[3]
    assert not c4.is_border(32) and not c4.is_border((32, 32))
    assert c4.is_border(2) and c4.is_border((2, 2))


# rfa_toolbox's TestFiltering fixture: six branches off a 1x1 root, (kernel, stride) each
BRANCHES = [((3, 3), (1, 1)), (3, (1, 1)), (3, 1), ((INF, 3), (1, 1)), ((INF, INF), (1, 1)), (INF, (1, 1))]


def test_filters() -> None:
    """Duplicates are removed among the inputs' pairs, before the layer: (3, (1,1)) and
    ((3,3), (1,1)) differ there and both become ((3,3), (1,1)) after a 1x1 layer, and both stay;
    so do (inf, (1,1)) and ((inf,inf), (1,1)). The inf filter keeps everything when nothing is
    finite."""
    def branches(filter_rf):
        root = node("root", 1, 1, receptive_field_info_filter=filter_rf)
        return [node(f"s{i}", k, s, [root], receptive_field_info_filter=filter_rf)
                for i, (k, s) in enumerate(BRANCHES)]

    def merge(preds, filter_rf, kernel=1):
        return node("merge", kernel, kernel, preds, receptive_field_info_filter=filter_rf)

    finite_filter = filter_all_rf_info_with_infinite_receptive_field
    everything = merge(branches(noop_filter), noop_filter, kernel=(1, 1))
    assert len(everything.all_layers) - 2 == len(everything.receptive_field_sizes) == 6
    assert everything.receptive_field_sizes.count((3, 3)) == 3  # three inputs, one value, kept thrice
    for preds in (branches(noop_filter), branches(finite_filter)):
        finite = merge(preds, finite_filter)
        assert finite.receptive_field_sizes == [(3, 3), (3, 3), 3]
        assert not any(is_infinite(s) for s in finite.receptive_field_sizes)
        assert merge(preds[3:], finite_filter).receptive_field_sizes == [(INF, 3), (INF, INF), (INF, INF)]
        assert len(merge(preds[3:], noop_filter).receptive_field_info) == 3
    shared = node("twice", 3, 1, [node("a", 3, 1), node("b", 3, 1)])  # two equal inputs: one pair
    assert shared.receptive_field_sizes == [5]


def test_naive_minmax_filter_is_lossy_as_documented() -> None:
    """Pairs (5,1), (2,4), (3,1) then a 3x3 conv: the true min is 5; keeping min-r and max-r gives 7."""
    roots = [node("a", 5, 1), node("b", 2, 4), node("c", 3, 1)]
    exact = node("x", 3, 1, [node("m", 1, 1, roots)])
    lossy = node("y", 3, 1, [node("m2", 1, 1, roots, receptive_field_info_filter=naive_minmax_filter)])
    assert exact.receptive_field_min == 5
    assert lossy.receptive_field_min == 7


# -- verdicts on hand-built graphs ----------------------------------------------------------------

def test_critical_layers_of_hand_built_networks() -> None:
    v16 = vgg.vgg16()
    assert len(obtain_all_critical_layers(v16, 32, filter_dense=False)) == 13
    assert len(obtain_all_critical_layers(v16, 32)) == 10
    assert len(obtain_all_critical_layers(resnet.resnet18(), 32)) == 9


def test_border_layers_of_hand_built_networks() -> None:
    v16 = vgg.vgg16()
    assert len(obtain_border_layers(v16, 42000)) == 0
    assert len(obtain_border_layers(v16, 42000, filter_dense=False)) == 2
    assert len(obtain_border_layers(v16, 32)) == 10
    assert len(obtain_border_layers(resnet.resnet18(), 32)) == 10
    border = obtain_border_layers(resnet.resnet101(), 32)
    assert len(border) == 58
    for n in border:
        for p in n.predecessors:
            assert p.receptive_field_min >= 32 or p.compute_feature_map_size(32) <= n.kernel_size


def test_critical_layers_work_on_tuple_receptive_fields() -> None:
    """rfa_toolbox raises TypeError here (a plain '>' between a tuple and an int)."""
    c = node("c", (3, 9), 1)
    c = node("d", (3, 9), 1, [c])
    assert c.receptive_field_min == (5, 17)
    assert obtain_all_critical_layers(c, 10) == []
    assert obtain_all_critical_layers(c, (4, 10)) == [c]
    drawing = visualize_architecture(c, "yellow", input_res=10)
    assert 'fillcolor="yellow"' in drawing.source


# -- input_resolution_range -----------------------------------------------------------------------

def seven_chain():
    x = None
    for i in range(6):
        x = node(f"conv{i}", 3, 1, [x] if x else [])
    return node("softmax", 1, 1, [x])


def test_range_of_a_chain() -> None:
    out = seven_chain()
    assert input_resolution_range(out) == ((13, 13), (13, 13))
    assert input_resolution_range(out, lower_bound=True) == ((11, 11), (13, 13))
    for cardinality in random.Random(1).sample(range(1, 1000), 5):
        low, high = input_resolution_range(out, cardinality=cardinality)
        assert len(low) == len(high) == cardinality


def test_range_of_branches_with_tuple_kernels() -> None:
    x = None
    for i in range(3):
        x = node(f"conv{i}", 3, 1, [x] if x else [])
    b1, b2 = node("b1", (7, 12), 1, [x]), node("b2", (21, 4), 1, [x])
    out = node("out", 1, 1, [node("merge", 3, 1, [b1, b2])])
    assert input_resolution_range(out) == ((27, 18), (29, 20))
    x = None
    for i in range(6):
        x = node(f"conv{i}", (3, 5), 1, [x] if x else [])
    assert input_resolution_range(node("out", 1, 1, [x])) == ((13, 25), (13, 25))


def test_range_options_that_raise_in_rfa_toolbox() -> None:
    """filter_kernel_size_1 on tuples and lower_bound on three axes raise in rfa_toolbox."""
    x = None
    for i in range(4):
        x = node(f"conv{i}", (3, 5, 7), 1, [x] if x else [])
    out = node("head", (1, 1, 1), 1, [x])
    assert input_resolution_range(out, filter_kernel_size_1=True) == ((9, 17, 25), (9, 17, 25))
    assert input_resolution_range(out, lower_bound=True) == ((7, 13, 19), (9, 17, 25))
    one_d = node("c1", (3,), 1)
    one_d = node("c2", (3,), 1, [one_d])
    assert input_resolution_range(one_d) == ((5,), (5,))  # no cardinality=1 needed


def test_all_layers_of_a_graph_with_two_roots() -> None:
    """rfa_toolbox loses the second root's nodes; every node is listed here."""
    i1, i2 = node("i1", 1, 1), node("i2", 1, 1)
    a = node("a", 3, 1, [i2])
    m = node("m", 1, 1, [i1, a])
    assert [n.name for n in m.all_layers] == ["i1", "i2", "a", "m"]
    assert [n.name for n in i1.all_layers] == ["i1", "i2", "a", "m"]


# -- README examples and visualisation -------------------------------------------------------------

def test_readme_custom_graph_example(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    conv1 = EnrichedNetworkNode(name="Conv1", layer_info=LayerDefinition(
        name="Conv3x3", kernel_size=3, stride_size=1, filters=64), predecessors=[])
    conv2 = EnrichedNetworkNode(name="Conv2", layer_info=LayerDefinition(
        name="Conv3x3", kernel_size=3, stride_size=1, filters=128), predecessors=[conv1])
    conv3 = EnrichedNetworkNode(name="Conv3", layer_info=LayerDefinition(
        name="Conv3x3", kernel_size=3, stride_size=1, filters=256), predecessors=[conv1])
    conv4 = EnrichedNetworkNode(name="Conv4", layer_info=LayerDefinition(
        name="Conv3x3", kernel_size=3, stride_size=1, filters=256), predecessors=[conv2, conv3])
    out = EnrichedNetworkNode(name="Softmax", layer_info=LayerDefinition(
        name="Fully Connected", units=1000), predecessors=[conv4])
    drawing = visualize_architecture(out, "example_model", input_res=32)
    source = drawing.source
    assert source.count("->") == 5
    assert "64 filters" in source and "1000 units" in source and "r(min)=5, r(max)=5" in source
    # the dense layer's inputs see 7 < 32 pixels: critical (infinite RF), not unproductive
    assert 'fillcolor="orange"' in source.split('"Softmax"')[1].split("\n")[0]
    assert source == visualize_architecture(out, "example_model", input_res=32).source  # stable ids
    import shutil

    if shutil.which("dot"):
        rendered = drawing.view()
        assert (tmp_path / rendered).read_bytes().startswith(b"%PDF")


def test_bad_resolutions() -> None:
    out = seven_chain()
    for bad in (0, -3, (32, 0), "32", ()):
        with pytest.raises(ValueError, match="input resolution must be"):
            obtain_border_layers(out, bad)
    with pytest.raises(ValueError, match="input resolution must be"):
        visualize_architecture(out, "m", input_res=0)
