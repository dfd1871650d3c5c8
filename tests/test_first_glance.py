"""The answer at a glance: the summary (CLI table, repr, notebooks), the reader's table (rows that
change nothing hidden, effective stride and padding named, global visible), notebook display,
pandas and numeric CSV, flat to_dict. Golden values are ResNet-50's published numbers
(layer4: receptive field 427, effective stride 32, effective padding 213)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

import foveal
from foveal import Graph, conv, global_pool, max_pool
from foveal.cli import main
from foveal.report import changes_nothing
from foveal.summary import summarize


@pytest.fixture(scope="module")
def resnet50() -> foveal.Analysis:
    return foveal.receptive_field("resnet50", 224)


def test_the_first_lines_of_analyze_state_layer4(capsys) -> None:
    assert main(["analyze", "resnet50", "--input-size", "224"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "resnet50: input 'x' (224 x 224, axes H x W), 200 nodes"
    assert lines[1] == "  output 'fc': global: reads the whole input"
    assert lines[2] == ("  last spatial layer 'layer4': receptive field 427 x 427, effective stride 32 x 32, "
                        "effective padding 213 x 213")
    assert lines[3].startswith("  at 224 x 224: ") and "productive" in lines[3]
    assert lines[4].startswith("  input-resolution range: H ")


def test_the_table_hides_rows_that_change_nothing(capsys, resnet50) -> None:
    assert main(["analyze", "resnet50", "--input-size", "224"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[9:] if line and not line.startswith("(")}
    assert "layer4.2.conv2" in rows and "layer4.2.bn2" not in rows and "relu" not in rows
    header = out.splitlines()[7]
    assert "eff. stride" in header and "eff. padding" in header
    assert rows["avgpool"].split()[3] == "global"  # the rf column says so, not 619x619
    shown_names = resnet50.ancestor_names("fc")
    hidden = [n for n in shown_names if changes_nothing(resnet50, n)]
    assert len(rows) == len(shown_names) - len(hidden)
    assert f"({len(hidden)} rows that change nothing hidden" in out
    assert {resnet50.graph.nodes[n].op.kind for n in hidden} == {
        "batchnorm2d", "relu", "reshape"}

    assert main(["analyze", "resnet50", "--input-size", "224", "--pointwise"]) == 0
    every = capsys.readouterr().out
    assert "layer4.2.bn2 " in every and "rows that change nothing hidden" not in every


def test_markdown_hides_them_too_and_json_keeps_every_node(capsys, resnet50) -> None:
    assert main(["analyze", "resnet50", "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| layer4.2.conv2 |" in markdown and "| layer4.2.bn2 |" not in markdown
    assert main(["analyze", "resnet50", "--format", "json"]) == 0
    nodes = [n["name"] for n in json.loads(capsys.readouterr().out)["nodes"]]
    assert "layer4.2.bn2" in nodes and len(nodes) == len(resnet50.ancestor_names("fc"))


def test_a_learned_point_wise_layer_is_kept() -> None:
    a = foveal.receptive_field("keras.MobileNetV2", 224)
    kinds = {a.graph.nodes[n].op.kind for n in a.order if not changes_nothing(a, n)
             if hasattr(a.graph.nodes[n].op, "kind")}
    assert "dense" in kinds or "conv" in kinds
    assert not any(changes_nothing(a, n) for n in a.graph.outputs)


def test_a_local_output_has_no_last_spatial_layer_line() -> None:
    g = Graph(axes=("H", "W"))
    x = g.input("x")
    c = g.add("c", conv(3, stride=2, padding=1), x)
    g.add("p", max_pool(2), c)
    s = summarize(foveal.receptive_field(g, (16, 16)))
    assert s.last_local is None
    assert s.lines()[1] == ("  output 'p': receptive field 5 x 5, effective stride 4 x 4, "
                            "effective padding 1 x 1")
    g2 = Graph(axes=("T",))
    t = g2.add("c", conv(5), g2.input("wave"))
    g2.add("pool", global_pool(), t)
    s2 = summarize(foveal.receptive_field(g2))
    assert s2.counts is None and s2.last_local is not None and s2.last_local.name == "c"
    assert s2.lines()[0] == "graph: input 'wave' (unknown size, axes T), 3 nodes"


def test_repr_and_notebook_display(resnet50) -> None:
    text = repr(resnet50)
    assert "'layer4': receptive field 427 x 427, effective stride 32 x 32" in text and "\n" not in text
    page = resnet50._repr_html_()
    assert page.count("<table>") == 1 and "<td style=\"text-align:left\">layer4.2.conv2</td>" in page
    assert "layer4.2.bn2<" not in page and "effective padding 213 x 213" in page
    node = resnet50["layer4"]._repr_html_()
    assert "<table>" in node and ">427<" in node and ">213<" in node
    verdicts = foveal.receptive_field("resnet50", 32).verdicts()
    assert repr(verdicts).startswith("<foveal.Verdicts at 32x32: ")
    page = verdicts._repr_html_()
    assert "<table>" in page and all(f">{n}<" in page for n in verdicts.unproductive())


def test_html_escapes_hostile_names() -> None:
    g = Graph(1)
    x = g.input("<script>x</script>")
    g.add("<b>c</b>", conv(3), x)
    a = foveal.receptive_field(g, 8)
    for page in (a._repr_html_(), a["<b>c</b>"]._repr_html_()):
        assert "<script>" not in page and "<b>c</b>" not in page and "&lt;b&gt;c&lt;/b&gt;" in page


def test_to_pandas_has_one_numeric_column_per_quantity_and_axis(resnet50) -> None:
    pd = pytest.importorskip("pandas")
    frame = resnet50.to_pandas()
    assert list(frame.columns[:5]) == ["op", "output_H", "output_W", "rf_H", "rf_W"]
    for column in ("output_H", "rf_W", "stride_H", "padding_W", "rf_min_H", "rf_max_W"):
        assert pd.api.types.is_numeric_dtype(frame[column]), column
    row = frame.loc["layer4"]
    assert (row.rf_H, row.rf_W, row.stride_H, row.padding_W) == (427, 427, 32, 213)
    assert bool(frame.loc["fc"].global_H) and pd.isna(frame.loc["fc"].stride_H)
    assert frame.loc["layer1.0.add"].rf_min_H == 11 and frame.loc["layer1.0.add"].rf_max_H == 19


def test_csv_cells_are_numbers(resnet50) -> None:
    table = list(csv.DictReader(io.StringIO(resnet50.to_csv())))
    row = next(r for r in table if r["node"] == "layer4")
    assert (int(row["rf_H"]), int(row["stride_W"]), int(row["padding_H"])) == (427, 32, 213)
    fc = next(r for r in table if r["node"] == "fc")
    assert fc["global_H"] == "true" and fc["stride_H"] == "" and float(fc["rf_min_H"]) == float("inf")
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(io.StringIO(resnet50.to_csv()))
    assert pd.api.types.is_integer_dtype(frame["rf_H"]) and pd.api.types.is_float_dtype(frame["rf_min_H"])


def test_a_fractional_stride_is_a_number_in_csv_and_exact_in_json() -> None:
    from foveal import upsample

    g = Graph(1)
    g.add("up", upsample(2), g.add("c", conv(3, stride=1), g.input("x")))
    a = foveal.receptive_field(g, 8)
    row = list(csv.DictReader(io.StringIO(a.to_csv())))[-1]
    assert float(row["stride_axis0"] if "stride_axis0" in row else row[f"stride_{a.axes[0]}"]) == 0.5
    assert a.to_dict()["nodes"][-1]["stride"] == ["1/2"]


def test_to_dict_is_flat(resnet50) -> None:
    node = resnet50["layer4"].to_dict()
    assert node["size"] == [427, 427] and node["stride"] == [32, 32] and node["padding"] == [213, 213]
    assert "rf" not in node and node["status"] == "exact" and node["global"] == [False, False]
    assert resnet50.to_dict()["version"] == 2


def test_python_m_foveal_prints_the_summary_first() -> None:
    done = subprocess.run([sys.executable, "-m", "foveal", "analyze", "resnet50", "--input-size", "224"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "'layer4': receptive field 427 x 427" in done.stdout.splitlines()[2]


def test_erf_result_display() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    from foveal.erf import effective_receptive_field

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Conv2d(2, 2, 3))
    r = effective_receptive_field(model, "1", input_shape=(1, 1, 16, 16), samples=1)
    assert repr(r) == ("<foveal.ErfResult of layer '1': luo, 1 noise, input 16 x 16, "
                       "effective box 6..10 x 6..10>")
    page = r._repr_html_()
    assert page.startswith("<div class=\"foveal-erf\"><pre>ERF of layer &#x27;1&#x27;")
    assert "<img alt=\"ERF map\" src=\"data:image/png;base64," in page


def test_a_huge_graph_summary_says_where_the_verdicts_are(monkeypatch) -> None:
    import foveal.summary

    monkeypatch.setattr(foveal.summary, "VERDICT_NODES", 10)
    lines = summarize(foveal.receptive_field("resnet18", 64)).lines()
    assert lines[-1] == ("  note: verdicts and input-resolution range left out of the summary of a graph of "
                         "85 nodes: --verdicts (Analysis.verdicts()) gives them")
    assert not any(line.startswith("  at ") for line in lines)
