"""rfa_toolbox.encodings.pytorch.utils: `add_custom_layer_handler` and the deprecated
`toggle_coerce_torch_functional`.

A registered handler describes a module class by rfa_toolbox's numbers (one kernel, one stride).
It is used for the modules of that class when the class is named in
`create_graph_from_pytorch_model(..., custom_layers=[...])`: foveal then keeps each such module
whole as one window of that kernel and stride (the padding is the one that gives the module's
real output size). As in rfa_toolbox the registry is global to the process; a second
registration for a class name replaces the first.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CustomLayer:
    """What rfa_toolbox's GenericLayerTypeHandler reads of a module, as functions of it."""

    class_name: str
    name_provider: Callable[[Any, str], str]
    kernel_size_provider: Callable[[Any], Any]
    stride_size_provider: Callable[[Any], Any]
    filters_provider: Callable[[Any], Any]
    units_provider: Callable[[Any], Any]


CUSTOM_LAYERS: dict[str, CustomLayer] = {}
"""Registered handlers by class name (rfa_toolbox's RESOLVING_STRATEGY is global too)."""


def add_custom_layer_handler(class_name: str,
                             name_handler: Callable[[Any, str], str] = lambda module, name: name,
                             kernel_size_provider: Callable[[Any], Any] = lambda module: 1,
                             stride_size_provider: Callable[[Any], Any] = lambda module: 1,
                             filters_provider: Callable[[Any], Any] = lambda module: None,
                             units_provider: Callable[[Any], Any] = lambda module: None) -> None:
    """Describe modules of class `class_name` (its __name__ or qualified name) by a kernel and a
    stride; the layer's name is name_handler(module, class_name)."""
    CUSTOM_LAYERS[class_name] = CustomLayer(class_name, name_handler, kernel_size_provider,
                                            stride_size_provider, filters_provider, units_provider)


def toggle_coerce_torch_functional(coerce: bool = True, kernel_size: int = 1, stride_size: int = 1,
                                   handler_idx: int = -2) -> None:
    """Deprecated in rfa_toolbox and without effect; foveal handles torch.nn.functional calls."""
    warnings.warn("This function is deprecated and is no longer needed, you may remove it from your code",
                  DeprecationWarning, stacklevel=2)
