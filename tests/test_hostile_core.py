"""Hostile graphs and JSON files: every one ends in a one-line FovealError or a correct result.

What the core must never do with a small input: work in proportion to a kernel, a scale, a
stride or an input size (closed forms instead, checked here against brute force), grow its
maps without bound (a LimitError naming the node and the limit instead), read a file that is not
a regular file, or let a malformed JSON field through as a raw Python exception.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import oracle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import foveal
from foveal import Graph, conv, conv_transpose, upsample
from foveal import ops as O
from foveal.cli import main
from foveal.limits import MAX_PERIOD, LimitError


def chain(ops: list, n_axes: int = 1) -> Graph:
    g = Graph(n_axes)
    x = g.input("x")
    for i, op in enumerate(ops):
        x = g.add(f"n{i}", op, x)
    return g


def brute_region(graph: Graph, shape: tuple[int, ...], name: str, o: int) -> tuple[int, int] | None:
    """Unclipped region of feature o of a 1-D chain, by following every tap (tests/oracle.py)."""
    sizes = oracle.sizes(graph, shape)
    positions = {o}
    order = oracle.topo_order(graph)
    for node in reversed(order[:order.index(name) + 1]):
        op = graph.nodes[node].op
        if op.op == "input":
            break
        (src,) = oracle.preds(graph, node)
        n_in, n_out = sizes[src][0], sizes[node][0]
        positions = {i for p in positions for i in oracle.lattice_taps(op, 0, p, n_in, n_out)}
    return (min(positions), max(positions)) if positions else None


# -- closed forms instead of loops ---------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(scale=st.sampled_from([2, 3, Fraction(3, 2), Fraction(5, 2), Fraction(7, 3)]),
       kernel=st.integers(1, 40), dilation=st.integers(1, 3), stride=st.integers(1, 3),
       mode=st.sampled_from(["nearest", "linear", "nearest-exact"]))
def test_large_kernels_after_upsampling_match_brute_force(scale, kernel, dilation, stride, mode) -> None:
    """A kernel far longer than the map's period: compose visits only the first and last cycle."""
    g = chain([conv(2), upsample(scale=scale, mode=mode), conv(kernel, stride, dilation=dilation)])
    n = 100
    a = foveal.receptive_field(g, n)
    out = a["n2"]
    for o in range(out.output_shape[0]):
        assert out.region(o) == (brute_region(g, (n,), "n2", o),)


@settings(max_examples=100, deadline=None)
@given(kernel=st.integers(1, 30), stride=st.integers(1, 9), dilation=st.integers(1, 6),
       before=st.integers(0, 8))
def test_transposed_taps_in_closed_form(kernel, stride, dilation, before) -> None:
    op = conv_transpose(kernel, stride, padding=(before, 0), dilation=dilation)
    g = chain([op])
    a = foveal.receptive_field(g, 12)
    for o in range(a["n0"].output_shape[0]):
        assert a["n0"].region(o) == (brute_region(g, (12,), "n0", o),)
        assert a["n0"].region(o, clip=True) == (_clipped(brute_region(g, (12,), "n0", o), g, o),)


def _clipped(region, g, o):
    taps = oracle.concrete_taps(g.nodes["n0"].op, 0, o, 12, oracle.sizes(g, (12,))["n0"][0])
    return (min(taps), max(taps)) if taps else None


def test_huge_parameters_in_closed_form() -> None:
    """A kernel of 10^9 after an upsampling, and at an input of 10^9: exact, at once."""
    k = 10**9
    a = foveal.receptive_field(chain([upsample(scale=3), conv(k)]), None)
    # feature o reads upsampled positions o .. o+k-1, i.e. inputs o//3 .. (o+k-1)//3
    assert a["n1"].period == (3,)
    assert a["n1"].phase_sizes == (tuple((t + k - 1) // 3 - t // 3 + 1 for t in range(3)),)
    b = foveal.receptive_field(chain([upsample(scale=3), conv(k)]), 10**9)
    assert b["n1"].output_shape == (2 * 10**9 + 1,)
    assert b["n1"].region(5, clip=False) == ((1, (5 + k - 1) // 3),)
    same = foveal.receptive_field(chain([conv(10**9, 10**9, "same_upper")]), 10**9 + 7)
    assert same["n0"].output_shape == (2,)


def test_global_size_over_a_long_axis_is_exact() -> None:
    """The largest hull of a global axis, read at the ends of the axis only."""
    g = Graph(1)
    x = g.input("x")
    up = g.add("up", upsample(scale=Fraction(3, 2)), x)
    wide = g.add("wide", conv(5, padding=9), up)
    glob = g.add("glob", O.global_pool(), wide)
    g.add("sum", O.add(), [wide, glob])
    a = foveal.receptive_field(g, 10**7)
    n_out = a["sum"].output_shape[0]
    ends = [*range(50), *range(n_out - 50, n_out)]
    widths = [r[1] - r[0] + 1 for o in ends if (r := a["sum"].region(o)[0])]
    assert a["sum"].size == (max(widths),)


# -- limits instead of blow-ups ------------------------------------------------------------------
@pytest.mark.parametrize("ops, n_axes, node, what", [
    ([conv_transpose(3, 2)] * 40, 2, "n16", "period"),
    ([conv_transpose(3, 2)] * 22, 1, "n16", "period"),
    ([upsample(scale=Fraction(3, 2))] * 40, 2, "n10", "period"),
    ([upsample(scale=10**9)], 2, "n0", "period of a resize"),
    ([conv_transpose(3, 10**9)], 1, "n0", "stride of a transposed window"),
    ([O.pixel_shuffle(10**9)], 1, "n0", "factor of a pixel shuffle"),
    ([conv(10**9, 10**9, "same_upper")], 2, "n0", "left paddings SAME"),
    ([upsample(scale=2**16), conv(2048, 1024, "same_upper")], 1, "n1", "composing the maps"),
])
def test_growth_is_a_limit_error_naming_the_node(ops, n_axes, node, what) -> None:
    with pytest.raises(LimitError, match=f"node '{node}'.*{what}.*limit") as found:
        foveal.receptive_field(chain(ops, n_axes))
    assert "\n" not in str(found.value)


def test_many_strides_are_bounded() -> None:
    """3,000 branches of different strides merged: quadratic work, refused in a second."""
    g = Graph(1)
    x = g.input("x")
    y = g.add("m", O.add(), [g.add(f"b{i}", conv(1, i + 1), x) for i in range(3000)])
    for i in range(100):
        y = g.add(f"c{i}", conv(3), y)
    with pytest.raises(LimitError, match="paths of different strides"):
        foveal.receptive_field(g)


def test_sizes_are_bounded() -> None:
    with pytest.raises(LimitError, match="an input size"):
        foveal.receptive_field(chain([conv(3)]), 10**13)
    with pytest.raises(LimitError, match="node 'n1'.*length of axis T"):
        foveal.receptive_field(chain([O.pad(2**38), O.pad(2**38)]), 10**4)
    with pytest.raises(LimitError, match="node 'n1'.*period"):  # (n - 1) / (2n - 1) at n = 10^9
        foveal.receptive_field(chain([conv(1), upsample(scale=2, mode="bilinear", align_corners=True)]),
                               10**9)
    with pytest.raises(foveal.InvalidParameterError, match="beyond foveal's limit"):
        chain([conv(2**62)])


def test_clipped_regions_are_bounded() -> None:
    g = chain([conv(5), O.attention()])
    with pytest.raises(LimitError, match="clipped to the input.*limit"):
        foveal.receptive_field(g, 10**7)["n1"].region(0, clip=True)
    assert foveal.receptive_field(g, 1000)["n1"].region(7, clip=True) == ((0, 999),)


def test_a_period_up_to_the_limit_is_fine() -> None:
    a = foveal.receptive_field(chain([O.Resize("nearest", None, MAX_PERIOD, "asymmetric")]), 7)
    assert a["n0"].period == (MAX_PERIOD,)


# -- JSON graphs ---------------------------------------------------------------------------------
def _graph(**changes) -> dict:
    nodes = [{"name": "x", "op": "input"},
             {"name": "c", "op": "window", "inputs": ["x"], "params": {"kernel": 3, "stride": 2}}]
    data = {"format": "foveal-graph", "version": 1, "axes": ["H", "W"], "nodes": nodes}
    for key, value in changes.items():
        if key.startswith("node_"):
            nodes[1][key[5:]] = value
        elif key.startswith("param_"):
            nodes[1]["params"][key[6:]] = value
        else:
            data[key] = value
    return data


@pytest.mark.parametrize("changes, message", [
    ({"param_stride": "1/0"}, "stride '1/0' is not a fraction"),
    ({"node_outputs": None}, "outputs must be a number"),
    ({"param_kind": {}}, "kind must be a number, string, list or null, not an object"),
    ({"param_kind": 5}, "kind must be a string"),
    ({"param_ceil_mode": "abc"}, "ceil_mode must be true or false"),
    ({"param_kernel": True}, "kernel must be integers"),
    ({"param_kernel": 3.0}, "kernel must be integers"),
    ({"axes": [[], []]}, "axis names must be non-empty strings"),
    ({"axes": [1, 2]}, "axis names must be non-empty strings"),
    ({"outputs": [5]}, "outputs must be node names"),
    ({"outputs": "c"}, "\"outputs\" must be a list"),
    ({"node_name": "\udc80"}, "node names must be non-empty strings of text"),
    ({"node_label": "\ud800x"}, "label must be a string of text"),
    ({"node_inputs": [5]}, "inputs must be node names"),
    ({"node_inputs": ["x:99999999999999999999"]}, "unknown input"),
    ({"node_extra": 1}, "unknown fields"),
    ({"name": ["g"]}, "name must be a string"),
    ({"version": True}, "version True is not supported"),
    ({"param_kernel": 10**30}, "beyond foveal's limit"),
])
def test_malformed_json_fields_are_one_line(tmp_path: Path, capsys, changes: dict, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_graph(**changes)))
    with pytest.raises(foveal.FovealError, match=message) as found:
        foveal.receptive_field(path, 32)
    assert "\n" not in str(found.value)
    assert main(["analyze", str(path), "--input-size", "32", "--graph", str(tmp_path / "g.dot")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("foveal: error: ")
    assert not (tmp_path / "g.dot").exists()


def test_deeply_nested_json_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(foveal.GraphFormatError, match="nested too deeply|not a foveal graph"):
        foveal.receptive_field(path)


def test_files_that_are_not_regular_files_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "model.json"
    os.mkfifo(fifo)  # opening it for reading would block until a writer came
    with pytest.raises(foveal.FovealError, match="not a regular file"):
        foveal.receptive_field(fifo)
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(foveal.FovealError, match="not a regular file"):
        foveal.receptive_field(link)
    with pytest.raises(foveal.FovealError, match="is a folder"):
        foveal.receptive_field(tmp_path)


# -- outputs -------------------------------------------------------------------------------------
def test_control_characters_in_names_are_escaped_in_text_outputs(capsys) -> None:
    g = Graph(1)
    x = g.input("x\x1b[2J")
    g.add("c\nd", conv(3), x)
    a = foveal.receptive_field(g, 8)
    for text in (a.to_table(), a.to_csv(), a.to_markdown()):
        assert "\x1b" not in text and "c\\nd" in text
    assert json.loads(a.to_json())["nodes"][1]["name"] == "c\nd"


def test_the_streamed_json_is_the_json_of_to_json() -> None:
    from foveal.report import iter_json

    for name in ("resnet18", "fcn_resnet50", "keras.EfficientNetB0"):
        a = foveal.receptive_field(name)
        assert json.loads("".join(iter_json(a))) == json.loads(a.to_json())


def test_a_failing_report_leaves_no_graph_file(tmp_path: Path, capsys, monkeypatch) -> None:
    import foveal.html_report

    def broken(*args, **kwargs):
        raise foveal.FovealError("the report failed\non two lines")

    monkeypatch.setattr(foveal.html_report, "report_html", broken)
    status = main(["analyze", "resnet18", "--input-size", "32", "--graph", str(tmp_path / "g.dot"),
                   "--report", str(tmp_path / "r.html")])
    assert status == 2 and list(tmp_path.iterdir()) == []
    assert capsys.readouterr().err == "foveal: error: the report failed | on two lines\n"


def test_dollar_signs_in_names_do_not_break_the_report(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from foveal.html_report import write_report

    g = Graph(("$\\foo$", "W$"))
    g.add("$\\bar$", conv(3), g.input("$x_{$}"))
    write_report(foveal.receptive_field(g, 16), tmp_path / "r.html", regions=[("$\\bar$", (0, 0))])
    assert "$\\bar$" in (tmp_path / "r.html").read_text()


def test_the_common_case_of_the_outputs_is_the_general_one(monkeypatch) -> None:
    """Outputs write nodes in the common case (Analysis.affine) from their few numbers, without a
    NodeResult: the same JSON values and table cells as the general path."""
    from foveal import report
    from foveal.analysis import Analysis

    analyses = [foveal.receptive_field(name) for name in ("resnet50", "mobilenet_v3_small", "keras.ResNet50")]
    analyses.append(foveal.receptive_field("deeplabv3_resnet50", 520))
    fast = [([json.loads(report._node_json(a, n)) for n in a.order], list(report.rows(a))) for a in analyses]
    common = sum(a.affine(n) is not None for a in analyses for n in a.order)
    assert common > sum(len(a) for a in analyses) // 2
    monkeypatch.setattr(Analysis, "affine", lambda self, name: None)
    for a, (json_nodes, cells) in zip(analyses, fast):
        assert json_nodes == [report.node_dict(a.result(n)) for n in a.order]
        assert cells == list(report.rows(a))
