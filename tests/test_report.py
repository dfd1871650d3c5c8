"""The HTML report: one row per layer with verdicts worked out by hand, nothing fetched from the
network, honest notes without Graphviz / matplotlib / an input size, and a real headless browser
that runs the page's script (sorting from the URL hash) and paints it."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import foveal
from foveal import Graph, conv, dense
from foveal.errors import FovealError, UnknownNodeError
from foveal.html_report import write_report

CHAIN = ["x", "c0", "c1", "c2", "c3", "c4", "fc"]
# At 8x8 the min RFs are 1, 3, 5, 7, 9, 11, inf and every feature map is 8x8 (padding 1), so no
# 3x3 kernel covers a whole map (rule A never fires). c3 (9 > 8) is critical: its input c2 sees
# 7 < 8. c4 (11 > 8) and fc (inf) are unproductive: their inputs already see >= 8 (rule B).
BY_HAND = {"x": "productive", "c0": "productive", "c1": "productive", "c2": "productive",
           "c3": "critical", "c4": "unproductive", "fc": "unproductive"}
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def chain(input_shape=(8, 8)) -> foveal.Analysis:
    g = Graph(2, name="chain")
    x = g.input("x")
    for i in range(5):
        x = g.add(f"c{i}", conv(3, padding=1), x, label="Conv2d")
    g.add("fc", dense(), x, label="Linear")
    return foveal.receptive_field(g, input_shape)


class Page(HTMLParser):
    """Elements by id, every attribute, and the layer table's rows as {column key: cell}."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[dict] = []
        self._cell: dict | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.elements.append((tag, a))
        if "id" in a:
            self.by_id[str(a["id"])] = a
        if tag == "tr" and "data-index" in a:
            self.rows.append({"attrs": a, "cells": {}})
        elif tag == "td" and self.rows and "data-key" in a:
            self._cell = {"attrs": a, "text": ""}
            self.rows[-1]["cells"][a["data-key"]] = self._cell

    @property
    def tags(self) -> list[str]:
        return [tag for tag, _ in self.elements]

    def values(self, key: str, tag: str | None = None) -> list[str | None]:
        """The values of attribute `key` in document order (of `tag` elements only, if given)."""
        return [a[key] for t, a in self.elements if key in a and tag in (None, t)]

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data


def report(tmp_path: Path, analysis=None, **options) -> tuple[str, Page]:
    path = write_report(analysis or chain(), tmp_path / "report.html", **options)
    text = path.read_text()
    return text, Page(text)


def test_rows_and_verdicts_by_hand(tmp_path) -> None:
    a = chain()
    _, page = report(tmp_path, a)
    names = [row["attrs"]["data-name"] for row in page.rows]
    assert names == CHAIN == [n for n in a.order if a[n].connected]
    verdicts = a.verdicts()
    for row in page.rows:
        name, cell = row["attrs"]["data-name"], row["cells"]["verdict"]
        assert cell["text"] == BY_HAND[name] == verdicts[name].kind == row["attrs"]["data-verdict"]
        assert f"background:{verdicts[name].color}" in cell["attrs"]["style"]
        assert row["cells"]["reason"]["text"] == verdicts[name].reason
    cells = {row["attrs"]["data-name"]: row["cells"] for row in page.rows}
    assert cells["c3"]["rf_min"]["text"] == "9x9" and cells["c3"]["rf_max"]["attrs"]["data-value"] == "9 9"
    assert cells["c3"]["kernel"]["text"] == "3x3 / 1x1" and cells["c3"]["type"]["text"] == "Conv2d"
    assert cells["c3"]["feature_map"]["text"] == "8x8"
    assert cells["fc"]["rf_max"]["attrs"]["data-value"] == "Infinity Infinity"
    assert cells["fc"]["stride"]["attrs"]["data-value"] == ""  # unavailable: sorts last
    counts = dict(zip(page.values("data-kind", "li"), page.values("data-count", "li")))
    assert counts == {"unproductive": "2", "critical": "1", "productive": "4"}
    assert page.values("data-axis") == ["H", "W"]


def test_range_names_the_layer_that_sets_it(tmp_path) -> None:
    text, _ = report(tmp_path)
    low, high = chain().input_resolution_range()
    assert (low, high) == ((11, 11), (11, 11))  # c4's RF 11: the largest finite one
    assert re.search(r'<tr data-axis="H"><td>H</td><td class="num">11</td><td>c4</td>', text)


@needs_dot
def test_offline_everything_inline(tmp_path) -> None:
    text, page = report(tmp_path, regions=[("c2", (0, 0)), ("c2", (4, 4)), ("c4", (7, 7))])
    for external in ("http://", "https://", 'src="//', "@import", "url(//"):
        assert external not in text
    links = [v for key in ("src", "href", "xlink:href") for v in page.values(key)]
    assert all(v and v.startswith(("data:", "#")) for v in links), links
    assert "link" not in page.tags and "script" in page.tags and "style" in page.tags
    assert page.by_id["graph"]["data-rendered"] == "svg" and "svg" in page.tags
    assert page.values("data-plot") == ["rf-sizes", "regions", "regions"]  # one regions plot per node
    sources = page.values("src", "img")
    assert len(sources) == 3
    assert all(base64.b64decode(str(s).split(",", 1)[1]).startswith(b"\x89PNG") for s in sources)


def test_without_input_shape_the_verdicts_are_left_empty(tmp_path) -> None:
    _, page = report(tmp_path, chain(None))
    assert "verdicts-note" in page.by_id and "verdict-counts" not in page.by_id
    assert [row["cells"]["verdict"]["text"] for row in page.rows] == [""] * len(CHAIN)
    assert not any("data-verdict" in row["attrs"] for row in page.rows)
    assert [row["cells"]["rf_min"]["text"] for row in page.rows][:3] == ["1x1", "3x3", "5x5"]


def test_without_dot_and_matplotlib_notes_replace_graph_and_plots(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    text, page = report(tmp_path)
    assert page.by_id["graph"]["data-rendered"] == "dot" and "svg" not in page.tags
    assert "details" in page.tags and "digraph &quot;chain at 8x8&quot;" in text
    assert page.by_id["plots"]["data-available"] == "0" and "pip install foveal[plot]" in text
    assert len(page.rows) == len(CHAIN)


def test_text_is_escaped(tmp_path) -> None:
    g = Graph(2, name="a<b>&c")
    x = g.add("<img src=x onerror=alert(1)>", conv(3), g.input("x"), label='"quoted"')
    a = foveal.receptive_field(g, (8, 8))
    text, page = report(tmp_path, a, title="<script>alert(1)</script>")
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert page.values("onerror") == []
    assert page.rows[1]["attrs"]["data-name"] == x and page.rows[1]["cells"]["type"]["text"] == '"quoted"'


def test_errors_leave_no_file(tmp_path) -> None:
    with pytest.raises(UnknownNodeError, match="did you mean 'c4'"):
        write_report(chain(), tmp_path / "r.html", regions=[("c44", (0, 0))])
    with pytest.raises(FovealError, match="does not exist"):
        write_report(chain(), tmp_path / "missing" / "r.html")
    assert list(tmp_path.iterdir()) == []


# -- a real browser ----------------------------------------------------------------------------

def chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", *extra, url],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})


def test_browser_runs_the_script_and_sorts_from_the_hash(tmp_path) -> None:
    path = write_report(chain(), tmp_path / "report.html")
    served = [row["attrs"]["data-name"] for row in Page(path.read_text()).rows]
    assert served == CHAIN  # network order: ascending RF, so a descending sort must move rows
    url = path.as_uri() + "#sort=rf_max:desc"
    done = chromium(tmp_path, url, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r'<body[^>]*data-ready="1"', done.stdout), "the page's load handler did not run"
    dom = Page(done.stdout)
    table = dom.by_id["layers"]
    assert table["data-sort-key"] == "rf_max" and table["data-sort-order"] == "desc"
    names = [row["attrs"]["data-name"] for row in dom.rows]
    assert names == list(reversed(CHAIN))  # fc (inf) first, then 11, 9, 7, 5, 3, 1

    shot = tmp_path / "shot.png"
    done = chromium(tmp_path, url, f"--screenshot={shot}", "--window-size=1200,900")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    image = pytest.importorskip("PIL.Image").open(shot).convert("RGB")
    assert image.size == (1200, 900)
    colors = image.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 20  # text and table, not a blank page
    red = sum(count for count, (r, g, b) in colors if r > 200 and g < 60 and b < 60)
    assert red > 500  # the unproductive cells are painted red
