"""Values of the tensors an op's parameters come from (pads, scales, sizes, axes, slice bounds,
reshape targets), folded from initializers and Constant nodes through the shape arithmetic
exporters write (Shape, Gather, Concat, Cast, Unsqueeze, Transpose, arithmetic...). Shapes come from shape
inference, so `Shape(x)` folds once the input size is known. Nothing else is evaluated.

A folded value is a parameter, never data: every result is checked to have at most MAX_ELEMENTS
elements before it is computed (a Range, ConstantOfShape or Expand to 10^12 elements is "not a
constant", in the time it takes to multiply its dims), and one analysis folds at most
MAX_FOLDED elements in all. Evaluation walks the graph with an explicit stack (a chain of 10^5
nodes does not exhaust Python's recursion) and a tensor that depends on itself folds to nothing.
Malformed nodes on the way (a Concat without `axis`, a Range with two inputs) are a
GraphFormatError naming the node and the field, from `fields.Fields`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import FovealError, quoted
from ..limits import LimitError
from .fields import KNOWN_TYPES, MAX_ELEMENTS, MAX_RANK, NUMERIC_TYPES, Fields, tensor_array
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
INPUTS_NEEDED = {**dict.fromkeys(UNARY, 1), **dict.fromkeys(BINARY, 2), "Div": 2, "Mod": 2, "Cast": 1,
                 "CastLike": 2, "Transpose": 1, "Where": 3, "Gather": 2, "Concat": 1, "Unsqueeze": 1,
                 "Squeeze": 1, "Reshape": 1, "Slice": 1, "ConstantOfShape": 1, "Range": 3, "Expand": 2,
                 "ReduceProd": 1, "Shape": 1, "Size": 1}
"""Ops foveal folds, with the inputs each needs (checked before any is read)."""
MAX_FOLDED = 4_000_000
"""Elements folded by one analysis in all (32 MB of int64)."""


class Constants:
    """Folds tensors on demand; `value(name)` is a numpy array or None (not constant)."""

    def __init__(self, graph: Any, producers: dict[str, Any], shapes: dict[str, Dims],
                 spatial: set[str], opset: int = 18) -> None:
        self.initializers = {t.name: t for t in graph.initializer}
        self.producers, self.shapes, self.spatial, self.opset = producers, shapes, spatial, opset
        self.memo: dict[str, Any] = {}
        self.folded = 0

    def value(self, name: str) -> Any:
        """The tensor's value, folding what it depends on first (depth first, with an explicit
        stack; an input already being folded further down the stack is on a cycle and reads as
        None)."""
        if not name:
            return None
        stack, opened = [name], set()
        while stack:
            top = stack[-1]
            if top in self.memo:
                stack.pop()
            elif top not in opened:
                opened.add(top)
                stack.extend(n for n in self._reads(top) if n not in self.memo and n not in opened)
            else:
                stack.pop()
                try:
                    self.memo[top] = self._fold(top)
                except FovealError as error:  # remembered: what reads it fails alike, at once
                    self.memo[top] = _Failed(error)
        return _result(self.memo[name])

    def ints(self, name: str) -> list[int] | None:
        """The value as ints (None when it is not constant, or holds a NaN or an infinity)."""
        v = self.value(name)
        if v is None:
            return None
        flat = np.asarray(v).reshape(-1)
        if flat.dtype.kind == "f" and not np.isfinite(flat).all():
            return None
        return [int(x) for x in flat]

    def floats(self, name: str) -> list[float] | None:
        v = self.value(name)
        return None if v is None else [float(x) for x in np.asarray(v).reshape(-1)]

    def dims(self, name: str) -> Dims | None:
        """A tensor's shape: of its initializer, Constant value or inferred edge."""
        if name in self.initializers:
            return tuple(int(d) for d in self.initializers[name].dims)  # checked by check_model
        v = self.value(name) if name not in self.spatial else None
        if v is not None:
            return tuple(int(d) for d in np.shape(v))
        return self.shapes.get(name)

    # -- one tensor -----------------------------------------------------------------------------
    def _reads(self, name: str) -> list[str]:
        """The tensors folding `name` reads."""
        if name in self.initializers or name in self.spatial:
            return []
        node = self.producers.get(name)
        if node is None or node.op_type == "Constant" or node.op_type not in INPUTS_NEEDED:
            return []
        if node.op_type in ("Shape", "Size"):
            source = node.input[0] if node.input else ""
            return [source] if source and source not in self.spatial and source not in self.shapes else []
        return [i for i in node.input if i]

    def _fold(self, name: str) -> Any:
        if name in self.initializers:
            return self._counted(tensor_array(self.initializers[name], f"initializer {quoted(name)}"))
        node = self.producers.get(name)
        if node is None or (name in self.spatial and node.op_type not in ("Shape", "Size")):
            return None
        if node.op_type != "Constant" and node.op_type not in INPUTS_NEEDED:
            return None
        fields = Fields(node)
        if node.op_type == "Constant":
            return self._counted(self._constant(fields))
        fields.require_inputs(INPUTS_NEEDED[node.op_type])
        if node.op_type in ("Shape", "Size"):
            return self._counted(self._shape_value(fields))
        args = [_result(self.memo.get(i)) if i else None for i in node.input]
        if any(v is None for v, i in zip(args, node.input) if i):
            return None
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = self._evaluate(fields, [np.asarray(a) for a in args if a is not None], args)
        except FovealError:
            raise
        except (ValueError, TypeError, IndexError, ArithmeticError):
            return None  # values that do not fit the op (shapes that do not broadcast...): not a constant
        return self._counted(out)

    def _counted(self, value: Any) -> Any:
        """`value`, when it is small enough to be a parameter; the analysis' total is bounded."""
        if value is None:
            return None
        value = np.asarray(value)
        if value.size > MAX_ELEMENTS or value.ndim > MAX_RANK or value.dtype.kind not in "biuf":
            return None
        self.folded += value.size
        if self.folded > MAX_FOLDED:
            raise LimitError(f"folding the model's shape arithmetic takes more than {MAX_FOLDED:,} "
                             f"elements, beyond foveal's limit")
        return value

    def _constant(self, f: Fields) -> Any:
        tensor = f.tensor("value")
        if tensor is not None:
            return tensor_array(tensor, f"{f.where}: attribute 'value'")
        if f.has("value_int"):
            return np.array(f.integer("value_int", limit=2**63 - 1), dtype=np.int64)
        if f.has("value_ints"):
            return np.array(f.integers("value_ints", limit=2**63 - 1), dtype=np.int64)
        if f.has("value_float"):
            return np.array(f.number("value_float"), dtype=np.float32)
        if f.has("value_floats"):
            return np.array(f.numbers("value_floats"), dtype=np.float32)
        return None  # a sparse or string constant: not a parameter foveal reads

    def _shape_value(self, f: Fields) -> Any:
        source = f.input(0)
        dims = self.shapes.get(source)
        if dims is None and source not in self.spatial and _result(self.memo.get(source)) is not None:
            dims = np.shape(self.memo[source])
        if dims is None or not all(isinstance(d, int) for d in dims):
            return None
        if f.node.op_type == "Size":
            return np.array(math.prod(d for d in dims if isinstance(d, int)), dtype=np.int64)
        start, end = f.integer("start", 0, limit=2**63 - 1), f.integer("end", None, limit=2**63 - 1)
        return np.array(dims[slice(start, end)], dtype=np.int64)

    # -- evaluation of one node, on small values ----------------------------------------------------
    def _evaluate(self, f: Fields, args: list[Any], given: list[Any]) -> Any:
        op = f.node.op_type
        if op in UNARY:
            return UNARY[op](args[0])
        if op in BINARY or op in ("Div", "Mod", "Where"):
            _fits(np.broadcast_shapes(*(a.shape for a in args[:3 if op == "Where" else 2])))
        if op in BINARY:
            return BINARY[op](args[0], args[1])
        if op in ("Div", "Mod"):
            x, y = args[0], args[1]
            integral = np.issubdtype(x.dtype, np.integer)
            if integral and (y == 0).any():
                return None  # undefined
            if op == "Mod":
                return (np.fmod if f.integer("fmod", 0, choices=(0, 1)) else np.mod)(x, y)
            return np.trunc(np.true_divide(x, y)).astype(x.dtype) if integral else np.true_divide(x, y)
        if op == "Where":
            return np.where(args[0], args[1], args[2])
        if op == "Cast":
            return _cast(args[0], f.integer("to", choices=KNOWN_TYPES))
        if op == "CastLike":
            return args[0].astype(args[1].dtype) if np.isfinite(args[0]).all() else None
        if op == "Transpose":
            rank = args[0].ndim
            perm = f.integers("perm", list(range(rank))[::-1], length=rank)
            return np.transpose(args[0], f.permutation(perm, rank))
        if op == "Gather":
            data, indices = args[0], args[1]
            axis = f.axis(f.integer("axis", 0), data.ndim)
            _fits(data.shape[:axis] + indices.shape + data.shape[axis + 1:])
            return np.take(data, indices.astype(np.int64), axis=axis)
        if op == "Concat":
            parts = [np.atleast_1d(a) for a in args]
            axis = f.axis(f.integer("axis", 1 if self.opset < 4 else Fields.REQUIRED), parts[0].ndim)
            _fits((sum(p.size for p in parts),))
            return np.concatenate(parts, axis=axis)
        if op == "Unsqueeze":
            axes = f.integers("axes") if self.opset < 13 else _integers(given, 1, f, "axes")
            out = args[0]
            for axis in sorted(f.axes(axes, args[0].ndim, extra=len(axes))):
                out = np.expand_dims(out, axis)
            return out
        if op == "Squeeze":
            axes = f.integers("axes", None) if self.opset < 13 else _integers(given, 1, f, "axes", None)
            return np.squeeze(args[0], axis=None if axes is None else tuple(f.axes(axes, args[0].ndim)))
        if op == "Reshape":
            target = f.integers("shape") if self.opset < 5 else _integers(given, 1, f, "shape")
            shape = reshaped(f, args[0].shape, target, bool(f.integer("allowzero", 0, choices=(0, 1))))
            if shape is None or math.prod(shape) != args[0].size:
                return None
            return args[0].reshape(shape)
        if op == "Slice":
            return _slice(f, args[0], given, self.opset)
        if op == "ConstantOfShape":
            lengths = f.lengths(_integers(given, 0, f, "shape"), "input 'shape'")
            _fits(tuple(lengths))
            tensor = f.tensor("value")
            fill = (tensor_array(tensor, f"{f.where}: attribute 'value'") if tensor is not None
                    else np.float32(0))
            if fill is None or np.size(fill) != 1:
                return None
            return np.full(lengths, np.asarray(fill).reshape(-1)[0])
        if op == "Range":
            start, limit, delta = (a.reshape(-1)[0] if a.size == 1 else None for a in args[:3])
            if start is None or limit is None or delta is None or delta == 0:
                return None
            count = math.ceil((float(limit) - float(start)) / float(delta))
            _fits((max(count, 0),))
            return np.arange(start, limit, delta)
        if op == "Expand":
            shape = _integers(given, 1, f, "shape")
            if len(shape) > MAX_RANK or any(d < 0 for d in shape):
                return None
            expanded = np.broadcast_shapes(args[0].shape, tuple(shape))
            _fits(expanded)
            return np.broadcast_to(args[0], expanded)
        if op == "ReduceProd":
            keep = bool(f.integer("keepdims", 1, choices=(0, 1)))
            axes = f.integers("axes", None) if self.opset < 18 else _integers(given, 1, f, "axes", None)
            reduced = None if not axes else tuple(f.axes(axes, args[0].ndim))
            return np.prod(args[0], axis=reduced, keepdims=keep)
        return None


class _Failed:
    """A tensor whose folding raised `error` (a malformed node on the way)."""

    def __init__(self, error: FovealError) -> None:
        self.error = error


def _result(memo: Any) -> Any:
    """A memoised value, or its error raised again."""
    if isinstance(memo, _Failed):
        raise memo.error
    return memo


class _TooBig(ValueError):
    """A result with more than MAX_ELEMENTS elements: data, not a parameter (not folded)."""


def _fits(shape: tuple[int, ...]) -> None:
    if math.prod(shape) > MAX_ELEMENTS:
        raise _TooBig(f"{math.prod(shape)} elements")


def _integers(given: list[Any], index: int, f: Fields, field: str, default: Any = Fields.REQUIRED) -> Any:
    """Input `index`, a folded tensor, as a list of ints (its default when the input is absent)."""
    value = given[index] if index < len(given) else None
    if value is None:
        if default is Fields.REQUIRED:
            raise f.fail(f"input {field!r}", "is required but missing")
        return default
    flat = np.asarray(value).reshape(-1)
    if flat.dtype.kind not in "biu":
        raise f.fail(f"input {field!r}", f"must be integers, got {flat.dtype}")
    return [int(v) for v in flat]


def _cast(x: Any, to: int) -> Any:
    dtype = NUMERIC_TYPES.get(to)
    if dtype is None:
        return None  # a type foveal does not fold
    if np.dtype(dtype).kind in "iu" and x.dtype.kind == "f":
        if not np.isfinite(x).all():
            return None
        return np.trunc(x).astype(dtype)
    return x.astype(dtype)


def reshaped(f: Fields, before: tuple[int, ...], target: list[int],
             allowzero: bool) -> tuple[int, ...] | None:
    """Reshape's output shape for `target`: 0 copies the input dim (unless allowzero), one -1
    takes the rest; None when no length fits the -1. A target ONNX rules out (two -1s, a length
    below -1) is a GraphFormatError."""
    if len(target) > MAX_RANK:
        raise LimitError(f"{f.where}: shape has {len(target)} entries, beyond foveal's limit of {MAX_RANK} "
                         f"dimensions")
    if any(t < -1 for t in target) or target.count(-1) > 1:
        raise f.fail("shape", f"{target} may hold one -1 and otherwise lengths >= 0")
    f.lengths([t for t in target if t != -1], "shape")
    out = [before[i] if t == 0 and not allowzero and i < len(before) else t for i, t in enumerate(target)]
    if -1 in out:
        known = math.prod(t for t in out if t != -1)
        if not known or math.prod(before) % known:
            return None
        out[out.index(-1)] = math.prod(before) // known
    return tuple(out)


def _slice(f: Fields, x: Any, given: list[Any], opset: int) -> Any:
    if opset < 10:  # attributes
        starts, ends = f.integers("starts"), f.integers("ends")
        axes, steps = f.integers("axes", None), None
    else:
        starts, ends = _integers(given, 1, f, "starts"), _integers(given, 2, f, "ends")
        axes = _integers(given, 3, f, "axes", None)
        steps = _integers(given, 4, f, "steps", None)
    axes, steps = f.slice_axes(starts, ends, axes, steps, x.ndim)
    index = [slice(None)] * x.ndim
    for axis, start, end, step in zip(axes, starts, ends, steps):
        index[axis] = slice(start, end, step)
    return x[tuple(index)]
