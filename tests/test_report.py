"""The HTML report: summary first, one row per layer with verdicts worked out by hand, nothing
fetched from the network, honest notes without Graphviz / matplotlib / an input size, escaped
names; and the page clicked in a real headless Chromium (selenium with Debian's chromedriver):
the box it shows for a layer's feature is `region(*feature, clip=True)`, the URL hash shares
the selection, and the graph, the plot and the feature map select too."""

from __future__ import annotations

import base64
import json
import re
import shutil
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest

import foveal
from foveal import Graph, add, conv, conv_transpose, dense, elementwise, pad, upsample
from foveal.errors import FovealError, InvalidParameterError, UnknownNodeError
from foveal.html_report import write_report

CHAIN = ["x", "c0", "c1", "c2", "c3", "c4", "fc"]
# At 8x8 the min RFs are 1, 3, 5, 7, 9, 11, inf and every feature map is 8x8 (padding 1), so no
# 3x3 kernel covers a whole map (rule A never fires). c3 (9 > 8) is critical: its input c2 sees
# 7 < 8. c4 (11 > 8) and fc (inf) are unproductive: their inputs already see >= 8 (rule B).
BY_HAND = {"x": "productive", "c0": "productive", "c1": "productive", "c2": "productive",
           "c3": "critical", "c4": "unproductive", "fc": "unproductive"}
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def chain(input_shape=(8, 8), relu: bool = False) -> foveal.Analysis:
    g = Graph(2, name="chain")
    x = g.input("x")
    for i in range(5):
        x = g.add(f"c{i}", conv(3, padding=1), x, label="Conv2d")
        if relu and i == 1:
            x = g.add("relu", elementwise("relu"), x, label="ReLU")
    g.add("fc", dense(), x, label="Linear")
    return foveal.receptive_field(g, input_shape)


def signal() -> foveal.Analysis:
    """1-D: a strided conv, a transposed conv back up (period 2), a skip and a nearest upsampling."""
    g = Graph(1, name="signal")
    x = g.input("x")
    up = g.add("up", conv_transpose(4, stride=2, padding=1), g.add("down", conv(3, stride=2, padding=1), x))
    g.add("near", upsample(2), g.add("sum", add(), [g.add("relu", elementwise("relu"), up), x]))
    return foveal.receptive_field(g, 16)


def volume() -> foveal.Analysis:
    """3-D: the page draws the last two axes and computes the box on all three."""
    g = Graph(3, name="volume")
    g.add("c", conv(3, stride=2, padding=1), g.input("x"))
    return foveal.receptive_field(g, (4, 5, 6))


def holes() -> foveal.Analysis:
    """A zero-padded branch that reads nothing near the border, added to a wide conv: the sum has
    two clipped components (foveal.clipped), and a dilated conv after it."""
    g = Graph(2, name="holes")
    x = g.input("x")
    s = g.add("sum", add(), [g.add("pad", pad(3), x), g.add("wide", conv(7, padding=6), x)])
    g.add("dil", conv(3, dilation=4), s)
    return foveal.receptive_field(g, (8, 8))


class Page(HTMLParser):
    """Elements by id, every attribute, the layer rows as {column key: cell}, the data JSON."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[dict] = []
        self.data_text = ""
        self._cell: dict | None = None
        self._in_data = False
        self.feed(text)
        self.data = json.loads(self.data_text) if self.data_text else None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.elements.append((tag, a))
        if "id" in a:
            self.by_id[str(a["id"])] = a
        self._in_data = a.get("id") == "foveal-data"
        if tag == "tr" and "data-layer" in a:
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
        self._in_data = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data
        if self._in_data:
            self.data_text += data


def report(tmp_path: Path, analysis=None, **options) -> tuple[str, Page]:
    path = write_report(analysis or chain(), tmp_path / "report.html", **options)
    text = path.read_text()
    return text, Page(text)


def box_text(region) -> str:
    """`#rf-view`'s data-box for a clipped region: first,last per axis; '' when it reads nothing."""
    return "" if region[0] is None else ",".join(f"{first},{last}" for first, last in region)


# -- the page as written ------------------------------------------------------------------------

def test_summary_first_then_rows_with_compact_verdicts(tmp_path) -> None:
    a = chain(relu=True)
    text, page = report(tmp_path, a)
    order = [text.index(f'id="{i}"') for i in ("summary", "explorer", "rf-view", "plots", "graph")]
    assert order == sorted(order)
    names = [row["attrs"]["data-layer"] for row in page.rows]
    assert names == ["x", "c0", "c1", "relu", "c2", "c3", "c4", "fc"]
    verdicts = a.verdicts()
    for row in page.rows:
        name, cell = row["attrs"]["data-layer"], row["cells"]["verdict"]
        kind = BY_HAND.get(name, "productive")
        assert verdicts[name].kind == kind == row["attrs"]["data-verdict"]
        assert f"background:{verdicts[name].color}" in text.split(f'data-layer="{name}"')[1].split("</tr>")[0]
        assert cell["text"] == ("" if kind == "productive" else kind)  # productive: a swatch only
        assert cell["attrs"]["title"] == verdicts[name].reason
    assert "fits in the input" not in "".join(c["text"] for row in page.rows for c in row["cells"].values())
    folded = [row["attrs"]["data-layer"] for row in page.rows if row["attrs"].get("class") == "same"]
    assert folded == ["relu"]  # changes nothing: folded behind the #show-all toggle
    cells = {row["attrs"]["data-layer"]: row["cells"] for row in page.rows}
    assert cells["c3"]["rf"]["text"] == "9x9" and cells["c3"]["rf"]["attrs"]["data-value"] == "9 9"
    assert cells["c3"]["type"]["text"] == "Conv2d" and cells["c3"]["feature_map"]["text"] == "8x8"
    assert cells["fc"]["rf"]["text"] == "global"
    assert cells["fc"]["rf"]["attrs"]["data-value"] == "Infinity Infinity"
    assert cells["fc"]["stride"]["attrs"]["data-value"] == ""  # unavailable: sorts last
    assert "output" in text.split('data-layer="fc"')[1].split("</tr>")[0]  # the output's badge
    counts = dict(zip(page.values("data-kind", "li"), page.values("data-count", "li")))
    assert counts == {"unproductive": "2", "critical": "1", "productive": "5"}
    assert page.values("data-axis", "tr") == ["H", "W"]
    assert re.search(r'<dd data-field="output"><a href="#layer=fc"[^>]*>fc</a>: global', text)


def test_range_names_the_layer_that_sets_it(tmp_path) -> None:
    text, _ = report(tmp_path)
    low, high = chain().input_resolution_range()
    assert (low, high) == ((11, 11), (11, 11))  # c4's RF 11: the largest finite one
    assert re.search(r'<tr data-axis="H"><td>H</td><td class="num">11</td><td>c4</td>', text)


def test_embedded_regions_are_linear_and_shared() -> None:
    """Per layer, components of per-axis interval tables (one per position, not per feature);
    a ReLU's component is its conv's."""
    from foveal.html_report import report_html

    a = chain(relu=True)
    page = Page(report_html(a))
    layers = {layer["name"]: layer for layer in page.data["layers"]}
    assert layers["relu"]["regions"] == layers["c1"]["regions"]
    assert len(page.data["components"]) == 7  # x, c0..c4, fc: the ReLU adds none
    (c1,) = layers["c1"]["regions"]
    rows, cols = page.data["components"][c1]
    assert rows == cols == [0, 2, 0, 3, 0, 4, 1, 5, 2, 6, 3, 7, 4, 7, 5, 7]  # o reads o-2..o+2, clipped
    assert layers["c1"]["shape"] == [8, 8] and page.data["initial"] == "c4"  # the last local layer


@needs_dot
def test_offline_everything_inline(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    text, page = report(tmp_path, regions=[("c2", (0, 0)), ("c2", (4, 4)), ("c4", (7, 7))])
    for external in ("http://", "https://", 'src="//', "@import", "url(", "fetch(", "XMLHttpRequest"):
        assert external not in text
    links = [v for key in ("src", "href", "xlink:href") for v in page.values(key)]
    assert all(v and v.startswith(("data:", "#")) for v in links), links
    assert "link" not in page.tags and "iframe" not in page.tags
    assert page.by_id["graph"]["data-rendered"] == "svg" and "rf-plot" in page.by_id
    assert page.values("data-plot") == ["regions", "regions"]  # one regions plot per node
    sources = page.values("src", "img")
    assert all(base64.b64decode(str(s).split(",", 1)[1]).startswith(b"\x89PNG") for s in sources)


def test_without_input_shape_no_verdicts_and_no_regions(tmp_path) -> None:
    _, page = report(tmp_path, chain(None))
    assert "verdicts-note" in page.by_id and "verdict-counts" not in page.by_id
    assert "no-size" in page.by_id and "input-view" not in page.by_id
    assert [row["cells"]["verdict"]["text"] for row in page.rows] == [""] * len(CHAIN)
    assert not any("data-verdict" in row["attrs"] for row in page.rows)
    assert [row["cells"]["rf"]["text"] for row in page.rows][:3] == ["1x1", "3x3", "5x5"]
    assert page.data["input"] is None and page.data["components"] == []


def test_without_dot_and_matplotlib_notes_replace_graph_and_region_plots(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    text, page = report(tmp_path, regions=[("c2", (0, 0))])
    assert page.by_id["graph"]["data-rendered"] == "dot" and "details" in page.tags
    assert "digraph &quot;chain at 8x8&quot;" in text
    assert "no-matplotlib" in page.by_id and "pip install foveal[plot]" in text
    assert "rf-plot" in page.by_id and len(page.rows) == len(CHAIN)  # the SVG plot needs neither


def test_rf_plot_keeps_axes_and_min_max_apart(tmp_path) -> None:
    _, page = report(tmp_path)
    series = list(zip(page.values("data-axis", "g"), page.values("data-quantity", "g")))
    assert series == [("H", "max"), ("H", "min"), ("W", "max"), ("W", "min")]
    assert page.values("data-layer", "g") == CHAIN


HOSTILE = '</script><script>alert(1)</script> & "q" #a=b'


def test_text_is_escaped(tmp_path) -> None:
    g = Graph(2, name="a<b>&c")
    x = g.add(HOSTILE, conv(3), g.input("x"), label='<img src=x onerror=alert(1)>')
    a = foveal.receptive_field(g, (8, 8))
    text, page = report(tmp_path, a, title="<script>alert(1)</script>")
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert page.values("onerror") == [] and page.tags.count("script") == 2
    assert page.rows[1]["attrs"]["data-layer"] == x
    assert page.rows[1]["cells"]["type"]["text"] == g.nodes[x].label
    assert page.data["layers"][1]["name"] == x  # the JSON survives its own </script>


def test_errors_leave_no_file(tmp_path) -> None:
    with pytest.raises(UnknownNodeError, match="did you mean 'c4'"):
        write_report(chain(), tmp_path / "r.html", regions=[("c44", (0, 0))])
    with pytest.raises(FovealError, match="does not exist"):
        write_report(chain(), tmp_path / "missing" / "r.html")
    (tmp_path / "notes.txt").write_text("not a picture")
    with pytest.raises(FovealError, match="not a PNG, JPEG, GIF, BMP or WebP image"):
        write_report(chain(), tmp_path / "r.html", image=tmp_path / "notes.txt")
    with pytest.raises(FovealError, match="no such file"):
        write_report(chain(), tmp_path / "r.html", image=tmp_path / "missing.png")
    with pytest.raises(FovealError, match="needs the input size"):
        write_report(chain(None), tmp_path / "r.html", image=b"\x89PNG\r\n\x1a\n")
    with pytest.raises(InvalidParameterError, match="2-D analyses"):
        write_report(signal(), tmp_path / "r.html", image=b"\x89PNG\r\n\x1a\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_an_array_image_is_embedded_as_png(tmp_path) -> None:
    np = pytest.importorskip("numpy")
    pixels = np.zeros((8, 8, 3))
    pixels[2, 5] = (1.0, 0.5, 0.0)
    _, page = report(tmp_path, image=pixels)
    uri = str(page.by_id["input-image"]["href"])
    assert uri.startswith("data:image/png;base64,")
    png = base64.b64decode(uri.split(",", 1)[1])
    assert png[12:16] == b"IHDR" and png[16:24] == (8).to_bytes(4, "big") * 2
    idat = png.index(b"IDAT")
    raw = zlib.decompress(png[idat + 4:idat + 4 + int.from_bytes(png[idat - 4:idat], "big")])
    assert len(raw) == 8 * (1 + 8 * 3) and raw[2 * 25 + 1 + 5 * 3:2 * 25 + 1 + 6 * 3] == bytes((255, 128, 0))
    _, page = report(tmp_path, image=png)  # the same bytes given as a file's content
    assert page.by_id["input-image"]["href"] == uri


# -- a real browser -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for the module, driven by Debian's chromedriver (never downloaded)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    for program in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not Path(program).is_file():
            pytest.skip(f"{program} is not installed (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     "--window-size=1400,1000", f"--user-data-dir={tmp_path_factory.mktemp('profile')}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


class Opened:
    """A report opened in the browser."""

    def __init__(self, driver, path: Path, hash: str = "") -> None:
        self.driver = driver
        driver.get("about:blank")  # a hash-only change of the same URL would not reload it
        driver.get(path.as_uri() + hash)
        assert driver.execute_script("return document.body.dataset.ready") == "1"
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        self.view = driver.find_element("id", "rf-view")

    def click(self, selector: str) -> None:
        """Click in the middle of the element, scrolled to the middle of its pane first as a
        reader would (chromedriver would scroll it under the list's sticky header)."""
        element = self.driver.find_element("css selector", selector)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def state(self) -> tuple[str | None, str | None, str | None]:
        return tuple(self.view.get_attribute(f"data-{key}") for key in ("selected-layer", "feature", "box"))

    @property
    def hash(self) -> str:
        return self.driver.execute_script("return window.location.hash")

    def boxes(self, layer: str, features: list[tuple[int, ...]]) -> list[str]:
        """data-box for each feature of `layer`, selected by its row, then the feature index
        inputs. (Not through the hash: Chrome ignores a page's URL changes past 200 in 10 s.)"""
        return self.driver.execute_script("""
            const [layer, features] = arguments, view = document.getElementById("rf-view");
            for (const row of document.querySelectorAll("#layers tbody tr")) {
              if (row.dataset.layer === layer) row.click();
            }
            if (view.dataset.selectedLayer !== layer) throw new Error("not selected: " + layer);
            const inputs = view.querySelectorAll("input[data-axis]"), out = [];
            for (const feature of features) {
              feature.forEach(function (v, a) {
                inputs[a].value = v;
                inputs[a].dispatchEvent(new Event("change"));
              });
              if (view.dataset.feature !== feature.join(",")) throw new Error("not selected: " + feature);
              out.push(view.dataset.box);
            }
            return out;""", layer, [list(f) for f in features])


def centre(result) -> tuple[int, ...]:
    return tuple(n // 2 for n in result.output_shape)


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory):
    a = foveal.receptive_field("resnet18", (224, 224))
    return a, write_report(a, tmp_path_factory.mktemp("resnet18") / "resnet18.html")


def test_clicking_layers_draws_their_clipped_region(browser, resnet18) -> None:
    a, path = resnet18
    page = Opened(browser, path)
    assert page.state() == ("layer4", "3,3", box_text(a["layer4"].region(3, 3, clip=True)))
    assert page.hash == ""  # opening selects the last spatial layer without writing the hash
    for layer in ("layer3.1.conv2", "conv1", "layer4.0.downsample.0", "maxpool", "layer4", "fc"):
        page.click(f'#layers tr[data-layer="{layer}"]')
        feature = centre(a[layer])
        region = a[layer].region(*feature, clip=True)
        assert page.state() == (layer, ",".join(map(str, feature)), box_text(region))
        assert page.hash == f"#layer={layer}"
        assert browser.find_element("css selector", f'#layers tr[data-layer="{layer}"]').get_attribute(
            "class") in ("selected", "same selected")
    # layer4's centre reads the whole input: its unclipped region reaches far into the padding
    assert a["layer4"].region(3, 3) == ((-121, 313), (-121, 313))
    assert a["layer4"].region(3, 3, clip=True) == ((0, 223), (0, 223))


def test_the_hash_opens_a_view(browser, resnet18) -> None:
    a, path = resnet18
    page = Opened(browser, path, "#layer=layer2.0.downsample.0")
    assert page.state() == ("layer2.0.downsample.0", "14,14", box_text(a["layer2.0.downsample.0"].region(
        14, 14, clip=True)))
    page = Opened(browser, path, "#layer=layer1.0.bn1&feature=0,55")  # a folded row, a corner feature
    assert page.state() == ("layer1.0.bn1", "0,55", box_text(a["layer1.0.bn1"].region(0, 55, clip=True)))
    assert browser.find_element("css selector", '#layers tr[data-layer="layer1.0.bn1"]').is_displayed()
    assert not browser.find_element("css selector", '#layers tr[data-layer="layer1.0.relu"]').is_displayed()
    page.click("#show-all")
    assert browser.find_element("css selector", '#layers tr[data-layer="layer1.0.relu"]').is_displayed()
    page = Opened(browser, path, "#layer=no-such-layer")
    assert page.state()[0] == "layer4"  # the default view, and a note
    assert "names no layer" in browser.find_element("id", "rf-note").text


def test_clicking_the_feature_map_picks_a_feature(browser, resnet18) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    a, path = resnet18
    page = Opened(browser, path, "#layer=layer4.0.conv1")
    fmap = browser.find_element("id", "feature-map")
    size = fmap.size
    for row, col in ((1, 5), (0, 0), (6, 6)):  # a 7x7 map: click each cell's middle
        x = (col + 0.5) * size["width"] / 7 - size["width"] / 2
        y = (row + 0.5) * size["height"] / 7 - size["height"] / 2
        ActionChains(browser).move_to_element_with_offset(fmap, round(x), round(y)).click().perform()
        region = a["layer4.0.conv1"].region(row, col, clip=True)
        assert page.state() == ("layer4.0.conv1", f"{row},{col}", box_text(region))
        assert page.hash == f"#layer=layer4.0.conv1&feature={row},{col}"
    assert a["layer4.0.conv1"].region(0, 0)[0][0] < 0  # (0, 0) was clipped by the border


def test_graph_and_plot_select_the_same_layer(browser, resnet18) -> None:
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    a, path = resnet18
    page = Opened(browser, path)
    browser.execute_script("""
        for (const g of document.querySelectorAll("#graph g.node")) {
          if (g.querySelector("title").textContent === "layer2.1.conv1") g.id = "target";
        }""")
    page.click("#target")
    assert page.state()[0] == "layer2.1.conv1" and page.hash == "#layer=layer2.1.conv1"
    assert "selected" in browser.find_element("css selector", '#rf-plot g.column[data-layer="layer2.1.conv1"]'
                                              ).get_attribute("class")
    page.click('#rf-plot g.column[data-layer="maxpool"]')
    assert page.state() == ("maxpool", "28,28", box_text(a["maxpool"].region(28, 28, clip=True)))
    assert "selected" not in browser.find_element("id", "target").get_attribute("class")
    page.click('#layers tr[data-layer="layer4"]')  # a module's name: its cluster in the graph
    clusters = browser.execute_script("""return Array.from(document.querySelectorAll("#graph g.selected"),
        g => g.querySelector("title").textContent);""")
    assert clusters == ["cluster_layer4"]


def positions(n: int, n_axes: int) -> list[int]:
    """Every index of a short axis; the borders and the middle of a long one."""
    if n <= (32 if n_axes == 1 else 8):
        return list(range(n))
    return sorted({0, 1, 2, 3, n // 2 - 1, n // 2, n - 4, n - 3, n - 2, n - 1})


def test_every_feature_of_small_graphs(browser, tmp_path) -> None:
    """The features of every layer (all of them on short axes, the borders and the middle of
    long ones), through the page's own computation, against foveal's: upsampling (period 2 and
    4), a skip, 3 axes, two clipped components, features that read nothing."""
    import itertools

    for a in (signal(), volume(), holes()):
        path = write_report(a, tmp_path / f"{a.graph.name}.html")
        page = Opened(browser, path)
        for layer in a.order:
            r = a[layer]
            features = list(itertools.product(*(positions(n, len(r.output_shape)) for n in r.output_shape)))
            assert page.boxes(layer, features) == [box_text(r.region(*f, clip=True)) for f in features], layer
    assert box_text(a["pad"].region(0, 5, clip=True)) == ""  # reads only padding


def test_hostile_names_round_trip_through_the_hash(browser, tmp_path) -> None:
    g = Graph(2, name="hostile")
    g.add(HOSTILE, conv(3, padding=1), g.input("x"))
    a = foveal.receptive_field(g, (8, 8))
    path = write_report(a, tmp_path / "hostile.html")
    page = Opened(browser, path)
    page.click("#layers tbody tr:nth-child(2)")
    expected = "#layer=" + quote(HOSTILE, safe="!'()*~")  # encodeURIComponent
    assert page.hash == expected and page.state() == (HOSTILE, "4,4", "3,5,3,5")
    page = Opened(browser, path, expected)
    assert page.state()[0] == HOSTILE
    assert browser.execute_script("return document.scripts.length") == 2  # no script injected


def test_the_box_is_painted_on_the_image(browser, tmp_path) -> None:
    np = pytest.importorskip("numpy")
    image_module = pytest.importorskip("PIL.Image")
    import io

    a = chain()
    path = write_report(a, tmp_path / "image.html", image=np.full((8, 8), 1.0))  # a white picture
    page = Opened(browser, path, "#layer=c0&feature=0,0")
    assert page.state()[2] == "0,1,0,1"
    shot = image_module.open(io.BytesIO(browser.find_element("id", "input-view").screenshot_as_png))
    pixels = np.asarray(shot.convert("RGB"), dtype=int).reshape(-1, 3)
    r, b = pixels[:, 0], pixels[:, 2]
    blue = int(((b > 150) & (r < 200) & (b - r > 40)).sum())
    white = int((pixels.min(axis=1) > 245).sum())
    assert blue > 0.03 * len(pixels) and white > 0.5 * len(pixels)  # 4 of 64 pixels boxed
