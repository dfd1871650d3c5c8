"""Time of the verdict pass, the input-resolution range and the drawing, against rfa_toolbox.

    python bench/bench_productivity.py                    # resnet152 densenet201 resnet50 efficientnet_b0
    python bench/bench_productivity.py resnet18 --res 16

foveal: the model is captured once at the resolution (not timed); "verdicts" is
`analysis.verdicts()` on a fresh analysis of the captured graph (best of 5), "range" is
`input_resolution_range()`, "svg" is the drawing made and piped through Graphviz's dot.
rfa_toolbox (when importable; 1.7 needs `collections.Sequence`, given back here): its graph is
built by its own tracer outside the timing, then `obtain_border_layers` (its verdict pass),
`input_resolution_range`, and `visualize_architecture(...)` piped through dot are timed the same
way (once; a drawing that takes dot more than 2 minutes shows as inf).
Targets: verdicts of ResNet-152 < 50 ms, its SVG < 5 s.
"""

from __future__ import annotations

import collections
import collections.abc
import math
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch_models as TM  # noqa: E402  (the test-only torchvision import helper)

import foveal  # noqa: E402
from foveal.drawing import analysis_dot, pipe  # noqa: E402

PEER_SVG_LIMIT = 120  # seconds; a slower peer drawing shows as inf
TARGETS = {("resnet152", "verdicts"): 0.05, ("resnet152", "svg"): 5.0}


def best(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def ours(name: str, res: int) -> dict[str, float]:
    model = TM.torchvision_model(name)
    graph = foveal.receptive_field(model, (1, 3, res, res)).graph

    def verdicts() -> None:
        fresh = foveal.receptive_field(graph, (res, res))
        t0 = time.perf_counter()
        fresh.verdicts()
        timed.append(time.perf_counter() - t0)

    timed: list[float] = []
    for _ in range(5):
        verdicts()
    a = foveal.receptive_field(graph, (res, res))
    return {"verdicts": min(timed), "range": best(a.input_resolution_range),
            "svg": best(lambda: pipe(analysis_dot(a), "svg"), 2)}


def rfa_toolbox_module():
    collections.Sequence = collections.abc.Sequence  # type: ignore[attr-defined]
    try:
        import rfa_toolbox
        from rfa_toolbox.utils.graph_utils import obtain_border_layers
    except Exception as exc:  # noqa: BLE001 - any failure means: no peer in this run
        print(f"rfa_toolbox not available ({exc}); foveal only")
        return None
    return rfa_toolbox, obtain_border_layers


def theirs(peer, name: str, res: int) -> dict[str, float]:
    rfa, obtain_border_layers = peer
    model = getattr(TM.import_torchvision().models, name)()
    graph = rfa.create_graph_from_pytorch_model(model)
    out = {"verdicts": best(lambda: obtain_border_layers(graph, res)),
           "range": best(lambda: rfa.input_resolution_range(graph))}
    t0 = time.perf_counter()
    source = rfa.visualize_architecture(graph, name, input_res=res).source
    try:  # rfa_toolbox draws every layer: dot may take minutes on big nets
        done = subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True,
                              timeout=PEER_SVG_LIMIT, check=False)
        out["svg"] = time.perf_counter() - t0 if done.returncode == 0 else math.nan
        if done.returncode:
            print(f"rfa_toolbox's drawing of {name} fails in dot: {done.stderr.decode()[:200]}")
    except subprocess.TimeoutExpired:
        out["svg"] = math.inf
    return out


def main(argv: list[str]) -> int:
    res = 32
    if "--res" in argv:
        i = argv.index("--res")
        res, argv = int(argv[i + 1]), argv[:i] + argv[i + 2:]
    names = argv or ["resnet152", "densenet201", "resnet50", "efficientnet_b0"]
    warnings.filterwarnings("ignore")
    peer = rfa_toolbox_module()
    print(f"at {res}x{res}; seconds (foveal / rfa_toolbox = ratio)")
    print(f"{'model':<18} {'verdicts':>28} {'range':>28} {'svg':>28}")
    missed = []
    for name in names:
        mine = ours(name, res)
        other = theirs(peer, name, res) if peer else {}
        cells = []
        for key in ("verdicts", "range", "svg"):
            cell = f"{mine[key]:.4f}"
            if key in other:
                cell += f" / {other[key]:.4f} = {mine[key] / other[key]:.2f}"
            cells.append(f"{cell:>28}")
            target = TARGETS.get((name, key))
            if target and mine[key] >= target:
                missed.append(f"{name} {key} {mine[key]:.3f} s (target < {target} s)")
        print(f"{name:<18} {''.join(cells)}", flush=True)
    for line in missed:
        print("missed:", line)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
