"""foveal against the peers a user would otherwise install: rfa_toolbox and torchscan.

    python bench/bench_peers.py                     # 8 torchvision models, best of 5
    python bench/bench_peers.py --quick             # resnet18 and mobilenet_v2, 1 repeat
    python bench/bench_peers.py resnet50 vgg16 --repeats 10
    python bench/bench_peers.py --meta              # foveal reads a meta-weight copy of each model

The peers are not dependencies of foveal. A peer that does not import is skipped with a line
saying why; a peer that fails on a model shows its exception type in that row. To install them:

    pip install rfa_toolbox==1.7.0 --no-deps --ignore-requires-python
    pip install attrs numpy        # rfa_toolbox's runtime imports
    pip install torchscan==0.2.0

rfa_toolbox 1.7.0 declares Python < 3.11 and imports `collections.Sequence`, removed in 3.10:
this bench gives `collections` the alias back before importing it (here only, never in foveal).
Its package also imports TensorFlow for its Keras entry point, which is not used here: the bench
hides TensorFlow during that import (rfa_toolbox then leaves that entry point out, as it does
where TensorFlow is not installed), which saves about 3 s of start-up.

Every tool gets the same in-memory torchvision model (random weights on the CPU, built once per
model, outside the timing), in one process:

- rfa_toolbox task: the graph built from the PyTorch model, min and max receptive field over all
  paths of every layer, and the input-resolution range. rfa_toolbox:
  `create_graph_from_pytorch_model(model, input_res=(1, 3, H, W))` (torch.jit.trace, a forward
  pass on real weights), `receptive_field_min`/`_max` of every node of `all_layers`,
  `input_resolution_range(graph)`. foveal: `foveal.receptive_field(model, (1, 3, H, W))` (capture
  on meta tensors; the weights are not read), `size_min`/`size_max` of every node,
  `analysis.input_resolution_range()`. foveal-compat: rfa_toolbox's exact calls on
  `foveal.compat.rfa_toolbox`.
- torchscan task: a per-layer receptive-field column without printing. torchscan:
  `crawl_module(model, (3, H, W))` (a forward pass with hooks; it measures FLOPs, MACs and DMAs in
  the same pass and has no mode that gives the RF column without them), reading
  receptive_field / effective_stride / effective_padding of every layer. foveal:
  `foveal.receptive_field(model, (1, 3, H, W))`, reading size / stride / padding of every node.

Per model and tool there is one untimed run first (its result is the one checked for agreement),
then `--repeats` timed runs (5; `--quick`: 1) with the tools interleaved; the best is shown.
The ratio is foveal / peer: below 1 means foveal is faster. The garbage collector stays on (a full
collection runs before each model, outside the timing). The header says how busy the CPUs were
before the start and the last line how much CPU time other processes took during the run: under
contention torch's intra-op threads slow the peers' forward passes down many times (`--threads 1`
is steadier on a shared machine).

Agreement. rfa_toolbox task: the input-resolution ranges (foveal, foveal-compat, rfa_toolbox),
and the receptive fields of the convolutions as a multiset (min and max per axis, over the paths
that do not pass a global op: rfa_toolbox by default hides squeeze-and-excitation blocks, whose
global pool makes foveal's size_max infinite; rfa_toolbox names nodes by the enclosing module, so
the two lists are compared as multisets, not by name). torchscan task: torchscan 0.2.0's column is
module-local (each module's own kernel, stride and padding, first axis only), not the network's
receptive field; the column checks it against the kernel, stride and padding of foveal's node of
the same module path, on the first axis and on every axis, and counts the leaf modules whose
value torchscan reports as unavailable.
"""

from __future__ import annotations

import argparse
import collections
import collections.abc
import gc
import math
import os
import platform
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch  # noqa: E402
import torch_models as TM  # noqa: E402  (the test-only torchvision import helper)

import foveal  # noqa: E402
from foveal.productivity import layer_facts  # noqa: E402

MODELS = ("resnet18", "resnet50", "vgg16", "mobilenet_v2", "densenet121", "efficientnet_b0",
          "inception_v3", "convnext_tiny")
QUICK = ("resnet18", "mobilenet_v2")
RESOLUTION = {"inception_v3": 299}  # 224 otherwise
TOOLS = {"rfa": "rfa_toolbox", "compat": "foveal-compat"}  # the short labels of the tables
INSTALL = {"rfa_toolbox": "pip install rfa_toolbox==1.7.0 --no-deps --ignore-requires-python; "
                          "pip install attrs numpy",
           "torchscan": "pip install torchscan==0.2.0"}


# -- peers -------------------------------------------------------------------------------------

def import_rfa_toolbox() -> Any:
    collections.Sequence = collections.abc.Sequence  # type: ignore[attr-defined]
    hide = "tensorflow" not in sys.modules
    if hide:  # an import of a None entry raises ImportError, which rfa_toolbox catches
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    try:
        import rfa_toolbox
    finally:
        if hide:
            del sys.modules["tensorflow"]
    return rfa_toolbox


def import_torchscan() -> Any:
    import torchscan

    return torchscan


def import_peer(name: str, importer: Callable[[], Any]) -> Any:
    try:
        module = importer()
    except Exception as exc:  # noqa: BLE001 - any failure means: no such peer in this run
        print(f"{name}: skipped, it does not import ({type(exc).__name__}: {exc}). "
              f"To install: {INSTALL[name]}")
        return None
    print(f"{name} {getattr(module, '__version__', '?')} from {Path(module.__file__).parent}")
    return module


# -- timing ------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """One tool on one model: the result of its untimed run, its best time, or its error."""

    result: Any = None
    seconds: float = math.inf
    error: str | None = None
    message: str = ""


def measure(tasks: dict[str, Callable[[], Any]], repeats: int) -> dict[str, Outcome]:
    """One untimed run per task (kept for the agreement checks), then `repeats` timed rounds
    with the tasks interleaved, so that a slow spell of the machine hits every tool alike."""
    out = {label: Outcome() for label in tasks}
    for label, task in tasks.items():
        try:
            out[label].result = task()
        except Exception as exc:  # noqa: BLE001 - a peer failing on a model is a finding
            out[label].error, out[label].message = type(exc).__name__, str(exc).splitlines()[0][:160]
    for _ in range(repeats):
        for label, task in tasks.items():
            if out[label].error:
                continue
            t0 = time.perf_counter()
            try:
                task()
            except Exception as exc:  # noqa: BLE001 - same as above, on a later run
                out[label].error, out[label].message = type(exc).__name__, str(exc).splitlines()[0][:160]
                continue
            out[label].seconds = min(out[label].seconds, time.perf_counter() - t0)
    return out


# -- the two tasks -----------------------------------------------------------------------------

def foveal_rfa_task(model: Any, shape: tuple[int, ...]) -> tuple[Any, Any]:
    analysis = foveal.receptive_field(model, shape)
    for node in analysis:
        node.size_min, node.size_max  # noqa: B018 - reading them is part of the task
    return analysis, analysis.input_resolution_range()


def rfa_api_task(rfa: Any, model: Any, shape: tuple[int, ...]) -> tuple[Any, Any]:
    """rfa_toolbox's calls; `rfa` is rfa_toolbox or foveal.compat.rfa_toolbox."""
    graph = rfa.create_graph_from_pytorch_model(model, input_res=shape)
    for node in graph.all_layers:
        node.receptive_field_min, node.receptive_field_max  # noqa: B018
    return graph, rfa.input_resolution_range(graph)


def foveal_layers_task(model: Any, shape: tuple[int, ...]) -> Any:
    analysis = foveal.receptive_field(model, shape)
    for node in analysis:
        node.size, node.stride, node.padding  # noqa: B018
    return analysis


def torchscan_task(torchscan: Any, model: Any, shape: tuple[int, ...]) -> Any:
    report = torchscan.crawl_module(model, shape[1:])
    for layer in report["layers"]:
        metrics = layer["metrics"]
        if "receptive_field" in metrics:
            [metrics[k]["value"] for k in ("receptive_field", "effective_stride", "effective_padding")]
    return report


# -- agreement ---------------------------------------------------------------------------------

def plain(value: Any) -> int | float | Fraction:
    """numpy scalars as Python numbers; foveal's ints and Fractions unchanged."""
    if isinstance(value, (int, Fraction)):
        return value
    number = float(value)
    return int(number) if number.is_integer() else number


def per_axis(value: Any, n_axes: int = 2) -> tuple[int | float, ...]:
    if isinstance(value, (tuple, list)) or hasattr(value, "shape"):
        return tuple(plain(v) for v in value)
    return (plain(value),) * n_axes


def range_of(found: Any) -> tuple[tuple[int | float, ...], tuple[int | float, ...]]:
    low, high = found
    return per_axis(low), per_axis(high)


def is_conv(op: Any) -> bool:
    return getattr(op, "op", None) == "window" and op.kind == "conv"


def foveal_conv_rfs(analysis: Any) -> Counter[tuple[Any, ...]]:
    """(finite min per axis, finite max per axis) of every convolution with a finite one."""
    facts = layer_facts(analysis)
    found: Counter[tuple[Any, ...]] = Counter()
    for name, f in facts.items():
        if is_conv(analysis.graph.nodes[name].op) and None not in f.finite_min:
            found[per_axis(f.finite_min), per_axis(f.finite_max)] += 1
    return found


def rfa_conv_rfs(graph: Any) -> Counter[tuple[Any, ...]]:
    found: Counter[tuple[Any, ...]] = Counter()
    for node in graph.all_layers:
        if str(node.layer_info.name).startswith("Conv"):
            pair = per_axis(node.receptive_field_min), per_axis(node.receptive_field_max)
            if not any(math.isinf(v) for v in pair[0] + pair[1]):
                found[pair] += 1
    return found


@dataclass
class Agreement:
    cell: str
    notes: list[str] = field(default_factory=list)


def rfa_agreement(name: str, results: dict[str, Outcome]) -> Agreement:
    fov = results["foveal"]
    if fov.error:
        return Agreement("-")
    analysis, fov_range = fov.result
    reference = range_of(fov_range)
    parts, notes = [], []
    low, high = reference
    parts.append(f"range {'x'.join(map(str, low))}..{'x'.join(map(str, high))}")
    for label in ("compat", "rfa"):
        other = results.get(label)
        if other is None or other.error:
            continue
        found = range_of(other.result[1])
        parts.append(f"{label} {'=' if found == reference else '!='}")
        if found != reference:
            notes.append(f"{name}: input-resolution range foveal {reference}, {TOOLS[label]} {found}")
    rfa = results.get("rfa")
    if rfa is not None and not rfa.error:
        ours, theirs = foveal_conv_rfs(analysis), rfa_conv_rfs(rfa.result[0])
        same = sum((ours & theirs).values())
        behind_global = sum(1 for node in analysis if is_conv(analysis.graph.nodes[node.name].op)
                            and math.inf in node.size_max and math.inf not in node.size_min)
        if behind_global:
            notes.append(f"{name}: {behind_global} convolutions sit behind a global op (squeeze-and-"
                         f"excitation): foveal's size_max is inf there; compared on the paths without it, as "
                         f"rfa_toolbox hides these blocks by default")
        parts.append(f"convs {same}/{max(sum(ours.values()), sum(theirs.values()))}")
        if ours != theirs:
            only_ours, only_theirs = sorted((ours - theirs).items()), sorted((theirs - ours).items())
            notes.append(f"{name}: conv receptive fields only in foveal {only_ours[:4]}, "
                         f"only in rfa_toolbox {only_theirs[:4]}")
    return Agreement(", ".join(parts), notes)


def torchscan_agreement(name: str, results: dict[str, Outcome]) -> Agreement:
    fov, ts = results["foveal"], results.get("torchscan")
    if fov.error or ts is None or ts.error:
        return Agreement("-")
    nodes = fov.result.graph.nodes
    leaves = unavailable = windows = first_axis = every_axis = 0
    notes = []
    for layer in ts.result["layers"]:
        metric = layer["metrics"].get("receptive_field")
        if metric is None:  # a container: torchscan gives no value
            continue
        leaves += 1
        if metric["status"] != "complete":
            unavailable += 1
            continue
        op = nodes[layer["path"]].op if layer["path"] in nodes else None
        if getattr(op, "op", None) != "window":
            continue
        windows += 1
        local = tuple(plain(layer["metrics"][k]["value"])
                      for k in ("receptive_field", "effective_stride", "effective_padding"))
        axes = [(d * (k - 1) + 1, s, p[0])
                for k, s, d, p in zip(op.kernel, op.stride, op.dilation, op.padding)]
        first_axis += local == axes[0]
        every_axis += all(local == a for a in axes)
        if local == axes[0] and len(notes) < 1 and not all(local == a for a in axes):
            notes.append(f"{name}: {layer['path']} torchscan k,s,p {local} = foveal's first axis only "
                         f"(per axis: {axes})")
    cell = (f"k,s,p {first_axis}/{windows} axis 0, {every_axis}/{windows} all axes; "
            f"{unavailable}/{leaves} unavailable")
    found = [r for r in fov.result if getattr(nodes[r.name].op, "op", None) == "window"]
    if not found:
        return Agreement(cell, notes)
    last = found[-1]
    last_local = next((layer["metrics"]["receptive_field"]["value"] for layer in ts.result["layers"]
                       if layer["path"] == last.name and "receptive_field" in layer["metrics"]), None)
    network = "global" if all(last.is_global) else "x".join(map(str, last.size))
    notes.append(f"{name}: receptive field of {last.name} in the network: foveal {network}; torchscan's "
                 f"column there is the module's own kernel, {plain(last_local)}" if last_local is not None
                 else f"{name}: receptive field of {last.name} in the network: foveal {network}")
    return Agreement(cell, notes)


# -- output ------------------------------------------------------------------------------------

def seconds(o: Outcome | None) -> str:
    if o is None:
        return "-"
    return o.error or f"{o.seconds:.4f}"


def ratio(ours: Outcome, theirs: Outcome | None) -> float | None:
    if theirs is None or ours.error or theirs.error:
        return None
    return ours.seconds / theirs.seconds


def shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def geometric_mean(values: list[float]) -> str:
    return f"{math.exp(sum(map(math.log, values)) / len(values)):.3f}" if values else "-"


def cpu_ticks() -> tuple[int, int] | None:
    """(all, busy) CPU time of the machine in clock ticks, from Linux's /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    return sum(fields), sum(fields) - fields[3] - fields[4]  # minus idle and iowait


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Share of the machine's CPU time used by anything over the next `seconds`."""
    before = cpu_ticks()
    time.sleep(seconds)
    after = cpu_ticks()
    if before is None or after is None:
        return None
    return (after[1] - before[1]) / max(after[0] - before[0], 1)


def others_share(before: tuple[int, int] | None, own_before: float) -> float | None:
    """Share of the machine's CPU time that other processes used since `before`."""
    after = cpu_ticks()
    if before is None or after is None:
        return None
    own = (sum(os.times()[:2]) - own_before) * os.sysconf("SC_CLK_TCK")
    return max(0.0, after[1] - before[1] - own) / max(after[0] - before[0], 1)


def print_table(header: list[str], rows: list[list[str]], footer: list[str]) -> None:
    """The first column left-aligned, the last (free text) unpadded, the others right-aligned."""
    everything = [header, *rows, footer]
    widths = [max(len(row[i]) for row in everything) for i in range(len(header))]
    for row in everything:
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:-1], widths[1:-1]))]
        print(("  ".join(cells) + "  " + row[-1]).rstrip())


def versions() -> str:
    tv = sys.modules.get("torchvision")
    return (f"Python {platform.python_version()}, torch {torch.__version__}, torchvision "
            f"{getattr(tv, '__version__', '?')}, {os.cpu_count()} CPUs, torch threads "
            f"{torch.get_num_threads()}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help=f"torchvision model names (default: {' '.join(MODELS)})")
    parser.add_argument("--quick", action="store_true", help=f"{' and '.join(QUICK)}, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per tool and model (5)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads for the peers' forward passes (default: torch's)")
    parser.add_argument("--meta", action="store_true",
                        help="foveal and foveal-compat read a meta-weight copy of each model")
    args = parser.parse_args(argv)
    names = args.models or (QUICK if args.quick else MODELS)
    repeats = args.repeats or (1 if args.quick else 5)
    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    tv = TM.import_torchvision()
    from foveal.compat import rfa_toolbox as compat

    print(f"foveal from {Path(foveal.__file__).parent}")
    rfa = import_peer("rfa_toolbox", import_rfa_toolbox)
    torchscan = import_peer("torchscan", import_torchscan)
    print(versions())
    busy = cpu_busy()
    if busy is not None and busy > 0.1:
        print(f"warning: the CPUs were {busy:.0%} busy before the start: something else is running. Under "
              f"contention torch's intra-op threads slow the peers' forward passes down many times; run "
              f"this alone{', or with --threads 1' if torch.get_num_threads() > 1 else ''}")
    print(f"CPU busy before the start: {'?' if busy is None else f'{busy:.0%}'}, load average "
          f"{os.getloadavg()[0]:.2f}; one untimed run per tool and model, then best of {repeats}, tools "
          f"interleaved; foveal reads "
          f"{'a meta-weight copy of the model' if args.meta else 'the same model as the peers'}")

    ticks, own = cpu_ticks(), sum(os.times()[:2])
    rows_rfa, rows_ts, notes = [], [], []
    ratios: dict[str, list[float]] = {"compat/rfa": [], "foveal/rfa": [], "foveal/torchscan": []}
    for name in names:
        size = RESOLUTION.get(name, 224)
        shape = (1, 3, size, size)
        torch.manual_seed(0)
        model = tv.models.get_model(name).eval()
        ours = TM.torchvision_model(name) if args.meta else model
        gc.collect()

        tasks: dict[str, Callable[[], Any]] = {"foveal": partial(foveal_rfa_task, ours, shape),
                                               "compat": partial(rfa_api_task, compat, ours, shape)}
        if rfa is not None:
            tasks["rfa"] = partial(rfa_api_task, rfa, model, shape)
        first = measure(tasks, repeats)
        tasks = {"foveal": partial(foveal_layers_task, ours, shape)}
        if torchscan is not None:
            tasks["torchscan"] = partial(torchscan_task, torchscan, model, shape)
        second = measure(tasks, repeats)

        agree_rfa, agree_ts = rfa_agreement(name, first), torchscan_agreement(name, second)
        notes += agree_rfa.notes + agree_ts.notes
        for label, outcome in (*first.items(), *second.items()):
            if outcome.error:
                notes.append(f"{name}: {TOOLS.get(label, label)} failed: {outcome.error}: {outcome.message}")
        pairs = (("foveal/rfa", first["foveal"], first.get("rfa")),
                 ("compat/rfa", first["compat"], first.get("rfa")),
                 ("foveal/torchscan", second["foveal"], second.get("torchscan")))
        values = {key: ratio(a, b) for key, a, b in pairs}
        for key, value in values.items():
            if value is not None:
                ratios[key].append(value)
        rows_rfa.append([name, str(size), seconds(first["foveal"]), seconds(first["compat"]),
                         seconds(first.get("rfa")), shown(values["foveal/rfa"]), shown(values["compat/rfa"]),
                         agree_rfa.cell])
        rows_ts.append([name, str(size), seconds(second["foveal"]), seconds(second.get("torchscan")),
                        shown(values["foveal/torchscan"]), agree_ts.cell])
        print(f"  {name} done", file=sys.stderr, flush=True)
        del model, ours, first, second

    print("\nrfa_toolbox task: graph from the PyTorch model, min/max RF of every layer, input-resolution "
          "range (seconds)")
    print_table(["model", "res", "foveal", "compat", "rfa", "foveal/rfa", "compat/rfa", "agreement"],
                rows_rfa, ["geometric mean", "", "", "", "", geometric_mean(ratios["foveal/rfa"]),
                 geometric_mean(ratios["compat/rfa"]), ""])
    print("\ntorchscan task: per-layer receptive-field column (seconds)")
    print_table(["model", "res", "foveal", "torchscan", "foveal/torchscan", "agreement"], rows_ts,
                ["geometric mean", "", "", "", geometric_mean(ratios["foveal/torchscan"]), ""])
    if notes:
        print("\nnotes:")
        for line in notes:
            print(f"- {line}")
    share = others_share(ticks, own)
    print(f"\nother processes used {'?' if share is None else f'{share:.0%}'} of the machine's CPU time "
          f"during the run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
