"""Who reads which tensor in an ONNX graph, and its nodes in topological order.

ONNX does not require a graph's nodes to be sorted, and a hostile one may have a cycle: the
order comes from `foveal.toposort` (Kahn's algorithm, ties in file order), and the nodes it
cannot order are reported by the ones on a cycle, not those that merely follow one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..toposort import topological

Consumers = dict[str, list[Any]]
"""Each tensor's readers (NodeProtos), each once, in file order."""


def consumers_of(nodes: Iterable[Any]) -> Consumers:
    """Who reads each tensor; a node with subgraphs (If, Loop, Scan) reads what they read from
    the outer scope too."""
    out: Consumers = {}
    for node in nodes:
        for name in reads(node):
            if name:
                out.setdefault(name, []).append(node)
    return out


def reads(node: Any) -> list[str]:
    """The tensors a node reads, each once: its inputs, then what its subgraphs read from outside."""
    return list(dict.fromkeys([*node.input, *outer_reads(node)]))


def outer_reads(node: Any) -> list[str]:
    """Tensors a node's subgraphs read without defining them."""
    names: list[str] = []
    for attr in node.attribute:
        for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
            defined = {i.name for i in sub.input} | {t.name for t in sub.initializer}
            for inner in sub.node:
                names.extend(i for i in [*inner.input, *outer_reads(inner)] if i and i not in defined)
                defined.update(inner.output)
    return names


def in_order(nodes: list[Any]) -> tuple[list[Any], list[Any]]:
    """`nodes` in topological order (ties in the given order), and those that could not be
    ordered (on or after a cycle). Edges from nodes outside `nodes` are ignored; a node with
    subgraphs depends on what they read from the outer scope."""
    made = {out: k for k, n in enumerate(nodes) for out in n.output if out}
    order, stuck = topological(len(nodes), lambda k: [made[i] for i in reads(nodes[k]) if i in made])
    return [nodes[k] for k in order], [nodes[k] for k in stuck]


def on_cycles(stuck: list[Any], consumers: Consumers) -> list[Any]:
    """The nodes Kahn's algorithm could not order, less those that only follow a cycle: drop,
    until none is left, every node that feeds no other stuck node (Kahn's algorithm backwards,
    in time linear in the edges)."""
    by_id = {id(n): n for n in stuck}
    feeds = {k: {id(c) for out in n.output if out for c in consumers.get(out, ()) if id(c) in by_id}
             for k, n in by_id.items()}
    fed_by: dict[int, list[int]] = {k: [] for k in by_id}
    for k, targets in feeds.items():
        for t in targets:
            fed_by[t].append(k)
    left = {k: len(t) for k, t in feeds.items()}
    ends = [k for k, n in left.items() if n == 0]
    while ends:
        k = ends.pop()
        del left[k]
        for source in fed_by[k]:
            if source in left:
                left[source] -= 1
                if left[source] == 0:
                    ends.append(source)
    return [n for k, n in by_id.items() if k in left]
