"""FLOPs of the part of a network that an end-point needs, from per-node counts.

A front-end counts each node's own FLOPs (`foveal.pytorch.flops`, `foveal.keras.flops_by_layer`);
this module only adds them up over a graph, so it imports no framework. The FLOPs of end-point
`e` are those of `e` and of every node `e` depends on (its ancestors): what running the network
up to `e`, and nothing else, costs. This is what the receptive_field library's rf_benchmark
measured by freezing the graph at the end-point and profiling the pruned graph.

Convention (the front-ends' and tf.profiler's): a multiply-add counts as 2 FLOPs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .errors import FovealError, UnknownNodeError
from .graph import Graph


def network_flops(flops: Mapping[str, int]) -> int:
    """Every node's FLOPs together: the whole network's cost."""
    return sum(flops.values())


def subgraph_flops(graph: Graph, flops: Mapping[str, int], end_points: Iterable[str]) -> dict[str, int]:
    """FLOPs of each end-point's subgraph: sum of `flops` over the end-point and its ancestors.

    Nodes missing from `flops` count 0; a key of `flops` that is not a node of `graph` is an
    error (the counts and the graph came from different captures). One pass in topological order
    carries, per node, its ancestor set as a bitset (a Python int) over the nodes that have FLOPs
    only; a node's bitset is dropped once its last consumer has read it, so memory follows the
    graph's width rather than its length. Cost: O(edges * F / 64) for the pass plus O(F) per
    end-point for the sum, where F is the number of nodes with non-zero FLOPs.
    """
    wanted = list(dict.fromkeys(end_points))
    for name in wanted:
        if name not in graph.nodes:
            raise UnknownNodeError(name, graph.nodes, what="end-point")
    for name, value in flops.items():
        if name not in graph.nodes:
            raise UnknownNodeError(name, graph.nodes, what="node in the FLOPs counts")
        if value < 0:
            raise FovealError(f"node {name!r} has negative FLOPs ({value})")
    if not wanted:
        return {}

    order = graph.topological_order()
    needed = _ancestors_of(graph, order, wanted)
    order = [n for n in order if n in needed]
    costly = [n for n in order if flops.get(n, 0)]
    bit = {name: 1 << i for i, name in enumerate(costly)}
    weights = [flops[n] for n in costly]

    remaining = dict.fromkeys(order, 0)  # consumers still to read each node's bitset
    for name in order:
        for src in set(graph.nodes[name].sources):
            remaining[src] += 1
    keep = set(wanted)
    sets: dict[str, int] = {}
    result: dict[str, int] = {}
    for name in order:
        mask = bit.get(name, 0)
        for src in set(graph.nodes[name].sources):
            mask |= sets[src]
            remaining[src] -= 1
            if remaining[src] == 0 and src not in keep:
                del sets[src]
        sets[name] = mask
        if name in keep:
            result[name] = _weighted_popcount(mask, weights)
    return {name: result[name] for name in wanted}


def _ancestors_of(graph: Graph, order: list[str], wanted: list[str]) -> set[str]:
    """The end-points and everything they depend on (one backward sweep)."""
    keep = set(wanted)
    for name in reversed(order):
        if name in keep:
            keep.update(graph.nodes[name].sources)
    return keep


def _weighted_popcount(mask: int, weights: list[int]) -> int:
    """Sum of weights[i] over the set bits i of mask (through its binary string: O(bits))."""
    digits = bin(mask)[:1:-1]  # least significant first, without the '0b'
    return sum(w for d, w in zip(digits, weights) if d == "1")
