"""A GraphDef as a foveal Graph.

A node is spatial when one of the chosen input nodes reaches it through data edges (`^name` control
inputs never count). Everything else (weights, constants, shape arithmetic) stays out of the
graph; its values are read where an op needs them (kernel shapes from the weight's shape, pad
amounts, reduction axes) by following edges to a Const, never by name. Layouts: NHWC unless the
ops say NCHW (`data_format`); 5-D tensors are NDHWC / NCDHW.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .. import ops as O
from ..errors import GraphFormatError, UnknownNodeError
from ..graph import Graph, split_ref

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


def _attr(node: Any, key: str, default: Any = None) -> Any:
    if key not in node.attr:
        return default
    value = node.attr[key]
    kind = value.WhichOneof("value")
    if kind == "list":
        lst = value.list
        return list(lst.i) or [s.decode() for s in lst.s] or list(lst.f) or []
    if kind == "s":
        return value.s.decode()
    return getattr(value, kind) if kind else default


def _is_image_placeholder(node: Any) -> bool:
    """A Placeholder that can hold an image: rank >= 3 or unknown (not Keras's scalar learning
    phase, not a batch-size or flag input)."""
    if node.op != "Placeholder":
        return False
    shape = _attr(node, "shape")
    return shape is None or shape.unknown_rank or len(shape.dim) >= 3


def _source(ref: str) -> str:
    """'conv:0' and '^conv' -> 'conv'."""
    return split_ref(ref.lstrip("^"))[0]


class NodeReader:
    """Reads one NodeDef as a foveal op: its constants by following edges, its axes by layout."""

    def __init__(self, nodes: dict[str, Any], inputs: list[str], channels_first: bool, rank: int) -> None:
        self.nodes, self.inputs, self.channels_first, self.rank = nodes, inputs, channels_first, rank
        first = 2 if channels_first else 1
        self.positions: tuple[int, ...] = tuple(range(first, first + rank - 2))
        """Where the graph's spatial axes sit in the tensor being read: Conv1D in TensorFlow is
        ExpandDims + Conv2D + Squeeze, so a tensor may carry an extra axis of size 1."""
        self.done: set[str] = set()
        """Nodes already converted: an op's spatial inputs are among them."""

    @classmethod
    def of(cls, graph_def: Any, inputs: list[str]) -> NodeReader:
        """Layout from the ops' `data_format`, rank from the first input's placeholder shape."""
        nodes = {n.name: n for n in graph_def.node}
        formats = {_attr(n, "data_format") for n in graph_def.node if "data_format" in n.attr}
        channels_first = bool(formats) and all(str(f).startswith("NC") for f in formats)
        shape = _attr(nodes[inputs[0]], "shape") if inputs and inputs[0] in nodes else None
        rank = 4 if shape is None or shape.unknown_rank else len(shape.dim)
        return cls(nodes, inputs, channels_first, rank)

    def _axes(self) -> list[int]:
        """Positions of the graph's spatial axes in the tensor being read."""
        return list(self.positions)

    def _extra_axes(self) -> list[int]:
        """Spatial positions of the tensor that are not graph axes (ExpandDims' axis of size 1)."""
        first = 2 if self.channels_first else 1
        return [p for p in range(first, first + self.rank - 2) if p not in self.positions]

    def _kernel(self, shape: list[int], *per_dim: list[int]) -> tuple[int, ...] | None:
        """The kernel's sizes on the graph axes (kernel dims are spatial dims in tensor order), or
        None when it is not 1 (or a stride / dilation not 1) on an extra axis."""
        first = 2 if self.channels_first else 1
        if any(shape[p - first] != 1 or any(v[p] != 1 for v in per_dim) for p in self._extra_axes()):
            return None
        return tuple(shape[p - first] for p in self.positions)

    def _data_inputs(self, node: Any) -> list[str]:
        return [ref for ref in node.input if not ref.startswith("^")]

    # -- constants ---------------------------------------------------------------------------
    def _producer(self, ref: str) -> Any:
        node = self.nodes.get(_source(ref))
        while node is not None and node.op in PASS_THROUGH and node.input:
            node = self.nodes.get(_source(node.input[0]))
        if node is None:
            raise GraphFormatError(f"input {ref!r} names no node of the GraphDef")
        return node

    def _shape_of(self, ref: str) -> list[int] | None:
        """A weight's shape: of the Const, Fill or variable behind it, through ExpandDims
        (Conv1D's kernel), or from the `_output_shapes` TensorFlow adds on request."""
        node = self._producer(ref)
        if node.op == "ExpandDims":
            inner, axis = self._shape_of(node.input[0]), self._const(node.input[1])
            if inner is None or not axis:
                return None
            at = axis[0] + len(inner) + 1 if axis[0] < 0 else axis[0]
            return inner[:at] + [1] + inner[at:]
        if node.op == "Const":
            return [d.size for d in node.attr["value"].tensor.tensor_shape.dim]
        if node.op == "Fill":  # tf.ones / tf.zeros of a larger shape
            return self._const(node.input[0])
        shape = _attr(node, "shape")
        if shape is None and "_output_shapes" in node.attr:
            shape = node.attr["_output_shapes"].list.shape[0]
        return None if shape is None or shape.unknown_rank else [d.size for d in shape.dim]

    def _const(self, ref: str) -> list[int] | None:
        """The integer values of a Const (int_val, int64_val or tensor_content)."""
        node = self._producer(ref)
        if node.op != "Const":
            return None
        tensor = node.attr["value"].tensor
        values = list(tensor.int_val) or list(tensor.int64_val)
        if not values and tensor.tensor_content:
            import array

            width = "q" if tensor.dtype == 9 else "i"
            values = list(array.array(width, tensor.tensor_content))
        count = 1
        for d in tensor.tensor_shape.dim:
            count *= d.size
        if len(values) == 1 and count > 1:
            values *= count
        if not values and count:
            values = [0] * count  # TensorFlow stores an all-zero tensor without values
        return values

    # -- ops --------------------------------------------------------------------------------
    def _pick(self, values: list[int]) -> tuple[int, ...]:
        return tuple(values[i] for i in self._axes())

    def _padding(self, node: Any) -> Any:
        padding = _attr(node, "padding", "VALID")
        if padding == "SAME":
            return "same_upper"
        if padding == "EXPLICIT":
            pairs = _attr(node, "explicit_paddings")
            return tuple((pairs[2 * i], pairs[2 * i + 1]) for i in self._axes())
        return 0

    def op_for(self, node: Any) -> O.Op:
        op = node.op
        if node.name in self.inputs:
            return O.Input()
        if op in ("Conv2D", "Conv3D", "DepthwiseConv2dNative"):
            shape = self._shape_of(node.input[1])
            if shape is None:
                return O.unknown(f"{op} (weight shape unknown)")
            strides, dilations = _attr(node, "strides"), _attr(node, "dilations", [1] * self.rank)
            kernel = self._kernel(shape, strides, dilations)
            if kernel is None:
                return O.unknown(f"{op} (a window along an axis that is not the input's)")
            return O.Window(kernel, self._pick(strides), self._pick(dilations), self._padding(node))
        if op in ("Conv2DBackpropInput", "Conv3DBackpropInputV2"):
            return self._transposed(node)
        if op in ("MaxPool", "AvgPool", "MaxPool3D", "AvgPool3D", "MaxPoolV2", "AvgPoolV2"):
            if op.endswith("V2"):
                ksize, strides = self._const(node.input[1]), self._const(node.input[2])
                if ksize is None or strides is None:
                    return O.unknown(f"{op} (window not constant)")
            else:
                ksize, strides = _attr(node, "ksize"), _attr(node, "strides")
            if any(ksize[p] != 1 or strides[p] != 1 for p in self._extra_axes()):
                return O.unknown(f"{op} (a window along an axis that is not the input's)")
            kind = "max_pool" if op.startswith("Max") else "avg_pool"
            return O.Window(self._pick(ksize), self._pick(strides), 1, self._padding(node), False, kind)
        if op in ("Pad", "PadV2", "MirrorPad"):
            amounts = self._const(node.input[1])
            mode = {"REFLECT": "reflect"}.get(_attr(node, "mode", ""), "constant")
            if amounts is None or (op == "MirrorPad" and mode != "reflect"):
                return O.unknown(f"{op} ({'paddings not constant' if amounts is None else 'SYMMETRIC'})")
            pairs = [(amounts[2 * i], amounts[2 * i + 1]) for i in range(len(amounts) // 2)]
            return O.pad(tuple(pairs[i][0] for i in self._axes()), tuple(pairs[i][1] for i in self._axes()),
                         mode)
        if op in ("DepthToSpace", "SpaceToDepth"):
            block = _attr(node, "block_size")
            return O.pixel_shuffle(block) if op == "DepthToSpace" else O.pixel_unshuffle(block)
        if op in RESIZES:
            return self._resize(node)
        if op in ("Slice", "StridedSlice"):
            return self._slice(node)
        if op in UNARY or op == "IdentityN" or op == "ExpandDims" and self._const(node.input[1]) or \
                op == "Squeeze" and self._keeps_spatial(node):
            return O.elementwise(op.lower())
        if op == "Switch":  # both outputs carry the data; a predicate computed from the image
            # decides which, so then every output also reads what the predicate reads
            return O.elementwise("switch") if self._spatial_inputs(node) < 2 else O.add()
        if op == "Merge":  # whichever branch ran: the union of the branches
            return O.Merge("choice") if self._spatial_inputs(node) > 1 else O.elementwise("merge")
        if op in BINARY or op in ("AddN", "Select", "SelectV2"):
            return O.add() if self._spatial_inputs(node) > 1 else O.elementwise(op.lower())
        if op == "ConcatV2":
            axis = self._const(node.input[-1])
            if axis is None or (axis[0] % self.rank) in self._axes():
                return O.unknown("ConcatV2 (along a spatial axis)")
            return O.concat() if self._spatial_inputs(node) > 1 else O.elementwise("concat")
        if op in ("Mean", "Max", "Sum", "Min"):
            axes = self._const(node.input[1])
            if axes is None:
                return O.unknown(f"{op} (axes not constant)")
            reduced = {a % self.rank for a in axes}
            if not reduced & set(self._axes()):
                return O.elementwise(op.lower())
            return O.Global(op.lower(), tuple(a in reduced for a in self._axes()),
                            keep_size=False)
        if op == "MatMul":
            return O.Global("dense")
        if op == "Reshape":  # to [batch, features]: the flatten before a MatMul head
            target = self._shape_of(node.input[1]) if self._const(node.input[1]) is not None else None
            if target is not None and len(target) == 1 and target[0] <= 2:
                return O.Global("flatten")
            return O.Global("reshape", bound="a Reshape that keeps more than two axes is taken to "
                            "mix all positions")
        return O.unknown(op)

    def _transposed(self, node: Any) -> O.Op:
        """Transposed convolution. Its constant output size fixes the input size TensorFlow
        accepts, hence the forward convolution's padding: the taps are exact for that size."""
        out, shape = self._const(node.input[0]), self._shape_of(node.input[1])
        if out is None or shape is None:
            return O.unknown(f"{node.op} (output size or weight shape not constant)")
        all_strides, all_dilations = _attr(node, "strides"), _attr(node, "dilations", [1] * self.rank)
        found = self._kernel(shape, all_strides, all_dilations)
        if found is None:
            return O.unknown(f"{node.op} (a window along an axis that is not the input's)")
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
            pads.append((before, total - before))
            extras.append(size - ((n_in - 1) * s + k_eff - total))
        return O.TransposedWindow(kernel, strides, dilations, tuple(pads), tuple(extras))

    def _resize(self, node: Any) -> O.Op:
        """TF's resize rules: legacy (asymmetric, nearest floors), align_corners (nearest rounds
        half up), half_pixel_centers (nearest reads floor((o + 1/2) * in / out))."""
        size = self._const(node.input[1])
        if size is None or len(size) != self.rank - 2 or self.channels_first:
            return O.unknown(f"{node.op} (output size not constant)")
        size = [size[p - 1] for p in self.positions]
        method = RESIZES[node.op]
        if _attr(node, "align_corners", False):
            coordinate, rounding = "align_corners", "round_prefer_ceil"
        elif _attr(node, "half_pixel_centers", False):
            coordinate, rounding = "half_pixel", "round_prefer_ceil"
        else:
            coordinate, rounding = "asymmetric", "floor"
        return O.Resize(method, size=tuple(size), coordinate=coordinate,
                        rounding=rounding if method == "nearest" else "floor")

    def _slice(self, node: Any) -> O.Op:
        """A crop of the spatial axes: Slice(begin, size), or StridedSlice without ellipsis,
        new or shrunk axes among the spatial ones."""
        begin = self._const(node.input[1])
        other = self._const(node.input[2])
        steps = self._const(node.input[3]) if node.op == "StridedSlice" else [1] * self.rank
        if begin is None or other is None or steps is None or len(begin) != self.rank:
            return O.unknown(f"{node.op} (bounds not constant, or not one per axis)")
        masks = {k: _attr(node, k, 0) for k in ("begin_mask", "end_mask", "ellipsis_mask",
                                                 "new_axis_mask", "shrink_axis_mask")}
        if masks["ellipsis_mask"] or masks["new_axis_mask"] or any(
                masks["shrink_axis_mask"] >> i & 1 for i in self._axes()):
            return O.unknown(f"{node.op} (ellipsis, new or shrunk spatial axes)")
        starts, stops, steps_out = [], [], []
        for i in self._axes():
            start, step = begin[i], steps[i]
            if step < 1:
                return O.unknown(f"{node.op} (negative or zero step on a spatial axis)")
            if node.op == "Slice":
                stop = None if other[i] == -1 else start + other[i]
            else:
                start = 0 if masks["begin_mask"] >> i & 1 else start
                stop = None if masks["end_mask"] >> i & 1 else other[i]
            starts.append(start)
            stops.append(stop)
            steps_out.append(step)
        return O.crop(tuple(starts), tuple(stops), tuple(steps_out))

    def _layout_after(self, node: Any) -> tuple[int, tuple[int, ...]]:
        """(rank, positions of the graph axes) of the node's output: ExpandDims inserts an axis,
        Squeeze removes its axes; every other op keeps the layout."""
        if node.op == "ExpandDims":
            axis = self._const(node.input[1])
            if axis:
                at = axis[0] + self.rank + 1 if axis[0] < 0 else axis[0]
                return self.rank + 1, tuple(p + (p >= at) for p in self.positions)
        if node.op == "Squeeze":
            dims = sorted({d % self.rank for d in _attr(node, "squeeze_dims") or []})
            if dims:
                return self.rank - len(dims), tuple(p - sum(d < p for d in dims) for p in self.positions)
        return self.rank, self.positions

    def _keeps_spatial(self, node: Any) -> bool:
        dims = _attr(node, "squeeze_dims") or []  # none: every axis of size 1, perhaps a spatial one
        return bool(dims) and not any(d % self.rank in self._axes() for d in dims)

    def _spatial_inputs(self, node: Any) -> int:
        return sum(_source(r) in self.done for r in self._data_inputs(node))


class Converter(NodeReader):
    """Builds the foveal Graph node by node in topological order."""

    def __init__(self, graph_def: Any, inputs: list[str] | None = None) -> None:
        nodes = {n.name: n for n in graph_def.node}
        inputs = inputs or [n.name for n in graph_def.node if _is_image_placeholder(n)]
        for name in inputs:
            if name not in nodes:
                raise UnknownNodeError(name, nodes, what="input node")
        if not inputs:
            raise GraphFormatError("the GraphDef has no Placeholder of rank 3 or more; name the input "
                                   "node (input=...)")
        reader = NodeReader.of(graph_def, inputs)
        super().__init__(nodes, inputs, reader.channels_first, reader.rank)
        self.spatial = self._spatial_nodes()

    def _spatial_nodes(self) -> list[str]:
        """Nodes the inputs reach through data edges, in topological order (Kahn)."""
        consumers: dict[str, list[str]] = {}
        for node in self.nodes.values():
            for ref in self._data_inputs(node):
                consumers.setdefault(_source(ref), []).append(node.name)
        reached, stack = set(self.inputs), list(self.inputs)
        while stack:
            for c in consumers.get(stack.pop(), ()):
                if c not in reached and self.nodes[c].op not in SHAPE_ONLY:
                    reached.add(c)
                    stack.append(c)
        indegree = {n: sum(_source(r) in reached for r in self._data_inputs(self.nodes[n])) for n in reached}
        ready = deque(n for n in self.nodes if n in reached and indegree[n] == 0)
        order = []
        while ready:
            name = ready.popleft()
            order.append(name)
            for c in consumers.get(name, ()):
                if c not in indegree:
                    continue  # a shape-only op: not spatial
                indegree[c] -= 1
                if indegree[c] == 0:
                    ready.append(c)
        if len(order) != len(reached):
            stuck = sorted(n for n in reached if indegree[n] > 0)[:5]
            raise GraphFormatError(f"the GraphDef has a cycle through {', '.join(map(repr, stuck))} "
                                   f"(loops are not supported)")
        return order

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
            refs = (_source(r) for r in self._data_inputs(node))
            sources = list(dict.fromkeys(r for r in refs if r in self.done))
            found = {rates[s] for s in sources if s in rates}
            rate = found.pop() if len(found) == 1 else None
            self.rank, self.positions = layouts[sources[0]] if sources else base
            op = self.op_for(node)
            layouts[name] = self._layout_after(node)
            if found:
                op = O.unknown(f"{node.op} (inputs at different atrous rates)")
            elif node.op == "SpaceToBatchND":
                op, rate = self._space_to_batch(node, rate)
            elif node.op == "BatchToSpaceND":
                op, rate = self._batch_to_space(node, rate)
            elif rate is not None:
                op = _dilated(op, rate, node.op)
            if isinstance(op, O.Window | O.Pad | O.Global | O.Elementwise) and len(sources) > 1:
                op = O.unknown(f"{node.op} (several spatial inputs)")
            if rate is not None:
                rates[name] = rate
            g.add(name, op, sources, label=node.op)
            self.done.add(name)
        return g

    def _space_to_batch(self, node: Any, rate: Any) -> tuple[O.Op, Any]:
        block, pads = self._const(node.input[1]), self._const(node.input[2])
        n = self.rank - 2
        if pads is None:
            return O.unknown("SpaceToBatchND (paddings computed from the input's shape: give the "
                             "input placeholder or signature a static spatial shape)"), None
        if rate is not None or block is None or len(block) != n or self.channels_first or self._extra_axes():
            return O.unknown("SpaceToBatchND (nested, block not constant, or not NHWC)"), None
        return O.pad(tuple(pads[0::2]), tuple(pads[1::2])), tuple(block)

    def _batch_to_space(self, node: Any, rate: Any) -> tuple[O.Op, Any]:
        block, crops = self._const(node.input[1]), self._const(node.input[2])
        if rate is None or block is None or crops is None or tuple(block) != rate:
            return O.unknown("BatchToSpaceND (without a matching SpaceToBatchND)"), None
        return O.crop(tuple(crops[0::2]), tuple(-c if c else None for c in crops[1::2])), None


def _dilated(op: O.Op, rate: tuple[int, ...], name: str) -> O.Op:
    """An op on the interleaved sub-images, as the same op on the image."""
    if isinstance(op, O.Window) and all(s == 1 for s in op.stride) and not isinstance(op.padding, str):
        padding = op.padding if isinstance(op.padding, tuple) else ((op.padding, op.padding),) * len(rate)
        return O.Window(op.kernel, 1, tuple(d * r for d, r in zip(_per_axis(op.dilation, len(rate)), rate)),
                        tuple((b * r, a * r) for (b, a), r in zip(padding, rate)), op.ceil_mode, op.kind)
    if isinstance(op, O.Elementwise | O.Merge | O.Global):
        return op
    return O.unknown(f"{name} (between SpaceToBatchND and BatchToSpaceND)")


def _per_axis(value: Any, n: int) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, tuple) else (value,) * n


def graph_from_graph_def(graph_def: Any, inputs: list[str] | None = None) -> Graph:
    """The spatial part of `graph_def` as a foveal Graph; node names are the GraphDef's."""
    from .load import load_graph_def

    return Converter(load_graph_def(graph_def), inputs).graph()
