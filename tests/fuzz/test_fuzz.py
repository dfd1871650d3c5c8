"""The short deterministic fuzzing campaign of the default suite: a few hundred mutants per format,
each through the API and the CLI, must all end in a result or a one-line FovealError within 10 s
and 2 GiB. The long campaign (10,000 and more per format) is `python tests/fuzz/harness.py`."""

from __future__ import annotations

import harness
import pytest

SHORT = {"json": 500, "graphdef": 500, "pbtxt": 300, "onnx": 200, "pt2": 100}


@pytest.mark.parametrize("name", list(SHORT))
def test_every_mutant_ends_cleanly(name: str) -> None:
    why = harness.available(harness.load_format(name))
    if why:
        pytest.skip(why)
    report = harness.run(name, SHORT[name], seed=2026)
    assert report.bad == 0, report.summary()
    assert report.counts["ok"] > 0, ("no mutant got through: the seeds or mutations are broken\n"
                                     + report.summary())
