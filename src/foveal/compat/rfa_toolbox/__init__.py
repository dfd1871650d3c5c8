"""rfa_toolbox's interface on foveal: change `rfa_toolbox` to `foveal.compat.rfa_toolbox` in the
import lines and the rest of the code runs unchanged (docs/compat-rfa-toolbox.md)."""

from typing import Any

from .graphs import EnrichedNetworkNode, LayerDefinition, ReceptiveFieldInfo
from .pytorch import create_graph_from_pytorch_model
from .utils.graph_utils import input_resolution_range, obtain_all_critical_layers, obtain_border_layers
from .vizualize import visualize_architecture

__version__ = "1.7.0"


def create_graph_from_tensorflow_model(model: Any, filter_rf: Any = None, input_res: Any = None,
                                       **options: Any) -> EnrichedNetworkNode:
    """rfa_toolbox's entry point for Keras 3 models (Functional, Sequential, nested; any backend),
    read by foveal's Keras front-end. input_res (an extension): the spatial input size; by default
    the model's declared size when it is fixed. Extra options go to foveal.receptive_field."""
    from ...api import receptive_field
    from ...errors import FovealError
    from ...keras import is_keras_model
    from .pytorch import nodes_from_analysis

    if not is_keras_model(model):
        raise FovealError(f"create_graph_from_tensorflow_model reads Keras 3 models through foveal's Keras "
                          f"front-end; got a {type(model).__name__}. A TF1 GraphDef goes to "
                          f"foveal.receptive_field, a PyTorch model to create_graph_from_pytorch_model")
    return nodes_from_analysis(receptive_field(model, input_res, **options), filter_rf)


__all__ = ["EnrichedNetworkNode", "LayerDefinition", "ReceptiveFieldInfo", "create_graph_from_pytorch_model",
           "create_graph_from_tensorflow_model", "input_resolution_range", "obtain_all_critical_layers",
           "obtain_border_layers", "visualize_architecture", "__version__"]
