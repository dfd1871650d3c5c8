"""The advisor's edits on a torch.nn.Module: a new module, the user's untouched.

A plan found on the graph (search.Plan, by module path) is applied to a copy of the model:
a convolution's stride is set to 1, a shrunk kernel or a reduced dilation is a new convolution
(fresh weights), a removed pooling or a dropped block becomes nn.Identity, an added block is a
deep copy of its template block appended to the template's nn.Sequential, with every layer's
parameters reset (PyTorch's default initialisation). Layers whose input channels changed
(the head after a dropped stage) are found by running the copy on meta tensors with a check
before every convolution, linear and batch-norm layer, and rebuilt with the channels they read
(fresh weights); every other layer keeps the user's weights. Imported only for a torch model.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .. import ops as O
from ..errors import FovealError
from ..graph import Graph
from .search import Edit, Plan

MAX_REWIRES = 32
"""Layers re-wired at most (a head has one or two; more means the edit broke the trunk)."""
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class NotRealisable(FovealError):
    """The plan cannot be made on this module (a node is no submodule, the edited copy fails)."""


@dataclass
class Realised:
    module: nn.Module
    """The edited module on the user's device (the user's weights where a layer was kept)."""
    shadow: nn.Module
    """The same module on meta tensors: analysed and counted without allocating weights."""
    rewired: tuple[Edit, ...]


def meta_copy(model: nn.Module) -> nn.Module:
    """A deep copy whose parameters and buffers live on meta: no weight is copied."""
    memo: dict[int, Any] = {}
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.device.type == "meta":
            continue
        moved = tensor.detach().to("meta")
        is_parameter = isinstance(tensor, nn.Parameter)
        memo[id(tensor)] = nn.Parameter(moved, tensor.requires_grad) if is_parameter else moved
    return copy.deepcopy(model, memo)


def on_meta(model: nn.Module) -> bool:
    return all(t.device.type == "meta" for t in itertools.chain(model.parameters(), model.buffers()))


def realise(model: nn.Module, graph: Graph, plan: Plan, input_shape: tuple[int, ...]) -> Realised:
    """`plan` made on a copy of `model` (see the module docstring)."""
    shadow = meta_copy(model)
    _apply(shadow, graph, plan)
    rewires = _rewire(shadow, input_shape)
    if on_meta(model):
        module = shadow
    else:
        module = copy.deepcopy(model)
        _apply(module, graph, plan)
        for path, channels in rewires:
            _replace(module, path, resized(module.get_submodule(path), channels))
    edits = tuple(Edit("re-wire", (path,), f"{path}: rebuilt for {channels} input channels (fresh "
                                            f"weights)") for path, channels in rewires)
    return Realised(module, shadow, edits)


def _add_blocks(module: nn.Module, plan: Plan) -> dict[str, str]:
    """Append the plan's new blocks; {new node name prefix: template}."""
    origin: dict[str, str] = {}
    for block in plan.added:
        parent_path, _, index = block.name.rpartition(".")
        parent = _submodule(module, parent_path) if parent_path else module
        if not isinstance(parent, nn.Sequential) or str(len(parent)) != index:
            raise NotRealisable(f"{block.name!r}: a new block is appended to an nn.Sequential, and "
                                f"{parent_path or 'the model'} is a {type(parent).__name__} of "
                                f"{len(list(parent.children()))} children")
        new = copy.deepcopy(_submodule(module, block.template))
        for layer in new.modules():
            reset = getattr(layer, "reset_parameters", None)
            if callable(reset):
                reset()
        parent.append(new)
        origin[block.name] = block.template
    return origin


def _apply(module: nn.Module, graph: Graph, plan: Plan) -> None:
    origin = _add_blocks(module, plan)
    for name, op in plan.ops:
        layer: Any = _submodule(module, name)
        block = next((b for b in origin if name.startswith(b + ".")), None)
        old = graph.nodes[name if block is None else origin[block] + name[len(block):]].op
        if not isinstance(layer, CONVS) or not isinstance(op, O.Window) or not isinstance(old, O.Window):
            raise NotRealisable(f"{name!r} is a {type(layer).__name__}, not a convolution the advisor edits")
        if op.kernel != old.kernel or op.dilation != old.dilation:
            if any(b != a for b, a in op.padding) or isinstance(layer.padding, str):
                raise NotRealisable(f"{name!r}: the new padding is not symmetric")
            layer = _conv_like(layer, kernel=op.kernel, padding=tuple(b for b, _ in op.padding),
                               dilation=tuple(op.dilation))
            _replace(module, name, layer)
        if op.stride != old.stride:
            layer.stride = tuple(op.stride)
    for name in (*plan.removed, *plan.dropped_blocks):
        _submodule(module, name)
        _replace(module, name, nn.Identity())


def _submodule(module: nn.Module, path: str) -> nn.Module:
    if "@" in path:
        raise NotRealisable(f"{path!r} is a module called more than once; the advisor edits a module "
                            f"used once")
    try:
        return module.get_submodule(path)
    except AttributeError:
        raise NotRealisable(f"{path!r} is not a submodule (a functional op), so it cannot be edited "
                            f"on the module") from None


def _replace(root: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, leaf = path.rpartition(".")
    setattr(root.get_submodule(parent_path) if parent_path else root, leaf, new)


def _conv_like(layer: Any, *, kernel: Any = None, padding: Any = None, dilation: Any = None,
               in_channels: int | None = None) -> nn.Module:
    weight = layer.weight
    return type(layer)(in_channels or layer.in_channels, layer.out_channels, kernel or layer.kernel_size,
                       layer.stride, layer.padding if padding is None else padding,
                       layer.dilation if dilation is None else dilation,
                       layer.groups, layer.bias is not None, layer.padding_mode,
                       device=weight.device, dtype=weight.dtype)


def resized(layer: nn.Module, channels: int) -> nn.Module:
    """`layer` rebuilt to read `channels` input channels (features), fresh weights."""
    if type(layer) in CONVS and layer.groups == 1:
        return _conv_like(layer, in_channels=channels)
    if type(layer) is nn.Linear:
        return nn.Linear(channels, layer.out_features, layer.bias is not None,
                         device=layer.weight.device, dtype=layer.weight.dtype)
    raise NotRealisable(f"a {type(layer).__name__} reads {channels} channels after the edit and the "
                        f"advisor rebuilds only ungrouped convolutions and linear layers")


class _Mismatch(Exception):
    def __init__(self, path: str, channels: int) -> None:
        self.path, self.channels = path, channels


def _expected(layer: nn.Module, x: torch.Tensor) -> tuple[int, int] | None:
    if isinstance(layer, CONVS):
        return layer.in_channels, x.shape[1] if x.dim() > 1 else -1
    if isinstance(layer, nn.Linear):
        return layer.in_features, x.shape[-1]
    if isinstance(layer, NORMS):
        return layer.num_features, x.shape[1] if x.dim() > 1 else -1
    return None


@contextmanager
def _eval(module: nn.Module) -> Iterator[None]:
    training = [m for m in module.modules() if m.training]
    module.eval()
    try:
        yield
    finally:
        for m in training:
            m.training = True


def _rewire(shadow: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, int]]:
    """Run the meta copy; each layer that reads another channel count than it was built for is
    rebuilt for it, until the copy runs."""
    done: list[tuple[str, int]] = []
    for _ in range(MAX_REWIRES):
        try:
            run_meta(shadow, input_shape, check=True)
            return done
        except _Mismatch as found:
            _replace(shadow, found.path, resized(shadow.get_submodule(found.path), found.channels))
            done.append((found.path, found.channels))
    raise NotRealisable(f"more than {MAX_REWIRES} layers read other channel counts after the edit")


def run_meta(module: nn.Module, input_shape: tuple[int, ...], *, check: bool = False) -> Any:
    """A forward pass on a meta tensor in eval mode (no weight is read); with check, a layer
    that reads another channel count than it was built for stops it (_Mismatch)."""
    handles = []
    if check:
        for path, layer in module.named_modules():
            def hook(layer: nn.Module, args: tuple[Any, ...], path: str = path) -> None:
                if not args or not isinstance(args[0], torch.Tensor):
                    return
                pair = _expected(layer, args[0])
                if pair is not None and pair[0] != pair[1]:
                    raise _Mismatch(path, int(pair[1]))
            if isinstance(layer, (*CONVS, nn.Linear, *NORMS)):
                handles.append(layer.register_forward_pre_hook(hook))
    try:
        with torch.no_grad(), _eval(module):
            return module(torch.empty(input_shape, device="meta"))
    except _Mismatch:
        raise
    except Exception as error:  # noqa: BLE001 - the edited model is user code
        first = (str(error).strip().splitlines() or [""])[0]
        raise NotRealisable(f"the edited module does not run at {tuple(input_shape)}: "
                            f"{type(error).__name__}: {first}") from None
    finally:
        for handle in handles:
            handle.remove()


def flops(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass, FlopCounterMode's count on meta tensors (a multiply-add is 2
    FLOPs; foveal.pytorch.flops' convention)."""
    counter = FlopCounterMode(display=False)
    with counter:
        run_meta(module, input_shape)
    return int(counter.get_total_flops())


def parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def output_shape(module: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    out = run_meta(module, input_shape)
    return tuple(out.shape) if isinstance(out, torch.Tensor) else None
