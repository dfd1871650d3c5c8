"""torch.einsum under fx: which positions each output reads, from the equation's labels.

A label the output keeps carries its dim's layout entry from the operands to the output: the
output at a position reads each operand at that position. A label that is summed away reads every
position of its dim: global on the axes it holds (a feature label, such as channels, reads no
other position). Operands that are not computed from the input (weights, relative-position
tables) read nothing. What this cannot say exactly is refused as a LayoutError, so the unknown-op
policy applies (capture="auto" then goes through torch.export, which lowers einsum to matrix
products): a summed label whose axes the output still holds (attention scores), a spatial label
taken on a diagonal, two operands holding a label on different axes, two labels holding one
axis (query and key positions), or a broadcast along a spatial label.
"""

from __future__ import annotations

from typing import Any

from torch import fx

from .. import ops as O
from ..building import Value
from ..layout import LayoutError, Merged, Piece, axes_in
from .builder import Builder
from .nodes import mix_over


def _labels(spec: str, rank: int) -> list[str]:
    """One label per dim; '...' stands for as many unnamed dims as the rank leaves (named by
    their distance from the end, so operands of different ranks broadcast as PyTorch does)."""
    if "..." not in spec:
        return list(spec)
    head, tail = spec.split("...")
    fill = rank - len(head) - len(tail)
    if fill < 0:
        raise LayoutError(f"an einsum operand of rank {rank} for {spec!r}")
    return list(head) + [f"...{fill - k}" for k in range(fill)] + list(tail)


def _pieces(entry: Any) -> set[tuple[int, int]]:
    """(axis, stride) of each piece of an axis a dim holds; stride 0: the whole axis. Two dims may
    hold different pieces of one axis (a window's index and the offset in it), not the same."""
    if entry is None:
        return set()
    if isinstance(entry, Piece):
        return {(entry.axis, entry.stride)}
    if isinstance(entry, Merged) and entry.parts:
        return set().union(*(_pieces(part) for part, _ in entry.parts))
    return {(a, 0) for a in axes_in(entry)}


def einsum(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Value:
    if not args or not isinstance(args[0], str):
        raise LayoutError("einsum in the sublist format")
    equation = args[0].replace(" ", "")
    operands = list(args[1][0] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:])
    lhs, _, rhs = equation.partition("->")
    specs = lhs.split(",")
    if len(specs) != len(operands):
        raise LayoutError("an einsum whose operands do not match its equation")
    dims = [_labels(s, len(v.shape) if isinstance(v, Value) else 0) for s, v in zip(specs, operands)]
    if not rhs and "->" not in equation:  # implicit output: the labels seen once, sorted
        seen = [label for labels in dims for label in labels]
        rhs = "".join(sorted(label for label in set(seen) if seen.count(label) == 1 and len(label) == 1))
    shape = b.out_shape()
    out = _labels(rhs, len(shape))
    kept_axes = set()
    for labels, v in zip(dims, operands):
        if isinstance(v, Value) and v.node is not None:
            kept_axes |= {a for label, e in zip(labels, v.layout) if label in out for a in axes_in(e)}
    entries: dict[str, Any] = {}
    sources: list[Value] = []
    for labels, v in zip(dims, operands):
        if not isinstance(v, Value) or v.node is None:
            continue
        for label, e in zip(labels, v.layout):
            if e is not None and labels.count(label) > 1:
                raise LayoutError("an einsum that takes a diagonal of a dim holding spatial axes")
        summed = [d for d, label in enumerate(labels) if label not in out]
        if any(set(axes_in(v.layout[d])) & kept_axes for d in summed):
            raise LayoutError("an einsum that sums over spatial axes its output still holds")
        if any(v.layout[d] is not None for d in summed):
            layout = tuple(None if d in summed else e for d, e in enumerate(v.layout))
            reduced = tuple(1 if d in summed else s for d, s in enumerate(v.shape))
            v = mix_over(b, v, summed, "einsum", False, layout, reduced, step=f"sum{len(sources)}")
        for label, e, length in zip(labels, v.layout, v.shape):
            if e is None or label not in out:
                continue
            if length != shape[out.index(label)]:
                raise LayoutError("an einsum that broadcasts along a dim holding spatial axes")
            if entries.setdefault(label, e) != e:
                raise LayoutError("an einsum whose operands hold one label on different axes")
        sources.append(v)
    if not sources:
        return b.constant(shape)
    held = [_pieces(e) for e in entries.values()]
    for i, mine in enumerate(held):
        if any(a == b and (0 in (s, t) or s == t)
               for other in held[i + 1:] for a, s in mine for b, t in other):
            raise LayoutError("an einsum that pairs positions of one axis in two dims (attention scores)")
    layout = tuple(entries.get(label) for label in out)
    op = O.Merge("einsum") if len(sources) > 1 else O.Elementwise("einsum")
    return b.emit(op, sources, layout)
