"""The `foveal` command. Errors print one line and exit with status 2, never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from . import benchmark, zoo
from .advisor import cli as advise_cli
from .api import receptive_field
from .cli_args import json_kwargs, print_error, sizes
from .compat.receptive_field import compute_rf
from .erf import cli as erf_cli
from .errors import FovealError, check_prefixes
from .input_spec import Given, InputRequest, parse

if TYPE_CHECKING:
    from .analysis import Analysis

FORMATS = ("table", "json", "csv", "markdown")
REPORT_SUFFIXES = (".html", ".htm")


class Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error (the usage is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"foveal: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = Parser(prog="foveal", description="Exact receptive fields of neural networks.")
    parser.add_argument("--version", action="version", version=f"foveal {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    analyze = commands.add_parser("analyze", help="receptive field of every layer of a model")
    analyze.add_argument("model", help="a zoo model (see 'foveal zoo'), a foveal JSON graph (.json, "
                         ".json.gz), a PyTorch factory (pkg.module:factory or torchvision:<name>), a saved "
                         "torch.export program (.pt2), a TensorFlow GraphDef (.pb, .pbtxt, gzipped too) "
                         "or an ONNX model (.onnx)")
    analyze.add_argument("--input-size", type=sizes, default=None, metavar="N[,N..]",
                         help="spatial input size (one number for every axis, or one per axis)")
    analyze.add_argument("--input-shape", type=sizes, default=None, metavar="N,C,H[,W..]",
                         help="full input shape in the model's layout: 1,3,224,224 (PyTorch, ONNX, zoo), "
                              "1,224,224,3 (TensorFlow, the zoo's keras.* models), 1,16000 (a PyTorch model "
                              "that takes a raw signal)")
    analyze.add_argument("--kwargs", default=None, metavar="JSON",
                         help="keyword arguments for a PyTorch factory, as a JSON object (refused for "
                              "other models)")
    analyze.add_argument("--capture", choices=("auto", "fx", "export"), default=None,
                         help="PyTorch capture: torch.fx, torch.export, or fx with export as the "
                              "fallback (default)")
    analyze.add_argument("--input-node", default=None, help="measure w.r.t. this node (default: first input)")
    analyze.add_argument("--output-node", default=None, help="show this node and what it depends on")
    analyze.add_argument("--stop-propagation", action="append", default=[], metavar="PREFIX",
                         help="cut edges from nodes whose name starts with PREFIX (repeatable)")
    analyze.add_argument("--unknown-policy", choices=("error", "identity", "global"), default="error",
                         help="what to do with ops foveal cannot express (default: error)")
    analyze.add_argument("--all", action="store_true",
                         help="show every node, not only the output's ancestors")
    analyze.add_argument("--pointwise", action="store_true",
                         help="also show rows that change nothing (norms, activations, dropout, reshapes), "
                              "which the table and markdown formats hide by default")
    analyze.add_argument("--format", choices=FORMATS, default="table")
    analyze.add_argument("--verdicts", action="store_true",
                         help="add the verdicts (unproductive / critical layers) and the input-resolution "
                              "range at the input size (table and json formats)")
    analyze.add_argument("--graph", default=None, metavar="PATH",
                         help="also draw the graph, coloured by verdict (.svg, .png, .pdf through Graphviz; "
                              ".dot text)")
    analyze.add_argument("--report", default=None, metavar="PATH",
                         help="also write a self-contained HTML report (.html)")
    analyze.add_argument("--image", default=None, metavar="PATH",
                         help="with --report: the picture the report draws receptive fields on "
                              "(PNG, JPEG, GIF, BMP or WebP; default: a grid)")
    listing = commands.add_parser("zoo", help="list the built-in models (graphs shipped with foveal)")
    listing.add_argument("--names", action="store_true", help="names only, one per line")
    compute_rf.add_parser(commands)
    benchmark.add_parser(commands)
    erf_cli.add_parser(commands)
    advise_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # a usage error (status 2) or --help (0): a status, not an exception
        return stop.code if isinstance(stop.code, int) else 2
    try:
        if args.command == "zoo":
            print(_zoo_listing(args.names))
            return 0
        if args.command == "benchmark":
            return benchmark.main(args)
        if args.command == "erf":
            return erf_cli.main(args)
        if args.command == "advise":
            return advise_cli.main(args)
        if args.command == "compute-rf":
            sys.stdout.write(compute_rf.main(args))
            return 0
        _check_outputs(args)
        _check_applicable(args)
        model = args.model
        torch_options: dict[str, Any] = {}
        if _is_factory(model):
            model = _torch_model(model, args.kwargs)
            torch_options["capture"] = args.capture or "auto"
        analysis = receptive_field(model, _input_request(args, _is_factory(args.model)),
                                   input=args.input_node, output=args.output_node,
                                   stop_propagation=args.stop_propagation,
                                   unknown_policy=args.unknown_policy, **torch_options)
        check_prefixes(list(analysis.graph.nodes), args.stop_propagation, "--stop-propagation")
        names = None if args.all else analysis.ancestor_names(analysis.output_name)
        chunks = _render(analysis, names, args.format, args.verdicts, args.pointwise)
        files = _files(analysis, args)  # every file made before any is written
        for what, path, data in files:
            _write(what, path, data)
        _print(chunks)
        for what, path, _ in files:  # on stderr: stdout stays the table or the JSON
            print(f"foveal: wrote the {what} to {path}", file=sys.stderr)
        for note in _report_notes() if args.report else ():
            print(f"foveal: note: {note}", file=sys.stderr)
        return 0
    except FovealError as error:
        return print_error(error)
    except BrokenPipeError:
        return 0


def _zoo_listing(names_only: bool) -> str:
    names = zoo.names()
    if names_only:
        return "\n".join(names)
    width = max(map(len, names))
    return "\n".join(f"{name:<{width}}  {zoo.entry(name).describe()}" for name in names)


def _check_outputs(args: argparse.Namespace) -> None:
    """Reject a bad flag or output path before a possibly long analysis."""
    if args.verdicts and args.format not in ("table", "json"):
        raise FovealError(f"--verdicts works with --format table or json, not {args.format}")
    if args.graph:
        from .drawing import FORMATS as DRAW_FORMATS

        if Path(args.graph).suffix.lower().lstrip(".") not in DRAW_FORMATS:
            raise FovealError(f"cannot draw to {args.graph!r}: --graph takes the format from the suffix, "
                              f"one of .{', .'.join(DRAW_FORMATS)}")
    if args.image and not args.report:
        raise FovealError("--image is the picture of the HTML report: it applies with --report PATH")
    if args.report and Path(args.report).suffix.lower() not in REPORT_SUFFIXES:
        raise FovealError(f"the report is HTML: give --report a path ending in .html, not {args.report!r}")
    for flag, path in (("--graph", args.graph), ("--report", args.report)):
        folder = Path(path).parent if path else None
        if folder is not None and not folder.is_dir():
            raise FovealError(f"cannot write {flag} {path!r}: folder {str(folder)!r} does not exist")


def _check_applicable(args: argparse.Namespace) -> None:
    """Reject options that would do nothing for this model, rather than ignore them silently."""
    if _is_factory(args.model):
        return
    for flag, given in (("--kwargs", args.kwargs is not None), ("--capture", args.capture is not None)):
        if given:
            raise FovealError(f"{flag} applies to a PyTorch factory (pkg.module:factory or "
                              f"torchvision:<name>), not to {args.model!r}")


def _report_notes() -> list[str]:
    """What the HTML report lacks on this machine, said on the terminal too (the report says it
    inside, where nobody looks before opening it)."""
    from .html_report import missing_parts

    return missing_parts()


def _print(chunks: Iterable[str]) -> None:
    """Write the pieces of an output in blocks of about 64 KB (a million small writes cost seconds)."""
    block: list[str] = []
    size = 0
    for chunk in chunks:
        block.append(chunk)
        size += len(chunk)
        if size > 1 << 16:
            sys.stdout.write("".join(block))
            block, size = [], 0
    sys.stdout.write("".join(block))


def entry() -> NoReturn:
    """The `foveal` command: main(), then the process ends at once. An interpreter's orderly exit
    frees every object one by one, seconds on a graph of a million nodes, for nothing."""
    status = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(status)


def _files(analysis: Analysis, args: argparse.Namespace) -> list[tuple[str, str, bytes]]:
    """(what, path, bytes) of the --graph and --report files, rendered in memory, so that a
    failure in either leaves no file behind."""
    files = []
    if args.graph:
        from .drawing import drawn

        files.append(("graph", args.graph, drawn(analysis, args.graph)))
    if args.report:
        from .html_report import report_html

        files.append(("report", args.report, report_html(analysis, image=args.image).encode("utf-8")))
    return files


def _write(what: str, path: str, data: bytes) -> None:
    """Write a file whole (through a temporary file), an OS error (permissions, full disk) in
    one line."""
    from .drawing import atomic_write

    try:
        atomic_write(Path(path), data)
    except OSError as error:
        raise FovealError(f"cannot write the {what} to {path!r}: {error.strerror or error}") from None


def _render(analysis: Analysis, names: list[str] | None, format: str, verdicts: bool,
            pointwise: bool = False) -> Iterator[str]:
    """The analysis in `format`, piece by piece; with `verdicts`, the verdicts and the
    input-resolution range added. The verdicts are judged before the first piece is made. The
    table opens with the summary; the table and markdown hide rows that change nothing unless
    `pointwise` (machine formats, JSON and CSV, keep every row)."""
    from . import report

    if verdicts:
        return iter([*report.iter_with_verdicts(analysis, names, format, pointwise=pointwise), "\n"])
    if format == "table":
        return (line + "\n" for line in report.iter_table(analysis, names, summary=True, pointwise=pointwise))
    if format == "markdown":
        return report.iter_markdown(analysis, names, pointwise=pointwise)
    return {"json": report.iter_json, "csv": report.iter_csv}[format](analysis, names)


def _is_factory(model: str) -> bool:
    module, sep, attr = model.partition(":")
    return bool(sep) and attr.isidentifier() and all(p.isidentifier() for p in module.split("."))


def _torch_model(spec: str, kwargs_text: str | None) -> Any:
    try:
        from .pytorch.load import build
    except ImportError as exc:
        raise FovealError(f"{spec} names a PyTorch model, but torch is not importable ({exc}); "
                          f"install foveal[torch]") from None
    return build(spec, json_kwargs(kwargs_text))


def _input_request(args: argparse.Namespace, factory: bool) -> InputRequest:
    """--input-size (spatial sizes) or --input-shape (the full shape, in the model's layout).
    A PyTorch factory runs on a tensor, so its --input-size N means an RGB image (1, 3, N, N)."""
    size, shape = args.input_size, args.input_shape
    if size is not None and shape is not None:
        raise FovealError("give --input-size or --input-shape, not both")
    if shape is not None:
        return parse(shape, Given.FULL)
    if size is None:
        if factory:
            raise FovealError("a PyTorch model needs --input-shape, e.g. 1,3,224,224 (or 1,16000 for a "
                              "raw signal)")
        return parse(None)
    if factory:
        return parse((1, 3, *((size[0],) * 2 if len(size) == 1 else size)), Given.FULL)
    if args.model.lower().endswith(".pt2"):
        raise FovealError("a .pt2 program takes --input-shape N,C,H[,W..], not --input-size")
    return parse(size[0] if len(size) == 1 else size, Given.SPATIAL)


if __name__ == "__main__":
    entry()
