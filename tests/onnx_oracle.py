"""Perturbation oracle for ONNX graphs: which input pixels does each output position depend on?

Independent of foveal (it imports nothing from it). It runs the ONNX reference implementation
(`onnx.reference.ReferenceEvaluator`) on a random input and on copies of it where one input
pixel (every channel of one spatial position) is raised by a large positive delta, and records
which output positions changed. So it sees exactly what the ONNX spec (as the reference
implements it) reads, with these caveats:

- A tap is seen only when its effect is not cancelled. Raising every channel of a pixel at once
  could cancel through weights of mixed signs, so test graphs should draw their weights positive
  (`positive_weights`); cubic interpolation has negative taps, but a single resize acts on each
  channel alone, so nothing cancels there. The delta is positive so that a max pool picks the
  pixel and no ReLU-like op hides it; avoid ReLU before anything.
- A tap whose weight is exactly zero (linear / cubic interpolation at an integer source
  coordinate) is not seen; foveal does not count those taps either. The reference computes the
  interpolation weights in float64, so a weight that is zero in exact arithmetic is zero there
  too for the dyadic scales the tests use; a change must exceed `threshold` to count, which also
  absorbs the rounding of BLAS-backed ops run on a batch.
- The model is run in float64 (its float tensors are converted, except the `scales` / `roi`
  inputs of Resize and Upsample, which the spec keeps float32), unless `float64=False`.
- All perturbations run as one batch when the graph allows it (the output's first axis equals
  the batch size and row 0 equals an unbatched run); otherwise one run per pixel.

Known limits of the reference implementation (onnx 1.23):

- Its pooling is wrong in many configurations (MaxPool with stride 1 reads 2-D `pads` as
  (top, bottom, left, right); SAME_LOWER MaxPool and most AveragePool / LpPool configurations
  with auto_pad, ceil_mode or dilations give other shapes or values than the spec, or raise).
  The oracle therefore runs MaxPool, AveragePool and LpPool with `_SpecPool` below, written from
  the spec's formulas (`pool_geometry`), through the evaluator's `new_ops`.
- BatchNormalization-9..13 uses the batch statistics (see `BatchNormalization` below), so the
  oracle runs it in inference mode too.
- Upsample only does nearest with integer scales (the opset 9 form; the opset 7 `scales`
  attribute is not read), and Resize-10 is run as if its second input were `roi`, so it fails.
  The tests give the oracle the spec's equivalent model (Resize-11, asymmetric).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

Index = tuple[int, ...]
Interval = tuple[int, int]

DELTA = 1000.0
THRESHOLD = 1e-6

# Inputs the spec types as float32 whatever the data type: (op, input index).
_FLOAT32_INPUTS = {("Resize", 1), ("Resize", 2), ("Upsample", 1)}


@dataclass(frozen=True)
class Dependencies:
    """For one tensor: its spatial shape and, per output position, the input pixels it reads."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    reads: Mapping[Index, frozenset[Index]]

    def hull(self, index: Index) -> tuple[Interval | None, ...]:
        """Per input axis, (first, last) of the pixels read; None on every axis if none."""
        pixels = self.reads[index]
        if not pixels:
            return tuple(None for _ in self.input_shape)
        return tuple((min(p[a] for p in pixels), max(p[a] for p in pixels))
                     for a in range(len(self.input_shape)))

    def is_box(self, index: Index) -> bool:
        """Whether the pixels read fill their hull (no holes)."""
        hull = self.hull(index)
        if hull[0] is None:
            return True
        volume = 1
        for first, last in hull:  # type: ignore[misc]
            volume *= last - first + 1
        return volume == len(self.reads[index])

    def positions(self) -> Iterable[Index]:
        return itertools.product(*(range(n) for n in self.output_shape))


def _float32_names(graph: onnx.GraphProto) -> set[str]:
    names = set()
    for node in graph.node:
        for i, name in enumerate(node.input):
            if (node.op_type, i) in _FLOAT32_INPUTS and name:
                names.add(name)
    return names


def to_float64(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` computing in float64 (scales / roi stay float32, as the spec wants)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    keep = _float32_names(graph)
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and init.name not in keep:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float64),
                                                  init.name))
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] not in keep:
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    attr.t.CopyFrom(numpy_helper.from_array(
                        numpy_helper.to_array(attr.t).astype(np.float64), attr.t.name))
        if node.op_type in ("Cast", "CastLike"):
            for attr in node.attribute:
                if attr.name == "to" and attr.i == TensorProto.FLOAT:
                    attr.i = TensorProto.DOUBLE
    for value in itertools.chain(graph.input, graph.output, graph.value_info):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT and value.name not in keep:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE
    return model


# ------------------------------------------------------------------------------------------
# Pooling written from the spec


def pool_geometry(n: int, kernel: int, stride: int, dilation: int, auto_pad: str,
                  pads: tuple[int, int], ceil_mode: bool) -> tuple[int, int]:
    """(output size, padding before) of one pooling axis, from the ONNX pooling formulas.

    NOTSET: floor (or ceil) of (n + pads - ((k - 1) d + 1)) / s, + 1; with ceil_mode a window
    that would start in the end padding is dropped. VALID: ceil((n - ((k - 1) d + 1) + 1) / s);
    SAME_*: ceil(n / s), total padding max(0, (out - 1) s + (k - 1) d + 1 - n), the odd pixel
    at the end (SAME_UPPER) or the beginning (SAME_LOWER). auto_pad ignores ceil_mode (the
    spec's ceil and floor forms agree there).
    """
    extent = (kernel - 1) * dilation + 1
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = -(-n // stride)
        total = max(0, (out - 1) * stride + extent - n)
        return out, total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
    if auto_pad == "VALID":
        return -(-(n - extent + 1) // stride), 0
    before, after = pads
    span = n + before + after - extent
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= n + before:
        out -= 1
    return out, before


class _SpecPool(OpRun):
    """MaxPool / AveragePool / LpPool straight from the spec: output o of an axis reads the
    taps o*s - pad_before + d*t, t < k, that fall inside the input."""

    reduce = "max"

    def _run(self, x, auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=None, pads=None,
             strides=None, count_include_pad=0, p=2, storage_order=0):
        rank = len(kernel_shape)
        dilations = list(dilations or [1] * rank)
        strides = list(strides or [1] * rank)
        pads = list(pads or [0] * (2 * rank))
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else (auto_pad or "NOTSET")
        axes_taps = []
        for a in range(rank):
            n = x.shape[2 + a]
            out, before = pool_geometry(n, kernel_shape[a], strides[a], dilations[a], auto_pad,
                                        (pads[a], pads[a + rank]), bool(ceil_mode))
            axes_taps.append([[o * strides[a] - before + dilations[a] * t for t in range(kernel_shape[a])]
                              for o in range(out)])
        y = np.zeros(x.shape[:2] + tuple(len(t) for t in axes_taps), dtype=x.dtype)
        for position in itertools.product(*(range(len(t)) for t in axes_taps)):
            taps = [axes_taps[a][o] for a, o in enumerate(position)]
            real = [[i for i in t if 0 <= i < x.shape[2 + a]] for a, t in enumerate(taps)]
            if not all(real):
                continue  # a window of padding only reads nothing
            window = x[(slice(None), slice(None), *np.ix_(*real))].reshape(*x.shape[:2], -1)
            count = int(np.prod(kernel_shape)) if count_include_pad else window.shape[-1]
            if self.reduce == "max":
                value = window.max(axis=-1)
            elif self.reduce == "average":
                value = window.sum(axis=-1) / count
            else:
                value = (np.abs(window) ** p).sum(axis=-1) ** (1.0 / p)
            y[(slice(None), slice(None), *position)] = value
        return (y,)


class MaxPool(_SpecPool):
    op_domain = ""
    reduce = "max"

    def _run(self, x, **attributes):  # the indices output is not needed
        return super()._run(x, **attributes)


class AveragePool(_SpecPool):
    op_domain = ""
    reduce = "average"


class LpPool(_SpecPool):
    op_domain = ""
    reduce = "lp"


class BatchNormalization(OpRun):
    """Inference mode (the given mean and variance). The reference's BatchNormalization-9 uses
    the batch statistics whenever `momentum` is set, which its schema default always is."""

    op_domain = ""

    def _run(self, x, scale, bias, mean, var, epsilon=1e-5, training_mode=0, **_):
        if training_mode:
            raise NotImplementedError("the oracle runs BatchNormalization in inference mode only")
        shape = (-1,) + (1,) * (x.ndim - 2)
        y = scale.reshape(shape) * (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + epsilon)
        return ((y + bias.reshape(shape)).astype(x.dtype),)


SPEC_OPS = [MaxPool, AveragePool, LpPool, BatchNormalization]


def _static_shape(value: onnx.ValueInfoProto) -> tuple[int, ...]:
    dims = value.type.tensor_type.shape.dim
    if not all(d.HasField("dim_value") for d in dims):
        raise ValueError(f"the oracle needs a static input shape, {value.name!r} has {dims}")
    return tuple(d.dim_value for d in dims)


def _default_spatial(rank: int) -> tuple[int, ...]:
    return tuple(range(2, rank)) if rank >= 3 else ()


def dependencies(model: onnx.ModelProto, tensors: Sequence[str] | None = None, *,
                 input_spatial_axes: Sequence[int] | None = None,
                 spatial_axes: Mapping[str, Sequence[int]] | None = None,
                 seed: int = 0, delta: float = DELTA,
                 threshold: float = THRESHOLD, spec_ops: bool = True,
                 float64: bool = True) -> dict[str, Dependencies]:
    """Dependencies of every tensor in `tensors` (default: the graph outputs) on the one input.

    Spatial axes are 2.. (NCHW) unless given: `input_spatial_axes` for the graph input,
    `spatial_axes[name]` for a tensor. A tensor of rank <= 2 has no spatial axis: one position
    `()` that collects every pixel the tensor depends on.
    spec_ops: run MaxPool / AveragePool / LpPool / BatchNormalization with the implementations
    above (see the module docstring) instead of the reference's.
    float64=False runs the model as it is (for function ops whose bodies hold float32 constants).
    """
    if float64:
        model = to_float64(model)
    initializers = {init.name for init in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    if len(inputs) != 1:
        raise ValueError(f"the oracle takes one graph input, got {[v.name for v in inputs]}")
    feed = inputs[0]
    shape = _static_shape(feed)
    in_axes = tuple(input_spatial_axes) if input_spatial_axes is not None else _default_spatial(len(shape))
    in_spatial = tuple(shape[a] for a in in_axes)
    if tensors is None:
        tensors = [v.name for v in model.graph.output]
    tensors = list(tensors)
    spatial_axes = dict(spatial_axes or {})

    rng = np.random.default_rng(seed)
    base = rng.uniform(0.1, 1.0, size=shape)
    if not float64:
        base = base.astype(np.float32)
    pixels = list(itertools.product(*(range(n) for n in in_spatial)))

    def perturbed(pixel: Index) -> np.ndarray:
        x = base.copy()  # (in float32 too the delta is exact: 1000 + x keeps x's ulp-level detail)
        where: list[slice | int] = [slice(None)] * len(shape)
        for axis, i in zip(in_axes, pixel):
            where[axis] = i
        x[tuple(where)] += delta
        return x

    evaluator = ReferenceEvaluator(model, new_ops=SPEC_OPS if spec_ops else None)
    with np.errstate(all="ignore"):  # saturating ops (Sigmoid of +1000) warn, harmlessly
        reference = [np.asarray(y, dtype=np.float64) for y in evaluator.run(tensors, {feed.name: base})]
        runs = _run_batched(evaluator, feed.name, tensors, base, pixels, perturbed, reference)
        if runs is None:  # one run per pixel
            per_pixel = [evaluator.run(tensors, {feed.name: perturbed(p)}) for p in pixels]
            runs = [np.stack([np.asarray(r[t], dtype=np.float64) for r in per_pixel])
                    for t in range(len(tensors))]

    result = {}
    for t, name in enumerate(tensors):
        ref = reference[t]
        out_axes = tuple(spatial_axes.get(name, _default_spatial(ref.ndim)))
        out_shape = tuple(ref.shape[a] for a in out_axes)
        # changed[k, *position]: whether perturbing pixel k changed any value at the position
        diff = np.abs(runs[t] - ref[None])
        changed = np.nan_to_num(diff, nan=0.0) > threshold
        other = tuple(1 + a for a in range(ref.ndim) if a not in out_axes)
        changed = changed.any(axis=other) if other else changed
        # move the remaining output axes into the order of out_axes
        kept = [a for a in range(ref.ndim) if a in out_axes]
        changed = np.moveaxis(changed, [1 + kept.index(a) for a in out_axes],
                              list(range(1, 1 + len(out_axes))))
        reads = {}
        for position in itertools.product(*(range(n) for n in out_shape)):
            column = changed[(slice(None), *position)]
            reads[position] = frozenset(pixels[k] for k in np.flatnonzero(column))
        result[name] = Dependencies(in_spatial, out_shape, reads)
    return result


def _run_batched(evaluator, feed_name, tensors, base, pixels, perturbed, reference):
    """All perturbations as one batch, or None when the graph does not keep the batch axis."""
    batch = np.concatenate([base] + [perturbed(p) for p in pixels], axis=0)
    try:
        outputs = [np.asarray(y, dtype=np.float64) for y in evaluator.run(tensors, {feed_name: batch})]
    except Exception:
        return None
    runs = []
    for out, ref in zip(outputs, reference):
        if out.ndim != ref.ndim or out.shape[0] != len(pixels) + 1 or out.shape[1:] != ref.shape[1:]:
            return None
        if not np.allclose(out[:1], ref, rtol=1e-9, atol=1e-9, equal_nan=True):
            return None
        runs.append(out[1:, None])  # (pixel, batch of 1, ...)
    return runs


def positive_weights(shape: Sequence[int], rng: np.random.Generator, name: str) -> onnx.TensorProto:
    """A float32 initializer with every entry in [0.5, 1.5): no tap is zero, nothing cancels."""
    return numpy_helper.from_array(rng.uniform(0.5, 1.5, size=tuple(shape)).astype(np.float32), name)
