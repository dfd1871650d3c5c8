"""The table from Keras layer class (by name) to foveal op.

Adding a layer is one entry here and one test. Classes are matched by name on the class's MRO,
restricted to Keras's own classes, so nothing here imports Keras and a reloaded Keras (another
backend) still matches. A user subclass is handled as its Keras base only when it keeps the
base's `call`. Parameters come from layer attributes, never from weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import ops as O
from .builder import Builder, Call, Handler, Layout, NotFollowed, Value

# -- layouts -----------------------------------------------------------------------------------


def axes_in(entry: Any) -> tuple[int, ...]:
    if entry is None:
        return ()
    if isinstance(entry, int):
        return (entry,)
    return tuple(sorted(entry))


def mask(b: Builder, axes: Sequence[int]) -> tuple[bool, ...]:
    return tuple(a in axes for a in range(b.n_axes))


def op_dims(x: Value, data_format: str | None, n_op: int) -> tuple[list[int], int]:
    """The dims a layer's window runs over and its channel dim."""
    if data_format == "channels_first":
        return list(range(2, 2 + n_op)), 1
    return list(range(x.rank - 1 - n_op, x.rank - 1)), x.rank - 1


def mapped_axes(x: Value, dims: Sequence[int]) -> list[int | None]:
    out: list[int | None] = []
    for d in dims:
        entry = x.layout[d]
        if isinstance(entry, frozenset):
            raise NotFollowed("a spatial window over a dim of flattened spatial axes")
        out.append(entry)
    return out


def per_axis(b: Builder, mapped: Sequence[int | None], values: Sequence[Any], identity: Any) -> list[Any]:
    out = [identity] * b.n_axes
    for a, v in zip(mapped, values):
        if a is not None:
            out[a] = v
    return out


def broadcast(values: Sequence[Value], rank: int) -> Layout:
    """Layout of an element-wise result (NumPy broadcasting, dims aligned on the right)."""
    out: list[Any] = [None] * rank
    for v in values:
        for k, entry in enumerate(v.layout[::-1]):
            if entry is None:
                continue
            d = rank - 1 - k
            if out[d] is not None and out[d] != entry:
                raise NotFollowed("inputs hold different spatial axes in one dim")
            out[d] = entry
    return tuple(out)


def tup(value: Any, n: int) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * n


# -- generic handlers --------------------------------------------------------------------------


def elementwise(kind: str) -> Handler:
    """Position-wise layers (activations, normalisation over channels, dropout at inference,
    arithmetic): one input is an identity node, several a merge (with broadcasting)."""

    def handle(b: Builder, c: Call) -> Value:
        found = c.inputs
        connected = [v for v in found if v.node is not None]
        layout = broadcast(found, len(c.out))
        op = O.Merge(kind) if len(connected) > 1 else O.Elementwise(kind)
        return b.emit(op, connected, layout)

    return handle


def global_over(b: Builder, x: Value, axes: Sequence[int], kind: str, keep_size: bool, layout: Layout,
                shape: Any = None, step: str | None = None) -> Value:
    if not axes:
        return b.emit(O.Elementwise(kind), [x], layout, shape, step)
    return b.emit(O.Global(kind, mask(b, axes), keep_size), [x], layout, shape, step)


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
    mapped = mapped_axes(x, dims)
    if padding not in PADDINGS:
        raise NotFollowed(f"padding {padding!r}")
    if all(a is None for a in mapped):
        y = b.emit(O.Elementwise(kind), [x], x.layout)
    else:
        y = b.emit(O.Window(per_axis(b, mapped, kernel, 1), per_axis(b, mapped, strides, 1),
                            per_axis(b, mapped, dilation, 1), PADDINGS[padding], False, kind),
                   [x], x.layout)
    return _mix_channels(b, y, channel) if mixes_channels else y


def _mix_channels(b: Builder, y: Value, channel: int) -> Value:
    """A layer that mixes its channel dim reads the whole of any spatial axis that dim holds."""
    axes = axes_in(y.layout[channel])
    if not axes:
        return y
    layout = y.layout[:channel] + (None,) + y.layout[channel + 1:]
    return b.emit(O.Global("dense", mask(b, axes), True), [y], layout, step="channels")


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
    raise NotFollowed(f"transposed convolution on the {backend} backend")


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
    mapped = mapped_axes(x, dims)
    pads, extras = [], []
    for k, s, d, op in zip(m.kernel_size, strides, dilation, output_padding):
        before, after, extra = transpose_padding(b.backend, k, s, d, m.padding, op)
        pads.append((before, after))
        extras.append(extra)
    if all(a is None for a in mapped):
        y = b.emit(O.Elementwise("conv_transpose"), [x], x.layout)
    else:
        y = b.emit(O.TransposedWindow(per_axis(b, mapped, m.kernel_size, 1), per_axis(b, mapped, strides, 1),
                                      per_axis(b, mapped, dilation, 1), per_axis(b, mapped, pads, (0, 0)),
                                      per_axis(b, mapped, extras, 0)), [x], x.layout)
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


def _zero_padding(b: Builder, c: Call) -> Value:
    m, x = c.layer, c.x
    pairs = _pairs(m.padding, x.rank - 2)
    mapped = mapped_axes(x, op_dims(x, getattr(m, "data_format", "channels_last"), len(pairs))[0])
    if all(a is None for a in mapped):
        return b.identity(x, "pad")
    return b.emit(O.Pad(per_axis(b, mapped, [p[0] for p in pairs], 0),
                        per_axis(b, mapped, [p[1] for p in pairs], 0)), [x], x.layout)


def _cropping(b: Builder, c: Call) -> Value:
    m, x = c.layer, c.x
    pairs = _pairs(m.cropping, x.rank - 2)
    mapped = mapped_axes(x, op_dims(x, getattr(m, "data_format", "channels_last"), len(pairs))[0])
    if all(a is None for a in mapped):
        return b.identity(x, "crop")
    return b.emit(O.Crop(per_axis(b, mapped, [p[0] for p in pairs], 0),
                         per_axis(b, mapped, [-p[1] if p[1] else None for p in pairs], None)),
                  [x], x.layout)


def _upsampling(b: Builder, c: Call) -> Value:
    """UpSampling: nearest repeats each pixel (output o reads o // size); bilinear and bicubic
    resize to in*size with half-pixel centres, i.e. by the scale `size`."""
    m, x = c.layer, c.x
    n = x.rank - 2
    size = tup(m.size, n)
    mapped = mapped_axes(x, op_dims(x, getattr(m, "data_format", "channels_last"), n)[0])
    interpolation = getattr(m, "interpolation", "nearest")
    if interpolation == "nearest":
        op = O.Resize("nearest", per_axis(b, mapped, size, 1), None, "asymmetric", "floor")
    elif interpolation in ("bilinear", "bicubic"):
        method = "linear" if interpolation == "bilinear" else "cubic"
        op = O.Resize(method, per_axis(b, mapped, size, 1), None, "half_pixel", "floor")
    else:
        raise NotFollowed(f"interpolation {interpolation!r}")
    if all(a is None for a in mapped):
        return b.identity(x, "upsampling")
    return b.emit(op, [x], x.layout)


def _resizing(b: Builder, c: Call) -> Value:
    """Resizing to (height, width). Nearest reads floor((o + 1/2) * in/out) on every backend
    (TensorFlow's half-pixel nearest, torch's nearest-exact); bilinear and bicubic use half-pixel
    centres. crop_to_aspect_ratio / pad_to_aspect_ratio first crop or pad the centred box, whose
    size depends on the input size: exact when it is known, unknown otherwise."""
    m, x = c.layer, c.x
    dims = op_dims(x, m.data_format, 2)[0]
    mapped = mapped_axes(x, dims)
    method = {"nearest": "nearest", "bilinear": "linear", "bicubic": "cubic"}.get(m.interpolation)
    if method is None:
        raise NotFollowed(f"interpolation {m.interpolation!r}")
    sizes = [x.shape[d] for d in dims]
    target = (m.height, m.width)
    if m.antialias and method != "nearest" and (None in sizes or any(
            t < s for t, s in zip(target, sizes))):
        raise NotFollowed("antialiased downsampling reads a scale-dependent window")
    if all(a is None for a in mapped):
        return b.identity(x, "resize")
    if m.crop_to_aspect_ratio or m.pad_to_aspect_ratio:
        if None in sizes:
            raise NotFollowed("crop/pad to aspect ratio needs the input size")
        height, width = sizes
        th, tw = target
        if m.crop_to_aspect_ratio:
            ch = max(min(height, int(float(width * th) / tw)), 1)
            cw = max(min(width, int(float(height * tw) / th)), 1)
            hs, ws = int(float(height - ch) / 2), int(float(width - cw) / 2)
            shape = list(x.shape)
            shape[dims[0]], shape[dims[1]] = ch, cw
            x = b.emit(O.Crop(per_axis(b, mapped, (hs, ws), 0),
                              per_axis(b, mapped, (hs + ch, ws + cw), None)),
                       [x], x.layout, tuple(shape), step="crop")
        else:
            ph, pw = max(height, int(float(width * th) / tw)), max(width, int(float(height * tw) / th))
            hs, ws = int(float(ph - height) / 2), int(float(pw - width) / 2)
            shape = list(x.shape)
            shape[dims[0]], shape[dims[1]] = ph, pw
            x = b.emit(O.Pad(per_axis(b, mapped, (hs, ws), 0),
                             per_axis(b, mapped, (ph - height - hs, pw - width - ws), 0)),
                       [x], x.layout, tuple(shape), step="pad")
    rounding = "round_prefer_ceil" if method == "nearest" else "floor"
    return b.emit(O.Resize(method, None, per_axis(b, mapped, target, None), "half_pixel", rounding),
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
    merged = frozenset(a for e in x.layout[1:] for a in axes_in(e))
    return b.identity(x, "flatten", (x.layout[0], merged or None))


def _reshape(b: Builder, c: Call) -> Value:
    """Reshape by matching groups of dims with equal products: a group kept as one dim keeps its
    entry, dims merged into one dim hold the union of their axes, size-1 dims come and go.
    Splitting a dim that holds a spatial axis (or reshaping with unknown sizes) is not followed."""
    x = c.x
    return b.identity(x, "reshape", reshape_layout(x.layout[1:], x.shape[1:], c.out[1:], (x.layout[0],)))


def reshape_layout(layout: Layout, old: Sequence[Any], new: Sequence[Any], head: Layout) -> Layout:
    if None in old or None in new:
        raise NotFollowed("a Reshape with unknown sizes")
    src = [(n, e) for n, e in zip(old, layout) if n != 1]
    out: list[Any] = []
    i = j = 0
    while j < len(new):
        if new[j] == 1:
            out.append(None)
            j += 1
            continue
        group: list[Any] = []
        outs, size_in, size_out = [j], 1, new[j]
        j += 1
        while size_in != size_out:
            if size_in < size_out:
                if i >= len(src):
                    raise NotFollowed("a Reshape whose sizes do not match")
                size_in *= src[i][0]
                group.append(src[i][1])
                i += 1
            else:
                if j >= len(new):
                    raise NotFollowed("a Reshape whose sizes do not match")
                size_out *= new[j]
                outs.append(j)
                j += 1
        axes = frozenset(a for e in group for a in axes_in(e))
        if sum(new[k] != 1 for k in outs) > 1:
            if axes:
                raise NotFollowed("a Reshape that splits a dim holding a spatial axis")
            out.extend([None] * len(outs))
            continue
        entry = group[0] if len(group) == 1 else (axes or None)
        out.extend(entry if new[k] != 1 else None for k in outs)
    if i != len(src):
        raise NotFollowed("a Reshape whose sizes do not match")
    return head + tuple(out)


def _permute(b: Builder, c: Call) -> Value:
    """Permute only reorders dims (1-based, batch excluded): the same positions, a new layout."""
    x = c.x
    layout = (x.layout[0],) + tuple(x.layout[d] for d in c.layer.dims)
    return b.identity(x, "permute", layout)


def _concatenate(b: Builder, c: Call) -> Value:
    found = c.inputs
    connected = [v for v in found if v.node is not None]
    d = connected[0].dim(c.layer.axis)
    if any(v.layout[d] is not None for v in connected):
        raise NotFollowed("a concatenation along a spatial axis")
    layout = broadcast(found, len(c.out))
    op = O.Merge("concat") if len(connected) > 1 else O.Elementwise("concat")
    return b.emit(op, connected, layout)


def _lambda(b: Builder, c: Call) -> list[Value]:
    fn = getattr(c.layer, "function", None)
    name = getattr(fn, "__name__", "a function")
    return b.unknown(c, f"keras.layers.Lambda ({name}: arbitrary Python code; replace it with Keras "
                        f"layers to analyse it)")


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
        table[f"ZeroPadding{k}"] = _zero_padding
        table[f"Cropping{k}"] = _cropping
        table[f"UpSampling{k}"] = _upsampling
    for k in ("1D", "2D"):
        table[f"DepthwiseConv{k}"] = _conv("depthwise_conv")
        table[f"SeparableConv{k}"] = _conv("separable_conv")
    table.update({
        "Dense": _dense, "Flatten": _flatten_layer, "Reshape": _reshape, "Permute": _permute,
        "Concatenate": _concatenate, "Resizing": _resizing, "Lambda": _lambda,
    })
    return table


LAYERS = _table()
"""Keras layer classes (keras.layers.*) by class name."""

BY_NAME: dict[str, Handler] = {
    # keras.applications' own layers, matched by qualified name
    "keras.src.applications.convnext.LayerScale": elementwise("layer_scale"),
    "keras.src.applications.inception_resnet_v2.CustomScaleLayer": elementwise("add"),
}

OPS_ELEMENTWISE = frozenset([
    # keras.ops called on symbolic tensors inside a functional model (keras.src.ops.numpy / nn)
    "Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum", "Power", "Negative",
    "Abs", "Absolute", "Exp", "Log", "Sqrt", "Square", "Clip", "Where", "Sign", "Cast", "Relu",
    "Relu6", "Sigmoid", "HardSigmoid", "Silu", "HardSilu", "Swish", "HardSwish", "Gelu", "Elu",
    "Selu", "LeakyRelu", "Softplus", "Softsign", "Tanh", "Mish", "Celu", "Glu", "Erf", "Reciprocal",
])


def handler_for(layer: Any) -> Handler | None:
    """The handler of a layer or keras operation, or None (an unknown op)."""
    cls = type(layer)
    found = BY_NAME.get(f"{cls.__module__}.{cls.__name__}")
    if found is not None:
        return found
    for klass in cls.__mro__:
        module = klass.__module__
        if not module.startswith("keras."):
            continue
        if module.startswith(("keras.src.ops.numpy", "keras.src.ops.nn", "keras.src.ops.core")):
            return elementwise(klass.__name__.lower()) if klass.__name__ in OPS_ELEMENTWISE else None
        found = LAYERS.get(klass.__name__)
        if found is not None:
            same_call = getattr(cls, "call", None) is getattr(klass, "call", None)
            return found if klass is cls or same_call else None
        if klass.__name__ in ("Layer", "Operation"):
            return None
    return None
