"""The advisor's search, on foveal graphs: which structural edits make every convolution productive.

Framework-free. The model's graph (node names are module paths for PyTorch) is edited and
re-analysed by the engine, a few milliseconds per candidate, so the search can try every
combination of the downsampling it may drop instead of following a recipe:

- the stem's kernel shrunk to 3 (a convolution on the input with a kernel over 3);
- each downsampling point (the strided windows that take the cumulative stride from s to s*k,
  grouped so that the branches of one residual block change together) un-strided: a strided
  convolution gets stride 1, a strided pooling is removed;
- the trunk cut before the first block that still holds an unproductive convolution (a block:
  the module path up to its first integer index, `layer3.0`, `features.7`), the head re-wired;
- blocks spread over the stages left at one resolution, and dilation or kernels over 3 of
  critical and unproductive convolutions reduced (stages.py).

Each candidate's verdicts come from re-analysing the edited graph at the same resolution, so a
downsampling is kept or dropped by how it moves every later layer's min RF against the
resolution. docs/advisor.md gives the scoring.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
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
    """'shrink kernel', 'unstride', 'remove', 'drop', 'redistribute', 'reduce kernel' or
    're-wire'."""
    paths: tuple[str, ...]
    words: str


@dataclass(frozen=True)
class AddedBlock:
    """A new block `name` with the structure of block `template`, reading block `after`'s output
    (the blocks after `after` read the new block's output instead)."""

    name: str
    template: str
    after: str

    def node_name(self, template_node: str) -> str:
        """`layer1.1.conv1` -> `layer1.2.conv1` for a new block `layer1.2` copied from `layer1.1`."""
        return self.name + template_node[len(self.template):]


@dataclass(frozen=True)
class Plan:
    """A set of edits to a graph: new ops for some nodes, nodes removed (their consumers read
    the removed node's first input), trunk blocks dropped, blocks added (in order)."""

    ops: tuple[tuple[str, O.Op], ...] = ()
    removed: tuple[str, ...] = ()
    dropped_blocks: tuple[str, ...] = ()
    edits: tuple[Edit, ...] = ()
    added: tuple[AddedBlock, ...] = ()

    def with_(self, other: Plan) -> Plan:
        return Plan(self.ops + other.ops, self.removed + other.removed,
                    self.dropped_blocks + other.dropped_blocks, self.edits + other.edits,
                    self.added + other.added)


@dataclass(frozen=True)
class Measure:
    """What the scoring reads of one network at the target resolution."""

    counts: dict[str, int]
    unproductive_convs: tuple[str, ...]
    critical: tuple[str, ...]
    convolutions: int
    working: tuple[str, ...]
    """The network's convolutions that are not unproductive."""
    productive_blocks: tuple[str, ...]
    """The network's trunk blocks (trunk_blocks) with no unproductive convolution."""
    cost: float | None
    """FLOPs (estimated during the search, measured for a framework's model at the end) or,
    without per-node FLOPs, the spatial cost proxy (see spatial_cost)."""
    working_parameters: float | None = None
    """Weights of the convolutions that are not unproductive, estimated from per-node FLOPs
    (estimated_parameters); None without them."""


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


def consumers(graph: Graph) -> dict[str, list[str]]:
    """Each node's readers, in insertion order."""
    readers: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for name, node in graph.nodes.items():
        for source in dict.fromkeys(node.sources):
            readers[source].append(name)
    return readers


def block_members(graph: Graph, block: str) -> list[str]:
    """The block's nodes in topological order."""
    return [n for n in graph.topological_order() if block_of(n) == block]


def block_exit(graph: Graph, members: Iterable[str], readers: Mapping[str, list[str]]) -> str | None:
    """The one node of a block that layers outside it read (module-output names aside), or None."""
    inside = set(members)
    exits = {n for n in inside for r in readers[n] if r not in inside and not is_alias(graph.nodes[r].op)}
    return next(iter(exits)) if len(exits) == 1 else None


def block_entry(graph: Graph, members: Iterable[str]) -> str | None:
    """The one node outside a block that it reads, or None."""
    inside = set(members)
    entries = {s for n in inside for s in graph.nodes[n].sources if s not in inside}
    return next(iter(entries)) if len(entries) == 1 else None


def composed_ops(graph: Graph, plan: Plan) -> dict[str, O.Op]:
    """Each edited node's op with every edit of it: an edit changes some fields of the original
    op (the stem's kernel, then its stride), so the edits of one node are applied in turn."""
    ops: dict[str, O.Op] = {}
    for name, op in plan.ops:
        original = graph.nodes[name].op if name in graph.nodes else None
        if name not in ops or original is None or type(original) is not type(op):
            ops[name] = op
            continue
        changed = {f.name: getattr(op, f.name) for f in fields(op)
                   if getattr(op, f.name) != getattr(original, f.name)}
        ops[name] = replace(ops[name], **changed)
    return ops


def apply(graph: Graph, plan: Plan) -> Graph:
    """The graph with `plan`'s edits: a new Graph, `graph` untouched. An added block is a copy
    of its template's nodes (renamed, `plan.ops` may give the copies new ops) emitted right after
    the output of the block it follows; whatever read that output reads the copy's instead."""
    new_ops = composed_ops(graph, plan)
    removed = set(plan.removed)
    dropped = set(plan.dropped_blocks)
    redirect: dict[str, str] = {}
    readers = consumers(graph) if plan.added else {}
    members = {b.template: block_members(graph, b.template) for b in plan.added}
    exits: dict[str, str] = {}
    for block in plan.added:
        template_exit = block_exit(graph, members[block.template], readers)
        if template_exit is None or block_entry(graph, members[block.template]) is None:
            raise FovealError(f"block {block.template!r} has not one input and one output: it "
                              f"cannot be repeated")
        exits[block.name] = block.node_name(template_exit)
        if block.after not in exits:
            after_exit = block_exit(graph, block_members(graph, block.after), readers)
            if after_exit is None:
                raise FovealError(f"block {block.after!r} has not one output: nothing can follow it")
            exits[block.after] = after_exit
    following = {exits[b.after]: b for b in plan.added}

    followed: dict[str, str] = {}

    def read(ref: str, reader: str = "") -> str:
        source, _ = split_ref(ref)
        if source in followed and block_of(reader) != block_of(source):  # its own name stays
            return followed[source]
        return redirect.get(source, ref)

    out = Graph(graph.axes, graph.name)

    def emit_following(exit_node: str, emitted: str) -> None:
        """Emit the blocks added after the block whose output is `exit_node` (written as
        `emitted`), and point its readers at the last one's output."""
        last = emitted
        while exit_node in following:
            block = following[exit_node]
            inside = set(members[block.template])
            for name in members[block.template]:
                node = graph.nodes[name]
                inputs = [block.node_name(split_ref(r)[0]) + r[len(split_ref(r)[0]):]
                          if split_ref(r)[0] in inside else last for r in node.inputs]
                new_name = block.node_name(name)
                out.add(new_name, new_ops.get(new_name, node.op), inputs, node.outputs, node.label)
            exit_node = last = exits[block.name]
        if last != emitted:
            followed[emitted] = last

    for name in graph.topological_order():
        node = graph.nodes[name]
        if name in removed or block_of(name) in dropped:
            if not node.inputs:
                raise FovealError(f"cannot remove input node {name!r}")
            redirect[name] = read(node.inputs[0])
            continue
        out.add(name, new_ops.get(name, node.op), [read(r, name) for r in node.inputs], node.outputs,
                node.label)
        if name in following:
            emit_following(name, name)
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


def estimated_flops(base: Analysis, edited: Analysis, flops: Mapping[str, int],
                    added: Iterable[AddedBlock] = ()) -> float:
    """FLOPs of the edited graph from the original's per-node FLOPs: each kept node's count
    scaled by its output positions and kernel positions, new over old (exact for convolutions
    whose channels did not change; a re-wired head is measured on the realised module). An
    added block's nodes count as their template's, scaled the same way."""
    total = 0.0
    pairs = [(name, name) for name in flops]
    for block in added:
        pairs += [(name, block.node_name(name)) for name in flops if block_of(name) == block.template]
    for name, new_name in pairs:
        if new_name not in edited.graph.nodes or new_name not in edited._states:
            continue
        old, new = base[name].output_shape, edited[new_name].output_shape
        ratio = 1.0
        if None not in old and None not in new:
            ratio = (math.prod(n for n in new if n is not None)
                     / max(1, math.prod(o for o in old if o is not None)))
        old_op, new_op = base.graph.nodes[name].op, edited.graph.nodes[new_name].op
        if isinstance(old_op, O.Window) and isinstance(new_op, O.Window):
            ratio *= math.prod(new_op.kernel) / math.prod(old_op.kernel)
        total += flops[name] * ratio
    return total


def estimated_parameters(base: Analysis, edited: Analysis, flops: Mapping[str, int], names: Iterable[str],
                         added: Iterable[AddedBlock] = ()) -> float:
    """Weights of the convolutions `names` of the edited graph: a convolution's FLOPs are twice
    its weights times its output positions (bias aside), so weights = FLOPs / (2 * positions)
    on the original, times new kernel positions over old. An added block's convolutions count
    as their template's."""
    origin = {name: name for name in flops}
    for block in added:
        origin.update({block.node_name(n): n for n in flops if block_of(n) == block.template})
    total = 0.0
    for name in names:
        source = origin.get(name)
        if source is None or None in base[source].output_shape:
            continue
        positions = math.prod(s for s in base[source].output_shape if s is not None)
        old_op, new_op = base.graph.nodes[source].op, edited.graph.nodes[name].op
        ratio = 1.0
        if isinstance(old_op, O.Window) and isinstance(new_op, O.Window):
            ratio = math.prod(new_op.kernel) / math.prod(old_op.kernel)
        total += flops[source] / (2 * max(1, positions)) * ratio
    return total


def measure(analysis: Analysis, verdicts: Verdicts, cost: float | None,
            working_parameters: Any = None) -> Measure:
    """The scoring's numbers, on the network itself: a block moved to another stage counts
    where it now is. working_parameters: None, or a function of the working convolutions."""
    bad = unproductive_convs(analysis, verdicts)
    convs = conv_nodes(analysis.graph, analysis.order)
    failing = set(bad)
    working = tuple(n for n in convs if n not in failing)
    holding = {block_of(n) for n in bad}
    productive = tuple(b for b in trunk_blocks(analysis) if b not in holding)
    weights = None if working_parameters is None else working_parameters(working)
    return Measure(verdicts.counts(), tuple(bad), tuple(verdicts.critical()), len(convs), working,
                   productive, cost, weights)


def analyse(graph: Graph, like: Analysis, resolution: tuple[int, ...]) -> Analysis:
    """`graph` analysed as `like` was (the same input node and output) at `resolution`."""
    output = like.output_name if like.output_name in graph.nodes else None
    return Analysis(graph, replace(like.options, input=like.input, input_shape=resolution), output)


def candidates(base: Analysis, flops: Mapping[str, int] | None,
               resolution: tuple[int, ...]) -> list[Candidate]:
    """Every candidate of the search space (see the module docstring), each re-analysed at
    `resolution` (`base` may be analysed at a larger size when the model cannot run at it)."""
    from . import stages

    graph = base.graph
    points = downsamplings(base)
    found_stages = stages.stages(base)
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
        if flops is None:
            found = Candidate(plan, edited, result, verdicts, measure(result, verdicts, spatial_cost(result)))
        else:
            def weights(working: tuple[str, ...]) -> float:
                return estimated_parameters(base, result, flops, working, plan.added)

            found = Candidate(plan, edited, result, verdicts,
                              measure(result, verdicts, estimated_flops(base, result, flops, plan.added),
                                      weights))
        out.append(found)
        return found

    def reduce_kernels(found: Candidate) -> None:
        reduction = stages.kernel_reduction(found)
        if reduction is not None:
            evaluate(found.plan.with_(reduction))

    for stem, subset in itertools.product(stems, list(subsets)):
        plan = stem
        for point in subset:
            plan = plan.with_(point.plan(graph))
        found = evaluate(plan)
        if found is None:
            continue
        truncated = truncation(found)
        if truncated is not None and not any(  # an edit inside the dropped blocks changes nothing
                all(block_of(n) in truncated.dropped_blocks for n in point.nodes) for point in subset):
            evaluate(plan.with_(truncated))
        for moved in stages.redistributions(found, found_stages):
            spread = evaluate(plan.with_(moved))
            if spread is not None:
                reduce_kernels(spread)
        reduce_kernels(found)
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
