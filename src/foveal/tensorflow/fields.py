"""Reading a NodeDef's fields, each checked where it is read: the GraphDef front-end's one
validation layer.

A GraphDef file is data from anywhere: an input may be missing, a list one entry short, an
attribute of the wrong kind, a string not UTF-8, a size negative or 2^62, a constant may declare
10^12 elements and hold none. Every accessor here checks what it returns (count of inputs, list
length against the rank, kind, range, limits) and raises one line naming the node, its op and the
field: a `GraphFormatError` for a malformed field, a `LimitError` for a value past one of
foveal's limits (foveal.limits). The converter reads fields only through these functions.

Constants are never materialised to learn their shape: a Const's element count is the product
of its declared dims, and its values are read only when there are at most MAX_CONST_VALUES of
them (the integer constants foveal needs, paddings, axes, sizes, slice bounds, hold a few per
axis).
"""

from __future__ import annotations

import array
import math
import sys
import unicodedata
from typing import Any

from ..errors import MAX_QUOTED, GraphFormatError, quoted
from ..limits import MAX_AXIS_LENGTH, MAX_PARAMETER, LimitError
from .schema import DATA_TYPES

MAX_RANK = 16
"""Rank of a tensor whose layout foveal follows (batch, spatial axes, channels, and the axes
ExpandDims adds); TensorFlow's convolutions and pools have at most three spatial axes."""

MAX_TENSOR_RANK = 254
"""Rank of a constant's declared shape (TensorFlow's own limit)."""

MAX_CONST_VALUES = 1024
"""Elements of an integer constant whose values foveal reads (a few per axis in real graphs)."""

MAX_WALK = 64
"""Nested ExpandDims / Fill between a weight and the op that reads it (one, for Conv1D)."""

MAX_OP_NAME = 256
"""Characters of an op name (TensorFlow's are identifiers of a few dozen)."""

REQUIRED: Any = object()
"""Default of an accessor whose field must be present."""

INTEGER_DTYPES: dict[int, tuple[str, str]] = {
    3: ("int_val", "i"), 4: ("int_val", "B"), 5: ("int_val", "h"), 6: ("int_val", "b"),
    9: ("int64_val", "q"), 17: ("int_val", "H"), 22: ("uint32_val", "I"), 23: ("uint64_val", "Q"),
}
"""DataType -> (the TensorProto field holding its values, its array typecode in tensor_content)."""

KINDS = {"list": "a list", "s": "a string", "i": "an int", "f": "a float", "b": "a bool",
         "type": "a dtype", "shape": "a shape", "tensor": "a tensor", "placeholder": "a placeholder",
         "func": "a function"}
"""The AttrValue oneof's fields, as an error message names them."""


# -- errors ------------------------------------------------------------------------------------
def label(node: Any) -> str:
    """How a message names a node: "node 'conv1' (Conv2D)"."""
    return f"node {quoted(node.name)} ({node.op[:MAX_QUOTED]})"


def fail(node: Any, message: str) -> GraphFormatError:
    """A malformed field of `node`, in one line."""
    return GraphFormatError(f"{label(node)}: {message}")


def over_limit(node: Any, field: str, value: int, limit: int) -> LimitError:
    return LimitError(f"{label(node)}: {field} is {value:,}, over foveal's limit of {limit:,} (see "
                      f"docs/security.md)")


def dtype_name(dtype: int) -> str:
    base = dtype - 100 if dtype > 100 else dtype
    name = DATA_TYPES[base] if 0 <= base < len(DATA_TYPES) else f"DataType {dtype}"
    return name + "_REF" if dtype > 100 and 0 <= base < len(DATA_TYPES) else name


def has_line_breaks(text: str) -> bool:
    """A control character or a line/paragraph separator (each splits an error message)."""
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text)


# -- inputs ------------------------------------------------------------------------------------
def source(ref: str) -> str:
    """'conv:0', '^conv' -> 'conv' (the slot is never converted: it may be 10,000 digits)."""
    ref = ref[1:] if ref.startswith("^") else ref
    name, sep, slot = ref.rpartition(":")
    return name if sep and name and slot.isascii() and slot.isdigit() else ref


def data_inputs(node: Any) -> list[str]:
    """The data inputs (TensorFlow lists control inputs, `^name`, after them)."""
    return [ref for ref in node.input if not ref.startswith("^")]


def data_input(node: Any, index: int, field: str) -> str:
    """Data input `index` (negative: from the end), which holds `field`."""
    refs = data_inputs(node)
    if not -len(refs) <= index < len(refs):
        count = f"{len(refs)} data input{'s' if len(refs) != 1 else ''}"
        where = "its last input" if index == -1 else f"input {index}"
        raise fail(node, f"has {count}; {where} ({field}) is missing")
    return refs[index]


# -- attributes ----------------------------------------------------------------------------------
def _value(node: Any, key: str, kind: str, expected: str = "") -> Any:
    """The AttrValue under `key` when it holds `kind`; None when absent or empty."""
    if key not in node.attr:
        return None
    value = node.attr[key]
    found = value.WhichOneof("value")
    if found is None:
        return None
    if found != kind:
        expected = expected or KINDS[kind]
        raise fail(node, f"attribute {key!r} is {KINDS.get(found, found)}, expected {expected}")
    return value


def _missing(node: Any, key: str, default: Any) -> Any:
    if default is REQUIRED:
        raise fail(node, f"attribute {key!r} is missing")
    return default


def attr_ints(node: Any, key: str, *, length: int | None = None, per: str = "", minimum: int | None = None,
              default: Any = REQUIRED) -> list[int]:
    """A list of ints: `length` of them when given (`per` says why), each >= `minimum`."""
    value = _value(node, key, "list", "a list of ints")
    if value is None:
        return _missing(node, key, default)
    items = value.list
    other = next((k for k in ("s", "f", "b", "type", "shape", "tensor", "func") if len(getattr(items, k))),
                 None)
    if other is not None and not len(items.i):
        raise fail(node, f"attribute {key!r} is a list of {KINDS[other][2:]}s, expected ints")
    return check_ints(node, f"attribute {key!r}", items.i, length=length, per=per, minimum=minimum)


def attr_int(node: Any, key: str, default: Any = REQUIRED, minimum: int | None = None,
             limit: int = MAX_PARAMETER) -> int:
    value = _value(node, key, "i")
    if value is None:
        return _missing(node, key, default)
    return check_ints(node, f"attribute {key!r}", [value.i], minimum=minimum, limit=limit)[0]


def attr_bool(node: Any, key: str, default: bool = False) -> bool:
    value = _value(node, key, "b")
    return default if value is None else bool(value.b)


def attr_text(node: Any, key: str, default: Any = REQUIRED, choices: tuple[str, ...] | None = None) -> str:
    """A string attribute, decoded (UTF-8), one of `choices` when given."""
    value = _value(node, key, "s")
    if value is None:
        return _missing(node, key, default)
    raw = value.s
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise fail(node, f"attribute {key!r} is not UTF-8 text ({raw[:24]!r})") from None
    if choices is not None and text not in choices:
        raise fail(node, f"attribute {key!r} is {text[:40]!r}, not one of {', '.join(choices)}")
    return text


def attr_shape(node: Any, key: str) -> list[int] | None:
    """A shape attribute's dims (-1: unknown); None when absent or of unknown rank."""
    value = _value(node, key, "shape")
    if value is None or value.shape.unknown_rank:
        return None
    return check_dims(node, f"attribute {key!r}", value.shape)


def output_shape(node: Any) -> list[int] | None:
    """The first output's shape from `_output_shapes` (TensorFlow adds it on request)."""
    value = _value(node, "_output_shapes", "list")
    if value is None or not len(value.list.shape) or value.list.shape[0].unknown_rank:
        return None
    return check_dims(node, "attribute '_output_shapes'", value.list.shape[0])


def check_dims(node: Any, field: str, shape: Any) -> list[int]:
    """A TensorShapeProto's sizes: each -1 (unknown) or 0..MAX_AXIS_LENGTH, at most
    MAX_TENSOR_RANK of them."""
    if len(shape.dim) > MAX_TENSOR_RANK:
        raise fail(node, f"{field} has {len(shape.dim):,} dims; TensorFlow allows {MAX_TENSOR_RANK}")
    dims = [d.size for d in shape.dim]
    for size in dims:
        if size < -1:
            raise fail(node, f"{field} has the size {size}; sizes are >= 0, or -1 for unknown")
        if size > MAX_AXIS_LENGTH:
            raise over_limit(node, f"a size in {field}", size, MAX_AXIS_LENGTH)
    return dims


def check_ints(node: Any, field: str, values: Any, *, length: int | None = None, per: str = "",
               minimum: int | None = None, maximum: int | None = None,
               limit: int = MAX_PARAMETER) -> list[int]:
    """`values` as a list, `length` long when given (`per` says why), each in [minimum, maximum]
    (a malformed field) and of absolute value at most `limit` (foveal's limit)."""
    if length is not None and len(values) != length:
        why = f" ({per})" if per else ""
        raise fail(node, f"{field} has {len(values):,} value{'s' if len(values) != 1 else ''}, expected "
                         f"{length}{why}")
    out = [int(v) for v in values]
    for v in out:
        if minimum is not None and v < minimum:
            raise fail(node, f"{field} has the value {v:,}; it must be >= {minimum}")
        if maximum is not None and v > maximum:
            raise fail(node, f"{field} has the value {v:,}; it must be <= {maximum}")
        if abs(v) > limit:
            raise over_limit(node, f"a value of {field}", v, limit)
    return out


def check_axis(node: Any, field: str, axis: int, rank: int) -> int:
    """An axis of a rank-`rank` tensor, in [-rank, rank), as a position in [0, rank)."""
    if not -rank <= axis < rank:
        raise fail(node, f"{field} has the axis {axis:,}, outside [-{rank}, {rank}) for a rank-{rank} tensor")
    return axis % rank


# -- constants -----------------------------------------------------------------------------------
def const_tensor(node: Any) -> Any:
    """A Const node's TensorProto."""
    value = _value(node, "value", "tensor")
    if value is None:
        raise fail(node, "attribute 'value' (the constant's tensor) is missing")
    return value.tensor


def const_shape(node: Any) -> list[int]:
    """A Const's declared dims (never -1: a constant's shape is known)."""
    dims = check_dims(node, "the tensor's shape", const_tensor(node).tensor_shape)
    if -1 in dims:
        raise fail(node, "the tensor's shape has the size -1; a constant's sizes are known")
    return dims


def const_ints(const: Any, user: Any, field: str, most: int = MAX_CONST_VALUES) -> list[int]:
    """The integer values of Const node `const`, which `user` reads as `field`: from the
    typed value field or tensor_content; fewer values than elements repeat the last one (an
    empty tensor is all zeros), as TensorFlow reads them. More than `most` elements is refused
    before any value is read."""
    tensor = const_tensor(const)
    count = math.prod(const_shape(const))  # at most 254 factors of 2^40, nothing built
    where = f"{field}, the constant {quoted(const.name)},"
    if count > min(most, MAX_CONST_VALUES):
        if most < MAX_CONST_VALUES:
            raise fail(user, f"{where} has {count:,} elements, expected at most {most}")
        raise LimitError(f"{label(user)}: {where} declares {count:,} elements; foveal "
                         f"reads integer constants of at most {MAX_CONST_VALUES:,} (see docs/security.md)")
    dtype = tensor.dtype - 100 if tensor.dtype > 100 else tensor.dtype
    if dtype == 0 and not tensor.tensor_content:  # no dtype: hand-written, int_val or int64_val
        kind, code = ("int64_val", "q") if len(tensor.int64_val) else ("int_val", "i")
    elif dtype in INTEGER_DTYPES:
        kind, code = INTEGER_DTYPES[dtype]
    else:
        raise fail(user, f"{where} has dtype {dtype_name(tensor.dtype)}; an integer tensor is expected")
    stored = getattr(tensor, kind)
    if tensor.tensor_content:
        width = array.array(code).itemsize
        if len(tensor.tensor_content) != count * width:
            raise fail(const, f"tensor_content has {len(tensor.tensor_content):,} bytes, expected "
                              f"{count * width:,} for {count:,} {dtype_name(tensor.dtype)} values")
        content = array.array(code, tensor.tensor_content)
        if sys.byteorder == "big":
            content.byteswap()
        values = list(content)
    else:
        if len(stored) > count:
            raise fail(const, f"{kind} has {len(stored):,} values for {count:,} elements")
        values = list(stored)
        if count and not values:
            values = [0] * count
        elif len(values) < count:
            values += [values[-1]] * (count - len(values))
    return values
