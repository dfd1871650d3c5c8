"""Capture an nn.Module as an fx graph whose every node carries its output's shape.

torch.fx symbolic tracing is the fast path: it records module calls and the functional ops
between them in a few milliseconds. Shapes come from running that graph once on meta tensors:
parameters and buffers are swapped for meta stand-ins of the same shape, so no weight is read
or allocated and the user's module is never modified. A model fx cannot trace goes through
torch.export (`export.py`). Both run with device requests (`.cuda()`, `device="cuda"`) kept on
the input's device, so CUDA-only code is captured on a CPU machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.func import functional_call
from torch.overrides import TorchFunctionMode

from ..errors import FovealError, InvalidParameterError
from ..input_spec import Form


class CaptureError(FovealError):
    """The model could not be turned into a graph (tracing or shape propagation failed)."""


CAPTURE_METHODS = ("auto", "fx", "export")


@dataclass
class Captured:
    """A captured module: the fx graph, each node's output (meta or fake), and names."""

    gm: fx.GraphModule
    values: dict[fx.Node, Any]
    module_outputs: list[tuple[str, fx.Node, str]] = field(default_factory=list)
    """(module path, node it returned, class name) per non-leaf module call, innermost first."""
    leaf_types: dict[str, type] = field(default_factory=dict)
    input_node: fx.Node | None = None
    """The placeholder of the analysed input (None: the first tensor placeholder)."""
    names: dict[fx.Node, str] = field(default_factory=dict)
    """Exported graphs: each node's base name from its module stack."""
    labels: dict[fx.Node, str] = field(default_factory=dict)
    state: dict[fx.Node, torch.Tensor] = field(default_factory=dict)
    """Exported graphs: the parameter, buffer or constant each other placeholder takes."""
    method: str = "fx"


class _Tracer(fx.Tracer):
    """fx's tracer, also noting what every non-leaf module call returned."""

    def __init__(self, leaves: tuple[type, ...] = (), leaf_names: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.module_outputs: list[tuple[str, fx.Node, str]] = []
        self.leaves = leaves
        self.leaf_names = leaf_names

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        return (isinstance(m, self.leaves) or qualified_name(type(m)) in self.leaf_names
                or super().is_leaf_module(m, module_qualified_name))

    def call_module(self, m: torch.nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        result = super().call_module(m, forward, args, kwargs)
        if not self.is_leaf_module(m, self.path_of_module(m)) and isinstance(result, fx.Proxy):
            self.module_outputs.append((self.path_of_module(m), result.node, type(m).__name__))
        return result


def check_input_shape(input_shape: Any) -> tuple[int, ...]:
    """(N, C, *spatial) with 1 to 3 spatial axes, or (N, L): a raw signal (audio) to which the
    model adds its own channel dim."""
    if isinstance(input_shape, torch.Size):
        input_shape = tuple(input_shape)
    if not isinstance(input_shape, (tuple, list)) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in input_shape):
        raise InvalidParameterError(
            f"input_shape for a PyTorch module must be a tuple of positive ints (N, C, *spatial), "
            f"got {input_shape!r}")
    if not 2 <= len(input_shape) <= 5:
        raise InvalidParameterError(
            f"input_shape {tuple(input_shape)} has rank {len(input_shape)}; a PyTorch model takes "
            f"(N, C, L), (N, C, H, W), (N, C, D, H, W) or a raw signal (N, L)")
    return tuple(input_shape)


def input_form(rank: int) -> Form:
    """Where a PyTorch input of `rank` holds its spatial axes: (N, L) is a raw signal, any other
    rank is channels first."""
    return Form.SIGNAL if rank == 2 else Form.CHANNELS_FIRST


def spatial_sizes(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The spatial sizes of a PyTorch input shape, in axis order."""
    return tuple(shape[d] for d in input_form(len(shape)).spatial_dims(len(shape)))


def example_input(module: torch.nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised input on the parameters' device (meta for a model built on meta) with
    their floating dtype (a half-precision model gets a half input)."""
    tensors = [*module.parameters(), *module.buffers()]
    device = tensors[0].device if tensors else torch.device("meta")
    if device.type not in ("meta", "cpu"):  # a CUDA model on a machine without CUDA: meta
        device = torch.device("meta")
    dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.get_default_dtype())
    return torch.empty(input_shape, device=device, dtype=dtype)


class _StayOn(TorchFunctionMode):
    """Keeps a model's tensors off devices this machine may not have: `.cuda()`, `.to("cuda")` and
    `device="cuda"` requests (any device but the CPU and meta) stay where the input is."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device = device

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = dict(kwargs or {})
        if func is torch.Tensor.cuda:
            return args[0]
        if func is torch.Tensor.to and any(_elsewhere(a) for a in (*args[1:], kwargs.get("device"))):
            dtype = kwargs.get("dtype") or next((a for a in args[1:] if isinstance(a, torch.dtype)), None)
            return args[0] if dtype is None else func(args[0], dtype)
        if _elsewhere(kwargs.get("device")):
            kwargs["device"] = self.device
        return func(*args, **kwargs)


def _elsewhere(device: Any) -> bool:
    """A device request other than the CPU or meta (a string, torch.device or CUDA index)."""
    if isinstance(device, bool) or not isinstance(device, (str, torch.device, int)):
        return False
    if isinstance(device, int):
        return True
    return torch.device(device).type not in ("cpu", "meta")


@contextmanager
def on_device(device: torch.device) -> Iterator[None]:
    with _StayOn(device):
        yield


def first_line(exc: BaseException, with_type: bool = True) -> str:
    """An exception's first line, for one-line errors (its type alone if it says nothing)."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if with_type else text.splitlines()[0]


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def trace(module: torch.nn.Module, leaves: tuple[type, ...] = (),
          leaf_names: frozenset[str] = frozenset()) -> tuple[fx.GraphModule, _Tracer]:
    tracer = _Tracer(leaves, leaf_names)
    with on_device(torch.device("cpu")):  # constants a CUDA-only model makes while tracing
        graph = tracer.trace(module)
    name = module.__class__.__name__
    return fx.GraphModule(tracer.root, graph, name), tracer


class MetaRun(fx.Interpreter):
    """Runs the graph on meta tensors, with meta stand-ins for parameters and buffers."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.values: dict[fx.Node, Any] = {}
        self._meta: dict[int, torch.Tensor] = {}

    def _as_meta(self, value: Any) -> Any:
        if not isinstance(value, torch.Tensor) or value.device.type == "meta":
            return value
        found = self._meta.get(id(value))
        if found is None:
            found = self._meta[id(value)] = torch.empty_like(value, device="meta")
        return found

    def get_attr(self, target: Any, args: Any, kwargs: Any) -> Any:
        return self._as_meta(super().get_attr(target, args, kwargs))

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        sub = self.fetch_attr(target)
        if _keeps_shape(sub, args, kwargs):
            return args[0] if getattr(sub, "inplace", False) else torch.empty_like(args[0])
        state = dict(sub.named_parameters())
        state.update(sub.named_buffers())
        if all(v.device.type == "meta" for v in state.values()):
            return sub(*args, **kwargs)
        return functional_call(sub, {k: self._as_meta(v) for k, v in state.items()}, args, kwargs)

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        self.values[n] = result
        return result


_ELEMENTWISE = frozenset({
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish,
    nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Softsign, nn.LogSigmoid,
    nn.Tanhshrink, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
})
_BATCH_NORM_RANKS: dict[type, tuple[int, ...]] = {
    nn.BatchNorm1d: (2, 3), nn.BatchNorm2d: (4,), nn.BatchNorm3d: (5,)}


def _keeps_shape(module: nn.Module, args: Any, kwargs: Any) -> bool:
    """Whether `module` (exactly a stock activation, dropout or batch norm, not a subclass) called
    on this one meta tensor returns a tensor of its shape and dtype. Such modules are not run: on
    meta tensors torch runs them through slow Python decompositions (about 1 ms a call, a third
    of MobileNet-v2's capture). A batch norm whose channels or rank do not fit is run, so that
    torch raises its own error."""
    if kwargs or len(args) != 1 or not isinstance(args[0], torch.Tensor) or args[0].device.type != "meta":
        return False
    kind = type(module)
    if kind in _ELEMENTWISE:
        return True
    ranks = _BATCH_NORM_RANKS.get(kind)
    return ranks is not None and args[0].dim() in ranks and args[0].shape[1] == module.num_features


def propagate(gm: fx.GraphModule, example: torch.Tensor) -> dict[fx.Node, Any]:
    run = MetaRun(gm)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if not placeholders:
        raise CaptureError("the module's forward takes no input")
    input_shape = tuple(example.shape)
    args = [example.to("meta")]
    for extra in placeholders[1:]:
        if extra.args:  # a default value from the signature
            args.append(extra.args[0])
        else:
            raise CaptureError(f"forward() takes more than one input ({extra.target!r} too); "
                               f"wrap the model so that it takes one tensor")
    try:
        with torch.no_grad(), on_device(torch.device("meta")):
            run.run(*args)
    except FovealError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model, said plainly
        where = next(reversed(run.values), None)
        after = f" after node {where.name!r}" if where is not None else ""
        raise CaptureError(
            f"running the model on a meta tensor of shape {input_shape} failed{after}: "
            f"{first_line(exc)}. Check the input shape (too small an input, a wrong rank or a "
            f"model that asserts one size fail here)") from None
    return run.values


def capture(module: torch.nn.Module, input_shape: tuple[int, ...], leaves: tuple[type, ...] = (),
            method: str = "auto", leaf_names: frozenset[str] = frozenset()) -> Captured:
    """fx trace plus meta shapes; torch.export when fx cannot trace (or when asked).

    leaves: the user's module classes, kept whole; leaf_names: library classes (by qualified
    name) that have a handler of their own, kept whole under fx."""
    if method not in CAPTURE_METHODS:
        raise InvalidParameterError(f"capture must be one of {', '.join(CAPTURE_METHODS)}, got "
                                    f"{method!r}")
    if method == "export":
        return _export(module, input_shape, leaves)
    try:
        gm, tracer = trace(module, leaves, leaf_names)
    except Exception as exc:  # noqa: BLE001 - fx fails in many ways on dynamic code
        reason = first_line(exc, with_type=False)
        if method == "fx":
            raise CaptureError(f"torch.fx could not trace {type(module).__name__}: {reason}. "
                               f"{_OPTIONS}") from None
        try:
            return _export(module, input_shape, leaves)
        except CaptureError as err:
            raise CaptureError(f"torch.fx could not trace {type(module).__name__} ({reason}), and "
                               f"{err}. {_OPTIONS}") from None
    values = propagate(gm, example_input(module, input_shape))
    leaf_types = {n.target: type(gm.get_submodule(n.target)) for n in gm.graph.nodes
                  if n.op == "call_module"}
    return Captured(gm, values, tracer.module_outputs, leaf_types)


_OPTIONS = ("Control flow that depends on tensor values cannot be captured; options: make that "
            "part a leaf (handlers={TheModuleClass: op} captures a module whole; torch.fx.wrap a "
            "function), analyse a submodule that traces, or describe the model as a foveal Graph")


def _export(module: torch.nn.Module, input_shape: tuple[int, ...], leaves: tuple[type, ...]) -> Captured:
    from .export import export_module

    if leaves:
        raise CaptureError("handlers keyed by a module class need torch.fx (the class is kept "
                           "whole there), but torch.export was used; key the handler by the ATen "
                           "op instead")
    return export_module(module, input_shape)
