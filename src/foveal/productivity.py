"""Which layers are productive at an input resolution: rfa_toolbox's verdicts, computed exactly.

A layer whose inputs already see the whole image cannot add context ("unproductive", drawn red);
one whose smallest receptive field exceeds the image is "critical" (orange), or "partially
critical" (yellow) when that holds on some axes only. The rules are rfa_toolbox's (see
docs/productivity.md); the numbers they read are foveal's: min RF over all paths with dilation,
transposed convolution, upsampling and attention modelled, and the real feature-map sizes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any, cast

from . import ops as O
from . import paths
from .errors import FovealError
from .taps import GlobalTaps, NeedsSize, lattice_taps

if TYPE_CHECKING:
    from .analysis import Analysis

KINDS = ("unproductive", "critical", "partially critical", "productive", "unknown", "unrelated")
COLORS = {"unproductive": "red", "critical": "orange", "partially critical": "yellow",
          "productive": "white", "unknown": "lightgrey", "unrelated": "lightgrey"}
INF = math.inf


def fmt(values: tuple[Any, ...]) -> str:
    """(7, 7) -> '7x7'; Fractions as p/q; infinite on every axis -> 'inf'."""
    if values and all(v == INF for v in values):
        return "inf"
    return "x".join("?" if v is None else str(v) for v in values)


@dataclass(frozen=True)
class LayerFacts:
    """What the verdicts and the resolution range read of one node, per axis."""

    name: str
    sources: tuple[str, ...]
    """Predecessors that depend on the analysis input."""
    kernel: tuple[Any, ...]
    """Input positions one output reads on this op's own input (dilated kernel, taps of a
    resize or transposed conv); inf on a global axis; None when unknown."""
    min_rf: tuple[Any, ...]
    max_rf: tuple[Any, ...]
    finite_min: tuple[Any, ...]
    """Min / max over the paths that do not pass a global op (None if every path does)."""
    finite_max: tuple[Any, ...]
    max_stride: tuple[Any, ...]
    """Largest cumulative stride over the finite paths, own stride included (rfa's j)."""
    feature_map: tuple[int | None, ...]
    known: bool
    exact: bool = True
    """False when the numbers are bounds (a lenient policy, hand-written attention)."""

    @property
    def finite(self) -> bool:
        return self.known and all(v is not None and v != INF for v in self.min_rf)


def is_alias(op: O.Op) -> bool:
    """A name for another node's output (a PyTorch module's, a nested Keras model's): a name, not
    a layer (ops.ALIAS_KINDS)."""
    return isinstance(op, O.Elementwise) and op.is_alias


def footprint(op: O.Op, axis: int, n_in: int | None, n_out: int | None) -> Any:
    """How many input positions (first to last) one output of `op` reads on `axis`."""
    if isinstance(op, O.Window):
        return op.dilation[axis] * (op.kernel[axis] - 1) + 1
    if isinstance(op, (O.Input, O.Elementwise, O.Merge)):
        return 1
    if isinstance(op, O.Unknown):
        return None
    try:
        taps = lattice_taps(op, axis, n_in, n_out)
    except NeedsSize:
        return None
    if isinstance(taps, GlobalTaps):
        return INF
    return max(((count - 1) * step + 1 for entry in taps.table if entry for _, step, count in [entry]),
               default=1)


def step(op: O.Op, axis: int, n_in: int | None, n_out: int | None) -> Any:
    """Input positions per output step of `op` on `axis` (a Fraction when it upsamples)."""
    if isinstance(op, O.Window):
        return op.stride[axis]
    try:
        taps = lattice_taps(op, axis, n_in, n_out)
    except NeedsSize:
        return None
    if isinstance(taps, GlobalTaps):
        return 1
    ratio = Fraction(taps.shift, taps.period)
    return ratio.numerator if ratio.denominator == 1 else ratio


def _path_numbers(stats: paths.PathStats) -> tuple[Any, ...]:
    """(min, max, finite min, finite max, largest finite stride) over the paths of one axis;
    a path through a global op has an infinite RF."""
    if not stats:
        return None, None, None, None, None
    lows, highs, strides, through_global = [], [], [], False
    for shape, (rmin, rmax) in paths.entries(stats):
        if shape == paths.GLOBAL_SHAPE:
            through_global = True
            continue
        extra = paths._extra(shape)
        lows.append(rmin + extra)
        highs.append(rmax + extra)
        strides.append(shape if isinstance(shape, int) else Fraction(shape[1], shape[0]))
    if not lows:
        return INF, INF, None, None, None
    low, high, stride = min(lows), max(highs), max(strides)
    stride = stride.numerator if isinstance(stride, Fraction) and stride.denominator == 1 else stride
    return low, INF if through_global else high, low, high, stride


def layer_facts(analysis: Analysis) -> dict[str, LayerFacts]:
    """LayerFacts of every node that depends on the analysis input, in topological order."""
    graph, states = analysis.graph, analysis._states
    n_axes = len(analysis.axes)
    out: dict[str, LayerFacts] = {}
    for name in analysis.order:
        state = states[name]
        if not state.connected:
            continue
        node = graph.nodes[name]
        sources = tuple(dict.fromkeys(s for s in node.sources if s in out))
        n_in = states[sources[0]].sizes if sources else state.sizes
        kernel = tuple(footprint(node.op, i, n_in[i], state.sizes[i]) for i in range(n_axes))
        if state.iso:
            numbers = [_path_numbers(state.axes[0].paths)] * n_axes
        else:
            numbers = [_path_numbers(a.paths) for a in state.axes]
        low, high, finite_low, finite_high, stride = (tuple(col) for col in zip(*numbers))
        known = state.status != "unavailable" and None not in low
        out[name] = LayerFacts(name, sources, kernel, low, high, finite_low, finite_high, stride,
                               state.sizes, known, state.status == "exact")
    return out


@dataclass(frozen=True)
class Verdict:
    """One layer's verdict at one input resolution, with the reason in words."""

    name: str
    kind: str
    over: tuple[bool, ...]
    """Per axis: the layer's min RF exceeds the input resolution."""
    infinite: bool
    """The min RF is infinite on some axis (a dense or global layer)."""
    reason: str
    alias: bool = False
    """A module-output name that capture adds (not a layer): left out of lists and counts."""

    @property
    def color(self) -> str:
        return COLORS[self.kind]

    @property
    def border(self) -> bool:
        """rfa_toolbox's name for a layer predicted unproductive."""
        return self.kind == "unproductive"


class Verdicts(Mapping[str, Verdict]):
    """Verdicts of every node that depends on the input, in topological order."""

    def __init__(self, resolution: tuple[int, ...], axes: tuple[str, ...], verdicts: dict[str, Verdict],
                 estimated: bool = False):
        self.resolution = resolution
        self.axes = axes
        self._verdicts = verdicts
        self.estimated = estimated
        """Feature maps were estimated (resolution // stride), not computed at the resolution."""

    def __getitem__(self, name: str) -> Verdict:
        try:
            return self._verdicts[name]
        except KeyError:
            from .errors import UnknownNodeError
            raise UnknownNodeError(name, self._verdicts) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._verdicts)

    def __len__(self) -> int:
        return len(self._verdicts)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {kind}" for kind, n in self.counts().items())
        return f"<foveal.Verdicts at {fmt(self.resolution)}: {counts}>"

    def _repr_html_(self) -> str:
        """Notebook display: the counts and every layer that is not productive, with its reason."""
        from .notebook import verdicts_html

        return verdicts_html(self)

    # One definition for every list and count: a layer's kind. `counts()[k]` is always
    # `len(of_kind(k))`, `unproductive()` is `of_kind("unproductive")`, with the same
    # filter_dense default, so the same word never gives two numbers.
    def of_kind(self, kind: str, filter_dense: bool = False) -> list[str]:
        """Names of the layers of one kind, in topological order (module-output aliases are
        names, not layers, and are left out); filter_dense leaves out layers with an infinite
        min RF (dense heads, flatten, global pooling), as rfa_toolbox's filter_dense does."""
        if kind not in KINDS:
            raise FovealError(f"unknown verdict {kind!r}; one of {', '.join(KINDS)}")
        return [n for n, v in self._verdicts.items()
                if v.kind == kind and not v.alias and not (filter_dense and v.infinite)]

    def unproductive(self, filter_dense: bool = False) -> list[str]:
        """The layers predicted unproductive (red; rfa's border layers): of_kind('unproductive')."""
        return self.of_kind("unproductive", filter_dense)

    def critical(self, filter_dense: bool = False) -> list[str]:
        """The critical layers (orange: min RF over the resolution on every axis, not
        unproductive): of_kind('critical'). over_resolution() adds the unproductive ones."""
        return self.of_kind("critical", filter_dense)

    def over_resolution(self, filter_dense: bool = False) -> list[str]:
        """The layers whose min RF exceeds the resolution on every axis, whatever their kind
        (critical, and unproductive ones): rfa_toolbox's obtain_all_critical_layers."""
        return [n for n, v in self._verdicts.items()
                if v.over and all(v.over) and not v.alias and not (filter_dense and v.infinite)]

    def counts(self, filter_dense: bool = False) -> dict[str, int]:
        """Layers per kind, each layer once, kinds with none left out: counts()[k] ==
        len(of_kind(k)), so counts()['unproductive'] == len(unproductive()) with the same
        filter_dense."""
        found = {k: len(self.of_kind(k, filter_dense)) for k in KINDS}
        return {k: c for k, c in found.items() if c}


def classify(analysis: Analysis, *, resolution: Any = None, filter_kernel_size_1: bool = False) -> Verdicts:
    """Verdicts at the analysis' input shape (rfa_toolbox's is_border and critical colouring).

    Unproductive if (A) every input's feature map is no larger than the layer's kernel on every
    axis (the layer acts as a fully connected one), or (B) every input's min RF already covers the
    resolution on every axis, the layer's own min RF exceeds it on every axis, and not
    (filter_kernel_size_1 and the kernel is 1). Else critical / partially critical when the min RF
    exceeds the resolution on every / some axes.

    resolution: another resolution than the analysed one, for a model that cannot run at it
    (a layer's output would be empty); feature maps are then estimated as rfa_toolbox does,
    resolution // cumulative stride, and `Verdicts.estimated` says so.
    """
    facts = layer_facts(analysis)
    res = cast("tuple[int, ...] | None", analysis.input_shape)
    estimated = False
    if resolution is not None:
        n = len(analysis.axes)
        given = tuple(resolution) if isinstance(resolution, (tuple, list)) else (resolution,) * n
        if len(given) != len(analysis.axes) or any(not isinstance(v, int) or v < 1 for v in given):
            raise FovealError(f"the resolution needs {len(analysis.axes)} integers >= 1, got {resolution!r}")
        if given != res:
            facts = {n: replace(f, feature_map=_estimated_map(f, given)) for n, f in facts.items()}
            res, estimated = given, True
    if res is None:
        raise FovealError("verdicts need an input resolution: analyse with input_shape, e.g. "
                          "receptive_field(model, input_shape=(32, 32))")
    out: dict[str, Verdict] = {}
    for name in analysis.order:
        f = facts.get(name)
        out[name] = (Verdict(name, "unrelated", (), False,
                             f"does not depend on input {analysis.input!r}") if f is None else
                     _verdict(f, facts, res, filter_kernel_size_1))
        if is_alias(analysis.graph.nodes[name].op):
            out[name] = replace(out[name], alias=True)
        if f is not None and f.known and not f.exact:
            out[name] = replace(out[name], reason=out[name].reason + " (judged on a bound, not an "
                                f"exact receptive field: {'; '.join(analysis[name].reasons)})")
    return Verdicts(res, analysis.axes, out, estimated)


def _estimated_map(f: LayerFacts, res: tuple[int, ...]) -> tuple[int | None, ...]:
    return tuple(size if stride is None else math.floor(x / stride)
                 for size, stride, x in zip(f.feature_map, f.max_stride, res))


def _verdict(f: LayerFacts, facts: dict[str, LayerFacts], res: tuple[int, ...],
             filter_kernel_size_1: bool) -> Verdict:
    if not f.known:
        return Verdict(f.name, "unknown", (), False, "its receptive field is unavailable")
    over = tuple(r > x for r, x in zip(f.min_rf, res))
    infinite = INF in f.min_rf
    preds = [facts[s] for s in f.sources]
    kernel_known = None not in f.kernel
    if (preds and kernel_known and not all(k == INF for k in f.kernel)
            and all(None not in p.feature_map for p in preds)
            and all(all(m <= k for m, k in zip(p.feature_map, f.kernel)) for p in preds)):
        maps = ", ".join(f"{p.name}: {fmt(p.feature_map)}" for p in preds[:3])
        return Verdict(f.name, "unproductive", over, infinite,
                       f"unproductive: every input feature map ({maps}) is no larger than its "
                       f"kernel {fmt(f.kernel)}, so it acts as a fully connected layer")
    one_by_one = kernel_known and all(k == 1 for k in f.kernel)
    if (all(p.known and all(r >= x for r, x in zip(p.min_rf, res)) for p in preds) and all(over)
            and not (filter_kernel_size_1 and one_by_one)):
        seen = (f"its inputs already see the whole {fmt(res)} input (min RF "
                + ", ".join(f"{p.name}: {fmt(p.min_rf)}" for p in preds[:3]) + ") and " if preds else "")
        return Verdict(f.name, "unproductive", over, infinite,
                       f"unproductive: {seen}its own min RF {fmt(f.min_rf)} exceeds {fmt(res)} on every axis")
    if all(over):
        return Verdict(f.name, "critical", over, infinite,
                       f"critical: min RF {fmt(f.min_rf)} exceeds the input {fmt(res)} on every axis")
    if any(over):
        return Verdict(f.name, "partially critical", over, infinite,
                       f"partially critical: min RF {fmt(f.min_rf)} exceeds the input {fmt(res)} "
                       f"on axis {', '.join(str(i) for i, o in enumerate(over) if o)} only")
    return Verdict(f.name, "productive", over, infinite,
                   f"productive: min RF {fmt(f.min_rf)} fits in the input {fmt(res)}")


@dataclass(frozen=True)
class ResolutionRange:
    """rfa_toolbox's feasible input resolutions, per axis; unpacks as (minimum, maximum)."""

    minimum: tuple[Any, ...]
    maximum: tuple[Any, ...]
    minimum_from: tuple[str | None, ...]
    """Per axis, the node that sets the minimum (its min RF, or its kernel times its stride)."""
    maximum_from: tuple[str | None, ...]
    notes: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter((self.minimum, self.maximum))


def _input_stride(f: LayerFacts, facts: dict[str, LayerFacts]) -> tuple[Any, ...]:
    """Per axis, the largest cumulative stride of the layer's inputs (1 for the input itself)."""
    strides = [facts[s].max_stride for s in f.sources]
    return tuple(max((s[i] for s in strides if s[i] is not None), default=1) for i in range(len(f.kernel)))


def _ceil(v: Any) -> Any:
    return v if v == INF or isinstance(v, int) else math.ceil(v)


def _adaptive_pools_as_global(analysis: Analysis) -> tuple[Analysis, list[str]]:
    """The analysis again with every adaptive pooling node cut from the input (made an input node
    of its own), and those nodes' names.

    An adaptive pooling's window depends on the size it is analysed at (7x7 of a 14x14 map reads
    2x2, of a 7x7 map 1x1), so a range read from it would depend on the analysed size. rfa_toolbox
    treats adaptive pooling as a global op; so does the range: a path through one is a global
    path, and a layer behind one on every path has no finite receptive field."""
    from .analysis import Analysis as Rerun
    from .graph import Graph

    graph, states = analysis.graph, analysis._states
    pools = [n for n, node in graph.nodes.items() if isinstance(node.op, O.AdaptivePool)
             and any(m not in (None, 1) for m in node.op.size) and states[n].connected]  # (to 1: global)
    if not pools:
        return analysis, []
    cut = Graph(graph.axes, graph.name)
    for name, node in graph.nodes.items():
        if name in pools:
            cut.add(name, O.Input())
        else:
            cut.add(name, node.op, node.inputs, node.outputs, node.label, normalized=True)
    if graph.declared_outputs:
        cut.set_outputs(*graph.declared_outputs)
    given = analysis.options.input_shape
    sizes: dict[str, Any] = (dict(given) if isinstance(given, Mapping)
                             else {n: given for n in graph.inputs} | {analysis.input: given})
    sizes.update({n: states[n].sizes if None not in states[n].sizes else None for n in pools})
    options = replace(analysis.options, input=analysis.input, input_shape=sizes)
    return Rerun(cut, options, analysis.output_name), pools


def input_resolution_range(analysis: Analysis, *, filter_all_inf_rf: bool = True,
                           filter_kernel_size_1: bool = False, lower_bound: bool = False) -> ResolutionRange:
    """The input resolutions at which no layer is unproductive and no pattern is larger than
    every feature extractor's receptive field, with rfa_toolbox's semantics (docs/productivity.md).

    Over the layers with a finite min RF: the maximum is the largest max RF; the minimum is the
    largest of each layer's min RF (filter_all_inf_rf=True) or of its inputs' min RFs (False),
    and of each layer's kernel times the cumulative stride of its input (the input must be large
    enough for the kernel to fit in the feature map it reads; rfa_toolbox multiplies by the
    stride after the layer, which asks 256 pixels of a 16x16/16 patch embedding).
    lower_bound: the minimum only needs the inputs of every layer with a kernel larger than 1 to
    fit in the image.
    """
    analysis, pools = _adaptive_pools_as_global(analysis)
    facts = layer_facts(analysis)
    n_axes = len(analysis.axes)
    skipped = [f.name for f in facts.values() if not f.known]
    finite = [f for f in facts.values() if f.finite]
    if not finite:
        raise FovealError("no layer has a finite receptive field, so there is no input-resolution range")
    candidates_low: list[tuple[tuple[Any, ...], str]] = []  # (per-axis value, node)
    candidates_high: list[tuple[tuple[Any, ...], str]] = []
    kernel_terms = [(tuple(_ceil(k * s) for k, s in zip(f.kernel, _input_stride(f, facts))), f.name)
                    for f in finite if None not in f.kernel]
    if filter_kernel_size_1:
        finite = [f for f in finite if not all(k == 1 for k in f.kernel)]
    behind: set[str] = set(pools)  # some path passes an adaptive pooling: max RF infinite
    for name in analysis.order:
        if behind.intersection(analysis.graph.nodes[name].sources):
            behind.add(name)
    for f in finite:
        if filter_all_inf_rf:
            candidates_low.append((f.finite_min, f.name))
            candidates_high.append((f.finite_max, f.name))
        else:
            candidates_low.extend((facts[s].min_rf, f.name) for s in f.sources)
            candidates_low.extend(((INF,) * n_axes, f.name) for s in analysis.graph.nodes[f.name].sources
                                  if s in behind and s not in facts)  # only through a pooling: global
            candidates_high.append((tuple(INF for _ in f.max_rf) if f.name in behind else f.max_rf, f.name))
    if lower_bound:
        candidates_low = []
        for f in facts.values():
            if None in f.kernel or all(k == INF for k in f.kernel) or all(k == 1 for k in f.kernel):
                continue
            preds = [facts[s] for s in f.sources if facts[s].known]
            low = tuple(min((p.min_rf[i] for p in preds), default=0) for i in range(n_axes))
            candidates_low.append((low, f.name))
    candidates_low += kernel_terms

    def best(cands: list[tuple[tuple[Any, ...], str]], axis: int) -> tuple[Any, str | None]:
        found = [(c[axis], n) for c, n in cands if c[axis] is not None]
        return max(found, key=lambda t: t[0]) if found else (0, None)

    lows = [best(candidates_low, i) for i in range(n_axes)]
    highs = [best(candidates_high, i) for i in range(n_axes)]
    notes: tuple[str, ...] = (f"{len(skipped)} layer(s) without a receptive field left out: "
                              f"{', '.join(skipped[:5])}",) if skipped else ()
    if pools:
        notes += (f"adaptive pooling counted as global (its window depends on the input size): "
                  f"{', '.join(pools[:5])}",)
    return ResolutionRange(tuple(v for v, _ in lows), tuple(v for v, _ in highs),
                           tuple(n for _, n in lows), tuple(n for _, n in highs), notes)
