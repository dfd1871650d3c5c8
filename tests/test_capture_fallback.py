"""The capture route of last resort: when torch.fx and torch.export fail on meta tensors,
`capture="auto"` runs the model once on the CPU (random stand-ins for meta weights). Each model
here fails on meta tensors for a reason a real run does not have (an op with only a CPU kernel,
`.item()` of a weight, `torch.autocast` asked for the input's device); each result is checked
against the NaN oracle and against the same model written so that the meta route works. Numbers
read from the input (or from random stand-ins) refuse the route: the result would hold for one
input only."""

from __future__ import annotations

import pytest
import torch
import torch_models as TM
from torch import nn

import foveal
from foveal.pytorch import CaptureError, convert, verify

pytestmark = pytest.mark.usefixtures("one_torch_thread")

_LIB = torch.library.Library("foveal_capture_test", "DEF")
_LIB.define("clip01(Tensor x) -> Tensor", tags=(torch.Tag.pointwise,))
_LIB.impl("clip01", lambda x: x.clamp(0, 1), "CPU")  # no meta kernel
_LIB.define("cuda_only(Tensor x) -> Tensor")
_LIB.impl("cuda_only", lambda x: x, "CUDA")  # no meta kernel, no CPU kernel
SHAPE = (1, 3, 12, 12)


def on_meta(cls, *args):
    with torch.device("meta"):
        return cls(*args)


class TwoConvs(nn.Module):
    """conv 3x3, `middle`, conv 3x3 stride 2: a 5x5 receptive field whatever `middle` does
    position-wise."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 2, 3, stride=2)
        self.scale = nn.Parameter(torch.full((), 2.0))

    def middle(self, y: torch.Tensor) -> torch.Tensor:
        return y.clamp(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(self.middle(self.c1(x)))


class CpuOnlyOp(TwoConvs):
    def middle(self, y):
        return torch.ops.foveal_capture_test.clip01.default(y)


class CudaOnlyOp(TwoConvs):
    def middle(self, y):
        return torch.ops.foveal_capture_test.cuda_only.default(y)


class WeightRead(TwoConvs):
    """A weight read into a Python number: no value on meta tensors, a constant on real ones."""

    def middle(self, y):
        return y * self.scale.item()


class InputRead(TwoConvs):
    """A number read from the feature map scales it: every output reads every input pixel."""

    def middle(self, y):
        return y * y.sum(dim=(1, 2, 3))[0].item()


class ReadAfterViewWrite(TwoConvs):
    """The feature map is copied into a view of a fresh buffer; the buffer's sum is then read."""

    def middle(self, y):
        buffer = torch.zeros_like(y)
        buffer[:, :, 1:].copy_(y[:, :, :-1])
        return y * buffer.sum().item()


class InputSizedIndex(TwoConvs):
    """Which columns are kept depends on the values (nonzero has no meta kernel)."""

    def middle(self, y):
        keep = torch.nonzero(y[0, 0, 0] > 1).flatten()
        return y[..., keep]


class AutocastOff(TwoConvs):
    """timm's fast norms: `torch.autocast(device_type=x.device.type, enabled=False)`. fx cannot
    trace it (the device is a Proxy) and autocast refuses the meta device, so only an export on the
    CPU captures it."""

    def middle(self, y):
        with torch.autocast(device_type=y.device.type, enabled=False):
            return y.float().clamp(0, 1)


class CachingScale(nn.Module):
    """Keeps a tensor made from its weight on itself, per device, as timm's attention-bias caches
    do; a leaf (captured whole) so that only the runs call its forward."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4, 1, 1))
        self.cache: dict[str, torch.Tensor] = {}

    def forward(self, y):
        self.cache[str(y.device)] = self.weight * 2
        return y * self.cache[str(y.device)]


class CpuOnlyOpWithCache(CpuOnlyOp):
    def __init__(self) -> None:
        super().__init__()
        self.scaled = CachingScale()

    def middle(self, y):
        return self.scaled(super().middle(y))


class ValueBranch(TwoConvs):
    def middle(self, y):
        return y * 2 if y.sum() > 0 else y


def reference_sizes(shape=SHAPE) -> dict[str, tuple]:
    """Each module's receptive field size from TwoConvs, captured on meta tensors."""
    a = foveal.receptive_field(TwoConvs(), shape)
    return {name: a[name].size for name in ("c1", "c2")}


def test_an_op_without_a_meta_kernel_runs_on_the_cpu() -> None:
    for model in (CpuOnlyOp(), on_meta(CpuOnlyOp)):
        captured = convert(model, SHAPE).captured
        assert (captured.method, captured.ran_on) == ("fx", "cpu")
        a = foveal.receptive_field(model, SHAPE)
        assert a.output.status == "exact" and a.output.size == (5, 5)
        assert {name: a[name].size for name in ("c1", "c2")} == reference_sizes()
        assert verify(model, SHAPE, ["c1", "c2"]).agrees
        assert all(p.device == next(model.parameters()).device for p in model.parameters())
    assert all(p.device.type == "meta" for p in model.parameters())  # the stand-ins stayed out


def test_a_meta_model_runs_as_a_copy() -> None:
    """What a forward stores on its module during the run (values made from random stand-ins) stays
    off the user's module."""
    model = on_meta(CpuOnlyOpWithCache)
    a = foveal.receptive_field(model, SHAPE, handlers={CachingScale: foveal.elementwise()})
    assert a.output.status == "exact" and a.output.size == (5, 5)
    assert set(model.scaled.cache) <= {"meta"}  # the meta run's (no values); the CPU run's stayed on the copy
    assert all(p.device.type == "meta" for p in model.parameters())


def test_capture_fx_and_export_keep_to_their_route() -> None:
    with pytest.raises(CaptureError, match="on a meta tensor") as fx_only:
        foveal.receptive_field(CpuOnlyOp(), SHAPE, capture="fx")
    assert "CPU" not in str(fx_only.value)
    with pytest.raises(CaptureError, match="torch.export could not capture CpuOnlyOp"):
        foveal.receptive_field(on_meta(CpuOnlyOp), SHAPE, capture="export")


def test_a_weight_read_into_python_is_a_constant_when_the_weights_are_real() -> None:
    a = foveal.receptive_field(WeightRead(), SHAPE)
    assert convert(WeightRead(), SHAPE).captured.ran_on == "cpu"
    assert a.output.status == "exact" and a.output.size == (5, 5)
    assert verify(WeightRead(), SHAPE, ["c2"]).agrees
    with pytest.raises(CaptureError, match=r"node 'item' reads values computed from random stand-ins "
                                           r".*give the model its weights"):
        foveal.receptive_field(on_meta(WeightRead), SHAPE)


@pytest.mark.parametrize("cls", [InputRead, ReadAfterViewWrite])
def test_a_number_read_from_the_input_refuses_every_route(cls) -> None:
    """The NaN oracle shows why: one NaN pixel reaches every output through the number, which a
    capture of shapes would take for a constant."""
    model = cls()
    probe = torch.rand(SHAPE)
    probe[0, 0, 0, 0] = float("nan")
    assert torch.isnan(model(probe)).all()
    with pytest.raises(CaptureError) as err:
        foveal.receptive_field(model, SHAPE)
    assert "torch.fx + meta tensors: running the model on a meta tensor" in str(err.value)
    assert "torch.fx + a real run on the CPU: node 'item' reads values computed from the input " \
           "into Python" in str(err.value)
    with pytest.raises(CaptureError, match="reads values computed from the input into a number"):
        foveal.receptive_field(model, SHAPE, capture="export")


def test_a_size_set_by_the_input_values_is_refused() -> None:
    with pytest.raises(CaptureError, match="node 'nonzero' makes a tensor whose size depends on "
                                           "values computed from the input"):
        foveal.receptive_field(InputSizedIndex(), SHAPE)
    with pytest.raises(CaptureError, match=r"node '.*nonzero' \(nonzero\) makes a tensor whose size "
                                           r"depends on values computed from the input"):
        foveal.receptive_field(InputSizedIndex(), SHAPE, capture="export")


def test_export_on_the_cpu_when_meta_tensors_are_refused() -> None:
    model = on_meta(AutocastOff)
    captured = convert(model, SHAPE).captured
    assert (captured.method, captured.ran_on) == ("export", "cpu")
    assert all(t.device.type == "meta" for t in captured.state.values())  # no stand-in is kept
    a = foveal.receptive_field(model, SHAPE)
    assert a.output.status == "exact" and a.output.size == (5, 5)
    assert {name: a[name].size for name in ("c1", "c2")} == reference_sizes()
    assert verify(model, SHAPE, ["c1", "c2"]).agrees


def test_when_every_route_fails_one_error_names_them_all() -> None:
    with pytest.raises(CaptureError) as traced:
        foveal.receptive_field(on_meta(CudaOnlyOp), SHAPE)
    message = str(traced.value)
    assert message.startswith("could not capture CudaOnlyOp; torch.fx + meta tensors: running the model on "
                              "a meta tensor of shape (1, 3, 12, 12) failed after node 'c1'")
    assert "; torch.fx + a real run on the CPU: running the model on a CPU tensor of shape (1, 3, 12, 12) " \
           "failed after node 'c1': NotImplementedError: Could not run 'foveal_capture_test::cuda_only'" \
           in message
    assert "\n" not in message
    with pytest.raises(CaptureError) as untraced:
        foveal.receptive_field(on_meta(ValueBranch), SHAPE)
    message = str(untraced.value)
    assert message.startswith("torch.fx could not trace ValueBranch")
    assert "; torch.export on meta tensors: torch.export could not capture ValueBranch" in message
    assert "; torch.export on the CPU (random stand-ins for the meta weights): failed the same way. " \
           "Control flow that depends on tensor values cannot be captured" in message
    assert "\n" not in message


def test_the_input_shape_error_is_said_once() -> None:
    """Too small an input fails the same way on the CPU: the error says so instead of twice."""
    with pytest.raises(CaptureError, match=r"meta tensor of shape \(1, 3, 2, 2\) failed after node 'clamp': "
                                           r"RuntimeError: .*; torch.fx \+ a real run on the CPU: failed "
                                           r"the same way\. Check the input shape"):
        foveal.receptive_field(TwoConvs(), (1, 3, 2, 2))


# -- timm ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast_norm_convnext():
    """timm's test ConvNeXt built on meta with fast norms on (read when a norm layer is built, so
    the switch is put back at once), and the same model without them."""
    timm = TM.import_timm()
    from timm.layers import is_fast_norm, set_fast_norm

    with torch.device("meta"):
        plain = timm.create_model("test_convnext", pretrained=False)
        before = is_fast_norm()
        set_fast_norm(True)
        try:
            fast = timm.create_model("test_convnext", pretrained=False)
        finally:
            set_fast_norm(before)
    return TM.features(plain), TM.features(fast)


def test_timm_fast_norms_are_captured_on_the_cpu(fast_norm_convnext) -> None:
    plain, fast = fast_norm_convnext
    shape = (1, 3, 32, 32)
    builder = convert(fast, shape)
    assert (builder.captured.method, builder.captured.ran_on) == ("export", "cpu")
    a, b = foveal.receptive_field(plain, shape), foveal.receptive_field(builder.graph, shape)
    assert a.output.status == b.output.status == "exact"
    assert (a.output.size, a.output.stride) == (b.output.size, b.output.stride)
    assert all(p.device.type == "meta" for p in fast.parameters())


@pytest.mark.slow
def test_timm_fast_norms_against_nan_injection(fast_norm_convnext) -> None:
    _, fast = fast_norm_convnext
    shape = (1, 3, 32, 32)
    a = foveal.receptive_field(fast, shape)
    check = verify(fast, shape, [a.output_name])
    assert check.agrees, check.summary()
