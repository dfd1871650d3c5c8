"""`foveal advise MODEL --input-size N`: the advisor's proposals as a table, optionally in the
HTML report. MODEL is a zoo name (the torchvision module when torch and torchvision import, else
its graph), `torchvision:<name>` or `pkg.module:factory` (built on meta), or any file foveal
analyze reads (graph-only proposals). torch is imported only for a PyTorch model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..cli_args import json_kwargs, print_error, sizes
from ..errors import FovealError


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """The `advise` sub-command, on the subparsers object of foveal's parser."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "advise", help="proposals that make every convolution productive at an input size",
        description="Searches structural edits (stem kernel, downsampling removed, unproductive tail "
                    "dropped, blocks spread over the stages, dilation and large kernels reduced) that "
                    "leave no unproductive convolution at the input size, and prints the most "
                    "efficient and the highest-capacity network found. See docs/advisor.md.")
    parser.add_argument("model", help="a zoo model, torchvision:<name>, pkg.module:factory, or a file "
                                      "foveal analyze reads (graph-only proposals)")
    parser.add_argument("--input-size", type=sizes, required=True, metavar="N[,N..]",
                        help="spatial input size to design for (one number for H and W, or one per axis)")
    parser.add_argument("--goal", choices=("efficiency", "capacity", "both"), default="both",
                        help="which proposals to make (default: both)")
    parser.add_argument("--kwargs", default=None, metavar="JSON",
                        help="keyword arguments for a PyTorch factory, as a JSON object")
    parser.add_argument("--json", action="store_true", help="print the proposals as JSON")
    parser.add_argument("--report", default=None, metavar="PATH",
                        help="also write the HTML report of the model with the proposals and their "
                             "drawings (.html)")
    return parser


def main(args: argparse.Namespace) -> int:
    """Run `foveal advise`. 0: done; 2: an error, told in one line on stderr."""
    try:
        return _main(args)
    except FovealError as error:
        return print_error(error)


def _main(args: argparse.Namespace) -> int:
    from . import advise

    if args.report and Path(args.report).suffix.lower() not in (".html", ".htm"):
        raise FovealError(f"--report writes HTML: {args.report!r} needs the suffix .html")
    model: Any = args.model
    module, sep, attr = model.partition(":")
    if sep and attr.isidentifier() and all(p.isidentifier() for p in module.split(".")):
        try:
            from ..pytorch.load import build
        except ImportError as error:
            raise FovealError(f"{model} names a PyTorch model, but torch is not importable "
                              f"({error})") from None
        model = build(model, json_kwargs(args.kwargs))
    elif args.kwargs:
        raise FovealError("--kwargs is for a PyTorch factory (pkg.module:factory or torchvision:<name>)")
    size = args.input_size
    advice = advise(model, size[0] if len(size) == 1 else size, goal=args.goal)
    if args.report:
        from ..html_report import write_report
        from .report import proposals_section

        write_report(advice.analysis, args.report, title=f"foveal advise: {advice.model}",
                     sections=[proposals_section(advice)])
    print(json.dumps(to_dict(advice), indent=2) if args.json else advice.to_text())
    if args.report:
        print(f"foveal: wrote the report to {args.report}", file=sys.stderr)
    return 0


def to_dict(advice: Any) -> dict[str, Any]:
    """The advice as JSON-ready data (numbers as numbers; modules and graphs left out)."""
    def network(n: Any) -> dict[str, Any]:
        return {"counts": n.counts, "unproductive_convolutions": list(n.unproductive_convs),
                "critical": list(n.critical), "convolutions": n.convolutions,
                "productive_blocks": list(n.productive_blocks), "blocks": n.blocks,
                "input_resolution_range": None if n.resolution_range is None else
                [[_num(v) for v in side] for side in n.resolution_range],
                "flops": n.flops, "parameters": n.parameters, "estimated": n.estimated}

    return {"model": advice.model, "resolution": list(advice.resolution), "needs_change": advice.needs_change,
            "before": network(advice.before), "notes": list(advice.notes),
            "proposals": [{"goals": list(p.goals), "edits": [{"action": e.action, "paths": list(e.paths),
                                                               "words": e.words} for e in p.edits],
                           "after": network(p.after), "flops_ratio": p.flops_ratio(advice.before),
                           "cost_ratio": p.cost_ratio} for p in advice.proposals]}


def _num(value: Any) -> Any:
    return value if isinstance(value, int) else str(value)
