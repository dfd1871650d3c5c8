"""End-to-end time (capture + analysis) of foveal on torchvision classification models.

    python bench/bench_torch.py                 # every model of torchvision.models.list_models
    python bench/bench_torch.py resnet50 densenet201
    python bench/bench_torch.py --capture export resnet50     # the torch.export path

Models are built with meta weights as the CLI builds them (foveal.pytorch.load.build), outside
the timing. A timing is the best of 3 runs of foveal.receptive_field(model, (1, 3, 224, 224))
(299 for Inception-v3). The peak resident memory of the whole process (Python, torch, every
model and every analysis) is printed at the end. Targets: ResNet-50 < 0.5 s, DenseNet-201 < 2 s,
peak memory < 1 GiB.
"""

from __future__ import annotations

import resource
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch_models as TM  # noqa: E402  (the test-only torchvision import helper)

import foveal  # noqa: E402

TARGETS = {"resnet50": 0.5, "densenet201": 2.0}


def main(argv: list[str]) -> int:
    capture = "auto"
    if argv[:1] == ["--capture"]:
        capture, argv = argv[1], argv[2:]
    names = argv
    warnings.filterwarnings("ignore")
    tv = TM.import_torchvision()
    names = names or tv.models.list_models(module=tv.models)
    print(f"{'model':<22} {'nodes':>6} {'seconds':>8}  output status")
    missed = []
    for name in names:
        model = TM.torchvision_model(name)
        size = 299 if name == "inception_v3" else 224
        best, a = None, None
        for _ in range(3):
            t0 = time.perf_counter()
            try:
                a = foveal.receptive_field(model, (1, 3, size, size), unknown_policy="global",
                                           capture=capture)
            except foveal.FovealError as exc:
                print(f"{name:<22} {'-':>6} {'-':>8}  error: {exc}")
                break
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        if best is None or a is None:
            continue
        print(f"{name:<22} {len(a):>6} {best:>8.3f}  {a.output.status}", flush=True)
        if capture != "export" and name in TARGETS and best >= TARGETS[name]:
            missed.append(f"{name} {best:.3f} s (target < {TARGETS[name]} s)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory of this process: {peak:.0f} MiB (target < 1024)")
    print("targets: " + ("all met" if not missed and peak < 1024 else "MISSED " + "; ".join(missed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
