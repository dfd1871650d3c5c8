"""An ONNX graph as a foveal Graph: the walk, node by node in topological order.

A tensor is spatial when the image input reaches it through node inputs; Shape and Size read
only shapes, so what is computed from them (reshape targets, resize sizes) is folded as a
constant instead. Each spatial tensor carries a layout (foveal.layout): which of its dimensions
holds which image axis, followed through Transpose, Reshape, Flatten, Squeeze and Unsqueeze, so
a Conv after an NHWC->NCHW Transpose reads the right axes. Each node's op comes from the op
table (handlers.py), looked up by op type ("domain::OpType" outside ONNX's own domains).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from .. import ops as O
from ..building import GraphBuilder
from ..errors import FovealError, GraphFormatError, UnknownNodeError, quoted
from ..graph import Graph, split_ref
from ..input_spec import NOTHING, Form, Given, InputRequest, InputSpec
from ..layout import Layout, LayoutError, lengths, size_of
from ..limits import LimitError
from .context import Chain, Context, Link
from .fields import MAX_RANK, Fields, node_label
from .fold import Constants
from .handlers import MERGING, UNARY, key_of, with_handlers
from .load import DEFAULT_DOMAINS, Dims, ai_onnx_opset, infer_shapes, value_dims
from .order import consumers_of, in_order, on_cycles, reads

SHAPE_ONLY = frozenset(["Shape", "Size"])
"""Ops that read only their input's shape: the image does not reach what they compute."""


class Converter(Context):
    """Builds the foveal Graph in topological order; `spatial_size` is the size to analyse at.

    input_shape: the caller's, resolved against the input's layout (`input_form`);
    handlers: the call's extra op-table entries (`handlers.with_handlers`)."""

    def __init__(self, model: Any, input_name: str | None = None, input_shape: InputRequest = NOTHING,
                 handlers: Mapping[Any, Any] | None = None) -> None:
        g = model.graph
        self.onnx_graph = g
        self.table = with_handlers(handlers)
        self.producers = {out: node for node in g.node for out in node.output if out}
        self.consumers = consumers_of(g.node)
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
        name = picked[0].name
        spec = input_shape.one if input_shape.by_name is None else input_shape.by_name.get(name)
        declared = value_dims(picked[0])
        rank = len(declared) if declared is not None else _rank_of(spec)
        if rank < 3:
            raise FovealError(f"input {quoted(name)} has rank {rank}; foveal needs a batch, a channel "
                              f"and at least one spatial dimension")
        if rank > MAX_RANK:
            raise LimitError(f"input {quoted(name)} has rank {rank}, beyond foveal's limit of {MAX_RANK}")
        super().__init__(ai_onnx_opset(model), rank - 2, name)
        self.input_layout = self._input_layout(rank)
        self.input_form = _form_of(self.input_layout)
        """The input's layout as foveal.input_spec names it; None for an unusual Transpose."""
        self.spatial_size, dims = self._sizes(declared, rank, spec)
        self.order = self._spatial_nodes()
        spatial = {out for node in self.order for out in node.output} | {self.input}
        self.consts = Constants(g, self.producers, self.shapes, spatial, self.opset)
        every, _ = in_order(list(g.node))  # nodes on a cycle: not inferred
        infer_shapes(model, self.input, dims, every, self._constant_for_inference, self.shapes)
        self.shapes.setdefault(self.input, dims)
        self.builder = GraphBuilder(self.n_axes, name=g.name or "onnx")

    @property
    def unhandled(self) -> Counter[str]:
        """Op-table keys met without a handler, with their counts (each became an unknown op)."""
        return self.builder.unhandled

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
        while todo:
            tensor = todo.popleft()
            for node in self.consumers.get(tensor, ()):
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

    def _sizes(self, declared: Dims | None, rank: int, spec: InputSpec | None) -> tuple[Any, Dims]:
        """The spatial size to analyse at, and the full input shape for shape inference (an unknown
        batch becomes 1, so batch arithmetic folds). A full `spec` is read in the input's layout,
        its channel count checked against the declared one."""
        full: list[int | str | None] = list(declared) if declared is not None else [None] * rank
        if full and not isinstance(full[0], int):
            full[0] = 1
        held = [self.input_layout.index(axis) for axis in range(self.n_axes)]  # the dim of each axis
        if spec is None:
            spatial = tuple(full[d] for d in held)
            return (spatial if all(isinstance(s, int) for s in spatial) else None), tuple(full)
        form, what = self.input_form, "the ONNX model"
        whole = len(spec.sizes) == rank and not spec.one_for_all and spec.given is not Given.SPATIAL
        if whole and form is None:  # an input that an unusual Transpose reads: its dims as it says
            full = list(spec.full(what))
            return tuple(full[d] for d in held), tuple(full)  # type: ignore[misc]
        channels = None
        if form is not None and declared is not None:
            channels = declared[form.channel_dim(rank)]  # type: ignore[index]
        sizes = spec.spatial(self.n_axes, form or Form.CHANNELS_FIRST,
                             channels if isinstance(channels, int) else None, what)
        if whole:
            full = list(spec.sizes)
        for d, n in zip(held, sizes):
            full[d] = n
        return sizes, tuple(full)

    # -- graph walk -----------------------------------------------------------------------------
    def _spatial_nodes(self) -> list[Any]:
        """Nodes the input reaches, in topological order (ties in file order)."""
        reached: dict[int, Any] = {}
        stack = [self.input]
        while stack:
            for node in self.consumers.get(stack.pop(), ()):
                if id(node) not in reached and node.op_type not in SHAPE_ONLY:
                    reached[id(node)] = node
                    stack.extend(o for o in node.output if o)
        position = {id(n): i for i, n in enumerate(self.onnx_graph.node)}
        order, stuck = in_order(sorted(reached.values(), key=lambda n: position[id(n)]))
        if stuck:
            cycle = on_cycles(stuck, self.consumers)
            raise GraphFormatError(f"the ONNX graph has a cycle through "
                                   f"{', '.join(quoted(node_label(n)) for n in cycle[:5])}")
        return order

    def graph(self) -> Graph:
        """The foveal Graph (built on the first call)."""
        builder = self.builder
        if builder.graph.nodes:
            return builder.graph
        self.layouts = {self.input: self.input_layout}
        self.axis_sizes = {self.input: self._held_sizes(self.input, {})}
        sizes = tuple(self.axis_sizes[self.input].get(a) for a in range(self.n_axes))
        self.refs = {self.input: builder.input(_safe(self.input), sizes)}
        self.guessed: set[str] = set()  # tensors whose rank foveal guessed (see below)
        for node in self.order:
            spatial = [i for i in reads(node) if i in self.refs]
            if not spatial:
                continue
            self.x, self.f, self.spatial = spatial[0], Fields(node), spatial
            try:
                op, layouts = self._convert(node)
            except LayoutError as err:
                op, layouts = O.unknown(f"{node.op_type} ({err})"), None
            except GraphFormatError as err:
                if self.x not in self.guessed:
                    raise
                # a field that contradicts a guessed rank says nothing about the model
                op, layouts = O.unknown(f"{node.op_type} (after an op foveal cannot follow, its input's rank "
                                        f"is unknown: {err})"), None
            if isinstance(op, Chain) or (isinstance(op, list) and any(isinstance(p, Chain) for p in op)):
                self._add_chains(node, op if isinstance(op, list) else [op])
                continue
            sources = list(dict.fromkeys(self.refs[i] for i in spatial))
            if len(sources) > 1 and not isinstance(op, O.Merge | O.Unknown):
                op = O.unknown(f"{node.op_type} (several spatial inputs)")
            if isinstance(op, list):  # several nodes (a Split along a spatial axis)
                self._add_parts(node, op, sources)
                continue
            name, outputs = self._name(node), list(node.output)
            builder.graph.add(name, op, sources, outputs=max(len(outputs), 1), label=_op_label(node))
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
            builder.graph.set_outputs(*dict.fromkeys(outputs))
        return builder.graph

    def _convert(self, node: Any) -> tuple[Any, Any]:
        """The node's op and output layout(s), from the op table; an op without a handler is an
        unknown op, counted in `unhandled`."""
        key = key_of(node)
        handler = self.table.get(key)
        if handler is None:
            self.builder.unhandled[key] += 1
            return O.unknown(_op_label(node)), None
        return handler(self, node)

    def _add_parts(self, node: Any, parts: list[O.Op], sources: list[str]) -> None:
        for out, op in zip(node.output, parts):
            if not out:
                continue
            name = self.builder.fresh(_safe(out))
            self.builder.graph.add(name, op, sources, label=_op_label(node))
            self.refs[out] = name
            self.layouts[out] = self.layouts[self.x]
            self.axis_sizes[out] = self._held_sizes(out, self.axis_sizes[self.x])

    def _add_chains(self, node: Any, chains: list[Any]) -> None:
        """Each output's chain (`context.Chain`; a plain op reads the node's spatial inputs and
        keeps the layout): its links as nodes, the last one named after the node (after the
        output's tensor when the node has several outputs)."""
        several = len(node.output) > 1
        for out, chain in zip(node.output, chains):
            if not out:
                continue
            if not isinstance(chain, Chain):
                chain = Chain((Link(chain, tuple(self.spatial), ""),), self.layout)
            if not chain.links:
                if chain.same is not None:  # the same positions under a new layout
                    self.refs[out] = self.refs[chain.same]
                    self._record(out, chain.layout)
                continue  # reads no input pixel: a constant for what follows
            base = self.builder.fresh(_safe(out)) if several else self._name(node)
            names: list[str] = []
            for k, link in enumerate(chain.links):
                sources = list(dict.fromkeys(self.refs[r] if isinstance(r, str) else names[r]
                                             for r in link.reads))
                if len(sources) > 1 and not isinstance(link.op, O.Merge | O.Unknown):
                    raise FovealError(f"internal: {link.op!r} given several inputs at {base!r}")
                name = base if k == len(chain.links) - 1 else self.builder.fresh(f"{base}/{link.name}")
                self.builder.graph.add(name, link.op, sources, label=_op_label(node))
                names.append(name)
            self.refs[out] = names[-1]
            self._record(out, chain.layout)

    def _record(self, out: str, layout: Layout) -> None:
        """A spatial output's layout and axis lengths (a chain's, whose rank shape inference
        may not know after a guess)."""
        self.layouts[out] = layout
        if self.x in self.guessed and len(self.shapes.get(out, ())) != len(layout):
            self.guessed.add(out)
        self.axis_sizes[out] = self._held_sizes(out, self.axis_sizes[self.x])

    def _kept_layout(self, tensor: str) -> Layout:
        """The input's layout, for an op that keeps it; when the output's rank differs (an
        unsupported reshape), no dimension is known to hold an axis."""
        dims = self.shapes.get(tensor)
        if dims is not None and len(dims) != len(self.layout):
            return (None,) * len(dims)
        return self.layout

    def _name(self, node: Any) -> str:
        """The node's name; its first output's when it has none or the name is taken."""
        taken = self.builder.graph.nodes
        for candidate in (node.name, node.output[0] if node.output else ""):
            if candidate and _safe(candidate) not in taken:
                return _safe(candidate)
        return self.builder.fresh(_safe(node.name or node.output[0] or node.op_type))

    def _held_sizes(self, tensor: str, inherited: dict[int, int]) -> dict[int, int]:
        """Each axis's length, from the tensor's shape where a dimension holds it alone (or its
        pieces, split into blocks, make it up)."""
        dims = self.shapes.get(tensor)
        layout = self.layouts.get(tensor)
        out = dict(inherited)
        if dims is not None and layout is not None and len(dims) == len(layout):
            for axis, n in enumerate(size_of(layout, tuple(d if isinstance(d, int) else 0 for d in dims),
                                              self.n_axes)):
                if n:
                    out[axis] = n
            if all(isinstance(d, int) for d in dims):
                held = lengths(layout, tuple(dims), self.n_axes)  # type: ignore[arg-type]
                out.update((a, n) for a, n in held.items() if n != 1)
        return out


def _form_of(layout: Layout) -> Form | None:
    """NCHW is channels first, the NHWC that tf2onnx transposes is channels last."""
    n_axes = len(layout) - 2
    if layout == (None, None, *range(n_axes)):
        return Form.CHANNELS_FIRST
    if layout == (None, *range(n_axes), None):
        return Form.CHANNELS_LAST
    return None


def _rank_of(spec: InputSpec | None) -> int:
    """The input's rank when the model does not declare it: 4 (an image) unless the caller's
    shape says otherwise."""
    if spec is None or spec.one_for_all:
        return 4
    n = len(spec.sizes)
    if spec.given is Given.FULL or (spec.given is Given.EITHER and n >= 3):
        return n
    return n + 2


def _safe(name: str) -> str:
    """foveal reads 'name:k' as output k of a node: TensorFlow-style tensor names ('x:0') get '_k'."""
    base, slot = split_ref(name)
    return name if base == name else f"{base}_{slot}"


def _op_label(node: Any) -> str:
    """How the graph labels an ONNX op: its type, after 'domain.' outside ONNX's own domains."""
    return node.op_type if node.domain in DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"
