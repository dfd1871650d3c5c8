"""foveal: exact receptive fields of neural networks."""

from . import ops
from .advisor import advise
from .analysis import Analysis, NodeResult
from .api import load_model, receptive_field
from .erf import effective_receptive_field
from .errors import (
    AlignmentError,
    CycleError,
    FovealError,
    GraphError,
    GraphFormatError,
    InvalidParameterError,
    ShapeError,
    UnknownNodeError,
    UnsupportedOpError,
)
from .graph import Graph, Node, sequential
from .graph_json import load as load_graph
from .graph_json import save as save_graph
from .ops import (
    adaptive_pool,
    add,
    attention,
    avg_pool,
    concat,
    conv,
    conv_transpose,
    crop,
    dense,
    elementwise,
    global_pool,
    max_pool,
    multiply,
    pad,
    pixel_shuffle,
    pixel_unshuffle,
    unknown,
    upsample,
)

__version__ = "0.1.0"

__all__ = [
    "Analysis", "NodeResult", "advise", "Graph", "Node", "sequential", "receptive_field", "load_model",
    "effective_receptive_field",
    "load_graph", "save_graph", "ops", "FovealError", "GraphError", "UnknownNodeError",
    "CycleError", "InvalidParameterError", "ShapeError", "UnsupportedOpError", "AlignmentError",
    "GraphFormatError", "adaptive_pool", "add", "attention", "avg_pool", "concat", "conv",
    "conv_transpose", "crop", "dense", "elementwise", "global_pool", "max_pool", "multiply", "pad",
    "pixel_shuffle", "pixel_unshuffle", "unknown", "upsample", "__version__",
]
