"""End-to-end time of foveal on an ONNX file: reading the file, shape inference and analysis.

    python bench/bench_onnx.py                       # ResNet-50 at 224, legacy exporter
    python bench/bench_onnx.py --model densenet201 --runs 3
    python bench/bench_onnx.py --dynamo              # the dynamo exporter's graph instead

The torchvision model (weights=None, random weights) is exported once to a temporary .onnx file
with the weights embedded (ResNet-50: ~100 MB), outside the timing. A timing is
foveal.receptive_field(path, size) from the path, best and median of --runs. In the same run, for
scale: the PyTorch front-end on the same module (foveal.receptive_field(module, (1, 3, size,
size)), capture on meta tensors plus analysis) and onnx.load(path) alone, the floor for any tool
that reads the whole file. Target (the ONNX front-end's issue): ResNet-50 < 0.3 s end to end.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch_models as TM  # noqa: E402  (the test-only torchvision import helper)

import foveal  # noqa: E402

TARGETS = {"resnet50": 0.3}


def timings(fn, runs: int) -> tuple[float, float, object]:
    """(best, median, last result) of `runs` calls."""
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), result


def export(module, size: int, path: Path, dynamo: bool) -> None:
    import torch

    x = torch.zeros(1, 3, size, size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if dynamo:
            with contextlib.redirect_stdout(io.StringIO()):
                program = torch.onnx.export(module, (x,), dynamo=True, verbose=False)
            program.save(str(path), external_data=False)
        else:
            torch.onnx.export(module, (x,), str(path), dynamo=False)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet50", help="a torchvision classifier (default resnet50)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dynamo", action="store_true", help="export with torch.onnx's dynamo exporter")
    args = parser.parse_args(argv)

    tv = TM.import_torchvision()
    module = tv.models.get_model(args.model, weights=None).eval()
    exporter = "dynamo" if args.dynamo else "legacy TorchScript"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{args.model}.onnx"
        t0 = time.perf_counter()
        export(module, args.size, path, args.dynamo)
        print(f"{args.model} exported ({exporter}) in {time.perf_counter() - t0:.1f} s: "
              f"{path.stat().st_size / 2**20:.0f} MiB, not timed")

        best, median, a = timings(lambda: foveal.receptive_field(path, args.size), args.runs)
        out = a.output  # type: ignore[attr-defined]
        print(f"foveal ONNX      best {best:.3f} s  median {median:.3f} s  ({len(a)} nodes, output "  # type: ignore[arg-type]
              f"{out.name!r} {out.status}, rf {out.size})")

        shape = (1, 3, args.size, args.size)
        t_best, t_median, ta = timings(lambda: foveal.receptive_field(module, shape), args.runs)
        print(f"foveal PyTorch   best {t_best:.3f} s  median {t_median:.3f} s  ({len(ta)} nodes, "  # type: ignore[arg-type]
              f"output rf {ta.output.size})")  # type: ignore[attr-defined]
        print(f"ratio ONNX / PyTorch front-end (best): {best / t_best:.2f}")
        try:
            import onnx
        except ImportError:
            print("onnx.load: onnx not importable, no floor")
        else:
            l_best, l_median, _ = timings(lambda: onnx.load(str(path)), args.runs)
            print(f"onnx.load alone  best {l_best:.3f} s  median {l_median:.3f} s  "
                  f"(foveal / onnx.load: {best / l_best:.2f})")

    target = TARGETS.get(args.model)
    if target is None:
        print(f"target: none for {args.model}")
    else:
        print(f"target: {args.model} < {target} s end to end: "
              f"{'met' if best < target else 'MISSED'} ({best:.3f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
