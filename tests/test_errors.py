"""Bad input gets a specific exception whose message names the node and the fix."""

from __future__ import annotations

import pytest

import foveal
from foveal import Graph, conv
from foveal.errors import quoted


def test_unknown_node_suggests_close_matches() -> None:
    a = foveal.receptive_field("resnet18")
    with pytest.raises(foveal.UnknownNodeError, match="did you mean 'layer4'"):
        a["layer44"]
    with pytest.raises(foveal.UnknownNodeError, match="unknown input node 'imput'"):
        foveal.receptive_field("resnet18", input="imput")
    with pytest.raises(foveal.UnknownNodeError, match="output node"):
        foveal.receptive_field("resnet18", output="layer9")


def test_cycle_is_named() -> None:
    g = Graph(1)
    x = g.input("x")
    g.add("a", foveal.add(), [x, "b"])
    g.add("b", conv(3), "a")
    with pytest.raises(foveal.CycleError, match="cycle through 'a', 'b'"):
        foveal.receptive_field(g)


def test_dangling_edge() -> None:
    g = Graph(1)
    g.add("a", conv(3), "nowhere")
    with pytest.raises(foveal.UnknownNodeError, match="nowhere"):
        foveal.receptive_field(g)


@pytest.mark.parametrize("make, message", [
    (lambda: conv(0), "kernel must be >= 1, got 0"),
    (lambda: conv(3, stride=0), "stride must be >= 1"),
    (lambda: conv((3, 3, 3)), "kernel has 3 entries but the graph has 2 axes"),
    (lambda: conv(3, padding="sideways"), "padding mode 'sideways'"),
    (lambda: conv(3, padding=-1), "padding must be >= 0"),
    (lambda: foveal.conv_transpose(3, 2, output_padding=2), "output_padding 2 must be smaller"),
    (lambda: foveal.upsample(scale=0), "scale must be positive"),
    (lambda: foveal.pad(1, mode="mirror"), "mode 'mirror'"),
])
def test_invalid_parameters_name_the_node(make, message: str) -> None:
    g = Graph(2)
    x = g.input("x")
    with pytest.raises(foveal.InvalidParameterError, match=f"node 'bad'.*{message}"):
        g.add("bad", make(), x)


def test_graph_structure_errors() -> None:
    g = Graph(2)
    x = g.input("x")
    with pytest.raises(foveal.GraphError, match="defined twice"):
        g.input("x")
    with pytest.raises(foveal.GraphError, match="takes one input"):
        g.add("c", conv(3), [x, x])
    with pytest.raises(foveal.GraphError, match="has no inputs"):
        g.add("c", conv(3), [])
    with pytest.raises(foveal.GraphError, match="at least one spatial axis"):
        Graph(0)


def test_input_too_small() -> None:
    g = Graph(2)
    g.add("big", conv(7), g.input("x"))
    with pytest.raises(foveal.ShapeError, match="input too small at node 'big'"):
        foveal.receptive_field(g, 5)


def test_merge_of_different_sizes() -> None:
    g = Graph(1)
    x = g.input("x")
    g.add("sum", foveal.add(), [g.add("a", conv(3), x), x])
    with pytest.raises(foveal.ShapeError, match="'sum'.*different sizes.*a=8, x=10"):
        foveal.receptive_field(g, 10)


@pytest.mark.parametrize("shape", [(1, 2, 3), (0, 5), "big", 2.5])
def test_wrong_input_shape(shape) -> None:
    with pytest.raises(foveal.InvalidParameterError, match="input_shape"):
        foveal.receptive_field("vgg16", shape)


def test_bad_policy_and_model() -> None:
    with pytest.raises(foveal.InvalidParameterError, match="unknown_policy"):
        foveal.receptive_field("vgg16", unknown_policy="ignore")
    with pytest.raises(foveal.FovealError, match="neither a graph file nor a zoo model; did you mean"):
        foveal.receptive_field("resnet1000")
    with pytest.raises(foveal.FovealError, match="cannot analyse a int"):
        foveal.receptive_field(3)


def test_region_index_errors() -> None:
    r = foveal.receptive_field("resnet18", 64)["layer1"]
    with pytest.raises(foveal.InvalidParameterError, match="takes 2 indices"):
        r.region(1)
    with pytest.raises(foveal.InvalidParameterError, match="outside node 'layer1'"):
        r.region(100, 0, clip=True)
    with pytest.raises(foveal.InvalidParameterError, match="need every size"):
        foveal.receptive_field("resnet18")["layer1"].region(0, 0, clip=True)


def test_reflect_padding_must_be_smaller_than_the_input() -> None:
    g = Graph(1)
    g.add("pad", foveal.pad(3, 3, "reflect"), g.input("x"))
    with pytest.raises(foveal.ShapeError, match="'pad': reflect padding of 3 on axis T"):
        foveal.receptive_field(g, 3)
    assert foveal.receptive_field(g, 4)["pad"].output_shape == (10,)


def test_one_dimensional_padding_pair() -> None:
    g = Graph(1)
    g.add("conv", conv(3, padding=(2, 0)), g.input("x"))
    assert foveal.receptive_field(g, 10)["conv"].padding == (2,)


def test_values_from_files_are_quoted_short() -> None:
    """A name from a model file can be megabytes long: messages show its repr, cut after 80
    characters of the name (or of any other value's repr)."""
    assert quoted("conv1") == "'conv1'" and quoted("a\nb") == "'a\\nb'"
    assert quoted("p" * 1_000_000) == repr("p" * 80) + "..."
    assert quoted("p" * 10, limit=4) == "'pppp'..."
    assert quoted(b"\xff") == "b'\\xff'" and quoted({"as_int": 3}) == "{'as_int': 3}"
    assert quoted(list(range(100))) == repr(list(range(100)))[:80] + "..."
