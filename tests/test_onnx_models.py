"""ONNX front-end on real models: torchvision exports (the legacy TorchScript exporter and the dynamo
exporter) against the PyTorch front-end layer by layer, dynamic H/W, a Keras model exported to ONNX
by Keras itself, weights stored outside the file, model-local functions, the CLI, and bad input
(one line each, never a traceback or a hang).

The oracle for exports is foveal's PyTorch front-end on the same module, which is itself checked
against NaN injection in test_pytorch.py. Legacy node names carry the module path
(`/layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`); the dynamo exporter names nodes `node_Conv_12`
but keeps the weights' names (`layer1.0.conv1.weight`), which map a Conv to its module.
"""

from __future__ import annotations

import importlib.util
import json
import math
import random
from collections import Counter

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import onnx_models as OM  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from onnx_graphs import no_hang  # noqa: E402

import foveal  # noqa: E402
from foveal.cli import main  # noqa: E402
from foveal.errors import FovealError, GraphFormatError, UnknownNodeError, UnsupportedOpError  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _free_the_exports():
    """The cached exports and modules hold a few hundred MB: gone once this file is done."""
    yield
    OM.exported.cache_clear()
    OM.torchvision_module.cache_clear()


def torch_analysis(name: str, size: int, **kwargs):
    return foveal.receptive_field(OM.module_of(name, **kwargs), OM.input_shape(name, size))


def modules(name: str, **kwargs) -> dict:
    return dict(OM.module_of(name, **kwargs).named_modules())


def compare_legacy(model, ta, oa, mods) -> int:
    """Every Conv / pool node that is one module call: same RF and output shape; every Conv mapped."""
    checked = 0
    for node, name in zip(model.graph.node, OM.node_names(model.graph)):
        if node.op_type not in OM.WINDOW_OPS:
            continue
        path = OM.legacy_module_path(node.name)
        if not isinstance(mods.get(path), OM.WINDOW_MODULES):
            assert node.op_type not in ("Conv", "ConvTranspose"), (node.name, path)
            continue  # a functional pool (F.max_pool2d in a block's forward): no module node to compare
        assert OM.rf(oa[name]) == OM.rf(ta[path]), (name, path, oa[name], ta[path])
        checked += 1
    return checked


def compare_dynamo(model, ta, oa, mods) -> int:
    """Each Conv by its weight's name, the multiset of Conv RFs against the conv modules'."""
    ours, checked = [], 0
    for node, name in zip(model.graph.node, OM.node_names(model.graph)):
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        ours.append(OM.rf(oa[name]))
        path = node.input[1].removesuffix(".weight")
        if isinstance(mods.get(path), OM.CONV_MODULES):
            assert OM.rf(oa[name]) == OM.rf(ta[path]), (name, path, oa[name], ta[path])
            checked += 1
    theirs = [OM.rf(ta[path]) for path, m in mods.items() if isinstance(m, OM.CONV_MODULES)]
    assert Counter(map(repr, ours)) == Counter(map(repr, theirs))
    return checked


def compare_output(ta, oa) -> None:
    assert OM.rf(oa.output) == OM.rf(ta.output), (oa.output, ta.output)
    assert oa.output.status == "exact", oa.output.reasons
    index = tuple(n // 2 for n in oa.output.output_shape)
    assert oa.output.region(*index, clip=True) == ta.output.region(*index, clip=True)


# -- torchvision exports against the PyTorch front-end ---------------------------------------------

SEG = {"weights_backbone": None}
INCEPTION = {"aux_logits": False, "init_weights": False}
FAST = [
    ("resnet18", {}, 64),
    ("mobilenet_v3_small", {}, 64),          # squeeze-excitation (GlobalAveragePool, Mul)
    ("lraspp_mobilenet_v3_large", SEG, 64),  # bilinear Resize back to the input size
    ("googlenet", INCEPTION, 64),            # concat branches, ceil_mode pools
    ("squeezenet1_0", {}, 64),               # ceil_mode pools, concat
    ("shufflenet_v2_x0_5", {}, 64),          # channel shuffle: Reshape / Transpose / Reshape
    ("unet", {}, 32),                        # ConvTranspose, concat skips
]
SLOW = [
    ("densenet121", {}, 64),
    ("fcn_resnet50", {"weights_backbone": None, "aux_loss": None}, 64),
    ("inception_v3", INCEPTION, 96),
    ("resnet50", {}, 64),
    ("efficientnet_b0", {}, 64),
    ("convnext_tiny", {}, 64),
    ("regnet_x_400mf", {}, 64),
    ("deeplabv3_mobilenet_v3_large", {"weights_backbone": None, "aux_loss": None}, 64),
]
DYNAMO_FAST = {"resnet18", "mobilenet_v3_small", "lraspp_mobilenet_v3_large", "shufflenet_v2_x0_5", "unet"}


def params(cases, dynamo_filter=None):
    out = []
    for name, kwargs, size in cases:
        out.append(pytest.param(name, kwargs, size, False, id=f"{name}-legacy"))
        if dynamo_filter is None or name in dynamo_filter:
            out.append(pytest.param(name, kwargs, size, True, id=f"{name}-dynamo"))
    return out


def check_export(name: str, kwargs: dict, size: int, dynamo: bool) -> None:
    model = OM.exported(name, dynamo, size, **kwargs)
    oa = foveal.receptive_field(model, size)
    ta = torch_analysis(name, size, **kwargs)
    mods = modules(name, **kwargs)
    checked = (compare_dynamo if dynamo else compare_legacy)(model, ta, oa, mods)
    assert checked >= sum(isinstance(m, OM.CONV_MODULES) for m in mods.values()) * (0.9 if dynamo else 1)
    compare_output(ta, oa)
    assert all(r.status == "exact" for r in oa), [(r.name, r.reasons) for r in oa if r.status != "exact"]


@pytest.mark.parametrize("name, kwargs, size, dynamo", params(FAST, DYNAMO_FAST))
def test_export_equals_the_pytorch_front_end(name: str, kwargs: dict, size: int, dynamo: bool) -> None:
    check_export(name, kwargs, size, dynamo)


SWEEP = params(SLOW) + [p for p in params(FAST) if p.values[3] and p.values[0] not in DYNAMO_FAST]


@pytest.mark.slow
@pytest.mark.parametrize("name, kwargs, size, dynamo", SWEEP)
def test_export_equals_the_pytorch_front_end_sweep(name: str, kwargs: dict, size: int, dynamo: bool) -> None:
    check_export(name, kwargs, size, dynamo)


def test_golden_resnet18_values_and_the_input_shape_forms() -> None:
    model = OM.exported("resnet18", False)
    a = foveal.receptive_field(model, 64)
    assert a.input == "image" and a.output.name == "/fc/Gemm"
    conv = a["/layer4/layer4.1/conv2/Conv"]
    assert OM.rf(conv) == ("exact", (435, 435), (32, 32), (217, 217), (2, 2))
    assert a["/maxpool/MaxPool"].size == (11, 11) and a["/layer1/layer1.0/conv1/Conv"].size == (19, 19)
    assert a["/conv1/Conv"].region(0, 0) == ((-3, 3), (-3, 3))
    for form in ((64, 64), (1, 3, 64, 64)):
        b = foveal.receptive_field(model, form)
        assert [OM.rf(r) for r in b] == [OM.rf(r) for r in a], form
    assert OM.rf(foveal.receptive_field(model, input="image").output) == OM.rf(a.output)  # declared sizes


def test_node_names_and_the_default_output() -> None:
    """A node is named by its `name`, or by its first output when the name is empty or taken; the
    input node by the graph input; the default output is the last declared graph output."""
    nodes = [OM.conv("x", "a", ""), helper.make_node("Relu", ["a"], ["r"], name="dup"),
             OM.conv("r", "y", "dup", stride=2)]
    model = OM.model(nodes, outputs=[OM.output_info("y"), OM.output_info("r")])
    a = foveal.receptive_field(model, 32)
    assert [r.name for r in a] == ["x", "a", "dup", "y"] == ["x", *OM.node_names(model.graph)]
    assert a.input == "x" and a.output.name == "dup" and a["dup"].size == (3, 3)
    assert a["y"].size == (5, 5) and a["y"].output_shape == (16, 16)
    assert foveal.receptive_field(model, 32, output="y").output.name == "y"
    model.graph.output.reverse()
    assert foveal.receptive_field(model, 32).output.name == "y"


# -- dynamic H / W ---------------------------------------------------------------------------------

DYNAMIC = [("resnet18", False), ("resnet18", True), ("shufflenet_v2_x0_5", False), ("unet", True)]


@pytest.mark.parametrize("name, dynamo", DYNAMIC,
                         ids=[f"{n}-{'dynamo' if d else 'legacy'}" for n, d in DYNAMIC])
def test_dynamic_axes_at_two_sizes_and_without_a_size(name: str, dynamo: bool) -> None:
    model = OM.exported(name, dynamo, 64, dynamic=True)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[2].dim_param and dims[3].dim_param  # really symbolic
    mods = modules(name)
    for size in (64, 76 if name == "unet" else 75):  # the U-Net needs a multiple of 4
        oa, ta = foveal.receptive_field(model, size), torch_analysis(name, size)
        (compare_dynamo if dynamo else compare_legacy)(model, ta, oa, mods)
        compare_output(ta, oa)
    if name == "shufflenet_v2_x0_5":  # its channel-shuffle Reshapes need concrete shapes
        with pytest.raises(UnsupportedOpError, match="give input_shape"):
            foveal.receptive_field(model)
        return
    # no size: sizes and strides exact; these explicit paddings do not depend on the size either
    oa, ta = foveal.receptive_field(model), torch_analysis(name, 64)
    pairs = list(conv_pairs(model, dynamo, mods))
    assert len(pairs) == sum(isinstance(m, OM.CONV_MODULES) for m in mods.values())
    for ours, path in pairs:
        assert sized(oa[ours]) == sized(ta[path]), (ours, oa[ours], ta[path])
    if name == "unet":
        assert sized(oa.output) == sized(ta.output)
    else:
        assert oa.output.is_global == (True, True) and oa.output.size == (math.inf, math.inf)


def sized(result) -> tuple:
    return (result.size, result.stride, result.padding)


def conv_pairs(model, dynamo: bool, mods: dict):
    """(foveal's node name, module path) of every Conv / ConvTranspose node that maps to a module."""
    for node, name in zip(model.graph.node, OM.node_names(model.graph)):
        if node.op_type in ("Conv", "ConvTranspose"):
            path = node.input[1].removesuffix(".weight") if dynamo else OM.legacy_module_path(node.name)
            if isinstance(mods.get(path), OM.CONV_MODULES):
                yield name, path


# -- Keras -> ONNX ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_onnx(tmp_path_factory):
    """(the ONNX file Keras wrote, foveal's analysis of the Keras model itself as JSON); Keras runs
    in a subprocess on the torch backend, since other test files import it with TensorFlow."""
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    return OM.keras_export(tmp_path_factory.mktemp("keras"))


def keras_rf(layer: dict) -> tuple:
    return (layer["status"], *(None if layer[k] is None else tuple(layer[k])
                               for k in ("size", "stride", "padding", "output_shape")))


def check_keras(model, keras: dict) -> None:
    """Every Conv (multiset: the exporter names them /Conv, /Conv_1...), the pool, the merging
    Concat and Add (ConvTranspose + the crop Keras adds for 'same'), and the output."""
    oa = foveal.receptive_field(model, (32, 48))
    layers = keras["layers"]
    names = OM.node_names(model.graph)
    for ops, classes in ((("Conv",), ("Conv2D", "DepthwiseConv2D")), (("MaxPool",), ("MaxPooling2D",))):
        ours = [OM.rf(oa[n]) for node, n in zip(model.graph.node, names) if node.op_type in ops]
        theirs = [keras_rf(v) for v in layers.values() if v["class"] in classes]
        assert Counter(map(repr, ours)) == Counter(map(repr, theirs)), ops
    merges = {r.kind: r for r in oa if len(r.inputs) == 2}
    for kind, layer in (("concat", "cat"), ("add", "add")):
        assert OM.rf(merges[kind]) == keras_rf(layers[layer]), (merges[kind], layers[layer])
        assert merges[kind].phase_sizes == tuple(map(tuple, layers[layer]["phase_sizes"]))
    assert OM.rf_no_shape(oa.output) == keras_rf(layers[keras["output"]])[:4], oa.output
    assert all(r.status == "exact" for r in oa), [(r.name, r.reasons) for r in oa if r.status != "exact"]


def test_keras_onnx_nhwc_layout(keras_onnx) -> None:
    """Keras 3 (torch backend) exports an NHWC model with a Transpose to NCHW around every conv:
    foveal follows the axes. Here the shape arithmetic is frozen to the values onnx's reference
    evaluator computes, so only the layout tracking is under test."""
    import numpy as np

    path, keras = keras_onnx
    frozen = OM.frozen_parameters(onnx.load(path), {"image": np.zeros((1, 32, 48, 3), np.float32)})
    check_keras(frozen, keras)


def test_keras_onnx_as_exported(keras_onnx) -> None:
    """The file as Keras wrote it: SAME paddings are Pads whose pads come from Shape arithmetic
    (Gather, Div, Concat, Reshape, Slice, Transpose of a constant...), the Conv2DTranspose crop a
    Slice with computed ends; the input size is declared, so all of it folds."""
    path, keras = keras_onnx
    check_keras(onnx.load(path), keras)


# -- weights outside the file, functions -----------------------------------------------------------


def test_weights_stored_externally_need_not_be_present(tmp_path) -> None:
    model = OM.exported("resnet18", False)
    expected = [OM.rf(r) for r in foveal.receptive_field(model, 64)]
    path = tmp_path / "resnet18.onnx"
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin")
    assert path.stat().st_size < 1_000_000
    (tmp_path / "w.bin").unlink()
    with no_hang():
        assert [OM.rf(r) for r in foveal.receptive_field(path, 64)] == expected
        assert [OM.rf(r) for r in foveal.receptive_field(str(path), 64)] == expected
        bare = onnx.load(path, load_external_data=False)
        assert [OM.rf(r) for r in foveal.receptive_field(bare, 64)] == expected


def _conv_block() -> onnx.FunctionProto:
    """local.ConvBlock(X, W) -> Relu(Conv3x3(X, W, strides=s, pads=1))."""
    node = helper.make_node("Conv", ["X", "W"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    stride = onnx.AttributeProto(name="strides", ref_attr_name="s", type=onnx.AttributeProto.INTS)
    node.attribute.append(stride)
    return helper.make_function("local", "ConvBlock", ["X", "W"], ["Y"],
                                [node, helper.make_node("Relu", ["c"], ["Y"])],
                                [helper.make_opsetid("", 17)], attributes=["s"])


def _twice() -> onnx.FunctionProto:
    """local.Twice(X, W): ConvBlock(s=2) then ConvBlock(s=1), a function calling a function."""
    return helper.make_function("local", "Twice", ["X", "W"], ["Y"],
                                [helper.make_node("ConvBlock", ["X", "W"], ["m"], domain="local", s=[2, 2]),
                                 helper.make_node("ConvBlock", ["m", "W"], ["Y"], domain="local", s=[1, 1])],
                                [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])


def call(op: str, inputs: list[str], outputs: list[str], **attributes) -> onnx.NodeProto:
    return helper.make_node(op, inputs, outputs, domain="local", **attributes)


def test_model_local_functions_are_inlined() -> None:
    flat = OM.model([OM.conv("x", "a", "c1", stride=2), helper.make_node("Relu", ["a"], ["b"], name="r1"),
                     OM.conv("b", "c", "c2"), helper.make_node("Relu", ["c"], ["d"], name="r2"),
                     OM.conv("d", "y", "c3", stride=2)])
    calls = OM.model([call("ConvBlock", ["x", "w"], ["b"], name="block1", s=[2, 2]),
                      call("ConvBlock", ["b", "w"], ["d"], name="block2", s=[1, 1]),
                      OM.conv("d", "y", "c3", stride=2)],
                     functions=[_conv_block()], extra_opsets=[("local", 1)])
    nested = OM.model([call("Twice", ["x", "w"], ["d"], name="twice"),
                       OM.conv("d", "y", "c3", stride=2)],
                      functions=[_conv_block(), _twice()], extra_opsets=[("local", 1)])
    onnx.checker.check_model(calls)
    expected = foveal.receptive_field(flat, 32)
    assert OM.rf(expected.output) == ("exact", (11, 11), (4, 4), (5, 5), (8, 8))
    assert OM.rf(expected["c3"]) == OM.rf(expected.output)
    for m in (calls, nested):
        got = foveal.receptive_field(m, 32)
        assert OM.rf(got.output) == OM.rf(expected.output)
        assert OM.rf(got["c3"]) == OM.rf(expected["c3"])
        assert OM.rf(foveal.receptive_field(m).output)[1:3] == ((11, 11), (4, 4))


# -- the CLI ---------------------------------------------------------------------------------------


def test_cli_table_and_json(tmp_path, capsys) -> None:
    path = tmp_path / "resnet18.onnx"
    onnx.save(OM.exported("resnet18", False), path)
    assert main(["analyze", str(path), "--input-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "/layer4/layer4.1/conv2/Conv" in out and "435x435" in out
    assert main(["analyze", str(path), "--input-size", "64", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    api = foveal.receptive_field(path, 64)
    assert data["output"] == api.output.name and data["input_shape"] == [64, 64]
    nodes = {n["name"]: n for n in data["nodes"]}
    assert nodes["/layer4/layer4.1/conv2/Conv"]["size"] == [435, 435]
    assert nodes[api.output.name]["size"] == list(api.output.size)


# -- bad input: one line each ----------------------------------------------------------------------


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text.strip() and "Traceback" not in text and len(text) < 600, text
    return text


def _header_length(model: onnx.ModelProto) -> int:
    """Bytes before the graph field: a cut there is a valid ModelProto without a graph."""
    head = onnx.ModelProto()
    head.CopyFrom(model)
    head.ClearField("graph")
    head.ClearField("opset_import")
    head.ClearField("functions")
    head.ClearField("metadata_props")
    return len(head.SerializeToString())


def bad_files(tmp_path) -> dict:
    good = OM.exported("unet", False, 32).SerializeToString()
    model = onnx.load_from_string(good)
    nodes_end = len(good) // 3  # the exporter writes the nodes first, then the initializers
    cases = {
        "text.onnx": b"this is not an ONNX model\nbut a text file\n",
        "random.onnx": bytes(random.Random(3).randrange(256) for _ in range(4000)),
        "empty.onnx": b"",
        "no_graph.onnx": good[:_header_length(model)],
    }
    for cut in (1, 7, 40, nodes_end, len(good) // 2, len(good) - 3):
        cases[f"cut{cut}.onnx"] = good[:cut]
    paths = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        paths[name] = tmp_path / name
    return paths


def test_bad_files_are_one_line(tmp_path) -> None:
    for name, path in bad_files(tmp_path).items():
        with no_hang(), pytest.raises(GraphFormatError) as info:
            foveal.receptive_field(path, 32)
        text = _one_line(info.value)
        assert name in text, text


def _if_model() -> onnx.ModelProto:
    branch = helper.make_graph([helper.make_node("Identity", ["a"], ["o"])], "branch", [],
                               [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
    choose = helper.make_node("If", ["cond"], ["y"], name="choose", then_branch=branch, else_branch=branch)
    cond = helper.make_tensor("cond", TensorProto.BOOL, [], [1])
    return OM.model([OM.conv("x", "a", "c1"), choose], initializers=[OM.weight("w", (1, 1, 3, 3)), cond])


def _loop_model() -> onnx.ModelProto:
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), OM.conv("v_in", "v_out", "inner", w="w")],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None)])
    count = helper.make_tensor("n", TensorProto.INT64, [], [3])
    return OM.model([helper.make_node("Loop", ["n", "", "x"], ["y"], name="repeat", body=body)],
                    initializers=[OM.weight("w", (1, 1, 3, 3)), count])


def _cycle_model() -> onnx.ModelProto:
    return OM.model([OM.conv("x", "a", "c1"), helper.make_node("Add", ["a", "r"], ["s"], name="add"),
                     helper.make_node("Relu", ["s"], ["r"], name="relu"),
                     helper.make_node("Identity", ["r"], ["y"], name="out")])


def bad_models() -> dict:
    """{case: (model, expected exception class, phrases the message must contain)}."""
    unknown = OM.model([OM.conv("x", "a", "c1"),
                        helper.make_node("Warp", ["a"], ["b"], name="warp1", domain="com.example"),
                        OM.conv("b", "y", "c2")], extra_opsets=[("com.example", 1)])
    frob = helper.make_node("Frobnicate", ["a"], ["y"], name="frob")
    unknown_default = OM.model([OM.conv("x", "a", "c1"), frob])
    return {
        "opset99": (OM.small_cnn(opset=99), FovealError, ["99"]),
        "unknown_op": (unknown, UnsupportedOpError, ["warp1", "Warp"]),
        "unknown_default_domain_op": (unknown_default, UnsupportedOpError, ["frob", "Frobnicate"]),
        "if": (_if_model(), UnsupportedOpError, ["choose", "If"]),
        "loop": (_loop_model(), UnsupportedOpError, ["repeat", "Loop"]),
        "cycle": (_cycle_model(), FovealError, ["cycle"]),
        "pads_unknown": (_runtime_pads_model(), UnsupportedOpError, ["'pad'", "Pad"]),
    }


def _runtime_pads_model() -> onnx.ModelProto:
    """Pad whose pads are a second graph input, then a merge with an unpadded branch: the Pad is
    what foveal cannot analyse, whatever the sizes downstream then do."""
    pads = helper.make_tensor_value_info("pads", TensorProto.INT64, [8])
    return OM.model([helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
                     helper.make_node("Conv", ["p", "w"], ["a"], name="valid", kernel_shape=[3, 3]),
                     OM.conv("x", "b", "same"), helper.make_node("Add", ["a", "b"], ["y"], name="add")],
                    inputs=[OM.image_input(), pads])


@pytest.mark.parametrize("case", list(bad_models()))
def test_bad_models_are_one_line(case: str, tmp_path) -> None:
    model, kind, phrases = bad_models()[case]
    for source in (model, tmp_path / f"{case}.onnx"):
        if not isinstance(source, onnx.ModelProto):
            onnx.save(model, source)
        with no_hang(), pytest.raises(kind) as info:
            foveal.receptive_field(source, 32)
        text = _one_line(info.value)
        assert all(p in text for p in phrases), text


def test_unknown_op_with_a_lenient_policy_is_a_bound() -> None:
    model, _, _ = bad_models()["unknown_op"]
    a = foveal.receptive_field(model, 32, unknown_policy="identity")
    assert a.output.status != "exact" and any("Warp" in op for op in a.unsupported_ops), a.unsupported_ops
    assert a["c1"].status == "exact" and a["c1"].size == (3, 3)


def test_unknown_output_name_is_one_line() -> None:
    model = OM.exported("resnet18", False)
    with pytest.raises(UnknownNodeError) as info:
        foveal.receptive_field(model, 64, output="/layer4/layer4.1/conv2/Con")
    assert "did you mean '/layer4/layer4.1/conv2/Conv'" in _one_line(info.value)
    with pytest.raises(FovealError) as info:
        foveal.receptive_field(model, 64, input="imag")
    _one_line(info.value)


def test_bad_input_through_the_cli(tmp_path, capsys) -> None:
    paths = dict(bad_files(tmp_path))
    for case, (model, _, _) in bad_models().items():
        onnx.save(model, tmp_path / f"{case}.onnx")
        paths[case] = tmp_path / f"{case}.onnx"
    good = tmp_path / "good.onnx"
    onnx.save(OM.small_cnn(), good)
    runs = {name: ["analyze", str(path), "--input-size", "32"] for name, path in paths.items()}
    runs["unknown output"] = ["analyze", str(good), "--output-node", "conv3"]
    runs["missing file"] = ["analyze", str(tmp_path / "missing.onnx")]
    wrong = {}
    for name, argv in runs.items():
        with no_hang():
            code = main(argv)
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        if code != 2 or len(lines) != 1 or not lines[0].startswith("foveal: error: ") or captured.out:
            wrong[name] = (code, captured.err[-300:], captured.out[:200])
    assert not wrong, wrong
