"""The bounds foveal keeps while reading and analysing a model it does not trust.

Every loop whose length comes from a file (a kernel, a scale, a stride, an input size, a
declared element count) is either replaced by arithmetic or checked against one of these limits
first, so a small hostile file cannot hang foveal or exhaust memory. Real networks stay far
below them (docs/security.md gives the reasoning for each number). Exceeding one is a
`LimitError`, a FovealError that names the node and the limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .errors import FovealError

MAX_FILE_BYTES = 4 << 30
"""A model file read into memory (an ONNX model with its weights can be a few GB)."""

MAX_MEMBER_BYTES = 256 << 20
"""One decompressed member of an archive or gzip stream that foveal parses (a program's JSON,
a gzipped GraphDef): the largest real ones are tens of MB."""

MAX_ARCHIVE_MEMBERS = 200_000
"""Members listed in an archive's directory (zipfile reads the whole directory first)."""

MAX_PERIOD = 1 << 16
"""Phases of one feature->input map on one axis. After upsampling, features repeat their layout
every `period` positions (a resize from 125 to 4000 pixels has period 32); a period of 65,536
covers resizes of axes up to 65,536 pixels."""

MAX_PHASES = 4_000_000
"""Phases of all maps of one analysis together (about 100 bytes each: 400 MB)."""

MAX_TAP_WORK = 10_000_000
"""Steps of one composition of a map with a window (period times the taps it must visit)."""

MAX_WORK = 10_000_000
"""Steps of all compositions of maps with a period above 1 in one analysis (about a second; the
built-in zoo needs at most 200,000, MaxViT's windows)."""

MAX_SAME_CANDIDATES = 1024
"""Possible left paddings of a TF/ONNX SAME window when the input size is not known."""

MAX_AXIS_LENGTH = (1 << 40) - 1
"""An axis length (given, declared in a file, or computed): about 10^12."""

MAX_CLIPPED_POSITIONS = 4_000_000
"""Positions visited to compute regions clipped to the input (they are computed position by
position, for the nodes asked about)."""

MAX_PARAMETER = (1 << 40) - 1
"""Absolute value of an integer op parameter (kernel, stride, padding, crop bound, factor)."""


class LimitError(FovealError):
    """A model needs more than one of foveal's limits allows; the message names the limit."""


def check(value: int, limit: int, what: str) -> int:
    """`value`, or a LimitError saying `what` exceeds `limit`."""
    if value > limit:
        raise LimitError(f"{what} is {value:,}, over foveal's limit of {limit:,} (see docs/security.md)")
    return value


_work_left: ContextVar[list[int] | None] = ContextVar("foveal_work_left", default=None)


@contextmanager
def work_budget(limit: int = MAX_WORK) -> Iterator[None]:
    """Counts the steps `spend` reports while an analysis runs (per context, so threads and
    nested analyses each have their own)."""
    token = _work_left.set([limit])
    try:
        yield
    finally:
        _work_left.reset(token)


def spend(steps: int, what: str) -> None:
    """Take `steps` from the running analysis' budget; a LimitError when it is spent. Outside an
    analysis (a direct call of the maps' arithmetic) only the per-call limits apply."""
    left = _work_left.get()
    if left is None:
        return
    left[0] -= steps
    if left[0] < 0:
        raise LimitError(f"{what}: the analysis needs more than foveal's limit of {MAX_WORK:,} steps "
                         f"for its maps (see docs/security.md)")
