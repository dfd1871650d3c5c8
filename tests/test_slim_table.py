"""The published receptive-field table of google-research/receptive_field, on TF-slim GraphDefs.

The fixtures in tests/fixtures/slim/ come from scripts/build_slim_fixtures.py; the expected values
are the table's rows, copied verbatim into table_rows.csv. Every row must match exactly on both
axes: RF size, effective stride and effective padding (None where it depends on the input size).
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

import foveal
from foveal.tensorflow.load import load_graph_def

pytest.importorskip("google.protobuf")

FIXTURES = Path(__file__).parent / "fixtures" / "slim"
ROWS = list(csv.DictReader((FIXTURES / "table_rows.csv").read_text().splitlines()))
VARIANTS = sorted({row["cnn"] for row in ROWS})
RESOLUTIONS = ("None", "224", "321")


def _int_or_none(text: str) -> int | None:
    return None if text == "None" else int(text)


def _expected(row: dict[str, str]) -> tuple[int, int, int | None]:
    """(RF size, effective stride, effective padding) of a table row; the same on both axes."""
    return int(row["rf"]), int(row["effective_stride"]), _int_or_none(row["effective_padding"])


@pytest.fixture(scope="module")
def networks() -> dict[str, tuple[Any, dict[str, str]]]:
    """variant -> (GraphDef, end-point key -> op name), each fixture parsed once."""
    loaded = {}
    for variant in VARIANTS:
        # foveal.receptive_field reads .pb/.pbtxt paths, not .pb.gz: hand it the parsed message.
        graph_def = load_graph_def(gzip.decompress((FIXTURES / f"{variant}.pb.gz").read_bytes()))
        meta = json.loads((FIXTURES / f"{variant}.json").read_text())
        loaded[variant] = graph_def, {e["key"]: e["op"] for e in meta["end_points"]}
    return loaded


def test_fixtures_cover_the_table() -> None:
    """Every variant has its three resolutions, and every row's end-point is in the fixture."""
    assert len(ROWS) == 294 and len(VARIANTS) == 13
    for variant in VARIANTS:
        keys = [e["key"] for e in json.loads((FIXTURES / f"{variant}.json").read_text())["end_points"]]
        for resolution in RESOLUTIONS:
            rows = [r["end_point"] for r in ROWS if r["cnn"] == variant and r["resolution"] == resolution]
            assert rows == keys, (variant, resolution)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_foveal_matches_table(networks, variant: str, resolution: str) -> None:
    """foveal's analysis gives each row's size, stride and padding on both (H, W) axes.

    Where the table's padding is None (unknown input size, and a SAME layer with an odd kernel and
    stride 2 on the way: Inception-v2's separable Conv2d_1a_7x7, the ResNet stem max-pool), foveal's
    padding is None too. The reference's None is a global sticky flag and foveal's is per path,
    but in these nets every path to every end-point crosses the undefined layer, so they agree: no
    row needs a more precise foveal value.
    """
    graph_def, ops = networks[variant]
    n = _int_or_none(resolution)
    analysis = foveal.receptive_field(graph_def, None if n is None else (n, n), input="input_image")
    mismatches = []
    for row in ROWS:
        if row["cnn"] != variant or row["resolution"] != resolution:
            continue
        node = analysis[ops[row["end_point"]]]
        size, stride, padding = _expected(row)
        got = (node.size, node.stride, node.padding)
        if got != ((size, size), (stride, stride), (padding, padding)):
            mismatches.append((row["end_point"], (size, stride, padding), got))
    assert not mismatches


@pytest.mark.parametrize("variant", VARIANTS)
def test_compat_matches_table(networks, variant: str) -> None:
    """The reference-compatible API returns each row's six values, None exactly where the table has it."""
    compat = pytest.importorskip("foveal.compat.receptive_field")
    graph_def, ops = networks[variant]
    mismatches = []
    for row in ROWS:
        if row["cnn"] != variant:
            continue
        n = _int_or_none(row["resolution"])
        size, stride, padding = _expected(row)
        rf_x, rf_y, stride_x, stride_y, pad_x, pad_y = compat.compute_receptive_field_from_graph_def(
            graph_def, "input_image", ops[row["end_point"]],
            input_resolution=None if n is None else [n, n])
        got = (rf_x, rf_y, stride_x, stride_y, pad_x, pad_y)
        if got != (size, size, stride, stride, padding, padding):
            mismatches.append((row["resolution"], row["end_point"], (size, stride, padding), got))
    assert not mismatches
