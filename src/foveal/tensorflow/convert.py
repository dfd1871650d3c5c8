"""A GraphDef as a foveal Graph.

A node is spatial when one of the chosen input nodes reaches it through data edges (`^name` control
inputs never count). Everything else (weights, constants, shape arithmetic) stays out of the
graph; its values are read where an op needs them (kernel shapes from the weight's shape, pad
amounts, reduction axes) by following edges to a Const, never by name. Layouts: NHWC unless the
ops say NCHW (`data_format`); 5-D tensors are NDHWC / NCDHW.

Each op is read by its entry in `TABLE`, keyed by the NodeDef's op name (the caller's
`handlers=` first); an op without one becomes an unknown op, counted by name in `unhandled`.

Every field is read through `fields` (the validation layer): a malformed GraphDef is one
GraphFormatError naming the node, its op and the field, whatever the damage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .. import ops as O
from ..errors import GraphFormatError, InvalidParameterError, UnknownNodeError, quoted
from ..graph import Graph
from ..handler_table import HandlerTable
from ..limits import MAX_AXIS_LENGTH, MAX_PARAMETER
from ..toposort import topological
from . import fields as F
from .fields import data_inputs, fail

UNARY = frozenset([
    "Relu", "Relu6", "Elu", "Selu", "Softplus", "Softsign", "Sigmoid", "Tanh", "LeakyRelu", "Gelu",
    "Swish", "Exp", "Expm1", "Log", "Log1p", "Neg", "Abs", "Square", "Sqrt", "Rsqrt", "Reciprocal",
    "Inv", "Floor", "Ceil", "Round", "Rint", "Sign", "Erf", "Erfc", "Sin", "Cos", "Tan", "Asin", "Acos",
    "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Lgamma", "Digamma", "IsFinite", "IsNan",
    "IsInf", "LogicalNot", "Invert", "ZerosLike", "OnesLike", "Identity", "StopGradient", "Cast",
    "Bitcast", "PreventGradient", "Snapshot", "CheckNumerics", "EnsureShape", "Softmax", "LogSoftmax",
    "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "Dropout", "FakeQuantWithMinMaxArgs",
    "FakeQuantWithMinMaxVars", "QuantizeAndDequantizeV2", "QuantizeAndDequantizeV4"
])
BINARY = frozenset([
    "Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "DivNoNan", "MulNoNan", "FloorDiv", "FloorMod",
    "Mod", "TruncateDiv", "Maximum", "Minimum", "BiasAdd", "SquaredDifference", "Pow", "Atan2",
    "Greater", "GreaterEqual", "Less", "LessEqual", "Equal", "NotEqual", "LogicalAnd", "LogicalOr",
    "ClipByValue"
])
RESIZES = {"ResizeNearestNeighbor": "nearest", "ResizeBilinear": "linear", "ResizeBicubic": "cubic"}
SHAPE_ONLY = frozenset(["Shape", "ShapeN", "Size", "Rank"])
"""Ops that read only their input's shape: values derived from them (dropout's random mask)
are not spatial."""
PASS_THROUGH = frozenset(["Identity", "ReadVariableOp", "Cast", "StopGradient", "Snapshot"])
"""Ops through which a constant or a variable's shape is found."""
PADDINGS = ("SAME", "VALID", "EXPLICIT")
POOLS = frozenset(["MaxPool", "AvgPool", "MaxPool3D", "AvgPool3D", "MaxPoolV2", "AvgPoolV2"])


def _is_image_placeholder(node: Any) -> bool:
    """A Placeholder that can hold an image: rank >= 3 or unknown (not Keras's scalar learning
    phase, not a batch-size or flag input)."""
    if node.op != "Placeholder":
        return False
    shape = F.attr_shape(node, "shape")
    return shape is None or len(shape) >= 3


def _field(index: int, name: str) -> str:
    """How an error names a node's data input: "input 1 (paddings)"."""
    return f"{'the last input' if index == -1 else f'input {index}'} ({name})"


class NodeReader:
    """Reads one NodeDef as a foveal op: its constants by following edges, its axes by layout."""

    def __init__(self, nodes: dict[str, Any], inputs: list[str], channels_first: bool, rank: int,
                 handlers: Mapping[str, Any] | None = None) -> None:
        self.nodes, self.inputs, self.channels_first, self.rank = nodes, inputs, channels_first, rank
        self.handlers = TABLE.with_extras(user_handlers(handlers or {}))
        """The op table (`TABLE`) with the caller's handlers, which win."""
        self.unhandled: Counter[str] = Counter()
        """Ops met without a handler, by op name (each became an unknown op)."""
        first = 2 if channels_first else 1
        self.positions: tuple[int, ...] = tuple(range(first, first + rank - 2))
        """Where the graph's spatial axes sit in the tensor being read: Conv1D in TensorFlow is
        ExpandDims + Conv2D + Squeeze, so a tensor may carry an extra axis of size 1."""
        self.done: set[str] = set()
        """Nodes already converted: an op's spatial inputs are among them."""
        self._producers: dict[str, Any] = {}
        """Node name -> the node behind it through pass-through ops (each chain walked once)."""

    @classmethod
    def of(cls, graph_def: Any, inputs: list[str]) -> NodeReader:
        """Layout from the ops' `data_format`, rank from the first input's placeholder shape."""
        nodes = {n.name: n for n in graph_def.node}
        formats = {F.attr_text(n, "data_format", "") for n in graph_def.node if "data_format" in n.attr}
        formats.discard("")
        channels_first = bool(formats) and all(f.startswith("NC") for f in formats)
        first = nodes.get(inputs[0]) if inputs else None
        shape = F.attr_shape(first, "shape") if first is not None else None
        rank = 4 if shape is None else len(shape)
        if first is not None and not 3 <= rank <= F.MAX_RANK:
            raise fail(first, f"the input has rank {rank}; foveal reads tensors of rank 3 to {F.MAX_RANK} "
                              f"(batch, spatial axes, channels)")
        return cls(nodes, inputs, channels_first, rank)

    def _axes(self) -> list[int]:
        """Positions of the graph's spatial axes in the tensor being read."""
        return list(self.positions)

    def _extra_axes(self) -> list[int]:
        """Spatial positions of the tensor that are not graph axes (ExpandDims' axis of size 1)."""
        first = 2 if self.channels_first else 1
        return [p for p in range(first, first + self.rank - 2) if p not in self.positions]

    def _kernel(self, node: Any, shape: list[int], *per_dim: list[int]) -> tuple[int, ...] | str:
        """The kernel's sizes on the graph axes (kernel dims are spatial dims in tensor order), or
        why there is none: a size unknown, or a window (kernel, stride or dilation not 1) on an
        extra axis."""
        if len(shape) != self.rank:
            raise fail(node, f"input 1 (filter) has {len(shape)} dims, expected {self.rank} for a "
                             f"rank-{self.rank} input")
        first = 2 if self.channels_first else 1
        spatial = [shape[p - first] for p in range(first, first + self.rank - 2)]
        if -1 in spatial:
            return "weight shape unknown"
        F.check_ints(node, "the spatial sizes of input 1 (filter)", spatial, minimum=1)
        if any(shape[p - first] != 1 or any(v[p] != 1 for v in per_dim) for p in self._extra_axes()):
            return "a window along an axis that is not the input's"
        return tuple(shape[p - first] for p in self.positions)

    # -- constants ---------------------------------------------------------------------------
    def _producer(self, ref: str, user: Any, field: str) -> Any:
        """The node behind `ref` through pass-through ops (Identity, Cast, ...), which may not
        form a cycle."""
        name = F.source(ref)
        if name in self._producers:
            return self._producers[name]
        walked: dict[str, None] = {}
        node = self.nodes.get(name)
        while node is not None and node.op in PASS_THROUGH:
            refs = data_inputs(node)
            if not refs:
                break
            if node.name in walked:
                loop = list(walked)[list(walked).index(node.name):]
                what = "a pass-through node that reads itself" if len(loop) == 1 else \
                    f"{len(loop)} pass-through nodes that form a cycle"
                raise fail(user, f"{field} is read through {what} ({', '.join(map(quoted, loop[:4]))}"
                                 f"{', ...' if len(loop) > 4 else ''})")
            walked[node.name] = None
            node = self.nodes.get(F.source(refs[0]))
        if node is None:
            missing = F.source(refs[0]) if walked else name
            raise fail(user, f"{field} reads {quoted(missing)}, which names no node of the GraphDef")
        for passed in (name, *walked):
            self._producers[passed] = node
        return node

    def _shape_of(self, ref: str, user: Any, field: str, depth: int = 0) -> list[int] | None:
        """A weight's shape (-1: an unknown size): of the Const, Fill or variable behind it,
        through ExpandDims (Conv1D's kernel), or from the `_output_shapes` TensorFlow adds on
        request."""
        if depth > F.MAX_WALK:
            raise fail(user, f"{field} is behind more than {F.MAX_WALK} nested ExpandDims or Fill nodes "
                             f"(a cycle?)")
        node = self._producer(ref, user, field)
        if node.op == "ExpandDims":
            inner = self._shape_of(F.data_input(node, 0, "input"), user, field, depth + 1)
            axis = self._const_ints(node, 1, "axis", length=1)
            if inner is None or axis is None:
                return None
            at = F.check_axis(node, _field(1, "axis"), axis[0], len(inner) + 1)
            return inner[:at] + [1] + inner[at:]
        if node.op == "Const":
            return F.const_shape(node)
        if node.op == "Fill":  # tf.ones / tf.zeros of a larger shape
            return self._const_ints(node, 0, "dims", minimum=0, limit=MAX_AXIS_LENGTH)
        if "shape" in node.attr:
            return F.attr_shape(node, "shape")
        return F.output_shape(node)

    def _const_ints(self, node: Any, index: int, name: str, *, length: int | None = None, per: str = "",
                    minimum: int | None = None, maximum: int | None = None,
                    limit: int = MAX_PARAMETER) -> list[int] | None:
        """The integer values of the Const behind data input `index` of `node` (None when it is
        not a Const), `length` of them when given, each checked like an attribute."""
        field = _field(index, name)
        const = self._producer(F.data_input(node, index, name), node, field)
        if const.op != "Const":
            return None
        most = F.MAX_CONST_VALUES if length is None else length
        values = F.const_ints(const, node, field, most)
        return F.check_ints(node, field, values, length=length, per=per, minimum=minimum, maximum=maximum,
                            limit=limit)

    # -- ops --------------------------------------------------------------------------------
    def _pick(self, values: list[int]) -> tuple[int, ...]:
        return tuple(values[i] for i in self._axes())

    def _per_axis(self, pairs: bool = False) -> str:
        """Why a list has rank (or twice rank) entries, as an error message says it."""
        return f"{'a pair' if pairs else 'one'} per axis of the rank-{self.rank} input"

    def _strides(self, node: Any) -> list[int]:
        return F.attr_ints(node, "strides", length=self.rank, per=self._per_axis(), minimum=1)

    def _dilations(self, node: Any) -> list[int]:
        return F.attr_ints(node, "dilations", length=self.rank, per=self._per_axis(), minimum=1,
                           default=[1] * self.rank)

    def _padding(self, node: Any) -> Any:
        padding = F.attr_text(node, "padding", "VALID", PADDINGS)
        if padding == "SAME":
            return "same_upper"
        if padding == "EXPLICIT":
            pairs = F.attr_ints(node, "explicit_paddings", length=2 * self.rank, per=self._per_axis(True),
                                minimum=0)
            return tuple((pairs[2 * i], pairs[2 * i + 1]) for i in self._axes())
        return 0

    def op_for(self, node: Any) -> O.Op:
        """The foveal op of `node`: its entry in the table (the user's handlers first), else an
        unknown op, counted in `unhandled`."""
        if node.name in self.inputs:
            return O.Input()
        handler = self.handlers.get(node.op)
        if handler is None:
            self.unhandled[node.op] += 1
            return O.unknown(node.op)
        return handler(self, node)

    # -- the table's handlers: each reads one NodeDef --------------------------------------------
    def _conv(self, node: Any) -> O.Op:
        shape = self._shape_of(F.data_input(node, 1, "filter"), node, _field(1, "filter"))
        if shape is None:
            return O.unknown(f"{node.op} (weight shape unknown)")
        strides, dilations = self._strides(node), self._dilations(node)
        kernel = self._kernel(node, shape, strides, dilations)
        if isinstance(kernel, str):
            return O.unknown(f"{node.op} ({kernel})")
        return O.Window(kernel, self._pick(strides), self._pick(dilations), self._padding(node))

    def _pad(self, node: Any) -> O.Op:
        amounts = self._const_ints(node, 1, "paddings", length=2 * self.rank, per=self._per_axis(True),
                                   minimum=0)
        mode = "constant"
        if node.op == "MirrorPad":
            mode = F.attr_text(node, "mode", choices=("REFLECT", "SYMMETRIC")).lower()
        if amounts is None or mode == "symmetric":
            return O.unknown(f"{node.op} ({'paddings not constant' if amounts is None else 'SYMMETRIC'})")
        pairs = [(amounts[2 * i], amounts[2 * i + 1]) for i in range(self.rank)]
        return O.pad(tuple(pairs[i][0] for i in self._axes()), tuple(pairs[i][1] for i in self._axes()), mode)

    def _space_depth(self, node: Any) -> O.Op:
        block = F.attr_int(node, "block_size", minimum=2)
        return O.pixel_shuffle(block) if node.op == "DepthToSpace" else O.pixel_unshuffle(block)

    def _elementwise(self, node: Any) -> O.Op:
        return O.elementwise(node.op.lower())

    def _expand_dims(self, node: Any) -> O.Op:
        return O.elementwise("expanddims") if self._expand_axis(node) is not None else O.unknown(node.op)

    def _squeeze(self, node: Any) -> O.Op:
        return O.elementwise("squeeze") if self._keeps_spatial(node) else O.unknown(node.op)

    def _switch(self, node: Any) -> O.Op:
        """Both outputs carry the data; a predicate computed from the image decides which, so
        then every output also reads what the predicate reads."""
        return O.elementwise("switch") if self._spatial_inputs(node) < 2 else O.add()

    def _merge(self, node: Any) -> O.Op:
        """Whichever branch ran: the union of the branches."""
        return O.choice() if self._spatial_inputs(node) > 1 else O.elementwise("merge")

    def _binary(self, node: Any) -> O.Op:
        return O.add() if self._spatial_inputs(node) > 1 else O.elementwise(node.op.lower())

    def _concat(self, node: Any) -> O.Op:
        axis = self._const_ints(node, -1, "axis", length=1)
        if axis is None or F.check_axis(node, _field(-1, "axis"), axis[0], self.rank) in self._axes():
            return O.unknown("ConcatV2 (along a spatial axis)")
        return O.concat() if self._spatial_inputs(node) > 1 else O.elementwise("concat")

    def _reduce(self, node: Any) -> O.Op:
        axes = self._const_ints(node, 1, "reduction_indices")
        if axes is None:
            return O.unknown(f"{node.op} (axes not constant)")
        reduced = {F.check_axis(node, _field(1, "reduction_indices"), a, self.rank) for a in axes}
        if not reduced & set(self._axes()):
            return O.elementwise(node.op.lower())
        return O.Global(node.op.lower(), tuple(a in reduced for a in self._axes()), keep_size=False)

    def _matmul(self, node: Any) -> O.Op:
        return O.Global("dense")

    def _reshape(self, node: Any) -> O.Op:
        """To [batch, features]: the flatten before a MatMul head; any other reshape mixes."""
        target = self._producer(F.data_input(node, 1, "shape"), node, _field(1, "shape"))
        dims = F.const_shape(target) if target.op == "Const" else None
        if dims is not None and len(dims) == 1 and dims[0] <= 2:
            return O.Global("flatten")
        return O.Global("reshape", bound="a Reshape that keeps more than two axes is taken to "
                        "mix all positions")

    def _pool(self, node: Any) -> O.Op:
        """Max or average pooling: ksize and strides as attributes, or as constant inputs (V2)."""
        if node.op.endswith("V2"):
            ksize = self._const_ints(node, 1, "ksize", length=self.rank, per=self._per_axis(), minimum=1)
            strides = self._const_ints(node, 2, "strides", length=self.rank, per=self._per_axis(), minimum=1)
            if ksize is None or strides is None:
                return O.unknown(f"{node.op} (window not constant)")
        else:
            ksize = F.attr_ints(node, "ksize", length=self.rank, per=self._per_axis(), minimum=1)
            strides = self._strides(node)
        if any(ksize[p] != 1 or strides[p] != 1 for p in self._extra_axes()):
            return O.unknown(f"{node.op} (a window along an axis that is not the input's)")
        kind = "max_pool" if node.op.startswith("Max") else "avg_pool"
        return O.Window(self._pick(ksize), self._pick(strides), 1, self._padding(node), False, kind)

    def _transposed(self, node: Any) -> O.Op:
        """Transposed convolution. Its constant output size fixes the input size TensorFlow
        accepts, hence the forward convolution's padding: the taps are exact for that size."""
        out = self._const_ints(node, 0, "input_sizes", length=self.rank, per=self._per_axis(), minimum=0,
                               limit=MAX_AXIS_LENGTH)
        shape = self._shape_of(F.data_input(node, 1, "filter"), node, _field(1, "filter"))
        if out is None or shape is None:
            return O.unknown(f"{node.op} (output size or weight shape not constant)")
        all_strides, all_dilations = self._strides(node), self._dilations(node)
        found = self._kernel(node, shape, all_strides, all_dilations)
        if isinstance(found, str):
            return O.unknown(f"{node.op} ({found})")
        kernel, strides, dilations = found, self._pick(all_strides), self._pick(all_dilations)
        explicit = self._padding(node)
        pads, extras = [], []
        for axis, (size, k, s, d) in enumerate(zip(self._pick(out), kernel, strides, dilations)):
            k_eff = d * (k - 1) + 1
            if explicit == "same_upper":
                n_in = -(-size // s)
                total = max((n_in - 1) * s + k_eff - size, 0)
                before = total // 2
            elif explicit == 0:
                n_in, total, before = -(-(size - k_eff + 1) // s), 0, 0
            else:
                before, after = explicit[axis]
                total = before + after
                n_in = (size + total - k_eff) // s + 1
            if n_in < 1:
                raise fail(node, f"{_field(0, 'input_sizes')} has the size {size:,} on a spatial axis, "
                                 f"which no input of a window of {k_eff} taps (padding {total}) produces")
            pads.append((before, total - before))
            extras.append(size - ((n_in - 1) * s + k_eff - total))
        return O.TransposedWindow(kernel, strides, dilations, tuple(pads), tuple(extras))

    def _resize(self, node: Any) -> O.Op:
        """TF's resize rules: legacy (asymmetric, nearest floors), align_corners (nearest rounds
        half up), half_pixel_centers (nearest reads floor((o + 1/2) * in / out))."""
        size = self._const_ints(node, 1, "size", minimum=1, limit=MAX_AXIS_LENGTH)
        align_corners = F.attr_bool(node, "align_corners")
        half_pixel = F.attr_bool(node, "half_pixel_centers")
        if size is None or len(size) != self.rank - 2 or self.channels_first:
            return O.unknown(f"{node.op} (output size not constant)")
        size = [size[p - 1] for p in self.positions]
        method = RESIZES[node.op]
        if align_corners:
            coordinate, rounding = "align_corners", "round_prefer_ceil"
        elif half_pixel:
            coordinate, rounding = "half_pixel", "round_prefer_ceil"
        else:
            coordinate, rounding = "asymmetric", "floor"
        return O.Resize(method, size=tuple(size), coordinate=coordinate,
                        rounding=rounding if method == "nearest" else "floor")

    def _slice(self, node: Any) -> O.Op:
        """A crop of the spatial axes: Slice(begin, size), or StridedSlice without ellipsis,
        new or shrunk axes among the spatial ones. StridedSlice bounds past any axis length
        (2^63 - 1 for "to the end") are clamped to foveal's limit, which means the same."""
        is_slice = node.op == "Slice"
        wide = 1 << 64
        begin = self._const_ints(node, 1, "begin", minimum=0 if is_slice else None, limit=wide)
        other = self._const_ints(node, 2, "size" if is_slice else "end", minimum=-1 if is_slice else None,
                                 limit=wide)
        steps = self._const_ints(node, 3, "strides", limit=wide) if not is_slice else None
        if begin is None or other is None or (steps is None and not is_slice):
            return O.unknown(f"{node.op} (bounds not constant, or not one per axis)")
        for values, name, index in ((other, "size" if is_slice else "end", 2), (steps, "strides", 3)):
            if values is not None and len(values) != len(begin):
                raise fail(node, f"{_field(index, name)} has {len(values)} values and input 1 (begin) "
                                 f"{len(begin)}; they must have one per axis each")
        if len(begin) != self.rank:
            return O.unknown(f"{node.op} (bounds not constant, or not one per axis)")
        steps = steps or [1] * self.rank
        masks = {k: F.attr_int(node, k, 0, limit=wide) for k in ("begin_mask", "end_mask", "ellipsis_mask",
                                                                 "new_axis_mask", "shrink_axis_mask")}
        if masks["ellipsis_mask"] or masks["new_axis_mask"] or any(
                masks["shrink_axis_mask"] >> i & 1 for i in self._axes()):
            return O.unknown(f"{node.op} (ellipsis, new or shrunk spatial axes)")
        starts, stops, steps_out = [], [], []
        for i in self._axes():
            start, step = begin[i], steps[i]
            if step == 0:
                raise fail(node, f"{_field(3, 'strides')} has a step of 0")
            if step < 0:
                return O.unknown(f"{node.op} (negative step on a spatial axis)")
            F.check_ints(node, _field(3, "strides"), [step])
            if is_slice:
                F.check_ints(node, _field(1, "begin"), [start])
                stop = None if other[i] == -1 or start + other[i] > MAX_PARAMETER else start + other[i]
            else:
                start = 0 if masks["begin_mask"] >> i & 1 else _clamp(start)
                stop = None if masks["end_mask"] >> i & 1 or other[i] >= MAX_PARAMETER else _clamp(other[i])
            starts.append(start)
            stops.append(stop)
            steps_out.append(step)
        return O.crop(tuple(starts), tuple(stops), tuple(steps_out))

    def _expand_axis(self, node: Any) -> int | None:
        """Where ExpandDims puts its new axis (None: not constant)."""
        axis = self._const_ints(node, 1, "axis", length=1)
        if axis is None:
            return None
        if self.rank + 1 > F.MAX_RANK:
            raise F.over_limit(node, "the rank of the output", self.rank + 1, F.MAX_RANK)
        return F.check_axis(node, _field(1, "axis"), axis[0], self.rank + 1)

    def _squeeze_dims(self, node: Any) -> list[int]:
        """Squeeze's axes, as positions (none: every axis of size 1)."""
        dims = F.attr_ints(node, "squeeze_dims", default=[])
        if len(dims) > self.rank:
            raise fail(node, f"attribute 'squeeze_dims' has {len(dims):,} axes for a rank-{self.rank} input")
        return sorted({F.check_axis(node, "attribute 'squeeze_dims'", d, self.rank) for d in dims})

    def _layout_after(self, node: Any) -> tuple[int, tuple[int, ...]]:
        """(rank, positions of the graph axes) of the node's output: ExpandDims inserts an axis,
        Squeeze removes its axes; every other op keeps the layout (a Squeeze of a graph axis is
        an unknown op, after which the layout is kept)."""
        if node.op == "ExpandDims":
            at = self._expand_axis(node)
            if at is not None:
                return self.rank + 1, tuple(p + (p >= at) for p in self.positions)
        if node.op == "Squeeze":
            dims = self._squeeze_dims(node)
            if dims and not set(dims) & set(self.positions):
                return self.rank - len(dims), tuple(p - sum(d < p for d in dims) for p in self.positions)
        return self.rank, self.positions

    def _keeps_spatial(self, node: Any) -> bool:
        dims = self._squeeze_dims(node)  # none: every axis of size 1, perhaps a spatial one
        return bool(dims) and not set(dims) & set(self._axes())

    def _spatial_inputs(self, node: Any) -> int:
        return sum(F.source(r) in self.done for r in data_inputs(node))


def _clamp(bound: int) -> int:
    """A slice bound past every axis length means the same at foveal's limit."""
    return max(-MAX_PARAMETER, min(MAX_PARAMETER, bound))


class Converter(NodeReader):
    """Builds the foveal Graph node by node in topological order."""

    def __init__(self, graph_def: Any, inputs: list[str] | None = None,
                 handlers: Mapping[str, Any] | None = None) -> None:
        nodes = {n.name: n for n in graph_def.node}
        inputs = inputs or [n.name for n in graph_def.node if _is_image_placeholder(n)]
        for name in inputs:
            if name not in nodes:
                raise UnknownNodeError(name, nodes, what="input node")
        if not inputs:
            raise GraphFormatError("the GraphDef has no Placeholder of rank 3 or more; name the input "
                                   "node (input=...)")
        reader = NodeReader.of(graph_def, inputs)
        super().__init__(nodes, inputs, reader.channels_first, reader.rank, handlers)
        self.spatial = self._spatial_nodes()

    def _spatial_nodes(self) -> list[str]:
        """Nodes the inputs reach through data edges (not through a shape-only op), in
        topological order: GraphDef order among the ready ones (toposort.topological)."""
        consumers: dict[str, list[str]] = {}
        for node in self.nodes.values():
            for ref in data_inputs(node):
                consumers.setdefault(F.source(ref), []).append(node.name)
        reached, stack = set(self.inputs), list(self.inputs)
        while stack:
            for c in consumers.get(stack.pop(), ()):
                if c not in reached and self.nodes[c].op not in SHAPE_ONLY:
                    reached.add(c)
                    stack.append(c)
        names = [n for n in self.nodes if n in reached]
        index = {name: i for i, name in enumerate(names)}
        order, stuck = topological(len(names), lambda i: [index[s] for s in map(F.source, data_inputs(
            self.nodes[names[i]])) if s in index])
        if stuck:
            first = sorted(names[i] for i in stuck)[:5]
            raise GraphFormatError(f"the GraphDef has a cycle through {', '.join(map(quoted, first))} "
                                   f"(loops are not supported)")
        return [names[i] for i in order]

    def graph(self) -> Graph:
        g = Graph(len(self.positions), name="graphdef")
        base = self.rank, self.positions
        layouts: dict[str, tuple[int, tuple[int, ...]]] = {}
        self.done = set()
        rates: dict[str, tuple[int, ...]] = {}
        """Atrous rate per node: SpaceToBatchND interleaves the image into r x r sub-images, so a
        stride-1 window there is a window dilated by r on the image, until BatchToSpaceND."""
        for name in self.spatial:
            node = self.nodes[name]
            refs = (F.source(r) for r in data_inputs(node))
            sources = list(dict.fromkeys(r for r in refs if r in self.done))
            found = {rates[s] for s in sources if s in rates}
            rate = found.pop() if len(found) == 1 else None
            self.rank, self.positions = layouts[sources[0]] if sources else base
            atrous = ATROUS.get(node.op) if name not in self.inputs and node.op not in self.handlers.extras \
                else None
            op = self.op_for(node) if atrous is None else O.unknown(node.op)
            layouts[name] = self._layout_after(node)
            if found:
                op = O.unknown(f"{node.op} (inputs at different atrous rates)")
            elif atrous is not None:
                op, rate = atrous(self, node, rate)
            elif rate is not None:
                op = _dilated(op, rate, node)
            if len(sources) > 1 and not isinstance(op, O.Merge | O.Unknown | O.Input):
                op = O.unknown(f"{node.op} (several spatial inputs)")
            if rate is not None:
                rates[name] = rate
            g.add(name, op, sources, label=node.op)
            self.done.add(name)
        return g

    def _space_to_batch(self, node: Any, rate: Any) -> tuple[O.Op, Any]:
        block = self._const_ints(node, 1, "block_shape", minimum=1)
        pads = self._const_ints(node, 2, "paddings", minimum=0)
        n = self.rank - 2
        if pads is None:
            return O.unknown("SpaceToBatchND (paddings computed from the input's shape: give the "
                             "input placeholder or signature a static spatial shape)"), None
        if block is not None and len(pads) != 2 * len(block):
            raise fail(node, f"{_field(2, 'paddings')} has {len(pads)} values for {len(block)} block axes; "
                             f"it needs a (before, after) pair per block axis")
        if rate is not None or block is None or len(block) != n or self.channels_first or self._extra_axes():
            return O.unknown("SpaceToBatchND (nested, block not constant, or not NHWC)"), None
        return O.pad(tuple(pads[0::2]), tuple(pads[1::2])), tuple(block)

    def _batch_to_space(self, node: Any, rate: Any) -> tuple[O.Op, Any]:
        block = self._const_ints(node, 1, "block_shape", minimum=1)
        crops = self._const_ints(node, 2, "crops", minimum=0)
        if block is not None and crops is not None and len(crops) != 2 * len(block):
            raise fail(node, f"{_field(2, 'crops')} has {len(crops)} values for {len(block)} block axes; "
                             f"it needs a (before, after) pair per block axis")
        if rate is None or block is None or crops is None or tuple(block) != rate:
            return O.unknown("BatchToSpaceND (without a matching SpaceToBatchND)"), None
        return O.crop(tuple(crops[0::2]), tuple(-c if c else None for c in crops[1::2])), None


def _dilated(op: O.Op, rate: tuple[int, ...], node: Any) -> O.Op:
    """An op on the interleaved sub-images, as the same op on the image."""
    if isinstance(op, O.Window) and all(s == 1 for s in _per_axis(op.stride, len(rate))) and \
            not isinstance(op.padding, str):
        padding = op.padding if isinstance(op.padding, tuple) else ((op.padding, op.padding),) * len(rate)
        dilation = tuple(d * r for d, r in zip(_per_axis(op.dilation, len(rate)), rate))
        padding = tuple((b * r, a * r) for (b, a), r in zip(padding, rate))
        for value in (*dilation, *(v for pair in padding for v in pair)):
            if value > MAX_PARAMETER:
                raise F.over_limit(node, "a dilation or padding times the atrous rate", value, MAX_PARAMETER)
        return O.Window(op.kernel, 1, dilation, padding, op.ceil_mode, op.kind)
    if isinstance(op, O.Elementwise | O.Merge | O.Global):
        return op
    return O.unknown(f"{node.op} (between SpaceToBatchND and BatchToSpaceND)")


def _per_axis(value: Any, n: int) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, tuple) else (value,) * n


Handler = Callable[[NodeReader, Any], O.Op]
"""A table entry: the foveal op of a NodeDef, read through the reader (constants, layout)."""


def _table(*families: tuple[Iterable[str], Handler]) -> HandlerTable[Handler]:
    """One entry per op name; a family of ops (the element-wise ones) shares its handler."""
    entries: dict[str, Handler] = {}
    for names, handler in families:
        for name in sorted(names):
            if name in entries:
                raise ValueError(f"internal: the TensorFlow op {name!r} has two handlers")
            entries[name] = handler
    return HandlerTable(entries)


TABLE = _table(
    (("Conv2D", "Conv3D", "DepthwiseConv2dNative"), NodeReader._conv),
    (("Conv2DBackpropInput", "Conv3DBackpropInputV2"), NodeReader._transposed),
    (POOLS, NodeReader._pool),
    (("Pad", "PadV2", "MirrorPad"), NodeReader._pad),
    (("DepthToSpace", "SpaceToDepth"), NodeReader._space_depth),
    (RESIZES, NodeReader._resize),
    (("Slice", "StridedSlice"), NodeReader._slice),
    (UNARY | {"IdentityN"}, NodeReader._elementwise),
    (("ExpandDims",), NodeReader._expand_dims),
    (("Squeeze",), NodeReader._squeeze),
    (("Switch",), NodeReader._switch),
    (("Merge",), NodeReader._merge),
    (BINARY | {"AddN", "Select", "SelectV2"}, NodeReader._binary),
    (("ConcatV2",), NodeReader._concat),
    (("Mean", "Max", "Sum", "Min"), NodeReader._reduce),
    (("MatMul",), NodeReader._matmul),
    (("Reshape",), NodeReader._reshape),
)
"""TensorFlow op name (NodeDef.op) -> handler. Adding an op is one entry here and one test.
SpaceToBatchND and BatchToSpaceND are not here: the graph walk follows the atrous rate from one
to the other (ATROUS)."""

ATROUS = {"SpaceToBatchND": Converter._space_to_batch, "BatchToSpaceND": Converter._batch_to_space}
"""The atrous pair, read with the rate the walk carries: (op, rate after the node)."""


def user_handlers(handlers: Mapping[str, Any]) -> dict[str, Handler]:
    """The caller's `handlers=` as table entries: a TF op name -> a foveal op, or a callable
    taking the NodeDef and returning one, applied to the node's spatial inputs."""
    entries = {}
    for name, value in handlers.items():
        if not isinstance(name, str):
            raise InvalidParameterError(f"handlers= keys for a TensorFlow graph are op names (the NodeDef's "
                                        f"op, e.g. 'MyBlur'), got {name!r}")
        if not isinstance(value, O.Op) and not callable(value):
            raise InvalidParameterError(f"handlers[{name!r}] must be a foveal op (e.g. foveal.conv(3)) or "
                                        f"a callable taking the NodeDef and returning one, got {value!r}")
        entries[name] = _user_handler(value)
    return entries


def _user_handler(value: Any) -> Handler:
    def handler(reader: NodeReader, node: Any) -> O.Op:
        if isinstance(value, O.Op):
            return value
        op = value(node)
        if not isinstance(op, O.Op):
            raise InvalidParameterError(f"the handler for op {quoted(node.op)} returned {op!r} at node "
                                        f"{quoted(node.name)}; it must return a foveal op")
        return op
    return handler


def graph_from_graph_def(graph_def: Any, inputs: list[str] | None = None,
                         handlers: Mapping[str, Any] | None = None) -> Graph:
    """The spatial part of `graph_def` as a foveal Graph; node names are the GraphDef's.
    handlers: extra table entries by TF op name (`user_handlers`)."""
    from .load import load_graph_def

    return Converter(load_graph_def(graph_def), inputs, handlers).graph()
