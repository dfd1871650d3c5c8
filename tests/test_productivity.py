"""Verdicts and the input-resolution range: two independent implementations agree (foveal's engine
and the rfa_toolbox-style pair sets of the compat layer), and real PyTorch models get the numbers
rfa_toolbox gets wrong right (checked against NaN probes through PyTorch itself)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import foveal
from foveal import Graph, add, conv, dense, max_pool
from foveal.compat.rfa_toolbox import EnrichedNetworkNode, LayerDefinition
from foveal.compat.rfa_toolbox import input_resolution_range as rfa_range
from foveal.errors import FovealError, UnknownNodeError
from foveal.productivity import KINDS, classify

INF = math.inf

# -- a random DAG built twice: foveal ops and rfa_toolbox nodes -----------------------------------

layers = st.lists(st.tuples(
    st.sampled_from(["conv", "pool", "merge"]),
    st.tuples(st.sampled_from([1, 2, 3, 5]), st.sampled_from([1, 3, 4])),  # kernel per axis
    st.sampled_from([(1, 1), (2, 2), (1, 2)]),                              # stride per axis
    st.lists(st.integers(0, 1000), min_size=1, max_size=3),                # which earlier nodes feed it
), min_size=1, max_size=9)


def build_both(spec, head: bool):
    g = Graph(2)
    names = [g.add("root", conv((3, 3)), g.input("x"))]
    nodes = [EnrichedNetworkNode("root", LayerDefinition("root", (3, 3)), [])]
    for i, (kind, kernel, stride, picks) in enumerate(spec):
        srcs = sorted({p % len(names) for p in picks})
        name = f"n{i}"
        preds = [nodes[s] for s in srcs]
        if kind == "merge" and len(srcs) > 1:
            names.append(g.add(name, add(), [names[s] for s in srcs]))
            nodes.append(EnrichedNetworkNode(name, LayerDefinition(name, 1, 1), preds))
            continue
        src = names[srcs[-1]]
        op = conv(kernel, stride) if kind == "conv" else max_pool(kernel, stride)
        names.append(g.add(name, op, src))
        nodes.append(EnrichedNetworkNode(name, LayerDefinition(name, kernel, stride), [nodes[srcs[-1]]]))
    if head:
        names.append(g.add("fc", dense(), names[-1]))
        nodes.append(EnrichedNetworkNode("fc", LayerDefinition("fc"), [nodes[-1]]))
    return foveal.receptive_field(g), dict(zip(names, nodes))


def axes2(value):
    return value if isinstance(value, tuple) else (value, value)


@settings(max_examples=60, deadline=None)
@given(layers, st.booleans())
def test_range_agrees_with_pair_sets(spec, head) -> None:
    analysis, nodes = build_both(spec, head)
    output = list(nodes.values())[-1]
    for name, n in nodes.items():
        r = analysis[name]
        assert (r.size_min, r.size_max) == (axes2(n.receptive_field_min), axes2(n.receptive_field_max)), name
    for flags in [dict(filter_all_inf_rf=a, filter_kernel_size_1=b, lower_bound=c)
                  for a in (True, False) for b in (True, False) for c in (True, False)]:
        ours = analysis.input_resolution_range(**flags)
        assert tuple(ours) == rfa_range(output, **flags), flags


@settings(max_examples=60, deadline=None)
@given(layers, st.integers(1, 64), st.booleans())
def test_verdicts_agree_with_pair_sets(spec, res, filter_1) -> None:
    """At a resolution the graph is not analysed at, feature maps are estimated as rfa_toolbox
    does (resolution // stride); the root is left out (rfa's root has no input node)."""
    analysis, nodes = build_both(spec, head=False)
    verdicts = classify(analysis, resolution=(res, res), filter_kernel_size_1=filter_1)
    assert verdicts.estimated
    for name, n in nodes.items():
        if name != "root":
            assert verdicts[name].border == n.is_border(res, filter_kernel_size_1=filter_1), name


# -- verdicts with exact feature maps ------------------------------------------------------------

def chain_analysis(size: int) -> foveal.Analysis:
    g = Graph(2)
    x = g.input("x")
    for i in range(5):
        x = g.add(f"c{i}", conv(3, padding=1), x)
    g.add("fc", dense(), x)
    return foveal.receptive_field(g, (size, size))


def test_verdicts_of_a_chain_by_hand() -> None:
    """3x3 convs: min RF 3, 5, 7, 9, 11 on an 8x8 input. c3 (9 > 8) is critical: its input sees 7.
    c4's input already sees 9 >= 8 and its own 11 > 8: unproductive. The dense head reads c4,
    whose min RF 11 >= 8: unproductive too, with an infinite RF."""
    v = chain_analysis(8).verdicts()
    assert [v[n].kind for n in ("x", "c0", "c1", "c2")] == ["productive"] * 4
    assert v["c3"].kind == "critical" and "9x9" in v["c3"].reason and "8x8" in v["c3"].reason
    assert v["c4"].kind == "unproductive" and v["c4"].color == "red"
    assert v["fc"].kind == "unproductive" and v["fc"].infinite
    assert v.unproductive() == ["c4", "fc"] and v.unproductive(filter_dense=True) == ["c4"]
    assert v.critical() == ["c3"] and v.over_resolution() == ["c3", "c4", "fc"]
    assert v.over_resolution(filter_dense=True) == ["c3", "c4"]
    assert v.counts() == {"unproductive": 2, "critical": 1, "productive": 4}
    assert v.counts(filter_dense=True) == {"unproductive": 1, "critical": 1, "productive": 4}


@pytest.mark.parametrize("model, size", [("resnet50", 32), ("resnet50", 224), ("vgg16", 32)])
def test_counts_and_lists_use_one_word_one_number(model, size) -> None:
    """ResNet-50 at 32: 55 unproductive layers, flatten and fc among them (53 without the layers
    of infinite RF); counts and lists say the same with the same filter_dense."""
    v = foveal.receptive_field(model, size).verdicts()
    for filter_dense in (False, True):
        counts = v.counts(filter_dense=filter_dense)
        assert counts.get("unproductive", 0) == len(v.unproductive(filter_dense))
        assert counts.get("critical", 0) == len(v.critical(filter_dense))
        assert all(counts.get(k, 0) == len(v.of_kind(k, filter_dense)) for k in KINDS)
        layers = [n for n, verdict in v.items() if not verdict.alias
                  and not (filter_dense and verdict.infinite)]
        assert sum(counts.values()) == len(layers)
    if (model, size) == ("resnet50", 32):
        assert v.counts()["unproductive"] == 55 and v.counts(filter_dense=True)["unproductive"] == 53
        assert set(v.unproductive()) - set(v.unproductive(filter_dense=True)) == {"flatten", "fc"}
        assert set(v.over_resolution()) == set(v.critical()) | {
            n for n in v.unproductive() if all(v[n].over)}


def test_feature_map_rule_uses_the_real_sizes() -> None:
    """On a 3x3 input a 3x3 conv with padding keeps a 3x3 map: the next 3x3 conv sees a map no
    larger than its kernel and acts as a fully connected layer."""
    v = chain_analysis(3).verdicts()
    assert v["c1"].kind == "unproductive" and "no larger than its kernel 3x3" in v["c1"].reason
    assert v["c0"].kind == "unproductive"  # the input itself is 3x3


def test_partially_critical_axis() -> None:
    g = Graph(2)
    x = g.add("a", conv((3, 9), padding=(1, 4)), g.input("x"))
    g.add("b", conv((3, 9), padding=(1, 4)), x)
    v = foveal.receptive_field(g, (10, 10)).verdicts()
    assert foveal.receptive_field(g, (10, 10))["b"].size_min == (5, 17)
    assert v["b"].kind == "partially critical" and v["b"].color == "yellow" and v["b"].over == (False, True)
    assert "axis 1" in v["b"].reason


def test_a_second_input_is_unrelated() -> None:
    g = Graph(1)
    a = g.add("a", conv(3), g.input("x"))
    b = g.add("b", conv(3), g.input("y"))
    g.add("sum", add(), [a, b])
    v = foveal.receptive_field(g, {"x": 16, "y": 16}, input="x").verdicts()
    assert v["b"].kind == "unrelated" and v["sum"].kind == "productive"


def test_ranges_in_one_and_three_dimensions() -> None:
    for axes in (1, 3):
        g = Graph(axes)
        x = g.input("x")
        for i in range(4):
            x = g.add(f"c{i}", conv(3, 2 if i == 1 else 1), x)
        low, high = foveal.receptive_field(g).input_resolution_range()
        assert low == high == (13,) * axes  # RF 3, 5, 9, 13; kernel 3 x input stride 2 = 6


def adaptive_head(size: int) -> foveal.Analysis:
    """conv 3/2, conv 3, adaptive average pooling to 5, conv 3, conv 1 on a side branch merged
    back: the pooling's window depends on the size it reads (28 -> 14 -> 5: about 3)."""
    g = Graph(2)
    x = g.add("c1", conv(3, 2, padding=1), g.input("x"))
    x = g.add("c2", conv(3, padding=1), x)
    p = g.add("pool", foveal.adaptive_pool(5), x)
    y = g.add("c3", conv(3, padding=1), p)
    g.add("side", conv(1), x)
    g.add("fc", dense(), y)
    return foveal.receptive_field(g, size)


def test_range_counts_adaptive_pooling_as_global() -> None:
    """rfa_toolbox's rule: adaptive pooling is global, so the range does not depend on the size
    analysed: RF 3 then 7 before the pooling at every size; c3 and fc are behind it."""
    for size in (10, 28, 64, 200):
        found = adaptive_head(size).input_resolution_range()
        assert (found.minimum, found.maximum) == ((7, 7), (7, 7))
        assert found.maximum_from == ("c2", "c2")
        assert any("adaptive pooling counted as global" in note and "pool" in note for note in found.notes)
        low, high = adaptive_head(size).input_resolution_range(filter_all_inf_rf=False)
        assert low == high == (7, 7)  # no layer of finite RF reads what is behind the pooling
    assert adaptive_head(28)["c3"].size_min[0] > 7  # while the analysis itself sees the window


def test_adaptive_pooling_merged_with_a_trunk_keeps_the_trunk_path() -> None:
    for size in (28, 60):
        g = Graph(1)
        x = g.add("c1", conv(5, padding=2), g.input("x"))
        p = g.add("pool", foveal.adaptive_pool(4), x)
        up = g.add("up", foveal.upsample(size=size), p)
        g.add("sum", add(), [g.add("c2", conv(3, padding=1), x), up])
        found = foveal.receptive_field(g, size).input_resolution_range()
        assert (found.minimum, found.maximum) == ((7,), (7,))  # c2 and sum over the trunk: 5 + 2
        low, high = foveal.receptive_field(g, size).input_resolution_range(filter_all_inf_rf=False)
        assert low == high == (INF,)  # the sum reads the pooling's (global) branch


@pytest.mark.parametrize("size", [224, 399, 512])
def test_vgg16_range_is_rfa_toolboxs_at_every_size(size) -> None:
    """The zoo's torchvision VGG-16: its AdaptiveAvgPool2d(7) reads 1x1 at 224 and 2-3 wide at
    399; rfa_toolbox's range (212, 212) holds at every size."""
    assert tuple(foveal.receptive_field("vgg16", size).input_resolution_range()) == ((212, 212), (212, 212))


def test_bad_input() -> None:
    g = Graph(2)
    g.add("c", conv(3), g.input("x"))
    with pytest.raises(FovealError, match="need an input resolution"):
        foveal.receptive_field(g).verdicts()
    with pytest.raises(FovealError, match="integers >= 1"):
        classify(foveal.receptive_field(g), resolution=0)
    with pytest.raises(UnknownNodeError, match="did you mean 'c'"):
        foveal.receptive_field(g, 8).verdicts()["cc"]


def test_a_verdict_on_a_bound_says_so() -> None:
    g = Graph(1)
    x = g.add("u", foveal.unknown("weird"), g.add("c", conv(3), g.input("x")))
    g.add("d", conv(3), x)
    v = foveal.receptive_field(g, 5, unknown_policy="identity").verdicts()
    assert "judged on a bound" in v["d"].reason and "judged on a bound" not in v["c"].reason
