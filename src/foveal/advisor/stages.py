"""Stage-level edits of the advisor's search: blocks moved between stages, kernels reduced.

Framework-free, on foveal graphs whose node names are module paths.

A **stage** is a run of blocks under one parent (`layer1.0`, `layer1.1`) whose blocks after the
first are *repeats*: a block that reads one node, holds no strided window and adds that node to
its result unchanged (an identity shortcut), so its output has its input's shape and a copy of
it can follow any block of the stage. The first block keeps the stage's stride and width change.

**Redistribution.** When a candidate has removed the downsampling between two stages, they run
at one resolution. rfa_toolbox's README then spreads the building blocks "as evenly as possible
among the stages between the remaining downsampling layers": here the blocks of the stages that
have repeats are spread over the groups of consecutive stages at one resolution, each stage
keeping its first block, the extra blocks of a group going to its first (narrowest) stage; a tie
goes to the earlier groups in one variant and to the later ones in the other. Blocks leave a
stage from its end; a new block is a copy of the stage's last repeat (the stage's width, fresh
weights on a module), appended after the stage's last block, which must be the last block of
its parent (so a module can append it to its nn.Sequential).

**Kernel reduction.** A convolution is unproductive by rule B when its inputs already see the
whole image and its own kernel adds more; the layers that push the inputs there are the critical
convolutions before it. Reducing the kernels (or the dilation) of the critical and unproductive
convolutions whose feature map is larger than one position slows that growth: a dilation
becomes 1, else a kernel over 3 becomes 3 (padding reduced to keep the map's size), as the stem
edit does for the stem. A kernel of 3 is kept: 1x1 convolutions everywhere would make every
layer "productive" by rule while leaving the network nothing to see with. A convolution on a
one-position map is unproductive by rule A whatever its kernel, so it is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .. import ops as O
from ..analysis import Analysis
from ..graph import Graph
from .search import (
    AddedBlock,
    Candidate,
    Edit,
    Plan,
    block_entry,
    block_exit,
    block_of,
    consumers,
    conv_nodes,
    stem_convs,
    trunk_blocks,
)


@dataclass(frozen=True)
class Stage:
    parent: str
    blocks: tuple[str, ...]
    exits: tuple[str, ...]
    """Each block's output node."""
    template: str | None
    """The stage's last repeat block (copied for a new block), None when it has none."""
    next_index: int | None
    """The index a new block gets, None when blocks of the parent follow the stage."""

    def new_name(self, k: int) -> str:
        assert self.next_index is not None
        index = str(self.next_index + k)
        return f"{self.parent}.{index}" if self.parent else index


def _split(block: str) -> tuple[str, int]:
    parent, _, index = block.rpartition(".")
    return parent, int(index)


def _is_repeat(graph: Graph, nodes: Sequence[str], entry: str | None) -> bool:
    if entry is None:
        return False
    for name in nodes:
        op = graph.nodes[name].op
        if isinstance(op, O.Window) and any(s != 1 for s in op.stride):
            return False
    return any(isinstance(graph.nodes[n].op, O.Merge) and entry in graph.nodes[n].sources for n in nodes)


def stages(analysis: Analysis) -> list[Stage]:
    """The model's stages that hold a repeat block, in order (see the module docstring)."""
    graph = analysis.graph
    readers = consumers(graph)
    order = graph.topological_order()
    by_block: dict[str, list[str]] = {}
    for name in order:
        block = block_of(name)
        if block is not None:
            by_block.setdefault(block, []).append(name)
    last_index: dict[str, int] = {}
    for block in by_block:
        parent, index = _split(block)
        last_index[parent] = max(index, last_index.get(parent, -1))
    runs: list[list[tuple[str, str, bool]]] = []
    previous_exit: str | None = None
    previous_parent: str | None = None
    for block in trunk_blocks(analysis):
        nodes = by_block[block]
        entry, exit_node = block_entry(graph, nodes), block_exit(graph, nodes, readers)
        repeat = _is_repeat(graph, nodes, entry) and exit_node is not None
        parent = _split(block)[0]
        continues = (runs and repeat and parent == previous_parent and entry == previous_exit
                     and previous_exit is not None)
        if continues:
            runs[-1].append((block, exit_node or "", repeat))
        else:
            runs.append([(block, exit_node or "", repeat)])
        previous_exit, previous_parent = exit_node, parent
    found = []
    for run in runs:
        repeats = [b for b, _, r in run if r]
        if not repeats or any(not e for _, e, _ in run):
            continue
        parent, index = _split(run[-1][0])
        found.append(Stage(parent, tuple(b for b, _, _ in run), tuple(e for _, e, _ in run), repeats[-1],
                           index + 1 if last_index[parent] == index else None))
    return found


def spread(total: int, minimums: Sequence[int], late_ties: bool) -> list[int] | None:
    """`total` blocks over groups as evenly as possible, each at least its minimum: one at a
    time to the group with the fewest (ties: the earliest, or the latest with late_ties)."""
    counts = list(minimums)
    if sum(counts) > total:
        return None
    order = range(len(counts) - 1, -1, -1) if late_ties else range(len(counts))
    for _ in range(total - sum(counts)):
        low = min(counts)
        counts[next(i for i in order if counts[i] == low)] += 1
    return counts


def redistributions(candidate: Candidate, found: Sequence[Stage]) -> list[Plan]:
    """Plans that spread the stages' blocks over the candidate's resolutions (module docstring);
    none when no two stages run at one resolution."""
    analysis = candidate.analysis
    graph = analysis.graph
    if any(b in candidate.plan.dropped_blocks for s in found for b in s.blocks):
        return []
    live = [s for s in found if all(e in graph.nodes for e in s.exits)]
    if len(live) < 2:
        return []
    strides = [tuple(analysis[s.exits[-1]].stride) for s in live]
    groups: list[list[int]] = []
    for i, stride in enumerate(strides):
        if groups and strides[groups[-1][-1]] == stride:
            groups[-1].append(i)
        else:
            groups.append([i])
    if len(groups) == len(live):
        return []
    total = sum(len(s.blocks) for s in live)
    plans, seen = [], set()
    for late in (False, True):
        per_group = spread(total, [len(g) for g in groups], late)
        if per_group is None:
            continue
        counts = [0] * len(live)
        for group, n in zip(groups, per_group):
            for i in group:
                counts[i] = 1
            counts[group[0]] += n - len(group)
        key = tuple(counts)
        if key in seen or all(c == len(s.blocks) for c, s in zip(counts, live)):
            continue
        seen.add(key)
        plan = _moved(live, counts, [strides[g[0]] for g in groups])
        if plan is not None:
            plans.append(plan)
    return plans


def _moved(live: Sequence[Stage], counts: Sequence[int], strides: Sequence[Any]) -> Plan | None:
    dropped: list[str] = []
    added: list[AddedBlock] = []
    for stage, count in zip(live, counts):
        extra = count - len(stage.blocks)
        if extra < 0:
            dropped += stage.blocks[extra:]
        elif extra > 0:
            if stage.template is None or stage.next_index is None:
                return None
            after = stage.blocks[-1]
            for k in range(extra):
                added.append(AddedBlock(stage.new_name(k), stage.template, after))
                after = added[-1].name
    names = ", ".join(s.parent or "(top)" for s in live)
    new = "; ".join(f"{b.name} (as {b.template})" for b in added)
    at = ", ".join("x".join(map(str, s)) for s in strides)
    words = (f"blocks per stage ({names}): {', '.join(str(len(s.blocks)) for s in live)} -> "
             f"{', '.join(map(str, counts))}, spread over the {len(strides)} resolutions (strides "
             f"{at}); removed: {', '.join(dropped) or 'none'}; new: {new or 'none'} (fresh weights)")
    return Plan(dropped_blocks=tuple(dropped), added=tuple(added),
                edits=(Edit("redistribute", tuple(dropped) + tuple(b.name for b in added), words),))


def reduced(op: O.Window) -> O.Window | None:
    """The window with its dilation set to 1, else its kernels over 3 set to 3; padding reduced
    to keep the output size. None when nothing can be reduced."""
    if any(isinstance(p, str) for p in op.padding):
        return None
    if any(d != 1 for d in op.dilation):
        dilation = (1,) * len(op.dilation)
        kernel = tuple(op.kernel)
    elif any(k > 3 for k in op.kernel):
        dilation, kernel = tuple(op.dilation), tuple(min(k, 3) for k in op.kernel)
    else:
        return None
    padding = []
    for (before, after), k, kk, d, dd in zip(op.padding, op.kernel, kernel, op.dilation, dilation):
        cut = (d * (k - 1) - dd * (kk - 1)) // 2
        if cut > before or cut > after:
            return None
        padding.append((before - cut, after - cut))
    return replace(op, kernel=kernel, dilation=dilation, padding=tuple(padding))


def kernel_reduction(candidate: Candidate) -> Plan | None:
    """Reduce the critical and unproductive convolutions (module docstring); None when the
    candidate has no unproductive convolution or nothing to reduce."""
    analysis, verdicts = candidate.analysis, candidate.verdicts
    if not candidate.measure.unproductive_convs:
        return None
    graph = analysis.graph
    stems = set(stem_convs(analysis))
    targets = set(verdicts.critical()) | set(verdicts.unproductive())
    ops, edits = [], []
    for name in conv_nodes(graph, analysis.order):
        if name not in targets or name in stems:
            continue
        if all(s is None or s <= 1 for s in analysis[name].output_shape):
            continue
        op = graph.nodes[name].op
        assert isinstance(op, O.Window)
        new = reduced(op)
        if new is None:
            continue
        ops.append((name, new))
        what = verdicts[name].kind
        change = (f"dilation {_x(op.dilation)} -> 1" if new.dilation != op.dilation
                  else f"kernel {_x(op.kernel)} -> {_x(new.kernel)}")
        edits.append(Edit("reduce kernel", (name,),
                          f"{name}: {change}, padding {_x(b for b, _ in op.padding)} -> "
                          f"{_x(b for b, _ in new.padding)} ({what})"))
    return Plan(tuple(ops), edits=tuple(edits)) if ops else None


def _x(values: Iterable[Any]) -> str:
    return "x".join(str(v) for v in values)
