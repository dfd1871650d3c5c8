"""The ONNX front-end's validation layer: every field of a node that foveal reads goes through here.

A model file is untrusted input. An attribute can have the wrong type, a list the wrong length, a
kernel of zero or of 10^15, a string that is not UTF-8; a node can have fewer inputs than its op
needs; a constant tensor can declare 10^12 elements and hold none. `Fields(node)` reads one node's
attributes and inputs, each accessor checking type, count and range where the value is read, and
raising one `GraphFormatError` that names the node, its op and the field (or a `LimitError` for a
value beyond foveal's limits). `tensor_array` reads a constant tensor only when it is small and
its data matches its declared shape. Nothing here imports onnx or numpy at module level.

Where a value is valid ONNX that foveal does not follow (a coordinate transformation it has no
rule for), the caller makes the op unsupported instead; this module only refuses what the ONNX
specification itself rules out, and what exceeds foveal.limits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import GraphFormatError, quoted
from ..limits import MAX_AXIS_LENGTH, MAX_PARAMETER, LimitError

MAX_RANK = 32
"""Dimensions of one tensor (the most some numpy functions take; real models use at most 6)."""
MAX_LIST = 4096
"""Entries of one list attribute (pads, axes, split sizes...): a few per dimension in real models."""
MAX_ELEMENTS = 4096
"""Elements of a tensor foveal folds as a parameter (pads, scales, sizes, axes, slice bounds,
reshape targets); larger tensors are data, never materialised."""

# AttributeProto.AttributeType values
UNDEFINED, FLOAT, INT, STRING, TENSOR, GRAPH, FLOATS, INTS, STRINGS = 0, 1, 2, 3, 4, 5, 6, 7, 8
TYPE_NAMES = {0: "undefined", 1: "a float", 2: "an int", 3: "a string", 4: "a tensor", 5: "a graph",
              6: "a list of floats", 7: "a list of ints", 8: "a list of strings", 9: "a list of tensors",
              10: "a list of graphs", 11: "a sparse tensor", 12: "a list of sparse tensors",
              13: "a type", 14: "a list of types"}
_HOLDS = {FLOAT: "f", INT: "i", STRING: "s", TENSOR: "t", GRAPH: "g"}
_LIST_HOLDS = {FLOATS: "floats", INTS: "ints", STRINGS: "strings"}

# TensorProto.DataType values foveal folds (numpy has them natively)
NUMERIC_TYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
                 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64"}
KNOWN_TYPES = range(1, 29)
"""TensorProto data types ONNX 1.23 defines (FLOAT to FLOAT6E3M2)."""
EXTERNAL = 1
"""TensorProto.EXTERNAL: the data is in another file, which foveal never opens."""

_MISSING: Any = object()


def node_label(node: Any) -> str:
    """What a message calls a node: its name, else its first output, else its op."""
    return node.name or (node.output[0] if node.output else "") or node.op_type


def bounded(value: int, what: str, *, minimum: int | None = None, limit: int = MAX_PARAMETER) -> int:
    """`value` if it lies in [minimum, limit] (|value| <= limit when no minimum), else a
    GraphFormatError (below the minimum) or LimitError (beyond the limit) naming `what`."""
    if minimum is not None and value < minimum:
        raise GraphFormatError(f"{what} must be >= {minimum}, got {value}")
    if abs(value) > limit:
        raise LimitError(f"{what} is {value:,}, beyond foveal's limit of {limit:,} (see docs/security.md)")
    return value


class Fields:
    """One node's attributes and inputs, read with checks (see the module docstring)."""

    REQUIRED: Any = _MISSING
    """The default of a field that must be given."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.where = f"node {quoted(node_label(node))} ({node.op_type})"
        self.attributes: dict[str, Any] = {}
        for attr in node.attribute:
            if attr.name in self.attributes:
                raise self.fail(f"attribute {quoted(attr.name)}", "is given twice")
            self.attributes[attr.name] = attr

    def fail(self, field: str, problem: str) -> GraphFormatError:
        return GraphFormatError(f"{self.where}: {field} {problem}")

    def has(self, name: str) -> bool:
        return name in self.attributes

    def _attribute(self, name: str, kind: int) -> Any:
        """The AttributeProto `name`, checked to hold `kind`; None when absent."""
        attr = self.attributes.get(name)
        if attr is None:
            return None
        if attr.ref_attr_name:
            raise self.fail(f"attribute {quoted(name)}",
                            "refers to a function's attribute outside a function")
        if attr.type != kind:
            holds = attr.HasField(_HOLDS[kind]) if kind in _HOLDS else bool(getattr(attr, _LIST_HOLDS[kind]))
            untyped = attr.type == UNDEFINED and holds
            if not untyped:  # models from before attribute types were recorded say nothing
                raise self.fail(f"attribute {quoted(name)}",
                                f"is {TYPE_NAMES.get(attr.type, 'of an unknown type')}, "
                                f"but {self.node.op_type} takes {TYPE_NAMES[kind]}")
        return attr

    def _default(self, name: str, default: Any) -> Any:
        if default is _MISSING:
            raise self.fail(f"attribute {quoted(name)}", "is required but missing")
        return default

    def integer(self, name: str, default: Any = _MISSING, *, minimum: int | None = None,
                limit: int = MAX_PARAMETER, choices: Sequence[int] | None = None) -> Any:
        attr = self._attribute(name, INT)
        if attr is None:
            return self._default(name, default)
        value = int(attr.i)
        if choices is not None and value not in choices:
            allowed = (f"{choices.start} to {choices.stop - 1}" if isinstance(choices, range)
                       else ", ".join(map(str, choices)))
            raise self.fail(f"attribute {quoted(name)}", f"must be one of {allowed}, got {value}")
        return self._bounded(value, f"attribute {quoted(name)}", minimum, limit)

    def integers(self, name: str, default: Any = _MISSING, *, length: int | None = None,
                 minimum: int | None = None, limit: int = MAX_PARAMETER) -> Any:
        """A list of ints; `length`: the count the op needs (checked before the list is read)."""
        attr = self._attribute(name, INTS)
        if attr is None:
            return self._default(name, default)
        self._count(name, len(attr.ints), length)
        return [self._bounded(int(v), f"attribute {quoted(name)}", minimum, limit) for v in attr.ints]

    def number(self, name: str, default: Any = _MISSING) -> Any:
        attr = self._attribute(name, FLOAT)
        if attr is None:
            return self._default(name, default)
        return self._finite(float(attr.f), name)

    def numbers(self, name: str, default: Any = _MISSING, *, length: int | None = None) -> Any:
        attr = self._attribute(name, FLOATS)
        if attr is None:
            return self._default(name, default)
        self._count(name, len(attr.floats), length)
        return [self._finite(float(v), name) for v in attr.floats]

    def string(self, name: str, default: Any = _MISSING, *, choices: Iterable[str] | None = None) -> Any:
        attr = self._attribute(name, STRING)
        if attr is None:
            return self._default(name, default)
        value = self.text(attr.s, f"attribute {quoted(name)}")
        if choices is not None and value not in choices:
            raise self.fail(f"attribute {quoted(name)}",
                            f"must be one of {', '.join(choices)}, got {quoted(value)}")
        return value

    def tensor(self, name: str) -> Any:
        """A TENSOR attribute (a TensorProto) or None."""
        attr = self._attribute(name, TENSOR)
        return None if attr is None else attr.t

    def text(self, value: bytes, field: str) -> str:
        if len(value) > 1024:
            raise self.fail(field, f"is a string of {len(value):,} bytes")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(field, f"is not UTF-8 text ({value[:40]!r})") from None

    def _count(self, name: str, count: int, length: int | None) -> None:
        if length is not None and count != length:
            raise self.fail(f"attribute {quoted(name)}", f"has {count} entries; {length} expected")
        if count > MAX_LIST:
            raise LimitError(f"{self.where}: attribute {quoted(name)} has {count:,} entries, beyond foveal's "
                             f"limit of {MAX_LIST:,}")

    def _bounded(self, value: int, field: str, minimum: int | None, limit: int) -> int:
        return bounded(value, f"{self.where}: {field}", minimum=minimum, limit=limit)

    def _finite(self, value: float, field: str) -> float:
        if not math.isfinite(value):
            raise self.fail(f"attribute {quoted(field)}", f"must be a finite number, got {value}")
        return value

    # -- values read from the node's inputs --------------------------------------------------------
    def input(self, index: int) -> str:
        """Input `index`'s name, '' when absent (ONNX's optional inputs)."""
        return self.node.input[index] if len(self.node.input) > index else ""

    def require_inputs(self, count: int) -> None:
        """The node has its first `count` inputs (checked before any is indexed)."""
        given = list(self.node.input)
        if len(given) < count:
            raise GraphFormatError(f"{self.where}: has {len(given)} inputs; {self.node.op_type} needs at "
                                   f"least {count}")
        if not all(given[:count]):
            raise GraphFormatError(f"{self.where}: input {given[:count].index('')} is empty; "
                                   f"{self.node.op_type} needs it")

    def axis(self, value: int, rank: int, field: str = "axis", *, extra: int = 0) -> int:
        """An axis in [-rank - extra, rank + extra - 1], as a non-negative index (Flatten's and
        Unsqueeze's axes may point one past the end: `extra`)."""
        top = rank + extra
        if not -top <= value < top:
            raise self.fail(field, f"{value} is out of range for a tensor of rank {rank}")
        return value % top if top else 0

    def axes(self, values: Sequence[int], rank: int, field: str = "axes", *, extra: int = 0) -> list[int]:
        """Distinct axes, each checked as `axis`, as non-negative indices."""
        if len(values) > rank + extra:
            raise self.fail(field, f"has {len(values)} entries, more than the rank {rank + extra}")
        out = [self.axis(int(v), rank, field, extra=extra) for v in values]
        if len(set(out)) != len(out):
            raise self.fail(field, f"{list(values)} repeats an axis")
        return out

    def slice_axes(self, starts: list[int], ends: list[int], axes: list[int] | None, steps: list[int] | None,
                   rank: int) -> tuple[list[int], list[int]]:
        """Slice's axes and steps (by default the first len(starts) axes, steps of 1): one of each
        per start and end, at most `rank`, no step of 0."""
        axes = self.axes(axes, rank) if axes is not None else list(range(len(starts)))
        steps = steps if steps is not None else [1] * len(starts)
        if not len(starts) == len(ends) == len(axes) == len(steps) or len(starts) > rank:
            raise self.fail("starts, ends, axes and steps", f"have {len(starts)}, {len(ends)}, {len(axes)} "
                            f"and {len(steps)} entries; they need the same number, at most the rank {rank}")
        if 0 in steps:
            raise self.fail("steps", "must not be 0")
        return axes, steps

    def permutation(self, values: Sequence[int], rank: int, field: str = "perm") -> list[int]:
        if sorted(int(v) for v in values) != list(range(rank)):
            raise self.fail(field, f"{list(values)[:MAX_RANK]} is not a permutation of the {rank} dimensions")
        return [int(v) for v in values]

    def lengths(self, values: Sequence[int], field: str) -> list[int]:
        """Tensor lengths (a size, a split): each in [0, MAX_AXIS_LENGTH]."""
        return [self._bounded(int(v), field, 0, MAX_AXIS_LENGTH) for v in values]


def tensor_dims(tensor: Any, where: str) -> tuple[int, ...]:
    """A TensorProto's declared dims, each in [0, MAX_AXIS_LENGTH], at most MAX_RANK of them."""
    if len(tensor.dims) > MAX_RANK:
        raise LimitError(f"{where} has {len(tensor.dims)} dimensions, beyond foveal's limit of {MAX_RANK}")
    return tuple(bounded(int(d), f"{where}: a dimension", minimum=0, limit=MAX_AXIS_LENGTH)
                 for d in tensor.dims)


def tensor_array(tensor: Any, where: str) -> Any:
    """A small constant tensor as a numpy array, or None when foveal does not fold it: its data
    is in an external file (never opened), it has more than MAX_ELEMENTS elements (data, not a
    parameter), or its type is not a plain number. Declared dims that its data does not fill
    are a GraphFormatError."""
    import numpy as np

    dims = tensor_dims(tensor, where)
    if tensor.data_location == EXTERNAL or tensor.HasField("segment") or math.prod(dims) > MAX_ELEMENTS:
        return None
    dtype = NUMERIC_TYPES.get(tensor.data_type)
    if dtype is None:
        if tensor.data_type not in KNOWN_TYPES:
            raise GraphFormatError(f"{where} has data type {tensor.data_type}, which ONNX does not define")
        return None
    count, item = math.prod(dims), np.dtype(dtype).itemsize
    if tensor.HasField("raw_data"):
        if len(tensor.raw_data) != count * item:
            raise GraphFormatError(f"{where} declares {count:,} elements (dims {list(dims)}), "
                                   f"{count * item:,} bytes, but holds {len(tensor.raw_data):,} bytes")
        data = np.frombuffer(tensor.raw_data, dtype=np.dtype(dtype).newbyteorder("<"))
    else:
        from onnx import helper

        stored = getattr(tensor, helper.tensor_dtype_to_field(tensor.data_type))
        if len(stored) != count:
            raise GraphFormatError(f"{where} declares {count:,} elements (dims {list(dims)}) but holds "
                                   f"{len(stored):,}")
        if tensor.data_type == 10:  # float16 bits in int32_data
            data = np.array(stored, dtype=np.int32).astype(np.uint16).view(np.float16)
        else:
            data = np.array(stored).astype(dtype)
    return data.astype(dtype).reshape(dims)
