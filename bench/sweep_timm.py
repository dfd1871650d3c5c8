"""Every timm architecture through foveal: exact, bound, refused (with the reason) or error.

    python bench/sweep_timm.py                      # every name of timm.list_models() (2 workers)
    python bench/sweep_timm.py --sample 200         # a seeded sample of names
    python bench/sweep_timm.py swin_tiny_patch4_window7_224 pvt_v2_b0
    python bench/sweep_timm.py --workers 16 --out sweep.jsonl
    python bench/sweep_timm.py --rerun sweep.jsonl --out sweep2.jsonl --markdown docs/timm.md
                                                    # again only the rows that were not exact

Each model is built with pretrained=False on the meta device (no weight is allocated) and its
`forward_features` analysed at the model's default input size (`pretrained_cfg["input_size"]`),
in a worker process with a time limit per model. A row per model goes to --out (JSON lines);
the summary is a table per family (timm's module) and the totals: exact, bound (an honest upper
bound), refused (a FovealError: the reason is its first words), error (any other exception:
a bug) and internal (foveal's size self-check failed: a bug).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import signal
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

LIMIT_S = 300


def _alarm(signum, frame):  # noqa: ARG001
    raise TimeoutError(f"over {LIMIT_S} s")


def analyse(name: str) -> dict:
    """One model's row: name, family, status, reason, seconds."""
    import torch
    import torch_models as TM

    import foveal

    TM.import_torchvision()
    import timm

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    row: dict = {"name": name, "family": "?", "status": "error", "reason": "", "seconds": None}
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(LIMIT_S)
    try:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)
        row["family"] = type(model).__module__.removeprefix("timm.models.")
        size = tuple(model.pretrained_cfg.get("input_size") or (3, 224, 224))

        class Features(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return self.inner.forward_features(x)

        start = time.perf_counter()
        analysis = foveal.receptive_field(Features(model), (1, *size))
        row["seconds"] = round(time.perf_counter() - start, 3)
        statuses = {r.status for r in analysis.outputs} or {analysis.output.status}
        row["status"] = "exact" if statuses == {"exact"} else "bound" if "unavailable" not in statuses \
            else "unavailable"
        row["reason"] = "; ".join(analysis.output.reasons)[:200]
    except foveal.FovealError as exc:
        text = str(exc)
        row["status"] = "internal" if text.startswith("internal:") else "refused"
        row["reason"] = text[:300]
    except Exception as exc:  # noqa: BLE001 - a sweep records every failure
        row["status"] = "timeout" if isinstance(exc, TimeoutError) else "error"
        row["reason"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    finally:
        signal.alarm(0)
    return row


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--sample", type=int, default=None)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=None, help="JSON lines, a row per model")
    parser.add_argument("--rerun", default=None, metavar="JSONL",
                        help="an earlier --out: keep its exact rows, analyse the others again")
    parser.add_argument("--markdown", default=None, help="write the summary as Markdown here")
    args = parser.parse_args(argv)
    import torch_models as TM

    TM.import_torchvision()  # timm imports torchvision, whose wheel here needs the shim first
    import timm

    names = args.names or timm.list_models()
    if args.sample:
        names = sorted(random.Random(args.seed).sample(names, min(args.sample, len(names))))
    rows = []
    out = open(args.out, "w", encoding="utf-8") if args.out else None  # noqa: SIM115
    if args.rerun:
        earlier = {row["name"]: row for line in Path(args.rerun).read_text().splitlines()
                   if (row := json.loads(line))}
        rows = [row for row in earlier.values() if row["status"] == "exact" and row["name"] in names]
        names = [name for name in names if name not in {row["name"] for row in rows}]
        for row in rows:
            if out:
                out.write(json.dumps(row) + "\n")
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.workers, maxtasksperchild=25) as pool:
        for row in pool.imap_unordered(analyse, names):
            rows.append(row)
            if out:
                out.write(json.dumps(row) + "\n")
                out.flush()
            print(f"{row['status']:<11} {row['name']:<48} {row['seconds'] or '':>7} {row['reason'][:100]}",
                  flush=True)
    if out:
        out.close()
    wall = time.perf_counter() - start
    summarise(rows, timm.__version__, wall)
    if args.markdown:
        Path(args.markdown).write_text(markdown(rows, timm.__version__), encoding="utf-8")
    return 0


KINDS = ["exact", "bound", "unavailable", "refused", "internal", "error", "timeout"]


def markdown(rows: list[dict], version: str) -> str:
    """The sweep as docs/timm.md: totals, the families that are not all exact, and every row
    that is not exact with its reason."""
    import torch

    total = Counter(row["status"] for row in rows)
    good = total["exact"] + total["bound"]
    by_family: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        by_family[row["family"]][row["status"]] += 1
    seconds = sorted(row["seconds"] for row in rows if row["seconds"] is not None) or [0.0]
    lines = [
        "# Every timm architecture through foveal",
        "",
        f"`python bench/sweep_timm.py` with timm {version} and torch {torch.__version__}: each of the "
        f"{len(rows)} names of `timm.list_models()` built with `pretrained=False` on the meta device, "
        "its `forward_features` analysed at the model's default input size "
        "(`pretrained_cfg['input_size']`).",
        "",
        "| | models |",
        "|---|---:|",
        *(f"| {kind} | {total[kind]} |" for kind in KINDS if total[kind]),
        f"| **exact or an honest bound** | **{good} / {len(rows)} "
        f"({100 * good / max(len(rows), 1):.1f}%)** |",
        "",
        f"{len(by_family)} families (timm modules). Analysis time per model: median "
        f"{seconds[len(seconds) // 2]:.2f} s, slowest {seconds[-1]:.1f} s "
        "(capture and analysis, one thread; the model's construction not counted).",
        "",
        "## Families that are not all exact",
        "",
        "| family | " + " | ".join(KINDS[:5]) + " |",
        "|---|" + "---:|" * 5,
    ]
    for family in sorted(by_family):
        counts = by_family[family]
        if counts["exact"] != sum(counts.values()):
            lines.append(f"| {family} | " + " | ".join(str(counts[k]) for k in KINDS[:5]) + " |")
    lines += ["", "## Every model that is not exact, and why", "",
              "| model | family | status | reason |", "|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: (r["status"], r["family"], r["name"])):
        if row["status"] != "exact":
            reason = row["reason"].replace("|", "\\|")[:220]
            lines.append(f"| {row['name']} | {row['family']} | {row['status']} | {reason} |")
    return "\n".join(lines) + "\n"


def summarise(rows: list[dict], version: str, wall: float) -> None:
    by_family: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        by_family[row["family"]][row["status"]] += 1
    kinds = KINDS
    print(f"\ntimm {version}: {len(rows)} architectures in {wall:.0f} s")
    print(f"{'family':<28}" + "".join(f"{k:>12}" for k in kinds))
    for family in sorted(by_family):
        print(f"{family:<28}" + "".join(f"{by_family[family][k]:>12}" for k in kinds))
    total = Counter(row["status"] for row in rows)
    print(f"{'total':<28}" + "".join(f"{total[k]:>12}" for k in kinds))
    good = total["exact"] + total["bound"]
    print(f"exact or bound: {good}/{len(rows)} ({100 * good / max(len(rows), 1):.1f}%)")
    reasons = Counter(row["reason"][:70] for row in rows if row["status"] not in ("exact", "bound"))
    print("\nmost common reasons:")
    for reason, count in reasons.most_common(25):
        print(f"{count:>5}  {reason}")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
