"""`foveal.advise`: from "these layers are unproductive" to "here is the network to train".

The model is analysed at the target resolution; a space of structural edits computed from that
analysis (search.py: shrink the stem, drop downsampling points, cut the unproductive tail;
stages.py: spread blocks over the stages, reduce dilation and large kernels) is searched on
foveal graphs; the best candidates for two goals are then made on the model itself
(torch_edit.py, for a PyTorch module) and analysed again with foveal, so every number a
proposal states is measured on the network it hands back. docs/advisor.md.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..analysis import Analysis
from ..errors import FovealError
from ..graph import Graph
from ..productivity import Verdicts, classify
from . import search
from .search import Candidate, Edit

__all__ = ["advise", "Advice", "Proposal", "Network", "Edit", "GOALS"]

GOALS = ("efficiency", "capacity", "both")
MAX_UPSCALE = 64
"""A model that cannot run at the target is analysed at up to this many times its size."""
REALISE_TRIES = 8
"""Candidates tried per goal when one cannot be made on the module."""


@dataclass(frozen=True)
class Network:
    """One network at the target resolution, as a proposal reports it."""

    counts: dict[str, int]
    """Layers per verdict (Verdicts.counts())."""
    unproductive_convs: tuple[str, ...]
    critical: tuple[str, ...]
    convolutions: int
    productive_blocks: tuple[str, ...]
    """The network's trunk blocks with no unproductive convolution (a moved block counts where
    it is)."""
    blocks: int
    """The original model's trunk blocks."""
    resolution_range: tuple[tuple[Any, ...], tuple[Any, ...]] | None
    flops: int | None
    """FLOPs of one forward pass at the target (None: no framework model, or it cannot run)."""
    parameters: int | None
    estimated: bool = False
    """The verdicts are estimated (the network cannot run at the target; Verdicts.estimated)."""
    output_shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Proposal:
    """An edited network: what changed, and the measured result."""

    goals: tuple[str, ...]
    edits: tuple[Edit, ...]
    after: Network
    graph: Graph
    """The edited network's foveal graph (for a module: captured from `module`)."""
    analysis: Analysis
    module: Any = None
    """The edited torch.nn.Module (a new one), or None for a graph."""
    cost_ratio: float | None = None
    """Without FLOPs (a graph): the spatial cost proxy, after over before (search.spatial_cost)."""
    notes: tuple[str, ...] = ()

    def flops_ratio(self, before: Network) -> float | None:
        if self.after.flops is None or not before.flops:
            return None
        return self.after.flops / before.flops


@dataclass(frozen=True)
class Advice:
    """The answer of advise(): the model before, and the proposals (none when nothing to change)."""

    model: str
    resolution: tuple[int, ...]
    before: Network
    proposals: tuple[Proposal, ...]
    analysis: Analysis
    """The model's analysis (at a larger size when it cannot run at the target: see notes)."""
    framework: str
    """'pytorch' (proposals carry modules) or 'graph' (proposals carry graphs)."""
    notes: tuple[str, ...] = ()
    candidates: int = 0
    """Networks the search analysed."""

    @property
    def needs_change(self) -> bool:
        return bool(self.before.unproductive_convs)

    def proposal(self, goal: str) -> Proposal | None:
        return next((p for p in self.proposals if goal in p.goals), None)

    def to_text(self) -> str:
        from .text import advice_text

        return advice_text(self)

    def __str__(self) -> str:
        return self.to_text()


def advise(model: Any, input_shape: Any, *, goal: str = "both") -> Advice:
    """Proposals that make every convolution of `model` productive at `input_shape`.

    model: a torch.nn.Module (proposals carry edited copies; the model is not changed), a zoo
    name (the torchvision model rebuilt on meta when torch and torchvision import, else its
    graph), or anything foveal.receptive_field reads (proposals carry edited graphs).
    input_shape: spatial sizes (an int, or one per axis) or, for a module, the full shape
    (N, C, *spatial). goal: 'efficiency' (fewest FLOPs with no unproductive convolution and no
    fewer productive blocks than the model), 'capacity' (most of the model's blocks productive,
    then fewest FLOPs) or 'both'.
    """
    if goal not in GOALS:
        raise FovealError(f"goal is one of {', '.join(GOALS)}, got {goal!r}")
    notes: list[str] = []
    name, model, notes_from_model = _resolve(model)
    notes += notes_from_model
    torch_module = _is_module(model)
    shape = _full_shape(model, input_shape) if torch_module else None
    resolution = _spatial(input_shape if shape is None else shape[2:])
    base, analysed_at = _analyse(model, resolution, shape)
    if analysed_at != resolution:
        notes.append(f"{name} cannot run at {_x(resolution)} (a feature map would be empty): it was "
                     f"analysed at {_x(analysed_at)} and its verdicts at {_x(resolution)} are estimated "
                     f"as rfa_toolbox estimates them (resolution // stride)")
    verdicts = classify(base, resolution=resolution) if analysed_at != resolution else base.verdicts()
    blocks = search.trunk_blocks(base)
    per_node = None
    if torch_module:
        from ..pytorch.flops import flops_by_node

        per_node = flops_by_node(model, (*shape[:2], *analysed_at))  # type: ignore[index]
    measured = search.measure(base, verdicts, None)
    before = _network(base, verdicts, measured, len(blocks), model if torch_module else None,
                      shape if analysed_at == resolution else None)
    if not before.unproductive_convs:
        return Advice(name, resolution, before, (), base, "pytorch" if torch_module else "graph",
                      tuple(notes))
    if not torch_module:
        notes.append("a graph has no channel counts, so FLOPs are unknown: candidates are ranked by "
                     "their spatial cost (output positions times kernel positions of each "
                     "convolution), which weighs every layer alike whatever its width")
    found = search.candidates(base, per_node, resolution)
    budget = None if per_node is None else search.estimated_parameters(
        base, base, per_node, search.conv_nodes(base.graph, base.order))
    wanted = ("efficiency", "capacity") if goal == "both" else (goal,)
    chosen: list[tuple[str, Candidate, Any]] = []
    for each in wanted:
        for cand in _ranked(found, each, len(measured.productive_blocks), budget)[:REALISE_TRIES]:
            made = _made(cand, model, base, shape, blocks, torch_module, notes)
            if made is not None:
                chosen.append((each, cand, made))
                break
    proposals: list[Proposal] = []
    for each, _, made in chosen:
        same = next((i for i, p in enumerate(proposals) if p.edits == made.edits), None)
        if same is not None:
            proposals[same] = _with_goal(proposals[same], each)
            continue
        proposals.append(_with_goal(made, each))
    if not proposals:
        notes.append("no candidate of the search space could be made; see docs/advisor.md")
    elif any(p.after.unproductive_convs for p in proposals):
        notes.append("no candidate of the search space leaves every convolution productive; the "
                     "proposals leave the fewest")
    return Advice(name, resolution, before, tuple(proposals), base, "pytorch" if torch_module else "graph",
                  tuple(notes), len(found))


def _with_goal(p: Proposal, goal: str) -> Proposal:
    return Proposal((*p.goals, goal), p.edits, p.after, p.graph, p.analysis, p.module, p.cost_ratio, p.notes)


def _ranked(found: list[Candidate], goal: str, productive_before: int,
            budget: float | None = None) -> list[Candidate]:
    """Candidates in the goal's order: those with no unproductive convolution first.

    efficiency: at least as many productive blocks as the model (and one), fewest FLOPs;
    capacity: most productive blocks, then most working convolutions, then most working
    convolution weights up to the model's own (`budget`, in percent; rfa_toolbox: "make use of
    the underutilized parameters", not grow the model; a reduced kernel loses weights), then
    fewest FLOPs. Fewer edits break ties, so an edit that changes nothing is never proposed."""
    def cost(c: Candidate) -> float:
        return math.inf if c.measure.cost is None else c.measure.cost

    def weights(c: Candidate) -> int:
        """Working weights in percent of the model's (a shrunk stem's few weights are noise)."""
        if not budget:
            return 0
        return round(100 * min(c.measure.working_parameters or 0.0, budget) / budget)

    clean = [c for c in found if not c.measure.unproductive_convs]
    if goal == "efficiency":
        floor = max(1, productive_before)
        pool = [c for c in clean if len(c.measure.productive_blocks) >= floor] or clean
        ranked = sorted(pool, key=lambda c: (cost(c), -len(c.measure.productive_blocks), len(c.plan.edits)))
    else:
        ranked = sorted(clean, key=lambda c: (-len(c.measure.productive_blocks), -len(c.measure.working),
                                              -weights(c), cost(c), len(c.plan.edits)))
    rest = sorted((c for c in found if c.measure.unproductive_convs),
                  key=lambda c: (len(c.measure.unproductive_convs), cost(c), len(c.plan.edits)))
    return ranked + rest


def _made(cand: Candidate, model: Any, base: Analysis, shape: tuple[int, ...] | None, blocks: list[str],
          torch_module: bool, notes: list[str]) -> Proposal | None:
    """The candidate as a proposal: for a module, made on a copy and analysed again (None when it
    cannot be made: the reason goes to notes); for a graph, the searched graph itself."""
    if not torch_module:
        resolution = tuple(int(s or 0) for s in cand.analysis.input_shape or ())
        before_cost = search.spatial_cost(search.analyse(base.graph, base, resolution)) \
            if _runs(base.graph, base, resolution) else None
        ratio = None if not before_cost or cand.measure.cost is None else cand.measure.cost / before_cost
        after = _network(cand.analysis, cand.verdicts, cand.measure, len(blocks), None, None)
        return Proposal((), cand.plan.edits, after, cand.graph, cand.analysis, None, ratio)
    from ..api import receptive_field
    from . import torch_edit

    assert shape is not None
    try:
        made = torch_edit.realise(model, base.graph, cand.plan, shape)
        analysis = receptive_field(made.shadow, shape)
    except FovealError as error:
        notes.append(f"a candidate ({'; '.join(e.words for e in cand.plan.edits)}) could not be made on "
                     f"the module: {error}")
        return None
    verdicts = analysis.verdicts()
    measured = search.measure(analysis, verdicts, None)
    after = _network(analysis, verdicts, measured, len(blocks), made.shadow, shape)
    runnable = model if torch_edit.on_meta(model) else torch_edit.meta_copy(model)
    want = torch_edit.output_shape(runnable, shape) if _module_runs(model, shape) else None
    if want is not None and after.output_shape != want:
        notes.append(f"a candidate changed the output shape {want} -> {after.output_shape}; skipped")
        return None
    return Proposal((), cand.plan.edits + made.rewired, after, analysis.graph, analysis, made.module, None)


def _module_runs(model: Any, shape: tuple[int, ...]) -> bool:
    from . import torch_edit

    try:
        torch_edit.output_shape(torch_edit.meta_copy(model), shape)
    except FovealError:
        return False
    return True


def _runs(graph: Graph, like: Analysis, resolution: Any) -> bool:
    try:
        search.analyse(graph, like, resolution)
    except FovealError:
        return False
    return True


def _network(analysis: Analysis, verdicts: Verdicts, measured: search.Measure, blocks: int,
             module: Any, shape: tuple[int, ...] | None) -> Network:
    try:
        low, high = analysis.input_resolution_range()
        span: tuple[tuple[Any, ...], tuple[Any, ...]] | None = (tuple(low), tuple(high))
    except FovealError:
        span = None
    flops = parameters = out = None
    if module is not None:
        from . import torch_edit

        parameters = torch_edit.parameters(module)
        if shape is not None:
            runnable = module if torch_edit.on_meta(module) else torch_edit.meta_copy(module)
            flops = torch_edit.flops(runnable, shape)
            out = torch_edit.output_shape(runnable, shape)
    return Network(measured.counts, measured.unproductive_convs, measured.critical, measured.convolutions,
                   measured.productive_blocks, blocks, span, flops, parameters, verdicts.estimated, out)


def _resolve(model: Any) -> tuple[str, Any, list[str]]:
    """(display name, the model to analyse, notes): a zoo name becomes its torchvision module
    when torch and torchvision import, else stays a graph."""
    from .. import zoo

    if not (isinstance(model, str) and zoo.is_zoo_name(model)):
        label = model if isinstance(model, str) else getattr(model, "name", None) or type(model).__name__
        return str(label), model, []
    if zoo.framework(model) != "torchvision":
        return model, model, [f"{model} is a {zoo.framework(model)} graph: the proposals are edited graphs"]
    try:
        import torch  # noqa: F401
        import torchvision  # type: ignore[import-untyped]  # noqa: F401
    except Exception as error:  # noqa: BLE001 - an import can fail in any way
        first = (str(error).strip().splitlines() or [""])[0]
        return model, model, [f"torchvision is not importable ({type(error).__name__}: {first}): the "
                              f"proposals are edited graphs, not modules"]
    from ..pytorch.load import build

    target, keywords, attributes = zoo.factory(model)
    built = build(target, keywords)
    for attribute in attributes:
        built = getattr(built, attribute)
    return model, built, [f"{model}: {zoo.entry(model).source}, built on meta (random initialisation)"]


def _is_module(model: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def _first_conv_channels(model: Any) -> int:
    import torch

    for layer in model.modules():
        if isinstance(layer, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            return int(layer.in_channels)
    raise FovealError("give the full input shape (N, C, *spatial): the module has no convolution to "
                      "read its channel count from")


def _full_shape(model: Any, input_shape: Any) -> tuple[int, ...]:
    """A module runs on a tensor: spatial sizes become (1, C, *sizes), C from its first
    convolution; a shape of three or more numbers is already full (N, C, *spatial)."""
    if isinstance(input_shape, int) and not isinstance(input_shape, bool):
        return (1, _first_conv_channels(model), input_shape, input_shape)
    sizes = tuple(int(v) for v in input_shape)
    if len(sizes) <= 2:
        return (1, _first_conv_channels(model), *(sizes * 2 if len(sizes) == 1 else sizes))
    return sizes


def _spatial(input_shape: Any) -> tuple[int, ...]:
    if isinstance(input_shape, int) and not isinstance(input_shape, bool):
        return (input_shape, input_shape)
    sizes = tuple(int(v) for v in input_shape)
    if not sizes or any(v < 1 for v in sizes):
        raise FovealError(f"the input sizes must be integers >= 1, got {input_shape!r}")
    return sizes * 2 if len(sizes) == 1 else sizes


def _analyse(model: Any, resolution: tuple[int, ...],
             shape: tuple[int, ...] | None) -> tuple[Analysis, tuple[int, ...]]:
    """The model's analysis at the target, or at the smallest power-of-two multiple where it runs
    (with the size analysed at)."""
    from ..api import receptive_field

    first: FovealError | None = None
    factor = 1
    while factor <= MAX_UPSCALE:
        sizes = tuple(r * factor for r in resolution)
        try:
            given: Sequence[int] = sizes if shape is None else (*shape[:2], *sizes)
            return receptive_field(model, tuple(given)), sizes
        except FovealError as error:
            if first is None:
                first = error
            if not _too_small(error):
                raise
        factor *= 2
    assert first is not None
    raise first


def _too_small(error: FovealError) -> bool:
    text = str(error)
    return any(s in text for s in ("too small", "empty output", "Output size is too small"))


def _x(values: Sequence[Any]) -> str:
    return "x".join(str(v) for v in values)

