"""The 13 cases of google-research/receptive_field's tests, rebuilt with foveal's builder.

Networks N1..N9 as described in shared/spec/google_receptive_field.md §4.1. The reference reports
(rf_x, rf_y, stride_x, stride_y, pad_x, pad_y); foveal's tuples are per axis in (H, W) order, so
x is index 1 and y index 0.
"""

from __future__ import annotations

import random

import pytest

import foveal
from foveal import Graph, add, conv, elementwise, max_pool, multiply, pad, unknown


def as_reference(result: foveal.NodeResult) -> tuple:
    (ry, rx), (sy, sx), (py, px) = result.size, result.stride, result.padding
    return rx, ry, sx, sy, px, py


def n1(pooling: bool = False, keras_same: bool = False) -> tuple[Graph, dict[str, str]]:
    g = Graph(2, name="N1")
    x = g.input("input_image")
    l1 = g.add("L1", conv(1, 4), x)
    p = g.add("L2_pad", pad((1, 1), (0, 0)), x)
    if pooling:
        l2 = g.add("L2", max_pool(3, 2), p)
        l3 = g.add("L3", max_pool(1, 2), l2)
    else:
        l2 = g.add("L2", conv(3, 2), p)
        l3 = g.add("L3", conv(1, 2, "same_upper" if keras_same else 0), l2)
    return g, {"l1": l1, "l3": l3}


def finish(g: Graph, a: str, b: str, name: str = "output") -> str:
    s = g.add(f"{name}/add", add(), [a, b])
    return g.add(name, elementwise("relu"), s)


def test_aligned() -> None:
    g, n = n1()
    finish(g, n["l1"], n["l3"])
    assert as_reference(foveal.receptive_field(g).output) == (3, 3, 4, 4, 1, 1)


def test_aligned_with_pooling() -> None:
    g, n = n1(pooling=True)
    finish(g, n["l1"], n["l3"])
    assert as_reference(foveal.receptive_field(g).output) == (3, 3, 4, 4, 1, 1)


def test_unaligned_strides_are_reported() -> None:
    g = Graph(2, name="N3")
    x = g.input("input_image")
    left = g.add("L1", conv(5, 2), g.add("L1_pad", pad((2, 2), (1, 1)), x))
    right = g.add("L3", conv(3, 1), g.add("L2", conv(3, 1), x))
    finish(g, left, right)
    out = foveal.receptive_field(g).output
    assert out.aligned is False
    assert "stride 2 vs 1" in out.misalignment
    assert out.size == (None, None)  # no single size: it grows with the feature index
    lo, hi = out.region(3, 3)[0]
    # union of the two paths' exact regions for feature 3: [6-2, 6+2] and [3, 3+4]
    assert (lo, hi) == (3, 8)


def n4() -> Graph:
    g = Graph(2, name="N4")
    x = g.input("input_image")
    l1 = g.add("L1", conv(1, 4), x)
    l3 = g.add("L3", conv(1, 2), g.add("L2", conv(3, 2, "same_upper"), x))
    finish(g, l1, l3)
    return g


def test_undefined_padding() -> None:
    a = foveal.receptive_field(n4())
    assert as_reference(a.output) == (3, 3, 4, 4, None, None)
    assert a.output.aligned is None
    assert any("depends on the input size" in r for r in a.output.reasons)


def test_fixed_input_dim() -> None:
    a = foveal.receptive_field(n4(), input_shape=(9, 9))
    assert as_reference(a.output) == (3, 3, 4, 4, 1, 1)
    assert a.output.aligned is True


def test_unaligned_fixed_input_dim() -> None:
    a = foveal.receptive_field(n4(), input_shape=(8, 8))
    out = a.output
    assert out.aligned is False
    assert "centre" in out.misalignment
    assert out.size == (3, 3)  # the exact union is still known


def test_non_square_rf() -> None:
    g = Graph(2, name="N5")
    x = g.input("input_image")
    x = g.add("L1", conv((3, 5), 2), x)
    x = g.add("L2", conv((3, 1), 2), x)
    g.add("output", elementwise("relu"), x)
    assert as_reference(foveal.receptive_field(g).output) == (5, 7, 4, 4, 0, 0)


def n6() -> Graph:
    g, n = n1()
    l3 = n["l3"]
    shape = g.add("Dropout/dropout_1/Shape", unknown("Shape"), l3)
    noise = g.add("Dropout/dropout_1/random_uniform", unknown("RandomUniform"), shape)
    dropped = g.add("Dropout/dropout_1/mul", multiply(), [l3, noise])
    finish(g, n["l1"], dropped)
    return g


def test_stop_propagation() -> None:
    a = foveal.receptive_field(n6(), stop_propagation=["Dropout/dropout_1/random_uniform"])
    assert as_reference(a.output) == (3, 3, 4, 4, 1, 1)


def test_unknown_op_without_stop_propagation_names_node_and_op() -> None:
    with pytest.raises(foveal.UnsupportedOpError, match=r"'Dropout/dropout_1/Shape'.*'Shape'"):
        foveal.receptive_field(n6())


def test_coordinates_roundtrip() -> None:
    g, n = n1()
    finish(g, n["l1"], n["l3"])
    out = foveal.receptive_field(g).output
    rng = random.Random(0)
    for _ in range(50):
        x = (rng.randrange(100), rng.randrange(100))
        features = out.feature_at(*x)
        centre = tuple(-p + f * s + (r - 1) / 2 for f, s, p, r in
                       zip(features, out.stride, out.padding, out.size))
        assert centre == x
        if all(f.is_integer() for f in features):
            assert out.center(*(int(f) for f in features)) == x


def test_aligned_with_control_dependencies_fixed_input() -> None:
    g, n = n1()
    finish(g, n["l1"], n["l3"])
    a = foveal.receptive_field(g, input_shape=(1, 1, 8, 8))
    assert as_reference(a.output) == (3, 3, 4, 4, 1, 1)
    assert a["L1"].output_shape == (2, 2) and a["L3"].output_shape == (2, 2)


def n8(keras: bool = False) -> Graph:
    g, n = n1(keras_same=keras)
    l4 = finish(g, n["l1"], n["l3"], "L4")
    l5 = g.add("L5", conv(1, 2), l4)
    l6 = g.add("L6", conv(3, 2), g.add("L6_pad", pad((1, 1), (0, 0)), l4))
    finish(g, l5, l6)
    return g


@pytest.mark.parametrize("keras", [False, True], ids=["", "UsingKeras"])
def test_intermediate_add_node(keras: bool) -> None:
    a = foveal.receptive_field(n8(keras))
    assert as_reference(a.output) == (11, 11, 8, 8, 5, 5)
    assert as_reference(a["L4"]) == (3, 3, 4, 4, 1, 1)


def test_intermediate_add_node_same_padding_fixed_input() -> None:
    g = Graph(2, name="N9")
    x = g.input("input_image")
    l1 = g.add("L1", conv(1, 4, "same_upper"), x)
    l3 = g.add("L3", conv(1, 2, "same_upper"), g.add("L2", conv(3, 2, "same_upper"), x))
    l4 = finish(g, l1, l3, "L4")
    l5 = g.add("L5", conv(1, 2, "same_upper"), l4)
    l6 = g.add("L6", conv(3, 2, "same_upper"), l4)
    finish(g, l5, l6)
    a = foveal.receptive_field(g, input_shape=(17, 17))
    assert as_reference(a.output) == (11, 11, 8, 8, 5, 5)
    assert [a[n].output_shape[0] for n in ("L2", "L3", "L1", "L4", "L5", "L6")] == [9, 5, 5, 5, 3, 3]


def parse_layer_network() -> Graph:
    """The network of parse_layer_parameters_test / graph_compute_order_test (§4.2, §4.3)."""
    g = Graph(2, name="parse_layer")
    x = g.input("input_image")
    l1 = g.add("L1", conv(1, 4), x)
    l2 = g.add("L2", conv(3, 2), g.add("L2_pad", pad((1, 1), (0, 0)), x))
    l3 = g.add("L3", max_pool(3, 2, "same_upper"), l2)
    l4 = g.add("L4_relu", elementwise("relu"), g.add("L4_add", add(), [l1, l3]))
    l5 = g.add("L5", conv(1, 2, "same_upper"), l4)
    l6 = g.add("L6", conv(3, 2, "same_upper"), l4)
    g.add("L7_add", add(), [l5, l6])
    return g


def test_compute_order_sizes_at_224() -> None:
    a = foveal.receptive_field(parse_layer_network(), input_shape=224)
    expected = {"input_image": 224, "L1": 56, "L2_pad": 225, "L2": 112, "L3": 56, "L4_relu": 56,
                "L5": 28, "L6": 28, "L7_add": 28}
    assert {n: a[n].output_shape for n in expected} == {n: (v, v) for n, v in expected.items()}
    order = [r.name for r in a]
    for r in a:
        assert all(order.index(i) < order.index(r.name) for i in r.inputs)


@pytest.mark.parametrize("size, left", [(4, 0), (5, 1)])
def test_same_padding_depends_on_input_size(size: int, left: int) -> None:
    g = Graph(2)
    g.add("L3", max_pool(3, 2, "same_upper"), g.input("x"))
    assert foveal.receptive_field(g, size)["L3"].padding == (left, left)
    assert foveal.receptive_field(g)["L3"].padding == (None, None)
    g2 = Graph(2)
    g2.add("L5", conv(1, 2, "same_upper"), g2.input("x"))
    assert foveal.receptive_field(g2)["L5"].padding == (0, 0)
