"""An ONNX graph as a foveal Graph, op by op per the ONNX specification.

A tensor is spatial when the image input reaches it through node inputs; Shape and Size read
only shapes, so what is computed from them (reshape targets, resize sizes) is folded as a
constant instead. Each spatial tensor carries a layout (foveal.layout): which of its dimensions
holds which image axis, followed through Transpose, Reshape, Flatten, Squeeze and Unsqueeze, so
a Conv after an NHWC->NCHW Transpose reads the right axes. ONNX ops are NCHW: their spatial
dimensions are 2, 3, ... of the tensor.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from typing import Any

from .. import ops as O
from ..errors import FovealError, GraphFormatError, UnknownNodeError, quoted
from ..graph import Graph, fresh_name, split_ref
from ..layout import Layout, LayoutError, Merged, broadcast, reshape, size_of, spatial_axes
from ..limits import MAX_AXIS_LENGTH, LimitError
from .fields import MAX_RANK, Fields, bounded, node_label
from .fold import Constants, reshaped
from .load import DEFAULT_DOMAINS, Dims, ai_onnx_opset, infer_shapes, value_dims

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
SHAPE_ONLY = frozenset(["Shape", "Size"])
DATA_DEPENDENT = frozenset(["GridSample", "RoiAlign", "MaxRoiPool", "DeformConv", "AffineGrid"])
CONTROL_FLOW = frozenset(["If", "Loop", "Scan"])
WINDOW_KINDS = {"Conv": "conv", "ConvInteger": "conv", "QLinearConv": "conv", "MaxPool": "max_pool",
                "AveragePool": "avg_pool", "LpPool": "lp_pool"}
WEIGHT_INPUT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "ConvTranspose": 1}
AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "")
PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


class Converter:
    """Builds the foveal Graph in topological order; `spatial_size` is the size to analyse at."""

    def __init__(self, model: Any, input_name: str | None = None, input_shape: Any = None) -> None:
        g = model.graph
        self.onnx_graph, self.opset = g, ai_onnx_opset(model)
        self.producers = {out: node for node in g.node for out in node.output if out}
        self.consumers: dict[str, list[Any]] | None = None
        initializers = {t.name for t in g.initializer}
        candidates = [i for i in g.input if i.name not in initializers]
        if input_name is not None:
            picked = [i for i in candidates if i.name == input_name]
            if not picked:
                raise UnknownNodeError(input_name, [i.name for i in candidates], what="input")
        else:
            picked = [i for i in candidates if (value_dims(i) or (0, 0, 0))[2:]] or candidates[:1]
        if not picked:
            raise GraphFormatError("the ONNX graph has no input that is not an initializer")
        self.input = picked[0].name
        declared = value_dims(picked[0])
        rank = len(declared) if declared is not None else _rank_of(input_shape, 4)
        if rank < 3:
            raise FovealError(f"input {quoted(self.input)} has rank {rank}; foveal needs a batch, a channel "
                              f"and at least one spatial dimension")
        if rank > MAX_RANK:
            raise LimitError(f"input {quoted(self.input)} has rank {rank}, beyond foveal's limit of "
                             f"{MAX_RANK}")
        self.n_axes = rank - 2
        self.input_layout = self._input_layout(rank)
        self.spatial_size, dims = self._sizes(declared, rank, input_shape)
        self.order = self._spatial_nodes()
        spatial = {out for node in self.order for out in node.output} | {self.input}
        self.shapes: dict[str, Dims] = {}
        self.consts = Constants(g, self.producers, self.shapes, spatial, self.opset)
        every, _ = _in_order(list(g.node), self._consumers())  # nodes on a cycle: not inferred
        infer_shapes(model, self.input, dims, every, self._constant_for_inference, self.shapes)
        self.shapes.setdefault(self.input, dims)

    def _constant_for_inference(self, name: str) -> Any:
        """A folded constant, for shape inference, which asks for every node's inputs: a malformed
        node on the way is reported where the analysis reads the parameter, not here."""
        try:
            return self.consts.value(name)
        except FovealError:
            return None

    # -- input ----------------------------------------------------------------------------------
    def _input_layout(self, rank: int) -> Layout:
        """NCHW, unless the input's first layout-changing consumer is a Transpose that moves the
        channels: then whatever that Transpose moves to NCHW (tf2onnx's NHWC models)."""
        seen, todo = set(), deque([self.input])
        consumers = self._consumers()
        while todo:
            tensor = todo.popleft()
            for node in consumers.get(tensor, ()):
                if node.op_type == "Transpose":
                    perm = Fields(node).integers("perm", list(range(rank))[::-1])
                    if sorted(perm) == list(range(rank)) and perm[0] == 0 and perm[1] != 1:
                        layout: list[int | None] = [None] * rank
                        for d in range(2, rank):
                            layout[perm[d]] = d - 2
                        return tuple(layout)
                    break  # it keeps the channels where NCHW has them (or is not of the input's rank)
                if node.op_type in UNARY or node.op_type in MERGING:
                    for out in node.output:
                        if out not in seen:
                            seen.add(out)
                            todo.append(out)
        return (None, None, *range(rank - 2))

    def _sizes(self, declared: Dims | None, rank: int, given: Any) -> tuple[Any, Dims]:
        """The spatial size to analyse at, and the full input shape for shape inference (an unknown
        batch becomes 1, so batch arithmetic folds)."""
        full: list[int | str | None] = list(declared) if declared is not None else [None] * rank
        if full and not isinstance(full[0], int):
            full[0] = 1
        dims = [d for d in range(rank) if isinstance(self.input_layout[d], int)]
        if isinstance(given, Mapping):
            given = given.get(self.input)
        if given is None:
            spatial = tuple(full[d] for d in dims)
            return (spatial if all(isinstance(s, int) for s in spatial) else None), tuple(full)
        try:
            values = (int(given),) * self.n_axes if isinstance(given, int) else tuple(int(v) for v in given)
        except (TypeError, ValueError, OverflowError):
            raise FovealError(f"input_shape must be an int or a sequence of ints, got "
                              f"{given!r}"[:300]) from None
        for v in values:
            if v < 1:
                raise FovealError(f"input_shape {values} must hold lengths >= 1"[:300])
            if v > MAX_AXIS_LENGTH:
                raise LimitError(f"input_shape holds {v:,}, beyond foveal's limit of {MAX_AXIS_LENGTH:,} "
                                 f"per axis")
        if len(values) == rank:
            full = list(values)
            values = tuple(values[d] for d in dims)
        elif len(values) != self.n_axes:
            raise FovealError(f"input_shape {tuple(values)} has {len(values)} entries; input "
                              f"{self.input!r} has {self.n_axes} spatial axes (give those) or rank {rank}")
        for d, v in zip(dims, values):
            full[d] = v
        return values, tuple(full)

    # -- graph walk -----------------------------------------------------------------------------
    def _consumers(self) -> dict[str, list[Any]]:
        """Who reads each tensor; a node with subgraphs (If, Loop, Scan) reads what they read from
        the outer scope too."""
        if self.consumers is not None:
            return self.consumers
        out: dict[str, list[Any]] = {}
        self.consumers = out
        for node in self.onnx_graph.node:
            for name in dict.fromkeys([*node.input, *_outer_reads(node)]):
                if name:
                    out.setdefault(name, []).append(node)
        return out

    def _spatial_nodes(self) -> list[Any]:
        """Nodes the input reaches, in topological order (Kahn, ties in file order)."""
        consumers = self._consumers()
        reached: dict[int, Any] = {}
        stack = [self.input]
        while stack:
            for node in consumers.get(stack.pop(), ()):
                if id(node) not in reached and node.op_type not in SHAPE_ONLY:
                    reached[id(node)] = node
                    stack.extend(o for o in node.output if o)
        position = {id(n): i for i, n in enumerate(self.onnx_graph.node)}
        order, stuck = _in_order(sorted(reached.values(), key=lambda n: position[id(n)]), consumers)
        if stuck:
            on_cycles = _on_cycles(stuck, consumers)
            raise GraphFormatError(f"the ONNX graph has a cycle through "
                                   f"{', '.join(quoted(_label(n)) for n in on_cycles[:5])}")
        return order

    def graph(self) -> Graph:
        g = Graph(self.n_axes, name=self.onnx_graph.name or "onnx")
        self.refs: dict[str, str] = {self.input: g.input(_safe(self.input))}
        self.layouts: dict[str, Layout] = {self.input: self.input_layout}
        self.axis_sizes: dict[str, dict[int, int]] = {self.input: self._held_sizes(self.input, {})}
        self.guessed: set[str] = set()  # tensors whose rank foveal guessed (see below)
        uses: dict[str, int] = {}
        for node in self.order:
            spatial = [i for i in dict.fromkeys([*node.input, *_outer_reads(node)]) if i in self.refs]
            if not spatial:
                continue
            self.x, self.f = spatial[0], Fields(node)
            try:
                op, layouts = self._convert(node, spatial)
            except LayoutError as err:
                op, layouts = O.unknown(f"{node.op_type} ({err})"), None
            except GraphFormatError as err:
                if self.x not in self.guessed:
                    raise
                # a field that contradicts a guessed rank says nothing about the model
                op, layouts = O.unknown(f"{node.op_type} (after an op foveal cannot follow, its input's rank "
                                        f"is unknown: {err})"), None
            name = self._name(node, g, uses)
            sources = list(dict.fromkeys(self.refs[i] for i in spatial))
            if len(sources) > 1 and not isinstance(op, O.Merge | O.Unknown):
                op = O.unknown(f"{node.op_type} (several spatial inputs)")
            if isinstance(op, list):  # several nodes (a Split along a spatial axis)
                self._add_parts(g, node, op, sources, uses)
                continue
            outputs = list(node.output)
            g.add(name, op, sources, outputs=max(len(outputs), 1), label=_op_label(node))
            for k, out in enumerate(outputs):
                if not out:
                    continue
                self.refs[out] = name if k == 0 else f"{name}:{k}"
                layout = layouts[k] if isinstance(layouts, list) else layouts
                self.layouts[out] = layout if layout is not None else self._kept_layout(out)
                # After an op foveal cannot follow, or after a guess, the output's rank is a guess
                # unless shape inference found it.
                if (isinstance(op, O.Unknown) or self.x in self.guessed) and \
                        len(self.shapes.get(out, ())) != len(self.layouts[out]):
                    self.guessed.add(out)
                self.axis_sizes[out] = self._held_sizes(out, self.axis_sizes[self.x])
        outputs = [split_ref(self.refs[o.name])[0] for o in self.onnx_graph.output if o.name in self.refs]
        if outputs:
            g.set_outputs(*dict.fromkeys(outputs))
        return g

    def _add_parts(self, g: Graph, node: Any, parts: list[O.Op], sources: list[str],
                   uses: dict[str, int]) -> None:
        for out, op in zip(node.output, parts):
            if not out:
                continue
            name = fresh_name(_safe(out), g.nodes, uses)
            g.add(name, op, sources, label=_op_label(node))
            self.refs[out] = name
            self.layouts[out] = self.layouts[self.x]
            self.axis_sizes[out] = self._held_sizes(out, self.axis_sizes[self.x])

    def _kept_layout(self, tensor: str) -> Layout:
        """The input's layout, for an op that keeps it; when the output's rank differs (an
        unsupported reshape), no dimension is known to hold an axis."""
        dims = self.shapes.get(tensor)
        if dims is not None and len(dims) != len(self.layout):
            return (None,) * len(dims)
        return self.layout

    def _name(self, node: Any, g: Graph, uses: dict[str, int]) -> str:
        """The node's name; its first output's when it has none or the name is taken."""
        for candidate in (node.name, node.output[0] if node.output else ""):
            if candidate and _safe(candidate) not in g.nodes:
                return _safe(candidate)
        return fresh_name(_safe(node.name or node.output[0] or node.op_type), g.nodes, uses)

    def _held_sizes(self, tensor: str, inherited: dict[int, int]) -> dict[int, int]:
        """Each axis's length, from the tensor's shape where a dimension holds it alone."""
        dims = self.shapes.get(tensor)
        layout = self.layouts.get(tensor)
        out = dict(inherited)
        if dims is not None and layout is not None and len(dims) == len(layout):
            for axis, n in enumerate(size_of(layout, tuple(d if isinstance(d, int) else 0 for d in dims),
                                              self.n_axes)):
                if n:
                    out[axis] = n
        return out

    # -- reading parameters ------------------------------------------------------------------------
    # Every attribute and input is read through `self.f` (fields.Fields of the node being
    # converted): a malformed field is a GraphFormatError naming the node, its op and the field.
    # Lengths that the tracked rank fixes (one pad pair per dimension, an axis below the rank) are
    # checked against that rank. A valid value foveal does not follow makes the op unsupported.
    @property
    def layout(self) -> Layout:
        return self.layouts[self.x]

    def _dims(self, tensor: str) -> Dims | None:
        return self.consts.dims(tensor)

    def _int_dims(self, tensor: str) -> tuple[int, ...] | None:
        """The tensor's shape when every length is known (and, for a spatial tensor, its rank is
        the one its layout has)."""
        dims = self.shapes.get(tensor)
        if dims is None or not all(isinstance(d, int) for d in dims):
            return None
        layout = self.layouts.get(tensor)
        if layout is not None and len(layout) != len(dims):
            return None
        return tuple(dims)  # type: ignore[arg-type]

    def _no_size(self) -> str:
        """Why a size is unknown, and the fix: no input size, or inference stopped before."""
        if all(isinstance(d, int) for d in self.shapes.get(self.input, ())):
            return "ONNX shape inference stops before this node"
        return "give input_shape"

    def _input(self, node: Any, index: int) -> str:
        return node.input[index] if len(node.input) > index else ""

    def _param(self, node: Any, index: int, attr: str, since: int) -> list[int] | None | str:
        """A list of ints that became input `index` at opset `since` (attribute `attr` before):
        None when absent, 'unknown' when given but not constant."""
        if self.opset < since:
            return self.f.integers(attr, None)
        name = self._input(node, index)
        if not name:
            return None
        values = self.consts.ints(name)
        return "unknown" if values is None else values

    def _given(self, node: Any, index: int) -> bool:
        """The optional input is present and not an empty tensor."""
        name = self._input(node, index)
        if not name:
            return False
        dims = self._dims(name)
        return not (dims is not None and 0 in dims)

    def _window_dims(self) -> list[int] | None:
        """For each graph axis, its index among the op's spatial dims (tensor dim - 2); None when
        the batch or channel dim holds an axis, or a spatial dim holds several."""
        index: list[int | None] = [None] * self.n_axes
        for d, entry in enumerate(self.layout):
            if entry is None:
                continue
            if d < 2 or isinstance(entry, Merged):
                return None
            index[entry] = d - 2
        if any(i is None for i in index):
            return None
        return index  # type: ignore[return-value]

    def _dim_of(self, axis: int) -> int | None:
        for d, entry in enumerate(self.layout):
            if entry == axis:
                return d
        return None

    def _rank(self) -> int:
        return len(self.layout)

    def _axes_mask(self, dims: list[int] | range) -> tuple[bool, ...]:
        held = set(spatial_axes(self.layout, [d for d in dims if 0 <= d < self._rank()]))
        return tuple(a in held for a in range(self.n_axes))

    # -- dispatch ---------------------------------------------------------------------------------
    def _convert(self, node: Any, spatial: list[str]) -> tuple[Any, Any]:
        op = node.op_type
        if node.domain not in DEFAULT_DOMAINS:
            return O.unknown(f"{node.domain}.{op}"), None
        if op in CONTROL_FLOW:
            return O.unknown(f"{op} (control flow: subgraphs are not followed)"), None
        if op in DATA_DEPENDENT:
            return O.unknown(op, data_dependent=True), None
        if op in WINDOW_KINDS:
            return self._window(node), None
        if op == "ConvTranspose":
            return self._transposed(node), None
        handler = self.HANDLERS.get(op)
        if handler is not None:
            return handler(self, node)
        if op in UNARY:
            if self.x in self.shapes:
                self.shapes.setdefault(node.output[0], self.shapes[self.x])
            return O.elementwise(op.lower()), None
        if op in MERGING:
            return self._merging(node, spatial)
        if op in REDUCE:
            return self._reduce(node)
        return O.unknown(op), None

    # -- windows ----------------------------------------------------------------------------------
    def _kernel(self, node: Any) -> list[int] | None:
        """kernel_shape, or the weight's spatial dims; None when neither is known."""
        f = self.f
        kernel = f.integers("kernel_shape", None, minimum=1)
        if kernel is None and node.op_type in WEIGHT_INPUT:
            f.require_inputs(WEIGHT_INPUT[node.op_type] + 1)
            dims = self._dims(self._input(node, WEIGHT_INPUT[node.op_type]))
            if dims is None or len(dims) < 3 or not all(isinstance(d, int) for d in dims):
                return None
            kernel = f.lengths([d for d in dims[2:] if isinstance(d, int)], "the weight's spatial dims")
            if 0 in kernel:
                raise f.fail("the weight's shape", f"{list(dims)} has a spatial length of 0")
        return kernel

    def _window(self, node: Any) -> O.Op:
        f, m = self.f, self._rank() - 2
        index = self._window_dims()
        kernel = self._kernel(node)
        if kernel is None or len(kernel) != m:
            return O.unknown(f"{node.op_type} (kernel shape unknown, or not one entry per spatial dim of "
                             f"its rank-{m + 2} input)")
        strides = f.integers("strides", [1] * m, length=m, minimum=1)
        dilations = f.integers("dilations", [1] * m, length=m, minimum=1)
        pads = f.integers("pads", [0] * 2 * m, length=2 * m, minimum=0)
        auto_pad = f.string("auto_pad", "NOTSET", choices=AUTO_PADS)
        ceil_mode = f.integer("ceil_mode", 0, choices=(0, 1))
        if index is None or not self._trivial(index, m, kernel, strides, dilations, pads):
            return O.unknown(f"{node.op_type} (over dimensions that are not the input's spatial axes)")
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            padding: Any = auto_pad.lower()
        elif auto_pad == "VALID":
            padding = 0
        else:
            padding = tuple((pads[j], pads[j + m]) for j in index)
        ceil = bool(ceil_mode) and auto_pad in ("NOTSET", "")
        pick = lambda values: tuple(values[j] for j in index)  # noqa: E731
        return O.Window(pick(kernel), pick(strides), pick(dilations), padding, ceil,
                        WINDOW_KINDS[node.op_type])

    def _trivial(self, index: list[int], m: int, *per_dim: list[int]) -> bool:
        """Spatial dims of the op that hold no graph axis (a 2-D conv on a 1-D signal with an axis
        of size 1) must have a 1-tap window, stride 1 and no padding there."""
        kernel, strides, dilations, pads = per_dim
        for j in set(range(m)) - set(index):
            if kernel[j] != 1 or strides[j] != 1 or pads[j] or pads[j + m]:
                return False
        return True

    def _transposed(self, node: Any) -> O.Op:
        """ConvTranspose: pads, or pads derived from output_shape or auto_pad per the spec
        (output_shape wins over pads; the odd pixel goes after for SAME_UPPER)."""
        f, m = self.f, self._rank() - 2
        index = self._window_dims()
        kernel = self._kernel(node)
        if kernel is None or len(kernel) != m:
            return O.unknown(f"ConvTranspose (kernel shape unknown, or not one entry per spatial dim of "
                             f"its rank-{m + 2} input)")
        strides = f.integers("strides", [1] * m, length=m, minimum=1)
        dilations = f.integers("dilations", [1] * m, length=m, minimum=1)
        out_pad = f.integers("output_padding", [0] * m, length=m, minimum=0)
        auto_pad = f.string("auto_pad", "NOTSET", choices=AUTO_PADS)
        pads = f.integers("pads", [0] * 2 * m, length=2 * m, minimum=0)
        shape = f.integers("output_shape", None, minimum=1, limit=MAX_AXIS_LENGTH)
        if shape is not None and len(shape) not in (m, m + 2):
            raise f.fail("attribute 'output_shape'", f"has {len(shape)} entries; {m} (or {m + 2}) expected")
        if index is None or not self._trivial(index, m, kernel, strides, dilations, pads) or any(
                out_pad[j] for j in set(range(m)) - set(index)):
            return O.unknown("ConvTranspose (over dimensions that are not the input's spatial axes)")
        sizes = self._int_dims(self.x)
        if shape is not None and sizes is None:
            return O.unknown(f"ConvTranspose (output_shape at an unknown input size: {self._no_size()})")
        padding, extra = [], []
        for j in index:
            k_eff = dilations[j] * (kernel[j] - 1) + 1
            if shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                # the spec's total padding; with SAME and no output_shape it is the same at any size
                n, target = (sizes[j + 2], shape[-m:][j]) if shape and sizes else (1, strides[j])
                total = strides[j] * (n - 1) + out_pad[j] + k_eff - target
                if total < 0:
                    return O.unknown("ConvTranspose (output_shape larger than the transposed "
                                     "convolution's output)")
                small, large = total // 2, total - total // 2
                padding.append((small, large) if auto_pad == "SAME_UPPER" else (large, small))
            elif auto_pad == "VALID":
                padding.append((0, 0))
            else:
                padding.append((pads[j], pads[j + m]))
            extra.append(out_pad[j])
            if out_pad[j] >= max(strides[j], dilations[j]):
                return O.unknown("ConvTranspose (output_padding as large as the stride: outputs that "
                                 "read nothing)")
        pick = lambda values: tuple(values[j] for j in index)  # noqa: E731
        return O.TransposedWindow(pick(kernel), pick(strides), pick(dilations), tuple(padding), tuple(extra))

    def _global_pool(self, node: Any) -> tuple[Any, Any]:
        kind = node.op_type[len("Global"):].lower().replace("pool", "_pool")
        return O.Global(kind, self._axes_mask(range(2, self._rank())), False), None

    # -- reductions and normalisation -------------------------------------------------------------
    def _reduce(self, node: Any) -> tuple[Any, Any]:
        f, rank = self.f, self._rank()
        if self.opset >= AXES_BECAME_INPUT.get(node.op_type, 18):
            axes = self.consts.ints(self._input(node, 1)) if self._input(node, 1) else []
            if axes is None:
                return O.unknown(f"{node.op_type} (axes not constant)"), None
        else:
            axes = f.integers("axes", [])
        keep = f.integer("keepdims", 1, choices=(0, 1))
        if not axes:
            axes = [] if f.integer("noop_with_empty_axes", 0, choices=(0, 1)) else list(range(rank))
        return self._reduced(node, sorted(f.axes(axes, rank)), bool(keep))

    def _reduced(self, node: Any, dims: list[int], keep: bool) -> tuple[Any, Any]:
        mask = self._axes_mask(dims)
        op = O.Global(node.op_type.lower(), mask, False) if any(mask) else O.elementwise(node.op_type.lower())
        return op, self.layout if keep else tuple(e for d, e in enumerate(self.layout) if d not in dims)

    def _arg_reduce(self, node: Any) -> tuple[Any, Any]:
        f = self.f
        axis = f.axis(f.integer("axis", 0), self._rank())
        return self._reduced(node, [axis], bool(f.integer("keepdims", 1, choices=(0, 1))))

    def _normalisation(self, dims: list[int], kind: str) -> tuple[Any, Any]:
        """Statistics over `dims`: every output reads those axes whole (the size is kept)."""
        mask = self._axes_mask(dims)
        return (O.Global(kind, mask, True) if any(mask) else O.elementwise(kind)), None

    def _instance_norm(self, node: Any) -> tuple[Any, Any]:
        return self._normalisation(list(range(2, self._rank())), node.op_type.lower())

    def _layer_norm(self, node: Any) -> tuple[Any, Any]:
        axis = self.f.axis(self.f.integer("axis", -1), self._rank())
        return self._normalisation(list(range(axis, self._rank())), "layer_norm")

    def _mvn(self, node: Any) -> tuple[Any, Any]:
        rank = self._rank()
        axes = self.f.integers("axes", [d for d in (0, 2, 3) if d < rank])
        return self._normalisation(self.f.axes(axes, rank), "mean_variance_norm")

    def _softmax(self, node: Any) -> tuple[Any, Any]:
        """Softmax-like ops: over one axis from opset 13, over every axis from `axis` before."""
        rank = self._rank()
        if node.op_type == "LpNormalization" or self.opset >= 13:
            dims = [self.f.axis(self.f.integer("axis", -1), rank)]
        else:
            dims = list(range(self.f.axis(self.f.integer("axis", 1), rank), rank))
        return self._normalisation(dims, node.op_type.lower())

    def _cumsum(self, node: Any) -> tuple[Any, Any]:
        self.f.require_inputs(2)
        axis = self.consts.ints(self._input(node, 1))
        if axis is None:
            return O.unknown("CumSum (axis not constant)"), None
        if len(axis) != 1:
            raise self.f.fail("input 'axis'", f"has {len(axis)} entries; one expected")
        mask = self._axes_mask([self.f.axis(axis[0], self._rank())])
        if not any(mask):
            return O.elementwise("cumsum"), None
        return O.Global("cumsum", mask, True, "a cumulative sum reads a prefix of the axis, not all "
                        "of it"), None

    # -- element-wise with broadcasting -------------------------------------------------------------
    def _merging(self, node: Any, spatial: list[str]) -> tuple[Any, Any]:
        layout = self._broadcast(node, spatial)
        return (O.add() if len(spatial) > 1 else O.elementwise(node.op_type.lower())), layout

    def _broadcast(self, node: Any, spatial: list[str]) -> Layout:
        out = self.shapes.get(node.output[0])
        ranks = [len(self.layouts[s]) for s in spatial]
        for name in node.input:
            dims = self._dims(name) if name and name not in self.refs else None
            if dims is not None:
                ranks.append(len(dims))
        rank = len(out) if out is not None else max(ranks)
        return broadcast([(self.layouts[s], ()) for s in spatial], rank)

    def _expand(self, node: Any) -> tuple[Any, Any]:
        self.f.require_inputs(2)
        shape = self.consts.ints(self._input(node, 1))
        if shape is None:
            return O.unknown("Expand (shape not constant)"), None
        if len(shape) > MAX_RANK:
            raise LimitError(f"{self.f.where}: input 'shape' has {len(shape)} entries, beyond foveal's limit "
                             f"of {MAX_RANK} dimensions")
        return O.elementwise("expand"), broadcast([(self.layout, ())], max(len(shape), self._rank()))

    def _tile(self, node: Any) -> tuple[Any, Any]:
        self.f.require_inputs(2)
        repeats = self.consts.ints(self._input(node, 1))
        if repeats is None:
            return O.unknown("Tile (repeats not constant)"), None
        if len(repeats) != self._rank():
            raise self.f.fail("input 'repeats'", f"has {len(repeats)} entries; the input has rank "
                              f"{self._rank()}")
        if any(r != 1 for d, r in enumerate(repeats) if self.layout[d] is not None):
            return O.unknown("Tile (along a spatial axis)"), None
        return O.elementwise("tile"), None

    # -- products ---------------------------------------------------------------------------------
    def _gemm(self, node: Any) -> tuple[Any, Any]:
        """Gemm contracts A's dim 1 (0 when transposed); only A may be spatial."""
        self.f.require_inputs(2)
        if node.input[0] != self.x:
            return O.unknown("Gemm (a spatial B or C operand)"), None
        if self._rank() != 2:
            raise self.f.fail("input 'A'", f"has rank {self._rank()}; Gemm takes matrices")
        contracted = 0 if self.f.integer("transA", 0, choices=(0, 1)) else 1
        kept = self.layout[1 - contracted]
        mask = self._axes_mask([contracted])
        op = O.Global("dense", mask, False) if any(mask) else O.elementwise("gemm")
        return op, (kept, None)

    def _matmul(self, node: Any, spatial: list[str]) -> tuple[Any, Any]:
        self.f.require_inputs(2)
        b_name = node.input[1]
        if len(spatial) > 1:
            return O.attention(True), self._broadcast(node, spatial[:1])
        if b_name == self.x:
            return O.unknown("MatMul (the image is the right-hand operand)"), None
        rank = self._rank()
        if rank < 2:
            return O.unknown("MatMul (a vector operand)"), None
        mask = self._axes_mask([rank - 1])
        op = O.Global("matmul", mask, False) if any(mask) else O.elementwise("matmul")
        return op, self.layout[:-1] + (None,)

    # -- layout changes -----------------------------------------------------------------------------
    def _transpose(self, node: Any) -> tuple[Any, Any]:
        rank = self._rank()
        perm = self.f.permutation(self.f.integers("perm", list(range(rank))[::-1]), rank)
        dims = self._int_dims(self.x)
        if dims is not None and node.output[0] not in self.shapes:  # an input ONNX could not infer
            self.shapes[node.output[0]] = tuple(dims[p] for p in perm)
        return O.elementwise("transpose"), tuple(self.layout[p] for p in perm)

    def _reshape(self, node: Any) -> tuple[Any, Any]:
        f = self.f
        before = self._int_dims(self.x)
        after = self._int_dims(node.output[0])
        if after is None and before is not None:
            if self.opset >= 5:
                f.require_inputs(2)
                target = self.consts.ints(self._input(node, 1))
            else:
                target = f.integers("shape", None)
            if target is not None:
                after = reshaped(f, before, target, bool(f.integer("allowzero", 0, choices=(0, 1))))
                if after is None:
                    return O.unknown(f"Reshape (no shape fits target {target} for dims {before})"), None
        if before is None:
            return O.unknown(f"Reshape (shapes unknown: {self._no_size()})"), None
        if after is None:
            return O.unknown("Reshape (target shape not constant)"), None
        if math.prod(before) != math.prod(after) or 0 in before or 0 in after:
            return O.unknown(f"Reshape (of dims {before} to {after}: element counts differ, or are 0)"), None
        self.shapes[node.output[0]] = after  # where ONNX's inference did not find it (Reshape-1)
        return O.elementwise("reshape"), reshape(self.layout, before, after, self._axis_sizes())

    def _axis_sizes(self) -> dict[int, int]:
        """Each axis's length where known (0 where not: a regrouping that needs it is refused)."""
        return defaultdict(int, self.axis_sizes[self.x])

    def _flatten(self, node: Any) -> tuple[Any, Any]:
        rank = self._rank()
        axis = self.f.axis(self.f.integer("axis", 1), rank, extra=1)
        before = self._int_dims(self.x)
        if before is not None and 0 not in before:
            after = (math.prod(before[:axis]), math.prod(before[axis:]))
            return O.elementwise("flatten"), reshape(self.layout, before, after, self._axis_sizes())
        parts = (self.layout[:axis], self.layout[axis:])
        return O.elementwise("flatten"), tuple(_merged(p) for p in parts)

    def _squeeze(self, node: Any) -> tuple[Any, Any]:
        axes = self._param(node, 1, "axes", 13)
        rank = self._rank()
        if isinstance(axes, str):
            return O.unknown("Squeeze (axes not constant)"), None
        if axes is None:
            dims = self._int_dims(self.x)
            if dims is None:
                return O.unknown(f"Squeeze (which dims have size 1 is unknown: {self._no_size()})"), None
            axes = [d for d, n in enumerate(dims) if n == 1]
        drop = set(self.f.axes(axes, rank))
        return O.elementwise("squeeze"), tuple(e for d, e in enumerate(self.layout) if d not in drop)

    def _unsqueeze(self, node: Any) -> tuple[Any, Any]:
        axes = self._param(node, 1, "axes", 13)
        if axes is None:
            raise self.f.fail("axes", "are required but missing")
        if isinstance(axes, str):
            return O.unknown("Unsqueeze (axes not constant)"), None
        rank = self._rank() + len(axes)
        if rank > MAX_RANK:
            raise LimitError(f"{self.f.where}: the output would have rank {rank}, beyond foveal's limit "
                             f"of {MAX_RANK}")
        new = set(self.f.axes(axes, self._rank(), extra=len(axes)))
        rest = iter(self.layout)
        return O.elementwise("unsqueeze"), tuple(None if d in new else next(rest) for d in range(rank))

    def _gather(self, node: Any) -> tuple[Any, Any]:
        self.f.require_inputs(2)
        axis = self.f.axis(self.f.integer("axis", 0), self._rank())
        if node.input[0] != self.x or self.layout[axis] is not None:
            return O.unknown("Gather (along a spatial axis, or with spatial indices)"), None
        indices = self._dims(self._input(node, 1))
        if indices is None:
            return O.unknown("Gather (indices of unknown rank)"), None
        if self._rank() - 1 + len(indices) > MAX_RANK:
            raise LimitError(f"{self.f.where}: the output's rank is beyond foveal's limit of {MAX_RANK}")
        layout = self.layout[:axis] + (None,) * len(indices) + self.layout[axis + 1:]
        return O.elementwise("gather"), layout

    # -- crops, pads, shuffles ------------------------------------------------------------------------
    def _pad(self, node: Any) -> tuple[Any, Any]:
        f, rank = self.f, self._rank()
        if self.opset < 11:
            pads = f.integers("pads" if f.has("pads") or self.opset >= 2 else "paddings", None)
            if pads is None:
                raise f.fail("attribute 'pads'", "is required but missing")
        else:
            f.require_inputs(2)
            pads = self.consts.ints(self._input(node, 1))
        if pads is None:
            return O.unknown("Pad (pads not constant)"), None
        axes: Any = self._input(node, 3) if self.opset >= 18 else ""
        if axes:
            axes = self.consts.ints(axes)
            if axes is None:
                return O.unknown("Pad (axes not constant)"), None
        axes = f.axes(axes, rank) if axes else list(range(rank))
        k = len(axes)
        if len(pads) != 2 * k:
            raise f.fail("pads", f"has {len(pads)} entries; {2 * k} expected (two per padded dimension)")
        for p in pads:
            bounded(p, f"{f.where}: pads")
        mode = PAD_MODES[f.string("mode", "constant", choices=PAD_MODES)]
        before, after = [0] * self.n_axes, [0] * self.n_axes
        for i, d in enumerate(axes):
            entry = self.layout[d]
            if entry is None:
                continue
            if not isinstance(entry, int):
                return O.unknown("Pad (of a dimension holding several spatial axes)"), None
            before[entry], after[entry] = pads[i], pads[i + k]
        return O.pad(tuple(before), tuple(after), mode), None

    def _slice(self, node: Any) -> tuple[Any, Any]:
        f, rank = self.f, self._rank()
        if self.opset < 10:
            starts, ends = f.integers("starts", limit=2**63), f.integers("ends", limit=2**63)
            axes, steps = f.integers("axes", None), None
        else:
            f.require_inputs(3)
            starts, ends = self.consts.ints(self._input(node, 1)), self.consts.ints(self._input(node, 2))
            axes = self.consts.ints(self._input(node, 3)) if self._input(node, 3) else None
            steps = self.consts.ints(self._input(node, 4)) if self._input(node, 4) else None
            if (self._input(node, 3) and axes is None) or (self._input(node, 4) and steps is None):
                starts = None
        if starts is None or ends is None:
            return O.unknown("Slice (bounds not constant)"), None
        axes, steps = f.slice_axes(starts, ends, axes, steps, rank)
        start, stop, step = [0] * self.n_axes, [None] * self.n_axes, [1] * self.n_axes
        top = MAX_AXIS_LENGTH  # no axis is longer: bounds beyond it clamp to the same slice
        for axis, b, e, s in zip(axes, starts, ends, steps):
            entry = self.layout[axis]
            if entry is None:
                continue
            if not isinstance(entry, int):
                return O.unknown("Slice (of a dimension holding several spatial axes)"), None
            if s < 1:
                return O.unknown("Slice (a negative step along a spatial axis: a flip)"), None
            start[entry], step[entry] = max(-top, min(b, top)), min(s, top)
            stop[entry] = None if e >= top else max(-top, e)
        return O.crop(tuple(start), tuple(stop), tuple(step)), None

    def _split(self, node: Any) -> tuple[Any, Any]:
        f, rank = self.f, self._rank()
        axis = f.axis(f.integer("axis", 0), rank)
        entry = self.layout[axis]
        if entry is None:
            return O.elementwise("split"), None
        if not isinstance(entry, int):
            return O.unknown("Split (of a dimension holding several spatial axes)"), None
        parts = self._param(node, 1, "split", 13)
        if isinstance(parts, str):
            return O.unknown("Split (sizes not constant)"), None
        dims = self._int_dims(self.x)
        if parts is None:
            count = f.integer("num_outputs", len(node.output), minimum=1)
            if count != len(node.output):
                raise f.fail("attribute 'num_outputs'", f"is {count}, but the node has {len(node.output)} "
                             f"outputs")
            if dims is None:
                return O.unknown(f"Split (along a spatial axis at an unknown size: {self._no_size()})"), None
            size = -(-dims[axis] // count)
            parts = [max(0, min(size, dims[axis] - i * size)) for i in range(count)]
        parts = f.lengths(parts, "split")
        if len(parts) != len(node.output):
            raise f.fail("split", f"has {len(parts)} entries, but the node has {len(node.output)} outputs")
        crops, at = [], 0
        for n in parts:
            start, stop = [0] * self.n_axes, [None] * self.n_axes  # type: list[int], list[int | None]
            start[entry], stop[entry] = min(at, MAX_AXIS_LENGTH), min(at + n, MAX_AXIS_LENGTH)
            crops.append(O.crop(tuple(start), tuple(stop)))
            at += n
        return crops, None

    def _concat(self, node: Any, spatial: list[str]) -> tuple[Any, Any]:
        axis = self.f.axis(self.f.integer("axis", 1 if self.opset < 4 else Fields.REQUIRED), self._rank())
        if self.layout[axis] is not None:
            return O.unknown("Concat (along a spatial axis)"), None
        return (O.concat() if len(spatial) > 1 else O.elementwise("concat")), None

    def _space_depth(self, node: Any) -> tuple[Any, Any]:
        index = self._window_dims()
        block = self.f.integer("blocksize", minimum=1)
        if index is None or len(index) != self._rank() - 2:
            return O.unknown(f"{node.op_type} (on dimensions that are not the input's spatial axes)"), None
        return (O.pixel_shuffle(block) if node.op_type == "DepthToSpace" else O.pixel_unshuffle(block)), None

    # -- resizing ---------------------------------------------------------------------------------
    def _resize(self, node: Any) -> tuple[Any, Any]:
        from .resize import resize_op

        return resize_op(self, node), None

    HANDLERS: dict[str, Callable[..., tuple[Any, Any]]] = {}


Converter.HANDLERS.update({
    "GlobalAveragePool": Converter._global_pool, "GlobalMaxPool": Converter._global_pool,
    "GlobalLpPool": Converter._global_pool, "ArgMax": Converter._arg_reduce, "ArgMin": Converter._arg_reduce,
    "InstanceNormalization": Converter._instance_norm, "GroupNormalization": Converter._instance_norm,
    "LayerNormalization": Converter._layer_norm, "MeanVarianceNormalization": Converter._mvn,
    "Softmax": Converter._softmax, "LogSoftmax": Converter._softmax, "Hardmax": Converter._softmax,
    "LpNormalization": Converter._softmax, "CumSum": Converter._cumsum, "Expand": Converter._expand,
    "Tile": Converter._tile, "Gemm": Converter._gemm, "Transpose": Converter._transpose,
    "Reshape": Converter._reshape, "Flatten": Converter._flatten, "Squeeze": Converter._squeeze,
    "Unsqueeze": Converter._unsqueeze, "Gather": Converter._gather, "Pad": Converter._pad,
    "Slice": Converter._slice, "Split": Converter._split, "DepthToSpace": Converter._space_depth,
    "SpaceToDepth": Converter._space_depth, "Resize": Converter._resize, "Upsample": Converter._resize,
    "MatMul": lambda c, n: c._matmul(n, [i for i in dict.fromkeys(n.input) if i in c.refs]),
    "MatMulInteger": lambda c, n: c._matmul(n, [i for i in dict.fromkeys(n.input) if i in c.refs]),
    "Concat": lambda c, n: c._concat(n, [i for i in dict.fromkeys(n.input) if i in c.refs]),
})


def _in_order(nodes: list[Any], consumers: dict[str, list[Any]]) -> tuple[list[Any], dict[int, Any]]:
    """`nodes` in topological order (Kahn's algorithm, ties in the given order), and those it
    could not order (on or after a cycle), by id. Edges from nodes outside `nodes` are ignored;
    a node with subgraphs depends on what they read from the outer scope."""
    position = {id(n): i for i, n in enumerate(nodes)}
    made = {out for n in nodes for out in n.output if out}
    indegree = {id(n): sum(1 for i in dict.fromkeys([*n.input, *_outer_reads(n)]) if i in made)
                for n in nodes}
    queue, order = deque(n for n in nodes if indegree[id(n)] == 0), []
    while queue:
        node = queue.popleft()
        order.append(node)
        fresh = []
        for out in node.output:
            for c in consumers.get(out, ()) if out else ():
                if id(c) in indegree:
                    indegree[id(c)] -= 1
                    if indegree[id(c)] == 0:
                        fresh.append(c)
        queue.extend(sorted(fresh, key=lambda n: position[id(n)]))
    stuck = {id(n): n for n in nodes if indegree[id(n)] > 0}
    return order, stuck


def _on_cycles(stuck: dict[int, Any], consumers: dict[str, list[Any]]) -> list[Any]:
    """The nodes Kahn's algorithm could not order, less those that only follow a cycle: drop,
    until none is left, every node that feeds no other stuck node (Kahn's algorithm backwards,
    in time linear in the edges)."""
    feeds = {k: {id(c) for out in n.output if out for c in consumers.get(out, ()) if id(c) in stuck}
             for k, n in stuck.items()}
    fed_by: dict[int, list[int]] = {k: [] for k in stuck}
    for k, targets in feeds.items():
        for t in targets:
            fed_by[t].append(k)
    left = {k: len(t) for k, t in feeds.items()}
    ends = [k for k, n in left.items() if n == 0]
    while ends:
        k = ends.pop()
        del left[k]
        for source in fed_by[k]:
            if source in left:
                left[source] -= 1
                if left[source] == 0:
                    ends.append(source)
    return [stuck[k] for k in stuck if k in left]


def _outer_reads(node: Any) -> list[str]:
    """Tensors a node's subgraphs read without defining them."""
    names: list[str] = []
    for attr in node.attribute:
        for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
            defined = {i.name for i in sub.input} | {t.name for t in sub.initializer}
            for inner in sub.node:
                names.extend(i for i in [*inner.input, *_outer_reads(inner)] if i and i not in defined)
                defined.update(inner.output)
    return names


def _merged(entries: Layout) -> Any:
    axes = spatial_axes(entries)
    if not axes:
        return None
    if len(entries) == 1:
        return entries[0]
    return Merged(axes, 0, False)


def _rank_of(shape: Any, default: int) -> int:
    if shape is None or isinstance(shape, (int, Mapping)):
        return default
    n = len(tuple(shape))
    return n if n >= 3 else n + 2


def _safe(name: str) -> str:
    """foveal reads 'name:k' as output k of a node: TensorFlow-style tensor names ('x:0') get '_k'."""
    base, slot = split_ref(name)
    return name if base == name else f"{base}_{slot}"


_label = node_label


def _op_label(node: Any) -> str:
    return node.op_type if node.domain in DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"
