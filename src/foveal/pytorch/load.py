"""Models named on the command line: `pkg.module:factory` or `torchvision:<name>`.

The factory runs with the default device set to meta, so no weight is allocated. A factory that
computes with tensors while building (RegNet does) is retried on the CPU with every parameter and
buffer moved to meta as soon as it is registered, so at most one weight tensor is alive at a
time. Nothing is unpickled.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ..errors import FovealError


def build(spec: str, kwargs: dict[str, Any] | None = None) -> torch.nn.Module:
    module_name, _, attr = spec.partition(":")
    kwargs = dict(kwargs or {})
    factory_args: tuple[str, ...] = ()
    if module_name == "torchvision":
        module_name, factory_args, attr = "torchvision.models", (attr,), "get_model"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - an import can fail in any way
        raise FovealError(f"cannot import {module_name!r} for {spec!r}: {type(exc).__name__}: "
                          f"{exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise FovealError(f"{module_name!r} has no callable {attr!r}")
    try:
        with torch.device("meta"):
            model = factory(*factory_args, **kwargs)
    except Exception:  # noqa: BLE001 - retried on the CPU, where a real error shows
        try:
            with weights_on_meta():
                model = factory(*factory_args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise FovealError(f"{spec} failed to build: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise FovealError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


@contextmanager
def weights_on_meta() -> Iterator[None]:
    """Every parameter and buffer registered meanwhile is moved to the meta device at once."""
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter(self: nn.Module, name: str, param: Any) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(self, name, param)

    def buffer(self: nn.Module, name: str, tensor: Any, persistent: bool = True) -> None:
        if tensor is not None and tensor.device.type != "meta":
            tensor = tensor.to("meta")
        register_buffer(self, name, tensor, persistent)

    nn.Module.register_parameter, nn.Module.register_buffer = parameter, buffer  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = register_parameter, register_buffer  # type: ignore[method-assign]
