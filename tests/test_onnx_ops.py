"""ONNX front-end, op by op: hand-made graphs against the perturbation oracle (tests/onnx_oracle.py).

Every case builds a small graph with onnx.helper, checks it (strict shape inference, full check),
and compares, for every node, foveal's output size with the reference output's spatial shape and
`region(*index, clip=True)` at EVERY output position with the hull of the input pixels the ONNX
reference implementation actually reads. A few golden values are written from the spec formulas.

Where the reference implementation (onnx.reference) cannot run a model or departs from the spec,
the oracle runs an equivalent model (spelled out at each place):

- Upsample-7 (`scales` attribute) is not read by the reference, and its Upsample only does
  nearest with integer scales; Resize-10 fails there (its second input is taken as roi). The
  oracle runs the spec's equivalent: Resize-11 with `asymmetric` coordinates (nearest: `floor`,
  which is what the Upsample reference does with np.repeat).
- ConvTranspose with `output_shape` and auto_pad NOTSET: the spec splits the total padding as
  SAME_LOWER does; the reference uses zero pads instead. The oracle runs the explicit pads. The
  spec also says output_shape overrides pads, while the reference uses pads when both are
  given, so no case gives both.
- Reshape-1 (`shape` attribute) has no reference implementation: the oracle runs Reshape-5.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper
from onnx import helper as oh
from onnx_oracle import Dependencies, dependencies, positive_weights

import foveal
from foveal.errors import UnsupportedOpError

FLOAT = TensorProto.FLOAT
LATEST = onnx.defs.onnx_opset_version()


# ------------------------------------------------------------------------------------------
# Building graphs


def _rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


def ints(values, name: str) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def floats(values, name: str) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.float32), name)


def make_model(nodes, x_shape, inits=(), opset: int = 17, *, outputs=None, x_name: str = "x",
               check: bool = True, extra_opsets=()) -> onnx.ModelProto:
    """One float input `x_name`; outputs: the last node's first output unless given."""
    outputs = outputs or [nodes[-1].output[0]]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info(x_name, FLOAT, list(x_shape))],
                          [oh.make_tensor_value_info(o, FLOAT, None) for o in outputs], list(inits))
    opsets = [oh.make_opsetid("", opset), *extra_opsets]
    model = oh.make_model(graph, opset_imports=opsets, ir_version=max(8, oh.find_min_ir_version_for(opsets)))
    if check:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        onnx.checker.check_model(model, full_check=True)
    return model


def conv(name, x, cin, cout, kernel, inits, rng, *, group=1, bias=True, **attrs) -> onnx.NodeProto:
    """A Conv node with positive weights (and bias) added to `inits`."""
    inits.append(positive_weights([cout, cin // group, *kernel], rng, f"{name}.w"))
    inputs = [x, f"{name}.w"]
    if bias:
        inits.append(positive_weights([cout], rng, f"{name}.b"))
        inputs.append(f"{name}.b")
    return oh.make_node("Conv", inputs, [f"{name}.y"], name=name, kernel_shape=list(kernel), group=group,
                        **attrs)


def conv_transpose(name, x, cin, cout, kernel, inits, rng, **attrs) -> onnx.NodeProto:
    inits.append(positive_weights([cin, cout, *kernel], rng, f"{name}.w"))
    return oh.make_node("ConvTranspose", [x, f"{name}.w"], [f"{name}.y"], name=name,
                        kernel_shape=list(kernel), **attrs)


def node(op, name, inputs, n_outputs: int = 1, **attrs) -> onnx.NodeProto:
    outputs = [f"{name}.y"] + [f"{name}.y{i}" for i in range(1, n_outputs)]
    return oh.make_node(op, list(inputs), outputs, name=name, **attrs)


# ------------------------------------------------------------------------------------------
# Comparing with the oracle


def compare(model, input_shape=None, *, names=None, spatial_axes=None, input_spatial_axes=None,
            oracle_model=None, dense: bool = False, float64: bool = True):
    """foveal against the oracle on every node in `names` (default: every node of the graph).

    dense: the case has no holes (no dilation, no transposed-convolution gaps), so where foveal
    says exact the oracle's pixel set must fill its hull.
    A node foveal marks as a bound must contain the pixels read; otherwise the regions are equal.
    Returns (analysis, {node name: Dependencies}).
    """
    dims = model.graph.input[0].type.tensor_type.shape.dim
    full_shape = tuple(d.dim_value for d in dims)
    analysis = foveal.receptive_field(model, input_shape if input_shape is not None else full_shape)
    tensor_of = {n.name: n.output[0] for n in model.graph.node}
    names = list(names) if names is not None else list(tensor_of)
    axes = {tensor_of[n]: a for n, a in (spatial_axes or {}).items()}
    deps = dependencies(oracle_model or model, [tensor_of[n] for n in names], spatial_axes=axes,
                        input_spatial_axes=input_spatial_axes, float64=float64)
    by_name = {n: deps[tensor_of[n]] for n in names}
    problems = []
    for name in names:
        problems += _compare_node(analysis[name], by_name[name], dense)
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems[:12])
    return analysis, by_name


def _compare_node(result, dep: Dependencies, dense: bool) -> list[str]:
    name = result.name
    n_axes = len(dep.input_shape)
    if not dep.output_shape:  # no spatial axis left (dense, reduce): one position reads them all
        if tuple(result.output_shape) != (1,) * n_axes:
            return [f"{name}: output_shape {tuple(result.output_shape)}, expected {(1,) * n_axes}"]
        positions = [((0,) * n_axes, ())]
    else:
        if tuple(result.output_shape) != dep.output_shape:
            return [f"{name}: output_shape {tuple(result.output_shape)}, reference {dep.output_shape}"]
        positions = [(idx, idx) for idx in dep.positions()]
    problems = []
    for foveal_index, oracle_index in positions:
        got = result.region(*foveal_index, clip=True)
        want = dep.hull(oracle_index)
        if result.status == "bound":  # a bound must contain what is read
            if want[0] is not None and (got[0] is None or any(
                    g[0] > w[0] or g[1] < w[1] for g, w in zip(got, want))):  # type: ignore[index]
                problems.append(f"{name}{list(foveal_index)}: bound {got} misses {want}")
        elif tuple(got) != want:
            problems.append(f"{name}{list(foveal_index)}: region {got}, reference reads {want}")
        elif dense and result.exact and not dep.is_box(oracle_index):
            problems.append(f"{name}{list(foveal_index)}: exact {got} but the reference reads a "
                            f"set with holes")
    return problems


# ------------------------------------------------------------------------------------------
# The oracle itself, on a textbook case


def test_oracle_conv_matches_the_textbook_formula():
    """Conv k=3, dilation 2, stride 2, pads (1, 0) on a 12-long axis: first = 2o - 1, taps + 2t."""
    rng, inits = _rng(), []
    model = make_model([conv("c", "x", 2, 3, [3], inits, rng, strides=[2], dilations=[2], pads=[1, 0])],
                       [1, 2, 12], inits)
    dep = dependencies(model)["c.y"]
    assert dep.output_shape == (5,)
    for (o,) in dep.positions():
        taps = [2 * o - 1 + 2 * t for t in range(3)]
        assert dep.reads[(o,)] == frozenset((i,) for i in taps if 0 <= i < 12)


# ------------------------------------------------------------------------------------------
# Golden values from the spec formulas


def test_golden_conv_chain():
    """conv k3 s2 p1 -> maxpool k2 s2 -> conv k3 dilation 2 p2, 2-D.

    r' = r + (k_eff - 1) * j, j' = s * j, P' = P + p * j (k_eff = d(k - 1) + 1):
    size 3, 3 + 1*2 = 5, 5 + 4*4 = 21; stride 2, 4, 4; padding 1, 1 + 0*2 = 1, 1 + 2*4 = 9.
    Output sizes on 16: floor((16 + 2 - 3)/2) + 1 = 8, floor((8 - 2)/2) + 1 = 4,
    floor((4 + 4 - 5)/1) + 1 = 4.
    """
    rng, inits = _rng(), []
    nodes = [conv("c1", "x", 2, 3, [3, 3], inits, rng, strides=[2, 2], pads=[1, 1, 1, 1]),
             node("MaxPool", "p", ["c1.y"], kernel_shape=[2, 2], strides=[2, 2]),
             conv("c2", "p.y", 3, 2, [3, 3], inits, rng, dilations=[2, 2], pads=[2, 2, 2, 2])]
    analysis = foveal.receptive_field(make_model(nodes, [1, 2, 16, 16], inits), (16, 16))
    expected = {"c1": ((3, 3), (2, 2), (1, 1), (8, 8)), "p": ((5, 5), (4, 4), (1, 1), (4, 4)),
                "c2": ((21, 21), (4, 4), (9, 9), (4, 4))}
    for name, (size, stride, padding, shape) in expected.items():
        result = analysis[name]
        assert (result.size, result.stride, result.padding, result.output_shape) == \
            (size, stride, padding, shape), name
        assert result.exact


def test_golden_same_upper_and_lower_1d():
    """k=4, s=2 on n=9: out = ceil(9/2) = 5, total pad = (5-1)*2 + 4 - 9 = 3.

    SAME_UPPER puts floor(3/2) = 1 before, SAME_LOWER ceil(3/2) = 2.
    """
    for auto_pad, before in (("SAME_UPPER", 1), ("SAME_LOWER", 2)):
        rng, inits = _rng(), []
        model = make_model([conv("c", "x", 2, 2, [4], inits, rng, strides=[2], auto_pad=auto_pad)],
                           [1, 2, 9], inits)
        result = foveal.receptive_field(model, 9)["c"]
        assert (result.size, result.stride, result.padding, result.output_shape) == \
            ((4,), (2,), (before,), (5,)), auto_pad


def test_golden_conv_transpose():
    """ConvTranspose k3 s2 pads (1, 1) on 6: output o = 2i - 1 + t reads i in [(o - 1)/2, (o + 1)/2]:
    one input for even o, two for odd o. Period 2, phase sizes (1, 2), size 2, stride 1/2,
    padding -first(0) = 0; length 2*(6 - 1) + 3 - 2 = 11."""
    rng, inits = _rng(), []
    model = make_model([conv_transpose("t", "x", 2, 2, [3], inits, rng, strides=[2], pads=[1, 1])], [1, 2, 6],
                       inits)
    t = foveal.receptive_field(model, 6)["t"]
    assert (t.size, t.stride, t.padding, t.output_shape) == ((2,), (Fraction(1, 2),), (0,), (11,))
    assert (t.period, t.phase_sizes) == ((2,), ((1, 2),))
    assert [t.region(o, clip=True) for o in range(4)] == [((0, 0),), ((0, 1),), ((1, 1),), ((1, 2),)]


def test_golden_pool_and_global():
    """AveragePool k3 s2 VALID on 11: out floor((11 - 3)/2) + 1 = 5, padding 0; then GAP."""
    model = make_model([node("AveragePool", "a", ["x"], kernel_shape=[3], strides=[2], auto_pad="VALID"),
                        node("GlobalAveragePool", "g", ["a.y"])], [1, 2, 11])
    analysis = foveal.receptive_field(model, 11)
    a = analysis["a"]
    assert (a.size, a.stride, a.padding, a.output_shape) == ((3,), (2,), (0,), (5,))
    assert analysis["g"].output_shape == (1,)
    assert analysis["g"].region(0, clip=True) == ((0, 10),)
    assert analysis.output.name == "g"


def test_input_shape_forms_and_path(tmp_path):
    """Spatial int, spatial tuple, full NCHW shape, and a path to a .onnx file agree."""
    rng, inits = _rng(), []
    model = make_model([conv("c", "x", 2, 2, [3, 3], inits, rng, strides=[2, 2], pads=[1, 1, 1, 1])],
                       [1, 2, 9, 9], inits)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    results = [foveal.receptive_field(model, 9), foveal.receptive_field(model, (9, 9)),
               foveal.receptive_field(model, (1, 2, 9, 9)), foveal.receptive_field(str(path), (9, 9)),
               foveal.receptive_field(path, (9, 9))]
    for analysis in results:
        c = analysis["c"]
        assert (c.size, c.stride, c.padding, c.output_shape) == ((3, 3), (2, 2), (1, 1), (5, 5))
        assert c.region(4, 0, clip=True) == ((7, 8), (0, 1))
    assert results[0]["x"].output_shape == (9, 9)
    declared = foveal.receptive_field(model)  # the model's own fixed sizes
    assert declared["c"].region(4, 0, clip=True) == ((7, 8), (0, 1))
    assert foveal.receptive_field(model, 9, output="x").output.name == "x"


# ------------------------------------------------------------------------------------------
# Conv

AUTO_PADS = ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]


def _conv_attrs(auto_pad, stride, dilation, rank, pads):
    attrs = {"strides": [stride] * rank, "dilations": [dilation] * rank}
    if auto_pad == "NOTSET":
        attrs["pads"] = pads
    else:
        attrs["auto_pad"] = auto_pad
    return attrs


@pytest.mark.parametrize("size", [(7, 10), (8, 9)])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("auto_pad", AUTO_PADS)
def test_conv_2d(auto_pad, stride, dilation, size):
    rng, inits = _rng(), []
    attrs = _conv_attrs(auto_pad, stride, dilation, 2, [1, 0, 0, 2])  # H: 1 before; W: 2 after
    model = make_model([conv("c", "x", 2, 3, [3, 2], inits, rng, **attrs)], [1, 2, *size], inits)
    compare(model, size, dense=dilation == 1)


@pytest.mark.parametrize("size", [9, 10, 11, 12])
@pytest.mark.parametrize("kernel", [2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("auto_pad", AUTO_PADS)
def test_conv_1d(auto_pad, stride, dilation, kernel, size):
    rng, inits = _rng(), []
    attrs = _conv_attrs(auto_pad, stride, dilation, 1, [2, 1])
    model = make_model([conv("c", "x", 2, 2, [kernel], inits, rng, **attrs)], [1, 2, size], inits)
    compare(model, size, dense=dilation == 1)


def test_conv_3d():
    rng, inits = _rng(), []
    nodes = [conv("c1", "x", 1, 2, [3, 2, 3], inits, rng, strides=[2, 1, 2], auto_pad="SAME_UPPER"),
             conv("c2", "c1.y", 2, 2, [2, 2, 2], inits, rng, dilations=[1, 2, 1], pads=[1, 0, 0, 0, 1, 1])]
    compare(make_model(nodes, [1, 1, 5, 6, 7], inits), (5, 6, 7))


@pytest.mark.parametrize("opset", [1, 11, LATEST])
def test_conv_chain_grouped_and_opsets(opset):
    """A depthwise conv, a grouped conv and a 1x1 conv, at the oldest, a middle and the newest opset."""
    rng, inits = _rng(), []
    nodes = [conv("dw", "x", 4, 4, [3, 3], inits, rng, group=4, pads=[1, 1, 1, 1], strides=[2, 2]),
             conv("g2", "dw.y", 4, 4, [2, 3], inits, rng, group=2, strides=[1, 2]),
             conv("pw", "g2.y", 4, 2, [1, 1], inits, rng, bias=False)]
    compare(make_model(nodes, [1, 4, 11, 12], inits, opset=opset), (11, 12), dense=True)


# ------------------------------------------------------------------------------------------
# ConvTranspose


def _output_shape_pads(n, k, s, d, output_shape, output_padding=0, upper=False):
    """The spec's split of the total padding when output_shape is given."""
    total = s * (n - 1) + output_padding + (k - 1) * d + 1 - output_shape
    return (total // 2, total - total // 2) if upper else (total - total // 2, total // 2)


CONV_TRANSPOSE_CASES = {
    "plain_s2": dict(strides=[2, 2]),
    "pads": dict(strides=[2, 2], pads=[1, 0, 0, 1]),
    "output_padding": dict(strides=[2, 3], pads=[1, 1, 1, 1], output_padding=[1, 2]),
    "dilations": dict(strides=[2, 1], dilations=[2, 2], pads=[0, 1, 2, 0]),
    "kernel_below_stride": dict(strides=[3, 2], kernel=[2, 1]),
    "same_upper": dict(strides=[2, 3], auto_pad="SAME_UPPER"),
    "same_lower": dict(strides=[2, 3], auto_pad="SAME_LOWER"),
    "output_shape_same_upper": dict(strides=[2, 2], auto_pad="SAME_UPPER", output_shape=[10, 11]),
    "output_shape_same_lower": dict(strides=[2, 2], auto_pad="SAME_LOWER", output_shape=[10, 11]),
    "stride1_dilated": dict(dilations=[2, 3], pads=[2, 1, 1, 2]),
}


@pytest.mark.parametrize("case", sorted(CONV_TRANSPOSE_CASES))
def test_conv_transpose_2d(case):
    attrs = dict(CONV_TRANSPOSE_CASES[case])
    kernel = attrs.pop("kernel", [3, 3])
    rng, inits = _rng(), []
    nodes = [conv_transpose("t", "x", 2, 2, kernel, inits, rng, **attrs),
             conv("c", "t.y", 2, 2, [2, 2], inits, rng)]
    dense = "dilations" not in attrs and case != "kernel_below_stride"
    compare(make_model(nodes, [1, 2, 5, 6], inits), (5, 6), dense=dense)


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("output_shape", [9, 10, 11])
def test_conv_transpose_output_shape_1d(output_shape, upper):
    """output_shape with auto_pad NOTSET (spec: padding split as SAME_LOWER) or SAME_UPPER.

    The reference takes zero pads for NOTSET + output_shape, against the spec, so the oracle
    runs the spec's explicit pads for that case.
    """
    n, k, s = 5, 3, 2
    attrs = {"strides": [s], "output_shape": [output_shape]}
    if upper:
        attrs["auto_pad"] = "SAME_UPPER"
    rng, inits = _rng(), []
    model = make_model([conv_transpose("t", "x", 2, 2, [k], inits, rng, **attrs)], [1, 2, n], inits)
    before, after = _output_shape_pads(n, k, s, 1, output_shape, upper=upper)
    rng, inits = _rng(), []
    oracle_model = make_model([conv_transpose("t", "x", 2, 2, [k], inits, rng, strides=[s],
                                              pads=[before, after])], [1, 2, n], inits)
    assert oracle_model.graph.output[0].type.tensor_type.shape.dim[2].dim_value == output_shape
    compare(model, n, oracle_model=oracle_model, dense=True)


@pytest.mark.parametrize("n", [4, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
def test_conv_transpose_1d(kernel, stride, n):
    rng, inits = _rng(), []
    nodes = [conv_transpose("t", "x", 2, 2, [kernel], inits, rng, strides=[stride],
                            pads=[min(1, kernel - 1), 0], output_padding=[stride - 1]),
             conv("c", "t.y", 2, 2, [3], inits, rng, strides=[2])]
    compare(make_model(nodes, [1, 2, n], inits), n, dense=kernel >= stride)


@pytest.mark.parametrize("n", [4, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_conv_transpose_same_1d(auto_pad, stride, n):
    rng, inits = _rng(), []
    model = make_model([conv_transpose("t", "x", 2, 2, [4], inits, rng, strides=[stride], auto_pad=auto_pad)],
                       [1, 2, n], inits)
    compare(model, n, dense=True)


def test_conv_transpose_3d_and_grouped():
    rng, inits = _rng(), []
    nodes = [conv_transpose("t", "x", 2, 2, [2, 3, 2], inits, rng, strides=[2, 1, 3], pads=[0, 1, 0, 1, 0, 0],
                            dilations=[1, 2, 1]),
             conv("c", "t.y", 2, 2, [2, 2, 2], inits, rng)]
    compare(make_model(nodes, [1, 2, 3, 4, 3], inits), (3, 4, 3))
    # group 2: the reference fails on groups, so the oracle runs Split -> two ConvTranspose -> Concat
    rng = _rng()
    weights = rng.uniform(0.5, 1.5, size=(4, 1, 3, 2)).astype(np.float32)
    attrs = {"kernel_shape": [3, 2], "strides": [2, 3], "pads": [1, 0, 0, 1]}
    grouped = oh.make_node("ConvTranspose", ["x", "g.w"], ["g.y"], name="g", group=2, **attrs)
    model = make_model([grouped], [1, 4, 4, 3], [numpy_helper.from_array(weights, "g.w")])
    oracle_nodes = [node("Split", "split", ["x"], n_outputs=2, axis=1, num_outputs=2),
                    oh.make_node("ConvTranspose", ["split.y", "w0"], ["g0"], name="g0", **attrs),
                    oh.make_node("ConvTranspose", ["split.y1", "w1"], ["g1"], name="g1", **attrs),
                    oh.make_node("Concat", ["g0", "g1"], ["g.y"], name="g", axis=1)]
    halves = [numpy_helper.from_array(weights[:2], "w0"), numpy_helper.from_array(weights[2:], "w1")]
    oracle_model = make_model(oracle_nodes, [1, 4, 4, 3], halves, opset=18)
    compare(model, (4, 3), oracle_model=oracle_model, dense=True)


# ------------------------------------------------------------------------------------------
# Pooling


def _pool_attrs(auto_pad, stride, ceil_mode, dilation=None):
    attrs = {"kernel_shape": [3, 2], "strides": [stride, stride], "ceil_mode": ceil_mode}
    if dilation is not None:
        attrs["dilations"] = [dilation, dilation]
    if auto_pad == "NOTSET":
        attrs["pads"] = [1, 0, 1, 1]
    else:
        attrs["auto_pad"] = auto_pad
    return attrs


@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("auto_pad", AUTO_PADS)
def test_max_pool(auto_pad, stride, ceil_mode, dilation):
    model = make_model([node("MaxPool", "p", ["x"], **_pool_attrs(auto_pad, stride, ceil_mode, dilation))],
                       [1, 2, 8, 9], opset=12)
    compare(model, (8, 9), dense=dilation == 1)


@pytest.mark.parametrize("op", ["AveragePool", "LpPool"])
@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("auto_pad", AUTO_PADS)
def test_average_and_lp_pool(op, auto_pad, stride, ceil_mode):
    attrs = _pool_attrs(auto_pad, stride, ceil_mode, dilation=2 if stride == 2 else None)
    if op == "AveragePool":
        attrs["count_include_pad"] = stride % 2
    else:
        attrs["p"] = 2
    model = make_model([node(op, "p", ["x"], **attrs)], [1, 2, 9, 8], opset=19)
    compare(model, (9, 8), dense=stride != 2)


@pytest.mark.parametrize("n", [7, 8])
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_1d_older_opsets(op, n):
    """Opset 7 pools (no ceil_mode, no dilations) in 1-D, and opset 10 with ceil_mode."""
    model = make_model([node(op, "p", ["x"], kernel_shape=[3], strides=[2], pads=[1, 1])], [1, 2, n], opset=7)
    compare(model, n, dense=True)
    model = make_model([node(op, "p", ["x"], kernel_shape=[2], strides=[2], pads=[0, 1], ceil_mode=1)],
                       [1, 2, n], opset=10)
    compare(model, n, dense=True)


@pytest.mark.parametrize("n", [7, 8])
@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("auto_pad", AUTO_PADS)
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "LpPool"])
def test_pool_1d(op, auto_pad, stride, ceil_mode, n):
    attrs = {"kernel_shape": [3], "strides": [stride], "ceil_mode": ceil_mode, "dilations": [1 + (n % 2)]}
    if auto_pad == "NOTSET":
        attrs["pads"] = [2, 1]
    else:
        attrs["auto_pad"] = auto_pad
    compare(make_model([node(op, "p", ["x"], **attrs)], [1, 2, n], opset=19), n, dense=n % 2 == 0)


def test_pool_3d():
    nodes = [node("MaxPool", "p", ["x"], kernel_shape=[2, 3, 2], strides=[2, 2, 1], pads=[0, 1, 1, 1, 1, 0],
                  ceil_mode=1),
             node("AveragePool", "a", ["p.y"], kernel_shape=[2, 2, 2], auto_pad="SAME_LOWER",
                  strides=[1, 2, 2])]
    compare(make_model(nodes, [1, 1, 5, 6, 5], opset=19), (5, 6, 5), dense=True)


def test_global_pools_and_reduce():
    rng, inits = _rng(), []
    nodes = [conv("c", "x", 2, 2, [3, 3], inits, rng, strides=[2, 2]),
             node("GlobalAveragePool", "gap", ["c.y"]),
             node("GlobalMaxPool", "gmp", ["c.y"]),
             node("Add", "sum", ["gap.y", "gmp.y"])]
    analysis, _ = compare(make_model(nodes, [1, 2, 9, 10], inits), (9, 10))
    assert analysis["gap"].output_shape == (1, 1)
    assert analysis["sum"].region(0, 0, clip=True) == ((0, 8), (0, 8))  # the conv never reads W = 9


@pytest.mark.parametrize("keepdims", [1, 0])
@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax"])
def test_reduce_over_spatial_axes(op, opset, keepdims):
    """Over both spatial axes, and over W only (H stays a feature axis), keepdims 0/1."""
    inits = []
    both, width = {"keepdims": keepdims}, {"keepdims": 1}
    if opset < 18:
        both["axes"], width["axes"] = [2, 3], [-1]
        nodes = [node(op, "all", ["x"], **both), node(op, "w", ["x"], **width)]
    else:
        inits = [ints([2, 3], "axes_hw"), ints([-1], "axes_w")]
        nodes = [node(op, "all", ["x", "axes_hw"], **both), node(op, "w", ["x", "axes_w"], **width)]
    model = make_model(nodes, [1, 2, 6, 7], inits, opset=opset, outputs=["all.y", "w.y"])
    analysis, deps = compare(model, (6, 7))
    assert analysis["all"].region(*[0] * 2, clip=True) == ((0, 5), (0, 6))
    assert deps["w"].output_shape == (6, 1)


# ------------------------------------------------------------------------------------------
# Resize and Upsample

CTMS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize",
        "half_pixel_symmetric"]
NEAREST_MODES = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
RESIZE_SHAPE = (1, 2, 6, 7)
RESIZE_TARGETS = {  # direction, by -> scales (N, C, H, W) or sizes (H, W)
    ("up", "scales"): [1, 1, 2, 1.5],
    ("down", "scales"): [1, 1, 0.5, 0.75],
    ("up", "sizes"): [11, 10],
    ("down", "sizes"): [4, 3],
}


def resize_model(opset, mode, ctm, nearest_mode, *, scales=None, sizes=None, axes=None, roi=None,
                 shape=RESIZE_SHAPE, extra=None):
    """Resize at `opset` (11, 13, 18, 19); scales on every axis (or on `axes`), sizes on H, W."""
    rank = len(shape)
    attrs = {"mode": mode, "coordinate_transformation_mode": ctm, **(extra or {})}
    if mode == "nearest":
        attrs["nearest_mode"] = nearest_mode
    if axes is not None:
        attrs["axes"] = axes
    n_axes = len(axes) if axes is not None else rank
    inits = []
    if ctm == "tf_crop_and_resize":
        inits.append(floats(roi if roi is not None else [0] * n_axes + [1] * n_axes, "roi"))
        roi_name = "roi"
    elif opset < 13:
        inits.append(floats([], "roi"))
        roi_name = "roi"
    else:
        roi_name = ""
    inputs = ["x", roi_name]
    if scales is not None:
        inits.append(floats(scales, "scales"))
        inputs.append("scales")
    else:
        if axes is None:
            sizes = list(shape[:rank - len(sizes)]) + list(sizes)
        if opset < 13:
            inits.append(floats([], "scales"))
            inputs.append("scales")
        else:
            inputs.append("")
        inits.append(ints(sizes, "sizes"))
        inputs.append("sizes")
    return make_model([node("Resize", "r", inputs, **attrs)], shape, inits, opset=opset)


def _resize_cases(all_opsets: bool):
    combos = ([("nearest", c, m) for c in CTMS for m in NEAREST_MODES]
              + [(mode, c, None) for mode in ("linear", "cubic") for c in CTMS])
    opsets = itertools.cycle([11, 13, 18, 19])
    for (mode, ctm, nearest_mode), target in itertools.product(combos, RESIZE_TARGETS):
        if ctm == "half_pixel_symmetric":
            choices = [19]
        else:
            choices = [11, 13, 18, 19] if all_opsets else [next(opsets)]
        for opset in choices:
            yield pytest.param(opset, mode, ctm, nearest_mode, *target,
                               id=f"{mode}-{ctm}-{nearest_mode}-{'-'.join(target)}-op{opset}")


SYMMETRIC_SCALES = {"up": [1, 1, 2, 1.2], "down": [1, 1, 0.5, 0.7]}
"""half_pixel_symmetric differs from half_pixel when size x scale is not whole (W: 7 x 1.2, 7 x 0.7).
foveal computes source coordinates exactly; the reference computes them in floating point from the
float32 scale, so at a source coordinate that is exactly a whole or half pixel (7 x 0.75 gives 3.0,
the reference 2.99999999) the two round differently. These scales give no such coordinate."""


def _check_resize(opset, mode, ctm, nearest_mode, direction, by):
    target = RESIZE_TARGETS[(direction, by)]
    if ctm == "half_pixel_symmetric" and by == "scales":
        target = SYMMETRIC_SCALES[direction]
    model = resize_model(opset, mode, ctm, nearest_mode, **{by: target})
    compare(model, RESIZE_SHAPE[2:], dense=True)


@pytest.mark.parametrize("opset, mode, ctm, nearest_mode, direction, by", _resize_cases(False))
def test_resize(opset, mode, ctm, nearest_mode, direction, by):
    _check_resize(opset, mode, ctm, nearest_mode, direction, by)


@pytest.mark.slow
@pytest.mark.parametrize("opset, mode, ctm, nearest_mode, direction, by", _resize_cases(True))
def test_resize_every_opset(opset, mode, ctm, nearest_mode, direction, by):
    _check_resize(opset, mode, ctm, nearest_mode, direction, by)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("ctm", ["pytorch_half_pixel", "align_corners", "half_pixel"])
def test_resize_to_size_one(ctm, mode):
    """An output of length 1 (H: 6 -> 1, W: 7 -> 3).

    The spec maps it to x = 0 for pytorch_half_pixel and align_corners; the reference uses
    -0.5 for pytorch_half_pixel (PyTorch's choice; it matters for cubic only). The oracle runs
    the spec: H with align_corners, then W with pytorch_half_pixel (Resize is separable).
    """
    model = resize_model(13, mode, ctm, "round_prefer_floor", sizes=[1, 3])
    oracle_model = None
    if ctm == "pytorch_half_pixel":
        attrs = {"mode": mode, **({"nearest_mode": "round_prefer_floor"} if mode == "nearest" else {})}
        oracle_model = make_model(
            [oh.make_node("Resize", ["x", "", "", "size_h"], ["h.y"], name="h", axes=[2],
                          coordinate_transformation_mode="align_corners", **attrs),
             oh.make_node("Resize", ["h.y", "", "", "size_w"], ["r.y"], name="r", axes=[3],
                          coordinate_transformation_mode="pytorch_half_pixel", **attrs)],
            RESIZE_SHAPE, [ints([1], "size_h"), ints([3], "size_w")], opset=18)
    compare(model, (6, 7), oracle_model=oracle_model, dense=True)


@pytest.mark.parametrize("case", ["axes_hw", "axes_w_scales", "axes_h_sizes", "axes_negative",
                                  "roi_crop"])
def test_resize_axes_opset18(case):
    if case == "axes_hw":
        model = resize_model(18, "linear", "half_pixel", None, scales=[1.5, 0.75], axes=[2, 3])
    elif case == "axes_w_scales":
        model = resize_model(18, "cubic", "asymmetric", None, scales=[2.5], axes=[3])
    elif case == "axes_h_sizes":
        model = resize_model(18, "nearest", "half_pixel", "round_prefer_ceil", sizes=[9], axes=[2])
    elif case == "axes_negative":  # the reference cannot transpose with negative axes: oracle on [2, 3]
        model = resize_model(18, "linear", "align_corners", None, sizes=[4, 13], axes=[-2, -1])
        oracle_model = resize_model(18, "linear", "align_corners", None, sizes=[4, 13], axes=[2, 3])
    else:  # tf_crop_and_resize on a part of H (roi given for the resized axes only)
        model = resize_model(18, "linear", "tf_crop_and_resize", None, sizes=[5], axes=[2],
                             roi=[0.25, 0.75])
        compare_or_refuse(model, (6, 7), "roi")
        return
    compare(model, (6, 7), oracle_model=oracle_model if case == "axes_negative" else None, dense=True)


@pytest.mark.parametrize("extra", [{"exclude_outside": 1}, {"cubic_coeff_a": -0.5}])
def test_resize_cubic_options(extra):
    compare(resize_model(13, "cubic", "half_pixel", None, scales=[1, 1, 1.5, 0.5], extra=extra),
            (6, 7), dense=True)


def compare_or_refuse(model, input_shape, reason: str):
    """Outside the front-end's stated scope: foveal is right, or refuses naming `reason`."""
    try:
        foveal.receptive_field(model, input_shape)
    except UnsupportedOpError as error:
        assert reason in str(error), str(error)
        return
    compare(model, input_shape)


def test_resize_tf_crop_and_resize_partial_roi():
    """roi H [0.2, 0.8], W [0, 0.5] with sizes (the spec's and the reference's output sizes agree).

    The stated scope is roi 0 to 1: foveal may refuse a crop, but must not get it wrong."""
    model = resize_model(13, "linear", "tf_crop_and_resize", None, sizes=[5, 4],
                         roi=[0, 0, 0.2, 0, 1, 1, 0.8, 0.5])
    compare_or_refuse(model, (6, 7), "roi")


def test_resize_in_a_chain():
    rng, inits = _rng(), []
    nodes = [conv("c1", "x", 2, 2, [3, 3], inits, rng, strides=[2, 2], pads=[1, 1, 1, 1]),
             node("Resize", "up", ["c1.y", "", "scales"], mode="linear"),
             conv("c2", "up.y", 2, 2, [3, 3], inits, rng, pads=[1, 1, 1, 1])]
    inits.append(floats([1, 1, 2, 2], "scales"))
    compare(make_model(nodes, [1, 2, 9, 10], inits, opset=13), (9, 10), dense=True)


def _asymmetric_resize11(mode, scales, shape, name):
    """The spec's equivalent of Upsample / Resize-10: Resize-11, asymmetric (nearest: floor)."""
    attrs = {"mode": mode, "coordinate_transformation_mode": "asymmetric"}
    if mode == "nearest":
        attrs["nearest_mode"] = "floor"
    return make_model([oh.make_node("Resize", ["x", "roi", "scales"], [f"{name}.y"], name=name, **attrs)],
                      shape, [floats([], "roi"), floats(scales, "scales")], opset=11)


@pytest.mark.parametrize("scales", [[1.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.5, 2.5]])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("form", ["upsample7", "upsample9", "resize10"])
def test_upsample_and_resize10(form, mode, scales):
    shape = [1, 2, 5, 4]
    if mode == "nearest" and any(s != int(s) for s in scales):
        pytest.skip("nearest with a fractional scale: the rounding is not defined before Resize-11")
    if form == "upsample7":
        model = make_model([node("Upsample", "u", ["x"], mode=mode, scales=scales)], shape, opset=7)
    else:
        op = "Upsample" if form == "upsample9" else "Resize"
        model = make_model([node(op, "u", ["x", "scales"], mode=mode)], shape, [floats(scales, "scales")],
                           opset=9 if form == "upsample9" else 10)
    oracle_model = _asymmetric_resize11(mode, scales, shape, "u")
    inferred = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert inferred == [int(n * s) for n, s in zip(shape, scales)]  # onnx shape inference
    compare(model, tuple(shape[2:]), oracle_model=oracle_model, dense=True)


# ------------------------------------------------------------------------------------------
# Pad, Slice, DepthToSpace, SpaceToDepth


PAD_MODES = ["constant", "reflect", "edge", "wrap"]


@pytest.mark.parametrize("opset", [2, 11, 18, 19])
@pytest.mark.parametrize("mode", PAD_MODES)
def test_pad(mode, opset):
    if mode == "wrap" and opset < 19:
        pytest.skip("wrap is new in Pad-19")
    pads = [0, 0, 2, 1, 0, 0, 1, 3]  # N, C, H, W begins then ends
    rng, inits = _rng(), []
    if opset == 2:
        pad = node("Pad", "pad", ["x"], mode=mode, pads=pads, value=0.5)
    elif opset == 11:
        inits += [ints(pads, "pads"), floats(0.5, "value")]
        pad = node("Pad", "pad", ["x", "pads", "value"], mode=mode)
    else:  # axes input: H and W only, given as (W, H) to check the order is followed
        inits += [ints([1, 2, 3, 1], "pads"), floats(0.5, "value"), ints([3, 2], "axes")]
        pad = node("Pad", "pad", ["x", "pads", "value" if mode == "constant" else "", "axes"], mode=mode)
    nodes = [pad, conv("c", "pad.y", 2, 2, [3, 3], inits, rng, strides=[2, 2])]
    # wrap reads the far side of the axis: the pixels read have holes
    compare(make_model(nodes, [1, 2, 5, 6], inits, opset=opset if opset > 2 else 7), (5, 6),
            dense=mode != "wrap")


def test_pad_negative_crops():
    """Negative pads remove pixels (a crop) and may mix with positive ones.

    The reference (numpy.pad) rejects negative pads: the oracle runs Slice then Pad."""
    rng, inits = _rng(), [ints([0, 0, -1, 2, 0, 0, 1, -2], "pads")]
    nodes = [node("Pad", "pad", ["x", "pads"], mode="edge"),
             conv("c", "pad.y", 2, 2, [2, 2], inits, rng)]
    model = make_model(nodes, [1, 2, 6, 7], inits, opset=13)
    rng, inits = _rng(), [ints([1, 0], "starts"), ints([6, 5], "ends"), ints([2, 3], "axes"),
                          ints([0, 0, 0, 2, 0, 0, 1, 0], "pads")]
    oracle_nodes = [node("Slice", "crop", ["x", "starts", "ends", "axes"]),
                    oh.make_node("Pad", ["crop.y", "pads"], ["pad.y"], name="pad", mode="edge"),
                    conv("c", "pad.y", 2, 2, [2, 2], inits, rng)]
    oracle_model = make_model(oracle_nodes, [1, 2, 6, 7], inits, opset=13)
    compare(model, (6, 7), names=["pad", "c"], oracle_model=oracle_model, dense=True)


SLICE_CASES = {  # starts, ends, axes, steps
    "positive": ([1, 2], [5, 6], [2, 3], [1, 1]),
    "negative_indices": ([-5, 1], [-1, -2], [2, 3], [1, 1]),
    "steps": ([0, 1], [9, 100], [2, 3], [2, 3]),
    "negative_axes_steps": ([1, -6], [8, 9], [-2, -1], [3, 2]),
    "clamped_ends": ([-100, 2], [100, 2**62], [3, 2], [1, 2]),
    "channel_axis": ([1], [2], [1], [1]),
}


@pytest.mark.parametrize("case", sorted(SLICE_CASES))
@pytest.mark.parametrize("opset", [1, 10, 13])
def test_slice(case, opset):
    starts, ends, axes, steps = SLICE_CASES[case]
    if opset < 10 and any(s != 1 for s in steps):
        pytest.skip("Slice-1 has no steps")
    inits = []
    if opset == 1:
        sl = node("Slice", "s", ["x"], starts=starts, ends=ends, axes=axes)
    else:
        inits += [ints(starts, "starts"), ints(ends, "ends"), ints(axes, "axes"), ints(steps, "steps")]
        sl = node("Slice", "s", ["x", "starts", "ends", "axes", "steps"])
    nodes = [sl, node("MaxPool", "p", ["s.y"], kernel_shape=[2, 2])]
    compare(make_model(nodes, [1, 2, 9, 10], inits, opset=opset), (9, 10), dense=all(s == 1 for s in steps))


def test_slice_negative_step():
    """A negative step reverses the axis: foveal either follows it exactly or says it cannot."""
    inits = [ints([-1], "starts"), ints([-100], "ends"), ints([3], "axes"), ints([-2], "steps")]
    model = make_model([node("Slice", "s", ["x", "starts", "ends", "axes", "steps"])], [1, 2, 5, 7], inits,
                       opset=13)
    try:
        compare(model, (5, 7), dense=True)
    except UnsupportedOpError as error:
        assert "Slice" in str(error), str(error)


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space_and_back(mode):
    rng, inits = _rng(), []
    nodes = [conv("c1", "x", 2, 8, [3, 3], inits, rng, pads=[1, 1, 1, 1], strides=[2, 2]),
             node("DepthToSpace", "d2s", ["c1.y"], blocksize=2, mode=mode),
             conv("c2", "d2s.y", 2, 8, [3, 3], inits, rng),
             node("SpaceToDepth", "s2d", ["c2.y"], blocksize=2),
             conv("c3", "s2d.y", 32, 2, [2, 2], inits, rng)]
    compare(make_model(nodes, [1, 2, 9, 11], inits, opset=13), (9, 11), dense=True)


def test_depth_to_space_1x3_blocks():
    """DepthToSpace then SpaceToDepth with blocksize 3: the round trip maps each pixel onto itself."""
    rng, inits = _rng(), []
    nodes = [conv("c1", "x", 2, 9, [1, 1], inits, rng),
             node("DepthToSpace", "d2s", ["c1.y"], blocksize=3),
             node("SpaceToDepth", "s2d", ["d2s.y"], blocksize=3)]
    compare(make_model(nodes, [1, 2, 4, 3], inits, opset=11), (4, 3), dense=True)


# ------------------------------------------------------------------------------------------
# DAGs, layouts, shape ops


@pytest.mark.parametrize("opset", [2, 11, 13, 18])
def test_split_concat_dag(opset):
    """x -> Split (channels) -> two conv branches of different sizes -> Concat -> conv."""
    rng, inits = _rng(), []
    if opset == 18:
        split = node("Split", "split", ["x"], n_outputs=2, axis=1, num_outputs=2)
    elif opset == 13:
        inits.append(ints([1, 1], "split_sizes"))
        split = node("Split", "split", ["x", "split_sizes"], n_outputs=2, axis=1)
    else:
        split = node("Split", "split", ["x"], n_outputs=2, axis=1, split=[1, 1])
    nodes = [split,
             conv("a", "split.y", 1, 2, [3, 3], inits, rng, pads=[1, 1, 1, 1]),
             conv("b", "split.y1", 1, 2, [5, 3], inits, rng, strides=[1, 1], pads=[2, 1, 2, 1],
                  dilations=[1, 1]),
             node("Concat", "cat", ["a.y", "b.y"], axis=1),
             conv("c", "cat.y", 4, 2, [2, 2], inits, rng, strides=[2, 2]),
             node("Identity", "id", ["c.y"]),
             node("Dropout", "drop", ["id.y"])]
    model = make_model(nodes, [1, 2, 9, 8], inits, opset=max(opset, 7))
    compare(model, (9, 8), dense=True)


def test_branches_with_different_strides_merge():
    rng, inits = _rng(), []
    nodes = [conv("a", "x", 2, 2, [3, 3], inits, rng, strides=[2, 2], pads=[1, 1, 1, 1]),
             conv("b", "x", 2, 2, [1, 1], inits, rng, strides=[2, 2]),
             node("Add", "add", ["a.y", "b.y"]),
             node("MaxPool", "p", ["add.y"], kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 1, 1]),
             node("Concat", "cat", ["p.y", "a.y"], axis=1)]
    compare(make_model(nodes, [1, 2, 9, 10], inits, opset=13), (9, 10), dense=True)


def test_flatten_gemm_and_matmul():
    rng, inits = _rng(), []
    nodes = [conv("c", "x", 2, 2, [3, 3], inits, rng, strides=[2, 2]),
             node("Flatten", "flat", ["c.y"], axis=1),
             node("Gemm", "fc", ["flat.y", "fc.w", "fc.b"], transB=1),
             node("MatMul", "mm", ["fc.y", "mm.w"])]
    inits += [positive_weights([3, 2 * 4 * 4], rng, "fc.w"), positive_weights([3], rng, "fc.b"),
              positive_weights([3, 2], rng, "mm.w")]
    analysis, deps = compare(make_model(nodes, [1, 2, 9, 10], inits, opset=13), (9, 10),
                             names=["c", "fc", "mm"])
    assert deps["fc"].hull(()) == ((0, 8), (0, 8))
    assert analysis["mm"].region(0, 0, clip=True) == ((0, 8), (0, 8))
    assert analysis["fc"].is_global == (True, True)
    # Flatten only changes the layout: foveal keeps its spatial map; the dense layer after it is global
    flat = analysis["flat"]
    assert flat.output_shape == (4, 4) and flat.region(3, 1, clip=True) == ((6, 8), (2, 4))


def test_nhwc_input_transpose_conv_transpose_back():
    rng, inits = _rng(), []
    nodes = [node("Transpose", "to_nchw", ["x"], perm=[0, 3, 1, 2]),
             conv("c", "to_nchw.y", 3, 2, [3, 2], inits, rng, strides=[2, 1], pads=[1, 0, 1, 1]),
             node("Transpose", "to_nhwc", ["c.y"], perm=[0, 2, 3, 1]),
             node("Relu", "relu", ["to_nhwc.y"])]
    model = make_model(nodes, [1, 9, 8, 3], inits, opset=13)
    spatial = {"to_nhwc": (1, 2), "relu": (1, 2)}
    for input_shape in ((9, 8), (1, 9, 8, 3)):
        compare(model, input_shape, spatial_axes=spatial, input_spatial_axes=(1, 2), dense=True)


@pytest.mark.parametrize("opset", [5, 13, 14])
def test_reshape_channel_shuffle(opset):
    """[N, C, H, W] -> [N, g, C/g, H, W] -> Transpose(0, 2, 1, 3, 4) -> [N, C, H, W] keeps H, W."""
    rng, inits = _rng(), [ints([1, 2, 2, 7, 8], "split_shape"), ints([0, -1, 7, 8], "merge_shape")]
    nodes = [conv("c1", "x", 2, 4, [3, 3], inits, rng, pads=[1, 1, 1, 1]),
             node("Reshape", "groups", ["c1.y", "split_shape"]),
             node("Transpose", "shuffle", ["groups.y"], perm=[0, 2, 1, 3, 4]),
             node("Reshape", "merge", ["shuffle.y", "merge_shape"]),
             conv("c2", "merge.y", 4, 2, [2, 2], inits, rng, strides=[2, 2])]
    model = make_model(nodes, [1, 2, 7, 8], inits, opset=opset)
    compare(model, (7, 8), spatial_axes={"groups": (3, 4), "shuffle": (3, 4)}, dense=True)


def test_reshape_opset1_attribute():
    """Reshape-1 takes `shape` as an attribute; the reference lacks it, the oracle runs Reshape-5."""
    rng, inits = _rng(), []
    nodes = [conv("c1", "x", 2, 4, [3, 3], inits, rng),
             node("Reshape", "groups", ["c1.y"], shape=[1, 2, 2, 5, 6]),
             node("Transpose", "shuffle", ["groups.y"], perm=[0, 2, 1, 3, 4]),
             node("Reshape", "merge", ["shuffle.y"], shape=[1, 4, 5, 6]),
             conv("c2", "merge.y", 4, 2, [2, 2], inits, rng)]
    model = make_model(nodes, [1, 2, 7, 8], inits, opset=1, check=False)  # no shape inference for Reshape-1
    rng, inits = _rng(), [ints([1, 2, 2, 5, 6], "s1"), ints([1, 4, 5, 6], "s2")]
    oracle_nodes = [conv("c1", "x", 2, 4, [3, 3], inits, rng),
                    node("Reshape", "groups", ["c1.y", "s1"]),
                    node("Transpose", "shuffle", ["groups.y"], perm=[0, 2, 1, 3, 4]),
                    node("Reshape", "merge", ["shuffle.y", "s2"]),
                    conv("c2", "merge.y", 4, 2, [2, 2], inits, rng)]
    oracle_model = make_model(oracle_nodes, [1, 2, 7, 8], inits, opset=5)
    compare(model, (7, 8), spatial_axes={"groups": (3, 4), "shuffle": (3, 4)}, oracle_model=oracle_model,
            dense=True)


def test_elementwise_chain():
    """Element-wise ops and BatchNormalization (inference) read one position each."""
    rng, inits = _rng(), []
    inits += [positive_weights([2], rng, n) for n in ("bn.scale", "bn.bias", "bn.mean")]
    inits += [positive_weights([2], rng, "bn.var"), positive_weights([1, 2, 1, 1], rng, "k")]
    nodes = [conv("c", "x", 2, 2, [3, 3], inits, rng, strides=[2, 2]),
             node("BatchNormalization", "bn", ["c.y", "bn.scale", "bn.bias", "bn.mean", "bn.var"]),
             node("Relu", "relu", ["bn.y"]),
             node("Mul", "mul", ["relu.y", "k"]),
             node("Sigmoid", "sig", ["mul.y"]),
             node("Add", "add", ["sig.y", "c.y"]),
             node("LeakyRelu", "leaky", ["add.y"]),
             node("Clip", "clip", ["leaky.y", "", ""]),
             node("Softmax", "softmax", ["clip.y"], axis=1),
             node("Cast", "cast", ["softmax.y"], to=FLOAT)]
    compare(make_model(nodes, [1, 2, 9, 8], inits, opset=13), (9, 8), dense=True)


@pytest.mark.parametrize("case", ["instance_norm", "layer_norm_last_axis", "softmax_last_axis", "lrn"])
def test_ops_that_mix_positions(case):
    """Ops whose output at one position reads others: the statistics of InstanceNormalization are
    over H, W; LayerNormalization / Softmax on axis -1 mix along W; LRN mixes channels only."""
    rng, inits = _rng(), []
    if case == "instance_norm":
        inits += [positive_weights([2], rng, "s"), positive_weights([2], rng, "b")]
        op = node("InstanceNormalization", "op", ["x", "s", "b"])
    elif case == "layer_norm_last_axis":
        inits += [positive_weights([7], rng, "s"), positive_weights([7], rng, "b")]
        op = node("LayerNormalization", "op", ["x", "s", "b"], axis=-1)
    elif case == "softmax_last_axis":
        op = node("Softmax", "op", ["x"], axis=-1)
    else:
        op = node("LRN", "op", ["x"], size=3)
    nodes = [op, node("AveragePool", "pool", ["op.y"], kernel_shape=[2, 2])]
    compare(make_model(nodes, [1, 2, 6, 7], inits, opset=17), (6, 7), dense=True)


def test_matmul_along_the_last_spatial_axis():
    """MatMul of an NCHW tensor by a (W, 4) weight is a dense layer along W: foveal keeps H and
    makes W a global axis of length 1 (every output column reads the whole row)."""
    rng = _rng()
    model = make_model([node("MatMul", "mm", ["x", "w"])], [1, 2, 6, 7], [positive_weights([7, 4], rng, "w")])
    result = foveal.receptive_field(model, (6, 7))["mm"]
    dep = dependencies(model)["mm.y"]
    assert dep.output_shape == (6, 4)
    assert result.output_shape == (6, 1) and result.is_global == (False, True)
    for h, column in dep.positions():
        assert result.region(h, 0, clip=True) == dep.hull((h, column)) == ((h, h), (0, 6))


@pytest.mark.parametrize("opset", [13, 18])
def test_split_along_a_spatial_axis(opset):
    """Split along H (explicit sizes) or W (num_outputs, uneven last part) is a crop per output."""
    rng, inits = _rng(), []
    if opset == 13:
        inits.append(ints([4, 5], "parts"))
        split = node("Split", "split", ["x", "parts"], n_outputs=2, axis=2)
    else:
        split = node("Split", "split", ["x"], n_outputs=3, axis=-1, num_outputs=3)
    nodes = [split, conv("a", "split.y", 2, 2, [3, 3], inits, rng, pads=[1, 1, 1, 1]),
             conv("b", "split.y1", 2, 2, [2, 2], inits, rng, strides=[2, 2])]
    if opset == 18:
        nodes.append(node("MaxPool", "c", ["split.y2"], kernel_shape=[2, 2], pads=[1, 1, 1, 1]))
    compare(make_model(nodes, [1, 2, 9, 8], inits, opset=opset, outputs=[n.output[0] for n in nodes[1:]]),
            (9, 8), names=[n.name for n in nodes[1:]], dense=True)


def test_unsqueeze_conv2d_squeeze_as_1d():
    """A 1-D signal run through a 2-D conv of height 1 (a common export pattern) keeps its axis."""
    rng, inits = _rng(), [ints([2], "at")]
    nodes = [node("Unsqueeze", "unsq", ["x", "at"]),
             conv("c2d", "unsq.y", 2, 2, [1, 3], inits, rng, strides=[1, 2], pads=[0, 1, 0, 1]),
             node("Squeeze", "sq", ["c2d.y", "at"]),
             conv("c1d", "sq.y", 2, 2, [2], inits, rng)]
    compare(make_model(nodes, [1, 2, 11], inits, opset=13), 11, spatial_axes={"unsq": (3,), "c2d": (3,)},
            dense=True)


def test_transpose_swapping_height_and_width():
    """Regions and indices stay in the input's axis order (H, W) whichever order the tensor has."""
    rng, inits = _rng(), []
    nodes = [node("Transpose", "swap", ["x"], perm=[0, 1, 3, 2]),
             conv("c", "swap.y", 2, 2, [3, 2], inits, rng, strides=[2, 1]),  # (3, 2) over (W, H)
             node("Transpose", "back", ["c.y"], perm=[0, 1, 3, 2])]
    compare(make_model(nodes, [1, 2, 7, 9], inits, opset=13), (7, 9),
            spatial_axes={"swap": (3, 2), "c": (3, 2)}, dense=True)


@pytest.mark.parametrize("attrs", [{}, {"reverse": 1}, {"exclusive": 1}, {"exclusive": 1, "reverse": 1}])
def test_cumsum_along_width(attrs):
    """CumSum along W: position w reads 0..w (reverse: w..end; exclusive drops w itself)."""
    inits = [ints(3, "axis")]
    nodes = [node("CumSum", "cum", ["x", "axis"], **attrs),
             node("MaxPool", "p", ["cum.y"], kernel_shape=[2, 1])]
    compare(make_model(nodes, [1, 2, 5, 6], inits, opset=14), (5, 6), dense=True)


@pytest.mark.parametrize("case", ["group_norm", "mvn", "lp_norm_last", "lp_norm_channels", "log_softmax_last",
                                  "tile_channels", "expand_channels"])
def test_more_normalisations_and_broadcasts(case):
    rng, inits = _rng(), []
    if case == "group_norm":
        inits += [positive_weights([2], rng, "s"), positive_weights([2], rng, "b")]
        op = node("GroupNormalization", "op", ["x", "s", "b"], num_groups=2)
    elif case == "mvn":
        op = node("MeanVarianceNormalization", "op", ["x"])
    elif case == "lp_norm_last":
        op = node("LpNormalization", "op", ["x"], axis=-1)
    elif case == "lp_norm_channels":
        op = node("LpNormalization", "op", ["x"], axis=1)
    elif case == "log_softmax_last":
        op = node("LogSoftmax", "op", ["x"])
    elif case == "tile_channels":
        inits.append(ints([1, 2, 1, 1], "reps"))
        op = node("Tile", "op", ["x", "reps"])
    else:
        inits.append(ints([1, 3, 1, 1], "shape"))
        op = node("Expand", "op", ["x", "shape"])
    channels = 1 if case == "expand_channels" else 2
    opset = {"group_norm": 18, "mvn": 13}.get(case, 17)
    nodes = [op, node("AveragePool", "pool", ["op.y"], kernel_shape=[2, 2], strides=[2, 1])]
    strict = case not in ("group_norm", "mvn")  # strict shape inference does not go through these
    model = make_model(nodes, [1, channels, 6, 7], inits, opset=opset, check=strict)
    # the reference expands MeanVarianceNormalization into a body with float32 constants
    compare(model, (6, 7), dense=True, float64=case != "mvn")


@pytest.mark.parametrize("case", ["shape", "scales_3d", "nearest_1d", "cubic_1d_down"])
def test_resize_other_ranks(case):
    if case == "shape":  # Resize-13 with sizes computed by Shape -> Slice -> Concat (an export pattern)
        inits = [ints([2], "b"), ints([4], "e"), floats([2, 1.5], "f"), ints([1, 2], "nc")]
        nodes = [node("Shape", "shape", ["x"]), node("Slice", "hw", ["shape.y", "b", "e"]),
                 node("Cast", "hwf", ["hw.y"], to=FLOAT), node("Mul", "scaled", ["hwf.y", "f"]),
                 node("Cast", "hwi", ["scaled.y"], to=TensorProto.INT64),
                 node("Concat", "sizes", ["nc", "hwi.y"], axis=0),
                 node("Resize", "r", ["x", "", "", "sizes.y"], mode="linear")]
        model = make_model(nodes, [1, 2, 5, 6], inits, opset=13)
        compare(model, (5, 6), names=["r"], dense=True)
        return
    if case == "scales_3d":
        model = make_model([node("Resize", "r", ["x", "", "s"], mode="linear")], [1, 1, 4, 5, 6],
                           [floats([1, 1, 2, 0.5, 1.5], "s")], opset=13)
        compare(model, (4, 5, 6), dense=True)
        return
    if case == "nearest_1d":
        attrs = {"mode": "nearest", "nearest_mode": "round_prefer_ceil", "coordinate_transformation_mode":
                 "asymmetric"}
        model = make_model([node("Resize", "r", ["x", "", "s"], **attrs)], [1, 2, 9],
                           [floats([1, 1, 2.5], "s")], opset=13)
    else:
        model = make_model([node("Resize", "r", ["x", "", "", "s"], mode="cubic")], [1, 2, 13],
                           [ints([1, 2, 5], "s")], opset=13)
    compare(model, model.graph.input[0].type.tensor_type.shape.dim[2].dim_value, dense=True)


def test_nodes_named_by_output_when_unnamed_or_taken():
    """A node without a name, or whose name is taken, is named after its first output tensor."""
    rng, inits = _rng(), []
    first = conv("c", "x", 2, 2, [3, 3], inits, rng, strides=[2, 2])
    first.name = ""
    second = oh.make_node("MaxPool", ["c.y"], ["pooled"], kernel_shape=[2, 2])
    third = oh.make_node("MaxPool", ["pooled"], ["again"], name="x", kernel_shape=[2, 2])  # "x" is the input
    model = make_model([first, second, third], [1, 2, 11, 11], inits)
    analysis = foveal.receptive_field(model, (11, 11))
    assert analysis["c.y"].size == (3, 3)
    assert analysis["pooled"].size == (5, 5)
    assert analysis["again"].size == (7, 7)
    assert analysis["x"].size == (1, 1)


@pytest.mark.parametrize("case", ["concat_height", "antialias", "keep_aspect_ratio", "tf_half_pixel_for_nn",
                                  "gather_rows"])
def test_beyond_the_stated_scope(case):
    """Beyond the stated op list: foveal is right (against the oracle) or refuses naming the op."""
    rng, inits = _rng(), []
    if case == "concat_height":
        nodes = [conv("a", "x", 2, 2, [3, 1], inits, rng), node("Concat", "cat", ["a.y", "x"], axis=2)]
        model = make_model(nodes, [1, 2, 6, 7], inits, opset=13)
        op = "Concat"
    elif case == "antialias":
        model = make_model([node("Resize", "r", ["x", "", "s"], mode="linear", antialias=1)], [1, 2, 8, 9],
                           [floats([1, 1, 0.5, 0.75], "s")], opset=18)
        op = "Resize"
    elif case == "keep_aspect_ratio":
        model = make_model([node("Resize", "r", ["x", "", "", "s"], mode="linear", axes=[2, 3],
                                 keep_aspect_ratio_policy="not_larger")], [1, 2, 8, 9], [ints([4, 6], "s")],
                           opset=18)
        op = "Resize"
    elif case == "tf_half_pixel_for_nn":
        model = make_model([node("Resize", "r", ["x", "", "s"], mode="nearest",
                                 coordinate_transformation_mode="tf_half_pixel_for_nn")], [1, 2, 8, 9],
                           [floats([1, 1, 1.5, 0.5], "s")], opset=13)
        op = "Resize"
    else:
        inits.append(ints([0, 2, 3, 5], "rows"))
        model = make_model([node("Gather", "g", ["x", "rows"], axis=2)], [1, 2, 6, 7], inits, opset=13)
        op = "Gather"
    try:
        foveal.receptive_field(model, model.graph.input[0].type.tensor_type.shape.dim[2].dim_value)
    except UnsupportedOpError as error:
        assert op in str(error), str(error)
        return
    compare(model, tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[2:]))


# ------------------------------------------------------------------------------------------
# The layouts the PyTorch front-end follows: window partitions, attention scores, tokens


def _windowed(inner, inits=(), *, size=8, block=4, channels=2, opset=17):
    """x (1, C, n, n) partitioned into block x block windows as a batch of token sequences
    (windows, block^2 tokens, C), `inner` nodes on them (reading "tokens", writing "out.y" of the
    same shape), and the windows put back: (1, C, n, n)."""
    k = size // block
    inits = [*inits, ints([1, channels, k, block, k, block], "split"),
             ints([k * k, channels, block * block], "windows"),
             ints([1, k, k, channels, block, block], "unsplit"), ints([1, channels, size, size], "image")]
    nodes = [node("Reshape", "split", ["x", "split"]),
             node("Transpose", "order", ["split.y"], perm=[0, 2, 4, 1, 3, 5]),
             node("Reshape", "windows", ["order.y", "windows"]),
             node("Transpose", "tokens", ["windows.y"], perm=[0, 2, 1]),
             *inner,
             node("Transpose", "back", ["out.y"], perm=[0, 2, 1]),
             node("Reshape", "unsplit", ["back.y", "unsplit"]),
             node("Transpose", "reorder", ["unsplit.y"], perm=[0, 3, 1, 4, 2, 5]),
             node("Reshape", "image", ["reorder.y", "image"])]
    return make_model(nodes, [1, channels, size, size], inits, opset=opset)


@pytest.mark.parametrize("case", ["softmax", "layer_norm", "attention"])
def test_window_attention_reads_its_window(case):
    """Softmax, a norm, or attention written by hand (q @ k^T, softmax, @ v) over each window's
    tokens: a token reads exactly its window (a window of 4 with stride 4, upsampled back)."""
    inits = []
    if case == "softmax":
        inner = [node("Softmax", "out", ["tokens.y"], axis=1)]
    elif case == "layer_norm":  # over the tokens and channels of a window
        inits = [floats(np.ones((16, 2)), "s"), floats(np.zeros((16, 2)), "b")]
        inner = [node("LayerNormalization", "out", ["tokens.y", "s", "b"], axis=1)]
    else:
        inner = [node("Transpose", "keys", ["tokens.y"], perm=[0, 2, 1]),
                 node("MatMul", "scores", ["tokens.y", "keys.y"]),
                 node("Softmax", "weights", ["scores.y"], axis=-1),
                 node("MatMul", "out", ["weights.y", "tokens.y"])]
    model = _windowed(inner, inits)
    analysis, _ = compare(model, (8, 8), names=["image"], dense=True)
    assert analysis["image"].size == (4, 4) and analysis["image"].stride == (1, 1)


def test_a_reduction_over_each_window_is_one_position_per_window():
    """ReduceMean over a window's tokens (patch merging written as a reshape): one position per
    window, reading the window (a window of 4 with stride 4)."""
    inits = [ints([1, 2, 2, 4, 2, 4], "split"), ints([4, 5], "axes")]
    nodes = [node("Reshape", "split", ["x", "split"]),  # (N, C, H / 4, 4, W / 4, 4)
             node("Transpose", "order", ["split.y"], perm=[0, 2, 4, 1, 3, 5]),
             node("ReduceMean", "mean", ["order.y", "axes"], keepdims=0),  # over each window
             node("Transpose", "image", ["mean.y"], perm=[0, 3, 1, 2])]
    analysis, _ = compare(make_model(nodes, [1, 2, 8, 8], inits, opset=18), (8, 8), names=["image"],
                          dense=True)
    assert analysis["image"].size == (4, 4) and analysis["image"].stride == (4, 4)


def test_selecting_some_keys_of_scores_is_a_bound():
    """scores[..., :3] before the softmax reads fewer keys than the row's union: a bound."""
    inits = [ints([0], "lo"), ints([3], "hi"), ints([2], "last")]
    inner = [node("Transpose", "keys", ["tokens.y"], perm=[0, 2, 1]),
             node("MatMul", "scores", ["tokens.y", "keys.y"]),
             node("Slice", "some", ["scores.y", "lo", "hi", "last"]),
             node("Softmax", "weights", ["some.y"], axis=-1),
             node("ReduceMax", "top", ["weights.y"], axes=[2], keepdims=1),
             node("Mul", "out", ["tokens.y", "top.y"])]
    model = _windowed(inner, inits)
    analysis, _ = compare(model, (8, 8), names=["image"])
    assert analysis["image"].status == "bound"
    assert any("keys" in r for r in analysis["some"].reasons), analysis["some"].reasons


def test_roll_written_as_slices_and_concat():
    """torch.roll as exporters write it (Concat(x[k:], x[:k])) is read as PyTorch's roll: a
    circular pad and a crop; clipped regions are the pixels read."""
    rng = _rng()
    inits = [ints([3], "k"), ints([7], "n"), ints([0], "zero"), ints([3], "w")]
    nodes = [node("Slice", "tail", ["x", "k", "n", "w"]), node("Slice", "head", ["x", "zero", "k", "w"]),
             node("Concat", "rolled", ["tail.y", "head.y"], axis=3),
             conv("c", "rolled.y", 2, 2, [3, 3], inits, rng, pads=[1, 1, 1, 1])]
    analysis, _ = compare(make_model(nodes, [1, 2, 6, 7], inits, opset=13), (6, 7), names=["rolled", "c"])
    assert analysis["rolled"].op == "crop"


def test_concat_along_a_spatial_axis_pads_each_part():
    """Two branches put side by side along H: each part is padded to the whole length with
    nothing, then merged (exact)."""
    rng = _rng()
    inits = [ints([0], "zero"), ints([4], "four"), ints([9], "nine"), ints([2], "h")]
    nodes = [node("Slice", "top", ["x", "zero", "four", "h"]),
             node("Slice", "bottom", ["x", "four", "nine", "h"]),
             conv("a", "top.y", 2, 2, [3, 3], inits, rng, pads=[1, 1, 1, 1]),
             node("MaxPool", "b", ["bottom.y"], kernel_shape=[2, 2], pads=[0, 0, 1, 1]),
             node("Concat", "cat", ["a.y", "b.y"], axis=2)]
    compare(make_model(nodes, [1, 2, 9, 7], inits, opset=13), (9, 7), names=["cat"])


def test_a_statistic_expanded_back_over_the_image():
    """ReduceMean over H, W kept as (1, 1), then Expand to (H, W): every position reads every
    pixel, and the output is H x W again (an upsampling from 1, as the PyTorch front-end reads
    `expand`)."""
    inits = [ints([2, 3], "axes"), ints([1, 2, 6, 7], "shape")]
    nodes = [node("ReduceMean", "mean", ["x", "axes"], keepdims=1),
             node("Expand", "back", ["mean.y", "shape"]),
             node("Add", "sum", ["back.y", "x"])]
    analysis, _ = compare(make_model(nodes, [1, 2, 6, 7], inits, opset=18), (6, 7), names=["back", "sum"])
    assert analysis["sum"].output_shape == (6, 7) and analysis["sum"].is_global == (True, True)


def _tokens(extra_nodes, inits=(), *, size=(4, 5)):
    """x (1, 2, h, w) as tokens (1, h*w, 2) with a constant class token before them (1, 1 + hw, 2)."""
    h, w = size
    inits = [*inits, ints([1, 2, h * w], "flat"), floats(np.full((1, 1, 2), 0.5), "cls")]
    nodes = [node("Reshape", "flat", ["x", "flat"]), node("Transpose", "grid", ["flat.y"], perm=[0, 2, 1]),
             node("Concat", "tokens", ["cls", "grid.y"], axis=1), *extra_nodes]
    return make_model(nodes, [1, 2, h, w], inits, opset=13)


def test_tokens_after_a_class_token():
    """x[:, 1:] keeps the grid; token 7 of (class, grid) is grid position (1, 1): a crop; the
    class token before attention reads no pixel (no node); after attention it reads them all."""
    inits = [ints([1], "one"), ints([1000], "end"), ints([1], "axis"), ints([1, 2, 4, 5], "image"),
             ints(7, "seven"), ints(0, "zero")]
    nodes = [node("Slice", "rest", ["tokens.y", "one", "end", "axis"]),
             node("Transpose", "back", ["rest.y"], perm=[0, 2, 1]),
             node("Reshape", "image", ["back.y", "image"]),
             node("Gather", "token7", ["tokens.y", "seven"], axis=1),
             node("Gather", "cls_before", ["tokens.y", "zero"], axis=1),
             node("Transpose", "keys", ["tokens.y"], perm=[0, 2, 1]),
             node("MatMul", "scores", ["tokens.y", "keys.y"]),
             node("Softmax", "weights", ["scores.y"], axis=-1),
             node("MatMul", "attended", ["weights.y", "tokens.y"]),
             node("Gather", "cls_after", ["attended.y", "zero"], axis=1)]
    model = _tokens(nodes, inits)
    analysis, deps = compare(model, (4, 5), names=["image", "token7", "cls_after"], dense=True)
    assert analysis["token7"].region(0, 0) == ((1, 1), (1, 1))
    assert analysis["cls_after"].is_global == (True, True)
    assert "cls_before" not in analysis


def test_a_split_of_tokens_and_a_class_token_that_attended():
    """Split (class, grid): the grid keeps its layout; a class token that attended (reads every
    position) put back before the grid makes the grid's extra token (CaiT)."""
    inits = [ints([1, 20], "parts"), ints([1, 2, 4, 5], "image"), ints([1], "axis"), ints([1], "one"),
             ints([1000], "end"), floats(np.full((1, 1, 2), 0.5), "query")]
    nodes = [node("Split", "parts", ["tokens.y", "parts"], n_outputs=2, axis=1),
             node("Transpose", "keys", ["parts.y1"], perm=[0, 2, 1]),  # class attention: a constant query
             node("MatMul", "scores", ["query", "keys.y"]),
             node("Softmax", "weights", ["scores.y"], axis=-1),
             node("MatMul", "summary", ["weights.y", "parts.y1"]),  # reads the whole grid
             node("Concat", "joined", ["summary.y", "parts.y1"], axis=1),
             node("Slice", "rest", ["joined.y", "one", "end", "axis"]),
             node("Transpose", "back", ["rest.y"], perm=[0, 2, 1]),
             node("Reshape", "image", ["back.y", "image"])]
    analysis, _ = compare(_tokens(nodes, inits), (4, 5), names=["image", "summary"],
                          spatial_axes={"summary": ()}, dense=True)
    assert analysis["image"].size == (1, 1)


# ------------------------------------------------------------------------------------------
# What foveal cannot follow


def _plain_model(nodes, extra_opsets=(), opset=17):
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", FLOAT, [1, 2, 8, 8])],
                          [oh.make_tensor_value_info(nodes[-1].output[0], FLOAT, [1, 2, 8, 8])])
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset), *extra_opsets], ir_version=8)


def _assert_unsupported(model, node_name, op_type):
    with pytest.raises(UnsupportedOpError) as info:
        foveal.receptive_field(model, (8, 8))
    message = str(info.value)
    assert node_name in message and op_type in message, message


def test_unknown_op_in_default_domain():
    model = _plain_model([node("Relu", "relu", ["x"]), node("Foo", "mystery", ["relu.y"]),
                          node("Relu", "after", ["mystery.y"])])
    _assert_unsupported(model, "mystery", "Foo")


def test_unknown_op_in_another_domain():
    fused = oh.make_node("FusedConv", ["x", "w"], ["f.y"], name="fused_conv", domain="com.microsoft",
                         activation="Relu")
    model = _plain_model([fused], extra_opsets=[oh.make_opsetid("com.microsoft", 1)])
    model.graph.initializer.append(positive_weights([2, 2, 1, 1], _rng(), "w"))
    _assert_unsupported(model, "fused_conv", "FusedConv")


def test_unknown_op_policy_identity_marks_bounds():
    model = _plain_model([node("Foo", "mystery", ["x"]), node("MaxPool", "pool", ["mystery.y"],
                                                              kernel_shape=[2, 2])])
    analysis = foveal.receptive_field(model, (8, 8), unknown_policy="identity")
    assert analysis["pool"].status == "bound"


def _branch(name, value):
    out = oh.make_tensor_value_info(f"{name}.out", FLOAT, [1, 2, 8, 8])
    body = oh.make_node("Mul", ["x", f"{name}.k"], [f"{name}.out"], name=f"{name}.mul")
    return oh.make_graph([body], name, [], [out], [floats(value, f"{name}.k")])


def test_if_is_unsupported():
    """The branches read the image from the outer scope (the usual form): the If's only explicit
    input is a constant condition, yet the output depends on x through it."""
    cond = oh.make_node("Constant", [], ["cond"], name="cond", value=oh.make_tensor("v", TensorProto.BOOL,
                                                                                  [], [True]))
    branch = oh.make_node("If", ["cond"], ["if.y"], name="choose", then_branch=_branch("then", 2.0),
                          else_branch=_branch("else", 3.0))
    _assert_unsupported(_plain_model([cond, branch]), "choose", "If")


def test_if_between_two_layers_is_unsupported():
    """conv -> If (both branches read conv.y from the outer scope) -> max pool."""
    rng, inits = _rng(), []
    branches = {}
    for name, op in (("then", "Relu"), ("else", "Sigmoid")):
        out = oh.make_tensor_value_info(f"{name}.out", FLOAT, [1, 2, 8, 8])
        branches[name] = oh.make_graph([oh.make_node(op, ["c.y"], [f"{name}.out"], name=f"{name}.op")], name,
                                       [], [out])
    nodes = [conv("c", "x", 2, 2, [3, 3], inits, rng, pads=[1, 1, 1, 1]),
             oh.make_node("Constant", [], ["cond"], name="cond",
                          value=oh.make_tensor("v", TensorProto.BOOL, [], [True])),
             oh.make_node("If", ["cond"], ["if.y"], name="choose", then_branch=branches["then"],
                          else_branch=branches["else"]),
             node("MaxPool", "pool", ["if.y"], kernel_shape=[2, 2])]
    _assert_unsupported(make_model(nodes, [1, 2, 8, 8], inits), "choose", "If")


def test_if_on_a_condition_computed_from_the_image_is_unsupported():
    nodes = [node("ReduceMax", "peak", ["x"], keepdims=0), node("Greater", "bright", ["peak.y", "zero"]),
             oh.make_node("If", ["bright.y"], ["if.y"], name="choose", then_branch=_branch("then", 2.0),
                          else_branch=_branch("else", 3.0))]
    model = _plain_model(nodes)
    model.graph.initializer.append(floats(0.0, "zero"))
    _assert_unsupported(model, "choose", "If")


def test_loop_is_unsupported():
    body = oh.make_graph(
        [oh.make_node("Identity", ["cond_in"], ["cond_out"], name="keep"),
         oh.make_node("Add", ["acc_in", "x"], ["acc_out"], name="accumulate")],
        "body",
        [oh.make_tensor_value_info("i", TensorProto.INT64, []),
         oh.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         oh.make_tensor_value_info("acc_in", FLOAT, [1, 2, 8, 8])],
        [oh.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         oh.make_tensor_value_info("acc_out", FLOAT, [1, 2, 8, 8])])
    nodes = [oh.make_node("Constant", [], ["trip"], name="trip", value=oh.make_tensor("t", TensorProto.INT64,
                                                                                    [], [3])),
             oh.make_node("Loop", ["trip", "", "x"], ["loop.y"], name="repeat", body=body)]
    _assert_unsupported(_plain_model(nodes), "repeat", "Loop")


def test_resize10_nearest_shrinking_reads_ceil():
    """Resize-10 (and Upsample) nearest is asymmetric with floor(x) when enlarging and ceil(x) when
    shrinking. The reference evaluator has no Resize-10 of its own; the golden values are what
    onnxruntime 1.31.1 returns for scale 0.6 on 10 pixels (x = o / 0.6 = 0, 1.67, 3.33, 5, 6.67, 8.33)."""
    model = make_model([oh.make_node("Resize", ["x", "scales"], ["r.y"], name="r", mode="nearest")],
                       [1, 1, 1, 10], [floats([1, 1, 1, 0.6], "scales")], opset=10, check=False)
    analysis = foveal.receptive_field(model, (1, 10))
    assert analysis["r"].output_shape == (1, 6)
    read = [analysis["r"].region(0, o, clip=True)[1] for o in range(6)]
    assert read == [(i, i) for i in (0, 2, 4, 5, 7, 9)]


# ------------------------------------------------------------------------------------------
# handlers=: the caller's entries in the op table


def _conv_then_blur(domain: str = "com.example", **attrs) -> onnx.ModelProto:
    """A 3x3 Conv (padding 1), then an op of `domain` foveal has no handler for."""
    rng, inits = _rng(), []
    nodes = [conv("c", "x", 2, 2, [3, 3], inits, rng, pads=[1, 1, 1, 1]),
             oh.make_node("Blur", ["c.y"], ["blur.y"], name="blur", domain=domain, **attrs)]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", FLOAT, [1, 2, 8, 8])],
                          [oh.make_tensor_value_info("blur.y", FLOAT, [1, 2, 8, 8])], inits)
    opsets = [oh.make_opsetid("", 17)] + ([oh.make_opsetid(domain, 1)] if domain else [])
    return oh.make_model(graph, opset_imports=opsets, ir_version=8)


def test_a_handler_for_a_custom_domain_op():
    model = _conv_then_blur()
    analysis = foveal.receptive_field(model, handlers={"com.example::Blur": foveal.conv(3, padding=1)})
    blur = analysis["blur"]
    assert (blur.size, blur.stride, blur.padding, blur.output_shape) == ((5, 5), (1, 1), (2, 2), (8, 8))
    graph = foveal.onnx.graph_from_onnx(model, handlers={"com.example::Blur": foveal.conv(3, padding=1)})
    blur_node = graph.nodes["blur"]
    assert (blur_node.op.kernel, blur_node.op.padding, blur_node.label) == ((3, 3), ((1, 1), (1, 1)),
                                                                            "com.example.Blur")
    with pytest.raises(UnsupportedOpError) as info:
        foveal.receptive_field(model)
    message = str(info.value)
    assert "'blur'" in message and "com.example.Blur" in message and "domain::OpType" in message, message


def test_ops_without_a_handler_are_counted_by_key():
    from collections import Counter

    from foveal.input_spec import parse
    from foveal.onnx.convert import Converter

    model = _conv_then_blur()
    model.graph.node.extend([oh.make_node("Blur", ["blur.y"], ["b2.y"], name="b2", domain="com.example"),
                             oh.make_node("Foo", ["b2.y"], ["foo.y"], name="foo")])
    converter = Converter(model, None, parse(8))
    converter.graph()
    assert converter.unhandled == Counter({"com.example::Blur": 2, "Foo": 1})
    handled = Converter(model, None, parse(8), {"com.example::Blur": foveal.conv(3, padding=1)})
    handled.graph()
    assert handled.unhandled == Counter({"Foo": 1})


def test_a_callable_handler_reads_the_node():
    """The callable gets the NodeProto: here Blur's `size` attribute sets the kernel."""
    model = _conv_then_blur(size=5)

    def blur(node: onnx.NodeProto):
        size = oh.get_attribute_value(node.attribute[0])
        return foveal.conv(size, padding=size // 2)

    analysis = foveal.receptive_field(model, 8, handlers={"com.example::Blur": blur})
    assert analysis["blur"].size == (7, 7) and analysis["blur"].output_shape == (8, 8)


def test_a_handler_for_a_default_domain_op_and_over_a_default():
    """A default-domain op is keyed by its op type ('ai.onnx::' is the same domain); an entry for
    an op foveal knows replaces its handler for this call only."""
    model = _conv_then_blur(domain="")
    for key in ("Blur", "ai.onnx::Blur"):
        assert foveal.receptive_field(model, handlers={key: foveal.conv(3, padding=1)})["blur"].size == (5, 5)
    with pytest.raises(UnsupportedOpError, match="'Blur'"):
        foveal.receptive_field(model, handlers={"com.example::Blur": foveal.conv(3, padding=1)})
    replaced = foveal.receptive_field(model, handlers={"Blur": foveal.conv(1),
                                                       "Conv": foveal.conv(5, padding=2)})
    assert replaced["c"].size == (5, 5)
    assert foveal.receptive_field(model, handlers={"Blur": foveal.conv(1)})["c"].size == (3, 3)


@pytest.mark.parametrize("handlers, error, phrase", [
    ({3: foveal.conv(3)}, foveal.InvalidParameterError, "op types"),
    ({"com.example::": foveal.conv(3)}, foveal.InvalidParameterError, "op types"),
    ({"com.example::Blur": "conv"}, foveal.InvalidParameterError, "handlers['com.example::Blur']"),
    ({"com.example::Blur": lambda node: 3}, foveal.FovealError, "node 'blur' (Blur): handlers"),
])
def test_malformed_handlers_are_named(handlers, error, phrase):
    with pytest.raises(error) as info:
        foveal.receptive_field(_conv_then_blur(), handlers=handlers)
    assert phrase in str(info.value), str(info.value)


# ------------------------------------------------------------------------------------------
# input_shape against the input's layout


def test_a_full_shape_that_contradicts_the_layout_is_an_error():
    rng, inits = _rng(), []
    nchw = make_model([conv("c", "x", 2, 2, [3, 3], inits, rng)], [1, 2, 9, 9], inits)
    with pytest.raises(foveal.InvalidParameterError, match=r"channels first with C = 2.*give \(1, 2, 9, 9\)"):
        foveal.receptive_field(nchw, (1, 9, 9, 2))
    with pytest.raises(foveal.InvalidParameterError, match=r"give 2 spatial sizes or the full"):
        foveal.receptive_field(nchw, (9, 9, 9))
    assert foveal.receptive_field(nchw, (1, 2, 11, 9))["c"].output_shape == (9, 7)
    assert foveal.receptive_field(nchw, {"x": (11, 9)})["c"].output_shape == (9, 7)  # by input name
    with pytest.raises(foveal.InvalidParameterError, match="channels first with C = 2"):
        foveal.receptive_field(nchw, {"x": (1, 9, 9, 2)})


def test_an_nhwc_input_takes_its_full_shape_channels_last():
    """tf2onnx's NHWC input (a Transpose to NCHW first) is channels last: (N, H, W, C)."""
    rng, inits = _rng(), []
    nodes = [node("Transpose", "to_nchw", ["x"], perm=[0, 3, 1, 2]),
             conv("c", "to_nchw.y", 3, 2, [3, 3], inits, rng)]
    model = make_model(nodes, [1, 9, 8, 3], inits, opset=13)
    assert foveal.receptive_field(model, (1, 11, 10, 3))["c"].output_shape == (9, 8)
    with pytest.raises(foveal.InvalidParameterError, match=r"channels last with C = 3.*give \(1, 9, 8, 3\)"):
        foveal.receptive_field(model, (1, 3, 9, 8))
