"""What foveal's sub-commands share: input sizes, factory keyword arguments, one-line errors."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .errors import FovealError


def sizes(text: str) -> tuple[int, ...]:
    """An argparse type: 'N' or 'N,N,...', every size >= 1."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N,N,... (integers), got {text!r}") from None
    if any(s < 1 for s in values):
        raise argparse.ArgumentTypeError(f"input sizes must be >= 1, got {text!r}")
    return values


def json_kwargs(text: str | None) -> dict[str, Any]:
    """The --kwargs JSON object for a model factory ({} when not given)."""
    if not text:
        return {}
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as error:
        raise FovealError(f"--kwargs is not valid JSON: {error}") from None
    if not isinstance(kwargs, dict):
        raise FovealError("--kwargs must be a JSON object, e.g. '{\"num_classes\": 10}'")
    return kwargs


MAX_MESSAGE = 2000
"""Characters of an error message shown (a hostile file can hold a name of a million)."""


def one_line(message: str) -> str:
    """A message on one line: a framework's multi-line text joined with ' | ', control characters
    escaped, at most MAX_MESSAGE characters."""
    from .report import shown

    line = shown(" | ".join(part.strip() for part in message.strip().splitlines() if part.strip()))
    return line if len(line) <= MAX_MESSAGE else line[:MAX_MESSAGE - 3] + "..."


def print_error(error: BaseException) -> int:
    """`foveal: error: <one line>` on stderr; the exit status of an error, 2."""
    print(f"foveal: error: {one_line(str(error))}", file=sys.stderr)
    return 2
