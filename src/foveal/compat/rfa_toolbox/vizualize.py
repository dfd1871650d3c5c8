"""visualize_architecture: rfa_toolbox's coloured GraphViz drawing (the module name keeps its
spelling so that `from rfa_toolbox.vizualize import ...` lines port unchanged).

The result offers graphviz.Digraph's rendering calls (source, render, view, pipe, save) on DOT
text foveal writes itself, so the `graphviz` Python package is not needed; rendering needs
Graphviz's `dot` program. Node ids are the layer names, stable from run to run.
"""

from __future__ import annotations

import operator
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from ...drawing import Box, atomic_write, dot_source, pipe
from .graphs import EnrichedNetworkNode, _tuple, every_axis, is_scalar_inf, resolution, some_axis


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_text(v) for v in value) + ")"
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    return str(value)


class Drawing:
    """DOT text with graphviz.Digraph's rendering methods."""

    def __init__(self, source: str, name: str, filename: str | None = None, format: str = "pdf") -> None:
        self.source = source
        self.name = name
        self.filename = filename or f"{name}.gv"
        self.format = format
        self.directory = ""

    def __str__(self) -> str:
        return self.source

    def pipe(self, format: str | None = None) -> bytes:
        return pipe(self.source, format or self.format)

    def _repr_svg_(self) -> str:
        return self.pipe("svg").decode()

    def save(self, filename: str | None = None, directory: str | None = None) -> str:
        path = Path(directory or self.directory or ".") / (filename or self.filename)
        atomic_write(path, self.source.encode())
        return str(path)

    def render(self, filename: str | None = None, directory: str | None = None, view: bool = False,
               cleanup: bool = False, format: str | None = None, **_: Any) -> str:
        """Write the DOT file and `<file>.<format>` next to it; return the rendered path."""
        source_path = self.save(filename, directory)
        rendered = Path(f"{source_path}.{format or self.format}")
        atomic_write(rendered, self.pipe(format))
        if cleanup:
            os.unlink(source_path)
        if view:
            _open(rendered)
        return str(rendered)

    def view(self, filename: str | None = None, directory: str | None = None, cleanup: bool = False) -> str:
        return self.render(filename, directory, view=True, cleanup=cleanup)


def _open(path: Path) -> None:
    """Open with the desktop's viewer; on a machine without one, say where the file is."""
    if sys.platform == "darwin":
        subprocess.Popen(["open", str(path)])
    elif sys.platform == "win32":
        os.startfile(str(path))  # type: ignore[attr-defined]
    elif shutil.which("xdg-open") and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        subprocess.Popen(["xdg-open", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        print(f"foveal: wrote {path} (no display to open it on)", file=sys.stderr)


def node_color(node: EnrichedNetworkNode, input_res: Any, color_critical: bool, color_border: bool,
               filter_kernel_size_1: bool) -> str:
    """rfa_toolbox's colours, first match wins: red border, orange critical on every axis,
    yellow critical on some axes, else white."""
    res = resolution(input_res)
    if color_border and node.is_border(res, filter_kernel_size_1=filter_kernel_size_1):
        return "red"
    if color_critical and every_axis(operator.gt, node.receptive_field_min, res):
        return "orange"
    if color_critical and some_axis(operator.gt, node.receptive_field_min, res):
        return "yellow"
    return "white"


def _label(node: EnrichedNetworkNode, input_res: Any, include_rf_info: bool,
           include_fm_info: bool) -> list[str]:
    lines = [node.layer_info.name]
    if node.layer_info.filters is not None:
        lines.append(f"{node.layer_info.filters} filters")
    elif node.layer_info.units is not None:
        lines.append(f"{node.layer_info.units} units")
    if include_rf_info:
        lines.append(f"r(min)={_text(node.receptive_field_min)}, r(max)={_text(node.receptive_field_max)}")
    if include_fm_info and not is_scalar_inf(node.kernel_size):
        size = node.compute_feature_map_size(_tuple(input_res))
        sizes = tuple(max(1, v) for v in size) if isinstance(size, tuple) else (max(1, size),) * 2
        lines.append("Feature Map Res.: " + " x ".join(_text(v) for v in sizes))
    return lines


def visualize_architecture(output_node: EnrichedNetworkNode, model_name: str, input_res: Any = 224,
                           color_critical: bool = True, color_border: bool = True,
                           include_rf_info: bool = True, filter_kernel_size_1: bool = False,
                           include_fm_info: bool = True) -> Drawing:
    """Every layer as a box coloured by its verdict at input_res, edges from its predecessors."""
    ids: dict[int, str] = {}
    taken: set[str] = set()
    boxes = []
    for node in output_node.all_layers:
        ident, n = node.name, 2
        while ident in taken:
            ident, n = f"{node.name}#{n}", n + 1
        taken.add(ident)
        ids[id(node)] = ident
        cluster = tuple(node.name.split(".")[:-1]) if node._captured is not None else ()
        boxes.append(Box(ident, [ident, *_label(node, input_res, include_rf_info, include_fm_info)],
                         node_color(node, input_res, color_critical, color_border, filter_kernel_size_1),
                         [ids[id(p)] for p in node.predecessors if id(p) in ids], cluster))
    return Drawing(dot_source(boxes, model_name), model_name)
