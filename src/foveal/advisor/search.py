"""The advisor's search, on foveal graphs: which structural edits make every convolution productive.

Framework-free. The model's graph (node names are module paths for PyTorch) is edited and
re-analysed by the engine, a few milliseconds per candidate, so the search can try every
combination of the downsampling it may drop instead of following a recipe:

- the stem's kernel shrunk to 3 (a convolution on the input with a kernel over 3);
- each downsampling point (the strided windows that take the cumulative stride from s to s*k,
  grouped so that the branches of one residual block change together) un-strided: a strided
  convolution gets stride 1, a strided pooling is removed;
- the trunk cut before the first block that still holds an unproductive convolution (a block:
  the module path up to its first integer index, `layer3.0`, `features.7`), the head re-wired.

Each candidate's verdicts come from re-analysing the edited graph at the same resolution, so a
downsampling is kept or dropped by how it moves every later layer's min RF against the
resolution. docs/advisor.md gives the scoring.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .. import ops as O
from ..analysis import Analysis
from ..errors import FovealError
from ..graph import Graph, split_ref
from ..productivity import Verdicts, is_alias

SMALL_KERNEL = 3
"""The stem's kernel after shrinking (rfa_toolbox's README: 7x7 -> 3x3)."""
MAX_EXHAUSTIVE = 8
"""Up to this many downsampling points every subset is tried (2**8 analyses of a few ms);
beyond, subsets of at most MAX_DROPPED points."""
MAX_DROPPED = 3


@dataclass(frozen=True)
class Edit:
    """One structural change, by node (module path), in words."""

    action: str
    """'shrink kernel', 'unstride', 'remove', 'drop' or 're-wire'."""
    paths: tuple[str, ...]
    words: str


@dataclass(frozen=True)
class Plan:
    """A set of edits to a graph: new ops for some nodes, nodes removed (their consumers read
    the removed node's first input), trunk blocks dropped."""

    ops: tuple[tuple[str, O.Op], ...] = ()
    removed: tuple[str, ...] = ()
    dropped_blocks: tuple[str, ...] = ()
    edits: tuple[Edit, ...] = ()

    def with_(self, other: Plan) -> Plan:
        return Plan(self.ops + other.ops, self.removed + other.removed,
                    self.dropped_blocks + other.dropped_blocks, self.edits + other.edits)


@dataclass(frozen=True)
class Measure:
    """What the scoring reads of one network at the target resolution."""

    counts: dict[str, int]
    unproductive_convs: tuple[str, ...]
    critical: tuple[str, ...]
    convolutions: int
    working: tuple[str, ...]
    """The original model's convolutions kept and not unproductive."""
    productive_blocks: tuple[str, ...]
    """The original model's trunk blocks kept with no unproductive convolution."""
    cost: float | None
    """FLOPs (estimated during the search, measured for a framework's model at the end) or,
    without per-node FLOPs, the spatial cost proxy (see spatial_cost)."""


@dataclass
class Candidate:
    plan: Plan
    graph: Graph
    analysis: Analysis
    verdicts: Verdicts
    measure: Measure
    notes: list[str] = field(default_factory=list)


def conv_nodes(graph: Graph, names: Iterable[str] | None = None) -> list[str]:
    """Convolutions: windows of kind 'conv' (pooling windows and dense layers are not)."""
    found = []
    for name in names if names is not None else graph.nodes:
        op = graph.nodes[name].op
        if isinstance(op, O.Window) and op.kind == "conv":
            found.append(name)
    return found


def unproductive_convs(analysis: Analysis, verdicts: Verdicts) -> list[str]:
    convs = set(conv_nodes(analysis.graph))
    return [n for n in verdicts.unproductive() if n in convs]


def block_of(name: str) -> str | None:
    """The block a node belongs to: its module path up to the first integer index
    (`layer3.0.conv1` -> `layer3.0`, `features.7.conv.0.0` -> `features.7`), None for none."""
    parts = name.split("@", 1)[0].split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[:i + 1])
    return None


def trunk_blocks(analysis: Analysis) -> list[str]:
    """Blocks holding a convolution whose min RF is finite (the trunk, before global pooling
    and dense heads), in the order their first convolution is computed."""
    found: dict[str, None] = {}
    for name in analysis.order:
        node = analysis.graph.nodes[name]
        block = block_of(name)
        if block is None or not isinstance(node.op, O.Window) or node.op.kind != "conv" or block in found:
            continue
        if all(isinstance(s, int) for s in analysis[name].size_min):
            found[block] = None
    return list(found)


def stem_convs(analysis: Analysis) -> list[str]:
    """The convolutions that read the input through element-wise ops only."""
    graph, reach = analysis.graph, {analysis.input}
    stems: list[str] = []
    for name in analysis.order:
        node = graph.nodes[name]
        if not reach.intersection(node.sources):
            continue
        if isinstance(node.op, O.Window) and node.op.kind == "conv":
            stems.append(name)
        elif isinstance(node.op, (O.Elementwise, O.Pad)):
            reach.add(name)
    return stems


def shrink_stem(analysis: Analysis) -> Plan | None:
    """Stem convolutions with a kernel over SMALL_KERNEL get SMALL_KERNEL, padding reduced by
    the same amount per side (so a 'same' padding stays 'same')."""
    ops, edits = [], []
    for name in stem_convs(analysis):
        op = analysis.graph.nodes[name].op
        assert isinstance(op, O.Window)
        if all(k <= SMALL_KERNEL for k in op.kernel) or any(isinstance(p, str) for p in op.padding):
            continue
        kernel = tuple(min(k, SMALL_KERNEL) for k in op.kernel)
        padding = tuple((max(0, b - d * (k - kk) // 2), max(0, a - d * (k - kk) // 2))
                        for (b, a), k, kk, d in zip(op.padding, op.kernel, kernel, op.dilation))
        ops.append((name, replace(op, kernel=kernel, padding=padding)))
        edits.append(Edit("shrink kernel", (name,),
                          f"{name}: kernel {_x(op.kernel)} -> {_x(kernel)}, padding "
                          f"{_x(b for b, _ in op.padding)} -> {_x(b for b, _ in padding)}"))
    return Plan(tuple(ops), edits=tuple(edits)) if ops else None


@dataclass(frozen=True)
class Downsampling:
    """The strided windows that take the cumulative stride from `stride_in` to `stride_out`."""

    nodes: tuple[str, ...]
    stride_in: tuple[Any, ...]
    stride_out: tuple[Any, ...]

    def plan(self, graph: Graph) -> Plan:
        """Un-stride it: convolutions get stride 1, poolings are removed."""
        ops, removed, words = [], [], []
        for name in self.nodes:
            op = graph.nodes[name].op
            assert isinstance(op, O.Window)
            if op.kind == "conv":
                ops.append((name, replace(op, stride=(1,) * len(op.stride))))
                words.append(f"{name}: stride {_x(op.stride)} -> 1")
            else:
                removed.append(name)
                words.append(f"{name}: {op.kind} {_x(op.kernel)}/{_x(op.stride)} removed")
        action = "unstride" if ops else "remove"
        return Plan(tuple(ops), tuple(removed),
                    edits=(Edit(action, self.nodes, "; ".join(words) +
                                f" (the downsampling from stride {_x(self.stride_in)} to "
                                f"{_x(self.stride_out)})"),))


def downsamplings(analysis: Analysis) -> list[Downsampling]:
    """The model's downsampling points, from the input on: strided windows grouped by the
    cumulative stride they read and the one they give (parallel branches of one block land in
    one group, so un-striding it keeps their sizes equal)."""
    groups: dict[tuple[Any, Any], list[str]] = {}
    for name in analysis.order:
        node = analysis.graph.nodes[name]
        if not isinstance(node.op, O.Window) or all(s == 1 for s in node.op.stride):
            continue
        if not analysis[name].connected or not node.sources:
            continue
        key = (tuple(analysis[node.sources[0]].stride), tuple(analysis[name].stride))
        groups.setdefault(key, []).append(name)
    return [Downsampling(tuple(nodes), key[0], key[1]) for key, nodes in groups.items()]


def apply(graph: Graph, plan: Plan) -> Graph:
    """The graph with `plan`'s edits: a new Graph, `graph` untouched."""
    new_ops = dict(plan.ops)
    removed = set(plan.removed)
    dropped = set(plan.dropped_blocks)
    redirect: dict[str, str] = {}

    def read(ref: str) -> str:
        source, _ = split_ref(ref)
        return redirect.get(source, ref)

    out = Graph(graph.axes, graph.name)
    for name in graph.topological_order():
        node = graph.nodes[name]
        if name in removed or block_of(name) in dropped:
            if not node.inputs:
                raise FovealError(f"cannot remove input node {name!r}")
            redirect[name] = read(node.inputs[0])
            continue
        out.add(name, new_ops.get(name, node.op), [read(r) for r in node.inputs], node.outputs,
                node.label)
    if graph.declared_outputs:
        out.set_outputs(*dict.fromkeys(read(n) for n in graph.declared_outputs))
    return out


def spatial_cost(analysis: Analysis) -> float:
    """Without channel counts (a graph file), the cost proxy: over convolutions, output
    positions times kernel positions. It orders candidates of one model; it is not FLOPs."""
    total = 0.0
    for name in conv_nodes(analysis.graph, analysis.order):
        op = analysis.graph.nodes[name].op
        assert isinstance(op, O.Window)
        sizes = analysis[name].output_shape
        if None in sizes:
            continue
        total += math.prod(s for s in sizes if s is not None) * math.prod(op.kernel)
    return total


def estimated_flops(base: Analysis, edited: Analysis, flops: Mapping[str, int]) -> float:
    """FLOPs of the edited graph from the original's per-node FLOPs: each kept node's count
    scaled by its output positions and kernel positions, new over old (exact for convolutions
    whose channels did not change; a re-wired head is measured on the realised module)."""
    total = 0.0
    for name, value in flops.items():
        if name not in edited.graph.nodes or name not in edited._states:
            continue
        old, new = base[name].output_shape, edited[name].output_shape
        ratio = 1.0
        if None not in old and None not in new:
            ratio = (math.prod(n for n in new if n is not None)
                     / max(1, math.prod(o for o in old if o is not None)))
        old_op, new_op = base.graph.nodes[name].op, edited.graph.nodes[name].op
        if isinstance(old_op, O.Window) and isinstance(new_op, O.Window):
            ratio *= math.prod(new_op.kernel) / math.prod(old_op.kernel)
        total += value * ratio
    return total


def measure(analysis: Analysis, verdicts: Verdicts, original_convs: Iterable[str],
            original_blocks: Iterable[str], cost: float | None) -> Measure:
    """The scoring's numbers; blocks and convolutions are the original model's, by name."""
    bad = unproductive_convs(analysis, verdicts)
    convs = conv_nodes(analysis.graph, analysis.order)
    present, failing = set(convs), set(bad)
    working = tuple(n for n in original_convs if n in present and n not in failing)
    holding = {block_of(n) for n in bad}
    kept = {block_of(n) for n in convs}
    productive = tuple(b for b in original_blocks if b in kept and b not in holding)
    return Measure(verdicts.counts(), tuple(bad), tuple(verdicts.critical()), len(convs), working,
                   productive, cost)


def analyse(graph: Graph, like: Analysis, resolution: tuple[int, ...]) -> Analysis:
    """`graph` analysed as `like` was (the same input node and output) at `resolution`."""
    output = like.output_name if like.output_name in graph.nodes else None
    return Analysis(graph, replace(like.options, input=like.input, input_shape=resolution), output)


def candidates(base: Analysis, flops: Mapping[str, int] | None,
               resolution: tuple[int, ...]) -> list[Candidate]:
    """Every candidate of the search space (see the module docstring), each re-analysed at
    `resolution` (`base` may be analysed at a larger size when the model cannot run at it)."""
    graph = base.graph
    original = conv_nodes(graph, base.order)
    blocks = trunk_blocks(base)
    points = downsamplings(base)
    stems: list[Plan] = [Plan()]
    shrunk = shrink_stem(base)
    if shrunk is not None:
        stems.append(shrunk)
    if len(points) <= MAX_EXHAUSTIVE:
        subsets: Iterable[tuple[Downsampling, ...]] = itertools.chain.from_iterable(
            itertools.combinations(points, k) for k in range(len(points) + 1))
    else:
        subsets = itertools.chain.from_iterable(
            itertools.combinations(points, k) for k in range(MAX_DROPPED + 1))
    out: list[Candidate] = []

    def evaluate(plan: Plan) -> Candidate | None:
        try:
            edited = apply(graph, plan)
            result = analyse(edited, base, resolution)
            verdicts = result.verdicts()
        except FovealError:
            return None  # sizes that no longer agree, an empty feature map: not a network
        cost = estimated_flops(base, result, flops) if flops is not None else spatial_cost(result)
        return Candidate(plan, edited, result, verdicts, measure(result, verdicts, original, blocks, cost))

    for stem, subset in itertools.product(stems, list(subsets)):
        plan = stem
        for point in subset:
            plan = plan.with_(point.plan(graph))
        found = evaluate(plan)
        if found is None:
            continue
        out.append(found)
        truncated = truncation(found)
        if truncated is not None and not any(  # an edit inside the dropped blocks changes nothing
                all(block_of(n) in truncated.dropped_blocks for n in point.nodes) for point in subset):
            cut = evaluate(plan.with_(truncated))
            if cut is not None:
                out.append(cut)
    return out


def truncation(candidate: Candidate) -> Plan | None:
    """Drop the trunk from the first block that holds an unproductive convolution on, keeping
    at least one block; None when no block holds one."""
    bad = set(candidate.measure.unproductive_convs)
    if not bad:
        return None
    blocks = trunk_blocks(candidate.analysis)
    holding = {block_of(n) for n in bad}
    first = next((i for i, b in enumerate(blocks) if b in holding), None)
    if not first:  # None, or the first block: nothing would be left
        return None
    dropped = tuple(blocks[first:])
    return Plan(dropped_blocks=dropped,
                edits=(Edit("drop", dropped, f"drop {_ranges(dropped)} (from {dropped[0]} on, the "
                                              f"blocks hold unproductive convolutions); the head reads "
                                              f"{blocks[first - 1]}"),))


def _x(values: Iterable[Any]) -> str:
    return "x".join(str(v) for v in values)


def _ranges(blocks: tuple[str, ...]) -> str:
    """`layer2.1, layer3.0, layer3.1` -> `layer2.1, layer3.*`: whole stages by their name."""
    by_stage: dict[str, list[str]] = {}
    for b in blocks:
        by_stage.setdefault(b.rsplit(".", 1)[0], []).append(b)
    parts = []
    for stage, members in by_stage.items():
        parts.append(f"{stage}.{members[0].rsplit('.', 1)[1]}" if len(members) == 1 else
                     f"{stage}.{members[0].rsplit('.', 1)[1]}-{members[-1].rsplit('.', 1)[1]}")
    return ", ".join(parts)


def is_module_output(graph: Graph, name: str) -> bool:
    return is_alias(graph.nodes[name].op)
