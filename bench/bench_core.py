"""Speed benchmark of foveal's one-pass engine on synthetic graphs.

    python bench/bench_core.py              # 10^4, 10^5 and 10^6 nodes (3 to 5 minutes)
    python bench/bench_core.py --quick      # skip 10^6
    python bench/bench_core.py --profile    # cProfile of the analysis of residual 10^5 only

Build (Graph construction) and analysis (`foveal.receptive_field(g)` plus reading size, size_min
and size_max of the output node) are timed separately; nodes/s is N / analysis time. The speed
target is measured on the residual chain of 100,001 nodes (`synthetic.residual(100_001)`), with
and without an input shape; linearity is time(10^6) / time(10^5) per kind. Each run
builds a fresh graph and analyses it once; a timing is the best of 3 runs (10^4, 10^5) or of
--large-runs runs (10^6; default 3, as at the smaller sizes: fewer runs there would
bias the scaling ratio upwards). The cyclic garbage collector is left on, as a user would have
it, unless --no-gc is given (then it is off during timed regions).

To time another version of foveal (a commit, a patched copy), put its src first on the path:
    PYTHONPATH=/path/to/other/src python bench/bench_core.py --quick
The header says which copy was imported.

Correctness is checked on every graph against an independent path DP (size_min / size_max) and,
for the adversarial K-stage graphs, against the closed form min = 1, max = 1 + sum 2**i = 2**K
(K <= 40: the largest kernel, 2**(K-1) + 1, must stay within foveal's parameter limit).

If rfa_toolbox is importable (see bench/README.md), the same graphs are also run through its
EnrichedNetworkNode for a comparison in the same process.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic as S  # noqa: E402

import foveal  # noqa: E402
from foveal import Graph, add, conv  # noqa: E402
from foveal import ops as O  # noqa: E402

TARGET_NODES = 100_001  # the residual chain of the speed target
TARGET_NODES_PER_S = 1_000_000  # on it, analysis only, with and without input_shape
TARGET_INPUT = 224  # the input size of the "with input_shape" analysis (5 stride-2 blocks: 7)
TARGET_SCALING = 11.0  # time(10^6) / time(10^5)
ADVERSARIAL_STAGES = [16, 32, 40]  # 40: kernel 2**39 + 1, the largest within MAX_PARAMETER
TARGET_ADVERSARIAL_K = 40
TARGET_ADVERSARIAL_S = 1.0  # well under a second

USE_GC = True
FAILURES: list[str] = []


# -- timing helpers ---------------------------------------------------------------------------

def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """Wall time of fn(*args), with the collector as configured; collects garbage first, untimed."""
    gc.collect()
    if not USE_GC:
        gc.disable()
    try:
        t0 = time.perf_counter()
        result = fn(*args)
        dt = time.perf_counter() - t0
    finally:
        gc.enable()
    return dt, result


def analyse(g: Graph, output: str, input_shape: int | None = None):
    """receptive_field over the whole graph, then the lazily computed path range of the output."""
    t0 = time.perf_counter()
    a = foveal.receptive_field(g, input_shape)
    t1 = time.perf_counter()
    r = a[output]
    values = (r.size, r.size_min, r.size_max)
    t2 = time.perf_counter()
    return a, values, t1 - t0, t2 - t1


def build_and_analyse(make: Callable[[], tuple[Graph, str]], runs: int,
                      input_shape: int | None = None):
    """Best of `runs` (build, analysis) pairs, each analysis on a freshly built graph.

    A fresh graph per run keeps any per-graph caching inside foveal (a stored topological
    order, say) from making the repeated analyses cheaper than a user's first one.
    Returns (build s, analysis s, (size, size_min, size_max), touch s, graph, output).
    """
    best_build = best_total = None
    g = out = values = best_touch = None
    for _ in range(runs):
        g = None  # free the previous copy first
        dt, (g, out) = timed(make)
        best_build = dt if best_build is None else min(best_build, dt)
        total, (a, values, _engine, touch) = timed(analyse, g, out, input_shape)
        del a
        if best_total is None or total < best_total:
            best_total, best_touch = total, touch
    gc.collect()
    return best_build, best_total, values, best_touch, g, out


def check(label: str, ok: bool, detail: str) -> str:
    if not ok:
        FAILURES.append(f"{label}: {detail}")
    return "ok" if ok else f"FAIL ({detail})"


def fmt_rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>11,.0f}"


# -- the sized graphs -------------------------------------------------------------------------

def bench_sized(sizes: list[int], large_runs: int) -> dict[tuple[str, int], float]:
    print("\n== sized graphs: build vs analysis ==")
    print(f"{'kind':<9} {'N':>9} {'edges':>9} {'build s':>9} {'analysis s':>11} {'nodes/s':>11} "
          f"{'touch ms':>9} {'runs':>4}  size / size_min / size_max (axis H) vs path DP")
    times: dict[tuple[str, int], float] = {}
    for kind, make in S.SIZED.items():
        for n in sizes:
            runs = 3 if n <= 100_000 else large_runs
            build_s, total, (size, smin, smax), touch, g, out = build_and_analyse(
                partial(make, n), runs)
            assert len(g) == n, (kind, n, len(g))
            edges = S.edge_count(g)
            times[(kind, n)] = total
            ref = S.reference_range(g, out)
            got = (smin[0], smax[0])
            # every path of these generators is centred the same way, so the hull (size) is the
            # largest path, and both axes agree
            ok = got == ref and size[0] == ref[1] and size[0] == size[1] and smin[0] == smin[1] \
                and smax[0] == smax[1]
            verdict = check(f"{kind} {n}", ok, f"got size {size[0]}, range {got}, DP {ref}")
            print(f"{kind:<9} {n:>9,} {edges:>9,} {build_s:>9.3f} {total:>11.3f} "
                  f"{fmt_rate(n, total)} {touch * 1e3:>9.3f} {runs:>4}  "
                  f"{size[0]} / {smin[0]} / {smax[0]}: {verdict}", flush=True)
            del g
            gc.collect()
    return times


def scaling(times: dict[tuple[str, int], float], sizes: list[int]) -> None:
    if 10**6 not in sizes or 10**5 not in sizes:
        print("\n(scaling time(10^6)/time(10^5) skipped: needs both sizes; run without --quick)")
        return
    print("\n== scaling of the analysis time ==")
    print(f"{'kind':<9} {'t(10^5) s':>10} {'t(10^6) s':>10} {'ratio':>7}  target <= {TARGET_SCALING:g}")
    for kind in S.SIZED:
        small, large = times[(kind, 10**5)], times[(kind, 10**6)]
        ratio = large / small
        verdict = "met" if ratio <= TARGET_SCALING else "MISSED"
        print(f"{kind:<9} {small:>10.3f} {large:>10.3f} {ratio:>7.2f}  {verdict}")


# -- the speed target: the residual chain of 100,001 nodes ------------------------------------

def bench_target(runs: int) -> dict[str, float]:
    """Analysis of synthetic.residual(TARGET_NODES), without and with input_shape (each run on a
    freshly built graph), checked against the path DP and, with sizes, the output length."""
    print(f"\n== speed target: the residual chain of {TARGET_NODES:,} nodes "
          f"(target >= {TARGET_NODES_PER_S:,} nodes/s, analysis only) ==")
    print(f"{'input_shape':<12} {'build s':>9} {'analysis s':>11} {'nodes/s':>11} {'runs':>4}  "
          f"size_min / size_max, output shape")
    times: dict[str, float] = {}
    for shape in (None, TARGET_INPUT):
        build_s, total, (_size, smin, smax), _t, g, out = build_and_analyse(
            partial(S.residual, TARGET_NODES), runs, shape)
        assert len(g) == TARGET_NODES
        ref = S.reference_range(g, out)
        out_shape = foveal.receptive_field(g, shape)[out].output_shape
        expected_shape = (None, None) if shape is None else (shape // 2**S.N_DOWNSAMPLE,) * 2
        ok = (smin[0], smax[0]) == ref and out_shape == expected_shape
        verdict = check(f"residual {TARGET_NODES} input_shape={shape}", ok,
                        f"range {(smin[0], smax[0])} vs DP {ref}, shape {out_shape}")
        times[str(shape)] = total
        print(f"{str(shape):<12} {build_s:>9.3f} {total:>11.4f} {fmt_rate(TARGET_NODES, total)} "
              f"{runs:>4}  {smin[0]} / {smax[0]}, {out_shape}: {verdict}", flush=True)
        del g
        gc.collect()
    return times


# -- the adversarial graphs -------------------------------------------------------------------

def bench_adversarial(stages: list[int]) -> dict[int, float]:
    print("\n== rfa_toolbox's adversarial two-branch graphs (2**K paths, 2**K distinct sizes) ==")
    print(f"{'K':>5} {'nodes':>6} {'build ms':>9} {'analysis ms':>12}  size_min / size_max check "
          f"(expected 1 / 2**K; hull size 2**K)")
    times = {}
    for k in stages:
        build_s, total, (size, smin, smax), _t, g, out = build_and_analyse(
            partial(S.adversarial, k), 3)
        times[k] = total
        lo, hi = S.adversarial_expected(k)
        ok = smin == (lo, lo) and smax == (hi, hi) and size == (hi, hi) and hi == 2**k
        ok = ok and S.reference_range(g, out) == (lo, hi)
        shown = str(smax[0]) if k <= 20 else f"2**{k}" if smax[0] == 2**k else "not 2**K"
        verdict = check(f"adversarial K={k}", ok, f"size {size}, min {smin}, max {smax}")
        print(f"{k:>5} {len(g):>6} {build_s * 1e3:>9.2f} {total * 1e3:>12.2f}  "
              f"{smin[0]} / {shown}: {verdict}", flush=True)
    return times


# -- rfa_toolbox comparison -------------------------------------------------------------------

def import_rfa():
    """rfa_toolbox 1.7.0 (Python < 3.11 in its metadata) with the shims it needs on 3.11."""
    import collections
    import collections.abc
    import types

    if not hasattr(collections, "Sequence"):
        collections.Sequence = collections.abc.Sequence  # type: ignore[attr-defined]
    try:
        import graphviz  # noqa: F401  (only its visualisation uses it)
    except ImportError:
        stub = types.ModuleType("graphviz")
        stub.Digraph = type("Digraph", (), {})  # type: ignore[attr-defined]
        sys.modules["graphviz"] = stub
    from rfa_toolbox.graphs import EnrichedNetworkNode, LayerDefinition

    return EnrichedNetworkNode, LayerDefinition


def graph_spec(g: Graph) -> list[tuple[str, str, int, int, int, tuple[str, ...]]]:
    """(name, kind, kernel, stride, padding, inputs) per node, axis 0, in topological order."""
    spec = []
    for name in g.topological_order():
        node = g.nodes[name]
        op = node.op
        if isinstance(op, O.Input):
            spec.append((name, "input", 1, 1, 0, ()))
        elif isinstance(op, O.Merge):
            spec.append((name, "add", 1, 1, 0, node.inputs))
        elif isinstance(op, O.Window) and op.kind == "conv" and op.dilation[0] == 1:
            spec.append((name, "conv", op.kernel[0], op.stride[0], op.padding[0][0], node.inputs))
        else:
            raise TypeError(f"no rfa_toolbox equivalent for {op!r}")
    return spec


def foveal_from_spec(spec, axes: int = 2) -> Graph:
    g = Graph(axes)
    for name, kind, k, s, p, inputs in spec:
        if kind == "input":
            g.input(name)
        elif kind == "add":
            g.add(name, add(), inputs)
        else:
            g.add(name, conv(k, s, p), inputs)
    return g


def spec_graph(spec, output: str) -> tuple[Graph, str]:
    return foveal_from_spec(spec), output


def rfa_from_spec(spec, EnrichedNetworkNode, LayerDefinition):
    """rfa_toolbox computes everything while the nodes are constructed."""
    nodes = {}
    for name, _kind, k, s, _p, inputs in spec:
        nodes[name] = EnrichedNetworkNode(name, LayerDefinition(name, k, s),
                                          [nodes[i] for i in inputs])
    return nodes


def bench_rfa(rfa_stages: list[int]) -> None:
    print("\n== comparison with rfa_toolbox (same graphs, same process; axis H only for rfa) ==")
    try:
        EnrichedNetworkNode, LayerDefinition = import_rfa()
    except Exception as exc:  # noqa: BLE001 - any failure means: not available here
        print(f"skipped: rfa_toolbox not importable ({type(exc).__name__}: {exc}); "
              f"see bench/README.md")
        return
    import rfa_toolbox

    print(f"rfa_toolbox {getattr(rfa_toolbox, '__version__', '?')}. rfa builds and analyses in one "
          f"step (node construction); foveal total = Graph build + analysis.")
    print(f"{'graph':<17} {'nodes':>6} {'rfa s':>9} {'foveal total s':>15} {'foveal analysis s':>18} "
          f"{'total ratio':>12} {'analysis ratio':>15}  min/max agree")
    cases = [(f"adversarial K={k}", S.adversarial(k)) for k in rfa_stages]
    # rfa keeps every distinct (size, stride) pair: ~N/3 of them per node on a stride-1 residual
    # chain (quadratic overall), and many more once strides differ (46 s at 2,000 nodes with the
    # 5 downsampling blocks), so the downsampling residual is compared at 500 nodes
    cases.append(("residual s1 2000", S.residual(2000, downsample=0)))
    cases.append(("residual 500", S.residual(500)))
    for label, (g0, out) in cases:
        spec = graph_spec(g0)
        del g0
        rfa_t, nodes = None, None
        runs = 3
        for _ in range(runs):
            nodes = None
            dt, nodes = timed(rfa_from_spec, spec, EnrichedNetworkNode, LayerDefinition)
            rfa_t = dt if rfa_t is None else min(rfa_t, dt)
            if dt > 0.5:  # slow cases: one run is precise enough and keeps the bench short
                break
        rfa_min, rfa_max = int(nodes[out].receptive_field_min), int(nodes[out].receptive_field_max)
        nodes = None
        build_t, total, (_size, smin, smax), _t, _g, _o = build_and_analyse(
            partial(spec_graph, spec, out), 3)
        agree = check(f"rfa {label}", (smin[0], smax[0]) == (rfa_min, rfa_max),
                      f"foveal {smin[0]}/{smax[0]} vs rfa {rfa_min}/{rfa_max}")
        print(f"{label:<17} {len(spec):>6} {rfa_t:>9.4f} {build_t + total:>15.4f} {total:>18.4f} "
              f"{(build_t + total) / rfa_t:>12.4f} {total / rfa_t:>15.4f}  "
              f"{smin[0]}/{smax[0]}: {agree}", flush=True)
    print("(ratio = foveal time / rfa time: below 1 means foveal is faster)")


# -- profile ----------------------------------------------------------------------------------

def profile(target: str, lines: int) -> None:
    kind, _, n_text = target.partition(":")
    n = int(float(n_text)) if n_text else 100_000
    g, out = S.SIZED[kind](n)
    gc.collect()
    if not USE_GC:
        gc.disable()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    a = foveal.receptive_field(g)
    r = a[out]
    _ = (r.size_min, r.size_max)
    prof.disable()
    dt = time.perf_counter() - t0
    gc.enable()
    print(f"cProfile of the analysis of {kind} N={n:,} ({dt:.2f} s under the profiler, "
          f"GC {'on' if USE_GC else 'off'})")
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(lines)
        print(f"\n-- sorted by {key} --")
        print(buf.getvalue().split("\n", 4)[-1].rstrip())


# -- main -------------------------------------------------------------------------------------

def header() -> None:
    root = Path(__file__).resolve().parent.parent
    src = Path(foveal.__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=root, check=False).stdout.strip() or "?"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], capture_output=True,
                               text=True, cwd=root, check=False).stdout.strip()
    except OSError:
        commit, dirty = "?", ""
    state = f"commit {commit}{', src/ has uncommitted changes' if dirty else ''}"
    if src.is_relative_to(root):
        print(f"foveal {foveal.__version__} from this checkout ({state})")
    else:
        print(f"foveal {foveal.__version__} from {src} (not this checkout, which is at {state})")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"GC {'on' if USE_GC else 'off during timing'}")


def main(argv: list[str] | None = None) -> int:
    global USE_GC
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10^6-node graphs")
    parser.add_argument("--target-runs", type=int, default=5,
                        help="runs per timing of the residual chain of the speed target (best of)")
    parser.add_argument("--large-runs", type=int, default=3,
                        help="runs per timing at 10^6 nodes (best of; default 3)")
    parser.add_argument("--no-gc", action="store_true",
                        help="disable the cyclic garbage collector during timed regions")
    parser.add_argument("--no-rfa", action="store_true", help="skip the rfa_toolbox comparison")
    parser.add_argument("--kinds", default=",".join(S.SIZED),
                        help=f"comma-separated subset of {', '.join(S.SIZED)}")
    parser.add_argument("--profile", nargs="?", const="residual:100000", metavar="KIND:N",
                        help="only profile the analysis of one graph (default residual:100000)")
    parser.add_argument("--profile-lines", type=int, default=25)
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a speed target is missed (correctness always does)")
    args = parser.parse_args(argv)
    USE_GC = not args.no_gc
    kinds = [k for k in args.kinds.split(",") if k]
    for k in kinds:
        if k not in S.SIZED:
            parser.error(f"unknown kind {k!r}")
    S.SIZED = {k: S.SIZED[k] for k in kinds}

    header()
    if args.profile:
        profile(args.profile, args.profile_lines)
        return 0

    start = time.perf_counter()
    sizes = [10**4, 10**5] if args.quick else [10**4, 10**5, 10**6]
    adv = bench_adversarial(ADVERSARIAL_STAGES)
    target = bench_target(args.target_runs)
    times = bench_sized(sizes, args.large_runs)
    scaling(times, sizes)
    if not args.no_rfa:
        bench_rfa([8, 10, 12, 14, 16])

    print("\n== targets ==")
    missed = []
    for shape, seconds in target.items():
        rate = TARGET_NODES / seconds
        ok = rate >= TARGET_NODES_PER_S
        print(f"residual chain {TARGET_NODES:,}, input_shape={shape}: {rate:>11,.0f} nodes/s "
              f"(target >= {TARGET_NODES_PER_S:,}): {'met' if ok else 'MISSED'}")
        if not ok:
            missed.append(f"residual chain nodes/s (input_shape={shape})")
    if 10**6 in sizes:
        for kind in S.SIZED:
            ratio = times[(kind, 10**6)] / times[(kind, 10**5)]
            if ratio > TARGET_SCALING:
                missed.append(f"{kind} scaling {ratio:.1f}")
        print(f"scaling time(10^6)/time(10^5) <= {TARGET_SCALING:g}: "
              f"{'met' if not any('scaling' in m for m in missed) else 'MISSED'} (table above)")
    k = TARGET_ADVERSARIAL_K
    ok = adv[k] < TARGET_ADVERSARIAL_S
    print(f"adversarial K={k}: {adv[k] * 1e3:.2f} ms (target < {TARGET_ADVERSARIAL_S:g} s): "
          f"{'met' if ok else 'MISSED'}")
    if not ok:
        missed.append(f"adversarial K={k}")
    print(f"correctness checks: {'all passed' if not FAILURES else f'{len(FAILURES)} FAILED'}")
    for f in FAILURES:
        print(f"  FAIL {f}")
    print(f"total bench time {time.perf_counter() - start:.0f} s")
    if FAILURES:
        return 1
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
