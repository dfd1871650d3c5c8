"""Which front-end reads a model: the registry, in the order the tests are tried.

Each test looks at the object's type or the path's suffix only, so nothing here imports a
framework; a framework is imported when its front-end's `convert` runs. Adding a front-end (JAX
is planned) is one entry here and one `convert` module (docs/architecture.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from .errors import FovealError
from .frontend import Frontend
from .graph import Graph
from .keras import is_keras_model
from .onnx.load import is_onnx_model

GRAPH_DEF_SUFFIXES = (".pb", ".pbtxt", ".pb.gz", ".pbtxt.gz")


def is_graph_def(model: Any) -> bool:
    """A TensorFlow GraphDef message, a tf.Graph, a tf.function, a .pb / .pbtxt path or a
    SavedModel directory."""
    if isinstance(model, (str, os.PathLike)):
        return str(model).lower().endswith(GRAPH_DEF_SUFFIXES) or (Path(model) / "saved_model.pb").is_file()
    return type(model).__name__ in ("GraphDef", "Function", "ConcreteFunction") or (
        type(model).__name__ in ("Graph", "FuncGraph") and hasattr(model, "as_graph_def"))


def is_torch_model(model: Any) -> bool:
    """A torch.nn.Module (only a loaded torch can have made one) or a saved `.pt2` program."""
    if isinstance(model, (str, os.PathLike)):
        return str(model).lower().endswith(".pt2")
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def is_native(model: Any) -> bool:
    """A foveal Graph, a foveal JSON graph file or a zoo name."""
    return isinstance(model, (Graph, str, os.PathLike))


FRONTENDS = (
    Frontend("ONNX", is_onnx_model, "foveal.onnx.frontend", "foveal[onnx]"),
    Frontend("TensorFlow", is_graph_def, "foveal.tensorflow.frontend", "foveal[tensorflow]"),
    Frontend("Keras", is_keras_model, "foveal.keras.frontend", "foveal[keras]"),
    Frontend("PyTorch", is_torch_model, "foveal.pytorch.frontend", "foveal[torch]"),
    Frontend("foveal", is_native, "foveal.native"),
)


def find(model: Any) -> Frontend:
    for frontend in FRONTENDS:
        if frontend.recognises(model):
            return frontend
    raise FovealError(f"cannot analyse a {type(model).__name__}: pass a foveal Graph, a path to a "
                      f"foveal JSON graph, the name of a zoo model, or a PyTorch, Keras, ONNX or "
                      f"TensorFlow model")
