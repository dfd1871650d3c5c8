"""The receptive_field library's interface (google-research/receptive_field), on foveal.

`import foveal.compat.receptive_field as rf` in place of `import receptive_field as rf`:
`rf.compute_receptive_field_from_graph_def(graph_def, 'input_image', 'output')` unpacks to
rf_x, rf_y, eff_stride_x, eff_stride_y, eff_pad_x, eff_pad_y, with the reference's results,
None paddings and ValueErrors, and without TensorFlow (a .pb/.pbtxt path works too).
Needs numpy and protobuf (foveal[tensorflow]); loaded on first use, so the CLI stays light.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from ...errors import FovealError

_EXPORTS = {
    "ReceptiveField": "receptive_field_computation",
    "compute_receptive_field_from_graph_def": "receptive_field_computation",
    "get_compute_order": "graph_compute_order",
    "parse_graph_nodes": "graph_compute_order",
    "get_layer_params": "parse_layer_parameters",
}
__all__ = sorted(_EXPORTS)


REQUIRES = ("numpy", "google.protobuf")
"""What the interface needs beyond the core: the extra foveal[tensorflow]."""


def require() -> None:
    """numpy and protobuf importable, or one line naming the extra that installs them."""
    for module in REQUIRES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise FovealError(f"the receptive_field interface (and foveal compute-rf) needs {module}, which "
                              f"is not importable ({' '.join(str(exc).split())[:120]}); install "
                              f"foveal[tensorflow]") from None


def _module(name: str) -> ModuleType:
    require()
    return importlib.import_module(f".{name}", __name__)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_module(_EXPORTS[name]), name)
