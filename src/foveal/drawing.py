"""GraphViz drawings of an analysis, coloured by verdict.

The DOT text is built here in pure Python, so it needs nothing installed; SVG, PNG and PDF come
from Graphviz's `dot` program. Node ids are the node names, so drawings of the same model are
identical from run to run. Big networks stay readable: layers are grouped by module path
(`layer3.5.conv1` belongs to `layer3.5`), and when there are too many boxes each repeated block is
drawn as one box that sums up its layers' verdicts.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import ops as O
from .errors import FovealError
from .productivity import COLORS, fmt, is_alias

if TYPE_CHECKING:
    from .analysis import Analysis
    from .productivity import Verdicts

FORMATS = ("svg", "png", "pdf", "dot", "gv")
SEVERITY = ("unproductive", "critical", "partially critical", "productive", "unknown", "unrelated")
MAX_BOXES = 90
INSTALL_DOT = ("the Graphviz program 'dot' is not installed: install it (Debian/Ubuntu: apt-get "
               "install graphviz; macOS: brew install graphviz; conda: conda install graphviz), or "
               "write the DOT text with a .dot path")


@dataclass
class Box:
    """One drawn node: a layer, or a collapsed block of layers."""

    id: str
    lines: list[str]
    color: str
    sources: list[str] = field(default_factory=list)
    cluster: tuple[str, ...] = ()
    """Nested cluster names, outermost first."""
    dashed: bool = False


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot_source(boxes: Iterable[Box], title: str = "graph") -> str:
    """DOT text of the boxes, clusters nested by their path."""
    boxes = list(boxes)
    tree: dict = {}
    for box in boxes:
        level = tree
        for name in box.cluster:
            level = level.setdefault(name, {})
        level.setdefault(None, []).append(box)
    out = [f"digraph {_quote(title)} {{", '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, '
           f'label={_quote(title)}, labelloc=t];',
           '  node [shape=rectangle, style=filled, fontname="Helvetica", fontsize=10];',
           '  edge [color="#555555", arrowsize=0.6];']

    def emit(level: dict, path: tuple[str, ...], indent: str) -> None:
        for box in level.get(None, []):
            style = ', style="filled,dashed"' if box.dashed else ""
            out.append(f"{indent}{_quote(box.id)} [label={_quote(chr(10).join(box.lines))}, "
                       f"fillcolor={_quote(box.color)}{style}];")
        for name, sub in level.items():
            if name is None:
                continue
            full = ".".join((*path, name))
            out.append(f"{indent}subgraph {_quote('cluster_' + full)} {{")
            out.append(f'{indent}  label={_quote(full)}; style="rounded"; color="#999999";')
            emit(sub, (*path, name), indent + "  ")
            out.append(f"{indent}}}")

    emit(tree, (), "  ")
    for box in boxes:
        out.extend(f"  {_quote(src)} -> {_quote(box.id)};" for src in box.sources)
    out.append("}")
    return "\n".join(out) + "\n"


def dot_available() -> bool:
    return shutil.which("dot") is not None


def render(source: str, path: str | os.PathLike, format: str | None = None) -> Path:
    """Write `source` to `path` as DOT text or through `dot`; the file appears whole or not at all."""
    path = Path(path)
    atomic_write(path, rendered(source, path, format))
    return path


def rendered(source: str, path: str | os.PathLike, format: str | None = None) -> bytes:
    """`source` as the bytes of the format named by `format` or by the suffix of `path`."""
    fmt_name = (format or Path(path).suffix.lstrip(".")).lower()
    if fmt_name not in FORMATS:
        raise FovealError(f"cannot draw to {str(path)!r}: the format is taken from the suffix, one of "
                          f".{', .'.join(FORMATS)}")
    return source.encode() if fmt_name in ("dot", "gv") else pipe(source, fmt_name)


def pipe(source: str, format: str) -> bytes:
    """The drawing as bytes in `format` (svg, png, pdf), made by Graphviz's dot."""
    exe = shutil.which("dot")
    if exe is None:
        raise FovealError(INSTALL_DOT)
    try:
        done = subprocess.run([exe, f"-T{format}"], input=source.encode(), capture_output=True,
                              timeout=300, check=False)
    except subprocess.TimeoutExpired:
        raise FovealError("Graphviz's dot took more than 5 minutes; draw fewer boxes "
                          "(collapse=True) or write the .dot text") from None
    if done.returncode != 0:
        raise FovealError(f"Graphviz's dot failed: {done.stderr.decode(errors='replace').strip()[:500]}")
    return done.stdout


def atomic_write(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, so no partial file is ever left."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FovealError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# -- boxes of an analysis ----------------------------------------------------------------------

def layer_type(analysis: Analysis, name: str) -> str:
    """'Conv2d 3x3 / 2' style: the framework's class (or the op kind), kernel and stride."""
    node = analysis.graph.nodes[name]
    kind = node.label or str(getattr(node.op, "kind", getattr(node.op, "name", node.op.op)))
    window = kernel_stride(node.op)
    return f"{kind} {window}" if window else kind


def kernel_stride(op: O.Op) -> str:
    """'3x3 / 2x2' (kernel / stride) of a window op, with its dilation when not 1; '' otherwise."""
    if not isinstance(op, (O.Window, O.TransposedWindow)):
        return ""
    text = f"{fmt(op.kernel)} / {fmt(op.stride)}"
    return text + (f" dil {fmt(op.dilation)}" if any(d != 1 for d in op.dilation) else "")


def _rf_line(lo: tuple, hi: tuple) -> str:
    if all(v == math.inf for v in lo):
        return "RF inf (global)"
    return f"RF {fmt(lo)}" if lo == hi else f"RF min {fmt(lo)}, max {fmt(hi)}"


def analysis_boxes(analysis: Analysis, verdicts: Verdicts | None = None, *,
                   collapse: bool | int | None = None, include_rf_info: bool = True,
                   include_fm_info: bool = True, max_boxes: int = MAX_BOXES) -> list[Box]:
    """One box per connected layer, or per block of layers when collapsed.

    collapse: None/True picks the deepest module level that gives at most `max_boxes` boxes
    (no collapsing if the layers fit); False never collapses; an int collapses names to that many
    dot-separated parts.
    """
    names = [n for n in analysis.order if analysis[n].connected and not is_alias(analysis.graph.nodes[n].op)]
    keep = set(names)
    depth = _depth(analysis, names, collapse, max_boxes)
    group = (lambda n: n) if depth is None else (lambda n: ".".join(n.split(".")[:depth]))
    members: dict[str, list[str]] = {}
    for n in names:
        members.setdefault(group(n), []).append(n)
    boxes = []
    for gid, layers in members.items():
        sources = dict.fromkeys(group(s) for n in layers for s in analysis.graph.nodes[n].sources
                                if s in keep and group(s) != gid)
        last = analysis[layers[-1]]
        kinds = [verdicts[n].kind for n in layers] if verdicts is not None else []
        if len(layers) == 1 and layers[0] == gid:
            lines = [gid, layer_type(analysis, gid)]
            color = verdicts[gid].color if verdicts is not None else "white"
        else:
            lines = [gid, f"{len(layers)} layers"]
            color = COLORS[min(kinds, key=SEVERITY.index)] if kinds else "white"
        if include_rf_info:
            lines.append(_rf_line(last.size_min, last.size_max))
        if include_fm_info and None not in last.output_shape:
            lines.append(f"feature map {fmt(last.output_shape)}")
        if len(layers) > 1 and kinds:
            counts = {k: kinds.count(k) for k in SEVERITY if k in kinds and k != "productive"}
            if counts:
                lines.append(", ".join(f"{c} {k}" for k, c in counts.items()))
        parts = gid.split(".")
        boxes.append(Box(gid, lines, color, list(sources), tuple(parts[:-1]),
                         dashed=last.status != "exact"))
    return boxes


def _depth(analysis: Analysis, names: list[str], collapse: bool | int | None, max_boxes: int) -> int | None:
    if collapse is False or (collapse in (None, True) and len(names) <= max_boxes):
        return None
    if isinstance(collapse, int) and not isinstance(collapse, bool):
        if collapse < 1:
            raise FovealError(f"collapse must be a module depth >= 1, got {collapse}")
        return collapse
    deepest = max(n.count(".") + 1 for n in names)
    for depth in range(deepest, 0, -1):
        if len({".".join(n.split(".")[:depth]) for n in names}) <= max_boxes:
            return depth
    return 1


def analysis_dot(analysis: Analysis, verdicts: Verdicts | None = None, *, title: str | None = None,
                 **options) -> str:
    """DOT text of the analysis; with verdicts, boxes are coloured red / orange / yellow."""
    if verdicts is None and analysis.input_shape is not None:
        verdicts = analysis.verdicts()
    heading = title or analysis.graph.name
    if analysis.input_shape is not None:
        heading += f" at {fmt(analysis.input_shape)}"
    return dot_source(analysis_boxes(analysis, verdicts, **options), heading)


def draw(analysis: Analysis, path: str | os.PathLike, verdicts: Verdicts | None = None, **options) -> Path:
    """Draw the analysis to `path` (.svg, .png, .pdf through Graphviz; .dot/.gv as text)."""
    return render(analysis_dot(analysis, verdicts, **options), path)


def drawn(analysis: Analysis, path: str | os.PathLike, verdicts: Verdicts | None = None, **options) -> bytes:
    """What draw() would write to `path`, as bytes."""
    return rendered(analysis_dot(analysis, verdicts, **options), path)
