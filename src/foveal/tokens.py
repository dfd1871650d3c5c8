"""Selections and concatenations of flattened spatial tokens (`layout.Merged`) and of attention
key dims (`layout.Keys`): the rules every front-end shares for `x[:, 1:]`, `x[:, 0]`, a split of
the tokens, a class token put next to the grid. The core imports no framework.

Extra tokens (class, distillation, register) lead the token dim and read no position until an op
reads across the dim, then every position (`Merged.extra_global`). Selecting them gives them
alone: a constant before attention, a global op after it. Selecting the grid keeps its layout;
one grid token is a crop of its position. A slice that cuts the grid is refused.
"""

from __future__ import annotations

from dataclasses import replace

from . import ops as O
from .graph import Graph
from .layout import LayoutError, Merged

KEYS_SELECTED = ("a selection of some keys of attention scores written by hand (q @ k^T), before "
                 "an op mixes over them: foveal reports every key of the row")


def keys_selected(n_axes: int) -> O.Global:
    """Part of a key dim (`layout.Keys`) selected: a bound on no axis of its own, with its reason."""
    return O.Global("select_keys", (False,) * n_axes, True, KEYS_SELECTED)


def kept_tokens(entry: Merged, n: int, lo: int, hi: int, step: int) -> Merged | None:
    """The token dim after the slice [lo:hi:step] of its n tokens (bounds already clamped to the
    dim): fewer extra tokens and the whole grid (a Merged), or extra tokens only (None)."""
    if step == 1 and hi <= entry.extra:
        return None
    if step == 1 and lo <= entry.extra and hi == n and entry.exact:
        return replace(entry, extra=entry.extra - lo)
    raise LayoutError("a slice of flattened spatial tokens that cuts the grid")


def token_position(entry: Merged, i: int) -> list[int] | None:
    """The grid position of token i (0 <= i < the dim's length), per axis of `entry` (None: an
    extra token)."""
    if i < entry.extra:
        return None
    grid = [(e, n) for e, n in entry.parts if isinstance(e, int)]
    if not entry.exact or tuple(e for e, _ in grid) != entry.axes:
        raise LayoutError("an index of one flattened spatial token on a grid of unknown shape")
    lengths = [n for _, n in grid]
    position, rest = [], i - entry.extra
    for n in reversed(lengths):
        position.append(rest % n)
        rest //= n
    return position[::-1]


def joined_tokens(entry: Merged, before: int, last: bool, extra_global: bool) -> Merged:
    """The grid's token dim after `before` tokens were put ahead of it (and others after it unless
    `last`): more extra tokens; they read every position when one of them does (`extra_global`)."""
    return Merged(entry.axes, entry.extra + before, entry.exact and last, entry.parts,
                  entry.extra_global or extra_global)


def reads_everything(graph: Graph, name: str, axes: tuple[int, ...]) -> bool:
    """Whether node `name`'s output reads every position of `axes`: a path from the input to it
    goes through a global op over them (as the engine reports it). The caller checks that the
    tensor has no grid dim of its own."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        node = graph.node(current)
        if isinstance(node.op, O.Global) and all(node.op.axes[a] for a in axes):
            return True
        todo.extend(node.sources)
    return False
