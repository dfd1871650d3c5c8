"""FLOPs of one Keras layer call, from its weights' shapes and the call's input and output shapes.

A multiply-add counts 2. Per layer (docs/keras.md):
- Conv1D/2D/3D: 2 * prod(kernel) * Cin/groups * Cout per output position, + Cout bias adds;
- DepthwiseConv: 2 * prod(kernel) * Cin * multiplier per output position (+ bias);
- SeparableConv: its depthwise and pointwise parts (+ bias);
- ConvTranspose: 2 * prod(kernel) * Cin * Cout per *input* position (+ bias per output);
- Dense: 2 * in * units per position (+ units bias adds);
- pooling: prod(pool_size) per output element; global pooling: 1 per input element;
- BatchNormalization and other normalisations, Rescaling, Normalization: 2 per element
  (a folded scale and shift; statistics are not counted);
- activations and element-wise keras ops: 1 per output element;
- Add/Subtract/Multiply/Average/Maximum/Minimum: (inputs - 1) per output element;
- everything else (reshapes, padding, cropping, resampling, dropout, concatenation): 0.
"""

from __future__ import annotations

import math
from typing import Any

from .builder import Call
from .handlers import ACTIVATIONS, MERGES, OPS_ELEMENTWISE


def _prod(values: Any) -> int:
    return math.prod(int(v) for v in values)


def _elements(shape: Any) -> int:
    """Elements of one sample (the batch dim excluded; unknown dims count 1)."""
    return _prod(1 if d is None else d for d in shape[1:])


def _bias(layer: Any, out: Any) -> int:
    return _elements(out) if getattr(layer, "use_bias", False) else 0


def _channels(layer: Any, shape: Any) -> int:
    d = 1 if getattr(layer, "data_format", "channels_last") == "channels_first" else -1
    return int(shape[d])


def count(call: Call) -> int:
    """FLOPs of one call (batch of one)."""
    layer = call.layer
    out = call.out
    names = [k.__name__ for k in type(layer).__mro__ if k.__module__.startswith("keras.")]
    name = names[0] if names else type(layer).__name__
    qualified = f"{type(layer).__module__}.{type(layer).__name__}"
    if "BaseSeparableConv" in names:
        positions = _elements(out) // _channels(layer, out)
        return 2 * positions * (_prod(layer.depthwise_kernel.shape) + _prod(layer.pointwise_kernel.shape)) \
            + _bias(layer, out)
    if "BaseDepthwiseConv" in names:
        positions = _elements(out) // _channels(layer, out)
        return 2 * positions * _prod(layer.kernel.shape) + _bias(layer, out)
    if "BaseConvTranspose" in names:
        x = call.in_specs[0]
        positions = _elements(x) // _channels(layer, x)
        return 2 * positions * _prod(layer.kernel.shape) + _bias(layer, out)
    if "BaseConv" in names:
        positions = _elements(out) // _channels(layer, out)
        return 2 * positions * _prod(layer.kernel.shape) + _bias(layer, out)
    if name == "Dense":
        positions = _elements(out) // int(out[-1])
        return 2 * positions * _prod(layer.kernel.shape) + _bias(layer, out)
    if "BasePooling" in names:
        return _prod(layer.pool_size) * _elements(out)
    if "BaseGlobalPooling" in names:
        return _elements(call.in_specs[0])
    if name in ("BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
                "Rescaling", "Normalization") or qualified.endswith("inception_resnet_v2.CustomScaleLayer"):
        return 2 * _elements(out)
    if name in ACTIVATIONS or qualified.endswith("convnext.LayerScale"):
        return _elements(out)
    if name in MERGES:
        return (len(call.in_specs) - 1) * _elements(out)
    if type(layer).__module__.startswith(("keras.src.ops.numpy", "keras.src.ops.nn")) and \
            type(layer).__name__ in OPS_ELEMENTWISE:
        return max(len(call.in_specs) - 1, 1) * _elements(out)
    return 0
