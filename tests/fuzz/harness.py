"""Mutation fuzzing of foveal's model readers: every hostile input ends in a FovealError (one line;
exit status 2 and one line on the CLI) or a result, within a time and a memory limit.

A format is a module `fmt_<name>.py` beside this file with
- `SUFFIX`: the file suffix the input is saved under (".json", ".pb", ".onnx", ".pt2", ...);
- `seeds() -> list[bytes]`: valid inputs, deterministic;
- `mutate(data: bytes, rng: random.Random) -> bytes`: one structural mutation (parse, change a
  field, a size, an edge, a type, serialise); it may return the input unchanged when it cannot
  parse it (the harness then mutates bytes);
- optionally `API_KWARGS` (keyword arguments of `foveal.receptive_field`) and `CLI_ARGS` (extra
  `foveal analyze` arguments), `REQUIRES` (modules that must import, else the format is skipped).

Each input runs in a worker process, through the API (the analysis and every text output) and
through `foveal analyze` (in-process `foveal.cli.main`). The parent kills a worker that runs past
the time limit (a hang) or whose resident memory passes the memory limit, and starts a new one.
Outcome classes: ok, error (a one-line FovealError), raw:<Type> (any other exception, or a
FovealError of several lines, or a CLI failure that is not one line and status 2), hang, memory.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from worker import status_mib

HERE = Path(__file__).resolve().parent
FORMATS = ("json", "graphdef", "pbtxt", "onnx", "pt2")
GOOD = ("ok", "error")


def load_format(name: str) -> ModuleType:
    """The module fmt_<name>, with this folder and tests/ (the helper modules that the formats
    share with the tests: graphdefs, pt2_archives, onnx_graphs) on sys.path, under pytest or not."""
    for folder in (HERE.parent, HERE):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    return importlib.import_module(f"fmt_{name}")


def available(fmt: ModuleType) -> str | None:
    """None when the format can run here, else why not."""
    for module in getattr(fmt, "REQUIRES", ()):
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any failing import means: skip
            return f"{module} is not importable ({type(exc).__name__})"
    return None


# -- byte mutations, shared by every format ---------------------------------------------------------
INTERESTING = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\xff\x0f", b"9" * 12, b"-1", b"\xed\xa0\x80")


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 16))):
        kind = rng.randrange(6)
        at = rng.randrange(len(buf)) if buf else 0
        if kind == 0 and buf:  # flip bits
            buf[at] ^= 1 << rng.randrange(8)
        elif kind == 1 and buf:  # random byte
            buf[at] = rng.randrange(256)
        elif kind == 2:  # truncate
            del buf[rng.randrange(len(buf) + 1):]
        elif kind == 3 and buf:  # duplicate a chunk
            end = min(len(buf), at + rng.randrange(1, 256))
            buf[at:at] = buf[at:end] * rng.choice((1, 2, 8))
        elif kind == 4:  # interesting value
            buf[at:at + 1] = rng.choice(INTERESTING)
        elif buf:  # delete a chunk
            del buf[at:at + rng.randrange(1, 64)]
    return bytes(buf)


def inputs(fmt: ModuleType, count: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """`count` deterministic mutants: (label, data). About two in three are structural."""
    seeds = fmt.seeds()
    out = []
    for i in range(count):
        rng = random.Random(f"{seed}:{i}")
        base = seeds[i % len(seeds)]
        roll = rng.random()
        if roll < 0.65:
            data, label = base, "structural"
            for _ in range(rng.choice((1, 1, 2, 3))):
                data = fmt.mutate(data, rng)
        elif roll < 0.95:
            data, label = mutate_bytes(base, rng), "bytes"
        else:
            data, label = mutate_bytes(fmt.mutate(base, rng), rng), "both"
        out.append((f"{label}#{i}", data))
    return out


# -- the parent ----------------------------------------------------------------------------------
@dataclass
class Report:
    fmt: str
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    peak_mib: float = 0.0

    @property
    def bad(self) -> int:
        return sum(n for k, n in self.counts.items() if k.split(" ")[0] not in GOOD)

    def add(self, outcome: str, label: str, detail: str) -> None:
        self.counts[outcome] += 1
        if outcome.split(" ")[0] not in GOOD:
            self.examples.setdefault(outcome, []).append(f"{label}: {detail}"[:300])

    def summary(self) -> str:
        total = sum(self.counts.values())
        classes = ", ".join(f"{k} {n}" for k, n in sorted(self.counts.items()))
        lines = [f"{self.fmt}: {total} runs in {self.seconds:.0f} s (peak {self.peak_mib:.0f} MiB): "
                 f"{classes}"]
        for outcome, found in sorted(self.examples.items()):
            lines.append(f"  {outcome}: {found[0]}")
            if len(found) > 1:
                lines.append(f"    (+{len(found) - 1} more)")
        return "\n".join(lines)


class Worker:
    """One `worker.py` process: a JSON request per line in, a JSON answer per line out."""

    def __init__(self, warm: tuple[str, ...] = ()) -> None:
        """Starts the worker and waits until it has imported foveal and the `warm` modules."""
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
        self.warm = warm
        self.proc = subprocess.Popen([sys.executable, str(HERE / "worker.py"), *warm], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        if ready.strip() != b"ready":
            raise RuntimeError(f"the fuzz worker did not start: {ready!r}")
        self.buffer = b""

    def rss_mib(self) -> float:
        return status_mib("VmRSS", self.proc.pid)

    def ask(self, request: dict, seconds: float, memory_mib: float) -> tuple[str, str, float]:
        """(outcome, detail, peak MiB) of one request."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return "crash", "the worker died", 0.0
        deadline = time.monotonic() + seconds
        peak = 0.0
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return "hang", f"over {seconds:.0f} s", peak
            ready, _, _ = select.select([fd], [], [], min(left, 0.05))
            rss = self.rss_mib()
            peak = max(peak, rss)
            if rss > memory_mib:
                self.kill()
                return "memory", f"resident memory {rss:.0f} MiB > {memory_mib:.0f} MiB", peak
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.kill()
                    return "crash", f"the worker died (status {self.proc.poll()})", peak
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        answer = json.loads(line)
        peak = max(peak, answer.get("peak_mib", 0.0))
        if peak > memory_mib:
            return "memory", f"peak resident memory {peak:.0f} MiB > {memory_mib:.0f} MiB", peak
        return answer["outcome"], answer.get("detail", ""), peak

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def run(name: str, count: int, *, seed: int = 0, seconds: float = 10.0, memory_mib: float = 2048.0,
        modes: tuple[str, ...] = ("api", "cli"), save: Path | None = None, jobs: int = 1,
        progress: bool = False) -> Report:
    """Fuzz format `name` with `count` mutants through each mode; bad inputs are saved to `save`."""
    fmt = load_format(name)
    report = Report(name)
    start = time.monotonic()
    cases = inputs(fmt, count, seed)
    api_kwargs = getattr(fmt, "API_KWARGS", {})
    cli_args = list(getattr(fmt, "CLI_ARGS", []))
    warm = tuple(getattr(fmt, "REQUIRES", ()))
    lock = threading.Lock()
    done = [0]

    def one(worker: Worker, folder: Path, i: int, label: str, data: bytes) -> Worker:
        path = folder / f"input{i}{fmt.SUFFIX}"
        path.write_bytes(data)
        for mode in modes:
            out_dir = folder / f"out{i}{mode}"
            out_dir.mkdir()
            request = {"path": str(path), "mode": mode, "kwargs": api_kwargs, "args": cli_args,
                       "out": str(out_dir)}
            outcome, detail, peak = worker.ask(request, seconds, memory_mib)
            if outcome in ("hang", "memory", "crash"):
                worker = Worker(warm)
            with lock:
                report.peak_mib = max(report.peak_mib, peak)
                report.add(outcome if outcome in GOOD else f"{outcome} ({mode})", label, detail)
                if outcome not in GOOD and save is not None:
                    save.mkdir(parents=True, exist_ok=True)
                    (save / f"{name}-{label.replace('#', '-')}-{mode}{fmt.SUFFIX}").write_bytes(data)
        path.unlink()
        with lock:
            done[0] += 1
            if progress and (sys.stderr.isatty() or done[0] % 500 == 0 or done[0] == count):
                end = "" if sys.stderr.isatty() else "\n"
                print(f"\r{name}: {done[0]}/{count}, {report.bad} bad", end=end, file=sys.stderr, flush=True)
        return worker

    def share(k: int) -> None:
        worker = Worker(warm)
        try:
            with tempfile.TemporaryDirectory(prefix="foveal-fuzz-") as folder:
                for i in range(k, len(cases), n_jobs):
                    worker = one(worker, Path(folder), i, *cases[i])
        finally:
            worker.close()

    n_jobs = max(1, jobs)
    threads = [threading.Thread(target=share, args=(k,)) for k in range(n_jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if progress and sys.stderr.isatty():
        print(file=sys.stderr)
    report.seconds = time.monotonic() - start
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Mutation fuzzing of foveal's model readers.")
    parser.add_argument("formats", nargs="*", default=list(FORMATS), help=f"some of {', '.join(FORMATS)}")
    parser.add_argument("--inputs", type=int, default=10000, help="mutants per format (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10.0, help="time limit per run")
    parser.add_argument("--memory-mib", type=float, default=2048.0, help="resident memory limit per run")
    parser.add_argument("--modes", default="api,cli", help="api, cli or both (default)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--save", type=Path, default=None, help="save failing inputs here")
    args = parser.parse_args(argv)
    bad = 0
    for name in args.formats:
        why = available(load_format(name))
        if why:
            print(f"{name}: skipped: {why}")
            continue
        report = run(name, args.inputs, seed=args.seed, seconds=args.seconds, memory_mib=args.memory_mib,
                     modes=tuple(args.modes.split(",")), save=args.save, jobs=args.jobs, progress=True)
        print(report.summary(), flush=True)
        bad += report.bad
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
