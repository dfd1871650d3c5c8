"""What an ONNX op handler may read: the node being converted and the tensors around it.

The walk (`convert.Converter`) sets `f`, `x` and `spatial` before it calls a node's handler;
the rest is the model's state so far: folded constants, inferred shapes and each spatial
tensor's layout (which dimension holds which image axis, `foveal.layout`). ONNX ops are NCHW:
their spatial dimensions are 2, 3, ... of the tensor, wherever the layout puts the image's axes.

Every attribute and input is read through `f` (fields.Fields of the node): a malformed field is
a GraphFormatError naming the node, its op and the field. Lengths that the tracked rank fixes
(one pad pair per dimension, an axis below the rank) are checked against that rank. A valid
value foveal does not follow makes the op unsupported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import mixing
from .. import ops as O
from ..building import GraphBuilder
from ..layout import Layout, LayoutError, lengths, mask, spatial_axes
from .fields import Fields
from .fold import Constants
from .load import Dims


@dataclass(frozen=True)
class Link:
    """One foveal node of a `Chain`: `op` reading `reads`, each a spatial tensor of the ONNX node
    (by name) or an earlier link (by index); `name` names an intermediate node
    (`<node>/<name>`)."""

    op: O.Op
    reads: tuple[str | int, ...]
    name: str


@dataclass(frozen=True)
class Chain:
    """One output of an ONNX node that is not one foveal op of its inputs: the links in order,
    the last one named after the node (or, for one of several outputs, after the tensor), and the
    output's layout. No links: the output is tensor `same`'s node under a new layout (a selection
    of the grid tokens), or reads no input pixel at all (`same` None: extra tokens before
    attention)."""

    links: tuple[Link, ...]
    layout: Layout
    same: str | None = None


def mixed_chain(tensor: str, found: mixing.Mixing) -> Chain:
    """A core mixing (`foveal.mixing`) of one tensor as a chain."""
    links = tuple(Link(s.op, (tensor,) if k == 0 else (k - 1,), s.name) for k, s in enumerate(found.steps))
    return Chain(links, found.layout)


def product_chain(tensors: Sequence[str], product: mixing.Product) -> Chain:
    """A core op over several operands (`foveal.mixing.Product`) as a chain: each part's mixing
    (`<part>_<step>` nodes, the part's last one `<part>`), then the op."""
    links: list[Link] = []
    reads: list[str | int] = []
    for part in product.parts:
        tensor = tensors[part.index]
        if part.mixing is None:
            reads.append(tensor)
            continue
        steps = part.mixing.steps
        for k, s in enumerate(steps):
            name = part.name if k == len(steps) - 1 else f"{part.name}_{s.name}"
            links.append(Link(s.op, (tensor,) if k == 0 else (len(links) - 1,), name))
        reads.append(len(links) - 1)
    links.append(Link(product.op, tuple(reads), ""))
    return Chain(tuple(links), product.layout)


class Context:
    """The model's state during the walk, and the node being converted (`f`, `x`, `spatial`)."""

    def __init__(self, opset: int, n_axes: int, input_name: str) -> None:
        self.opset = opset
        self.n_axes = n_axes
        self.input = input_name
        """The image input's tensor name."""
        self.shapes: dict[str, Dims] = {}
        """Each tensor's shape from ONNX's inference; a handler may add one it computed (Reshape-1)."""
        self.consts: Constants
        self.layouts: dict[str, Layout] = {}
        """Each spatial tensor's layout."""
        self.axis_sizes: dict[str, dict[int, int]] = {}
        """Each spatial tensor's known axis lengths, by axis."""
        self.refs: dict[str, str] = {}
        """Each spatial tensor's foveal node (`name` or `name:k` for output k)."""
        self.f: Fields
        self.x = ""
        """The node's first spatial input."""
        self.spatial: list[str] = []
        """The node's spatial inputs (those its subgraphs read included), each once."""
        self.producers: dict[str, Any]
        """Each tensor's producing NodeProto (an idiom spread over several nodes: a roll)."""
        self.builder: GraphBuilder
        """The foveal graph built so far (what a tensor reads: `tokens.reads_everything`)."""

    @property
    def layout(self) -> Layout:
        """The first spatial input's layout."""
        return self.layouts[self.x]

    @property
    def rank(self) -> int:
        return len(self.layout)

    def spatial_inputs(self, node: Any) -> list[str]:
        """The node's own inputs that are spatial, each once."""
        return [i for i in dict.fromkeys(node.input) if i in self.refs]

    def dims(self, tensor: str) -> Dims | None:
        return self.consts.dims(tensor)

    def int_dims(self, tensor: str) -> tuple[int, ...] | None:
        """The tensor's shape when every length is known (and, for a spatial tensor, its rank is
        the one its layout has)."""
        dims = self.shapes.get(tensor)
        if dims is None or not all(isinstance(d, int) for d in dims):
            return None
        layout = self.layouts.get(tensor)
        if layout is not None and len(layout) != len(dims):
            return None
        return tuple(dims)  # type: ignore[arg-type]

    def no_size(self) -> str:
        """Why a size is unknown, and the fix: no input size, or inference stopped before."""
        if all(isinstance(d, int) for d in self.shapes.get(self.input, ())):
            return "ONNX shape inference stops before this node"
        return "give input_shape"

    def param(self, index: int, attr: str, since: int) -> list[int] | None | str:
        """A list of ints that became input `index` at opset `since` (attribute `attr` before):
        None when absent, 'unknown' when given but not constant."""
        if self.opset < since:
            return self.f.integers(attr, None)
        name = self.f.input(index)
        if not name:
            return None
        values = self.consts.ints(name)
        return "unknown" if values is None else values

    def given(self, index: int) -> bool:
        """The optional input is present and not an empty tensor."""
        name = self.f.input(index)
        if not name:
            return False
        dims = self.dims(name)
        return not (dims is not None and 0 in dims)

    def window_dims(self) -> list[int] | None:
        """For each graph axis, its index among the op's spatial dims (tensor dim - 2); None when
        the batch or channel dim holds an axis, or a spatial dim holds several."""
        index: list[int | None] = [None] * self.n_axes
        for d, entry in enumerate(self.layout):
            if entry is None:
                continue
            if d < 2 or not isinstance(entry, int):  # a merged or split axis: no window dim
                return None
            index[entry] = d - 2
        if any(i is None for i in index):
            return None
        return index  # type: ignore[return-value]

    def dim_of(self, axis: int) -> int | None:
        """The dimension of the first spatial input that holds `axis` alone."""
        for d, entry in enumerate(self.layout):
            if entry == axis:
                return d
        return None

    def axes_mask(self, dims: list[int] | range) -> tuple[bool, ...]:
        """Per graph axis: whether one of the dims holds it, for an op that reads those axes
        whole; a LayoutError when one holds part of an axis split into blocks (`mixing` follows
        those)."""
        picked = [d for d in dims if 0 <= d < self.rank]
        if any(mixing.in_blocks(self.layout[d]) for d in picked):
            raise LayoutError("an op reads a dimension holding part of a spatial axis split into "
                              "blocks whole")
        return mask(spatial_axes(self.layout, picked), self.n_axes)

    def axis_lengths(self) -> dict[int, int]:
        """Each axis's length where known (0 where not: a regrouping that needs it is refused);
        an axis split into blocks has the product of its pieces' counts."""
        out = defaultdict(int, self.axis_sizes[self.x])
        dims = self.int_dims(self.x)
        if dims is not None:
            out.update((a, n) for a, n in lengths(self.layout, dims, self.n_axes).items() if n != 1)
        return out

    def operand(self, tensor: str) -> mixing.Operand | None:
        """A tensor an op reads, for `foveal.mixing`: a spatial one with its layout, a constant
        (reading no pixel) as a tensor of no axes; None when a constant's rank is unknown."""
        if tensor in self.refs:
            return mixing.Operand(self.layouts[tensor], self.int_dims(tensor), tensor)
        dims = self.dims(tensor)
        if dims is None:
            return None
        known = tuple(d for d in dims if isinstance(d, int))
        return mixing.Operand((None,) * len(dims), known if len(known) == len(dims) else None, None)

    def mixed(self, dims: Sequence[int], kind: str, keep_size: bool, layout: Layout) -> Chain:
        """`foveal.mixing.mix_over` on the node's first spatial input, as a chain."""
        found = mixing.mix_over(self.layout, self.int_dims(self.x), dims, kind, keep_size, layout,
                                self.n_axes)
        return mixed_chain(self.x, found)
