"""`foveal benchmark`: receptive fields and FLOPs of the zoo's classifiers, per end-point.

The receptive_field library's rf_benchmark.py ran over TF-Slim networks and wrote one CSV row
per (network, input resolution, end-point); its table (RECEPTIVE_FIELD_TABLE.md) is what many
papers quote. This does the same for the networks people use now, on the graphs of foveal's zoo
(torchvision and keras.applications models, `foveal zoo`), with what the reference lacked: a
status per row (exact / bound / unavailable / error) instead of a crash, horizontal and vertical
values that may differ, and FLOPs that follow one documented convention (multiply-add = 2; see
`foveal.pytorch.flops`).

The receptive fields need only the core: the zoo's graphs are read as they are shipped. The graphs
record no channel counts, so FLOPs come from the model's framework (torchvision or Keras), rebuilt
from the zoo's source when that framework imports; otherwise the FLOPs are unavailable and each
row says why. Resolution None means "no input size": the receptive field is computed without one
(paddings that depend on the size are None) and FLOPs, which need a size, are None, as in the
reference table.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import zoo as zoo_graphs
from .cli_args import print_error
from .errors import FovealError

if TYPE_CHECKING:
    from .analysis import Analysis

TORCHVISION = "torchvision"
KERAS = "keras"
DEFAULT_RESOLUTIONS: tuple[int | None, ...] = (None, 224, 321)
UNAVAILABLE = "unavailable"
"""The FLOPs cell of a row whose FLOPs could not be counted (`Row.flops_note` says why)."""

CSV_COLUMNS = ("CNN", "input resolution", "end_point", "FLOPs (Billion)", "RF size hor", "RF size ver",
               "effective stride hor", "effective stride ver", "effective padding hor",
               "effective padding ver", "status")
"""The reference's columns (rf_benchmark.py), in its order, then foveal's status."""


@dataclass(frozen=True)
class ZooModel:
    """A model of foveal's zoo (`foveal zoo`) and the nodes of its graph to report.

    With no end-points, they are the ends of the graph's stride stages (`stage_ends`)."""

    name: str
    """The zoo's name: 'resnet50', 'keras.ResNet50', ..."""
    end_points: tuple[str, ...] = ()
    """Node names of the zoo graph: torchvision module paths, or Keras layer names."""

    @property
    def framework(self) -> str:
        """'torchvision' or 'keras': the package the graph was captured from, which counts its
        FLOPs (each with its convention, FLOPS_CONVENTIONS)."""
        return zoo_graphs.framework(self.name)


def _features(n: int) -> tuple[str, ...]:
    return tuple(f"features.{i}" for i in range(n))


_RESNET = ("layer1", "layer2", "layer3", "layer4")
# The TF-Slim vgg_16 end-points of the reference table, in torchvision's numbering: conv1_1,
# pool1, conv2_1, pool2, conv3_1, conv3_2, pool3, conv4_1, conv4_2, pool4, conv5_1, conv5_2, pool5.
_VGG16 = tuple(f"features.{i}" for i in (0, 4, 5, 9, 10, 12, 16, 17, 19, 23, 24, 26, 30))
_ALEXNET = tuple(f"features.{i}" for i in (0, 2, 3, 5, 6, 8, 10, 12))  # conv1 pool1 conv2 ... pool5
# torchvision's Inception-v3 is TF-Slim's, with the same end-point names (MaxPool_3a_3x3 and
# MaxPool_5a_3x3 are maxpool1 and maxpool2).
_INCEPTION_V3 = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
                 "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
                 "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")
_DENSENET = ("features.pool0", "features.denseblock1", "features.transition1", "features.denseblock2",
             "features.transition2", "features.denseblock3", "features.transition3",
             "features.denseblock4")

ZOO: tuple[ZooModel, ...] = (
    ZooModel("alexnet", _ALEXNET),
    ZooModel("vgg16", _VGG16),
    ZooModel("resnet18", _RESNET),
    ZooModel("resnet50", _RESNET),
    ZooModel("resnet101", _RESNET),
    ZooModel("resnet152", _RESNET),
    ZooModel("inception_v3", _INCEPTION_V3),
    ZooModel("densenet121", _DENSENET),
    ZooModel("mobilenet_v2", _features(19)),
    ZooModel("efficientnet_b0", _features(9)),
    ZooModel("convnext_tiny", _features(8)),
    ZooModel("keras.VGG16", ("block1_pool", "block2_pool", "block3_pool", "block4_pool", "block5_pool")),
    ZooModel("keras.ResNet50", ("pool1_pool", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out",
                                "conv5_block3_out")),
    ZooModel("keras.InceptionV3", tuple(f"mixed{i}" for i in range(11))),
    ZooModel("keras.MobileNetV2", ("expanded_conv_project_BN", "block_2_add", "block_5_add", "block_9_add",
                                   "block_12_add", "block_15_add", "block_16_project_BN", "out_relu")),
    ZooModel("keras.EfficientNetB0", ("block1a_project_bn", "block2b_add", "block3b_add", "block4c_add",
                                      "block5c_add", "block6d_add", "block7a_project_bn", "top_activation")),
)
"""The default run: the reference table's networks (TF-Slim's alexnet, vgg_16, inception_v3,
resnet_v1, mobilenet) as torchvision and keras.applications have them, and a few current ones,
with the reference's end-points where it had them. A tuple, so no caller can change it for
everyone; `zoo()` gives a fresh dict. Any other zoo model can be named too (`resolve`)."""


def zoo() -> dict[str, ZooModel]:
    return {m.name: m for m in ZOO}


@dataclass(frozen=True)
class Row:
    """One (model, resolution, end-point): per-axis values in the graph's (H, W) order.

    `hor` is the W axis and `ver` the H axis, as in the reference's columns. A value is None when
    unavailable (`note` says why); FLOPs is None at resolution None, and None with `flops_note`
    when they could not be counted.
    """

    model: str
    resolution: int | None
    end_point: str
    flops: int | None
    size: tuple[Any, ...]
    stride: tuple[Any, ...]
    padding: tuple[Any, ...]
    status: str
    """exact | bound | unavailable (from the analysis) | error (the model could not be analysed)."""
    note: str = ""
    framework: str = ""
    """'torchvision' or 'keras': says which FLOPs convention applies (see FLOPS_CONVENTIONS)."""
    is_global: tuple[bool, ...] = ()
    """Per axis: every feature depends on the whole input (global pooling on some path, e.g.
    squeeze-and-excitation); size is then the largest region (inf without a size), stride and
    padding None."""
    flops_note: str = ""
    """Why `flops` is None at a given resolution (the framework does not import, ...)."""

    @property
    def gflops(self) -> float | None:
        return None if self.flops is None else self.flops / 1e9

    def columns(self) -> dict[str, str]:
        """The CSV row, formatted as the reference wrote it ('None' for missing values,
        'unavailable' for FLOPs that could not be counted)."""
        values = [self.model, _text(self.resolution), self.end_point, self.flops_cell()]
        for per_axis in (self.size, self.stride, self.padding):
            values += [_text(_hor(per_axis)), _text(_ver(per_axis))]
        return dict(zip(CSV_COLUMNS, [*values, self.status]))

    def flops_cell(self) -> str:
        return UNAVAILABLE if self.flops_note else _gflops(self.flops)


def _hor(values: tuple[Any, ...]) -> Any:
    return values[-1] if values else None


def _ver(values: tuple[Any, ...]) -> Any:
    return values[-2] if len(values) >= 2 else None


def _text(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return str(value)


def _gflops(flops: int | None) -> str:
    return "None" if flops is None else f"{flops / 1e9:.3f}"


# -- running ---------------------------------------------------------------------------------

Progress = Callable[[int, int, str, "int | None"], None]
"""progress(step, steps, model, resolution), called before each (model, resolution)."""


def text_progress(stream: TextIO | None = None) -> Progress:
    """A plain progress line per step on `stream` (stderr): '[ 3/12] resnet50 @ 224'."""

    def show(step: int, steps: int, model: str, resolution: int | None) -> None:
        out = sys.stderr if stream is None else stream
        width = len(str(steps))
        print(f"[{step:>{width}}/{steps}] {model} @ {resolution}", file=out, flush=True)

    return show


def resolve(names: Iterable[str | ZooModel] | None) -> list[ZooModel]:
    """Entries by name (the default run, ZOO, for None): a model of ZOO with its end-points, any
    other zoo model with the ends of its stride stages. An unknown name is one error with the
    closest zoo names."""
    known = zoo()
    if names is None:
        return list(ZOO)
    if isinstance(names, (str, ZooModel)):  # one model, not the letters of its name
        names = [names]
    out: list[ZooModel] = []
    for name in names:
        if isinstance(name, ZooModel):
            zoo_graphs.entry(name.name)
            out.append(name)
        elif name in known:
            out.append(known[name])
        elif zoo_graphs.is_zoo_name(name):
            out.append(ZooModel(name))
        else:
            raise FovealError(f"unknown model {name!r}{zoo_graphs.suggest(name)} (any model of 'foveal zoo' "
                              f"can be named)")
    return out


def stage_ends(analysis: Analysis) -> tuple[str, ...]:
    """The end of each stride stage: for each effective stride, in the order strides appear, the
    node that every path from the input to the output goes through (no branch or shortcut around
    it) with the largest receptive field at that stride, named by its outermost module (`layer1`
    rather than its last relu); among equals the outermost name (the fewest dots), then the last.
    Global nodes are left out (a classifier's head). The same nodes at every input size of a
    size-independent graph."""
    from . import ops

    nodes = analysis.graph.nodes
    order = analysis.ancestor_names(analysis.output_name)
    keep = set(order)
    from_input = {name: 0 for name in order}  # paths from the input (exact: Python ints)
    for name in order:
        sources = [s for s in nodes[name].sources if s in keep]
        from_input[name] = 1 if name == analysis.input else sum(from_input[s] for s in sources)
    to_output = {name: 0 for name in order}
    to_output[analysis.output_name] = 1
    for name in reversed(order):
        for source in nodes[name].sources:
            if source in keep:
                to_output[source] += to_output[name]
    paths = from_input[analysis.output_name]

    aliases: dict[str, str] = {}  # a node -> the last alias naming its output (a module's path)
    for node in nodes.values():
        if isinstance(node.op, ops.Elementwise) and node.op.is_alias and len(node.inputs) == 1:
            aliases[node.inputs[0]] = node.name

    def outermost(name: str) -> str:
        seen = {name}
        while name in aliases and aliases[name] not in seen:
            name = aliases[name]
            seen.add(name)
        return name

    best: dict[tuple[Any, ...], tuple[tuple[Any, ...], int, str]] = {}
    for name in order:
        if not paths or from_input[name] * to_output[name] != paths or isinstance(nodes[name].op, ops.Input):
            continue
        r = analysis[name]
        stride, size = r.stride, r.size
        if r.global_ or any(not isinstance(v, (int, float)) or math.isinf(v) for v in (*stride, *size)):
            continue
        shown = outermost(name)
        rank = (size, -shown.count("."))
        if stride not in best or rank >= best[stride][:2]:
            best[stride] = (*rank, shown)
    return tuple(dict.fromkeys(name for _, _, name in best.values()))


def run_benchmark(models: Iterable[str | ZooModel] | None = None,
                  resolutions: Sequence[int | None] = DEFAULT_RESOLUTIONS,
                  progress: Progress | None = None, flops: bool = True) -> list[Row]:
    """A Row per (model, resolution, end-point), in that order, from the zoo's graphs.

    A model that fails to analyse at one resolution (an end-point it lacks, a fixed-size graph at
    another size) gives rows with status 'error' and the reason in `note`, and the run goes on
    (the reference stopped with a KeyError there). FLOPs are counted through the model's framework
    when `flops` and the framework imports; otherwise they are None with the reason in
    `flops_note`.
    """
    entries = resolve(models)
    steps = len(entries) * len(resolutions)
    rows: list[Row] = []
    step = 0
    for entry in entries:
        run = _runner(entry, flops)
        for resolution in resolutions:
            step += 1
            if progress is not None:
                progress(step, steps, entry.name, resolution)
            rows += run(resolution)
    return rows


def _runner(entry: ZooModel, with_flops: bool) -> Callable[[int | None], list[Row]]:
    """The rows of `entry` at one resolution; the graph is read once, the end-points chosen
    once, the framework's model built once."""
    from .api import receptive_field

    info = zoo_graphs.entry(entry.name)
    graph = zoo_graphs.load(entry.name)
    framework = entry.framework
    counter: Callable[[int, tuple[str, ...]], dict[str, int]] | None = None
    why_no_flops = "not asked for (--no-flops)" if not with_flops else ""
    if with_flops:
        try:
            counter = _FLOPS[framework](entry.name)
        except FovealError as error:
            why_no_flops = str(error)
    chosen: list[tuple[str, ...]] = [entry.end_points] if entry.end_points else []

    def analyse(resolution: int | None) -> Analysis:
        if resolution is None:
            if info.fixed_size:
                captured = "x".join(map(str, info.captured_at))
                raise FovealError(f"zoo model {entry.name!r} holds only at input size {captured} (its graph "
                                  f"depends on the size): no analysis without one")
            return receptive_field(graph, None)
        size = (resolution,) * len(info.captured_at)
        return receptive_field(graph, zoo_graphs.input_size(entry.name, size))

    def end_points() -> tuple[str, ...]:
        if not chosen:
            chosen.append(stage_ends(receptive_field(graph, info.captured_at)))
        return chosen[0]

    def run(resolution: int | None) -> list[Row]:
        try:
            names = end_points()
            analysis = analyse(resolution)
            results = [analysis[name] for name in names]
        except FovealError as error:
            names = chosen[0] if chosen else ("",)
            return [Row(entry.name, resolution, e, None, (None, None), (None, None), (None, None), "error",
                        str(error), framework) for e in names]
        counted: dict[str, int] | None = None
        flops_note = ""
        if resolution is not None:
            if counter is None:
                flops_note = why_no_flops
            else:
                try:
                    counted = counter(resolution, names)
                except FovealError as error:
                    flops_note = f"FLOPs not counted: {error}"
        return [_row(entry, resolution, r, None if counted is None else counted[r.name], flops_note)
                for r in results]

    return run


def _row(entry: ZooModel, resolution: int | None, r: Any, flops: int | None, flops_note: str) -> Row:
    reasons = list(r.reasons)
    if r.global_:
        reasons.append("global: every feature depends on the whole input (a global pooling on "
                       "some path, e.g. squeeze-and-excitation)")
    return Row(entry.name, resolution, r.name, flops, r.size, r.stride, r.padding, r.status,
               "; ".join(reasons), entry.framework, r.is_global, flops_note)


def _importable(module: str, why: str) -> None:
    """Import `module`, or raise a FovealError with `why` and the first line of the failure
    (a broken wheel fails with RuntimeError, not ImportError)."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [""])[0]
        raise FovealError(f"{why} ({type(exc).__name__}: {first})") from None


def require(framework: str) -> None:
    """Raise a FovealError saying what is missing when `framework`'s FLOPs cannot be counted."""
    if framework == TORCHVISION:
        _importable("foveal.pytorch", "no FLOPs for the torchvision models: they need PyTorch, which is "
                    "not importable; install foveal[torch]")
        _importable("torchvision", f"no FLOPs for the torchvision models: they need torchvision, which "
                    f"failed to import; install a torchvision build that matches torch {_version('torch')}")
    elif framework == KERAS:
        _importable("foveal.keras", "no FLOPs for the keras models: the Keras front-end is not available")
        _importable("keras", "no FLOPs for the keras models: they need Keras 3 (pip install keras)")
    else:
        raise FovealError(f"unknown framework {framework!r} (expected {TORCHVISION!r} or {KERAS!r})")


def available(framework: str) -> str | None:
    """None when `framework`'s FLOPs can be counted, else why not."""
    try:
        require(framework)
    except FovealError as error:
        return str(error)
    return None


def _version(package: str) -> str:
    module = sys.modules.get(package)
    return str(getattr(module, "__version__", "?"))


FlopsCounter = Callable[[int, "tuple[str, ...]"], "dict[str, int]"]
"""counter(resolution, end-points) -> FLOPs per end-point (a FovealError when they cannot be had)."""


def _torch_flops(name: str) -> FlopsCounter:
    """Builds the zoo model's torchvision source once (meta weights: nothing allocated); one
    capture per input size, counted as torch.utils.flop_counter does."""
    require(TORCHVISION)
    from .flops import subgraph_flops
    from .pytorch import convert
    from .pytorch.flops import count_flops
    from .pytorch.load import build

    target, keywords, attributes = zoo_graphs.factory(name)
    channels = zoo_graphs.entry(name).channels or 3
    model: list[Any] = []

    def count(resolution: int, end_points: tuple[str, ...]) -> dict[str, int]:
        if not model:
            built = build(target, keywords)
            for attribute in attributes:
                built = getattr(built, attribute)
            model.append(built.eval())
        builder = convert(model[0], (1, channels, resolution, resolution))
        return subgraph_flops(builder.graph, count_flops(builder).by_node, end_points)

    return count


def _keras_flops(name: str) -> FlopsCounter:
    """Builds the keras.applications model per resolution (Keras fixes the input size at build
    time) and counts its layers as tf.profiler did."""
    require(KERAS)
    from .flops import subgraph_flops

    fk = importlib.import_module("foveal.keras")  # the Keras front-end: graph and per-layer FLOPs
    target, keywords, _ = zoo_graphs.factory(name)
    module, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module), attr)
    channels = zoo_graphs.entry(name).channels or 3

    def count(resolution: int, end_points: tuple[str, ...]) -> dict[str, int]:
        shape = (resolution, resolution, channels)
        try:
            model = factory(**keywords, input_shape=shape)
        except Exception as exc:  # noqa: BLE001 - Keras refuses sizes in many ways
            raise FovealError(f"{target} failed to build at input shape {shape}: {type(exc).__name__}: "
                              f"{exc}") from None
        per_layer = fk.flops_by_layer(model, (1, *shape))
        return subgraph_flops(fk.graph_from_model(model), per_layer, end_points)

    return count


_FLOPS: dict[str, Callable[[str], FlopsCounter]] = {TORCHVISION: _torch_flops, KERAS: _keras_flops}


# -- writing ---------------------------------------------------------------------------------

def to_csv(rows: Iterable[Row]) -> str:
    """The reference's CSV columns (and status); values as the reference wrote them."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.columns())
    return buffer.getvalue()


FLOPS_CONVENTIONS = {
    TORCHVISION: "torchvision models count convolutions and matrix products only, as "
                 "torch.utils.flop_counter.FlopCounterMode does",
    KERAS: "keras models also count bias adds, normalisations, activations, pooling and merges, "
           "as tf.profiler did for the reference table (foveal.keras.flops_by_layer)",
}
"""Each front-end's FLOPs convention; both count a multiply-add as 2."""

MARKDOWN_HEADER = ("CNN", "resolution", "end-point", "FLOPs (Billion)", "RF", "effective stride",
                   "effective padding")


def to_markdown(rows: Iterable[Row]) -> str:
    """The reference table's layout: one value per cell when hor == ver, else 'hor / ver'; a
    status column when some row is not exact."""
    rows = list(rows)
    with_status = any(r.status != "exact" for r in rows)
    header = [*MARKDOWN_HEADER, *(("status",) if with_status else ())]
    table = [header]
    for r in rows:
        cells = [r.model, _text(r.resolution), r.end_point, r.flops_cell(),
                 _cell(r.size, r.is_global), _cell(r.stride), _cell(r.padding)]
        table.append([*cells, *((r.status,) if with_status else ())])
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    widths = [max(w, 3) for w in widths]

    def line(cells: Sequence[str]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    rule = " | ".join(":" + "-" * (w - 2) + ":" for w in widths)
    text = [line(header), rule, *(line(cells) for cells in table[1:])]
    counted = dict.fromkeys(r.framework for r in rows if r.flops is not None)
    conventions = [FLOPS_CONVENTIONS[f] for f in counted if f in FLOPS_CONVENTIONS]
    legend = (f"FLOPs: a multiply-add counts 2; {'; '.join(conventions) or 'no FLOPs counted'} (foveal's "
              f"docs/benchmark.md). Where horizontal and vertical values differ a cell shows "
              f"`hor / ver`; 'global': every feature depends on the whole input.")
    missing = flops_notes(rows)
    if missing:
        legend += "\n\n" + "\n".join(f"FLOPs {UNAVAILABLE} for {', '.join(models)}: {why}"
                                      for why, models in missing.items())
    return legend + "\n\n" + "\n".join(text) + "\n"


def flops_notes(rows: Iterable[Row]) -> dict[str, list[str]]:
    """Why FLOPs are unavailable -> the models concerned, in row order."""
    notes: dict[str, list[str]] = {}
    for r in rows:
        if r.flops_note and r.model not in notes.setdefault(r.flops_note, []):
            notes[r.flops_note].append(r.model)
    return notes


def _cell(values: tuple[Any, ...], is_global: tuple[bool, ...] = ()) -> str:
    """'hor' or 'hor / ver'; a global axis shows 'global' (no size) or 'N (global)'."""
    texts = []
    for value, flag in ((_hor(values), _hor(is_global)), (_ver(values), _ver(is_global))):
        text = _text(value)
        if flag:
            text = "global" if text == "inf" else f"{text} (global)"
        texts.append(text)
    return texts[0] if texts[0] == texts[1] else f"{texts[0]} / {texts[1]}"


def write_csv(rows: Iterable[Row], path: str | Path) -> None:
    _write(Path(path), to_csv(rows))


def write_markdown(rows: Iterable[Row], path: str | Path) -> None:
    _write(Path(path), to_markdown(rows))


def _write(path: Path, text: str) -> None:
    """Atomically: a reader never sees half a table, and a failed run leaves the old file."""
    from .drawing import atomic_write

    try:
        atomic_write(path, text.encode("utf-8"))
    except OSError as error:
        raise FovealError(f"cannot write {str(path)!r}: {error.strerror or error}") from None


# -- command line ----------------------------------------------------------------------------

def _resolutions(text: str) -> tuple[int | None, ...]:
    out: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if part.lower() == "none":
            out.append(None)
            continue
        try:
            value = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"resolutions are integers or 'none', got {part!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"resolutions must be >= 1, got {value}")
        out.append(value)
    return tuple(out)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """The `benchmark` subcommand, on the subparsers object of foveal's parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "benchmark", help="receptive field and FLOPs of zoo models, per end-point",
        description="Receptive field size, effective stride and padding, and FLOPs per end-point of "
                    "the zoo's torchvision and keras.applications models, as the receptive_field "
                    "library's rf_benchmark did for TF-Slim. The receptive fields need only foveal; "
                    "the FLOPs need the model's framework (torchvision or Keras).")
    parser.add_argument("--models", default=None, metavar="A,B,..",
                        help="zoo models, comma-separated (any name of 'foveal zoo'; default: the "
                             "reference table's networks, which --list shows with their end-points)")
    parser.add_argument("--list", action="store_true", help="list the default models and exit")
    parser.add_argument("--resolutions", type=_resolutions, default=DEFAULT_RESOLUTIONS,
                        metavar="none,224,321",
                        help="input sizes; 'none' analyses without a size (no FLOPs); default none,224,321")
    parser.add_argument("--no-flops", dest="flops", action="store_false",
                        help="receptive fields only: do not import a framework to count FLOPs")
    parser.add_argument("--csv", default=None, metavar="PATH", help="write the CSV (the reference's columns)")
    parser.add_argument("--markdown", default=None, metavar="PATH", help="write the markdown table")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(args: argparse.Namespace) -> int:
    """Run the benchmark the arguments ask for. 0: done; 1: some rows are errors; 2: usage or
    setup error (one line on stderr)."""
    try:
        return _main(args)
    except FovealError as error:
        return print_error(error)


def _main(args: argparse.Namespace) -> int:
    if args.list:
        for m in ZOO:
            print(f"{m.name:22s} {m.framework:12s} {', '.join(m.end_points)}")
        print("(any other model of 'foveal zoo' can be named: its end-points are the ends of its stride "
              "stages)")
        return 0
    for flag, path in (("--csv", args.csv), ("--markdown", args.markdown)):
        folder = Path(path).parent if path else None
        if folder is not None and not folder.is_dir():
            raise FovealError(f"cannot write {flag} {path!r}: folder {str(folder)!r} does not exist")
    names = None if args.models is None else [n.strip() for n in args.models.split(",") if n.strip()]
    if names == []:
        raise FovealError("--models names no model; 'foveal zoo' lists the zoo's models")
    entries = resolve(names)
    started = time.perf_counter()
    rows = run_benchmark(entries, args.resolutions, None if args.quiet else text_progress(sys.stderr),
                         flops=args.flops)
    if not args.quiet:
        print(f"{len(rows)} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    outputs = ((args.csv, to_csv), (args.markdown, to_markdown))
    files = [(path, writer(rows)) for path, writer in outputs if path]
    for path, text in files:
        _write(Path(path), text)
        print(f"foveal: wrote {path}", file=sys.stderr)
    if not files:
        sys.stdout.write(to_markdown(rows))
    if args.flops:
        for why, models in flops_notes(rows).items():
            print(f"foveal: note: FLOPs {UNAVAILABLE} for {', '.join(models)}: {why}", file=sys.stderr)
    failed = [r for r in rows if r.status == "error"]
    for model, resolution, note in dict.fromkeys((r.model, r.resolution, r.note) for r in failed):
        print(f"foveal: {model} @ {resolution}: {note}", file=sys.stderr)
    return 1 if failed else 0
