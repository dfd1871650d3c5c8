"""Command-line values shared by foveal's sub-commands: input sizes and factory keyword arguments."""

from __future__ import annotations

import argparse
import json
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
