"""The op vocabulary: frozen per-axis parameter records, one class per kind of spatial behaviour.

Constructors accept an int (the same on every axis) or a tuple (one entry per axis, in the graph's
axis order). `normalize(op, n_axes, node)` turns every field into a per-axis tuple and checks the
ranges, so the engine only ever sees complete, valid parameters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .errors import InvalidParameterError
from .limits import MAX_PARAMETER

PAD_MODES = ("same_upper", "same_lower", "torch_same", "causal", "valid")
"""Padding given by rule instead of numbers. same_upper/same_lower: TF/ONNX SAME (the odd pixel goes
after / before, the total depends on the input size). torch_same: PyTorch padding='same'
(floor(d(k-1)/2) before, the rest after, any input size). causal: d(k-1) before, 0 after."""

PAD_FILL_MODES = ("constant", "reflect", "replicate", "circular")
RESIZE_METHODS = ("nearest", "linear", "cubic")
RESIZE_COORDINATES = ("asymmetric", "half_pixel", "align_corners")
NEAREST_ROUNDINGS = ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil")

AxisInts = int | tuple[int, ...]


@dataclass(frozen=True)
class Input:
    """A graph input (image, waveform, volume). Its receptive field is itself."""

    op = "input"


@dataclass(frozen=True)
class Window:
    """Convolution or pooling: output o reads stride*o - before + j*dilation, j < kernel."""

    kernel: Any
    stride: Any = 1
    dilation: Any = 1
    padding: Any = 0
    ceil_mode: bool = False
    kind: str = "conv"
    op = "window"


@dataclass(frozen=True)
class TransposedWindow:
    """Transposed convolution: input i writes to outputs stride*i - before + j*dilation."""

    kernel: Any
    stride: Any = 1
    dilation: Any = 1
    padding: Any = 0
    output_padding: Any = 0
    kind: str = "conv_transpose"
    op = "transposed_window"


@dataclass(frozen=True)
class Pad:
    """Padding op; negative amounts crop. The fill mode decides what border pixels read."""

    before: Any
    after: Any = None
    mode: str = "constant"
    op = "pad"


@dataclass(frozen=True)
class Crop:
    """Slice of a spatial axis: output o reads start + o*step (stop None: to the end)."""

    start: Any = 0
    stop: Any = None
    step: Any = 1
    op = "crop"


@dataclass(frozen=True)
class Resize:
    """Nearest / linear / cubic interpolation by a scale factor or to an output size.

    Source coordinate x = (o + a) * ratio - a, with a = 1/2 for half_pixel and 0 otherwise;
    ratio = 1/scale when a scale is given, else in/out (align_corners: (in-1)/(out-1)).
    Nearest reads round(x) by `rounding`; linear reads floor(x) and floor(x)+1; cubic reads
    floor(x)-1 .. floor(x)+2. Taps whose weight is exactly zero (x an integer) are not read.
    `ratio` (per axis, None: as above) replaces the ratio and `offset` is added to x: ONNX's
    coordinate rules that depend on the input size (half_pixel_symmetric, tf_crop_and_resize,
    align_corners with a scale) are written with them for one input size.
    """

    method: str = "nearest"
    scale: Any = None
    size: Any = None
    coordinate: str = "asymmetric"
    rounding: str = "floor"
    ratio: Any = None
    offset: Any = 0
    op = "resize"


@dataclass(frozen=True)
class PixelShuffle:
    """Depth-to-space by `factor`: output o reads floor(o / factor)."""

    factor: Any
    op = "pixel_shuffle"


@dataclass(frozen=True)
class PixelUnshuffle:
    """Space-to-depth by `factor`: output o reads factor*o .. factor*o + factor - 1."""

    factor: Any
    op = "pixel_unshuffle"


@dataclass(frozen=True)
class AdaptivePool:
    """Adaptive pooling to `size`: window o is [floor(o*n/m), ceil((o+1)*n/m) - 1]."""

    size: Any
    kind: str = "adaptive_avg_pool"
    op = "adaptive_pool"


@dataclass(frozen=True)
class Global:
    """Every output reads the whole axis (flatten+dense, global pooling, attention).

    `axes` marks the axes it is global on (others are untouched, e.g. nn.Linear on W only);
    `keep_size` keeps the axis length (attention) instead of reducing it to 1. A non-empty
    `bound` says why reading the whole axis over-approximates what the op reads; the node and
    everything after it are then reported as bounds.
    """

    kind: str = "global_pool"
    axes: Any = True
    keep_size: bool = False
    bound: str = ""
    op = "global"


MODULE_OUTPUT = "module_output"
MODEL_OUTPUT = "model_output"
ALIAS_KINDS = frozenset([MODULE_OUTPUT, MODEL_OUTPUT])
"""Kinds of an identity that only names another node's output: a PyTorch module's (its path),
a nested Keras model's. Verdicts skip aliases (a name is not a layer)."""
CHOICE = "choice"
"""The kind of a merge that takes one input at a time (TensorFlow's Merge after a Switch): the
union of its inputs' fields is a bound unless they agree."""


@dataclass(frozen=True)
class Elementwise:
    """One input, same position: activations, normalisation, dropout, channel ops."""

    kind: str = "identity"
    op = "elementwise"

    @property
    def is_alias(self) -> bool:
        return self.kind in ALIAS_KINDS


@dataclass(frozen=True)
class Merge:
    """Several inputs combined position by position (add, multiply, concat over channels)."""

    kind: str = "add"
    op = "merge"

    @property
    def is_choice(self) -> bool:
        return self.kind == CHOICE


@dataclass(frozen=True)
class Unknown:
    """An op the graph cannot express; analysis stops here unless a lenient policy is chosen.

    data_dependent: the op is known, but what it reads depends on the values (grid_sample,
    deformable convolution): its receptive field is unavailable, which is a result, not an error.
    """

    name: str = "unknown"
    data_dependent: bool = False
    op = "unknown"


Op = (Input | Window | TransposedWindow | Pad | Crop | Resize | PixelShuffle | PixelUnshuffle
      | AdaptivePool | Global | Elementwise | Merge | Unknown)
OP_TYPES = (Input, Window, TransposedWindow, Pad, Crop, Resize, PixelShuffle, PixelUnshuffle,
            AdaptivePool, Global, Elementwise, Merge, Unknown)
OP_CLASSES: dict[str, type] = {
    c.op: c  # type: ignore[attr-defined]
    for c in (Input, Window, TransposedWindow, Pad, Crop, Resize, PixelShuffle, PixelUnshuffle,
              AdaptivePool, Global, Elementwise, Merge, Unknown)
}

# ---------------------------------------------------------------------------------------------
# Normalisation: every field becomes a per-axis tuple, checked once.


def _fail(node: str, op: str, message: str) -> InvalidParameterError:
    return InvalidParameterError(f"node {node!r} ({op}): {message}")


def _per_axis(value: Any, n: int, field: str, node: str, op: str) -> tuple[Any, ...]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise _fail(node, op, f"{field} has {len(value)} entries but the graph has {n} axes")
        return tuple(value)
    return (value,) * n


def _ints(value: Any, n: int, field: str, node: str, op: str, minimum: int | None) -> tuple[int, ...]:
    out = _per_axis(value, n, field, node, op)
    for v in out:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _fail(node, op, f"{field} must be integers, got {v!r}")
        if minimum is not None and v < minimum:
            raise _fail(node, op, f"{field} must be >= {minimum}, got {v}")
        _bounded(v, field, node, op)
    return tuple(out)


def _bounded(value: int, field: str, node: str, op: str) -> int:
    if abs(value) > MAX_PARAMETER:
        raise _fail(node, op, f"{field} {value} is beyond foveal's limit of {MAX_PARAMETER:,} "
                              f"(see docs/security.md)")
    return value


def _flag(value: Any, field: str, node: str, op: str) -> bool:
    """A boolean (or 0 / 1): a string such as "abc" is an error, not True."""
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise _fail(node, op, f"{field} must be true or false, got {value!r}")


def printable(text: str) -> bool:
    """Whether `text` can be written out as UTF-8 (a lone surrogate, which JSON's \\udc80 and
    some protobuf strings can hold, cannot)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: Any, field: str, node: str, op: str) -> str:
    if not isinstance(value, str) or not printable(value):
        raise _fail(node, op, f"{field} must be a string of text, got {value!r}")
    return value


def _padding(value: Any, n: int, node: str, op: str) -> tuple[Any, ...]:
    """Per axis: a (before, after) pair of ints >= 0, or one of PAD_MODES."""
    if isinstance(value, str):
        value = (value,) * n
    if n == 1 and isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        value = (tuple(value),)  # 1-D: (before, after) is unambiguous
    items = _per_axis(value, n, "padding", node, op)
    out: list[Any] = []
    for item in items:
        if isinstance(item, str):
            if item not in PAD_MODES:
                raise _fail(node, op, f"padding mode {item!r} is not one of {', '.join(PAD_MODES)}")
            out.append(item)
            continue
        pair = tuple(item) if isinstance(item, (list, tuple)) else (item, item)
        if len(pair) != 2 or not all(isinstance(p, int) and not isinstance(p, bool) for p in pair):
            raise _fail(node, op, f"padding must be an int, a (before, after) pair or a mode, got {item!r}")
        if min(pair) < 0:
            raise _fail(node, op, f"padding must be >= 0, got {pair}; use a crop or pad op to cut")
        out.append((_bounded(pair[0], "padding", node, op), _bounded(pair[1], "padding", node, op)))
    return tuple(out)


def _fractions(value: Any, n: int, field: str, node: str, op: str) -> tuple[Fraction | None, ...]:
    out: list[Fraction | None] = []
    for v in _per_axis(value, n, field, node, op):
        if v is None:
            out.append(None)
            continue
        f = _fraction(v, field, node, op)
        if f <= 0:
            raise _fail(node, op, f"{field} must be positive, got {v!r}")
        out.append(f)
    return tuple(out)


def _fraction(value: Any, field: str, node: str, op: str) -> Fraction:
    """A number as an exact fraction (a float by its nearest fraction with denominator <= 10^6)."""
    if isinstance(value, bool):
        raise _fail(node, op, f"{field} must be a number, got {value!r}")
    try:
        f = Fraction(value) if not isinstance(value, float) else Fraction(value).limit_denominator(10**6)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        raise _fail(node, op, f"{field} must be a number, got {value!r}") from None
    if max(abs(f.numerator), f.denominator) > MAX_PARAMETER:
        raise _fail(node, op, f"{field} {value!r} has a numerator or denominator beyond foveal's "
                              f"limit of {MAX_PARAMETER:,} (see docs/security.md)")
    return f


def _choice(value: str, allowed: tuple[str, ...], field: str, node: str, op: str) -> str:
    if value not in allowed:
        raise _fail(node, op, f"{field} {value!r} is not one of {', '.join(allowed)}")
    return value


def normalize(op: Op, n: int, node: str) -> Op:
    """Return `op` with every field expanded to `n` axes and validated."""
    name = op.op
    rep = dataclasses.replace
    if isinstance(op, Input):
        return op
    if isinstance(op, (Elementwise, Merge)):
        _text(op.kind, "kind", node, name)
        return op
    if isinstance(op, Unknown):
        _text(op.name, "name", node, name)
        return rep(op, data_dependent=_flag(op.data_dependent, "data_dependent", node, name))
    if hasattr(op, "kind"):
        _text(op.kind, "kind", node, name)
    if isinstance(op, Window):
        return rep(op, kernel=_ints(op.kernel, n, "kernel", node, name, 1),
                   stride=_ints(op.stride, n, "stride", node, name, 1),
                   dilation=_ints(op.dilation, n, "dilation", node, name, 1),
                   padding=_padding(op.padding, n, node, name),
                   ceil_mode=_flag(op.ceil_mode, "ceil_mode", node, name))
    if isinstance(op, TransposedWindow):
        padding = _padding(op.padding, n, node, name)
        if any(isinstance(p, str) for p in padding):
            raise _fail(node, name, "transposed windows take explicit (before, after) padding")
        out_pad = _ints(op.output_padding, n, "output_padding", node, name, 0)
        stride = _ints(op.stride, n, "stride", node, name, 1)
        dilation = _ints(op.dilation, n, "dilation", node, name, 1)
        for o, s, d in zip(out_pad, stride, dilation):
            if o >= max(s, d):
                raise _fail(node, name, f"output_padding {o} must be smaller than stride or dilation")
        return rep(op, kernel=_ints(op.kernel, n, "kernel", node, name, 1), stride=stride,
                   dilation=dilation, padding=padding, output_padding=out_pad)
    if isinstance(op, Pad):
        after = op.before if op.after is None else op.after
        return rep(op, before=_ints(op.before, n, "before", node, name, None),
                   after=_ints(after, n, "after", node, name, None),
                   mode=_choice(op.mode, PAD_FILL_MODES, "mode", node, name))
    if isinstance(op, Crop):
        stop = _per_axis(op.stop, n, "stop", node, name)
        for s in stop:
            if s is not None and (isinstance(s, bool) or not isinstance(s, int)):
                raise _fail(node, name, f"stop must be an int or None, got {s!r}")
            if s is not None:
                _bounded(s, "stop", node, name)
        return rep(op, start=_ints(op.start, n, "start", node, name, None), stop=stop,
                   step=_ints(op.step, n, "step", node, name, 1))
    if isinstance(op, Resize):
        scale = _fractions(op.scale, n, "scale", node, name)
        size = _per_axis(op.size, n, "size", node, name)
        for sc, sz in zip(scale, size):
            if (sc is None) == (sz is None):
                raise _fail(node, name, "give exactly one of scale and size per axis")
            if sz is not None and (not isinstance(sz, int) or isinstance(sz, bool) or sz < 1):
                raise _fail(node, name, f"size must be a positive int, got {sz!r}")
            if sz is not None:
                _bounded(sz, "size", node, name)
        coordinate = _choice(op.coordinate, RESIZE_COORDINATES, "coordinate", node, name)
        ratio = tuple(None if r is None else _fraction(r, "ratio", node, name)
                      for r in _per_axis(op.ratio, n, "ratio", node, name))
        if any(r is not None and r < 0 for r in ratio):
            raise _fail(node, name, f"ratio must be >= 0, got {op.ratio!r}")
        offset = tuple(_fraction(v, "offset", node, name)
                       for v in _per_axis(op.offset, n, "offset", node, name))
        return rep(op, method=_choice(op.method, RESIZE_METHODS, "method", node, name),
                   scale=scale, size=size, coordinate=coordinate,
                   rounding=_choice(op.rounding, NEAREST_ROUNDINGS, "rounding", node, name),
                   ratio=ratio, offset=offset)
    if isinstance(op, (PixelShuffle, PixelUnshuffle)):
        return rep(op, factor=_ints(op.factor, n, "factor", node, name, 1))
    if isinstance(op, AdaptivePool):
        size = _per_axis(op.size, n, "size", node, name)
        for s in size:
            if s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 1):
                raise _fail(node, name, f"size must be a positive int or None (keep), got {s!r}")
            if s is not None:
                _bounded(s, "size", node, name)
        return rep(op, size=size)
    if isinstance(op, Global):
        axes = _per_axis(op.axes, n, "axes", node, name)
        if not isinstance(op.bound, str):
            raise _fail(node, name, f"bound must be a string (a reason, or empty), got {op.bound!r}")
        _text(op.bound, "bound", node, name)
        return rep(op, axes=tuple(_flag(a, "axes", node, name) for a in axes),
                   keep_size=_flag(op.keep_size, "keep_size", node, name))
    raise InvalidParameterError(f"node {node!r}: {op!r} is not a foveal op")


# ---------------------------------------------------------------------------------------------
# Short constructors for hand-built graphs.


def conv(kernel: AxisInts, stride: AxisInts = 1, padding: Any = 0, dilation: AxisInts = 1) -> Window:
    return Window(kernel, stride, dilation, padding, False, "conv")


def max_pool(kernel: AxisInts, stride: AxisInts | None = None, padding: Any = 0,
             dilation: AxisInts = 1, ceil_mode: bool = False) -> Window:
    return Window(kernel, kernel if stride is None else stride, dilation, padding, ceil_mode, "max_pool")


def avg_pool(kernel: AxisInts, stride: AxisInts | None = None, padding: Any = 0,
             ceil_mode: bool = False) -> Window:
    return Window(kernel, kernel if stride is None else stride, 1, padding, ceil_mode, "avg_pool")


def conv_transpose(kernel: AxisInts, stride: AxisInts = 1, padding: Any = 0,
                   output_padding: AxisInts = 0, dilation: AxisInts = 1) -> TransposedWindow:
    return TransposedWindow(kernel, stride, dilation, padding, output_padding)


def pad(before: AxisInts, after: AxisInts | None = None, mode: str = "constant") -> Pad:
    return Pad(before, after, mode)


def crop(start: AxisInts = 0, stop: Any = None, step: AxisInts = 1) -> Crop:
    return Crop(start, stop, step)


def upsample(scale: Any = None, size: Any = None, mode: str = "nearest",
             align_corners: bool = False) -> Resize:
    """PyTorch `interpolate` semantics: nearest, nearest-exact, (bi/tri)linear, bicubic."""
    if mode == "nearest":
        return Resize("nearest", scale, size, "asymmetric", "floor")
    if mode == "nearest-exact":
        return Resize("nearest", scale, size, "half_pixel", "round_prefer_ceil")
    method = {"linear": "linear", "bilinear": "linear", "trilinear": "linear", "bicubic": "cubic",
              "cubic": "cubic"}.get(mode)
    if method is None:
        raise InvalidParameterError(f"upsample mode {mode!r} is not nearest, nearest-exact, "
                                    f"linear, bilinear, trilinear or bicubic")
    return Resize(method, scale, size, "align_corners" if align_corners else "half_pixel", "floor")


def pixel_shuffle(factor: AxisInts) -> PixelShuffle:
    return PixelShuffle(factor)


def pixel_unshuffle(factor: AxisInts) -> PixelUnshuffle:
    return PixelUnshuffle(factor)


def adaptive_pool(size: Any, kind: str = "adaptive_avg_pool") -> AdaptivePool:
    return AdaptivePool(size, kind)


def global_pool(kind: str = "global_pool") -> Global:
    return Global(kind, True, False)


def dense() -> Global:
    """Flatten + fully connected: every unit sees the whole input."""
    return Global("dense", True, False)


def attention(axes: Any = True) -> Global:
    """Self-attention over the token axes: global, and the token count is kept."""
    return Global("attention", axes, True)


def elementwise(kind: str = "identity") -> Elementwise:
    return Elementwise(kind)


def alias(kind: str = MODULE_OUTPUT) -> Elementwise:
    """A name for another node's output (see ALIAS_KINDS)."""
    if kind not in ALIAS_KINDS:
        raise InvalidParameterError(f"an alias's kind is one of {sorted(ALIAS_KINDS)}, got {kind!r}")
    return Elementwise(kind)


def choice() -> Merge:
    """One input at a time (see CHOICE)."""
    return Merge(CHOICE)


def add() -> Merge:
    return Merge("add")


def multiply() -> Merge:
    return Merge("multiply")


def concat() -> Merge:
    return Merge("concat")


def unknown(name: str, data_dependent: bool = False) -> Unknown:
    return Unknown(name, data_dependent)
