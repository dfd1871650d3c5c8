"""ONNX models: seeds are small models built with onnx.helper (windows, pads, resizes, layout
changes, torch-export-like shape arithmetic, a model-local function); mutations change the parsed
ModelProto (attribute values and types, edges, op types and domains, opsets, initializer dims and
dtypes, declared input dims) and serialise it again."""

from __future__ import annotations

import random
from typing import Any

SUFFIX = ".onnx"
REQUIRES = ("onnx",)
API_KWARGS: dict[str, Any] = {}  # the declared input sizes, which mutations change
CLI_ARGS = ["--format", "json", "--verdicts"]

HUGE = (10**12, 2**40, 2**62, 2**63 - 1, -(2**63), 10**6, 4096)
SMALL = (0, -1, -2, 1, 2, 3, 7)
OPS = ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "Pad", "Resize", "Upsample", "Slice",
       "Concat", "Split", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Gather", "Expand",
       "Tile",
       "Range", "ConstantOfShape", "Shape", "Size", "Cast", "Mul", "Div", "Add", "Sub", "Mod", "Where",
       "DepthToSpace", "SpaceToDepth", "Gemm", "MatMul", "ReduceMean", "ReduceSum", "Softmax", "CumSum",
       "LayerNormalization", "GlobalAveragePool", "Identity", "Relu", "Constant", "If", "Loop", "Einsum",
       "ArgMax", "Hardmax", "MeanVarianceNormalization", "Dropout", "ReduceProd", "Neg", "Floor")
ATTRIBUTES = ("axis", "axes", "kernel_shape", "strides", "pads", "dilations", "perm", "mode", "auto_pad",
              "ceil_mode", "blocksize", "group", "keepdims", "split", "num_outputs", "output_padding",
              "output_shape", "coordinate_transformation_mode", "nearest_mode", "scales", "starts", "ends",
              "value", "value_ints", "value_int", "shape", "allowzero", "antialias", "to", "transA",
              "noop_with_empty_axes", "start", "end", "paddings", "height_scale", "fmod")
STRINGS = (b"nearest", b"linear", b"cubic", b"SAME_UPPER", b"SAME_LOWER", b"VALID", b"NOTSET", b"reflect",
           b"edge", b"wrap", b"constant", b"half_pixel", b"align_corners", b"tf_crop_and_resize",
           b"pytorch_half_pixel", b"half_pixel_symmetric", b"\xff\xfe", b"", b"x" * 300, b"DCR", b"CRD")


# -- seeds ----------------------------------------------------------------------------------------
def _models() -> list[Any]:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    from onnx_graphs import floats, ints, model

    F = TensorProto.FLOAT

    def weight(name: str, shape: list[int]) -> Any:
        n = int(np.prod(shape))
        return numpy_helper.from_array((np.arange(n, dtype=np.float32) % 7 / 7).reshape(shape), name)

    node = helper.make_node
    out = []

    # 1. a small 2-D net: windows, pads, resizes (scales and sizes), slice, concat, shuffle, head
    inits = [weight("w1", [4, 3, 3, 3]), weight("b1", [4]), weight("w2", [4, 4, 3, 3]),
             weight("wt", [4, 4, 2, 2]), ints("pads", [0, 0, 1, 2, 0, 0, 1, 2]),
             floats("scales", [1, 1, 2, 2]), ints("sizes", [1, 4, 20, 24]), ints("st", [1, 1]),
             ints("en", [-1, 2**63 - 1]), ints("ax", [2, 3]), ints("shp", [1, 2, 4, 18, 23]),
             ints("shp2", [0, 8, 18, -1])]
    out.append(model([
        node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], strides=[2, 2],
             pads=[1, 1, 1, 1]),
        node("Relu", ["c1"], ["r1"], name="relu1"),
        node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        node("Pad", ["p1", "pads"], ["pd"], name="pad", mode="reflect"),
        node("Conv", ["pd", "w2"], ["c2"], name="conv2", kernel_shape=[3, 3], dilations=[2, 1],
             auto_pad="SAME_UPPER"),
        node("ConvTranspose", ["c2", "wt"], ["t1"], name="up1", strides=[2, 2], output_padding=[1, 0]),
        node("Resize", ["t1", "", "scales"], ["u1"], name="resize1", mode="linear"),
        node("AveragePool", ["u1"], ["a1"], name="avg", kernel_shape=[2, 2], strides=[2, 2],
             pads=[0, 0, 1, 1]),
        node("Resize", ["a1", "", "", "sizes"], ["u2"], name="resize2", mode="nearest",
             coordinate_transformation_mode="align_corners"),
        node("Slice", ["u2", "st", "en", "ax"], ["s1"], name="slice"),
        node("Concat", ["s1", "s1"], ["cat"], name="cat", axis=1),
        node("Reshape", ["cat", "shp"], ["rs"], name="shuffle_in"),
        node("Transpose", ["rs"], ["tr"], name="shuffle", perm=[0, 2, 1, 3, 4]),
        node("Reshape", ["tr", "shp2"], ["sh"], name="shuffle_out"),
        node("Flatten", ["sh"], ["fl"], name="flat", axis=1),
        node("GlobalAveragePool", ["c2"], ["gp"], name="gap"),
        node("Flatten", ["gp"], ["gf"], name="gflat"),
    ], inits, dims=[1, 3, 32, 40], output="fl", graph_name="seed"))
    out[-1].graph.output.append(helper.make_tensor_value_info("gf", F, None))

    # 2. torch-export-like shape arithmetic: Resize to 2x the input's size, pads from ConstantOfShape,
    # a view whose size comes from Shape, Range and Expand on the way
    inits = [weight("w", [2, 2, 3, 3]), ints("zero", [0]), ints("two", [2]), ints("three", [3]),
             ints("i0", [0]), ints("i2", [2]), floats("f2", [2.0]), ints("minus1", [-1]), ints("four", [4]),
             ints("one", [1]), ints("r0", [0]), ints("r1", [1])]
    shape_chain = [
        node("Conv", ["x", "w"], ["c"], name="/conv/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        node("Shape", ["c"], ["sh"], name="/Shape"),
        node("Gather", ["sh", "two"], ["h"], name="/Gather", axis=0),
        node("Gather", ["sh", "three"], ["w_"], name="/Gather_1", axis=0),
        node("Cast", ["h"], ["hf"], name="/Cast", to=TensorProto.FLOAT),
        node("Mul", ["hf", "f2"], ["h2f"], name="/Mul"),
        node("Floor", ["h2f"], ["h2ff"], name="/Floor"),
        node("Cast", ["h2ff"], ["h2"], name="/Cast_1", to=TensorProto.INT64),
        node("Mul", ["w_", "two"], ["w2"], name="/Mul_1"),
        node("Slice", ["sh", "i0", "i2"], ["nc"], name="/Slice"),
        node("Concat", ["nc", "h2", "w2"], ["size"], name="/Concat", axis=0),
        node("Resize", ["c", "", "", "size"], ["up"], name="/Resize", mode="nearest",
             coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        node("Range", ["r0", "four", "r1"], ["rg"], name="/Range"),
        node("Shape", ["rg"], ["rgs"], name="/Shape_1"),
        node("ConstantOfShape", ["rgs"], ["zeros"], name="/ConstantOfShape",
             value=helper.make_tensor("v", TensorProto.INT64, [1], [1])),
        node("Concat", ["zeros", "zeros"], ["pads8"], name="/Concat_1", axis=0),
        node("Expand", ["pads8", "one"], ["pads"], name="/Expand"),
        node("Pad", ["up", "pads"], ["padded"], name="/Pad", mode="edge"),
        node("Shape", ["padded"], ["psh"], name="/Shape_2"),
        node("Gather", ["psh", "i0"], ["n"], name="/Gather_2", axis=0),
        node("Concat", ["n", "minus1"], ["view"], name="/Concat_2", axis=0),
        node("Reshape", ["padded", "view"], ["flat"], name="/Reshape"),
    ]
    out.append(model(shape_chain, inits, dims=[1, 2, 12, 10], graph_name="seed"))

    # 3. a model-local function (conv block) called twice, 1-D, opset 18 with Resize axes
    block = node("Conv", ["X", "W"], ["c"], kernel_shape=[3], pads=[1, 1])
    from onnx import AttributeProto
    block.attribute.append(AttributeProto(name="strides", ref_attr_name="s", type=AttributeProto.INTS))
    function = helper.make_function("local", "Block", ["X", "W"], ["Y"], [block, node("Relu", ["c"], ["Y"])],
                                    [helper.make_opsetid("", 18)], attributes=["s"])
    inits = [weight("w", [2, 2, 3]), floats("sc", [1.5]), ints("splits", [3, 5])]
    out.append(model([
        node("Block", ["x", "w"], ["b1"], name="block1", domain="local", s=[2]),
        node("Block", ["b1", "w"], ["b2"], name="block2", domain="local", s=[1]),
        node("Resize", ["b2", "", "sc"], ["u"], name="resize", mode="cubic", axes=[2],
             coordinate_transformation_mode="half_pixel_symmetric"),
        node("Split", ["u", "splits"], ["s1", "s2"], name="split", axis=2),
        node("Add", ["s1", "s1"], ["y"], name="add"),
    ], inits, dims=[1, 2, 16], opset=18, functions=[function], extra_opsets=[("local", 1)],
        graph_name="seed"))

    # 4. old opsets: Upsample-9, Pad-2 attributes, Slice-1 attributes, DepthToSpace, a 3-D pool
    inits = [floats("us", [1, 1, 2, 2]), weight("w", [8, 2, 1, 1])]
    out.append(model([
        node("Upsample", ["x", "us"], ["u"], name="upsample", mode="nearest"),
        node("Pad", ["u"], ["p"], name="pad", pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="constant"),
        node("Slice", ["p"], ["s"], name="slice", starts=[1, 1], ends=[-1, 100], axes=[2, 3]),
        node("Conv", ["s", "w"], ["c"], name="expand", kernel_shape=[1, 1]),
        node("DepthToSpace", ["c"], ["d"], name="d2s", blocksize=2),
        node("SpaceToDepth", ["d"], ["e"], name="s2d", blocksize=2),
        node("Unsqueeze", ["e"], ["e5"], name="unsq", axes=[2]),
        node("MaxPool", ["e5"], ["m5"], name="pool3d", kernel_shape=[1, 2, 2], strides=[1, 2, 2]),
        node("Squeeze", ["m5"], ["y"], name="sq", axes=[2]),
    ], inits, dims=[1, 2, 8, 8], opset=9, graph_name="seed"))
    return out


def seeds() -> list[bytes]:
    return [m.SerializeToString() for m in _models()]


# -- mutations ------------------------------------------------------------------------------------
def _value(rng: random.Random) -> int:
    return rng.choice(HUGE + SMALL) if rng.random() < 0.5 else rng.choice(SMALL)


def _mutate_attribute(node: Any, rng: random.Random) -> None:
    from onnx import AttributeProto, helper

    if not node.attribute or rng.random() < 0.25:  # a new attribute, or a required one removed
        if node.attribute and rng.random() < 0.5:
            del node.attribute[rng.randrange(len(node.attribute))]
            return
        name = rng.choice(ATTRIBUTES)
        kind = rng.randrange(4)
        value: Any = (_value(rng), [_value(rng) for _ in range(rng.randrange(6))], rng.choice(STRINGS),
                      rng.choice((0.5, 2.0, float("nan"), float("inf"), -1.0, 1e30, 0.0)))[kind]
        node.attribute.append(helper.make_attribute(name, value) if kind != 1 or value
                              else AttributeProto(name=name, type=AttributeProto.INTS))
        return
    attr = rng.choice(node.attribute)
    kind = rng.randrange(8)
    if kind == 0:  # wrong declared type
        attr.type = rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 99))
    elif kind == 1 and attr.ints:  # short or long list
        if rng.random() < 0.5:
            del attr.ints[rng.randrange(len(attr.ints)):]
        else:
            attr.ints.extend(_value(rng) for _ in range(rng.randrange(1, 4)))
    elif kind == 2 and attr.ints:
        attr.ints[rng.randrange(len(attr.ints))] = _value(rng)
    elif kind == 3:
        attr.i = _value(rng)
        if rng.random() < 0.5:
            attr.type = AttributeProto.INT
    elif kind == 4:
        attr.s = rng.choice(STRINGS)
        if rng.random() < 0.5:
            attr.type = AttributeProto.STRING
    elif kind == 5 and attr.floats:
        attr.floats[rng.randrange(len(attr.floats))] = rng.choice((0.0, -1.0, float("nan"), float("inf"),
                                                                   1e30))
    elif kind == 6 and attr.HasField("t"):
        _mutate_tensor(attr.t, rng)
    else:
        attr.name = rng.choice(ATTRIBUTES + ("\udc80" if False else "weird",))


def _mutate_tensor(tensor: Any, rng: random.Random) -> None:
    kind = rng.randrange(7)
    if kind == 0:
        tensor.data_type = rng.choice((0, 1, 6, 7, 8, 9, 11, 16, 17, 21, 23, 25, 40, 999))
    elif kind == 1 and tensor.dims:
        tensor.dims[rng.randrange(len(tensor.dims))] = rng.choice((0, -1, 10**6, 10**12, 2**62))
    elif kind == 2:
        tensor.dims.extend([rng.choice((1, 2, 10**6))] * rng.randrange(1, 4))
    elif kind == 3:  # data removed, dims kept: a declared size without data
        for field in ("raw_data", "float_data", "int64_data", "int32_data", "double_data"):
            tensor.ClearField(field)
    elif kind == 4:  # external data in a file that is not there (or is /dev/zero)
        tensor.data_location = 1
        del tensor.external_data[:]
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", rng.choice(("w.bin", "/dev/zero", "../../etc/passwd"))
    elif kind == 5 and tensor.raw_data:
        tensor.raw_data = tensor.raw_data[:rng.randrange(len(tensor.raw_data))]
    else:  # huge or odd values
        import numpy as np
        from onnx import numpy_helper

        values = [rng.choice(HUGE + SMALL) for _ in range(rng.choice((1, 2, 4, 8)))]
        if tensor.data_type == 1:
            new = numpy_helper.from_array(np.asarray(values, dtype=np.float64).astype(np.float32),
                                          tensor.name)
        else:
            new = numpy_helper.from_array(np.asarray([max(min(v, 2**63 - 1), -(2**63)) for v in values],
                                                     dtype=np.int64), tensor.name)
        tensor.CopyFrom(new)


def _mutate_edges(graph: Any, rng: random.Random) -> None:
    nodes = graph.node
    a = rng.choice(nodes)
    kind = rng.randrange(6)
    if kind == 0 and a.input:  # read its own output, or a later node's (a cycle)
        b = rng.choice(nodes)
        if b.output:
            a.input[rng.randrange(len(a.input))] = rng.choice(list(b.output))
    elif kind == 1 and a.input:  # dangling or empty
        a.input[rng.randrange(len(a.input))] = rng.choice(("nowhere", "", "x", "x:0"))
    elif kind == 2 and a.input:
        del a.input[rng.randrange(len(a.input)):]
    elif kind == 3:
        a.input.append(rng.choice([o for n in nodes for o in n.output] + ["x", ""]))
    elif kind == 4 and a.output:  # an output written twice, or by nobody
        names = [o for n in nodes for o in n.output] + ["", "y:1"]
        a.output[rng.randrange(len(a.output))] = rng.choice(names)
    else:
        a.output.append(rng.choice(("extra", "x", "")))


def _mutate_input(graph: Any, rng: random.Random) -> None:
    info = graph.input[0] if graph.input else None
    if info is None:
        return
    dims = info.type.tensor_type.shape.dim
    kind = rng.randrange(5)
    if kind == 0 and dims:
        dims[rng.randrange(len(dims))].dim_value = rng.choice((0, 1, 10**6, 10**9, 10**12, 2**62, 2**63 - 1))
    elif kind == 1 and dims:
        dims[rng.randrange(len(dims))].dim_param = rng.choice(("N", "", "h", "\U0001f600"))
    elif kind == 2 and dims:
        del dims[rng.randrange(len(dims))]
    elif kind == 3:
        dims.add().dim_value = rng.choice((1, 3))
    else:
        info.type.tensor_type.elem_type = rng.choice((0, 7, 9, 16, 999))


def _add_growth(graph: Any, rng: random.Random) -> None:
    """A Range, ConstantOfShape, Expand or Tile of a huge size feeding a parameter."""
    from onnx import helper
    from onnx_graphs import ints

    n = rng.choice((10**6, 10**9, 10**12, 2**62))
    k = len(graph.node)
    big, zero, one = ints(f"big{k}", [n]), ints(f"zero{k}", [0]), ints(f"one{k}", [1])
    graph.initializer.extend([big, zero, one])
    op = rng.choice(("Range", "ConstantOfShape", "Expand", "Tile"))
    inputs = {"Range": [zero.name, big.name, one.name], "ConstantOfShape": [big.name],
              "Expand": [one.name, big.name], "Tile": [one.name, big.name]}[op]
    grown = helper.make_node(op, inputs, [f"grown{k}"], name=f"grown{k}")
    users = [node for node in graph.node if len(node.input) > 1]
    if users:
        user = rng.choice(users)
        user.input[rng.randrange(1, len(user.input))] = grown.output[0]
    graph.node.insert(0, grown)


def _add_chain(graph: Any, rng: random.Random) -> None:
    """A long chain of one op (deep folding, rank or size doubling) whose end replaces an input of
    some node: Identity x 5000, Gather(t, t) x 40, Concat(t, t) x 40, Unsqueeze x 200..."""
    from onnx import helper

    start = rng.choice([o for n in graph.node for o in n.output if o] + ["x"])
    op, count = rng.choice((("Identity", 5000), ("Gather", 40), ("Concat", 40), ("Unsqueeze", 200),
                            ("Add", 3000), ("Shape", 3), ("Reshape", 40), ("Expand", 40)))
    k, prev = len(graph.node), start
    nodes = []
    for i in range(count):
        out = f"chain{k}_{i}"
        if op in ("Identity", "Shape"):
            nodes.append(helper.make_node(op, [prev], [out]))
        elif op == "Unsqueeze":
            nodes.append(helper.make_node(op, [prev], [out], axes=[0]))
        elif op == "Concat":
            nodes.append(helper.make_node(op, [prev, prev], [out], axis=0))
        elif op in ("Reshape", "Expand"):  # the shape is the concatenated shape twice: rank doubling
            shape, both = f"chain{k}_{i}_s", f"chain{k}_{i}_ss"
            nodes += [helper.make_node("Shape", [prev], [shape]),
                      helper.make_node("Concat", [shape, shape], [both], axis=0),
                      helper.make_node(op, [prev, both], [out])]
        else:
            nodes.append(helper.make_node(op, [prev, prev], [out]))
        prev = out
    users = [node for node in graph.node if node.input]
    graph.node.extend(nodes)
    if users and rng.random() < 0.7:
        user = rng.choice(users)
        user.input[rng.randrange(len(user.input))] = prev
    else:
        graph.output[0].name = prev


def _mutate_model(model: Any, rng: random.Random) -> None:
    graph = model.graph
    kind = rng.randrange(14)
    if kind in (0, 1, 2) and graph.node:
        _mutate_attribute(rng.choice(graph.node), rng)
    elif kind == 3 and graph.node:
        _mutate_edges(graph, rng)
    elif kind == 4 and graph.node:
        node = rng.choice(graph.node)
        change = rng.randrange(4)
        if change == 0:
            node.op_type = rng.choice(OPS + ("", "Conv\nReLU", "x" * 5000))
        elif change == 1:
            node.domain = rng.choice(("", "ai.onnx", "local", "com.microsoft", "ai.onnx.ml"))
        elif change == 2:
            node.name = rng.choice(("", "x", "conv1", "a:0", "a:b:1", "a\nb", "x" * 5000, graph.node[0].name))
        else:
            node.name = "QQQQ"  # replaced by bytes that are not UTF-8 after serialising
    elif kind == 5:
        if model.opset_import and rng.random() < 0.8:
            model.opset_import[0].version = rng.choice((0, 1, 6, 7, 9, 10, 11, 13, 18, 19, 28, 29, 10**9))
        else:
            model.ir_version = rng.choice((0, 1, 3, 7, 10, 99))
    elif kind in (6, 7) and graph.initializer:
        _mutate_tensor(rng.choice(graph.initializer), rng)
    elif kind == 8:
        _mutate_input(graph, rng)
    elif kind == 9 and graph.node:
        _add_growth(graph, rng)
    elif kind == 10 and model.functions:
        function = rng.choice(model.functions)
        if function.node and rng.random() < 0.5:  # a function that calls itself
            function.node[0].op_type, function.node[0].domain = function.name, function.domain
        elif function.node:
            _mutate_attribute(rng.choice(function.node), rng)
    elif kind == 11 and graph.node:  # a Constant node of a huge declared tensor
        from onnx import TensorProto, helper

        target = rng.choice(graph.node)
        if len(target.input) > 1:
            tensor = TensorProto(name="c", data_type=TensorProto.INT64, dims=[rng.choice((10**6, 10**12, 4))])
            graph.node.insert(0, helper.make_node("Constant", [], ["const_in"], value=tensor))
            target.input[rng.randrange(1, len(target.input))] = "const_in"
    elif kind == 12 and graph.node:
        _add_chain(graph, rng)
    elif kind == 13 and graph.node:  # duplicate a node: an output produced twice
        node = rng.choice(graph.node)
        graph.node.insert(rng.randrange(len(graph.node) + 1), node)


def mutate(data: bytes, rng: random.Random) -> bytes:
    import onnx

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception:  # noqa: BLE001 - not a model any more: the harness mutates bytes
        return data
    try:
        _mutate_model(model, rng)
        out = model.SerializeToString()
    except Exception:  # noqa: BLE001 - a mutation that does not apply to this model
        return data
    return out.replace(b"QQQQ", b"\xff\xfe\xfd\xfc")
