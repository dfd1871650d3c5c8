"""foveal's size rules (`foveal.pytorch.sizes`) against PyTorch's meta kernels.

Capture gives an op's output by rule instead of running the kernel, so the comparison of
foveal's sizes with PyTorch's stays one with PyTorch's arithmetic only if every rule gives what
the kernel gives: the same shape, dtype and strides (on dims longer than 1). Each rule is run
here on many argument sets (contiguous, permuted, channels-last, sliced and broadcast operands;
odd sizes, strides, paddings, ceil mode; arguments outside the rule's domain), and whole models
are propagated with every rule checked against its kernel (`propagate(check=True)`).
"""

from __future__ import annotations

import itertools
import operator

import pytest
import torch
import torch.nn.functional as F
import torch_models as TM
from torch import nn

from foveal.pytorch import sizes
from foveal.pytorch.capture import CaptureError, SizeRuleError, check_sizes, example_input, propagate, trace
from foveal.pytorch.tables import TABLES

pytestmark = pytest.mark.usefixtures("one_torch_thread")
META = torch.device("meta")


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, device=META, dtype=dtype)


def layouts(*shape: int) -> list[torch.Tensor]:
    """A tensor of `shape` laid out in several ways: contiguous, with its dims reversed (a
    permuted view), channels-last (4-d), a slice with gaps, and expanded from size 1."""
    if not shape:
        return [meta()]
    out = [meta(*shape), meta(*reversed(shape)).permute(*reversed(range(len(shape))))]
    if len(shape) == 4:
        out.append(meta(*shape).to(memory_format=torch.channels_last))
    wider = meta(*shape[:-1], shape[-1] * 2)
    out.append(wider[..., ::2])
    out.append(meta(*shape[:-1], 1).expand(*shape))
    return out


def compare(rule, module, args, kwargs, expected) -> bool:
    """The rule's output, when it gives one, is the kernel's (`expected`); whether it gave one."""
    found = rule(module, args, kwargs)
    if found is None:
        return False
    check_sizes(found, expected, "test")
    return True


def test_window_length_is_pytorchs_pooling_rule():
    for size, kernel, stride, padding, dilation, ceil in itertools.product(
            range(1, 12), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2), (False, True)):
        if 2 * padding > kernel or size + 2 * padding < dilation * (kernel - 1) + 1:
            continue
        x = meta(1, 2, size)
        expected = F.max_pool1d(x, kernel, stride, padding, dilation, ceil_mode=ceil).shape[-1]
        assert sizes._window_length(size, kernel, stride, padding, dilation, ceil) == expected


@pytest.mark.parametrize("k", [1, 2, 3])
def test_convolution(k):
    answered = 0
    for size, kernel, stride, padding, dilation, groups in itertools.product(
            (1, 5, 8), (1, 2, 3), (1, 2), (0, 1, "same", "valid"), (1, 2), (1, 2)):
        if padding == "same" and stride != 1:
            continue
        cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[k - 1]
        with torch.device("meta"):
            conv = cls(4, 6, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups)
        for x in layouts(2, 4, *(size,) * k):
            try:
                expected = conv(x)
            except RuntimeError:  # too small an input: the rule must not answer
                assert sizes._conv_module(conv, (x,), {}) is None
                continue
            answered += compare(sizes._conv_module, conv, (x,), {}, expected)
    assert answered > 50
    with torch.device("meta"):
        conv = nn.Conv2d(4, 6, 3)
    assert sizes._conv_module(conv, (meta(2, 5, 8, 8),), {}) is None  # wrong channels: PyTorch's error
    assert sizes._conv_module(conv, (meta(2, 4, 8, 8, dtype=torch.float16),), {}) is None


@pytest.mark.parametrize("k", [1, 2, 3])
def test_pooling(k):
    answered = 0
    maxes = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
    avgs = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
    for size, kernel, stride, padding, ceil in itertools.product(
            (1, 4, 7), (1, 2, 3), (None, 1, 2), (0, 1), (False, True)):
        pools = [maxes[k - 1](kernel, stride, padding, ceil_mode=ceil),
                 maxes[k - 1](kernel, stride, padding, ceil_mode=ceil, return_indices=True),
                 maxes[k - 1](kernel, stride, padding, dilation=2, ceil_mode=ceil),
                 avgs[k - 1](kernel, stride, padding, ceil_mode=ceil)]
        for pool, x in itertools.product(pools, [*layouts(2, 3, *(size,) * k), meta(3, *(size,) * k)]):
            rule = sizes.MODULE_RULES[type(pool)]
            try:
                expected = pool(x)
            except RuntimeError:
                assert rule(pool, (x,), {}) is None
                continue
            answered += compare(rule, pool, (x,), {}, expected)
    assert answered > 50


@pytest.mark.parametrize("cls", [nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                                 nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d])
def test_adaptive_pooling(cls):
    k = sizes._POOL_RANK[cls]
    answered = 0
    for size, out in itertools.product((1, 3, 7), (1, 2, 5, None)):
        if out is None and k == 1:
            continue
        target = out if out is not None else (None, *(3,) * (k - 1))
        pools = [cls(target)] + ([cls(target, return_indices=True)] if "Max" in cls.__name__ else [])
        for pool, x in itertools.product(pools, [*layouts(2, 3, *(size,) * k), meta(3, *(size,) * k)]):
            answered += compare(sizes._adaptive_module, pool, (x,), {}, pool(x))
    assert answered > 10


def test_linear_and_norms():
    answered = 0
    with torch.device("meta"):
        linear, no_bias = nn.Linear(6, 5), nn.Linear(6, 5, bias=False)
        norm, norm2 = nn.LayerNorm(6), nn.LayerNorm((4, 6), elementwise_affine=False)
        group = nn.GroupNorm(2, 4)
        batch = nn.BatchNorm2d(4).eval()
    for x in [*layouts(6), *layouts(3, 6), *layouts(2, 4, 6), *layouts(2, 3, 4, 6)]:
        for m in (linear, no_bias, norm, norm2):
            try:
                expected = m(x)
            except RuntimeError:
                assert sizes.MODULE_RULES[type(m)](m, (x,), {}) is None
                continue
            answered += compare(sizes.MODULE_RULES[type(m)], m, (x,), {}, expected)
        answered += compare(sizes._linear_function, None, (x, linear.weight, linear.bias), {},
                            F.linear(x, linear.weight, linear.bias))
        answered += compare(sizes._layer_norm_function, None, (x, (6,)), {}, F.layer_norm(x, (6,)))
    for x in [*layouts(2, 4, 5, 5), *layouts(2, 4, 7), *layouts(3, 4)]:
        for m in (group, batch):
            try:
                expected = m(x)
            except (RuntimeError, ValueError):
                assert sizes.MODULE_RULES[type(m)](m, (x,), {}) is None
                continue
            answered += compare(sizes.MODULE_RULES[type(m)], m, (x,), {}, expected)
        stats = (batch.running_mean, batch.running_var, batch.weight, batch.bias)
        answered += compare(sizes._batch_norm_function, None, (x, *stats), {},
                            F.batch_norm(x, *stats))
    assert answered > 40
    assert sizes._linear_module(linear, (meta(3, 7),), {}) is None  # wrong features: PyTorch's error
    assert sizes._layer_norm_module(norm, (meta(3, 7),), {}) is None


def test_elementwise():
    answered = 0
    shapes = [(2, 3, 4, 5), (3, 4, 5), (1, 4, 1), (5,), (4, 1), (1, 3, 1, 1), ()]
    for a_shape, b_shape in itertools.product(shapes, shapes):
        for a, b in itertools.product(layouts(*a_shape), layouts(*b_shape)):
            for op in (operator.add, operator.mul, torch.sub, torch.maximum):
                rule = sizes.FUNCTION_RULES[op]
                try:
                    expected = op(a, b)
                except RuntimeError:
                    assert rule(None, (a, b), {}) is None
                    continue
                answered += compare(rule, None, (a, b), {}, expected)
        for a in layouts(*a_shape):
            answered += compare(sizes.FUNCTION_RULES[operator.truediv], None, (a, 2), {}, a / 2)
            answered += compare(sizes.FUNCTION_RULES[operator.sub], None, (1.0, a), {}, 1.0 - a)
            for f in (F.gelu, F.relu, F.hardswish, torch.sigmoid, F.silu):
                answered += compare(sizes.FUNCTION_RULES[f], None, (a,), {}, f(a))
    for x, y, z in itertools.product(layouts(2, 3, 4), layouts(4), layouts(3, 1)):
        answered += compare(sizes.FUNCTION_RULES[torch.addcmul], None, (y, z, x), {},
                            torch.addcmul(y, z, x))
    assert answered > 1000
    # mixed dtypes and integers are left to PyTorch's type promotion
    assert sizes.FUNCTION_RULES[operator.add](None, (meta(3), meta(3, dtype=torch.float16)), {}) is None
    assert sizes.FUNCTION_RULES[operator.add](None, (meta(3, dtype=torch.int64), 1), {}) is None
    assert sizes.FUNCTION_RULES[operator.add](None, (meta(3), meta(4)), {}) is None


def test_attention_reductions_joins():
    answered = 0
    for q, k in itertools.product(layouts(2, 3, 5, 8), layouts(2, 3, 7, 8)):
        for v in layouts(2, 3, 7, 4):
            answered += compare(sizes._attention, None, (q, k, v), {},
                                F.scaled_dot_product_attention(q, k, v))
    qkv = meta(2, 5, 3, 4, 8).permute(2, 0, 3, 1, 4)  # a ViT's fused projection, unbound
    q, k, v = qkv.unbind(0)
    answered += compare(sizes._attention, None, (q, k, v), {}, F.scaled_dot_product_attention(q, k, v))
    for x in [*layouts(2, 3, 4, 5), *layouts(3, 4)]:
        for dims, keep in itertools.product(((1,), (-1,), (2, 3), (0, -1), 1, -2), (False, True)):
            if (max(dims) if isinstance(dims, tuple) else dims) >= x.dim():
                continue
            answered += compare(sizes._reduce, None, (x, dims, keep), {}, x.mean(dims, keep))
            answered += compare(sizes._reduce, None, (x,), {"dim": dims, "keepdim": keep},
                                torch.sum(x, dim=dims, keepdim=keep))
        answered += compare(sizes._roll, None, (x, (1, -2), (0, -1)), {}, torch.roll(x, (1, -2), (0, -1)))
    for dim in (0, 1, -1):
        for xs in (layouts(2, 3, 4), [meta(2, 3, 4), meta(2, 3, 4)]):
            try:
                expected = torch.cat(xs, dim)
            except RuntimeError:
                assert sizes._join(False)(None, (xs, dim), {}) is None
            else:
                answered += compare(sizes._join(False), None, (xs, dim), {}, expected)
            answered += compare(sizes._join(True), None, (xs,), {"dim": dim}, torch.stack(xs, dim))
    assert answered > 60


def test_recurrent_layers():
    """LSTM (with and without a projection), GRU and RNN: batched either way round, unbatched,
    a permuted input; an initial state or a wrong width get the kernel."""
    answered = 0
    for cls, layers, both, batch_first, proj in itertools.product(
            (nn.LSTM, nn.GRU, nn.RNN), (1, 2), (False, True), (False, True), (0, 3)):
        if proj and cls is not nn.LSTM:
            continue
        with torch.device("meta"):
            m = cls(8, 5, num_layers=layers, bidirectional=both, batch_first=batch_first,
                    **({"proj_size": proj} if proj else {}))
        for x in (meta(2, 7, 8), meta(7, 8), meta(1, 1, 8), meta(8, 7, 2).permute(2, 1, 0)):
            answered += compare(sizes.MODULE_RULES[cls], m, (x,), {}, m(x))
        assert sizes.MODULE_RULES[cls](m, (meta(2, 7, 9),), {}) is None
        h = meta(layers * (2 if both else 1), 2 if batch_first else 7, 5)
        assert sizes.MODULE_RULES[cls](m, (meta(2, 7, 8), h), {}) is None
    assert answered == 4 * (16 + 8 + 8)


def test_a_wrong_rule_is_caught():
    """The self-check says where a rule and the kernel differ: shape, dtype or strides."""
    with pytest.raises(SizeRuleError, match="node 'x'"):
        check_sizes(meta(2, 3), meta(3, 2), "x")
    with pytest.raises(SizeRuleError):
        check_sizes(meta(2, 3), meta(3, 2).t(), "x")
    check_sizes(meta(1, 3), meta(3, 1).t(), "x")  # strides of a dim of length 1 do not matter


MODELS = [("resnet18", (1, 3, 64, 64)), ("mobilenet_v3_small", (1, 3, 64, 64)),
          ("efficientnet_b0", (1, 3, 64, 64)), ("convnext_tiny", (1, 3, 64, 64)),
          ("swin_t", (1, 3, 64, 64)), ("inception_v3", (1, 3, 96, 96)), ("maxvit_t", (1, 3, 224, 224))]


@pytest.mark.parametrize(("name", "shape"), MODELS, ids=[m for m, _ in MODELS])
def test_models_propagate_with_every_rule_checked(name, shape):
    """Every node of a real model that a rule answered has the kernel's output too (traced as
    capture traces it: library blocks with a handler of their own stay whole)."""
    model = TM.torchvision_model(name).eval()
    graph, tracer = trace(model, (), TABLES.leaf_names)
    example = example_input(model, shape)
    checked = propagate(tracer.root, graph, example, check=True)
    plain = propagate(tracer.root, graph, example)
    assert checked.keys() == plain.keys()
    for n, value in plain.items():
        if isinstance(value, torch.Tensor):
            assert tuple(value.shape) == tuple(checked[n].shape), n.name


def test_timm_models_propagate_with_every_rule_checked():
    timm = TM.import_timm()
    for name in ("resmlp_12_224", "fastvit_t8", "vit_tiny_patch16_224"):
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False).eval()
        graph, tracer = trace(model, (), TABLES.leaf_names)
        propagate(tracer.root, graph, example_input(model, (1, 3, 224, 224)), check=True)


def test_a_call_outside_every_rule_gets_pytorchs_error():
    """No rule answers for a Linear fed the wrong features: the kernel runs and its error names
    the node."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(5, 2)).eval()
    graph, tracer = trace(model)
    with pytest.raises(CaptureError, match="after node"):
        propagate(tracer.root, graph, example_input(model, (1, 3, 8, 8)))
