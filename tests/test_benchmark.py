"""`foveal benchmark`: FLOPs per node and per end-point, the zoo's rows, and the writers.

torchvision needs the import shim of tests/torch_models.py, installed here before anything
imports torchvision (the library itself never installs it).
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys

import pytest

torch = pytest.importorskip("torch")

from torch_models import import_torchvision, torchvision_model  # noqa: E402

import foveal  # noqa: E402
from foveal import benchmark, ops  # noqa: E402
from foveal.errors import FovealError, UnknownNodeError  # noqa: E402
from foveal.flops import network_flops, subgraph_flops  # noqa: E402
from foveal.graph import Graph  # noqa: E402
from foveal.pytorch import convert  # noqa: E402
from foveal.pytorch.flops import count_flops, flops_by_node  # noqa: E402

import_torchvision()


def flop_counter_total(model: torch.nn.Module, shape: tuple[int, ...]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.empty(shape, device="meta"))
    return counter.get_total_flops()


# -- the framework-free sum --------------------------------------------------------------------

def diamond() -> Graph:
    g = Graph(2)
    x = g.input("x")
    a = g.add("a", ops.conv(3, padding=1), x)
    b = g.add("b", ops.conv(3, padding=1), a)
    c = g.add("c", ops.conv(1), a)
    d = g.add("d", ops.add(), [b, c])
    g.add("e", ops.conv(1), d)
    return g


def test_subgraph_flops_counts_shared_ancestors_once() -> None:
    flops = {"a": 10, "b": 100, "c": 1000, "d": 0, "e": 10000}
    got = subgraph_flops(diamond(), flops, ["b", "c", "d", "e", "a"])
    assert got == {"b": 110, "c": 1010, "d": 1110, "e": 11110, "a": 10}
    assert network_flops(flops) == 11110


def test_subgraph_flops_errors_name_the_node() -> None:
    with pytest.raises(UnknownNodeError, match="end-point 'zz'"):
        subgraph_flops(diamond(), {}, ["zz"])
    with pytest.raises(UnknownNodeError, match="FLOPs counts 'bb'; did you mean 'b'"):
        subgraph_flops(diamond(), {"bb": 1}, ["e"])
    with pytest.raises(FovealError, match="negative"):
        subgraph_flops(diamond(), {"b": -1}, ["e"])
    assert subgraph_flops(diamond(), {}, []) == {}


def test_subgraph_flops_matches_a_naive_walk_on_random_graphs() -> None:
    """Against a per-end-point walk over Node.sources, on DAGs added out of order too."""
    rng = random.Random(7)
    for trial in range(30):
        n = rng.randint(2, 60)
        edges = {i: sorted(rng.sample(range(i), k=min(i, rng.randint(1, 3)))) for i in range(1, n)}
        g = Graph(1)
        order = list(range(1, n))
        if trial % 2:
            rng.shuffle(order)  # producers may come later: the topological sort is needed
        g.input("n0")
        for i in order:
            srcs = [f"n{j}" for j in edges[i]]
            g.add(f"n{i}", ops.add() if len(srcs) > 1 else ops.conv(1), srcs)
        flops = {f"n{i}": rng.choice([0, 1, 5, 1 << 40]) for i in range(n)}
        ends = rng.sample([f"n{i}" for i in range(n)], k=min(n, 5))
        assert subgraph_flops(g, flops, ends) == {e: naive_flops(g, flops, e) for e in ends}


def naive_flops(g: Graph, flops: dict[str, int], name: str) -> int:
    seen, todo = set(), [name]
    while todo:
        v = todo.pop()
        if v not in seen:
            seen.add(v)
            todo.extend(g.nodes[v].sources)
    return sum(flops[v] for v in seen)


# -- per-node FLOPs of torch models ----------------------------------------------------------------

@pytest.mark.parametrize("name, size", [("resnet18", 64), ("vgg16", 64), ("mobilenet_v2", 224)])
def test_network_flops_equal_flop_counter_mode(name: str, size: int) -> None:
    model = torchvision_model(name)
    shape = (1, 3, size, size)
    builder = convert(model, shape)
    counted = count_flops(builder)
    reference = flop_counter_total(model, shape)
    assert counted.unattributed == 0
    assert abs(counted.total - reference) <= 0.01 * reference
    assert set(counted.by_node) <= set(builder.graph.nodes)  # keyed like the foveal graph


def test_export_capture_gives_the_same_counts_under_its_names() -> None:
    model = torchvision_model("resnet18")
    shape = (1, 3, 64, 64)
    builder = convert(model, shape, capture="export")
    counted = count_flops(builder)
    assert set(counted.by_node) <= set(builder.graph.nodes)
    assert counted.total == flop_counter_total(model, shape)
    assert counted.by_node["conv1"] == flops_by_node(model, shape)["conv1"]


def test_conv_and_linear_formulas() -> None:
    """Independent formulas, multiply-add = 2: conv 2*Cout*H'*W'*(Cin/groups)*k*k (dilation does
    not change the count), transposed conv 2*Cin*H*W*(Cout/groups)*k*k (per input pixel), linear
    2*in*out."""

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(8, 16, 3, stride=2, padding=2, dilation=2, groups=4)
            self.up = torch.nn.ConvTranspose2d(16, 6, 4, stride=2, padding=1, groups=2)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(6, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.conv(x))
            return self.fc(self.pool(self.up(x)).flatten(1))

    got = flops_by_node(Net(), (1, 8, 20, 20))
    assert got == {"conv": 2 * 16 * 10 * 10 * (8 // 4) * 3 * 3,
                   "up": 2 * 16 * 10 * 10 * (6 // 2) * 4 * 4,
                   "fc": 2 * 6 * 5}


# -- per-end-point FLOPs ---------------------------------------------------------------------------

def test_end_point_flops_grow_and_end_at_the_body() -> None:
    rows = benchmark.run_benchmark(["resnet50", "vgg16"], [64])
    for model, head in (("resnet50", 2 * 2048 * 1000),
                        ("vgg16", 2 * (512 * 7 * 7 * 4096 + 4096 * 4096 + 4096 * 1000))):
        flops = [r.flops for r in rows if r.model == model]
        assert all(f is not None for f in flops)
        assert flops == sorted(flops) and len(set(flops)) == len(flops)  # conv after conv
        total = flop_counter_total(torchvision_model(model), (1, 3, 64, 64))
        assert flops[-1] == total - head  # the last end-point: everything but the classifier


# -- rows against foveal's own analysis -----------------------------------------------------------

def test_resnet50_rows_are_foveals_analysis() -> None:
    rows = benchmark.run_benchmark(["resnet50"], [None, 224])
    model = torchvision_model("resnet50")
    at_224 = foveal.receptive_field(model, (1, 3, 224, 224))
    for r in rows:
        node = at_224[r.end_point]
        assert (r.size, r.stride, r.status) == (node.size, node.stride, "exact")
        assert r.padding == node.padding  # explicit paddings: the same without an input size
        assert (r.flops is None) == (r.resolution is None)
    # torchvision ResNet-50: layer3 RF 267 / stride 16 / padding 133, layer4 427 / 32 / 213, as
    # computed independently in github.com/nashory/DeLF-pytorch/issues/15 ("The value of
    # receptive field", 2019-2020).
    got = {(r.resolution, r.end_point): (r.size[0], r.stride[0], r.padding[0]) for r in rows}
    for resolution in (None, 224):
        assert got[resolution, "layer3"] == (267, 16, 133)
        assert got[resolution, "layer4"] == (427, 32, 213)


def test_published_values() -> None:
    rows = {(r.model, r.end_point): r for r in benchmark.run_benchmark(
        ["resnet18", "resnet101", "vgg16", "inception_v3"], [224])}
    # torchvision ResNets, layer1..layer4: resnet18 43 / 99 / 211 / 435, resnet101 layer4 971 (the
    # "ResNet Receptive Field Size" gist, gist.github.com/samson-wang/a6073c18f2adf16e0ab5fb95b53db3e6).
    assert [rows["resnet18", f"layer{i}"].size[0] for i in (1, 2, 3, 4)] == [43, 99, 211, 435]
    assert rows["resnet101", "layer4"].size == (971, 971)
    # torchvision's VGG-16 and Inception-v3 have TF-Slim's architecture, so the reference table
    # (receptive_field's RECEPTIVE_FIELD_TABLE.md) applies: vgg_16 pool5 212 / 32 / 90,
    # inception_v3 Mixed_7c 1311 / 32 / 618.
    r = rows["vgg16", "features.30"]
    assert (r.size, r.stride, r.padding) == ((212, 212), (32, 32), (90, 90))
    r = rows["inception_v3", "Mixed_7c"]
    assert (r.size, r.stride, r.padding) == ((1311, 1311), (32, 32), (618, 618))
    # and the FLOPs are within 0.5% of tf.profiler's, which also counts bias adds and the like
    assert rows["vgg16", "features.30"].flops == pytest.approx(30.713e9, rel=0.005)
    assert rows["inception_v3", "Mixed_7c"].flops == pytest.approx(5.689e9, rel=0.005)


def test_a_failing_model_gives_error_rows_and_the_run_goes_on() -> None:
    bad = benchmark.ZooModel("resnet18", ("layer9",))
    rows = benchmark.run_benchmark([bad, "resnet18"], [64])
    assert rows[0].status == "error" and "layer9" in rows[0].note and rows[0].size == (None, None)
    assert [r.status for r in rows[1:]] == ["exact"] * 4
    assert all(r.flops for r in rows[1:])


# -- the command line ------------------------------------------------------------------------------

def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foveal")
    benchmark.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["benchmark", *argv])


def test_cli_writes_csv_and_markdown(tmp_path, capsys) -> None:
    csv_path, md_path = tmp_path / "rf.csv", tmp_path / "rf.md"
    csv_path.write_text("old")
    args = parse("--models", "resnet18,alexnet", "--resolutions", "none,64", "--csv", str(csv_path),
                 "--markdown", str(md_path))
    assert benchmark.main(args) == 0
    captured = capsys.readouterr()
    assert "[1/4] resnet18 @ None" in captured.err and "[4/4] alexnet @ 64" in captured.err
    assert captured.out == ""
    text = csv_path.read_text()
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == ["CNN", "input resolution", "end_point", "FLOPs (Billion)", "RF size hor",
                                 "RF size ver", "effective stride hor", "effective stride ver",
                                 "effective padding hor", "effective padding ver", "status"]
    rows = list(reader)
    assert len(rows) == 2 * 4 + 2 * 8
    first = rows[0]
    assert (first["CNN"], first["input resolution"], first["end_point"], first["FLOPs (Billion)"]) == \
        ("resnet18", "None", "layer1", "None")
    layer4 = next(r for r in rows if r["end_point"] == "layer4" and r["input resolution"] == "64")
    assert (layer4["RF size hor"], layer4["effective stride ver"], layer4["status"]) == ("435", "32", "exact")
    assert float(layer4["FLOPs (Billion)"]) > 0
    md = md_path.read_text().splitlines()
    header = next(line for line in md if line.startswith("CNN"))
    assert [c.strip() for c in header.split("|")] == ["CNN", "resolution", "end-point", "FLOPs (Billion)",
                                                      "RF", "effective stride", "effective padding"]
    assert any(line.startswith("resnet18") and "| 435 " in line for line in md)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rf.csv", "rf.md"]  # no temporary left


def test_cli_prints_markdown_without_outputs(capsys) -> None:
    assert benchmark.main(parse("--models", "resnet18", "--resolutions", "64", "--quiet")) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "| layer4 " in captured.out


def test_cli_unknown_model_is_one_line_listing_the_zoo(tmp_path, capsys) -> None:
    assert benchmark.main(parse("--models", "resnet5O", "--csv", str(tmp_path / "x.csv"))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'resnet5O'" in err and "did you mean resnet50" in err
    assert "foveal zoo" in err
    assert not list(tmp_path.iterdir())


def test_cli_checks_output_folders_before_running(tmp_path, capsys) -> None:
    args = parse("--models", "resnet18", "--markdown", str(tmp_path / "missing" / "rf.md"))
    assert benchmark.main(args) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "[1/" not in err


def test_cli_list_and_bad_resolutions(capsys) -> None:
    assert benchmark.main(parse("--list")) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[0] == benchmark.ZOO[0].name and "keras.ResNet50" in out
    with pytest.raises(SystemExit):
        parse("--resolutions", "224,big")
    assert parse("--resolutions", "None, 7").resolutions == (None, 7)


def test_missing_frameworks_leave_the_receptive_fields_and_say_why_no_flops(monkeypatch) -> None:
    """The receptive fields come from the zoo's graphs; only the FLOPs need the framework."""
    monkeypatch.setitem(sys.modules, "foveal.keras", None)  # import foveal.keras now fails
    rows = benchmark.run_benchmark(["keras.VGG16"], [64])
    assert {r.status for r in rows} == {"exact"} and {r.flops for r in rows} == {None}
    assert "the Keras front-end is not available" in rows[0].flops_note
    assert rows[0].columns()["FLOPs (Billion)"] == "unavailable"
    assert "FLOPs unavailable for keras.VGG16: no FLOPs for the keras models" in benchmark.to_markdown(rows)
    monkeypatch.setitem(sys.modules, "torchvision", None)
    rows = benchmark.run_benchmark(["resnet18"], [None, 64])
    assert rows[-1].size == (435, 435) and rows[-1].flops is None
    assert "need torchvision, which failed to import" in rows[-1].flops_note
    assert rows[0].flops_note == ""  # no size: no FLOPs to count, as in the reference
    assert benchmark.run_benchmark(["resnet18"], [64], flops=False)[0].flops_note == \
        "not asked for (--no-flops)"


def test_any_zoo_model_is_taken_with_the_ends_of_its_stride_stages() -> None:
    rows = benchmark.run_benchmark(["densenet201"], [64])
    assert [r.end_point for r in rows] == ["features.relu0", "features.denseblock1", "features.denseblock2",
                                           "features.denseblock3", "relu"]
    assert [r.stride for r in rows] == [(2, 2), (4, 4), (8, 8), (16, 16), (32, 32)]
    assert all(r.flops for r in rows)
    assert rows[-1].flops == flop_counter_total(torchvision_model("densenet201"), (1, 3, 64, 64)) \
        - 2 * 1920 * 1000  # the whole body: everything but the classifier


def test_zoo_cannot_be_changed_by_callers() -> None:
    entries = benchmark.zoo()
    entries.clear()
    assert benchmark.zoo() and isinstance(benchmark.ZOO, tuple)


# -- Keras (when the Keras front-end is there) ------------------------------------------------------

def test_keras_vgg16_reproduces_the_reference_table() -> None:
    """keras.applications VGG16 is TF-Slim's vgg_16 (3x3 SAME convolutions, 2x2 VALID pools), and
    foveal.keras counts FLOPs as tf.profiler did: the reference table's vgg_16 pool rows
    (receptive_field's RECEPTIVE_FIELD_TABLE.md) come out digit for digit."""
    pytest.importorskip("keras")
    if benchmark.available(benchmark.KERAS):
        pytest.skip(benchmark.available(benchmark.KERAS))
    rows = benchmark.run_benchmark(["keras.VGG16"], [None, 224])
    table = benchmark.to_csv(rows)
    reference = {  # end-point: RF, stride, padding, GFLOPs at 224
        "block1_pool": (6, 2, 2, "3.882"), "block2_pool": (16, 4, 6, "9.436"),
        "block3_pool": (44, 8, 18, "18.688"), "block4_pool": (100, 16, 42, "27.938"),
        "block5_pool": (212, 32, 90, "30.713")}
    for r in csv.DictReader(io.StringIO(table)):
        rf, stride, padding, gflops = reference[r["end_point"]]
        assert r["RF size hor"] == r["RF size ver"] == str(rf)
        assert r["effective stride hor"] == str(stride) and r["effective padding ver"] == str(padding)
        assert r["FLOPs (Billion)"] == ("None" if r["input resolution"] == "None" else gflops)
    assert "keras models also count bias adds" in benchmark.to_markdown(rows)
