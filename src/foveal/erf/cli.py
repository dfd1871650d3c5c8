"""`foveal erf`: the ERF of one layer of a model named on the command line, as numbers and a plot.

The model is a zoo name, `torchvision:<name>` or `pkg.module:factory` (a torch.nn.Module, or a Keras 3 model
on the torch backend), built on the CPU: with random weights unless the factory loads some
(`--kwargs '{"weights": "DEFAULT"}'`). The numbers go to stdout, a progress bar to stderr when
it is a terminal, the plot to --out. Errors are one line `foveal: error: ...` and status 2.
This module imports neither torch nor matplotlib until the command runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from ..cli_args import json_kwargs, print_error, sizes
from ..errors import FovealError
from ..zoo import factory as zoo_factory

PLOT_SUFFIXES = (".png", ".svg", ".pdf")
DEFAULT_SHAPE = (1, 3, 224, 224)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """The `erf` sub-command, on the subparsers object of foveal's parser."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "erf", help="effective receptive field of a layer (gradient of its centre feature)",
        description="Effective receptive field of one layer: the input gradient of its centre feature, "
                    "averaged over noise or images, in Luo et al.'s protocol (random weights) or "
                    "RepLKNet's (the model's weights, log-normalised map, area ratios). See docs/erf.md.")
    parser.add_argument("model", help="a zoo model, torchvision:<name> or pkg.module:factory, built on "
                                      "the CPU (random weights unless the factory loads some)")
    parser.add_argument("--layer", required=True, help="module path (named_modules()) or Keras layer name")
    parser.add_argument("--images", default=None, metavar="DIR",
                        help="average over the images in DIR (subfolders too) instead of noise")
    parser.add_argument("--input-size", type=sizes, default=None, metavar="N[,N..]",
                        help="spatial input size (one number for H and W, or one per axis); default 224")
    parser.add_argument("--input-shape", type=sizes, default=None, metavar="N,C,H[,W..]",
                        help="full input shape (a Keras model: in its own layout)")
    parser.add_argument("--protocol", choices=("luo", "replknet"), default="luo",
                        help="luo: random weights, mean |gradient| (default); replknet: the model's "
                             "weights, log-normalised map and area ratios")
    parser.add_argument("--samples", type=_positive, default=None,
                        help="number of inputs (default: 32 for luo, 50 for replknet)")
    parser.add_argument("--batch-size", type=_positive, default=None,
                        help="inputs per pass (default 4 for luo, one weight draw each; 10 for replknet)")
    parser.add_argument("--seed", type=_natural, default=0, help="seed of the noise and the weight draws")
    parser.add_argument("--reinitialize", action=argparse.BooleanOptionalAction, default=None,
                        help="redraw the weights for every batch (default: yes for luo, no for replknet)")
    parser.add_argument("--mean", type=_floats, default=None, metavar="R,G,B",
                        help="image normalisation mean (default ImageNet's)")
    parser.add_argument("--std", type=_floats, default=None, metavar="R,G,B",
                        help="image normalisation std (default ImageNet's)")
    parser.add_argument("--kwargs", default=None, metavar="JSON",
                        help="keyword arguments for the factory, as a JSON object")
    parser.add_argument("--out", default=None, metavar="PATH",
                        help="write the plot (.png, .svg or .pdf); a 3-D map cannot be plotted")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(args: argparse.Namespace) -> int:
    """Run `foveal erf`. 0: done; 2: an error, told in one line on stderr."""
    try:
        return _main(args)
    except FovealError as error:
        return print_error(error)


def _main(args: argparse.Namespace) -> int:
    _check_paths(args)
    kwargs = json_kwargs(args.kwargs)
    bar = ProgressBar(enabled=not args.quiet)
    bar.status(f"erf: building {args.model} ...")  # importing torch and building take seconds
    try:
        model = build_model(args.model, kwargs)
    except BaseException:
        bar.close()  # the error starts a line of its own
        raise
    from ..keras import is_keras_model
    from . import effective_receptive_field

    keras = is_keras_model(model)
    bar.status(f"erf: preparing {args.layer or 'the model'} ...")
    try:
        result = effective_receptive_field(
            model, args.layer, args.images, input_shape=_input_shape(args, keras), protocol=args.protocol,
            samples=args.samples, batch_size=args.batch_size, reinitialize=args.reinitialize,
            seed=args.seed, mean=args.mean, std=args.std, progress=bar)
    finally:
        bar.close()
    if args.out:
        try:
            result.plot(args.out)
        except OSError as error:
            raise FovealError(f"cannot write the plot to {args.out!r}: {error.strerror or error}") from None
    if args.json:
        data = result.to_dict()
        data["plot"] = args.out
        print(json.dumps(data, indent=2))
    else:
        print(result.summary())
        if args.out:
            print(f"wrote {args.out}")
    return 0


def _check_paths(args: argparse.Namespace) -> None:
    """Fail on a bad output path or a missing image folder before the long computation."""
    if args.out:
        out = Path(args.out)
        if out.suffix.lower() not in PLOT_SUFFIXES:
            raise FovealError(f"cannot plot to {args.out!r}: --out takes the format from the suffix, one of "
                              f"{', '.join(PLOT_SUFFIXES)}")
        folder = out.parent if str(out.parent) else Path(".")
        if not folder.is_dir():
            raise FovealError(f"cannot write --out {args.out!r}: folder {str(folder)!r} does not exist")
    if args.images and not Path(args.images).exists():
        raise FovealError(f"image folder {args.images!r} does not exist")
    if args.input_size is not None and args.input_shape is not None:
        raise FovealError("give --input-size or --input-shape, not both")
    for flag, value in (("--mean", args.mean), ("--std", args.std)):
        if value is not None and not args.images:
            raise FovealError(f"{flag} normalises the images of --images; the noise inputs are not "
                              f"normalised")


def _input_shape(args: argparse.Namespace, keras: bool) -> tuple[int, ...] | None:
    if args.input_shape is not None:
        return tuple(args.input_shape)
    if keras:
        if args.input_size is not None:
            raise FovealError("a Keras model takes --input-shape in its own layout (e.g. 1,224,224,3), or "
                              "uses its declared input size")
        return None
    if args.input_size is None:
        return DEFAULT_SHAPE
    size = args.input_size
    return (1, 3, *(size * 2 if len(size) == 1 else size))


def build_model(spec: str, kwargs: dict[str, Any]) -> Any:
    """`torchvision:<name>` (torchvision.models.get_model), `pkg.module:factory` or a zoo model
    name (rebuilt from its source, with random weights), called on the CPU."""
    from .. import zoo

    if ":" not in spec and zoo.is_zoo_name(spec):
        target, keywords, attributes = zoo_factory(spec)
        model = build_model(target, {**keywords, **kwargs})
        for attribute in attributes:
            model = getattr(model, attribute)
        return model
    module_name, sep, attr = spec.partition(":")
    if not sep or not attr or not module_name:
        if Path(spec).suffix or Path(spec).exists():
            raise FovealError(f"the ERF runs the model on inputs and measures gradients, so MODEL is one it "
                              f"can build with its weights: a zoo model, torchvision:<name> or "
                              f"pkg.module:factory; a file ({spec!r}) is not run (the analytic receptive "
                              f"field of a file: foveal analyze {spec})")
        raise FovealError(f"MODEL is a zoo model, torchvision:<name> or pkg.module:factory, got {spec!r}"
                          f"{zoo.suggest(spec)}")
    factory_args: tuple[str, ...] = ()
    if module_name == "torchvision":
        module_name, factory_args, attr = "torchvision.models", (attr,), "get_model"
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - an import can fail in any way
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise FovealError(f"cannot import {module_name!r} for {spec!r}: {type(error).__name__}: "
                          f"{first_line}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise FovealError(f"{module_name!r} has no callable {attr!r}")
    try:
        return factory(*factory_args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the factory is user code
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise FovealError(f"{spec} failed to build: {type(error).__name__}: {first_line}") from None


class ProgressBar:
    """`erf [#########...........]  12/32 samples`, redrawn in place on stderr when it is a terminal.

    Off a terminal (a log file, a pipe, a test) it writes nothing, so logs hold only the result.
    """

    def __init__(self, stream: TextIO | None = None, width: int = 30, enabled: bool = True) -> None:
        self.stream = stream
        self.width = width
        self.enabled = enabled
        self._drawn = False
        self._width = 0

    def _out(self) -> TextIO:
        return sys.stderr if self.stream is None else self.stream

    def __call__(self, done: int, total: int | None) -> None:
        out = self._out()
        if not self.enabled or not out.isatty():
            return
        if total:
            filled = min(self.width, self.width * done // total)
            bar = "#" * filled + "." * (self.width - filled)
            text = f"erf [{bar}] {done:>{len(str(total))}}/{total} samples"
        else:
            text = f"erf {done} samples"
        self._draw(text)

    def status(self, text: str) -> None:
        """A line such as 'erf: building resnet18 ...' for the silent seconds before the first
        batch; the bar then draws over it. Off a terminal, nothing."""
        out = self._out()
        if not self.enabled or not out.isatty():
            return
        self._draw(text)

    def _draw(self, text: str) -> None:
        out = self._out()
        out.write("\r" + text.ljust(self._width))  # spaces over a longer line drawn before
        out.flush()
        self._width = len(text)
        self._drawn = True

    def close(self) -> None:
        """End the bar's line, so what follows starts on a line of its own."""
        if self._drawn:
            self._out().write("\n")
            self._out().flush()
            self._drawn = False
            self._width = 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _natural(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
