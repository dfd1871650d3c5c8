"""The table from Keras layer class (by name) to foveal op.

Adding a layer is one entry in `_table` and one test. Classes are matched by name on the class's
MRO, restricted to Keras's own classes, so nothing here imports Keras and a reloaded Keras
(another backend) still matches. A user subclass is handled as its Keras base only when it keeps
the base's `call`. The caller's `handlers=` (a layer class or a class name: a foveal op, or a
callable(layer) returning one) win, by the same rule on the MRO. Parameters come from layer
attributes, never from weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import ops as O
from ..building import Value
from ..errors import FovealError
from ..handler_table import HandlerTable
from ..layout import (
    Layout,
    LayoutError,
    axes_in,
    axis_per_dim,
    broadcast,
    lengths,
    mask,
    merged,
    per_axis,
    reshape,
)
from .builder import Builder, Call, Handler

# -- layouts -----------------------------------------------------------------------------------


def op_dims(x: Value, data_format: str | None, n_op: int) -> tuple[list[int], int]:
    """The dims a layer's window runs over and its channel dim."""
    if data_format == "channels_first":
        return list(range(2, 2 + n_op)), 1
    return list(range(x.rank - 1 - n_op, x.rank - 1)), x.rank - 1


def layout_of(values: Sequence[Value], rank: int) -> Layout:
    """Layout of an element-wise result (NumPy broadcasting, dims aligned on the right)."""
    return broadcast([(v.layout, v.shape) for v in values], rank)


def tup(value: Any, n: int) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * n


def identity(b: Builder, x: Value, kind: str, layout: Layout | None = None) -> Value:
    return b.layer_node(O.Elementwise(kind), [x], x.layout if layout is None else layout)


# -- generic handlers --------------------------------------------------------------------------


def elementwise(kind: str) -> Handler:
    """Position-wise layers (activations, normalisation over channels, dropout at inference,
    arithmetic): one input is an identity node, several a merge (with broadcasting)."""

    def handle(b: Builder, c: Call) -> Value:
        found = c.inputs
        connected = [v for v in found if v.node is not None]
        layout = layout_of(found, len(c.out))
        op = O.Merge(kind) if len(connected) > 1 else O.Elementwise(kind)
        return b.layer_node(op, connected, layout)

    return handle


def global_over(b: Builder, x: Value, axes: Sequence[int], kind: str, keep_size: bool, layout: Layout,
                shape: Any = None, step: str | None = None) -> Value:
    if not axes:
        return b.layer_node(O.Elementwise(kind), [x], layout, shape, step)
    return b.layer_node(O.Global(kind, mask(axes, b.n_axes), keep_size), [x], layout, shape, step)


def along_axis(kind: str, attribute: str = "axis") -> Handler:
    """Softmax, LayerNormalization, UnitNormalization: every output reads the whole of the
    normalised dims; over channels that is position-wise, over a spatial dim it is global."""

    def handle(b: Builder, c: Call) -> Value:
        x = c.x
        dims = tup(getattr(c.layer, attribute, -1), 1)
        axes = sorted({a for d in dims for a in axes_in(x.layout[x.dim(d)])})
        return global_over(b, x, axes, kind, True, x.layout)

    return handle


def _group_norm(b: Builder, c: Call) -> Value:
    """GroupNormalization: statistics over every position of the sample (and a channel group)."""
    x = c.x
    axes = sorted({a for e in x.layout for a in axes_in(e)})
    return global_over(b, x, axes, "group_norm", True, x.layout)


# -- windows -----------------------------------------------------------------------------------

PADDINGS = {"valid": 0, "same": "same_upper", "causal": "causal"}
"""Keras's SAME is TensorFlow's on every backend (the odd pixel after; the torch backend pads by
hand when the two sides differ), causal pads d(k-1) before."""


def window(b: Builder, c: Call, kind: str, kernel: Sequence[int], strides: Sequence[int],
           dilation: Sequence[int], padding: str, mixes_channels: bool) -> Value:
    x = c.x
    n_op = len(kernel)
    dims, channel = op_dims(x, getattr(c.layer, "data_format", "channels_last"), n_op)
    mapped = axis_per_dim(x.layout, dims)
    if padding not in PADDINGS:
        raise LayoutError(f"padding {padding!r}")
    if all(a is None for a in mapped):
        y = b.layer_node(O.Elementwise(kind), [x], x.layout)
    else:
        n = b.n_axes
        y = b.layer_node(O.Window(per_axis(mapped, kernel, 1, n), per_axis(mapped, strides, 1, n),
                                  per_axis(mapped, dilation, 1, n), PADDINGS[padding], False, kind),
                         [x], x.layout)
    return _mix_channels(b, y, channel) if mixes_channels else y


def _mix_channels(b: Builder, y: Value, channel: int) -> Value:
    """A layer that mixes its channel dim reads the whole of any spatial axis that dim holds."""
    axes = axes_in(y.layout[channel])
    if not axes:
        return y
    layout = y.layout[:channel] + (None,) + y.layout[channel + 1:]
    return b.layer_node(O.Global("dense", mask(axes, b.n_axes), True), [y], layout, step="channels")


def _conv(kind: str) -> Handler:
    def handle(b: Builder, c: Call) -> Value:
        m = c.layer
        n = len(m.kernel_size)
        return window(b, c, kind, m.kernel_size, tup(m.strides, n), tup(m.dilation_rate, n),
                      m.padding, kind != "depthwise_conv")

    return handle


def _pool(kind: str) -> Handler:
    def handle(b: Builder, c: Call) -> Value:
        m = c.layer
        n = len(m.pool_size)
        return window(b, c, kind, m.pool_size, tup(m.strides, n), (1,) * n, m.padding, False)

    return handle


def transpose_padding(backend: str, k: int, s: int, d: int, padding: str,
                      output_padding: int | None) -> tuple[int, int, int]:
    """(before, after, extra) of a Keras transposed convolution as the backend computes it:
    input i writes outputs s*i - before + j*d; the output is (in-1)*s - before - after + d(k-1) + 1
    + extra long.

    tensorflow: the gradient of a SAME/VALID convolution from an output of Keras's length,
    (in-1)*s + max(k_eff, s) (valid), in*s (same) or (in-1)*s + k_eff%2 + output_padding.
    jax, numpy: explicit (left, right) padding of the stride-dilated input, made to match
    TensorFlow; torch since Keras 3.12 or so crops torch's unpadded result to JAX's window. Older
    Keras converted to torch's symmetric padding p and output_padding q (clamped below the
    stride), which differs from TensorFlow's when k_eff - s is odd.
    """
    k_eff = d * (k - 1) + 1
    padding = padding.lower()
    if backend == "torch" and not _torch_crops_like_jax():
        if padding == "valid":
            p, q = 0, max(k_eff, s) - k_eff if output_padding is None else output_padding
        else:
            op = s - k_eff % 2 if output_padding is None else output_padding
            p = max(-((k_eff % 2 - k_eff + op) // 2), 0)
            q = 2 * p + k_eff % 2 - k_eff + op
        return p, p, min(q, s - 1)
    if backend in ("jax", "numpy", "torch"):
        if padding == "valid":
            op = max(k_eff, s) - k_eff if output_padding is None else output_padding
            left, right = k_eff - 1, k_eff - 1 + op
        else:
            pad = s + k_eff - 2 if output_padding is None else k_eff + k_eff % 2 - 2 + output_padding
            left = min(pad // 2 + pad % 2, k_eff - 1)
            right = pad - left
        after = k_eff - 1 - right
        return k_eff - 1 - left, max(after, 0), max(-after, 0)
    if backend == "tensorflow":
        if padding == "valid":
            return 0, 0, max(k_eff, s) - k_eff if output_padding is None else output_padding
        t = k_eff - s if output_padding is None else k_eff - k_eff % 2 - output_padding
        total = max(t, 0)
        return total // 2, total - total // 2, max(-t, 0)
    raise LayoutError(f"transposed convolution on the {backend} backend")


def _torch_crops_like_jax() -> bool:
    import sys

    utils = sys.modules.get("keras.src.backend.common.backend_utils")
    return hasattr(utils, "compute_conv_transpose_output_crops_for_torch")


def _conv_transpose(b: Builder, c: Call) -> Value:
    m = c.layer
    x = c.x
    n = len(m.kernel_size)
    strides, dilation = tup(m.strides, n), tup(m.dilation_rate, n)
    output_padding = tup(m.output_padding, n)
    dims, channel = op_dims(x, m.data_format, n)
    mapped = axis_per_dim(x.layout, dims)
    pads, extras = [], []
    for k, s, d, op in zip(m.kernel_size, strides, dilation, output_padding):
        before, after, extra = transpose_padding(b.backend, k, s, d, m.padding, op)
        pads.append((before, after))
        extras.append(extra)
    if all(a is None for a in mapped):
        y = b.layer_node(O.Elementwise("conv_transpose"), [x], x.layout)
    else:
        n_axes = b.n_axes
        y = b.layer_node(O.TransposedWindow(
            per_axis(mapped, m.kernel_size, 1, n_axes), per_axis(mapped, strides, 1, n_axes),
            per_axis(mapped, dilation, 1, n_axes), per_axis(mapped, pads, (0, 0), n_axes),
            per_axis(mapped, extras, 0, n_axes)), [x], x.layout)
    return _mix_channels(b, y, channel)


def _global_pool(kind: str) -> Handler:
    def handle(b: Builder, c: Call) -> Value:
        m, x = c.layer, c.x
        n = x.rank - 2
        dims, _ = op_dims(x, m.data_format, n)
        axes = sorted({a for d in dims for a in axes_in(x.layout[d])})
        layout = x.layout if m.keepdims else tuple(e for d, e in enumerate(x.layout) if d not in dims)
        return global_over(b, x, axes, kind, False, layout)

    return handle


# -- padding, cropping, resampling ---------------------------------------------------------------


def _pairs(value: Any, n: int) -> list[tuple[int, int]]:
    """Keras's padding/cropping attribute as one (before, after) pair per dim."""
    if isinstance(value, int):
        return [(value, value)] * n
    items = list(value)
    if n == 1 and len(items) == 2 and all(isinstance(v, int) for v in items):
        return [(items[0], items[1])]
    return [(p, p) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in items]


def _borders(kind: str, attribute: str) -> Handler:
    """ZeroPadding (`padding`) and Cropping (`cropping`): (before, after) per dim."""

    def handle(b: Builder, c: Call) -> Value:
        m, x = c.layer, c.x
        pairs = _pairs(getattr(m, attribute), x.rank - 2)
        mapped = axis_per_dim(x.layout, op_dims(x, getattr(m, "data_format", "channels_last"), len(pairs))[0])
        if all(a is None for a in mapped):
            return identity(b, x, kind)
        n = b.n_axes
        before = per_axis(mapped, [p[0] for p in pairs], 0, n)
        if kind == "pad":
            op: O.Op = O.Pad(before, per_axis(mapped, [p[1] for p in pairs], 0, n))
        else:
            op = O.Crop(before, per_axis(mapped, [-p[1] if p[1] else None for p in pairs], None, n))
        return b.layer_node(op, [x], x.layout)

    return handle


def _upsampling(b: Builder, c: Call) -> Value:
    """UpSampling: nearest repeats each pixel (output o reads o // size); bilinear and bicubic
    resize to in*size with half-pixel centres, i.e. by the scale `size`."""
    m, x = c.layer, c.x
    n = x.rank - 2
    size = tup(m.size, n)
    mapped = axis_per_dim(x.layout, op_dims(x, getattr(m, "data_format", "channels_last"), n)[0])
    interpolation = getattr(m, "interpolation", "nearest")
    if interpolation == "nearest":
        op = O.Resize("nearest", per_axis(mapped, size, 1, b.n_axes), None, "asymmetric", "floor")
    elif interpolation in ("bilinear", "bicubic"):
        method = "linear" if interpolation == "bilinear" else "cubic"
        op = O.Resize(method, per_axis(mapped, size, 1, b.n_axes), None, "half_pixel", "floor")
    else:
        raise LayoutError(f"interpolation {interpolation!r}")
    if all(a is None for a in mapped):
        return identity(b, x, "upsampling")
    return b.layer_node(op, [x], x.layout)


def _resizing(b: Builder, c: Call) -> Value:
    """Resizing to (height, width). Nearest reads floor((o + 1/2) * in/out) on every backend
    (TensorFlow's half-pixel nearest, torch's nearest-exact); bilinear and bicubic use half-pixel
    centres. crop_to_aspect_ratio / pad_to_aspect_ratio first crop or pad the centred box, whose
    size depends on the input size: exact when it is known, unknown otherwise."""
    m, x = c.layer, c.x
    dims = op_dims(x, m.data_format, 2)[0]
    mapped = axis_per_dim(x.layout, dims)
    method = {"nearest": "nearest", "bilinear": "linear", "bicubic": "cubic"}.get(m.interpolation)
    if method is None:
        raise LayoutError(f"interpolation {m.interpolation!r}")
    sizes = [x.shape[d] for d in dims]
    target = (m.height, m.width)
    if m.antialias and method != "nearest" and (None in sizes or any(
            t < s for t, s in zip(target, sizes))):
        raise LayoutError("antialiased downsampling reads a scale-dependent window")
    n = b.n_axes
    if all(a is None for a in mapped):
        return identity(b, x, "resize")
    if m.crop_to_aspect_ratio or m.pad_to_aspect_ratio:
        if None in sizes:
            raise LayoutError("crop/pad to aspect ratio needs the input size")
        height, width = sizes
        th, tw = target
        if m.crop_to_aspect_ratio:
            ch = max(min(height, int(float(width * th) / tw)), 1)
            cw = max(min(width, int(float(height * tw) / th)), 1)
            hs, ws = int(float(height - ch) / 2), int(float(width - cw) / 2)
            shape = list(x.shape)
            shape[dims[0]], shape[dims[1]] = ch, cw
            x = b.layer_node(O.Crop(per_axis(mapped, (hs, ws), 0, n),
                                    per_axis(mapped, (hs + ch, ws + cw), None, n)),
                             [x], x.layout, tuple(shape), step="crop")
        else:
            ph, pw = max(height, int(float(width * th) / tw)), max(width, int(float(height * tw) / th))
            hs, ws = int(float(ph - height) / 2), int(float(pw - width) / 2)
            shape = list(x.shape)
            shape[dims[0]], shape[dims[1]] = ph, pw
            x = b.layer_node(O.Pad(per_axis(mapped, (hs, ws), 0, n),
                                   per_axis(mapped, (ph - height - hs, pw - width - ws), 0, n)),
                             [x], x.layout, tuple(shape), step="pad")
    rounding = "round_prefer_ceil" if method == "nearest" else "floor"
    return b.layer_node(O.Resize(method, None, per_axis(mapped, target, None, n), "half_pixel", rounding),
                        [x], x.layout)


# -- dense, reshapes, merges ---------------------------------------------------------------------


def _dense(b: Builder, c: Call) -> Value:
    """Dense acts on the last dim: over channels it is position-wise (a 1x1 convolution); over
    a dim holding spatial axes (after Flatten) every unit reads all of them."""
    x = c.x
    axes = axes_in(x.layout[-1])
    return global_over(b, x, axes, "dense", False, x.layout[:-1] + (None,))


def _flatten_layer(b: Builder, c: Call) -> Value:
    x = c.x
    return identity(b, x, "flatten", (x.layout[0], merged(x.layout[1:], x.shape[1:])))


def _reshape(b: Builder, c: Call) -> Value:
    """Reshape by matching groups of dims with equal products (`layout.reshape`): dims merged
    into one hold their axes, a merged dim split back into its axes' lengths holds them again,
    size-1 dims come and go; another split of a dim holding a spatial axis is not followed."""
    x = c.x
    if None in x.shape[1:] or None in c.out[1:]:
        raise LayoutError("a Reshape with unknown sizes")
    layout = reshape(x.layout[1:], x.shape[1:], c.out[1:], lengths(x.layout, x.shape, b.n_axes))
    return identity(b, x, "reshape", (x.layout[0], *layout))


def _permute(b: Builder, c: Call) -> Value:
    """Permute only reorders dims (1-based, batch excluded): the same positions, a new layout."""
    x = c.x
    layout = (x.layout[0],) + tuple(x.layout[d] for d in c.layer.dims)
    return identity(b, x, "permute", layout)


def _concatenate(b: Builder, c: Call) -> Value:
    found = c.inputs
    connected = [v for v in found if v.node is not None]
    d = connected[0].dim(c.layer.axis)
    if any(v.layout[d] is not None for v in connected):
        raise LayoutError("a concatenation along a spatial axis")
    layout = layout_of(found, len(c.out))
    op = O.Merge("concat") if len(connected) > 1 else O.Elementwise("concat")
    return b.layer_node(op, connected, layout)


def _lambda(b: Builder, c: Call) -> list[Value]:
    fn = getattr(c.layer, "function", None)
    name = getattr(fn, "__name__", "a function")
    return b.unknown_layer(c, f"keras.layers.Lambda ({name}: arbitrary Python code; replace it with Keras "
                              f"layers or pass a handler to analyse it)", counted=True)


# -- the table ---------------------------------------------------------------------------------

ACTIVATIONS = ("Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "ThresholdedReLU")
ELEMENTWISE_LAYERS = (
    "Identity", "BatchNormalization", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
    "Masking", "Rescaling", "Normalization",
)
MERGES = {"Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Average": "average",
          "Maximum": "maximum", "Minimum": "minimum"}


def _table() -> dict[str, Handler]:
    table: dict[str, Handler] = {name: elementwise(name.lower()) for name in ACTIVATIONS + ELEMENTWISE_LAYERS}
    table["Softmax"] = along_axis("softmax")
    table["LayerNormalization"] = along_axis("layer_norm")
    table["UnitNormalization"] = along_axis("unit_norm")
    table["GroupNormalization"] = _group_norm
    table.update({name: elementwise(kind) for name, kind in MERGES.items()})
    for k in ("1D", "2D", "3D"):
        table[f"Conv{k}"] = _conv("conv")
        table[f"Conv{k}Transpose"] = _conv_transpose
        table[f"MaxPooling{k}"] = _pool("max_pool")
        table[f"AveragePooling{k}"] = _pool("avg_pool")
        table[f"GlobalMaxPooling{k}"] = _global_pool("global_max_pool")
        table[f"GlobalAveragePooling{k}"] = _global_pool("global_avg_pool")
        table[f"ZeroPadding{k}"] = _borders("pad", "padding")
        table[f"Cropping{k}"] = _borders("crop", "cropping")
        table[f"UpSampling{k}"] = _upsampling
    for k in ("1D", "2D"):
        table[f"DepthwiseConv{k}"] = _conv("depthwise_conv")
        table[f"SeparableConv{k}"] = _conv("separable_conv")
    table.update({
        "Dense": _dense, "Flatten": _flatten_layer, "Reshape": _reshape, "Permute": _permute,
        "Concatenate": _concatenate, "Resizing": _resizing, "Lambda": _lambda,
    })
    return table


OPS_ELEMENTWISE = frozenset([
    # keras.ops called on symbolic tensors inside a functional model (keras.src.ops.numpy / nn)
    "Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum", "Power", "Negative",
    "Abs", "Absolute", "Exp", "Log", "Sqrt", "Square", "Clip", "Where", "Sign", "Cast", "Relu",
    "Relu6", "Sigmoid", "HardSigmoid", "Silu", "HardSilu", "Swish", "HardSwish", "Gelu", "Elu",
    "Selu", "LeakyRelu", "Softplus", "Softsign", "Tanh", "Mish", "Celu", "Glu", "Erf", "Reciprocal",
])
OPS = "keras.ops."
"""The key prefix of a keras.ops operation: `keras.ops.Add` (the layer keras.layers.Add is `Add`)."""
OPS_MODULES = ("keras.src.ops.numpy", "keras.src.ops.nn", "keras.src.ops.core")

TABLE: HandlerTable[Handler] = HandlerTable({
    **_table(),
    **{OPS + name: elementwise(name.lower()) for name in OPS_ELEMENTWISE},
    # keras.applications' own layers, by qualified name
    "keras.src.applications.convnext.LayerScale": elementwise("layer_scale"),
    "keras.src.applications.inception_resnet_v2.CustomScaleLayer": elementwise("add"),
})
"""Keras layers by class name (keras.layers.*), keras.ops by `keras.ops.<Class>`, and
keras.applications' own layers by qualified class name."""


def handler_for(table: HandlerTable[Handler], layer: Any) -> Handler | None:
    """The handler of a layer or keras operation, or None (an unknown op). Up the class's MRO:
    the caller's entry for the class (or its name), else Keras's own class's default; a base's
    handler serves a subclass only when the subclass keeps the base's `call`."""
    cls = type(layer)
    for klass in cls.__mro__:
        user = _user_entry(table.extras, klass)
        if user is not None:
            return user if _same_call(cls, klass) else None
        if klass.__name__ in ("Layer", "Operation"):
            return None
        module = klass.__module__
        if not module.startswith("keras."):
            continue
        if module.startswith(OPS_MODULES):
            return table.defaults.get(OPS + klass.__name__)
        found = table.defaults.get(qualified_name(klass)) or table.defaults.get(klass.__name__)
        if found is not None:
            return found if _same_call(cls, klass) else None
    return None


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


def _user_entry(extras: Mapping[Any, Handler], klass: type) -> Handler | None:
    if not extras:
        return None
    for key in (klass, qualified_name(klass), klass.__name__):
        if key in extras:
            return extras[key]
    return None


def _same_call(cls: type, klass: type) -> bool:
    return klass is cls or getattr(cls, "call", None) is getattr(klass, "call", None)


# -- the caller's handlers -----------------------------------------------------------------------


def user_handler(spec: Any) -> Handler:
    """A caller's entry: a foveal op, or a callable(layer) returning one, applied position-wise
    to the layer's inputs (a Merge reads them all)."""

    def handle(b: Builder, c: Call) -> list[Value]:
        op = spec if isinstance(spec, O.OP_TYPES) else spec(c.layer)
        if not isinstance(op, O.OP_TYPES):
            raise FovealError(f"the handler for layer {c.layer.name!r} ({type(c.layer).__name__}) returned "
                              f"{op!r}, not a foveal op")
        connected = [v for v in c.inputs if v.node is not None]
        x = connected[0]
        first = b.layer_node(op, connected, x.layout if x.rank == len(c.out) else (None,) * len(c.out))
        return [first] + [Value(first.node, x.layout if x.rank == len(shape) else (None,) * len(shape), shape)
                          for shape in c.out_shapes[1:]]

    return handle


def table_with(handlers: Mapping[Any, Any]) -> HandlerTable[Handler]:
    """The default table with the caller's `handlers=` (keys: layer classes or class names)."""
    for key in handlers:
        if not isinstance(key, (type, str)):
            raise FovealError(f"handlers= keys for a Keras model are layer classes or class names, "
                              f"got {key!r}")
    return TABLE.with_extras({key: user_handler(spec) for key, spec in handlers.items()})
