"""Hostile GraphDefs: damaged graphs, huge declared constants, FIFOs, devices and gzip bombs end in
one line (a FovealError from the API, exit status 2 and one stderr line from `foveal analyze` and
`foveal compute-rf`), never a traceback, a hang or gigabytes of memory.

The graphs are built with foveal's own schema classes (no TensorFlow needed) or taken from the
TF-slim fixtures, then damaged one field at a time.
"""

from __future__ import annotations

import contextlib
import gzip
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from core_only import CLI, run_core_only
from graphdefs import FLOAT, INT32, INT64, SLIM, const, new_graph, new_node, placeholder, slim_graph

pytest.importorskip("google.protobuf")

import foveal  # noqa: E402
from foveal.cli import main  # noqa: E402
from foveal.errors import FovealError  # noqa: E402
from foveal.limits import MAX_MEMBER_BYTES  # noqa: E402


# -- building GraphDefs ---------------------------------------------------------------------------
def network() -> Any:
    """image -> conv (3x3/2 SAME) -> pad 1 -> pool (3/2) -> resize x2 -> mean: one of each kind
    (no dtype attributes: foveal reads none)."""
    graph = new_graph()
    placeholder(graph, "image", (1, 64, 64, 3), dtype=None)
    const(graph, "w", [3, 3, 3, 8], dtype=FLOAT, dtype_attr=False)
    new_node(graph, "w/read", "Identity", "w")
    new_node(graph, "conv", "Conv2D", "image", "w/read", strides=[1, 2, 2, 1], dilations=[1, 1, 1, 1],
             padding=b"SAME", data_format=b"NHWC")
    const(graph, "paddings", [4, 2], [0, 0, 1, 1, 1, 1, 0, 0], dtype_attr=False)
    new_node(graph, "pad", "Pad", "conv", "paddings")
    new_node(graph, "pool", "MaxPool", "pad", ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding=b"VALID")
    const(graph, "size", [2], [32, 32], dtype_attr=False)
    new_node(graph, "up", "ResizeBilinear", "pool", "size", align_corners=False)
    const(graph, "axes", [2], [1, 2], dtype_attr=False)
    new_node(graph, "out", "Mean", "up", "axes")
    return graph


def node_of(graph: Any, name: str) -> Any:
    return next(n for n in graph.node if n.name == name)


def set_inputs(node: Any, *inputs: str) -> None:
    del node.input[:]
    node.input.extend(inputs)


def damaged(change: Callable[[Any], None]) -> Any:
    graph = network()
    change(graph)
    return graph


def self_reading_identity(g: Any) -> None:
    set_inputs(node_of(g, "w/read"), "w/read")


def identity_cycle(g: Any) -> None:
    set_inputs(node_of(g, "w/read"), "w/again")
    new_node(g, "w/again", "Identity", "w/read")


def const_elements(count_dims: list[int], name: str = "paddings") -> Callable[[Any], None]:
    def change(g: Any) -> None:
        dims = node_of(g, name).attr["value"].tensor
        del dims.int_val[:]
        del dims.tensor_shape.dim[:]
        for size in count_dims:
            dims.tensor_shape.dim.add(size=size)
    return change


def attr(name: str, key: str, value: Any) -> Callable[[Any], None]:
    def change(g: Any) -> None:
        node = node_of(g, name)
        if value is None:
            del node.attr[key]
        elif isinstance(value, list):
            node.attr[key].list.i[:] = value
        elif isinstance(value, bytes):
            node.attr[key].s = value
        else:
            node.attr[key].i = value
    return change


def inputs(name: str, *refs: str) -> Callable[[Any], None]:
    return lambda g: set_inputs(node_of(g, name), *refs)


def values(name: str, new: list[int], dtype: int = INT32) -> Callable[[Any], None]:
    def change(g: Any) -> None:
        tensor = node_of(g, name).attr["value"].tensor
        tensor.dtype = dtype
        del tensor.int_val[:]
        (tensor.int64_val if dtype == INT64 else tensor.int_val).extend(new)
    return change


def placeholder_rank(rank: int) -> Callable[[Any], None]:
    def change(g: Any) -> None:
        shape = node_of(g, "image").attr["shape"].shape
        del shape.dim[:]
        for _ in range(rank):
            shape.dim.add(size=8)
    return change


DAMAGE: dict[str, Callable[[Any], None]] = {
    "self-reading Identity": self_reading_identity,
    "a 2-cycle of Identities": identity_cycle,
    "a weight read from a missing node": inputs("conv", "image", "nowhere"),
    "Pad with one input": inputs("pad", "conv"),
    "Conv2D with one input": inputs("conv", "image"),
    "Mean without axes": inputs("out", "up"),
    "short strides": attr("conv", "strides", [1, 2, 2]),
    "missing strides": attr("conv", "strides", None),
    "short ksize": attr("pool", "ksize", [1, 3]),
    "missing ksize": attr("pool", "ksize", None),
    "short dilations": attr("conv", "dilations", [1, 1]),
    "zero stride": attr("pool", "strides", [1, 0, 2, 1]),
    "negative dilation": attr("conv", "dilations", [1, -2, 1, 1]),
    "a kernel of 2^62": attr("pool", "ksize", [1, 1 << 62, 3, 1]),
    "non-UTF-8 padding": attr("conv", "padding", b"\377"),
    "non-UTF-8 data_format": attr("conv", "data_format", b"N\377HW"),
    "an unknown padding": attr("pool", "padding", b"FULL"),
    "strides as a string": attr("conv", "strides", b"1221"),
    "padding as an int": attr("conv", "padding", 1),
    "align_corners as an int": attr("up", "align_corners", 1),
    "float paddings": values("paddings", [0] * 8, dtype=FLOAT),
    "negative paddings": values("paddings", [0, 0, -1, 1, 1, 1, 0, 0]),
    "paddings of 2^50": values("paddings", [0, 0, 1 << 50, 1, 1, 1, 0, 0], dtype=INT64),
    "too many values": values("paddings", list(range(9))),
    "a resize to size 0": values("size", [0, 32]),
    "an axis out of range": values("axes", [1, 7]),
    "a weight of negative size": const_elements([3, -5, 3, 8], "w"),
    "a placeholder of rank 40": placeholder_rank(40),
    "2e8 declared paddings": const_elements([200_000_000]),
    "1e12 declared paddings": const_elements([1_000_000, 1_000_000]),
    "1e12 declared axes": const_elements([1_000_000_000_000], "axes"),
    "1e12 declared resize size": const_elements([10**6, 10**6], "size"),
    "an endless ExpandDims": lambda g: (inputs("conv", "image", "grow")(g),
                                       new_node(g, "grow", "ExpandDims", "grow", "axes")),
}


# -- what every hostile input must give ---------------------------------------------------------------
def one_line_everywhere(path: Path, capsys: Any, *, output: str = "out") -> str:
    """The API raises one FovealError line; analyze and compute-rf exit 2 with one stderr line.
    Returns the API's message."""
    with pytest.raises(FovealError) as info:
        foveal.receptive_field(path, 64)
    message = str(info.value)
    assert "\n" not in message and message
    capsys.readouterr()
    for argv in (["analyze", str(path), "--input-size", "64"],
                 ["compute-rf", "--graph_path", str(path), "--input_node", "image", "--output_node", output,
                  "--input_resolution", "64,64"]):
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("foveal: error: "), (argv, captured.err)
        assert captured.out == ""
    return message


@contextlib.contextmanager
def resident_growth() -> Iterator[list[int]]:
    """How far the process's resident high-water mark rose during the block (0 where Linux's
    /proc/self/clear_refs cannot reset it). Resident, not allocated: reading a file asks for a
    limit-sized buffer that is never touched."""
    grown = [0]
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident size
        start = _vm("VmRSS")
    except OSError:
        start = None
    yield grown
    if start is not None:
        grown[0] = max(0, _vm("VmHWM") - start)


def _vm(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.fixture(scope="module")
def compat() -> Any:
    pytest.importorskip("numpy")
    import foveal.compat.receptive_field as rf

    return rf


def test_the_undamaged_network_works(tmp_path, capsys) -> None:
    path = tmp_path / "net.pb"
    path.write_bytes(network().SerializeToString())
    analysis = foveal.receptive_field(path, 64)
    assert analysis["pool"].size == (7, 7) and analysis["pool"].stride == (4, 4)
    assert main(["analyze", str(path), "--input-size", "64"]) == 0
    assert main(["compute-rf", "--graph_path", str(path), "--input_node", "image",
                 "--output_node", "pool"]) == 0
    assert "Receptive field size (horizontal) = 7" in capsys.readouterr().out


@pytest.mark.parametrize("case", DAMAGE, ids=lambda c: c.replace(" ", "-"))
def test_damaged_graph_def_is_one_line(case: str, tmp_path, capsys, compat) -> None:
    path = tmp_path / "damaged.pb"
    path.write_bytes(damaged(DAMAGE[case]).SerializeToString())
    with resident_growth() as grown:
        message = one_line_everywhere(path, capsys)
        with pytest.raises(FovealError):
            compat.compute_receptive_field_from_graph_def(path, "image", "out", input_resolution=[64, 64])
    assert grown[0] < 200 << 20, f"{case}: resident memory grew by {grown[0]:,} bytes (a constant built?)"
    if "declared" in case:
        assert "elements" in message
    elif "2^" not in case and "rank 40" not in case:  # not a limit: a malformed field, named
        assert message.startswith("node '") or "GraphDef" in message, message


@pytest.mark.parametrize("case, expected", [
    ("self-reading Identity", "a pass-through node that reads itself ('w/read')"),
    ("a 2-cycle of Identities", "cycle ('w/read', 'w/again')"),
    ("Pad with one input", "node 'pad' (Pad): has 1 data input; input 1 (paddings) is missing"),
    ("short strides", "node 'conv' (Conv2D): attribute 'strides' has 3 values, expected 4"),
    ("missing strides", "node 'conv' (Conv2D): attribute 'strides' is missing"),
    ("non-UTF-8 padding", "node 'conv' (Conv2D): attribute 'padding' is not UTF-8 text (b'\\xff')"),
    ("float paddings", "input 1 (paddings), the constant 'paddings', has dtype DT_FLOAT"),
    ("2e8 declared paddings", "has 200,000,000 elements, expected at most 8"),
    ("1e12 declared axes", "declares 1,000,000,000,000 elements; foveal reads integer constants of at most"),
    ("zero stride", "attribute 'strides' has the value 0; it must be >= 1"),
    ("a kernel of 2^62", "over foveal's limit"),
    ("an endless ExpandDims", "nested ExpandDims"),
])
def test_messages_name_the_node_and_the_field(case: str, expected: str) -> None:
    with pytest.raises(FovealError) as info:
        foveal.receptive_field(damaged(DAMAGE[case]), 64)
    assert expected in str(info.value)


def test_a_huge_declared_weight_is_read_by_its_shape_only() -> None:
    """A 10^12-element weight without values: its kernel size is read from the dims, nothing is
    built (resident memory grows by a few MB at most)."""
    graph = damaged(const_elements([1_000_000, 1_000_000, 3, 8], "w"))
    with resident_growth() as grown:
        analysis = foveal.receptive_field(graph)
        at_64 = foveal.receptive_field(graph, 64)  # SAME padding: any input size fits
    assert analysis["conv"].size == at_64["conv"].size == (1_000_000, 1_000_000)
    assert grown[0] < 200 << 20


def test_damaged_slim_graph(tmp_path, capsys) -> None:
    """A real network (TF-slim AlexNet) with one node made to read itself, and one with a short
    stride list."""
    graph = slim_graph("alexnet_v2")
    convs = [n for n in graph.node if n.op == "Conv2D"]
    assert len(convs) > 3
    convs[1].attr["strides"].list.i[:] = [1, 1]
    path = tmp_path / "short.pb"
    path.write_bytes(graph.SerializeToString())
    out = convs[-1].name
    message = one_line_everywhere_slim(path, capsys, out)
    assert f"node {convs[1].name!r} (Conv2D): attribute 'strides' has 2 values, expected 4" in message
    convs[1].attr["strides"].list.i[:] = [1, 1, 1, 1]
    weight = next(n for n in graph.node if n.name == convs[2].input[1].split(":")[0])
    if weight.op == "Identity":
        set_inputs(weight, weight.name)
    else:
        weight.op, weight.input[:] = "Identity", [weight.name]
    path.write_bytes(graph.SerializeToString())
    assert "reads itself" in one_line_everywhere_slim(path, capsys, out)


def one_line_everywhere_slim(path: Path, capsys: Any, out: str) -> str:
    with pytest.raises(FovealError) as info:
        foveal.receptive_field(path, 224, input="input_image")
    capsys.readouterr()
    for argv in (["analyze", str(path), "--input-size", "224", "--input-node", "input_image"],
                 ["compute-rf", "--graph_path", str(path), "--input_node", "input_image",
                  "--output_node", out]):
        assert main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("foveal: error: ")
    assert "\n" not in str(info.value)
    return str(info.value)


# -- files that are not model files -------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path, capsys) -> None:
    """Opening a FIFO for reading blocks until a writer comes; foveal must refuse it instead (a
    regression here hangs the test: no timing assert needed)."""
    for name in ("graph.pbtxt", "graph.pb"):
        fifo = tmp_path / name
        os.mkfifo(fifo)
        assert "not a regular file" in one_line_everywhere(fifo, capsys)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_link_to_dev_zero_is_refused(tmp_path, capsys) -> None:
    for name in ("zero.pb", "zero.pbtxt", "zero.pb.gz"):
        (tmp_path / name).symlink_to("/dev/zero")
        assert "not a regular file" in one_line_everywhere(tmp_path / name, capsys)


def test_folders_and_missing_files(tmp_path, capsys) -> None:
    (tmp_path / "folder.pb").mkdir()
    assert "folder" in one_line_everywhere(tmp_path / "folder.pb", capsys)
    (tmp_path / "dangling.pb").symlink_to(tmp_path / "nowhere")
    one_line_everywhere(tmp_path / "dangling.pb", capsys)


def test_a_gzip_bomb_stops_at_the_limit(tmp_path, capsys) -> None:
    """300 gzip members of 1 MiB of zeros each (a 300 KB file): decompression stops past
    MAX_MEMBER_BYTES instead of building the whole stream."""
    member = gzip.compress(b"\0" * (1 << 20), compresslevel=9)
    count = MAX_MEMBER_BYTES // (1 << 20) + 8
    path = tmp_path / "bomb.pb.gz"
    path.write_bytes(member * count)
    with pytest.raises(FovealError, match="decompresses to more than foveal's limit"):
        foveal.receptive_field(path, 64)
    assert main(["analyze", str(path), "--input-size", "64"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_many_tiny_messages_are_counted_before_protobuf_builds_them(tmp_path, capsys, monkeypatch) -> None:
    """2 bytes of file make one empty node, which protobuf builds in ~45 bytes: past 8 MB a binary
    GraphDef is scanned first and refused past MAX_ELEMENTS messages and strings."""
    from foveal.tensorflow import load

    path = tmp_path / "nodes.pb"
    path.write_bytes(b"\x0a\x00" * 8_000_000)  # 16 MB: 8 million empty nodes, 360 MB once built
    with resident_growth() as grown, pytest.raises(FovealError, match="more than 4,000,000 messages"):
        foveal.receptive_field(path, 64)
    assert grown[0] < 150 << 20
    monkeypatch.setattr(load, "SCAN_ABOVE", 1000)
    monkeypatch.setattr(load, "MAX_ELEMENTS", 5000)
    node = b"\x1a\x01a"  # an input named 'a', 6,000 times in one node
    (tmp_path / "inputs.pb").write_bytes(b"\x0a" + _varint(6000 * len(node)) + node * 6000)
    assert "more than 5,000 messages" in one_line_everywhere(tmp_path / "inputs.pb", capsys)
    path.write_bytes(network().SerializeToString() * 20)  # a valid graph (nodes repeated): scanned, read
    assert "appears twice" in one_line_everywhere(path, capsys)
    (tmp_path / "nodes.pbtxt").write_text('node { name: "a" }' * 3000)  # text: '{', '<' and ':' counted
    assert "more than 5,000 messages" in one_line_everywhere(tmp_path / "nodes.pbtxt", capsys)


def test_the_count_is_what_protobuf_builds() -> None:
    from google.protobuf.descriptor import FieldDescriptor

    from foveal.tensorflow.load import count_elements

    strings = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES)

    def built(message: Any) -> int:
        """Messages (map entries and their message values too) and repeated strings."""
        count = 0
        for field, value in message.ListFields():
            if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
                count += sum(1 + (built(v) + 1 if hasattr(v, "ListFields") else 0) for v in value.values())
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                count += sum(1 + built(v) for v in (value if field.is_repeated else [value]))
            elif field.is_repeated and field.type in strings:
                count += len(value)
        return count

    for data in (gzip.decompress((SLIM / "inception_v3.pb.gz").read_bytes()), network().SerializeToString()):
        graph = new_graph()
        graph.ParseFromString(data)
        assert count_elements(data) == built(graph) > 50
    assert count_elements(b"\x0a\x05ab") is None  # truncated


def test_corrupt_gzip_and_deep_nesting(tmp_path, capsys) -> None:
    good = gzip.compress(network().SerializeToString())
    (tmp_path / "cut.pb.gz").write_bytes(good[: len(good) // 2])
    one_line_everywhere(tmp_path / "cut.pb.gz", capsys)
    (tmp_path / "flip.pb.gz").write_bytes(good[:20] + bytes([good[20] ^ 0xFF]) + good[21:])
    one_line_everywhere(tmp_path / "flip.pb.gz", capsys)
    # an attribute nested 3,000 levels deep (func -> attr -> func ...): the text parser recurses
    nested = 'attr { key: "f" value { func { name: "g" ' * 3000 + "} } }" * 3000
    (tmp_path / "deep.pbtxt").write_text(f'node {{ name: "image" op: "Placeholder" {nested} }}')
    one_line_everywhere(tmp_path / "deep.pbtxt", capsys)
    (tmp_path / "deep.pb").write_bytes(_nested_graph(3000))  # past protobuf's recursion limit
    one_line_everywhere(tmp_path / "deep.pb", capsys)


def _nested_graph(depth: int) -> bytes:
    """A binary GraphDef whose one node has an attribute nested `depth` levels deep."""
    def field(number: int, payload: bytes) -> bytes:
        return _varint(number << 3 | 2) + _varint(len(payload)) + payload

    value = b""
    for _ in range(depth):  # AttrValue{func: NameAttrList{attr: {"f": value}}}
        value = field(10, field(2, field(1, b"f") + field(2, value)))
    node = field(1, b"image") + field(2, b"Placeholder") + field(5, field(1, b"f") + field(2, value))
    return field(1, node)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append(value & 0x7F | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def test_names_that_would_break_a_line_are_refused(tmp_path, capsys) -> None:
    graph = network()
    node_of(graph, "pool").name = "pool\nfoveal: error: forged"
    (tmp_path / "name.pb").write_bytes(graph.SerializeToString())
    assert "control character" in one_line_everywhere(tmp_path / "name.pb", capsys)
    graph = network()
    node_of(graph, "pool").name = "pool:0"
    (tmp_path / "colon.pb").write_bytes(graph.SerializeToString())
    one_line_everywhere(tmp_path / "colon.pb", capsys)
    graph = damaged(attr("pool", "ksize", [1, 3]))  # a megabyte name is quoted in 80 characters
    node_of(graph, "pool").name = "p" * 1_000_000
    set_inputs(node_of(graph, "up"), "p" * 1_000_000, "size")
    (tmp_path / "long.pb").write_bytes(graph.SerializeToString())
    message = one_line_everywhere(tmp_path / "long.pb", capsys)
    assert "attribute 'ksize' has 2 values" in message and len(message) < 400


# -- only the core installed --------------------------------------------------------------------------
COMPAT_API = """
    import foveal
    import foveal.compat.receptive_field as rf
    try:
        rf.compute_receptive_field_from_graph_def(sys.argv[1], "image", "pool")
    except foveal.FovealError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(0)
"""
"""The compat API on the GraphDef at sys.argv[1], a FovealError as one stderr line and status 2."""


@pytest.mark.parametrize("how", ["compute-rf", "api", "analyze"])
def test_without_numpy_and_protobuf_one_line_names_the_extra(how: str, tmp_path) -> None:
    path = tmp_path / "net.pb"
    path.write_bytes(network().SerializeToString())
    argv = {"compute-rf": ["compute-rf", "--graph_path", str(path), "--input_node", "image", "--output_node",
                           "pool"],
            "api": [str(path)],
            "analyze": ["analyze", str(path), "--input-size", "64"]}[how]
    done = run_core_only(*argv, script=COMPAT_API if how == "api" else CLI)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "foveal[tensorflow]" in lines[0] and "Traceback" not in done.stderr
