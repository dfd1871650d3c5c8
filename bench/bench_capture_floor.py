"""foveal's PyTorch capture + analysis against the capture floor: torch.fx tracing of the same model.

    python bench/bench_capture_floor.py                  # the models of issue 20
    python bench/bench_capture_floor.py tv:resnet50 timm:resmlp_36_224 --repeats 5
    python bench/bench_capture_floor.py --strict         # exit 1 when a ratio is over 1.5

foveal traces a module with torch.fx, gives every node its output size (`pytorch/sizes.py`'s rules,
PyTorch's meta kernels where no rule applies), converts the graph and analyses it. Tracing alone
cannot be avoided, so `torch.fx.symbolic_trace(model)` of the same meta-device model is the floor,
and the ratio foveal / floor says what the rest costs. A model plain fx cannot trace (NASNet-A-large:
timm's TensorFlow-'same' layers take max() of traced sizes) is floored by fx with the library's own
leaf modules and wrapped functions (timm's `get_notrace_modules` / `get_notrace_functions`, as
timm traces its models for feature extraction); the row says so.

Models are built on the meta device outside the timing (torchvision through foveal's loader,
timm through `tests/torch_models.py`'s shim), at their default input size (timm's
`pretrained_cfg["input_size"]`, 224 for torchvision). One thread (`torch.set_num_threads(1)`);
per model an untimed run of each, then `--repeats` (3) runs of each, interleaved; the medians are
shown. Timings on a shared machine move by 20 % or more: compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch  # noqa: E402
import torch_models as TM  # noqa: E402  (the test-only torchvision / timm import helper)

import foveal  # noqa: E402

MODELS = ("tv:resnet50", "tv:efficientnet_b0", "tv:convnext_tiny", "tv:swin_t", "tv:maxvit_t",
          "timm:fastvit_ma36", "timm:nasnetalarge", "timm:resmlp_36_224")
LIMIT = 1.5


def build(spec: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """`tv:<name>` or `timm:<name>`: the model on the meta device, in eval mode, and its input
    shape."""
    kind, _, name = spec.partition(":")
    if kind == "tv":
        return TM.torchvision_model(name), (1, 3, 224, 224)
    if kind == "timm":
        timm = TM.import_timm()
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False).eval()
        return model, (1, *model.pretrained_cfg.get("input_size", (3, 224, 224)))
    raise SystemExit(f"{spec!r}: give tv:<torchvision name> or timm:<timm name>")


def floor_of(model: torch.nn.Module) -> tuple[Callable[[], Any], str]:
    """The fx trace that is the floor, and how it traces: plain symbolic_trace, or (when that
    fails) fx with timm's leaf modules and wrapped functions."""
    try:
        torch.fx.symbolic_trace(model)
        return (lambda: torch.fx.symbolic_trace(model)), "symbolic_trace"
    except Exception:  # noqa: BLE001 - fx fails in many ways; the library's own tracing next
        pass
    import timm.layers._fx as timm_fx

    leaves = tuple(timm_fx.get_notrace_modules())
    wrapped = tuple(timm_fx.get_notrace_functions())

    class LibraryTracer(torch.fx.Tracer):
        def is_leaf_module(self, m: torch.nn.Module, name: str) -> bool:
            return isinstance(m, leaves) or super().is_leaf_module(m, name)

    def trace() -> torch.fx.GraphModule:  # as symbolic_trace does: trace, then the GraphModule
        tracer = LibraryTracer(autowrap_functions=wrapped)
        graph = tracer.trace(model)
        return torch.fx.GraphModule(tracer.root, graph, type(model).__name__)

    trace()
    return trace, "fx + timm's leaves"


def seconds(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--strict", action="store_true", help=f"exit 1 when a ratio is over {LIMIT}")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    print(f"one thread, median of {args.repeats}; torch {torch.__version__}")
    print(f"{'model':<24} {'input':>9} {'fx nodes':>8} {'floor s':>8} {'foveal s':>9} {'ratio':>6}  floor")
    over = []
    for spec in args.models:
        model, shape = build(spec)
        floor, how = floor_of(model)
        nodes = len(floor().graph.nodes)

        def ours(model: torch.nn.Module = model, shape: tuple[int, ...] = shape) -> Any:
            return foveal.receptive_field(model, shape)

        status = ours().output.status
        floors, foveals = [], []
        for _ in range(args.repeats):  # interleaved, so that a busy spell slows both
            floors.append(seconds(floor))
            foveals.append(seconds(ours))
        floor_s, ours_s = statistics.median(floors), statistics.median(foveals)
        ratio = ours_s / floor_s
        mark = "" if ratio <= LIMIT else "  over"
        size = "x".join(map(str, shape[2:]))
        print(f"{spec:<24} {size:>9} {nodes:>8} {floor_s:>8.3f} {ours_s:>9.3f} {ratio:>6.2f}  {how}"
              f" ({status}){mark}", flush=True)
        if ratio > LIMIT:
            over.append(spec)
    if over:
        print(f"over {LIMIT}x the floor: {', '.join(over)}")
    return 1 if over and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
