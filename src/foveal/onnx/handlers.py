"""The ONNX op table: which handler turns a node of each op type into a foveal op.

One table, `OPS` (a foveal.handler_table.HandlerTable), looked up by `key_of(node)`: the op type
for ONNX's own domains ("" and "ai.onnx": "Conv") and "domain::OpType" for any other
("com.microsoft::FusedConv"). A handler takes the Context (the node being converted and the
tensors around it) and the NodeProto, and returns (op, layout): a foveal op (a list, one per
output, for a Split along an axis) and the output's layout (a list, one per output), or None
where the output keeps its input's layout; or (chain, None) where one op is not enough
(`context.Chain`: several foveal nodes, as `foveal.mixing` gives them for an op over pieces of a
window partition or a product of two spatial tensors; a list of chains for a Split of tokens).
The op families below (UNARY, MERGING, ...) say what their ops share; each family feeds the
table with one handler. A call's handlers= become the table's extras (`with_handlers`); an op
type the table does not hold is an unsupported op.

Adding an op: one entry in `OPS` (or its name in a family) and one test in tests/test_onnx_ops.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .. import mixing
from .. import ops as O
from ..errors import FovealError, InvalidParameterError
from ..handler_table import HandlerTable
from ..layout import Layout, LayoutError, broadcast
from ..limits import LimitError
from . import reshaping as shaping
from .context import Context, product_chain
from .fields import MAX_RANK
from .load import DEFAULT_DOMAINS
from .resize import resize_op
from .windows import GLOBAL_POOLS, WINDOW_KINDS, global_pool, transposed, window

Result = tuple[Any, Any]
"""(op or list of ops, layout or list of layouts or None): see the module docstring."""
Handler = Callable[[Context, Any], Result]

UNARY = frozenset([
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "ThresholdedRelu", "Sigmoid", "HardSigmoid",
    "HardSwish", "Mish", "Gelu", "Swish", "Softplus", "Softsign", "Tanh", "Erf", "Exp", "Log", "Sqrt",
    "Abs", "Neg", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Tan", "Asin", "Acos",
    "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Not", "IsNaN", "IsInf", "BitwiseNot", "Shrink",
    "Clip", "Cast", "CastLike", "Identity", "Dropout", "BatchNormalization", "LRN", "QuantizeLinear",
    "DequantizeLinear", "DynamicQuantizeLinear", "Binarizer", "Scaler"
])
"""One spatial input, every output position reads the same position (constant inputs such as
PRelu's slope or Clip's bounds aside)."""
MERGING = frozenset([
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mean", "Sum", "Where", "Equal", "Greater",
    "GreaterOrEqual", "Less", "LessOrEqual", "And", "Or", "Xor", "Mod", "BitShift", "BitwiseAnd",
    "BitwiseOr", "BitwiseXor"
])
"""Element-wise over broadcast inputs: a merge when several are spatial."""
REDUCE = frozenset([
    "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"
])
AXES_BECAME_INPUT = {"ReduceSum": 13}
"""Reductions take `axes` as an input from opset 18 (ReduceSum from 13)."""
DATA_DEPENDENT = frozenset(["GridSample", "RoiAlign", "MaxRoiPool", "DeformConv", "AffineGrid"])
CONTROL_FLOW = frozenset(["If", "Loop", "Scan"])
NORMALISATIONS = ("InstanceNormalization", "GroupNormalization")
SOFTMAX_LIKE = ("Softmax", "LogSoftmax", "Hardmax", "LpNormalization")


def key_of(node: Any) -> str:
    """The node's key in the op table: its op type, prefixed by 'domain::' outside ONNX's own."""
    if node.domain in DEFAULT_DOMAINS:
        return str(node.op_type)
    return f"{node.domain}::{node.op_type}"


def keeps_layout(make: Callable[[Context, Any], O.Op]) -> Handler:
    """A handler whose op's output keeps its input's layout."""
    def handle(c: Context, node: Any) -> Result:
        return make(c, node), None
    return handle


def unary(c: Context, node: Any) -> Result:
    if c.x in c.shapes:
        c.shapes.setdefault(node.output[0], c.shapes[c.x])
    return O.elementwise(node.op_type.lower()), None


def control_flow(c: Context, node: Any) -> Result:
    return O.unknown(f"{node.op_type} (control flow: subgraphs are not followed)"), None


def data_dependent(c: Context, node: Any) -> Result:
    return O.unknown(node.op_type, data_dependent=True), None


def resize(c: Context, node: Any) -> Result:
    return resize_op(c, node), None


def reduction(c: Context, node: Any) -> Result:
    f, rank = c.f, c.rank
    if c.opset >= AXES_BECAME_INPUT.get(node.op_type, 18):
        axes = c.consts.ints(c.f.input(1)) if c.f.input(1) else []
        if axes is None:
            return O.unknown(f"{node.op_type} (axes not constant)"), None
    else:
        axes = f.integers("axes", [])
    keep = f.integer("keepdims", 1, choices=(0, 1))
    if not axes:
        axes = [] if f.integer("noop_with_empty_axes", 0, choices=(0, 1)) else list(range(rank))
    return reduced(c, node, sorted(f.axes(axes, rank)), bool(keep))


def reduced(c: Context, node: Any, dims: list[int], keep: bool) -> Result:
    """A reduction over `dims` (`foveal.mixing`): the axes they hold whole become global, a
    block or residue class of an axis split into blocks is read by a window."""
    layout = c.layout if keep else tuple(e for d, e in enumerate(c.layout) if d not in dims)
    return c.mixed(dims, node.op_type.lower(), False, layout), None


def arg_reduce(c: Context, node: Any) -> Result:
    f = c.f
    axis = f.axis(f.integer("axis", 0), c.rank)
    return reduced(c, node, [axis], bool(f.integer("keepdims", 1, choices=(0, 1))))


def normalisation(c: Context, dims: list[int], kind: str) -> Result:
    """Statistics over `dims`: every output reads those axes whole, or its block of them (the size
    is kept)."""
    return c.mixed(dims, kind, True, c.layout), None


def instance_norm(c: Context, node: Any) -> Result:
    return normalisation(c, list(range(2, c.rank)), node.op_type.lower())


def layer_norm(c: Context, node: Any) -> Result:
    axis = c.f.axis(c.f.integer("axis", -1), c.rank)
    return normalisation(c, list(range(axis, c.rank)), "layer_norm")


def mvn(c: Context, node: Any) -> Result:
    rank = c.rank
    axes = c.f.integers("axes", [d for d in (0, 2, 3) if d < rank])
    return normalisation(c, c.f.axes(axes, rank), "mean_variance_norm")


def softmax(c: Context, node: Any) -> Result:
    """Softmax-like ops: over one axis from opset 13, over every axis from `axis` before."""
    rank = c.rank
    if node.op_type == "LpNormalization" or c.opset >= 13:
        dims = [c.f.axis(c.f.integer("axis", -1), rank)]
    else:
        dims = list(range(c.f.axis(c.f.integer("axis", 1), rank), rank))
    return normalisation(c, dims, node.op_type.lower())


def cumsum(c: Context, node: Any) -> Result:
    c.f.require_inputs(2)
    axis = c.consts.ints(c.f.input(1))
    if axis is None:
        return O.unknown("CumSum (axis not constant)"), None
    if len(axis) != 1:
        raise c.f.fail("input 'axis'", f"has {len(axis)} entries; one expected")
    mask = c.axes_mask([c.f.axis(axis[0], c.rank)])
    if not any(mask):
        return O.elementwise("cumsum"), None
    return O.Global("cumsum", mask, True, "a cumulative sum reads a prefix of the axis, not all "
                    "of it"), None


def merging(c: Context, node: Any) -> Result:
    layout = broadcast_layout(c, node, c.spatial)
    return (O.add() if len(c.spatial) > 1 else O.elementwise(node.op_type.lower())), layout


def broadcast_layout(c: Context, node: Any, spatial: list[str]) -> Layout:
    """The layout of an element-wise op's output: its spatial inputs' layouts, broadcast."""
    out = c.shapes.get(node.output[0])
    ranks = [len(c.layouts[s]) for s in spatial]
    for name in node.input:
        dims = c.dims(name) if name and name not in c.refs else None
        if dims is not None:
            ranks.append(len(dims))
    rank = len(out) if out is not None else max(ranks)
    return broadcast([(c.layouts[s], ()) for s in spatial], rank)


def expand(c: Context, node: Any) -> Result:
    c.f.require_inputs(2)
    shape = c.consts.ints(c.f.input(1))
    if shape is None:
        return O.unknown("Expand (shape not constant)"), None
    if len(shape) > MAX_RANK:
        raise LimitError(f"{c.f.where}: input 'shape' has {len(shape)} entries, beyond foveal's limit "
                         f"of {MAX_RANK} dimensions")
    layout = broadcast([(c.layout, ())], max(len(shape), c.rank))
    targets = ([1] * c.rank + list(shape))[-c.rank:]  # aligned from the right with the input's dims
    dims = c.int_dims(c.x)
    # a spatial dim of length 1 broadcast to n: that axis upsampled from 1 (a statistic kept with
    # keepdims, read back at every position)
    sizes: list[int | None] = [None] * c.n_axes
    for d, (entry, target) in enumerate(zip(c.layout, targets)):
        if entry is None or target == 1:
            continue
        if dims is None:
            return O.unknown(f"Expand (of a spatial dim at an unknown size: {c.no_size()})"), None
        if dims[d] != 1:
            continue
        if not isinstance(entry, int):
            raise LayoutError("an Expand of a length-1 dim of flattened or partitioned spatial axes")
        sizes[entry] = target
    if all(n is None for n in sizes):
        return O.elementwise("expand"), layout
    return O.upsample([1 if n is None else None for n in sizes], sizes), layout


def tile(c: Context, node: Any) -> Result:
    c.f.require_inputs(2)
    repeats = c.consts.ints(c.f.input(1))
    if repeats is None:
        return O.unknown("Tile (repeats not constant)"), None
    if len(repeats) != c.rank:
        raise c.f.fail("input 'repeats'", f"has {len(repeats)} entries; the input has rank "
                          f"{c.rank}")
    if any(r != 1 for d, r in enumerate(repeats) if c.layout[d] is not None):
        return O.unknown("Tile (along a spatial axis)"), None
    return O.elementwise("tile"), None


def gemm(c: Context, node: Any) -> Result:
    """Gemm contracts A's dim 1 (0 when transposed), as a linear layer; only A may be spatial."""
    c.f.require_inputs(2)
    if node.input[0] != c.x:
        return O.unknown("Gemm (a spatial B or C operand)"), None
    if c.rank != 2:
        raise c.f.fail("input 'A'", f"has rank {c.rank}; Gemm takes matrices")
    contracted = 0 if c.f.integer("transA", 0, choices=(0, 1)) else 1
    return c.mixed([contracted], "dense", False, (c.layout[1 - contracted], None)), None


def matmul(c: Context, node: Any) -> Result:
    """x @ W (a constant W): a linear layer over x's last dim, whose axes become global (their
    output length 1). Two spatial operands, or W @ x: `foveal.mixing.matmul` (attention scores
    written by hand have a key dim; keys on another grid are one global position)."""
    c.f.require_inputs(2)
    a, b = node.input[0], node.input[1]
    if b not in c.refs:
        weight = c.dims(b)
        if c.rank < 2 or weight is None:
            return O.unknown("MatMul (a vector operand, or a weight of unknown rank)"), None
        layout = c.layout[:-1] + (None,) * (len(weight) > 1)
        return c.mixed([c.rank - 1], "matmul", False, layout), None
    x, y = c.operand(a), c.operand(b)
    if x is None or y is None or not x.rank or not y.rank:
        return O.unknown("MatMul (an operand of unknown rank)"), None
    out = c.shapes.get(node.output[0])
    rank = len(out) if out is not None else max(x.rank, y.rank) - (min(x.rank, y.rank) == 1)
    return product_chain((a, b), mixing.matmul(x, y, rank, c.n_axes)), None


def _families(*tables: Mapping[str, Handler]) -> dict[str, Handler]:
    """The tables as one; an op in two of them is a mistake in this module."""
    out: dict[str, Handler] = {}
    for table in tables:
        twice = out.keys() & table.keys()
        assert not twice, f"ops in two families: {sorted(twice)}"
        out.update(table)
    return out


OPS: HandlerTable[Handler] = HandlerTable(_families(
    dict.fromkeys(UNARY, unary),
    dict.fromkeys(MERGING, merging),
    dict.fromkeys(REDUCE, reduction),
    dict.fromkeys(CONTROL_FLOW, control_flow),
    dict.fromkeys(DATA_DEPENDENT, data_dependent),
    dict.fromkeys(WINDOW_KINDS, keeps_layout(window)),
    dict.fromkeys(GLOBAL_POOLS, global_pool),
    dict.fromkeys(NORMALISATIONS, instance_norm),
    dict.fromkeys(SOFTMAX_LIKE, softmax),
    {
        "ConvTranspose": keeps_layout(transposed),
        "ArgMax": arg_reduce, "ArgMin": arg_reduce,
        "LayerNormalization": layer_norm, "MeanVarianceNormalization": mvn, "CumSum": cumsum,
        "Expand": expand, "Tile": tile, "Gemm": gemm, "MatMul": matmul, "MatMulInteger": matmul,
        "Transpose": shaping.transpose, "Reshape": shaping.reshape_op, "Flatten": shaping.flatten,
        "Squeeze": shaping.squeeze, "Unsqueeze": shaping.unsqueeze, "Gather": shaping.gather,
        "Pad": shaping.pad, "Slice": shaping.slice_op, "Split": shaping.split_op, "Concat": shaping.concat,
        "DepthToSpace": shaping.space_depth, "SpaceToDepth": shaping.space_depth,
        "Resize": resize, "Upsample": resize,
    },
))
"""Every op foveal follows, by `key_of`; read-only (a call's handlers= are its extras)."""


def with_handlers(handlers: Mapping[Any, Any] | None) -> HandlerTable[Handler]:
    """`OPS` with a call's handlers= as extras. A key is an op type ('Blur'; 'ai.onnx::Blur' is
    the same) or 'domain::OpType'; a value is a foveal op or a callable(NodeProto) returning one."""
    if not handlers:
        return OPS
    extras: dict[str, Handler] = {}
    for key, value in handlers.items():
        if not isinstance(key, str) or not key or key.startswith("::") or key.endswith("::"):
            raise InvalidParameterError(f"handlers= keys for an ONNX model are op types ('Conv', or "
                                        f"'domain::OpType' for a custom domain), got {key!r}")
        domain, _, op_type = key.rpartition("::")
        extras[op_type if domain in DEFAULT_DOMAINS else key] = user_handler(key, value)
    return OPS.with_extras(extras)


def user_handler(key: str, value: Any) -> Handler:
    """A handlers= entry as a handler: its op reads the node's spatial inputs position-wise, and
    the output keeps their layout."""
    if isinstance(value, O.OP_TYPES):
        return lambda c, node: (value, None)
    if not callable(value):
        raise InvalidParameterError(f"handlers[{key!r}] must be a foveal op (e.g. foveal.conv(3)) or a "
                                    f"callable taking the ONNX NodeProto and returning one, got "
                                    f"{type(value).__name__}")

    def handle(c: Context, node: Any) -> Result:
        op = value(node)
        if not isinstance(op, O.OP_TYPES):
            raise FovealError(f"{c.f.where}: handlers[{key!r}] returned a {type(op).__name__}, not a "
                              f"foveal op")
        return op, None
    return handle
