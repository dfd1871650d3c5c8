"""Hostile ONNX models: small models built with onnx.helper (conv nets, resizes, pads, the shape
arithmetic torch exports write), then damaged. Every malformed field, absurd size, cycle or
unreadable path ends in one line naming what is wrong (a FovealError through the API; exit status
2 and one line on stderr through `foveal analyze`), or in a correct result. Nothing hangs, and no
declared size is ever materialised (a hang or an exhausted memory fails the run)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from core_only import run_core_only

onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")

from onnx import AttributeProto, TensorProto, helper, numpy_helper  # noqa: E402
from onnx_graphs import floats, ints, model, no_hang  # noqa: E402

import foveal  # noqa: E402
from foveal.cli import main  # noqa: E402
from foveal.errors import FovealError, GraphFormatError, UnsupportedOpError  # noqa: E402
from foveal.limits import LimitError  # noqa: E402

node = helper.make_node


# -- building models -------------------------------------------------------------------------------
def weight(name: str = "w", shape=(2, 2, 3, 3)) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def conv(name: str = "conv", x: str = "x", y: str = "c", **attrs) -> onnx.NodeProto:
    attrs.setdefault("kernel_shape", [3, 3])
    return node("Conv", [x, "w"], [y], name=name, **attrs)


def conv_net(**conv_attrs) -> onnx.ModelProto:
    """conv 3x3 (stride 2, pad 1) -> max pool 2x2 / 2: RF 5, stride 4."""
    conv_attrs = {"strides": [2, 2], "pads": [1, 1, 1, 1], **conv_attrs}
    pool = node("MaxPool", ["c"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    return model([conv(**conv_attrs), pool], [weight()])


def padded(pads_nodes, pads: str = "pads", inits=()) -> onnx.ModelProto:
    """conv -> Pad(pads from `pads_nodes`) -> conv: the pads are folded shape arithmetic."""
    return model([conv(), *pads_nodes, node("Pad", ["c", pads], ["p"], name="pad"),
                  conv("conv2", "p", "y")], [weight(), *inits])


def torch_like(concat_axis: bool = True) -> onnx.ModelProto:
    """What the TorchScript exporter writes for F.interpolate(x, scale_factor=2) at a dynamic size:
    Shape -> Gather -> Cast -> Mul -> Floor -> Cast -> Concat -> Resize(sizes)."""
    concat = {"axis": 0} if concat_axis else {}
    nodes = [conv(pads=[1, 1, 1, 1]),
             node("Shape", ["c"], ["sh"], name="/Shape"),
             node("Gather", ["sh", "two"], ["h"], name="/Gather", axis=0),
             node("Cast", ["h"], ["hf"], name="/Cast", to=TensorProto.FLOAT),
             node("Mul", ["hf", "f2"], ["h2f"], name="/Mul"),
             node("Floor", ["h2f"], ["h2ff"], name="/Floor"),
             node("Cast", ["h2ff"], ["h2"], name="/Cast_1", to=TensorProto.INT64),
             node("Slice", ["sh", "i0", "two"], ["nc"], name="/Slice"),
             node("Concat", ["nc", "h2", "h2"], ["size"], name="/Concat", **concat),
             node("Resize", ["c", "", "", "size"], ["up"], name="/Resize", mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             conv("/conv2/Conv", "up", "y", strides=[2, 2])]
    return model(nodes, [weight(), ints("two", [2]), ints("i0", [0]), floats("f2", [2.0])])


def with_attribute(m: onnx.ModelProto, node_name: str, name: str, value=None, **fields) -> onnx.ModelProto:
    """`m` with attribute `name` of node `node_name` replaced (removed when value and fields are None)."""
    for n in m.graph.node:
        if n.name == node_name:
            kept = [a for a in n.attribute if a.name != name]
            del n.attribute[:]
            n.attribute.extend(kept)
            if value is not None:
                n.attribute.append(helper.make_attribute(name, value))
            elif fields:
                n.attribute.append(AttributeProto(name=name, **fields))
    return m


def not_utf8(m: onnx.ModelProto, placeholder: str) -> bytes:
    return m.SerializeToString().replace(placeholder.encode(), b"\xff\xfe" + b"?" * (len(placeholder) - 2))


def self_calling_function() -> onnx.ModelProto:
    body = [node("Loopy", ["X"], ["Y"], domain="local")]
    function = helper.make_function("local", "Loopy", ["X"], ["Y"], body, [helper.make_opsetid("", 17)])
    return model([conv(), node("Loopy", ["c"], ["y"], name="call", domain="local")], [weight()],
                 functions=[function], extra_opsets=[("local", 1)])


def chain(op: str, count: int) -> onnx.ModelProto:
    """A conv net and, beside it, `count` nodes of `op` fed each by the last: Gather(t, t) doubles a
    rank (from zeros of the conv output's shape), Concat(t, t) a length (from its shape), Identity
    makes a deep chain of shape arithmetic feeding Pad."""
    nodes = [conv(), node("Shape", ["c"], ["t0"])]
    if op == "Gather":
        zeros = helper.make_tensor("zero", TensorProto.INT64, [1], [0])
        nodes = [conv(), node("Shape", ["c"], ["s"]), node("ConstantOfShape", ["s"], ["t0"], value=zeros)]
    for i in range(count):
        inputs = [f"t{i}"] if op == "Identity" else [f"t{i}", f"t{i}"]
        nodes.append(node(op, inputs, [f"t{i + 1}"], **({"axis": 0} if op == "Concat" else {})))
    if op == "Identity":  # Shape(c) = [1, 2, 14, 14]: pads 1,2 before H,W, 14,14 after ... sliced to 0 and 1
        nodes += [node("Slice", [f"t{count}", "i0", "i2"], ["nc"]), node("Sub", ["nc", "nc"], ["zeros"]),
                  node("Concat", ["zeros", "ones", "zeros", "ones"], ["pads"], axis=0),
                  node("Pad", ["c", "pads"], ["y"], name="pad")]
        return model(nodes, [weight(), ints("i0", [0]), ints("i2", [2]), ints("ones", [1, 1])])
    m = model([*nodes, node("MaxPool", ["c"], ["y"], name="pool", kernel_shape=[2, 2])], [weight()])
    m.graph.output.append(helper.make_tensor_value_info(f"t{count}", TensorProto.INT64, None))
    return m


def external(location: str) -> onnx.ModelProto:
    """Resize whose scales are stored in the external file `location`."""
    scales = floats("scales", [1, 1, 4, 4])
    scales.ClearField("raw_data")
    scales.ClearField("float_data")
    scales.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = scales.external_data.add()
        entry.key, entry.value = key, value
    resize = node("Resize", ["c", "", "scales"], ["y"], name="up", mode="nearest")
    return model([conv(), resize], [weight(), scales])


def declared(dims) -> onnx.TensorProto:
    """An int64 initializer 'pads' that declares `dims` and holds no data."""
    return TensorProto(name="pads", data_type=TensorProto.INT64, dims=list(dims))


def malformed_then_chained(count: int = 20000) -> onnx.ModelProto:
    """pads = Identity^count(p0), where p0 holds 6 bytes for 8 int64s: the error is found once, not
    once per node of the chain (shape inference asks for every node's constant inputs)."""
    p0 = TensorProto(name="p0", data_type=TensorProto.INT64, dims=[8], raw_data=b"\0" * 6)
    chain = [node("Identity", [f"p{i}"], [f"p{i + 1}" if i + 1 < count else "pads"]) for i in range(count)]
    return padded(chain, inits=[p0])


def bad_dtype_constant() -> onnx.ModelProto:
    value = TensorProto(name="v", data_type=0, dims=[8])
    return padded([node("Constant", [], ["pads"], name="pads_const", value=value)])


def huge_constant() -> onnx.ModelProto:
    value = TensorProto(name="v", data_type=TensorProto.INT64, dims=[10**12])
    return padded([node("Constant", [], ["pads"], name="pads_const", value=value)])


def twice(m: onnx.ModelProto) -> onnx.ModelProto:
    m.graph.node[0].attribute.append(helper.make_attribute("strides", [1, 1]))
    return m


def no_outputs() -> onnx.ModelProto:
    m = conv_net()
    m.graph.node.insert(1, node("Relu", ["c"], [], name="sink"))
    return m


def produced_twice() -> onnx.ModelProto:
    m = conv_net()
    m.graph.node.append(node("Relu", ["x"], ["c"], name="again"))
    return m


def input_dims(*dims) -> onnx.ModelProto:
    m = conv_net()
    shape = m.graph.input[0].type.tensor_type.shape
    for d, v in zip(shape.dim, dims):
        d.dim_value = v
    return m


def after_conv(op_node: onnx.NodeProto, *inits: onnx.TensorProto, opset: int = 17) -> onnx.ModelProto:
    """conv -> `op_node` (reading 'c')."""
    return model([conv(), op_node], [weight(), *inits], opset=opset)


def huge_then_sliced(op: str, inputs: list[str], *inits: onnx.TensorProto) -> onnx.ModelProto:
    """pads = `op`(inputs)[0:8], where `op` makes 10^12 elements."""
    nodes = [node(op, inputs, ["all"], name="grow"), node("Slice", ["all", "i0", "i8"], ["pads"])]
    return padded(nodes, inits=[*inits, ints("i0", [0]), ints("i8", [8])])


def cycle() -> onnx.ModelProto:
    nodes = [conv(), node("Add", ["c", "r"], ["s"], name="add"), node("Relu", ["s"], ["r"], name="relu")]
    return model(nodes, [weight()], output="r")


# -- the cases: model (or bytes, or a path kind), expected exception and phrases of its message -----
NOT_CONSTANT = (UnsupportedOpError, ("'pad'", "pads not constant"))
ERRORS: dict[str, tuple[Callable[[], object], tuple[type, tuple[str, ...]]]] = {
    # malformed fields, caught where they are read
    "concat_without_axis": (lambda: torch_like(concat_axis=False),
                            (GraphFormatError, ("'/Concat'", "Concat", "'axis'", "required"))),
    "bad_initializer_dtype": (lambda: padded([], inits=[TensorProto(name="pads", data_type=999, dims=[8])]),
                              (GraphFormatError, ("'pads'", "data type 999"))),
    "bad_constant_dtype": (bad_dtype_constant, (GraphFormatError, ("'pads_const'", "data type 0"))),
    "cast_to_bad_dtype": (lambda: with_attribute(torch_like(), "/Cast_1", "to", 999),
                          (GraphFormatError, ("'/Cast_1'", "'to'", "999"))),
    "non_utf8_node_name": (lambda: not_utf8(conv_net(name="QQQQconv"), "QQQQconv"),
                           (GraphFormatError, ("not UTF-8", "name"))),
    "non_utf8_tensor_name": (lambda: not_utf8(model([conv(y="QQQQ"), node("Relu", ["QQQQ"], ["y"])],
                                                    [weight()]), "QQQQ"),
                             (GraphFormatError, ("not UTF-8", "output"))),
    "non_utf8_attribute": (lambda: with_attribute(conv_net(), "conv", "auto_pad", b"\xff\xfeSAME"),
                           (GraphFormatError, ("'conv'", "'auto_pad'", "not UTF-8"))),
    "op_type_with_a_newline": (lambda: after_conv(node("Conv\nRelu", ["c"], ["y"], name="fused")),
                               (GraphFormatError, ("op type", "'Conv\\nRelu'", "not a name"))),
    "unknown_auto_pad": (lambda: with_attribute(conv_net(), "conv", "auto_pad", "SAME_MIDDLE"),
                         (GraphFormatError, ("'auto_pad'", "SAME_MIDDLE"))),
    "missing_blocksize": (lambda: after_conv(node("DepthToSpace", ["c"], ["y"], name="d2s")),
                          (GraphFormatError, ("'d2s'", "'blocksize'", "required"))),
    "short_pads": (lambda: conv_net(pads=[1, 1]),
                   (GraphFormatError, ("'conv'", "'pads'", "2 entries; 4 expected"))),
    "short_strides": (lambda: conv_net(strides=[2]),
                      (GraphFormatError, ("'strides'", "1 entries; 2 expected"))),
    "zero_kernel": (lambda: conv_net(kernel_shape=[0, 3]),
                    (GraphFormatError, ("'kernel_shape'", ">= 1, got 0"))),
    "negative_stride": (lambda: conv_net(strides=[-1, 1]), (GraphFormatError, ("'strides'", ">= 1, got -1"))),
    "zero_dilation": (lambda: conv_net(dilations=[1, 0]), (GraphFormatError, ("'dilations'", ">= 1, got 0"))),
    "negative_pad": (lambda: conv_net(pads=[1, -1, 1, 1]), (GraphFormatError, ("'pads'", ">= 0"))),
    "huge_kernel": (lambda: conv_net(kernel_shape=[10**15, 3]), (LimitError, ("'kernel_shape'", "limit"))),
    "huge_stride": (lambda: conv_net(strides=[2**62, 1]), (LimitError, ("'strides'", "limit"))),
    "float_strides": (lambda: conv_net(strides=[2.0, 2.0]),
                      (GraphFormatError, ("'strides'", "a list of floats", "a list of ints"))),
    "attribute_twice": (lambda: twice(conv_net()), (GraphFormatError, ("'strides'", "given twice"))),
    "bad_perm": (lambda: after_conv(node("Transpose", ["c"], ["y"], name="t", perm=[0, 1, 2, 2])),
                 (GraphFormatError, ("'t'", "perm", "not a permutation"))),
    "axis_out_of_range": (lambda: after_conv(node("Softmax", ["c"], ["y"], name="sm", axis=7)),
                          (GraphFormatError, ("'sm'", "axis", "out of range"))),
    "split_count": (lambda: model([conv(), node("Split", ["c"], ["a", "b"], name="split", axis=2,
                                                num_outputs=3), node("Add", ["a", "b"], ["y"])],
                                  [weight()], opset=18),
                    (GraphFormatError, ("'split'", "num_outputs"))),
    "slice_lengths": (lambda: after_conv(node("Slice", ["c", "st", "en"], ["y"], name="crop"),
                                         ints("st", [1, 1]), ints("en", [-1])),
                      (GraphFormatError, ("'crop'", "starts, ends"))),
    "reshape_two_unknowns": (lambda: after_conv(node("Reshape", ["c", "shp"], ["y"], name="view"),
                                                ints("shp", [1, -1, -1])),
                             (GraphFormatError, ("'view'", "one -1"))),
    "huge_pad": (lambda: padded([], inits=[ints("pads", [0, 0, 10**15, 0, 0, 0, 0, 0])]),
                 (LimitError, ("'pad'", "pads", "limit"))),
    "nan_scale": (lambda: after_conv(node("Resize", ["c", "", "s"], ["y"], name="up"),
                                     floats("s", [1, 1, float("nan"), 2])),
                  (GraphFormatError, ("'up'", "scales", "finite"))),
    "huge_scale": (lambda: after_conv(node("Resize", ["c", "", "s"], ["y"], name="up"),
                                      floats("s", [1, 1, 1e30, 2])),
                   (LimitError, ("'up'", "limit"))),
    "missing_inputs": (lambda: after_conv(node("Pad", ["c"], ["y"], name="pad")),
                       (GraphFormatError, ("'pad'", "inputs", "needs at least 2"))),
    "no_outputs": (no_outputs, (GraphFormatError, ("'sink'", "no outputs"))),
    "produced_twice": (produced_twice, (GraphFormatError, ("'c'", "produced twice"))),
    # sizes: refused beyond the limits, never materialised below them
    "huge_range": (lambda: padded([node("Range", ["zero", "big", "one"], ["pads"], name="range")],
                                  inits=[ints("zero", 0), ints("big", 10**12), ints("one", 1)]),
                   NOT_CONSTANT),
    "huge_constant_of_shape": (lambda: huge_then_sliced("ConstantOfShape", ["n"], ints("n", [10**12])),
                               NOT_CONSTANT),
    "huge_expand": (lambda: huge_then_sliced("Expand", ["z", "n"], ints("z", [0]), ints("n", [10**12])),
                    NOT_CONSTANT),
    "huge_tile": (lambda: huge_then_sliced("Tile", ["z", "n"], ints("z", [0]), ints("n", [10**12])),
                  NOT_CONSTANT),
    "constant_of_shape_beyond_limit": (lambda: huge_then_sliced("ConstantOfShape", ["n"],
                                                                ints("n", [10**13])),
                                       (LimitError, ("'grow'", "limit"))),
    "declared_initializer_without_data": (lambda: padded([], inits=[declared([10**12])]), NOT_CONSTANT),
    "initializer_data_too_short": (lambda: padded([], inits=[declared([8])]),
                                   (GraphFormatError, ("'pads'", "declares 8 elements", "holds 0"))),
    "initializer_beyond_limit": (lambda: padded([], inits=[declared([10**13])]),
                                 (LimitError, ("'pads'", "limit"))),
    "huge_constant": (huge_constant, NOT_CONSTANT),
    "malformed_then_chained": (malformed_then_chained, (GraphFormatError, ("'p0'", "holds 6 bytes"))),
    "input_beyond_limit": (lambda: input_dims(1, 2, 10**13, 10**13), (LimitError, ("'x'", "limit"))),
    "negative_input_dim": (lambda: input_dims(1, 2, -5, 16), (GraphFormatError, ("'x'", ">= 0"))),
    # structure
    "cycle": (cycle, (GraphFormatError, ("cycle", "'add'", "'relu'"))),
    "self_loop": (lambda: model([conv(), node("Add", ["c", "s"], ["s"], name="loop")], [weight()]),
                  (GraphFormatError, ("cycle", "'loop'"))),
    "cycle_in_arithmetic": (lambda: padded([node("Concat", ["z", "pads"], ["pads"], name="feedback", axis=0)],
                                           inits=[ints("z", [0])]), NOT_CONSTANT),
    "function_calls_itself": (self_calling_function, (GraphFormatError, ("'Loopy'", "calls itself"))),
    "external_scales": (lambda: external("scales.bin"),
                        (UnsupportedOpError, ("'up'", "scales not constant"))),
    "external_fifo": (lambda: external("fifo.bin"),
                      (UnsupportedOpError, ("'up'", "scales not constant"))),
    # bytes and paths
    "truncated": (lambda: conv_net().SerializeToString()[:57],
                  (GraphFormatError, ("not an ONNX model", "truncated"))),
    "random_bytes": (lambda: bytes(random.Random(7).randrange(256) for _ in range(3000)),
                     (GraphFormatError, ("not an ONNX model",))),
    "empty": (lambda: b"", (GraphFormatError, ("empty",))),
    "fifo": (lambda: "fifo", (FovealError, ("not a regular file",))),
    "dev_zero": (lambda: "dev_zero", (FovealError, ("not a regular file",))),
    "folder": (lambda: "folder", (FovealError, ("a folder",))),
    "missing": (lambda: "missing", (FovealError, ("no such file",))),
}


def _path(case: str, made: object, tmp_path: Path) -> Path:
    path = tmp_path / f"{case}.onnx"
    if made == "fifo":
        os.mkfifo(path)
    elif made == "dev_zero":
        path.symlink_to("/dev/zero")
    elif made == "folder":
        path.mkdir()
    elif made == "missing":
        pass
    else:
        assert isinstance(made, (bytes, onnx.ModelProto))
        path.write_bytes(made if isinstance(made, bytes) else made.SerializeToString())
    (tmp_path / "scales.bin").write_bytes(np.asarray([1, 1, 4, 4], np.float32).tobytes())  # never read
    if not (tmp_path / "fifo.bin").exists():
        os.mkfifo(tmp_path / "fifo.bin")  # opening it would block
    return path


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text.strip() and "Traceback" not in text and len(text) < 800, text
    return text


def cli_error(path: Path, capsys) -> str:
    with no_hang():
        status = main(["analyze", str(path), "--format", "json", "--verdicts"])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("foveal: error: ") and not captured.out, (
        status, captured.err[-2000:])
    return lines[0]


@pytest.mark.parametrize("case", list(ERRORS))
def test_hostile_model_is_one_line(case: str, tmp_path: Path, capsys) -> None:
    make, (kind, phrases) = ERRORS[case]
    path = _path(case, make(), tmp_path)
    with no_hang(), pytest.raises(FovealError) as info:
        foveal.receptive_field(path)
    text = one_line(info.value)
    assert isinstance(info.value, kind), f"{type(info.value).__name__}: {text}"
    assert all(p in text for p in phrases), text
    line = cli_error(path, capsys)
    assert all(p in line for p in phrases), line


# -- what still analyses, and correctly ------------------------------------------------------------
def test_the_torch_like_chain_folds() -> None:
    a = foveal.receptive_field(torch_like())
    assert a["/Resize"].size == (3, 3)
    assert a.output.size == (4, 4) and a.output.stride == (1, 1)  # 3x3 on a 2x nearest upsample


def test_a_declared_input_of_a_trillion_pixels(capsys, tmp_path: Path) -> None:
    """10^12 is within foveal's limit: the result is arithmetic, not proportional to the size."""
    path = _path("big", input_dims(1, 2, 10**12, 10**12), tmp_path)
    with no_hang():
        a = foveal.receptive_field(path)
        assert a.input_shape == (10**12, 10**12)
        assert a.output.size == (5, 5) and a.output.stride == (4, 4)
        assert main(["analyze", str(path), "--format", "json"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("op, count", [("Gather", 40), ("Concat", 40), ("Identity", 20000)])
def test_long_chains_beside_the_image(op: str, count: int) -> None:
    """ONNX's own whole-graph inference builds a shape of rank 3 x 2^40 for 40 Gather(t, t) nodes,
    and its data propagation a shape of 2^42 dims for 40 Concat(t, t); foveal's node-by-node
    inference keeps every rank and length bounded. 20,000 Identity nodes of shape arithmetic fold
    without deep recursion."""
    with no_hang():
        a = foveal.receptive_field(chain(op, count))
    if op == "Identity":  # pads 0 before and 1 after H and W, from Shape(c) through the chain
        assert a["pad"].size == (3, 3) and a.output.size == (3, 3)
    else:
        assert a.output.size == (4, 4)


def test_a_guessed_rank_is_not_a_format_error() -> None:
    """After an op foveal cannot follow (and ONNX cannot infer), a Transpose of rank 5 contradicts
    the rank foveal guessed, not the model: the Transpose is unsupported too, with the reason."""
    nodes = [conv(), node("Mystery", ["c"], ["m"], name="mystery", domain="com.example"),
             node("Transpose", ["m"], ["y"], name="t", perm=[0, 2, 1, 3, 4])]
    m = model(nodes, [weight()], extra_opsets=[("com.example", 1)])
    a = foveal.receptive_field(m, unknown_policy="identity")
    assert any("rank is unknown" in op for op in a.unsupported_ops), a.unsupported_ops


def test_the_path_is_read_once_and_bounded(tmp_path: Path, monkeypatch) -> None:
    """Paths go through foveal.files.read_file (regular files only, size bounded); onnx.load,
    which would follow external data, is never called."""
    calls = []
    monkeypatch.setattr(onnx, "load", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(onnx, "load_model", lambda *a, **k: calls.append(a))
    path = _path("net", conv_net(), tmp_path)
    assert foveal.receptive_field(path).output.size == (5, 5)
    assert calls == []


def test_a_resize_after_a_spatial_axis_was_contracted(capsys) -> None:
    """Found by the long fuzzing campaign: a MatMul contracts W, a later Resize met an axis no
    dimension holds (an AssertionError); it is an unsupported op now, named in one line."""
    path = Path(__file__).parent / "fixtures" / "onnx" / "resize-after-a-folded-axis.onnx"
    with pytest.raises(UnsupportedOpError, match="Resize") as found:
        foveal.receptive_field(path)
    assert "\n" not in str(found.value)
    assert main(["analyze", str(path)]) == 2 and capsys.readouterr().err.count("\n") == 1
    lenient = foveal.receptive_field(path, unknown_policy="identity")
    assert any("no longer holds every spatial axis" in op for op in lenient.unsupported_ops)


# -- only the core installed -----------------------------------------------------------------------
def test_core_only(tmp_path: Path) -> None:
    """Without onnx (nor numpy, protobuf...): a missing .onnx file is reported as missing, an
    existing one says to install foveal[onnx]; one line each, status 2."""
    (tmp_path / "net.onnx").write_bytes(conv_net().SerializeToString())
    expected = {"missing.onnx": "no such file", "net.onnx": "install foveal[onnx]"}
    for name, phrase in expected.items():
        done = run_core_only("analyze", str(tmp_path / name))
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and phrase in lines[0], done.stderr[-2000:]
