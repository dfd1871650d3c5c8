"""Values of the tensors an op's parameters come from (pads, scales, sizes, axes, slice bounds,
reshape targets), folded from initializers and Constant nodes through the shape arithmetic
exporters write (Shape, Gather, Concat, Cast, Unsqueeze, Transpose, arithmetic...). Shapes come from shape
inference, so `Shape(x)` folds once the input size is known. Nothing else is evaluated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .load import Dims

BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Max": np.maximum, "Min": np.minimum,
    "Equal": np.equal, "Less": np.less, "Greater": np.greater, "LessOrEqual": np.less_equal,
    "GreaterOrEqual": np.greater_equal, "And": np.logical_and, "Or": np.logical_or, "Pow": np.power,
}
UNARY: dict[str, Callable[[Any], Any]] = {
    "Neg": np.negative, "Abs": np.abs, "Floor": np.floor, "Ceil": np.ceil, "Round": np.round,
    "Sqrt": np.sqrt, "Not": np.logical_not, "Identity": lambda x: x, "Reciprocal": np.reciprocal,
}
MAX_ELEMENTS = 4096
"""Larger tensors are data, not parameters: they are never folded."""


class Constants:
    """Folds tensors on demand; `value(name)` is a numpy array or None (not constant)."""

    def __init__(self, graph: Any, producers: dict[str, Any], shapes: dict[str, Dims],
                 spatial: set[str]) -> None:
        self.initializers = {t.name: t for t in graph.initializer}
        self.producers, self.shapes, self.spatial = producers, shapes, spatial
        self.memo: dict[str, Any] = {}

    def value(self, name: str) -> Any:
        if not name:
            return None
        if name not in self.memo:
            self.memo[name] = None  # a cycle through constants folds to nothing
            self.memo[name] = self._fold(name)
        return self.memo[name]

    def ints(self, name: str) -> list[int] | None:
        v = self.value(name)
        return None if v is None else [int(x) for x in np.asarray(v).reshape(-1)]

    def floats(self, name: str) -> list[float] | None:
        v = self.value(name)
        return None if v is None else [float(x) for x in np.asarray(v).reshape(-1)]

    def dims(self, name: str) -> Dims | None:
        """A tensor's shape: of its initializer, Constant value or inferred edge."""
        if name in self.initializers:
            return tuple(int(d) for d in self.initializers[name].dims)
        v = self.value(name) if name not in self.spatial else None
        if v is not None:
            return tuple(int(d) for d in np.shape(v))
        return self.shapes.get(name)

    def _fold(self, name: str) -> Any:
        from onnx import numpy_helper

        if name in self.initializers:
            tensor = self.initializers[name]
            if tensor.data_location == 1 or _count(tensor.dims) > MAX_ELEMENTS:
                return None  # external data is never read; big tensors are weights
            return numpy_helper.to_array(tensor)
        node = self.producers.get(name)
        if node is None:
            return None
        if node.op_type in ("Shape", "Size"):
            return self._shape_value(node)
        if name in self.spatial:
            return None
        try:
            return self._evaluate(node)
        except (ValueError, TypeError, IndexError, ArithmeticError):
            return None  # inputs that do not fit the op: not a constant foveal can use

    def _shape_value(self, node: Any) -> Any:
        dims = self.shapes.get(node.input[0])
        if dims is None or not all(isinstance(d, int) for d in dims):
            return None
        if node.op_type == "Size":
            return np.array(_count(dims), dtype=np.int64)
        a = attributes(node)
        start, end = a.get("start", 0), a.get("end")
        return np.array(dims[slice(start, end)], dtype=np.int64)

    def _evaluate(self, node: Any) -> Any:
        from onnx import numpy_helper

        op, a = node.op_type, attributes(node)
        if op == "Constant":
            if "value" in a:
                return numpy_helper.to_array(a["value"])
            for key in ("value_int", "value_ints", "value_float", "value_floats"):
                if key in a:
                    return np.array(a[key])
            return None
        args: list[Any] = [self.value(i) if i else None for i in node.input]
        if any(v is None for v, i in zip(args, node.input) if i):
            return None
        if op in UNARY:
            return UNARY[op](args[0])
        if op in BINARY:
            return BINARY[op](args[0], args[1])
        if op == "Div":
            x, y = args
            if np.issubdtype(np.asarray(x).dtype, np.integer):
                return np.trunc(np.true_divide(x, y)).astype(np.asarray(x).dtype)
            return np.true_divide(x, y)
        if op == "Mod":
            return (np.fmod if a.get("fmod", 0) else np.mod)(args[0], args[1])
        if op in ("Cast", "CastLike"):
            return args[0]
        if op == "Transpose":
            return np.transpose(args[0], a.get("perm"))
        if op == "Where":
            return np.where(*args)
        if op == "Gather":
            return np.take(args[0], args[1], axis=a.get("axis", 0))
        if op == "Concat":
            return np.concatenate([np.atleast_1d(v) for v in args if v is not None], axis=a["axis"])
        if op == "Unsqueeze":
            axes = a.get("axes", None if len(args) < 2 else [int(x) for x in args[1]]) or []
            out = np.asarray(args[0])
            rank = out.ndim + len(axes)
            for axis in sorted(x % rank for x in axes):
                out = np.expand_dims(out, axis)
            return out
        if op == "Squeeze":
            axes = a.get("axes", None if len(args) < 2 else [int(x) for x in args[1]])
            return np.squeeze(args[0], axis=None if axes is None else tuple(axes))
        if op == "Reshape":
            target = [int(x) for x in args[1]]
            src = np.asarray(args[0])
            target = [src.shape[i] if t == 0 and not a.get("allowzero") else t for i, t in enumerate(target)]
            return src.reshape(target)
        if op == "Slice":
            return _slice(np.asarray(args[0]), a, args)
        if op == "ConstantOfShape":
            fill = numpy_helper.to_array(a["value"]).reshape(-1)[0] if "value" in a else np.float32(0)
            shape = [int(x) for x in args[0]]
            return np.full(shape, fill) if _count(shape) <= MAX_ELEMENTS else None
        if op == "Range":
            return np.arange(args[0], args[1], args[2])
        if op == "Expand":
            expanded = np.broadcast_shapes(np.shape(args[0]), tuple(int(x) for x in args[1]))
            return np.broadcast_to(args[0], expanded) if _count(expanded) <= MAX_ELEMENTS else None
        if op == "ReduceProd":
            return np.prod(args[0], keepdims=bool(a.get("keepdims", 1)))
        return None


def _slice(x: Any, a: dict[str, Any], args: list[Any]) -> Any:
    if "starts" in a:  # opset 1 to 9: attributes
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        starts, ends = list(args[1]), list(args[2])
        axes = list(args[3]) if len(args) > 3 and args[3] is not None else None
        steps = list(args[4]) if len(args) > 4 and args[4] is not None else None
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for axis, start, end, step in zip(axes, starts, ends, steps):
        index[int(axis)] = slice(int(start), int(end), int(step))
    return x[tuple(index)]


def _count(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def attributes(node: Any) -> dict[str, Any]:
    """A node's attributes by name, strings decoded."""
    from onnx import helper

    out = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        out[a.name] = value.decode() if isinstance(value, bytes) else value
    return out
