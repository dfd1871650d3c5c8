"""`foveal benchmark`: receptive fields and FLOPs of a zoo of classifiers, per end-point.

The receptive_field library's rf_benchmark.py ran over TF-Slim networks and wrote one CSV row
per (network, input resolution, end-point); its table (RECEPTIVE_FIELD_TABLE.md) is what many
papers quote. This does the same for the networks people use now (torchvision and
keras.applications), through foveal's front-ends, with what the reference lacked: a status per
row (exact / bound / unavailable / error) instead of a crash, horizontal and vertical values
that may differ, and FLOPs that follow one documented convention (multiply-add = 2; see
`foveal.pytorch.flops`).

Frameworks are imported only when a model of theirs runs. Resolution None means "no input size":
the receptive field is computed without one (paddings that depend on the size are None) and
FLOPs, which need a size, are None, as in the reference table. A PyTorch model can only be
captured at a concrete shape; it is captured at its nominal size and the graph is then analysed
without the size (its paddings are explicit, so they do not depend on it).
"""

from __future__ import annotations

import argparse
import csv
import difflib
import importlib
import io
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .cli_args import print_error
from .errors import FovealError

if TYPE_CHECKING:
    from .analysis import Analysis
    from .graph import Graph

TORCHVISION = "torchvision"
KERAS = "keras"
DEFAULT_RESOLUTIONS: tuple[int | None, ...] = (None, 224, 321)

CSV_COLUMNS = ("CNN", "input resolution", "end_point", "FLOPs (Billion)", "RF size hor", "RF size ver",
               "effective stride hor", "effective stride ver", "effective padding hor",
               "effective padding ver", "status")
"""The reference's columns (rf_benchmark.py), in its order, then foveal's status."""


@dataclass(frozen=True)
class ZooModel:
    """A named model of the zoo: how to build it and which nodes are its end-points."""

    name: str
    framework: str
    """'torchvision' (built with meta weights, full classifier) or 'keras' (keras.applications,
    weights=None, include_top=False so that any resolution builds)."""
    builder: str
    """torchvision.models.get_model name, or keras.applications attribute."""
    end_points: tuple[str, ...]
    """Node names: torchvision module paths, or Keras layer names."""
    nominal: int = 224
    """PyTorch only: the size at which a resolution-None row is captured."""
    options: tuple[tuple[str, Any], ...] = ()
    """Keyword arguments of the factory (torchvision only)."""


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
    ZooModel("alexnet", TORCHVISION, "alexnet", _ALEXNET),
    ZooModel("vgg16", TORCHVISION, "vgg16", _VGG16),
    ZooModel("resnet18", TORCHVISION, "resnet18", _RESNET),
    ZooModel("resnet50", TORCHVISION, "resnet50", _RESNET),
    ZooModel("resnet101", TORCHVISION, "resnet101", _RESNET),
    ZooModel("resnet152", TORCHVISION, "resnet152", _RESNET),
    ZooModel("inception_v3", TORCHVISION, "inception_v3", _INCEPTION_V3, nominal=299,
             options=(("init_weights", False),)),  # meta weights: no init, and no FutureWarning
    ZooModel("densenet121", TORCHVISION, "densenet121", _DENSENET),
    ZooModel("mobilenet_v2", TORCHVISION, "mobilenet_v2", _features(19)),
    ZooModel("efficientnet_b0", TORCHVISION, "efficientnet_b0", _features(9)),
    ZooModel("convnext_tiny", TORCHVISION, "convnext_tiny", _features(8)),
    ZooModel("keras.VGG16", KERAS, "VGG16",
             ("block1_pool", "block2_pool", "block3_pool", "block4_pool", "block5_pool")),
    ZooModel("keras.ResNet50", KERAS, "ResNet50",
             ("pool1_pool", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out",
              "conv5_block3_out")),
    ZooModel("keras.InceptionV3", KERAS, "InceptionV3", tuple(f"mixed{i}" for i in range(11))),
    ZooModel("keras.MobileNetV2", KERAS, "MobileNetV2",
             ("expanded_conv_project_BN", "block_2_add", "block_5_add", "block_9_add", "block_12_add",
              "block_15_add", "block_16_project_BN", "out_relu")),
    ZooModel("keras.EfficientNetB0", KERAS, "EfficientNetB0",
             ("block1a_project_bn", "block2b_add", "block3b_add", "block4c_add", "block5c_add",
              "block6d_add", "block7a_project_bn", "top_activation")),
)
"""The zoo: a tuple, so no caller can change it for everyone; `zoo()` gives a fresh dict."""


def zoo() -> dict[str, ZooModel]:
    return {m.name: m for m in ZOO}


@dataclass(frozen=True)
class Row:
    """One (model, resolution, end-point): per-axis values in the graph's (H, W) order.

    `hor` is the W axis and `ver` the H axis, as in the reference's columns. A value is None when
    unavailable (`note` says why); FLOPs is None at resolution None.
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

    @property
    def gflops(self) -> float | None:
        return None if self.flops is None else self.flops / 1e9

    def columns(self) -> dict[str, str]:
        """The CSV row, formatted as the reference wrote it ('None' for missing values)."""
        values = [self.model, _text(self.resolution), self.end_point, _gflops(self.flops)]
        for per_axis in (self.size, self.stride, self.padding):
            values += [_text(_hor(per_axis)), _text(_ver(per_axis))]
        return dict(zip(CSV_COLUMNS, [*values, self.status]))


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
    """Zoo entries by name (all of them for None); an unknown name is one error naming the zoo."""
    known = zoo()
    if names is None:
        return list(ZOO)
    if isinstance(names, (str, ZooModel)):  # one model, not the letters of its name
        names = [names]
    out: list[ZooModel] = []
    for name in names:
        if isinstance(name, ZooModel):
            out.append(name)
            continue
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise FovealError(f"unknown model {name!r}; {hint}the zoo has: {', '.join(known)}")
        out.append(known[name])
    return out


def run_benchmark(models: Iterable[str | ZooModel] | None = None,
                  resolutions: Sequence[int | None] = DEFAULT_RESOLUTIONS,
                  progress: Progress | None = None) -> list[Row]:
    """A Row per (model, resolution, end-point), in that order.

    A model that fails to build, capture or analyse at one resolution gives rows with status
    'error' and the reason in `note`, and the run goes on (the reference stopped with a KeyError
    there). A framework that is not importable is an error before anything runs.
    """
    entries = resolve(models)
    for framework in dict.fromkeys(m.framework for m in entries):
        require(framework)
    steps = len(entries) * len(resolutions)
    rows: list[Row] = []
    step = 0
    for entry in entries:
        runner = _RUNNERS[entry.framework](entry)
        for resolution in resolutions:
            step += 1
            if progress is not None:
                progress(step, steps, entry.name, resolution)
            try:
                graph, analysis, flops = runner(resolution)
                rows += _rows(entry, resolution, analysis, flops)
            except FovealError as error:
                rows += [Row(entry.name, resolution, e, None, (None, None), (None, None), (None, None),
                             "error", str(error), entry.framework) for e in entry.end_points]
    return rows


def _rows(entry: ZooModel, resolution: int | None, analysis: Analysis,
          flops: dict[str, int] | None) -> list[Row]:
    out = []
    for end_point in entry.end_points:
        r = analysis[end_point]
        reasons = list(r.reasons)
        if r.global_:
            reasons.append("global: every feature depends on the whole input (a global pooling on "
                           "some path, e.g. squeeze-and-excitation)")
        out.append(Row(entry.name, resolution, end_point, None if flops is None else flops[end_point],
                       r.size, r.stride, r.padding, r.status, "; ".join(reasons), entry.framework,
                       r.is_global))
    return out


Runner = Callable[[int | None], "tuple[Graph, Analysis, dict[str, int] | None]"]


def _importable(module: str, why: str) -> None:
    """Import `module`, or raise a FovealError with `why` and the first line of the failure
    (a broken wheel fails with RuntimeError, not ImportError)."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [""])[0]
        raise FovealError(f"{why} ({type(exc).__name__}: {first})") from None


def require(framework: str) -> None:
    """Raise a FovealError saying what is missing when `framework`'s models cannot run."""
    if framework == TORCHVISION:
        _importable("foveal.pytorch", "the torchvision models need PyTorch, which is not importable; "
                    "install foveal[torch] and torchvision")
        _importable("torchvision", f"the torchvision models need torchvision, which failed to import; "
                    f"install a torchvision build that matches torch {_version('torch')}, or leave out "
                    f"the torchvision models")
    elif framework == KERAS:
        _importable("foveal.keras", "Keras front-end not available")
        _importable("keras", "Keras front-end not available: the keras.* models need Keras 3 "
                    "(pip install keras)")
    else:
        raise FovealError(f"unknown framework {framework!r} (expected {TORCHVISION!r} or {KERAS!r})")


def available(framework: str) -> str | None:
    """None when `framework`'s models can run, else why not."""
    try:
        require(framework)
    except FovealError as error:
        return str(error)
    return None


def _version(package: str) -> str:
    module = sys.modules.get(package)
    return str(getattr(module, "__version__", "?"))


def _torch_runner(entry: ZooModel) -> Runner:
    """Builds the model once (meta weights); one capture per input size, reused by None rows."""
    from .api import receptive_field
    from .flops import subgraph_flops
    from .frontend import check_sizes
    from .pytorch import convert
    from .pytorch.flops import count_flops
    from .pytorch.load import build

    model: list[Any] = []
    captures: dict[int, Any] = {}

    def capture(size: int) -> Any:
        if not model:
            model.append(build(f"torchvision:{entry.builder}", dict(entry.options)).eval())
        if size not in captures:
            captures[size] = convert(model[0], (1, 3, size, size))
        return captures[size]

    def run(resolution: int | None) -> tuple[Graph, Analysis, dict[str, int] | None]:
        builder = capture(entry.nominal if resolution is None else resolution)
        graph = builder.graph
        if resolution is None:
            return graph, receptive_field(graph, None), None
        analysis = receptive_field(graph, (resolution, resolution))
        check_sizes(analysis, builder.expected, "PyTorch")
        flops = subgraph_flops(graph, count_flops(builder).by_node, entry.end_points)
        return graph, analysis, flops

    return run


def _keras_runner(entry: ZooModel) -> Runner:
    """Builds the model per resolution (Keras fixes the input size at build time)."""
    from .api import receptive_field
    from .flops import subgraph_flops

    keras = importlib.import_module("keras")
    fk = importlib.import_module("foveal.keras")  # the Keras front-end: graph and per-layer FLOPs
    factory = getattr(keras.applications, entry.builder)

    def run(resolution: int | None) -> tuple[Graph, Analysis, dict[str, int] | None]:
        shape = (resolution, resolution, 3)
        try:
            model = factory(weights=None, include_top=False, input_shape=shape)
        except Exception as exc:  # noqa: BLE001 - Keras refuses sizes in many ways
            raise FovealError(f"keras.applications.{entry.builder} failed to build at input shape "
                              f"{shape}: {type(exc).__name__}: {exc}") from None
        graph = fk.graph_from_model(model)
        if resolution is None:
            return graph, receptive_field(graph, None), None
        analysis = receptive_field(graph, (resolution, resolution))
        per_layer = fk.flops_by_layer(model, (1, resolution, resolution, 3))
        return graph, analysis, subgraph_flops(graph, per_layer, entry.end_points)

    return run


_RUNNERS: dict[str, Callable[[ZooModel], Runner]] = {TORCHVISION: _torch_runner, KERAS: _keras_runner}


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
        cells = [r.model, _text(r.resolution), r.end_point, _gflops(r.flops),
                 _cell(r.size, r.is_global), _cell(r.stride), _cell(r.padding)]
        table.append([*cells, *((r.status,) if with_status else ())])
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    widths = [max(w, 3) for w in widths]

    def line(cells: Sequence[str]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    rule = " | ".join(":" + "-" * (w - 2) + ":" for w in widths)
    text = [line(header), rule, *(line(cells) for cells in table[1:])]
    conventions = [FLOPS_CONVENTIONS[f] for f in dict.fromkeys(r.framework for r in rows)
                   if f in FLOPS_CONVENTIONS]
    legend = (f"FLOPs: a multiply-add counts 2; {'; '.join(conventions) or 'no FLOPs'} (foveal's "
              f"docs/benchmark.md). Where horizontal and vertical values differ a cell shows "
              f"`hor / ver`; 'global': every feature depends on the whole input.")
    return legend + "\n\n" + "\n".join(text) + "\n"


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
        "benchmark", help="receptive field and FLOPs of a zoo of classifiers, per end-point",
        description="Receptive field size, effective stride and padding, and FLOPs per end-point of "
                    "torchvision and keras.applications models, as the receptive_field library's "
                    "rf_benchmark did for TF-Slim.")
    parser.add_argument("--models", default=None, metavar="A,B,..",
                        help="models of the zoo, comma-separated (default: every model whose framework "
                             "imports; --list shows the zoo)")
    parser.add_argument("--list", action="store_true", help="list the zoo and exit")
    parser.add_argument("--resolutions", type=_resolutions, default=DEFAULT_RESOLUTIONS,
                        metavar="none,224,321",
                        help="input sizes; 'none' analyses without a size (no FLOPs); default none,224,321")
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
        return 0
    for flag, path in (("--csv", args.csv), ("--markdown", args.markdown)):
        folder = Path(path).parent if path else None
        if folder is not None and not folder.is_dir():
            raise FovealError(f"cannot write {flag} {path!r}: folder {str(folder)!r} does not exist")
    if args.models:
        entries = resolve(n.strip() for n in args.models.split(",") if n.strip())
    else:
        entries = []
        for framework in dict.fromkeys(m.framework for m in ZOO):
            why = available(framework)
            if why is None:
                entries += [m for m in ZOO if m.framework == framework]
            else:
                print(f"foveal: skipping the {framework} models: {why}", file=sys.stderr)
        if not entries:
            raise FovealError("no model of the zoo can run here (see above)")
    if not entries:
        raise FovealError(f"--models names no model; the zoo has: {', '.join(zoo())}")
    started = time.perf_counter()
    rows = run_benchmark(entries, args.resolutions, None if args.quiet else text_progress(sys.stderr))
    if not args.quiet:
        print(f"{len(rows)} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.csv:
        write_csv(rows, args.csv)
    if args.markdown:
        write_markdown(rows, args.markdown)
    if not args.csv and not args.markdown:
        sys.stdout.write(to_markdown(rows))
    failed = [r for r in rows if r.status == "error"]
    for model, resolution, note in dict.fromkeys((r.model, r.resolution, r.note) for r in failed):
        print(f"foveal: {model} @ {resolution}: {note}", file=sys.stderr)
    return 1 if failed else 0
