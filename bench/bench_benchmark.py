"""Time of `foveal benchmark` over the zoo at one resolution, per model and in total.

    python bench/bench_benchmark.py                    # the whole zoo at 224
    python bench/bench_benchmark.py --resolutions none,224,321
    python bench/bench_benchmark.py resnet50 keras.ResNet50

Each model runs once through foveal.benchmark.run_benchmark (build, capture, analysis, FLOPs),
so a first-time cost (imports, Keras graph building) is included, as a user of the command sees
it; frameworks are imported before the timing. Receptive fields come from the zoo's graphs (the
core alone); where a model's framework is not available here its FLOPs are None, and the reason
is printed once. Prints the last end-point's RF, stride and GFLOPs as a sanity check.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch_models as TM  # noqa: E402  (the test-only torchvision import helper)

from foveal import benchmark  # noqa: E402


def main(argv: list[str]) -> int:
    resolutions: tuple[int | None, ...] = (224,)
    if argv[:1] == ["--resolutions"]:
        resolutions, argv = benchmark._resolutions(argv[1]), argv[2:]
    warnings.filterwarnings("ignore")
    TM.import_torchvision()
    entries = benchmark.resolve(argv or None)
    for framework in dict.fromkeys(e.framework for e in entries):
        why = benchmark.available(framework)
        if why:
            print(f"no FLOPs for {framework} models: {why}")
    print(f"{'model':<22} {'resolution':>10} {'seconds':>8}  last end-point: RF / stride / GFLOPs")
    total = 0.0
    for entry in entries:
        t0 = time.perf_counter()
        rows = benchmark.run_benchmark([entry], resolutions)
        elapsed = time.perf_counter() - t0
        total += elapsed
        for resolution in resolutions:
            last = [r for r in rows if r.resolution == resolution][-1]
            gflops = "None" if last.gflops is None else f"{last.gflops:.3f}"
            print(f"{entry.name:<22} {benchmark._text(resolution):>10} {elapsed:8.3f}  {last.end_point}: "
                  f"{benchmark._cell(last.size, last.is_global)} / {benchmark._cell(last.stride)} / "
                  f"{gflops} [{last.status}]")
    print(f"total {total:.2f} s for {len(entries)} models x {len(resolutions)} resolution(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
