"""Loading a big foveal JSON graph, and the command line's output of it, against the floor.

    python bench/bench_load.py                # a chain of 10^6 convolutions (about a minute)
    python bench/bench_load.py --nodes 100000

The floor is Python's own `json.loads` of the same text (with the collector paused, as foveal
pauses it): no reader of the format can be faster than decoding it. foveal's load adds the
checks of every field and the graph's construction. The command line (`foveal analyze FILE
--format json`, in a fresh process, output to /dev/null) is timed with its peak resident memory.
CPU seconds of this process are printed beside wall seconds: on a busy machine they are the
fairer figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from foveal import graph_json


def chain_text(n: int) -> str:
    nodes = [json.dumps({"name": "x", "op": "input"})]
    nodes += [json.dumps({"name": f"c{i}", "op": "window", "inputs": ["x" if i == 0 else f"c{i - 1}"],
                          "params": {"kernel": 3, "padding": 1}}) for i in range(n)]
    return ('{"format": "foveal-graph", "version": 1, "name": "chain", "axes": ["H", "W"], "nodes": [\n'
            + ",\n".join(nodes) + "\n]}\n")


def timed(run) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10**6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "chain.json"
        path.write_text(chain_text(args.nodes))
        text = path.read_text()
        print(f"a chain of {args.nodes:,} convolutions, {len(text) / 2**20:.0f} MiB of JSON")

        def floor() -> None:
            enabled = gc.isenabled()
            gc.disable()
            try:
                json.loads(text)
            finally:
                if enabled:
                    gc.enable()

        floor_wall, floor_cpu = timed(floor)
        load_wall, load_cpu = timed(lambda: graph_json.load(path))
        print(f"json.loads (the floor): {floor_wall:6.2f} s wall, {floor_cpu:6.2f} s CPU")
        print(f"foveal load:            {load_wall:6.2f} s wall, {load_cpu:6.2f} s CPU, "
              f"ratio {load_cpu / floor_cpu:.1f}")
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "foveal.cli", "analyze", str(path), "--format", "json"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        status = "ok" if done.returncode == 0 else f"status {done.returncode}: {done.stderr.strip()}"
        cpu = usage.ru_utime + usage.ru_stime
        print(f"foveal analyze --format json: {seconds:6.2f} s wall, {cpu:6.2f} s CPU, "
              f"peak {usage.ru_maxrss / 1024:.0f} MiB, {status}")


if __name__ == "__main__":
    main()
