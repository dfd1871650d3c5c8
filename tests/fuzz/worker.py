"""One fuzzing worker (see harness.py): reads JSON requests from stdin, answers one JSON line each.

Request: {"path", "mode": "api" | "cli", "kwargs", "args", "out"}. Answer: {"outcome", "detail",
"peak_mib"}. The peak is the process's resident high-water mark during the request (reset before
it through /proc/self/clear_refs where the kernel allows).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys
import traceback


def _reset_peak() -> None:
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def status_mib(key: str, pid: int | str = "self") -> float:
    """The `key` line (VmRSS, VmHWM...) of /proc/<pid>/status in MiB; 0 where it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if "foveal" in f.filename] or frames
    last = inside[-1] if inside else None
    at = f" at {os.path.basename(last.filename)}:{last.lineno}" if last else ""
    return f"{type(exc).__name__}{at}: {str(exc)[:160]}"


def _strict(text: str) -> None:
    """Output must be writable as UTF-8 (a lone surrogate is not)."""
    text.encode("utf-8")


def run_api(path: str, kwargs: dict, out: str) -> tuple[str, str]:
    import foveal
    from foveal.drawing import draw

    try:
        a = foveal.receptive_field(path, **kwargs)
        for text in (a.to_table(), a.to_json(), a.to_csv(), a.to_markdown()):
            _strict(text)
        try:
            verdicts = a.verdicts()
            _strict(str(verdicts.counts()))
            a.input_resolution_range()
        except foveal.FovealError as err:  # e.g. no input size: a clear refusal is fine
            if "\n" in str(err):
                return "raw", f"FovealError of several lines: {str(err)[:160]!r}"
        draw(a, os.path.join(out, "graph.dot"))
    except foveal.FovealError as err:
        if "\n" in str(err).strip():
            return "raw", f"FovealError of several lines: {str(err)[:160]!r}"
        return "error", str(err)[:200]
    except RecursionError as exc:
        return "raw", _where(exc)
    except Exception as exc:  # noqa: BLE001 - the point of the harness
        return "raw", _where(exc)
    return "ok", ""


def run_cli(path: str, args: list, out: str) -> tuple[str, str]:
    from foveal.cli import main

    stdout, stderr = io.BytesIO(), io.BytesIO()
    out_text = io.TextIOWrapper(stdout, encoding="utf-8", errors="strict")
    err_text = io.TextIOWrapper(stderr, encoding="utf-8", errors="strict")
    graph = os.path.join(out, "graph.dot")
    argv = ["analyze", path, *args, "--graph", graph]
    try:
        with contextlib.redirect_stdout(out_text), contextlib.redirect_stderr(err_text):
            status = main(argv)
            out_text.flush()
            err_text.flush()
    except SystemExit as stop:
        return "raw", f"SystemExit({stop.code}) escaped main"
    except Exception as exc:  # noqa: BLE001
        return "raw", _where(exc)
    message = stderr.getvalue().decode("utf-8", "replace")
    if status == 0:
        return "ok", ""
    lines = message.strip().splitlines()
    if status != 2 or len(lines) != 1 or not lines[0].startswith("foveal: error: "):
        return "raw", f"status {status}, stderr {message[:200]!r}"
    if os.listdir(out):
        return "raw", f"status 2 but left {os.listdir(out)}"
    return "error", lines[0][:200]


def main() -> None:
    for module in sys.argv[1:]:
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    import foveal  # noqa: F401
    import foveal.cli  # noqa: F401
    import foveal.drawing  # noqa: F401

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        _reset_peak()
        if request["mode"] == "api":
            outcome, detail = run_api(request["path"], request["kwargs"], request["out"])
        else:
            outcome, detail = run_cli(request["path"], request["args"], request["out"])
        answer = {"outcome": outcome, "detail": detail, "peak_mib": status_mib("VmHWM")}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
