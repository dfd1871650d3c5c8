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
from typing import Any

from ..layout import Layout, mask, spatial_axes
from .fields import Fields
from .fold import Constants
from .load import Dims


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
        """Per graph axis: whether one of the dims holds it."""
        return mask(spatial_axes(self.layout, [d for d in dims if 0 <= d < self.rank]), self.n_axes)

    def axis_lengths(self) -> dict[int, int]:
        """Each axis's length where known (0 where not: a regrouping that needs it is refused)."""
        return defaultdict(int, self.axis_sizes[self.x])
