"""Topological order, written once: the core's graphs and the ONNX and TensorFlow readers use it."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable


def topological(count: int, sources: Callable[[int], Iterable[int]]) -> tuple[list[int], list[int]]:
    """Items 0..count-1 ordered so that each comes after its `sources` (Kahn's algorithm, O(items
    + edges); ready items are taken first in, first out, ties in index order), and the items it
    could not order: those on a cycle or after one. A source listed twice is an edge counted twice."""
    consumers: list[list[int]] = [[] for _ in range(count)]
    indegree = [0] * count
    for i in range(count):
        for s in sources(i):
            consumers[s].append(i)
            indegree[i] += 1
    ready = deque(i for i in range(count) if indegree[i] == 0)
    order: list[int] = []
    while ready:
        i = ready.popleft()
        order.append(i)
        for c in consumers[i]:
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    return order, [i for i in range(count) if indegree[i] > 0]
