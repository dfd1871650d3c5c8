"""Exception classes. Each names the node, the op and the fix, so a user never reads a traceback;
`quoted` shows a value from a model file in their messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

MAX_QUOTED = 80
"""Characters of a value from a model file quoted in a message (a name can be megabytes long)."""


def quoted(value: Any, limit: int = MAX_QUOTED) -> str:
    """A value read from a model file, quoted for a one-line message: a string's repr, cut after
    `limit` characters of the string with '...' after the closing quote; any other value's repr,
    cut after `limit` characters with '...'. (report.shown, unlike this, escapes control
    characters of text for a terminal; it does not quote or shorten.)"""
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else f"{value[:limit]!r}..."
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class FovealError(Exception):
    """Base class of every error foveal raises on purpose."""


class GraphError(FovealError):
    """The graph itself is malformed (cycle, dangling edge, duplicate name, mismatched axes)."""


class UnknownNodeError(GraphError, KeyError):
    """A node name that the graph does not have."""

    def __init__(self, name: str, known: Iterable[str], what: str = "node",
                 listed: Sequence[str] = ()) -> None:
        """`listed`: the few names that fit (a graph's inputs, a model's top-level layers), named
        when none is close to `name`."""
        self.name = name
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        if not close and listed:
            more = f" and {len(listed) - 5} more" if len(listed) > 5 else ""
            hint = f"; {what}s: {', '.join(repr(n) for n in listed[:5])}{more}"
        super().__init__(f"unknown {what} {name!r}{hint}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def check_prefixes(names: Sequence[str], prefixes: Iterable[str], flag: str) -> None:
    """A stop-propagation prefix that starts no node's name cuts nothing: a typo, surely. Raised
    with the closest names (the library functions ignore it, as the reference does; the commands
    say so)."""
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name in names):
            close = difflib.get_close_matches(prefix, names, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise FovealError(f"{flag} {prefix!r} starts no node's name, so it cuts nothing{hint}")


class CycleError(GraphError):
    """The graph has a cycle, so there is no topological order."""


class InvalidParameterError(FovealError, ValueError):
    """An op parameter is out of range (kernel or stride < 1, wrong number of axes, ...)."""


class ShapeError(FovealError, ValueError):
    """Shapes do not fit: the input is too small for a layer, or merged inputs disagree."""


class UnsupportedOpError(FovealError):
    """Analysis reached an op it cannot express and the policy is 'error'."""

    def __init__(self, node: str, op_name: str, others: int = 0, fix: str = "") -> None:
        self.node = node
        self.op_name = op_name
        self.others = others
        more = f" (and {others} more unsupported node{'s' if others > 1 else ''} after it)" if others else ""
        fix = fix or "replace the node with a supported op"
        super().__init__(
            f"node {node!r} has op {op_name!r}, which foveal cannot analyse{more}; pass "
            f"unknown_policy='identity' or 'global' to treat it so (results downstream are "
            f"then marked as bounds), or {fix}"
        )


class AlignmentError(FovealError, ValueError):
    """Paths into a node disagree in stride or centre (raised only where the caller asks)."""


class GraphFormatError(FovealError, ValueError):
    """A graph file is not valid foveal JSON (syntax, schema or version)."""
