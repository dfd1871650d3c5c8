"""rfa_toolbox's interface on foveal: change `rfa_toolbox` to `foveal.compat.rfa_toolbox` in the
import lines and the rest of the code runs unchanged (docs/compat-rfa-toolbox.md)."""

from typing import Any

from .graphs import EnrichedNetworkNode, LayerDefinition, ReceptiveFieldInfo
from .pytorch import create_graph_from_pytorch_model
from .utils.graph_utils import input_resolution_range, obtain_all_critical_layers, obtain_border_layers
from .vizualize import visualize_architecture

__version__ = "1.7.0"


def create_graph_from_tensorflow_model(model: Any, filter_rf: Any = None) -> EnrichedNetworkNode:
    """Keras models: foveal's Keras front-end is not written yet (it comes with the TensorFlow /
    Keras issue); until then this raises instead of guessing."""
    from ...errors import FovealError

    raise FovealError("create_graph_from_tensorflow_model needs foveal's Keras front-end, which is not "
                      "written yet; export the model to PyTorch or build the graph by hand meanwhile")


__all__ = ["EnrichedNetworkNode", "LayerDefinition", "ReceptiveFieldInfo", "create_graph_from_pytorch_model",
           "create_graph_from_tensorflow_model", "input_resolution_range", "obtain_all_critical_layers",
           "obtain_border_layers", "visualize_architecture", "__version__"]
