"""rfa_toolbox.encodings.pytorch on foveal's PyTorch front-end."""

from .utils import add_custom_layer_handler, toggle_coerce_torch_functional

__all__ = ["add_custom_layer_handler", "toggle_coerce_torch_functional"]
