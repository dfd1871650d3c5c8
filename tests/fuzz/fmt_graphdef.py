"""TensorFlow GraphDefs (binary `.pb`): seeds are small graphs built with foveal's own schema
classes (tests/graphdefs.py; one of every op the converter reads) and the TF-slim AlexNet and VGG-A
fixtures;
mutations change the parsed message (attribute values and kinds, inputs, ops, constants, the
placeholder's shape, nodes) and serialise it again. fmt_pbtxt.py gives the same in text form.
"""

from __future__ import annotations

import random
from typing import Any

from graphdefs import FLOAT, INT64, SLIM, const, new_graph, new_node, placeholder, slim_graph

SUFFIX = ".pb"
REQUIRES = ("google.protobuf",)
API_KWARGS = {"input_shape": 64}
CLI_ARGS = ["--input-size", "64", "--format", "json", "--verdicts"]

INTS = (0, 1, 2, 3, -1, -2, 7, 64, 1 << 31, (1 << 31) - 1, 1 << 40, 10**12, 1 << 62, (1 << 63) - 1,
        -(1 << 63))
INT32S = (*INTS[:8], (1 << 31) - 1, -(1 << 31))
STRINGS = (b"SAME", b"VALID", b"EXPLICIT", b"NHWC", b"NCHW", b"NDHWC", b"NCDHW", b"REFLECT", b"SYMMETRIC",
           b"", b"\xff", b"\x00", b"N\xffHW", "\u00e9".encode(), b"\xed\xa0\x80", b"same")
OPS = ("Conv2D", "Conv3D", "DepthwiseConv2dNative", "Conv2DBackpropInput", "Conv3DBackpropInputV2", "MaxPool",
       "AvgPool", "MaxPool3D", "MaxPoolV2", "AvgPoolV2", "Pad", "PadV2", "MirrorPad", "DepthToSpace",
       "SpaceToDepth", "ResizeBilinear", "ResizeNearestNeighbor", "ResizeBicubic", "Slice", "StridedSlice",
       "Identity", "IdentityN", "ExpandDims", "Squeeze", "Switch", "Merge", "AddV2", "AddN", "ConcatV2",
       "Mean", "Max", "MatMul", "Reshape", "SpaceToBatchND", "BatchToSpaceND", "Fill", "Const", "Placeholder",
       "Shape", "Relu", "ReadVariableOp", "VariableV2", "Mystery")
ATTRS = ("strides", "ksize", "dilations", "padding", "explicit_paddings", "data_format", "squeeze_dims",
         "block_size", "align_corners", "half_pixel_centers", "begin_mask", "end_mask", "ellipsis_mask",
         "new_axis_mask", "shrink_axis_mask", "mode", "shape", "_output_shapes", "value", "dtype", "T")
KINDS = ("i", "s", "b", "f", "type", "shape", "tensor", "list_i", "list_s", "list_shape", "empty")


# -- seeds ------------------------------------------------------------------------------------------
def _basic() -> Any:
    """conv SAME / pad / pool VALID / bilinear resize / mean, NHWC."""
    g = new_graph()
    placeholder(g, "image", (1, -1, -1, 3))
    const(g, "w", [3, 3, 3, 8], dtype=FLOAT)
    new_node(g, "w/read", "Identity", "w")
    new_node(g, "conv", "Conv2D", "image", "w/read", strides=[1, 2, 2, 1], dilations=[1, 1, 1, 1],
          padding=b"SAME", data_format=b"NHWC")
    const(g, "paddings", [4, 2], [0, 0, 1, 1, 1, 1, 0, 0])
    new_node(g, "pad", "Pad", "conv", "paddings")
    new_node(g, "pool", "MaxPool", "pad", ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding=b"VALID")
    const(g, "size", [2], [32, 32])
    new_node(g, "up", "ResizeBilinear", "pool", "size", align_corners=False, half_pixel_centers=True)
    const(g, "axes", [2], [1, 2])
    new_node(g, "out", "Mean", "up", "axes")
    return g


def _branches() -> Any:
    """depthwise, dilated and explicit-padding convs, a concat, an identity chain, a Switch/Merge
    pair, an atrous conv (SpaceToBatchND / BatchToSpaceND), a flatten and a dense head."""
    g = new_graph()
    placeholder(g, "image", (1, 32, 32, 4))
    const(g, "dw", [5, 5, 4, 1], dtype=FLOAT)
    new_node(g, "depthwise", "DepthwiseConv2dNative", "image", "dw", strides=[1, 1, 1, 1], padding=b"SAME",
          dilations=[1, 2, 2, 1])
    const(g, "k", [2, 2, 4, 4], dtype=FLOAT)
    new_node(g, "k/a", "Identity", "k")
    new_node(g, "k/b", "Identity", "k/a")
    new_node(g, "k/c", "Cast", "k/b")
    new_node(g, "explicit", "Conv2D", "image", "k/c", strides=[1, 1, 1, 1], padding=b"EXPLICIT",
          explicit_paddings=[0, 0, 1, 0, 0, 1, 0, 0])
    const(g, "axis", [], [3])
    new_node(g, "cat", "ConcatV2", "depthwise", "explicit", "axis")
    new_node(g, "relu", "Relu", "cat", "^image")
    new_node(g, "switch", "Switch", "relu", "image")
    new_node(g, "merge", "Merge", "switch", "switch:1")
    const(g, "block", [2], [2, 2])
    const(g, "s2b_pads", [2, 2], [0, 0, 0, 0])
    new_node(g, "s2b", "SpaceToBatchND", "merge", "block", "s2b_pads")
    new_node(g, "atrous", "Conv2D", "s2b", "k", strides=[1, 1, 1, 1], padding=b"VALID")
    const(g, "crops", [2, 2], [0, 1, 0, 1])
    new_node(g, "b2s", "BatchToSpaceND", "atrous", "block", "crops")
    const(g, "shape", [2], [1, -1])
    new_node(g, "flat", "Reshape", "b2s", "shape")
    const(g, "dense_w", [4, 10], dtype=FLOAT)
    new_node(g, "logits", "MatMul", "flat", "dense_w")
    return g


def _conv1d() -> Any:
    """Conv1D as TensorFlow writes it: ExpandDims + Conv2D + Squeeze on a rank-3 input."""
    g = new_graph()
    placeholder(g, "wave", (1, 100, 2))
    const(g, "w1", [7, 2, 8], dtype=FLOAT)
    const(g, "zero", [], [0])
    const(g, "one", [], [1])
    new_node(g, "wave/x", "ExpandDims", "wave", "one")
    new_node(g, "w1/x", "ExpandDims", "w1", "zero")
    new_node(g, "conv1d", "Conv2D", "wave/x", "w1/x", strides=[1, 1, 3, 1], padding=b"VALID")
    new_node(g, "conv1d/sq", "Squeeze", "conv1d", squeeze_dims=[1])
    new_node(g, "pool", "MaxPool", "conv1d/sq", ksize=[1, 2, 1], strides=[1, 2, 1], padding=b"SAME")
    return g


def _reshuffles() -> Any:
    """transposed conv, depth-to-space, slices, mirror pad, V2 pools, nearest resize, NCHW data."""
    g = new_graph()
    placeholder(g, "image", (1, 16, 16, 8))
    const(g, "out_size", [4], [1, 32, 32, 4])
    const(g, "tw", [4, 4, 4, 8], dtype=FLOAT)
    new_node(g, "deconv", "Conv2DBackpropInput", "out_size", "tw", "image", strides=[1, 2, 2, 1],
          padding=b"SAME")
    new_node(g, "d2s", "DepthToSpace", "deconv", block_size=2)
    new_node(g, "s2d", "SpaceToDepth", "d2s", block_size=2)
    const(g, "begin", [4], [0, 1, 2, 0])
    const(g, "end", [4], [0, -1, (1 << 31) - 1, 0], dtype=INT64)
    const(g, "steps", [4], [1, 1, 2, 1])
    new_node(g, "slice", "StridedSlice", "s2d", "begin", "end", "steps", begin_mask=9, end_mask=9)
    const(g, "sbegin", [4], [0, 1, 1, 0])
    const(g, "ssize", [4], [-1, 8, -1, -1])
    new_node(g, "slice2", "Slice", "slice", "sbegin", "ssize")
    const(g, "mpads", [4, 2], [0, 0, 2, 2, 1, 1, 0, 0])
    new_node(g, "mirror", "MirrorPad", "slice2", "mpads", mode=b"REFLECT")
    const(g, "ksize", [4], [1, 2, 2, 1])
    new_node(g, "pool2", "AvgPoolV2", "mirror", "ksize", "ksize", padding=b"SAME")
    const(g, "nsize", [2], [20, 20])
    new_node(g, "nearest", "ResizeNearestNeighbor", "pool2", "nsize", align_corners=True)
    const(g, "fdims", [4], [3, 3, 16, 4])
    const(g, "fval", [], [1])
    new_node(g, "ones", "Fill", "fdims", "fval")
    new_node(g, "last", "Conv2D", "nearest", "ones", strides=[1, 1, 1, 1], padding=b"VALID")
    return g


def _channels_first() -> Any:
    g = new_graph()
    placeholder(g, "image", (1, 3, 40, 40))
    const(g, "w", [3, 3, 3, 8], dtype=FLOAT)
    new_node(g, "conv", "Conv2D", "image", "w", strides=[1, 1, 2, 2], padding=b"SAME", data_format=b"NCHW")
    new_node(g, "pool", "MaxPool", "conv", ksize=[1, 1, 2, 2], strides=[1, 1, 2, 2], padding=b"VALID",
          data_format=b"NCHW")
    new_node(g, "bias", "BiasAdd", "pool", "w", data_format=b"NCHW")
    const(g, "axes", [2], [2, 3])
    new_node(g, "gap", "Mean", "bias", "axes")
    return g


def graphs() -> list[Any]:
    out = [_basic(), _branches(), _reshuffles(), _channels_first(), _conv1d()]
    for name in ("alexnet_v2", "vgg_a"):
        if (SLIM / f"{name}.pb.gz").is_file():
            out.append(slim_graph(name))
    return out


def seeds() -> list[bytes]:
    return [g.SerializeToString(deterministic=True) for g in graphs()]


# -- mutations ----------------------------------------------------------------------------------------
def parse(data: bytes) -> Any | None:
    from google.protobuf.message import DecodeError

    g = new_graph()
    try:
        g.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        return None
    return g if len(g.node) else None


def _set_kind(value: Any, kind: str, rng: random.Random) -> None:
    """Give an AttrValue a value of `kind` (perhaps not the one its key expects)."""
    value.Clear()
    if kind == "i":
        value.i = rng.choice(INTS)
    elif kind == "s":
        value.s = rng.choice(STRINGS)
    elif kind == "b":
        value.b = rng.random() < 0.5
    elif kind == "f":
        value.f = rng.choice((0.0, -1.5, 2.5, float("inf"), float("nan")))
    elif kind == "type":
        value.type = rng.choice((0, 1, 3, 7, 9, 101, 25))
    elif kind == "shape":
        for _ in range(rng.choice((0, 1, 3, 4, 5, 40))):
            value.shape.dim.add(size=rng.choice(INTS))
        value.shape.unknown_rank = rng.random() < 0.2
    elif kind == "tensor":
        _mutate_tensor(value.tensor, rng)
    elif kind == "list_i":
        value.list.i.extend(rng.choice(INTS) for _ in range(rng.choice((0, 1, 2, 3, 4, 5, 8, 100))))
    elif kind == "list_s":
        value.list.s.extend(rng.choice(STRINGS) for _ in range(rng.choice((0, 1, 4))))
    elif kind == "list_shape":
        for _ in range(rng.choice((0, 1, 2))):
            value.list.shape.add().dim.add(size=rng.choice(INTS))
    # "empty": an AttrValue with nothing set


def _mutate_tensor(tensor: Any, rng: random.Random) -> None:
    kind = rng.randrange(6)
    if kind == 0:  # huge, negative or many dims
        del tensor.tensor_shape.dim[:]
        for _ in range(rng.choice((0, 1, 2, 4, 300))):
            tensor.tensor_shape.dim.add(size=rng.choice((1, 2, 4, -1, -5, 0, 10**6, 10**12, 1 << 62)))
    elif kind == 1:
        tensor.dtype = rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 9, 17, 22, 23, 103, 109, 99, 25))
    elif kind == 2:  # values that do not fit the shape
        del tensor.int_val[:]
        tensor.int_val.extend(rng.choice(INT32S) for _ in range(rng.choice((0, 1, 3, 8, 9, 2000))))
    elif kind == 3 and len(tensor.int_val):  # one value out of range (a pad, an axis, a size)
        tensor.int_val[rng.randrange(len(tensor.int_val))] = rng.choice(INT32S)
    elif kind == 3:
        tensor.int64_val.extend(rng.choice(INTS) for _ in range(rng.choice((1, 2, 8))))
    elif kind == 4:
        tensor.tensor_content = bytes(rng.randrange(256) for _ in range(rng.choice((0, 3, 4, 8, 16, 32, 33))))
    else:
        tensor.Clear()


def _ref(g: Any, node: Any, rng: random.Random) -> str:
    other = rng.choice(g.node).name
    return rng.choice((node.name, other, f"{other}:1", f"^{other}", "nowhere", f"{other}:{'9' * 5000}",
                       f"{other}:x", ":", "", "^", f"{node.name}:0"))


def mutate(data: bytes, rng: random.Random) -> bytes:
    g = parse(data)
    if g is None:
        return data
    node = rng.choice(g.node)
    kind = rng.randrange(11)
    if kind <= 1 and node.attr:  # an attribute value: a new value of its own kind or another
        key = rng.choice(sorted(node.attr))
        value = node.attr[key]
        own = value.WhichOneof("value")
        if kind == 0 and own == "list" and len(value.list.i):
            ints = value.list.i
            how = rng.randrange(3)
            if how == 0:
                ints[rng.randrange(len(ints))] = rng.choice(INTS)
            elif how == 1:
                del ints[rng.randrange(len(ints)):]
            else:
                ints.append(rng.choice(INTS))
        elif kind == 0 and own == "s":
            value.s = rng.choice(STRINGS)
        elif kind == 0 and own == "tensor":
            _mutate_tensor(value.tensor, rng)
        elif kind == 0 and own == "shape":
            _set_kind(value, "shape", rng)
        else:
            _set_kind(value, rng.choice(KINDS), rng)
    elif kind == 2:  # a new attribute of a name the converter reads
        _set_kind(node.attr[rng.choice(ATTRS)], rng.choice(KINDS), rng)
    elif kind == 3 and node.attr:
        del node.attr[rng.choice(sorted(node.attr))]
    elif kind == 4:  # an input: itself, a cycle, a dangling name, a slot, a control edge
        ref = _ref(g, node, rng)
        if node.input and rng.random() < 0.7:
            node.input[rng.randrange(len(node.input))] = ref
        else:
            node.input.append(ref)
    elif kind == 5 and node.input:
        del node.input[rng.randrange(len(node.input))]
    elif kind == 6:
        node.op = rng.choice(OPS)
    elif kind == 7:  # a constant's tensor
        consts = [n for n in g.node if n.op == "Const"] or [node]
        _mutate_tensor(rng.choice(consts).attr["value"].tensor, rng)
    elif kind == 8:  # the placeholder's shape
        holders = [n for n in g.node if n.op == "Placeholder"] or [node]
        _set_kind(rng.choice(holders).attr["shape"], "shape", rng)
    elif kind == 9:  # duplicate a node (same name or a chain of copies) or delete one
        how = rng.randrange(3)
        if how == 0:
            g.node.add().CopyFrom(node)
        elif how == 1:
            prev = node.name
            for k in range(rng.choice((5, 50, 500))):
                clone = g.node.add()
                clone.CopyFrom(node)
                clone.name = f"{node.name}_{k}"
                if clone.input:
                    clone.input[0] = prev
                prev = clone.name
        else:
            del g.node[rng.randrange(len(g.node))]
    else:  # a name: empty, with a slot, a control prefix, a line break, another node's
        node.name = rng.choice(("", f"{node.name}:0", f"^{node.name}", f"{node.name}\nx",
                                rng.choice(g.node).name, "\u2028", node.name + "/x"))
    return g.SerializeToString(deterministic=True)
