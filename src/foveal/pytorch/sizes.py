"""Output sizes of common ops by foveal's own rules, so that capture need not run PyTorch's meta
kernels for them.

Shape propagation runs every node of the traced graph on meta tensors. Many meta kernels are
Python decompositions that cost 0.1 to 3 ms a call (layer norm, max and adaptive pooling,
hardswish, batch and group norm, attention, even `relu` and `add`), where tracing a node costs
about 0.1 ms: a model spent most of its capture there. A rule here gives the output (an
uninitialised meta tensor of the right shape, dtype and strides) from the arguments' shapes and
the module's attributes alone, in a few microseconds.

A rule is exact or absent: it answers only inside the domain where its formula is PyTorch's
(contiguous float tensors of the ranks the op takes, channels that match the weights, padding
that fits the window...) and returns None anywhere else, so that PyTorch's own kernel runs and
raises its own error for a bad call. `tests/test_pytorch_sizes.py` checks every rule against the
kernel on many configurations and on whole models (`check=True` of `capture.propagate`), so
the comparison of foveal's sizes with "PyTorch's" stays a comparison with PyTorch's arithmetic.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Rule = Callable[[Any, tuple, dict], Any]
"""(module or None, args, kwargs) -> the output, or None: no rule for these arguments."""

_META = torch.device("meta")


def _empty(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(tuple(shape), dtype=dtype, device=_META)


def _is_meta(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.device.type == "meta" and x.layout == torch.strided


def _dense(x: Any) -> bool:
    """A non-empty meta tensor of a floating dtype whose elements fill its storage without
    overlap, in some order of the dims (contiguous, channels-last, a permuted view)."""
    return (_is_meta(x) and x.is_floating_point() and x.numel() > 0
            and dense_order(x.shape, x.stride()) is not None)


def _float(x: Any) -> bool:
    """A non-empty meta tensor of a floating dtype, with any strides (for ops whose output is
    contiguous whatever the input's layout: linear, layer norm, attention, convolution)."""
    return _is_meta(x) and x.is_floating_point() and x.numel() > 0


def _plain(x: Any) -> bool:
    """A contiguous, non-empty meta tensor of a floating dtype."""
    return _is_meta(x) and x.is_floating_point() and x.numel() > 0 and x.is_contiguous()


def dense_order(shape: Sequence[int], strides: Sequence[int]) -> list[int] | None:
    """The dims from the fastest-moving out, if the elements are non-overlapping and dense
    (c10's rule: dims of length 1 do not count); None otherwise."""
    order = sorted((d for d in range(len(shape)) if shape[d] > 1), key=lambda d: strides[d])
    expected = 1
    for d in order:
        if strides[d] != expected:
            return None
        expected *= shape[d]
    return order


def _contiguous_in(shape: Sequence[int], strides: Sequence[int], order: Sequence[int]) -> bool:
    """Whether the strides are dense with dims `order` (outermost first) laid out in turn;
    dims of length 1 do not count."""
    expected = 1
    for d in reversed(order):
        if shape[d] != 1:
            if strides[d] != expected:
                return False
            expected *= shape[d]
    return True


def elementwise_strides(shape: Sequence[int], operands: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """The strides PyTorch gives the output of an element-wise op whose operands, broadcast to
    `shape`, have `operands` strides (0 on broadcast dims): contiguous when every operand is (and
    not every one channels-last), channels-last when every one is that, else the dims ordered as
    the operands order them, the first operand deciding first (TensorIterator's
    `reorder_dimensions`; `torch._prims_common.compute_elementwise_output_logical_to_physical_perm`)."""
    rank = len(shape)
    if rank <= 1:
        return (1,) * rank
    natural = list(range(rank))
    contiguous = all(_contiguous_in(shape, st, natural) for st in operands)
    last = [0, *range(2, rank), 1]
    channels_last = rank == 4 and all(_contiguous_in(shape, st, last) for st in operands)
    if contiguous and not channels_last:
        perm = natural
    elif channels_last and not contiguous:
        perm = last
    else:
        def ge(a: int, b: int) -> bool:
            return b == 0 or (a != 0 and a >= b)

        def should_swap(a: int, b: int) -> int:
            for st in operands:
                sa, sb = st[a], st[b]
                if sa == 0 or sb == 0:
                    continue
                if sa == sb:
                    if ge(shape[b], shape[a]):
                        continue
                    return 1
                if ge(sb, sa):
                    return -1
                if ge(sa, sb):
                    return 1
            return 0

        back = list(reversed(natural))
        for i in range(1, rank):
            dim1 = i
            for dim0 in reversed(range(i)):
                comparison = should_swap(back[dim0], back[dim1])
                if comparison > 0:
                    back[dim0], back[dim1] = back[dim1], back[dim0]
                    dim1 = dim0
                elif comparison < 0:
                    break
        perm = list(reversed(back))
    strides = [0] * rank
    step = 1
    for d in reversed(perm):
        strides[d] = step
        step *= max(shape[d], 1)
    return tuple(strides)


def _broadcast_strides(x: torch.Tensor, shape: Sequence[int]) -> tuple[int, ...]:
    """x's strides once expanded to `shape` (ATen's `inferExpandGeometry`): 0 on broadcast dims;
    a new leading dim of length 1 gets the stride that would make it contiguous."""
    rank, own = len(shape), x.dim()
    strides = [0] * rank
    for i in reversed(range(rank)):
        d = i - (rank - own)
        size = x.shape[d] if d >= 0 else 1
        stride = x.stride()[d] if d >= 0 else shape[i + 1] * strides[i + 1] if i + 1 < rank else 1
        strides[i] = 0 if size != shape[i] else stride
    return tuple(strides)


def _strided(shape: Sequence[int], strides: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty_strided(tuple(shape), tuple(strides), dtype=dtype, device=_META)


def _ints(value: Any, n: int) -> tuple[int, ...] | None:
    """An int or a sequence of n ints (or one) as n ints; None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    if isinstance(value, (tuple, list)) and all(type(v) is int for v in value):
        if len(value) == n:
            return tuple(value)
        if len(value) == 1:
            return (value[0],) * n
    return None


def _bind(args: tuple, kwargs: dict, names: Sequence[str], **defaults: Any) -> dict[str, Any] | None:
    """A call's arguments by parameter name (None where not given, unless `defaults` says);
    None for a call with other arguments than `names`."""
    if len(args) > len(names) or any(k not in names for k in kwargs):
        return None
    bound: dict[str, Any] = dict.fromkeys(names)
    bound.update(defaults)
    bound.update(zip(names, args))
    bound.update(kwargs)
    return bound


def _no_hooks(m: nn.Module) -> bool:
    """A module whose call is its forward alone (hooks may change what it returns)."""
    return not (m._forward_hooks or m._forward_pre_hooks or nn.modules.module._global_forward_hooks
                or nn.modules.module._global_forward_pre_hooks)


# -- element-wise ------------------------------------------------------------------------------


def _unary(m: Any, args: tuple, kwargs: dict) -> Any:
    """Activations, dropout (inference) and other ops that keep the input's shape; an in-place
    call (`inplace=True`, a module's `inplace`) returns its input, as PyTorch does."""
    if not args or not _dense(args[0]) or "out" in kwargs:
        return None
    x = args[0]
    if kwargs.get("inplace") or getattr(m, "inplace", False):
        return x
    return _empty(x.shape, x.dtype) if x.is_contiguous() else _strided(x.shape, x.stride(), x.dtype)


def _identity(m: Any, args: tuple, kwargs: dict) -> Any:
    """nn.Identity returns its argument."""
    return args[0] if len(args) == 1 and not kwargs and _is_meta(args[0]) else None


def broadcast_shape(shapes: Sequence[Sequence[int]]) -> tuple[int, ...] | None:
    """NumPy broadcasting of `shapes`; None when they do not broadcast."""
    rank = max(len(s) for s in shapes)
    out = [1] * rank
    for s in shapes:
        offset = rank - len(s)
        for i, size in enumerate(s):
            here = out[offset + i]
            if size != here:
                if here == 1:
                    out[offset + i] = size
                elif size != 1:
                    return None
    return tuple(out)


def _operands(values: Sequence[Any]) -> list[torch.Tensor] | None:
    """The tensor operands of an arithmetic op (dense float meta tensors); None when an operand is
    anything but such a tensor or a Python number."""
    found = []
    for v in values:
        if isinstance(v, torch.Tensor):
            if not _dense(v):
                return None
            found.append(v)
        elif not isinstance(v, (int, float)) or isinstance(v, bool):
            return None
    return found or None


def _arithmetic(n_operands: int) -> Rule:
    """Binary (and ternary: addcmul, addcdiv, lerp) arithmetic with broadcasting: the broadcast
    shape, strides as PyTorch orders them; every tensor operand of one floating dtype (mixed
    dtypes, integers and type promotion are left to PyTorch)."""

    def rule(m: Any, args: tuple, kwargs: dict) -> Any:
        if len(args) != n_operands or any(k not in ("alpha", "value") for k in kwargs):
            return None
        found = _operands(args)
        if found is None or any(t.dtype != found[0].dtype for t in found):
            return None
        shape = broadcast_shape([t.shape for t in found])
        if shape is None:
            return None
        first = found[0]
        if first.is_contiguous() and all(t.shape == shape and t.stride() == first.stride() for t in found):
            return _empty(shape, found[0].dtype)  # the common case: no broadcasting
        return _strided(shape, elementwise_strides(shape, [_broadcast_strides(t, shape) for t in found]),
                        found[0].dtype)

    return rule


# -- linear, norms, attention ------------------------------------------------------------------


def _linear_shape(x: Any, weight: Any, bias: Any) -> torch.Tensor | None:
    if not (_float(x) and isinstance(weight, torch.Tensor) and weight.dim() == 2 and x.dim() >= 1
            and x.shape[-1] == weight.shape[1] and weight.dtype == x.dtype):
        return None
    if bias is not None and not (isinstance(bias, torch.Tensor) and bias.shape == weight.shape[:1]
                                 and bias.dtype == x.dtype):
        return None
    return _empty((*x.shape[:-1], weight.shape[0]), x.dtype)


def _linear_module(m: nn.Linear, args: tuple, kwargs: dict) -> Any:
    return _linear_shape(args[0], m.weight, m.bias) if len(args) == 1 and not kwargs else None


def _linear_function(m: Any, args: tuple, kwargs: dict) -> Any:
    p = _bind(args, kwargs, ("input", "weight", "bias"))
    return None if p is None else _linear_shape(p["input"], p["weight"], p["bias"])


def _affine_fits(x: torch.Tensor, shape: tuple[int, ...], *params: Any) -> bool:
    """Weight and bias of a norm: None, or tensors of `shape` and x's dtype."""
    return all(p is None or (isinstance(p, torch.Tensor) and tuple(p.shape) == shape and p.dtype == x.dtype)
               for p in params)


def _layer_norm_shape(x: Any, normalized: Any, weight: Any, bias: Any) -> torch.Tensor | None:
    if not _float(x) or not isinstance(normalized, (tuple, list, torch.Size)):
        return None
    shape = tuple(normalized)
    if not shape or x.dim() < len(shape) or tuple(x.shape[x.dim() - len(shape):]) != shape:
        return None
    return _empty(x.shape, x.dtype) if _affine_fits(x, shape, weight, bias) else None


def _layer_norm_module(m: nn.LayerNorm, args: tuple, kwargs: dict) -> Any:
    if len(args) != 1 or kwargs:
        return None
    return _layer_norm_shape(args[0], m.normalized_shape, m.weight, m.bias)


def _layer_norm_function(m: Any, args: tuple, kwargs: dict) -> Any:
    p = _bind(args, kwargs, ("input", "normalized_shape", "weight", "bias", "eps"))
    return None if p is None else _layer_norm_shape(p["input"], p["normalized_shape"], p["weight"], p["bias"])


def _group_norm_module(m: nn.GroupNorm, args: tuple, kwargs: dict) -> Any:
    if len(args) != 1 or kwargs:
        return None
    x = args[0]
    if not _plain(x) or x.dim() < 2 or x.shape[1] != m.num_channels or m.num_channels % m.num_groups:
        return None
    return _empty(x.shape, x.dtype) if _affine_fits(x, (m.num_channels,), m.weight, m.bias) else None


_BATCH_NORM_RANKS: dict[type, tuple[int, ...]] = {
    nn.BatchNorm1d: (2, 3), nn.BatchNorm2d: (4,), nn.BatchNorm3d: (5,)}


def _batch_norm_module(m: nn.modules.batchnorm._BatchNorm, args: tuple, kwargs: dict) -> Any:
    """Inference batch norm (running statistics; capture runs in eval mode)."""
    if len(args) != 1 or kwargs or m.training or m.running_mean is None:
        return None
    x = args[0]
    if (not _plain(x) or x.dim() not in _BATCH_NORM_RANKS[type(m)] or x.shape[1] != m.num_features
            or tuple(m.running_mean.shape) != (m.num_features,) or m.running_var is None
            or tuple(m.running_var.shape) != (m.num_features,)):
        return None
    return _empty(x.shape, x.dtype) if _affine_fits(x, (m.num_features,), m.weight, m.bias) else None


def _batch_norm_function(m: Any, args: tuple, kwargs: dict) -> Any:
    """F.batch_norm(input, running_mean, running_var, weight, bias, training=False, ...)."""
    names = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
    p = _bind(args, kwargs, names, training=False)
    if p is None or p["training"] is not False:
        return None
    x = p["input"]
    if not _plain(x) or x.dim() < 2:
        return None
    channels = (x.shape[1],)
    stats = (p["running_mean"], p["running_var"])
    if any(not isinstance(t, torch.Tensor) for t in stats):
        return None
    if not _affine_fits(x, channels, p["weight"], p["bias"]):
        return None
    if any(tuple(t.shape) != channels for t in stats):
        return None
    return _empty(x.shape, x.dtype)


def _attention(m: Any, args: tuple, kwargs: dict) -> Any:
    """scaled_dot_product_attention(q, k, v): (..., L, E) x (..., S, E) x (..., S, Ev) ->
    (..., L, Ev); batch dims equal (broadcast and grouped-query attention are left to PyTorch)."""
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")
    p = _bind(args, kwargs, names)
    if p is None or p["attn_mask"] is not None:
        return None
    q, k, v = p["query"], p["key"], p["value"]
    if not all(_float(t) for t in (q, k, v)) or not (q.dtype == k.dtype == v.dtype):
        return None
    if not (q.dim() == k.dim() == v.dim() >= 2 and q.shape[:-2] == k.shape[:-2] == v.shape[:-2]
            and q.shape[-1] == k.shape[-1] and k.shape[-2] == v.shape[-2] and q.shape[-1] > 0):
        return None
    return _empty((*q.shape[:-1], v.shape[-1]), q.dtype)


# -- windows: convolution and pooling ----------------------------------------------------------


def _window_length(size: int, kernel: int, stride: int, padding: int, dilation: int,
                   ceil_mode: bool = False) -> int:
    """floor((L + 2p - d (k - 1) - 1) / s) + 1; with ceil_mode, rounded up but never starting
    a window in the right padding alone (PyTorch's pooling rule)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _conv_module(m: nn.modules.conv._ConvNd, args: tuple, kwargs: dict) -> Any:
    """Conv1d/2d/3d (batched, zero padding, numeric or 'valid'/'same' padding)."""
    if len(args) != 1 or kwargs or m.padding_mode != "zeros":
        return None
    x, weight, bias = args[0], m.weight, m.bias
    k = len(m.kernel_size)
    if not (_float(x) and x.dim() == k + 2 and weight.dim() == k + 2
            and x.shape[1] == weight.shape[1] * m.groups and weight.dtype == x.dtype):
        return None
    if bias is not None and (bias.dtype != x.dtype or bias.shape != weight.shape[:1]):
        return None
    if m.padding == "same":
        spatial = tuple(x.shape[2:])
    else:
        padding: Any = (0,) * k if m.padding == "valid" else m.padding
        spatial = tuple(_window_length(size, kk, s, p, d) for size, kk, s, p, d in zip(
            x.shape[2:], weight.shape[2:], m.stride, padding, m.dilation))
    if min(spatial, default=1) < 1:
        return None
    return _empty((x.shape[0], weight.shape[0], *spatial), x.dtype)


def _pool_input(x: Any, k: int) -> bool:
    """A pooling input: (N, C, *spatial) or (C, *spatial), dense in the memory format PyTorch
    reads from its strides (`_memory_format`)."""
    if not (_is_meta(x) and x.is_floating_point() and x.numel() > 0 and x.dim() in (k + 1, k + 2)):
        return False
    return x.is_contiguous(memory_format=_memory_format(x))


_CHANNELS_LAST_ORDER = {4: (1, 3, 2, 0), 5: (1, 4, 3, 2, 0)}


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    """c10's `suggest_memory_format`: channels-last when the strides order the dims so (for a
    tensor with dims of length 1, strides can say so even when it is contiguous too)."""
    order = _CHANNELS_LAST_ORDER.get(x.dim())
    if order is None:
        return torch.contiguous_format
    shape, strides = x.shape, x.stride()
    if strides[1] == 0:
        return torch.contiguous_format
    smallest = 0
    for d in order:
        if shape[d] == 0 or strides[d] < smallest:
            return torch.contiguous_format
        if d == 0 and smallest == strides[1]:  # (N, 1, 1, 1): contiguous
            return torch.contiguous_format
        smallest = strides[d] * (shape[d] if shape[d] > 1 else 1)
    return torch.channels_last if x.dim() == 4 else torch.channels_last_3d


def _like_input(x: torch.Tensor, shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """A pooled output: in x's memory format."""
    return torch.empty(tuple(shape), dtype=dtype, device=_META, memory_format=_memory_format(x))


def _pool_shape(x: Any, k: int, kernel: Any, stride: Any, padding: Any, dilation: Any,
                ceil_mode: Any) -> tuple[int, ...] | None:
    """(N, C, *spatial) or (C, *spatial) pooled; None outside the checked domain (padding more
    than half the window, an empty output, unusual arguments)."""
    if not _pool_input(x, k) or not isinstance(ceil_mode, bool):
        return None
    kernel = _ints(kernel, k)
    stride = kernel if stride is None or stride == [] or stride == () else _ints(stride, k)
    padding, dilation = _ints(padding, k), _ints(dilation, k)
    if None in (kernel, stride, padding, dilation):
        return None
    assert kernel is not None and stride is not None and padding is not None and dilation is not None
    if any(kk < 1 or s < 1 or d < 1 or p < 0 or 2 * p > kk
           for kk, s, p, d in zip(kernel, stride, padding, dilation)):
        return None
    if k == 3 and any(size < d * (kk - 1) + 1 for size, kk, d in zip(x.shape[-k:], kernel, dilation)):
        return None  # 3-d pooling also wants a whole window inside the input, padding aside
    spatial = tuple(_window_length(size, kk, s, p, d, ceil_mode) for size, kk, s, p, d in zip(
        x.shape[-k:], kernel, stride, padding, dilation))
    if min(spatial) < 1:
        return None
    return (*x.shape[:-k], *spatial)


def _max_pool_module(m: nn.modules.pooling._MaxPoolNd, args: tuple, kwargs: dict) -> Any:
    if len(args) != 1 or kwargs:
        return None
    k = _POOL_RANK[type(m)]
    x = args[0]
    shape = _pool_shape(x, k, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
    if shape is None:
        return None
    out = _like_input(x, shape, x.dtype)
    return (out, _like_input(x, shape, torch.int64)) if m.return_indices else out


def _avg_pool_module(m: nn.modules.pooling._AvgPoolNd, args: tuple, kwargs: dict) -> Any:
    if len(args) != 1 or kwargs or getattr(m, "divisor_override", None) == 0:
        return None
    k = _POOL_RANK[type(m)]
    shape = _pool_shape(args[0], k, m.kernel_size, m.stride, m.padding, 1, m.ceil_mode)
    return None if shape is None else _like_input(args[0], shape, args[0].dtype)


def _adaptive_module(m: Any, args: tuple, kwargs: dict) -> Any:
    """(N, C, *spatial) or (C, *spatial) to `output_size` (None keeps an axis's length)."""
    if len(args) != 1 or kwargs:
        return None
    x = args[0]
    k = _POOL_RANK[type(m)]
    if not _pool_input(x, k):
        return None
    size = m.output_size if isinstance(m.output_size, (tuple, list)) else (m.output_size,) * k
    if len(size) != k or not all(s is None or (type(s) is int and s >= 1) for s in size):
        return None
    shape = (*x.shape[:-k], *(length if s is None else s for s, length in zip(size, x.shape[-k:])))
    out = _like_input(x, shape, x.dtype)
    return (out, _like_input(x, shape, torch.int64)) if getattr(m, "return_indices", False) else out


_POOL_RANK: dict[type, int] = {
    nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3, nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3,
    nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveAvgPool3d: 3,
    nn.AdaptiveMaxPool1d: 1, nn.AdaptiveMaxPool2d: 2, nn.AdaptiveMaxPool3d: 3,
}


# -- reductions, joins, rolls ------------------------------------------------------------------


def _reduce(m: Any, args: tuple, kwargs: dict) -> Any:
    """mean / sum / amax / amin over dims of a float tensor (dtype kept; no dtype argument)."""
    p = _bind(args, kwargs, ("input", "dim", "keepdim"), keepdim=False)
    if p is None:
        return None
    x, dims, keep = p["input"], p["dim"], p["keepdim"]
    if not _plain(x) or not isinstance(keep, bool) or x.dim() == 0:
        return None
    if dims is None or (isinstance(dims, (tuple, list)) and not dims):
        return None  # every dim: the 0-dim and empty-list conventions differ by op
    dims = _ints(dims, 1) if isinstance(dims, int) else (tuple(dims) if all(
        isinstance(d, int) and not isinstance(d, bool) for d in dims) else None)
    if dims is None or not all(-x.dim() <= d < x.dim() for d in dims):
        return None
    chosen = {d % x.dim() for d in dims}
    if len(chosen) != len(dims):
        return None
    shape = [1 if d in chosen else s for d, s in enumerate(x.shape)] if keep else \
        [s for d, s in enumerate(x.shape) if d not in chosen]
    return _empty(shape, x.dtype)


def _join(stack: bool) -> Rule:
    """torch.cat / torch.stack of contiguous float tensors of one dtype and rank."""

    def rule(m: Any, args: tuple, kwargs: dict) -> Any:
        p = _bind(args, kwargs, ("tensors", "dim"), dim=0)
        if p is None:
            return None
        tensors, dim = p["tensors"], p["dim"]
        if not isinstance(tensors, (tuple, list)) or not tensors or not isinstance(dim, int):
            return None
        first = tensors[0]
        if not all(_plain(t) and t.dtype == first.dtype and t.dim() == first.dim() for t in tensors):
            return None
        rank = first.dim() + (1 if stack else 0)
        if rank == 0 or not -rank <= dim < rank:
            return None
        dim %= rank
        if stack:
            if any(t.shape != first.shape for t in tensors):
                return None
            return _empty((*first.shape[:dim], len(tensors), *first.shape[dim:]), first.dtype)
        if any(t.shape[:dim] != first.shape[:dim] or t.shape[dim + 1:] != first.shape[dim + 1:]
               for t in tensors):
            return None
        return _empty((*first.shape[:dim], sum(t.shape[dim] for t in tensors), *first.shape[dim + 1:]),
                      first.dtype)

    return rule


def _roll(m: Any, args: tuple, kwargs: dict) -> Any:
    """torch.roll keeps the shape."""
    p = _bind(args, kwargs, ("input", "shifts", "dims"))
    if p is None:
        return None
    x, dims = p["input"], p["dims"]
    if not _plain(x) or dims is None or x.dim() == 0:
        return None
    dims = _ints(dims, 1) if isinstance(dims, int) else dims
    if not isinstance(dims, (tuple, list)) or not all(type(d) is int and -x.dim() <= d < x.dim()
                                                      for d in dims):
        return None
    shifts = p["shifts"]
    if _ints(shifts, len(dims)) is None or (isinstance(shifts, (tuple, list)) and len(shifts) != len(dims)):
        return None
    return _empty(x.shape, x.dtype)


# -- the tables --------------------------------------------------------------------------------


_UNARY_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish,
    nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Softsign, nn.LogSigmoid,
    nn.Tanhshrink, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
)

def _recurrent(m: nn.RNNBase, args: tuple, kwargs: dict) -> Any:
    """nn.LSTM, nn.GRU, nn.RNN on a (batched or unbatched) sequence of any strides, without an
    initial state: the output over every step, and the last states. batch_first gives the
    (steps, batch) output transposed, as PyTorch computes it."""
    p = _bind(args, kwargs, ("input", "hx"), hx=None)
    if p is None or p["hx"] is not None or not _float(x := p["input"]) or x.dim() not in (2, 3) \
            or x.shape[-1] != m.input_size:
        return None
    directions = 2 if m.bidirectional else 1
    hidden = m.hidden_size
    out = m.proj_size if isinstance(m, nn.LSTM) and m.proj_size > 0 else hidden
    if x.dim() == 2:
        output = _empty((x.shape[0], directions * out), x.dtype)
        batch: tuple[int, ...] = ()
    elif m.batch_first:
        output = _empty((x.shape[1], x.shape[0], directions * out), x.dtype).transpose(0, 1)
        batch = (x.shape[0],)
    else:
        output = _empty((x.shape[0], x.shape[1], directions * out), x.dtype)
        batch = (x.shape[1],)
    h = _empty((directions * m.num_layers, *batch, out), x.dtype)
    if isinstance(m, nn.LSTM):
        return output, (h, _empty((directions * m.num_layers, *batch, hidden), x.dtype))
    return output, h


MODULE_RULES: dict[type, Rule] = {
    **dict.fromkeys(_UNARY_MODULES, _unary),
    nn.Identity: _identity,
    nn.Linear: _linear_module,
    nn.LayerNorm: _layer_norm_module,
    nn.GroupNorm: _group_norm_module,
    **dict.fromkeys((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), _batch_norm_module),
    **dict.fromkeys((nn.Conv1d, nn.Conv2d, nn.Conv3d), _conv_module),
    **dict.fromkeys((nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d), _max_pool_module),
    **dict.fromkeys((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d), _avg_pool_module),
    **dict.fromkeys((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                     nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d), _adaptive_module),
    **dict.fromkeys((nn.LSTM, nn.GRU, nn.RNN), _recurrent),
}
"""By exact class: a subclass may compute something else."""

_UNARY_FUNCTIONS = (
    F.relu, F.relu6, F.gelu, F.silu, F.mish, F.hardswish, F.hardsigmoid, F.sigmoid, F.tanh, F.elu,
    F.selu, F.celu, F.leaky_relu, F.softplus, F.softsign, F.logsigmoid, F.hardtanh,
    torch.relu, torch.sigmoid, torch.tanh, torch.exp, torch.rsqrt, torch.sqrt, torch.neg, torch.abs,
    torch.erf, torch.reciprocal,
)
_BINARY = (operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.sub, torch.mul,
           torch.div, torch.maximum, torch.minimum)

FUNCTION_RULES: dict[Any, Rule] = {
    **dict.fromkeys(_UNARY_FUNCTIONS, _unary),
    **dict.fromkeys(_BINARY, _arithmetic(2)),
    **dict.fromkeys((torch.addcmul, torch.addcdiv, torch.lerp), _arithmetic(3)),
    F.linear: _linear_function,
    F.layer_norm: _layer_norm_function,
    F.batch_norm: _batch_norm_function,
    F.scaled_dot_product_attention: _attention,
    torch.mean: _reduce, torch.sum: _reduce, torch.amax: _reduce, torch.amin: _reduce,
    torch.cat: _join(False), torch.concat: _join(False), torch.stack: _join(True),
    torch.roll: _roll,
}
"""By function object."""

METHOD_RULES: dict[str, Rule] = {
    **dict.fromkeys(("relu", "sigmoid", "tanh", "exp", "rsqrt", "sqrt", "neg", "abs", "erf",
                     "reciprocal"), _unary),
    **dict.fromkeys(("add", "sub", "mul", "div", "maximum", "minimum", "__add__", "__sub__",
                     "__mul__", "__truediv__"), _arithmetic(2)),
    **dict.fromkeys(("addcmul", "addcdiv", "lerp"), _arithmetic(3)),
    **dict.fromkeys(("mean", "sum", "amax", "amin"), _reduce),
    "roll": _roll,
}
"""By tensor-method name (the tensor is the first argument)."""


def _window_attention(m: Any, args: tuple, kwargs: dict) -> Any:
    """torchvision's shifted_window_attention(input (B, H, W, C), qkv_weight (3C', C),
    proj_weight (C'', C'), ...) -> (B, H, W, C''): it pads to whole windows and crops back."""
    names = ("input", "qkv_weight", "proj_weight")
    p: dict[str, Any] = dict.fromkeys(names)
    p.update(zip(names, args))
    p.update((k, v) for k, v in kwargs.items() if k in names)
    x, qkv, proj = p["input"], p["qkv_weight"], p["proj_weight"]
    if not (_plain(x) and x.dim() == 4 and isinstance(qkv, torch.Tensor) and isinstance(proj, torch.Tensor)
            and qkv.dim() == 2 and proj.dim() == 2 and qkv.shape[1] == x.shape[-1]
            and qkv.shape[0] == 3 * proj.shape[1] and qkv.dtype == proj.dtype == x.dtype):
        return None
    return _empty((*x.shape[:-1], proj.shape[0]), x.dtype)


def _stochastic_depth(m: Any, args: tuple, kwargs: dict) -> Any:
    """torchvision's stochastic_depth(input, p, mode, training): the input at inference."""
    p = _bind(args, kwargs, ("input", "p", "mode", "training"), training=True)
    if p is None or p["training"] is not False or not _plain(p["input"]):
        return None
    return p["input"]


def _relative_position_bias(m: Any, args: tuple, kwargs: dict) -> Any:
    """torchvision's _get_relative_position_bias(table ((2h-1)(2w-1), heads), index, (h, w)) ->
    (1, heads, hw, hw): the table gathered at each pair of window positions."""
    names = ("relative_position_bias_table", "relative_position_index", "window_size")
    p = _bind(args, kwargs, names)
    if p is None:
        return None
    table, index, window = (p[k] for k in names)
    size = _ints(window, 2)
    if not (_is_meta(table) and table.is_floating_point() and table.dim() == 2 and size is not None
            and isinstance(index, torch.Tensor) and not index.is_floating_point()):
        return None
    tokens = size[0] * size[1]
    if index.numel() != tokens * tokens or table.shape[0] != (2 * size[0] - 1) * (2 * size[1] - 1):
        return None
    return _empty((1, table.shape[1], tokens, tokens), table.dtype)


def _partition_attention(m: Any, args: tuple, kwargs: dict) -> Any:
    """torchvision's MaxViT PartitionAttentionLayer: (B, C, H, W) -> the same, for an input of
    the grid size it was built for (its reshapes assume it) and its channels."""
    if len(args) != 1 or kwargs:
        return None
    x = args[0]
    grid, p = _ints(getattr(m, "grid_size", None), 2), getattr(m, "p", None)
    mlp = getattr(m, "mlp_layer", None)
    linear = mlp[1] if isinstance(mlp, nn.Sequential) and len(mlp) > 1 else None
    if not (_float(x) and x.dim() == 4 and isinstance(linear, nn.Linear) and isinstance(p, int) and p > 0
            and grid is not None and tuple(x.shape[2:]) == grid
            and x.shape[1] == linear.in_features and grid[0] % p == 0 and grid[1] % p == 0):
        return None
    return _empty(x.shape, x.dtype)


MODULE_RULES_BY_NAME: dict[str, Rule] = {
    "torchvision.models.maxvit.PartitionAttentionLayer": _partition_attention,
}
"""Library modules foveal keeps whole (`torchvision_ops.py`), by qualified name."""


FUNCTION_RULES_BY_NAME: dict[str, Rule] = {
    "torchvision.models.swin_transformer._get_relative_position_bias": _relative_position_bias,
    "torchvision.models.swin_transformer.shifted_window_attention": _window_attention,
    "torchvision.ops.stochastic_depth.stochastic_depth": _stochastic_depth,
}
"""Library functions fx keeps whole, by qualified name (the library is never imported here)."""


def rule_for_function(target: Any, name: Callable[[], str]) -> Rule | None:
    """A function's rule: by object, else by qualified name (`name()` gives it)."""
    try:
        found = FUNCTION_RULES.get(target)
    except TypeError:  # an unhashable callable
        return None
    if found is None and FUNCTION_RULES_BY_NAME:
        found = FUNCTION_RULES_BY_NAME.get(name())
    return found


def rule_for_module(module: nn.Module) -> Rule | None:
    """A module's rule: by exact class, else by qualified name; none for a module with hooks."""
    cls = type(module)
    found = MODULE_RULES.get(cls)
    if found is None and MODULE_RULES_BY_NAME:
        found = MODULE_RULES_BY_NAME.get(f"{cls.__module__}.{cls.__qualname__}")
    return found if found is not None and _no_hooks(module) else None
