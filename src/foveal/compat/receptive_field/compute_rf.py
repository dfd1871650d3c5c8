"""`foveal compute-rf`: the reference's compute_rf.py, writing the same six-line file.

It takes a binary .pb as well as a .pbtxt, and adds --input_resolution H,W and
--stop_propagation, which the reference's script lacked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

LINES = ("Receptive field size (horizontal) = {}", "Receptive field size (vertical) = {}",
         "Effective stride (horizontal) = {}", "Effective stride (vertical) = {}",
         "Effective padding (horizontal) = {}", "Effective padding (vertical) = {}")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("compute-rf", help="the receptive_field library's compute_rf.py: RF "
                                 "size, effective stride and padding of one GraphDef node, as six lines")
    parser.add_argument("--graph_path", required=True,
                        help="GraphDef file (.pbtxt text or .pb binary, either gzipped too)")
    parser.add_argument("--output_path", default="", help="write the six lines here (and print them)")
    parser.add_argument("--input_node", required=True, help="name of the input node, e.g. input_image")
    parser.add_argument("--output_node", required=True, help="name of the node whose features to measure")
    parser.add_argument("--input_resolution", default=None, metavar="H,W",
                        help="input height and width; without it SAME paddings may be None")
    parser.add_argument("--stop_propagation", action="append", default=[], metavar="PREFIX",
                        help="cut edges from nodes whose name starts with PREFIX (repeatable)")


def _resolution(text: str | None) -> list[int] | None:
    from ...errors import FovealError
    from ...limits import MAX_AXIS_LENGTH, LimitError

    if text is None:
        return None
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise FovealError(f"--input_resolution takes H,W (integers), got {text!r}") from None
    if len(sizes) != 2 or min(sizes) < 1:
        raise FovealError(f"--input_resolution takes two positive sizes H,W, got {text!r}")
    if max(sizes) > MAX_AXIS_LENGTH:
        raise LimitError(f"--input_resolution {max(sizes):,} is over foveal's limit of {MAX_AXIS_LENGTH:,}")
    return sizes


def main(args: argparse.Namespace) -> str:
    """The six lines; raises FovealError (one line) for every input or graph problem."""
    from ...drawing import atomic_write
    from ...errors import FovealError, check_prefixes
    from . import require

    require()
    from ...tensorflow.load import load_graph_def
    from .receptive_field_computation import compute_receptive_field_from_graph_def

    path = Path(args.graph_path)
    suffix = (path.with_suffix("") if path.suffix.lower() == ".gz" else path).suffix.lower()
    if suffix not in (".pb", ".pbtxt"):  # gzipped too, as `foveal analyze` reads them
        raise FovealError(f"--graph_path takes a .pb or .pbtxt GraphDef (or .pb.gz, .pbtxt.gz), "
                          f"not {str(path)!r}")
    try:
        graph_def = load_graph_def(path)
        check_prefixes([n.name for n in graph_def.node], args.stop_propagation, "--stop_propagation")
        field = compute_receptive_field_from_graph_def(
            graph_def, args.input_node, args.output_node, args.stop_propagation or None,
            _resolution(args.input_resolution))
    except FovealError:
        raise
    except ValueError as error:
        raise FovealError(str(error)) from None
    text = "\n".join(line.format(value) for line, value in zip(LINES, field)) + "\n"
    if args.output_path:
        atomic_write(Path(args.output_path), text.encode())
    return text


if __name__ == "__main__":  # python -m foveal.compat.receptive_field.compute_rf, as the original script
    from ...cli import main as _cli

    raise SystemExit(_cli(["compute-rf", *sys.argv[1:]]))
