"""ONNX test helpers that need only onnx and numpy (onnx_models.py holds those that need torch): the
model builders that the hostile tests (test_onnx_hostile.py) and the onnx fuzz format
(fuzz/fmt_onnx.py) share, and a guard against hangs (onnx's own shape inference can hang on a
hostile model; foveal must not)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


@contextlib.contextmanager
def no_hang(seconds: int = 60) -> Iterator[None]:
    """A hang becomes a test failure instead of a stuck run (not a timing assertion)."""

    def stop(signum, frame):
        raise TimeoutError(f"foveal did not return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def ints(name: str, values) -> onnx.TensorProto:
    """An int64 initializer."""
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def floats(name: str, values) -> onnx.TensorProto:
    """A float32 initializer."""
    return numpy_helper.from_array(np.asarray(values, dtype=np.float32), name)


def model(nodes, inits=(), *, dims=(1, 2, 16, 16), opset: int = 17, output: str | None = None,
          functions=(), extra_opsets=(), graph_name: str = "hostile") -> onnx.ModelProto:
    """A model (IR version 8) of `nodes` reading the float input "x" of shape `dims`; its output is
    `output`, else the last node's first output (of unknown shape)."""
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))]
    outputs = [helper.make_tensor_value_info(output or nodes[-1].output[0], TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, graph_name, inputs, outputs, list(inits))
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in extra_opsets)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8, functions=list(functions))
