"""Measure receptive fields by NaN injection and compare them with the analytic ones.

One batched forward pass per axis: sample i has NaN in the whole slab at index i of that axis
(a row, for H). A feature is NaN in sample i exactly when it depends on some pixel of that slab,
so the NaN samples of a feature give its clipped extent along the axis: the measured hull.
NaN survives every op whatever the weights (0 * NaN is NaN, max and ReLU keep it), so dead
units and zero weights cannot hide a dependency, as they can with gradients. Interpolation
taps with an exactly zero weight are the exception: PyTorch multiplies them (0 * NaN is NaN),
foveal does not count them, so a resize at integer source positions may measure one pixel more.

Runs the real model on the CPU (parameters on the meta device get random values for the probe),
in eval mode, so keep the input small.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx
from torch.func import functional_call

from ..errors import UnknownNodeError
from ..layout import Merged, Piece
from .builder import Value
from .capture import check_input_shape, input_form, spatial_sizes


@dataclass
class LayerCheck:
    """Analytic against measured extents of one layer's features (clipped to the input)."""

    layer: str
    status: str
    checked: int = 0
    mismatches: list[tuple[tuple[int, ...], int, Any, Any]] = field(default_factory=list)
    """(feature index, axis, analytic (first, last), measured (first, last))."""
    note: str = ""

    @property
    def agrees(self) -> bool:
        return self.status == "exact" and not self.mismatches and self.checked > 0


@dataclass
class Verification:
    layers: dict[str, LayerCheck]

    @property
    def agrees(self) -> bool:
        return all(c.agrees for c in self.layers.values())

    def __getitem__(self, name: str) -> LayerCheck:
        return self.layers[name]

    def summary(self) -> str:
        lines = []
        for c in self.layers.values():
            verdict = "agrees" if c.agrees else (c.note or f"{len(c.mismatches)} mismatches")
            lines.append(f"{c.layer}: {c.checked} features x axes checked, {verdict}")
        return "\n".join(lines)


class _Recorder(fx.Interpreter):
    def __init__(self, gm: fx.GraphModule, wanted: set[fx.Node]) -> None:
        super().__init__(gm)
        self.wanted = wanted
        self.seen: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        if n in self.wanted:
            self.seen[n] = result
        return result


def _real_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Random stand-ins for parameters and buffers that live on the meta device."""
    state: dict[str, torch.Tensor] = {}
    gen = torch.Generator().manual_seed(0)
    for name, t in [*module.named_parameters(), *module.named_buffers()]:
        if t.device.type == "meta":
            state[name] = _stand_in(t, gen)
    return state


def _stand_in(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Real values for a meta tensor: positive floats (no unit is dead), zeros otherwise."""
    if t.is_floating_point():
        return torch.rand(t.shape, generator=gen) + 0.5
    return torch.zeros(t.shape, dtype=t.dtype)


def _positions(n: int, limit: int) -> list[int]:
    if n <= limit:
        return list(range(n))
    step = (n - 1) / (limit - 1)
    return sorted({round(i * step) for i in range(limit)})


def verify(module: torch.nn.Module, input_shape: Any, layers: Iterable[str] | None = None, *,
           per_axis: int = 6, handlers: Mapping[Any, Any] | None = None,
           capture: str = "auto") -> Verification:
    """Compare foveal's clipped region with a NaN-injection measurement, per layer and axis.

    layers: foveal node names (module paths); default: every module's output. per_axis:
    feature indices checked along each axis (evenly spread, ends included). The model is
    captured with a batch as large as the longest axis (an exported graph keeps its batch size).
    """
    from ..analysis import Analysis
    from ..engine import Options
    from ..frontend import check_sizes
    from .frontend import convert_module

    shape = check_input_shape(input_shape)
    dims = input_form(len(shape)).spatial_dims(len(shape))
    shape = (max(shape[d] for d in dims), *shape[1:])
    builder = convert_module(module, shape, handlers, capture)
    analysis = Analysis(builder.graph, Options(None, spatial_sizes(shape), (), "global"), None)
    check_sizes(analysis, builder.expected, "PyTorch")
    names = list(layers) if layers is not None else [
        name for name, (n, _) in builder.fx_node_of.items()
        if n.op == "call_module" or n in builder.captured.labels]
    for name in names:
        if name not in builder.fx_node_of:
            raise UnknownNodeError(name, builder.fx_node_of, what="layer")
    wanted = {builder.fx_node_of[name][0] for name in names}
    gm = builder.captured.gm
    measured: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    training = [(m, m.training) for m in gm.modules()]
    state = _real_state(gm)
    try:
        gm.eval()
        for d in dims:
            probe = torch.rand(shape, generator=torch.Generator().manual_seed(1)) + 0.5
            for i in range(shape[d]):
                probe.select(d, i)[i] = float("nan")
            recorder = _RecorderWithState(gm, wanted, state) if state else _Recorder(gm, wanted)
            with torch.no_grad():
                recorder.run(*_arguments(builder.captured, probe))
            for name in names:
                out = recorder.seen[builder.fx_node_of[name][0]]
                if isinstance(out, (tuple, list)):
                    out = out[0]
                measured[name].append(torch.isnan(out))
    finally:
        for m, flag in training:
            m.train(flag)
    return Verification({name: _compare(analysis, name, builder.fx_node_of[name][1], measured[name],
                                        per_axis) for name in names})


def _arguments(captured: Any, probe: torch.Tensor) -> list[Any]:
    """The probe, and for an exported graph its parameters, buffers and constants in order."""
    if not captured.state:
        return [probe]
    gen = torch.Generator().manual_seed(0)
    args: list[Any] = []
    for n in captured.gm.graph.nodes:
        if n.op != "placeholder":
            continue
        t = captured.state.get(n)
        if t is None:
            args.append(probe)
        elif t.device.type == "meta":
            args.append(_stand_in(t, gen))
        else:
            args.append(t)
    return args


class _RecorderWithState(_Recorder):
    """Runs with stand-in tensors for meta parameters and buffers."""

    def __init__(self, gm: fx.GraphModule, wanted: set[fx.Node], state: dict[str, torch.Tensor]) -> None:
        super().__init__(gm, wanted)
        self.state = state

    def get_attr(self, target: Any, args: Any, kwargs: Any) -> Any:
        return self.state.get(str(target), super().get_attr(target, args, kwargs))

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        sub = self.fetch_attr(target)
        prefix = f"{target}."
        local = {k[len(prefix):]: v for k, v in self.state.items() if k.startswith(prefix)}
        if not local:
            return sub(*args, **kwargs)
        return functional_call(sub, local, args, kwargs)


def _compare(analysis: Any, name: str, value: Value, nan_masks: list[torch.Tensor],
             per_axis: int) -> LayerCheck:
    result = analysis[name]
    if result.status != "exact":
        return LayerCheck(name, result.status, note=f"not compared: the analysis is {result.status}")
    if any(isinstance(e, Piece) or isinstance(e, Merged) and any(isinstance(p, Piece) for p, _ in e.parts)
           for e in value.layout):  # windows: the batch dim holds blocks too
        return LayerCheck(name, result.status, note="not compared: an axis split into blocks")
    if value.layout and value.layout[0] is not None:  # the probe's samples are dim 0
        return LayerCheck(name, result.status, note="not compared: the batch is flattened with "
                                                    "spatial tokens")
    n_axes = len(nan_masks)
    dims = {entry: d for d, entry in enumerate(value.layout) if isinstance(entry, int)}
    tokens = {d: e for d, e in enumerate(value.layout) if isinstance(e, Merged) and e.exact}
    merged = {a for e in value.layout if isinstance(e, Merged) and not e.exact for a in e.axes}
    if any(not result.is_global[a] for a in merged):
        return LayerCheck(name, result.status, note="not compared: flattened spatial tokens")
    sizes = result.output_shape
    held = set(dims) | {a for e in tokens.values() for a in e.axes}
    grids = [_positions(sizes[a], per_axis) if a in held else [0] for a in range(n_axes)]
    longest = max(len(g) for g in grids)
    # a diagonal from both ends covers every checked index of every axis
    index_sets = {tuple(g[min(k, len(g) - 1)] for g in grids) for k in range(longest)}
    index_sets |= {tuple(g[-1 - min(k, len(g) - 1)] for g in grids) for k in range(longest)}
    check = LayerCheck(name, result.status)
    for index in sorted(index_sets):
        region = result.region(*index, clip=True)
        for axis in range(n_axes):
            hits = torch.nonzero(_pick(nan_masks[axis], dims, index, tokens, sizes)).flatten().tolist()
            measured = (hits[0], hits[-1]) if hits else None
            analytic = None if region[axis] is None else tuple(region[axis])
            check.checked += 1
            if analytic != measured:
                check.mismatches.append((index, axis, analytic, measured))
    return check


def _pick(mask: torch.Tensor, dims: dict[int, int], index: tuple[int, ...],
          tokens: dict[int, Merged], sizes: tuple[Any, ...]) -> torch.Tensor:
    """Per probe sample (dim 0, the batch): is the feature at `index` NaN in any channel? In a
    dim of flattened tokens the feature is the token after the extra ones, row-major."""
    idx: list[Any] = [slice(None)] * mask.dim()
    for a, d in dims.items():
        idx[d] = index[a]
    for d, entry in tokens.items():
        token = 0
        for a in entry.axes:
            token = token * sizes[a] + index[a]
        idx[d] = entry.extra + token
    t = mask[tuple(idx)]
    return t.reshape(t.shape[0], -1).any(dim=1) if t.dim() > 1 else t
