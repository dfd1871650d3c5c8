"""rfa_toolbox's hand-built graph cases (shared/spec/rfa_toolbox.md §6), built with foveal's
explicit-predecessors style. rfa's layers have no padding, and kernel None means dense (global)."""

from __future__ import annotations

import math

import pytest

import foveal
from foveal import Graph, add, conv, dense, elementwise, max_pool

INF = math.inf


def layer(g: Graph, name: str, kernel, stride=1, inputs=()) -> str:
    """An rfa LayerDefinition: kernel None is a dense layer; a root gets the graph input."""
    inputs = list(inputs) or [g.input(f"{name}/input")]
    if kernel is None:
        return g.add(name, dense(), inputs)
    if len(inputs) > 1:
        merged = g.add(f"{name}/merge", add(), inputs)
        inputs = [merged]
    return g.add(name, conv(kernel, stride), inputs)


def chain(kernels, strides) -> foveal.Analysis:
    g = Graph(2)
    previous: list[str] = []
    names = []
    for i, (k, s) in enumerate(zip(kernels, strides)):
        name = layer(g, f"conv{i}", k, s, previous)
        previous = [name]
        names.append(name)
    a = foveal.receptive_field(g)
    return a, names


@pytest.mark.parametrize("kernels, strides, expected", [
    ([3] * 5, [1] * 5, [3, 5, 7, 9, 11]),
    ([3] * 5, [1, 2, 1, 2, 1], [3, 5, 9, 13, 21]),
    ([1, 1, 1, 3, 1], [1, 2, 1, 2, 1], [1, 1, 1, 5, 5]),
])
def test_chains(kernels, strides, expected) -> None:
    a, names = chain(kernels, strides)
    for name, rf in zip(names, expected):
        assert a[name].size_min == a[name].size_max == a[name].size == (rf, rf)


def branching(kernel1=3, stride1=1):
    g = Graph(2)
    c1 = layer(g, "conv1", kernel1, stride1)
    c2 = layer(g, "conv2", 3, 2, [c1])
    c3 = layer(g, "conv3", 5, 2, [c1])
    c4 = layer(g, "conv4", 3, 1, [c2, c3])
    layer(g, "conv5", 3, 1, [c4])
    return g


def test_branching_min_max() -> None:
    a = foveal.receptive_field(branching())
    assert [a[n].size_max[0] for n in ("conv1", "conv2", "conv3")] == [3, 5, 7]
    assert (a["conv4"].size_min, a["conv4"].size_max) == ((9, 9), (11, 11))
    assert (a["conv5"].size_min, a["conv5"].size_max) == ((13, 13), (15, 15))
    # the exact union of both paths is the larger one here (same stride, nested regions)
    assert a["conv5"].size == (15, 15)


def test_tuple_kernels_and_strides() -> None:
    g = Graph(2)
    c1 = layer(g, "conv1", (3, 3), (1, 2))
    c2 = layer(g, "conv2", (3, 3), 1, [c1])
    c3 = layer(g, "conv3", (5, 5), 1, [c1])
    c4 = layer(g, "conv4", (3, 3), 1, [c2, c3])
    layer(g, "fc", None, None, [c4])
    a = foveal.receptive_field(g)
    assert a["conv1"].size == (3, 3)
    assert a["conv2"].size == (5, 7)
    assert a["conv3"].size == (7, 11)
    assert (a["conv4"].size_min, a["conv4"].size_max) == ((7, 11), (9, 15))
    assert (a["fc"].size_min, a["fc"].size_max) == ((INF, INF), (INF, INF))
    assert a["fc"].is_global == (True, True)


def vgg(config: list[int | str]) -> tuple[foveal.Analysis, list[str]]:
    g = Graph(2)
    names = [g.input("input")]
    for i, item in enumerate(config):
        if item == "M":
            names.append(g.add(f"pool{i}", max_pool(2, 2), names[-1]))
        else:
            names.append(g.add(f"conv{i}", conv(3), names[-1]))
    for i in range(3):
        names.append(g.add(f"dense{i}", dense(), names[-1]))
    return foveal.receptive_field(g), names


VGG = {
    "vgg11": ([1, "M", 1, "M", 1, 1, "M", 1, 1, "M", 1, 1, "M"],
              [1, 3, 4, 8, 10, 18, 26, 30, 46, 62, 70, 102, 134, 150, INF, INF, INF]),
    "vgg13": ([1, 1, "M", 1, 1, "M", 1, 1, "M", 1, 1, "M", 1, 1, "M"],
              [1, 3, 5, 6, 10, 14, 16, 24, 32, 36, 52, 68, 76, 108, 140, 156, INF, INF, INF]),
    "vgg16": ([1, 1, "M", 1, 1, "M", 1, 1, 1, "M", 1, 1, 1, "M", 1, 1, 1, "M"],
              [1, 3, 5, 6, 10, 14, 16, 24, 32, 40, 44, 60, 76, 92, 100, 132, 164, 196, 212,
               INF, INF, INF]),
    "vgg19": ([1, 1, "M", 1, 1, "M", 1, 1, 1, 1, "M", 1, 1, 1, 1, "M", 1, 1, 1, 1, "M"],
              [1, 3, 5, 6, 10, 14, 16, 24, 32, 40, 48, 52, 68, 84, 100, 116, 124, 156, 188, 220,
               252, 268, INF, INF, INF]),
}


@pytest.mark.parametrize("name", sorted(VGG))
def test_hand_built_vgg_minimum_rf(name: str) -> None:
    config, expected = VGG[name]
    a, names = vgg(config)
    assert [a[n].size_min[0] for n in names] == expected


def rfa_resnet18() -> tuple[Graph, str]:
    """rfa_toolbox.architectures.resnet.resnet18: stem, 4 stages of 2 basic blocks, GAP, dense."""
    g = Graph(2)
    x = layer(g, "StemConv", 7, 2)
    x = g.add("StemPool", max_pool(3, 2), x)
    for stage in range(4):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            prefix = f"Stage{stage}-Block{block}"
            y = g.add(f"{prefix}-0-Conv3x3-BatchNorm-ReLU", conv(3, stride), x)
            y = g.add(f"{prefix}-1-Conv3x3-BatchNorm-ReLU", conv(3, 1), y)
            skip = x if stride == 1 else g.add(f"BlockSkip{stage}-{block}-SkipDownsample", conv(1, 2), x)
            x = g.add(f"{prefix}-Addition", add(), [skip, y])
    x = g.add("GlobalAveragePooling", dense(), x)
    g.add("Softmax", dense(), x)
    return g, "Stage3-Block1-Addition"


def test_hand_built_resnet18_max_rf() -> None:
    g, node = rfa_resnet18()
    a = foveal.receptive_field(g)
    assert a[node].size_max == (435, 435)
    # min RF follows the shortcut paths: the stem (7, stride 2) + pool (3, stride 2) = 11 ...
    # ... plus each projection (kernel 1) adds nothing
    assert a[node].size_min == (11, 11)


def test_min_max_agree_with_explicit_path_enumeration() -> None:
    """An independent check: enumerate every path of a small DAG and fold the rfa recurrence."""
    g = Graph(1)
    x = g.input("x")
    a1 = g.add("a1", conv(3, 2), x)
    a2 = g.add("a2", conv(5, 1), x)
    a3 = g.add("a3", max_pool(2, 2), a2)
    m = g.add("m", add(), [a1, a3])
    b1 = g.add("b1", conv(1, 1), m)
    b2 = g.add("b2", conv(7, 1, dilation=2), m)
    m2 = g.add("m2", add(), [b1, b2, m])
    out = g.add("out", conv(3, 2), m2)
    analysis = foveal.receptive_field(g)

    def paths(node: str) -> list[list[str]]:
        if node == "x":
            return [[]]
        found = []
        for ref in g.nodes[node].inputs:
            found += [p + [node] for p in paths(ref)]
        return found

    sizes = []
    for p in paths(out):
        r, j = 1, 1
        for name in p:
            op = g.nodes[name].op
            if op.op == "window":
                r += (op.dilation[0] * (op.kernel[0] - 1)) * j
                j *= op.stride[0]
        sizes.append(r)
    assert analysis[out].size_min == (min(sizes),)
    assert analysis[out].size_max == (max(sizes),)


def test_global_branch_keeps_finite_minimum() -> None:
    """A squeeze-and-excitation branch: min RF stays finite, max becomes infinite."""
    g = Graph(2)
    x = g.add("conv", conv(3, 1, 1), g.input("x"))
    s = g.add("squeeze", foveal.global_pool(), x)
    s = g.add("excite", conv(1), s)
    g.add("scale", foveal.multiply(), [x, s])
    a = foveal.receptive_field(g)
    assert a["scale"].size_min == (3, 3) and a["scale"].size_max == (INF, INF)
    assert a["scale"].is_global == (True, True)
    assert elementwise  # the builder exports it
