"""Plots: the drawn geometry is checked against receptive fields worked out by hand, and the
errors and file writing against what a user sees. Figures are never shown (no pyplot)."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib")
np = pytest.importorskip("numpy")

import foveal  # noqa: E402
from foveal import Graph, add, conv, dense, pad  # noqa: E402
from foveal.errors import FovealError, InvalidParameterError, UnknownNodeError  # noqa: E402
from foveal.plots import load_image, plot_regions, plot_rf_sizes, save  # noqa: E402


def chain(n_convs: int, shape=(16, 16), **conv_args):
    g = Graph(2)
    x = g.input("image")
    for i in range(n_convs):
        x = g.add(f"c{i + 1}", conv(3, **conv_args), x)
    return foveal.receptive_field(g, input_shape=shape)


def boxes(ax) -> dict[str, tuple[float, float, float, float]]:
    """Feature label -> (x, y, width, height) of each drawn box."""
    return {p.get_label(): (p.get_x(), p.get_y(), p.get_width(), p.get_height())
            for p in ax.patches}


# -- RF sizes along depth -------------------------------------------------------------------------

def test_rf_sizes_max_line_is_the_chain_rf_and_input_lines_sit_at_the_input_size() -> None:
    """Three 3x3 convs, stride 1: RF 1 (the input), 3, 5, 7 on both axes."""
    fig = plot_rf_sizes(chain(3, shape=(32, 24), padding=1))
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    for axis in "HW":
        assert list(lines[f"{axis} max"].get_ydata()) == [1, 3, 5, 7]
        assert list(lines[f"{axis} min"].get_ydata()) == [1, 3, 5, 7]
        assert list(lines[f"{axis} max"].get_xdata()) == [0, 1, 2, 3]
    inputs = {label: set(line.get_ydata()) for label, line in lines.items() if label.startswith("input")}
    assert inputs == {"input H = 32": {32}, "input W = 24": {24}}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["image", "c1", "c2", "c3"]
    assert ax.get_yscale() == "log"


def test_rf_sizes_min_and_max_over_paths_and_a_gap_at_a_global_layer() -> None:
    """image + conv3(image): the paths see 1 and 3 pixels; the dense layer after it sees all."""
    g = Graph(2)
    x = g.input("image")
    s = g.add("sum", add(), [g.add("c1", conv(3), x), x])
    g.add("fc", dense(), s)
    ax = plot_rf_sizes(foveal.receptive_field(g), log=False).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    low, high = lines["W min"].get_ydata(), lines["W max"].get_ydata()
    assert list(low[:3]) == [1, 3, 1] and list(high[:3]) == [1, 3, 3]
    assert math.isnan(low[3]) and math.isnan(high[3])
    assert list(lines["RF infinite (global)"].get_xdata()) == [3]
    assert not any(label.startswith("input") for label in lines)  # no input shape, no line


def test_rf_sizes_colours_unproductive_layers_red() -> None:
    """4x4 input, conv 3x3 valid -> a 2x2 map; the next 3x3 conv reads a map no larger than its
    kernel, so it acts as a fully connected layer: unproductive (rfa_toolbox's rule)."""
    g = Graph(2)
    g.add("c2", conv(3, padding=1), g.add("c1", conv(3), g.input("image")))
    ax = plot_rf_sizes(foveal.receptive_field(g, input_shape=(4, 4))).axes[0]
    red = [p for p in ax.patches if p.get_facecolor()[:3] == matplotlib.colors.to_rgb("red")]
    assert len(red) == 1
    assert red[0].get_x() == pytest.approx(1.5) and red[0].get_width() == pytest.approx(1)
    assert len(ax.patches) == 1  # the productive layers get no background


def test_rf_sizes_keeps_equal_axes_and_min_max_apart() -> None:
    """On a square input H and W coincide: H is drawn wide, pale and hollow under a thin W, and
    min and max have their own markers and line styles."""
    ax = plot_rf_sizes(chain(2, padding=1)).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert {q: lines[f"H {q}"].get_marker() for q in ("min", "max")} == {"min": "v", "max": "^"}
    assert {q: lines[f"W {q}"].get_linestyle() for q in ("min", "max")} == {"min": "--", "max": "-"}
    assert lines["H max"].get_linewidth() > 2 * lines["W max"].get_linewidth()
    assert lines["H max"].get_markerfacecolor() == "none" and lines["W max"].get_markerfacecolor() != "none"
    assert list(lines).index("H max") < list(lines).index("W max")  # drawn first: under W
    assert lines["H max"].get_color() != lines["W max"].get_color()


def test_rf_sizes_svg_is_the_same_plot_without_matplotlib(monkeypatch) -> None:
    """The report's hand-written SVG: one clickable column per layer, a series per axis and
    quantity at the same sizes, names escaped."""
    from foveal.plots import rf_sizes_svg

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    g = Graph(2)
    x = g.input("image")
    g.add("fc", dense(), g.add('<c&"1">', conv(3), x))
    a = foveal.receptive_field(g, input_shape=(8, 8))
    svg = rf_sizes_svg(a, a.order, a.verdicts())
    assert svg.count('<g class="column"') == 3 and 'data-layer="&lt;c&amp;&quot;1&quot;&gt;"' in svg
    assert '<c&"1">' not in svg
    assert re.findall(r'data-quantity="(\w+)"', svg) == ["max", "min"] * 2
    assert svg.count('class="global"') == 1 and svg.count('class="input-size"') == 2
    assert svg.count('class="verdict"') == 1  # fc: unproductive


def test_rf_sizes_picks_nodes_keeps_depth_and_names_only_few_ticks() -> None:
    a = chain(45, shape=(128, 128), padding=1)
    ax = plot_rf_sizes(a, nodes=["c2", "c5"]).axes[0]
    assert list(ax.get_lines()[1].get_xdata()) == [2, 5]
    ax = plot_rf_sizes(a).axes[0]
    assert not {t.get_text() for t in ax.get_xticklabels()} & set(a.order)  # 46 nodes: no names
    with pytest.raises(UnknownNodeError, match="did you mean"):
        plot_rf_sizes(a, nodes=["c_2"])


def test_rf_sizes_draws_into_a_given_axes() -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert plot_rf_sizes(chain(1), ax=ax, title="t") is fig
    assert ax.get_title() == "t"


# -- regions on the image -------------------------------------------------------------------------

def test_regions_are_the_clipped_input_boxes_in_image_coordinates() -> None:
    """Two 3x3 convs, padding 1: feature (r, c) reads rows r-2..r+2 and cols c-2..c+2, clipped
    to 0..15. Pixel i spans i-0.5..i+0.5, and a box is (x=col, y=row)."""
    ax = plot_regions(chain(2, padding=1), "c2", [(0, 0), (8, 8), (0, 8)]).axes[0]
    assert boxes(ax) == {"(0, 0)": (-0.5, -0.5, 3, 3),     # rows 0..2, cols 0..2
                         "(8, 8)": (5.5, 5.5, 5, 5),       # rows 6..10, cols 6..10
                         "(0, 8)": (5.5, -0.5, 5, 3)}      # rows 0..2, cols 6..10
    centres = sorted((tuple(line.get_xdata()), tuple(line.get_ydata())) for line in ax.get_lines())
    assert centres == [((0,), (0,)), ((8,), (0,)), ((8,), (8,))]
    assert sorted(t.get_text() for t in ax.texts) == ["(0, 0)", "(0, 8)", "(8, 8)"]


def test_regions_on_a_non_square_kernel_keep_rows_and_columns_apart() -> None:
    """Kernel 3 rows x 5 cols, padding (1, 2) on a 10x20 image: feature (4, 9) reads rows 3..5,
    cols 7..11."""
    g = Graph(2)
    g.add("c", conv((3, 5), padding=(1, 2)), g.input("image"))
    a = foveal.receptive_field(g, input_shape=(10, 20))
    ax = plot_regions(a, "c", (4, 9), np.zeros((10, 20, 3))).axes[0]
    assert boxes(ax) == {"(4, 9)": (6.5, 2.5, 5, 3)}


def test_centre_outside_the_image_is_not_marked_and_unclipped_boxes_reach_into_padding() -> None:
    """Pad 2 then a valid 3x3 conv on 8x8: feature (r, c) reads rows r-2..r, cols c-2..c, of
    which only 0..7 are real, and is centred at (r-1, c-1)."""
    g = Graph(2)
    g.add("c", conv(3), g.add("p", pad(2), g.input("image")))
    a = foveal.receptive_field(g, input_shape=(8, 8))
    ax = plot_regions(a, "c", [(0, 0), (0, 9), (0, 4), (4, 0)]).axes[0]
    assert boxes(ax) == {"(0, 0)": (-0.5, -0.5, 1, 1), "(0, 9)": (6.5, -0.5, 1, 1),
                         "(0, 4)": (1.5, -0.5, 3, 1), "(4, 0)": (-0.5, 1.5, 1, 3)}
    assert ax.get_lines() == []  # the centres (-1, -1), (-1, 8), (-1, 3), (3, -1) are outside
    ax = plot_regions(a, "c", [(0, 0)], clip=False).axes[0]
    assert boxes(ax) == {"(0, 0)": (-2.5, -2.5, 3, 3)}


def test_regions_read_an_image_file(tmp_path) -> None:
    path = tmp_path / "img.png"
    matplotlib.image.imsave(path, np.linspace(0, 1, 16 * 16).reshape(16, 16))
    assert load_image(path).shape[:2] == (16, 16)
    ax = plot_regions(chain(1, padding=1), "c1", [(5, 5)], path).axes[0]
    assert boxes(ax) == {"(5, 5)": (3.5, 3.5, 3, 3)}


def test_region_errors() -> None:
    a = chain(2, padding=1)
    with pytest.raises(UnknownNodeError, match="did you mean 'c2'"):
        plot_regions(a, "c22", [(0, 0)])
    with pytest.raises(InvalidParameterError, match="outside node 'c2'"):
        plot_regions(a, "c2", [(16, 0)])
    with pytest.raises(FovealError, match="image is 10x12 .* input is 16x16"):
        plot_regions(a, "c2", [(0, 0)], np.zeros((10, 12)))
    with pytest.raises(FovealError, match="input_shape"):
        plot_regions(foveal.receptive_field(a.graph), "c2", [(0, 0)])
    g = Graph(3)
    g.add("c", conv(3), g.input("volume"))
    with pytest.raises(InvalidParameterError, match="2-D analyses .* 3 axes"):
        plot_regions(foveal.receptive_field(g, input_shape=(8, 8, 8)), "c", [(0, 0, 0)])


# -- files ----------------------------------------------------------------------------------------

def test_load_image_errors_are_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a picture\n")
    with pytest.raises(FovealError) as err:
        load_image("notes.txt")
    message = str(err.value)
    assert message.startswith("'notes.txt' is not an image file (") and "\n" not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__
    with pytest.raises(FovealError, match="'missing.png' does not exist"):
        load_image("missing.png")
    with pytest.raises(FovealError, match="does not exist"):
        plot_regions(chain(1), "c1", [(0, 0)], "missing.png")


def test_save_writes_whole_files_or_none(tmp_path) -> None:
    fig = plot_rf_sizes(chain(2, padding=1))
    assert save(fig, tmp_path / "rf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert save(fig, tmp_path / "rf.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(FovealError, match=r"\.png, \.svg, \.pdf"):
        save(fig, tmp_path / "rf.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rf.png", "rf.svg"]


def test_save_failing_midway_keeps_the_old_file(tmp_path, monkeypatch) -> None:
    fig = plot_rf_sizes(chain(1))
    (tmp_path / "rf.png").write_bytes(b"old")

    def broken(target, **options):  # writes half a PNG wherever it is told to, then fails
        if hasattr(target, "write"):
            target.write(b"\x89PNG partial")
        else:
            Path(target).write_bytes(b"\x89PNG partial")
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError):
        save(fig, tmp_path / "rf.png")
    assert [(p.name, p.read_bytes()) for p in tmp_path.iterdir()] == [("rf.png", b"old")]


def test_missing_matplotlib_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(FovealError, match=r"pip install foveal\[plot\]"):
        plot_rf_sizes(chain(1))


def test_import_and_plot_need_no_pyplot() -> None:
    """foveal never imports matplotlib on import, and plotting picks no backend (no pyplot)."""
    code = ("import sys, foveal, foveal.plots\n"
            "assert 'matplotlib' not in sys.modules\n"
            "g = foveal.Graph(2); g.add('c', foveal.conv(3), g.input('x'))\n"
            "foveal.plots.plot_rf_sizes(foveal.receptive_field(g, input_shape=(8, 8)))\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
