"""A probe reads one layer's feature map for an input, on a private copy of the model.

PyTorch: a forward hook on the module at a `named_modules()` path. Keras 3 (torch backend): a
sub-model from the model's inputs to the layer's output. Either way the probe takes and returns
channels-first tensors (N, C, *spatial), so the gradient code is written once, and it owns the
model it runs, so neither the user's weights nor their training flags ever change.

For Luo's protocol, `redraw(k)` gives the probe's model fresh random weights, seeded by
(seed, k): `reset_parameters()` on every PyTorch submodule that has one; a
`keras.models.clone_model` of the Keras model (new layers, fresh initialisers).
"""

from __future__ import annotations

import copy
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from ..errors import FovealError, UnknownNodeError


class _Enough(Exception):
    """Raised by the hook to stop the forward pass once the layer's output is in hand."""


def seed_of(seed: int, draw: int) -> int:
    """A 32-bit seed per (seed, weight draw), from numpy's SeedSequence (no overlap between runs)."""
    return int(np.random.SeedSequence([seed, draw]).generate_state(1)[0])


def check_feature_map(output: Any, layer: str, input_rank: int) -> torch.Tensor:
    """The layer's output, if it is one floating tensor with the input's spatial axes."""
    if not isinstance(output, torch.Tensor):
        raise FovealError(f"layer {layer!r} outputs a {type(output).__name__}, not a tensor; pick a layer "
                          f"whose output is one feature map")
    if output.ndim != input_rank:
        raise FovealError(f"layer {layer!r} outputs shape {tuple(output.shape)}, which has no spatial "
                          f"axes like the input's ({input_rank - 2}); pick a layer before the flatten, "
                          f"pooling or token reshape")
    if not output.is_floating_point():
        raise FovealError(f"layer {layer!r} outputs {output.dtype}, not floating point: no gradient flows")
    return output


def _run_error(error: Exception, shape: tuple[int, ...]) -> FovealError:
    first_line = (str(error).strip().splitlines() or [""])[0]
    return FovealError(f"running the model on an input of shape {shape} failed: "
                       f"{type(error).__name__}: {first_line}")


class TorchProbe:
    """The output of the module at path `layer` (named_modules(); '' is the whole model)."""

    input_channels_last = False

    def __init__(self, model: torch.nn.Module, layer: str, seed: int) -> None:
        if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
            raise FovealError("the model's weights are on the meta device (they have no values); build it "
                              "on the CPU, e.g. torchvision.models.get_model(name)")
        names = [name for name, _ in model.named_modules()]
        if layer not in names:  # before copying a possibly large model
            raise UnknownNodeError(layer, [name for name in names if name], what="layer",
                                   listed=[name for name in names if name and "." not in name])
        self.layer = layer
        self.seed = seed
        self.model = copy.deepcopy(model).eval()
        self.module = dict(self.model.named_modules())[layer]
        first = next((t for t in [*self.model.parameters(), *self.model.buffers()]
                      if t.is_floating_point()), None)
        self.device = torch.device("cpu") if first is None else first.device
        self.dtype = torch.float32 if first is None else first.dtype
        self._runs_once = False

    @property
    def analysed_model(self) -> torch.nn.Module:
        return self.model

    def redraw(self, draw: int) -> None:
        """Fresh default-initialised weights (and reset batch-norm statistics), seeded."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_of(self.seed, draw))
            for module in self.model.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()

    def kept_parameters(self) -> list[str]:
        """Parameters that redraw() leaves alone: their module has no reset_parameters()."""
        return [f"{name}.{p}" if name else p for name, module in self.model.named_modules()
                if not callable(getattr(module, "reset_parameters", None))
                for p, _ in module.named_parameters(recurse=False)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's output for x. The first pass runs the whole model to check that the layer
        runs exactly once; later passes stop as soon as it has. What fails after the layer ran
        (a head that only takes one input size) does not matter."""
        outputs: list[Any] = []

        def hook(module: torch.nn.Module, args: Any, output: Any) -> Any:
            outputs.append(output)
            if self._runs_once:
                raise _Enough
            # the rest of the model gets a copy, so that an in-place op downstream (a VGG's
            # ReLU(inplace=True)) cannot rewrite the captured map and its autograd history
            return output.clone() if isinstance(output, torch.Tensor) else None

        handle = self.module.register_forward_hook(hook)
        try:
            self.model(x)
        except _Enough:
            pass
        except FovealError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure of user code becomes one line
            if not outputs:  # after the layer ran, a failure downstream (a fixed-size head) is moot
                raise _run_error(error, tuple(x.shape)) from None
        finally:
            handle.remove()
        if not outputs:
            raise FovealError(f"layer {self.layer!r} did not run in the model's forward pass")
        if len(outputs) > 1:
            raise FovealError(f"layer {self.layer!r} runs {len(outputs)} times in one forward pass (a "
                              f"shared module), so its output is ambiguous; pick a module that runs once, "
                              f"such as its parent")
        self._runs_once = True
        return check_feature_map(outputs[0], self.layer, x.ndim)


class KerasProbe:
    """The output of the Keras layer named `layer`, through a sub-model (torch backend only).

    Inputs and outputs are channels-first for the caller; the layouts come from data_format (the
    layer's own when it has one, else keras.config.image_data_format(); the input's from the
    model's first layer that has one).
    """

    def __init__(self, model: Any, layer: str, seed: int) -> None:
        self.keras = keras = sys.modules["keras"]
        backend = keras.backend.backend()
        if backend != "torch":
            raise FovealError(f"the ERF of a Keras model needs the torch backend (gradients through "
                              f"torch autograd); this Keras runs on {backend!r}: set KERAS_BACKEND=torch "
                              f"before importing keras")
        names = [one.name for one in model.layers]
        if layer not in names:
            raise UnknownNodeError(layer, names, what="layer", listed=names)
        try:
            inputs = model.inputs
        except (AttributeError, ValueError):
            inputs = None
        if not inputs or len(inputs) != 1:
            raise FovealError("the ERF of a Keras model needs a built model with one input (a Functional or "
                              "Sequential model with an Input)")
        self.layer = layer
        self.seed = seed
        self.source = model
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        default = keras.config.image_data_format()
        formats = [f for f in (getattr(one, "data_format", None) for one in model.layers) if f]
        self.input_channels_last = (formats[0] if formats else default) == "channels_last"
        self.output_channels_last = (getattr(model.get_layer(layer), "data_format", None)
                                     or default) == "channels_last"
        self.sub_model = self._sub_model(model)

    @property
    def analysed_model(self) -> Any:
        return self.source

    def _sub_model(self, model: Any) -> Any:
        try:
            output = model.get_layer(self.layer).output
        except (AttributeError, ValueError) as error:  # a layer called more than once, or never
            raise FovealError(f"layer {self.layer!r} has no single output in the model "
                              f"({str(error).splitlines()[0]}); pick a layer that is called once") from None
        return self.keras.Model(model.inputs, output)

    def redraw(self, draw: int) -> None:
        """A clone of the model: the same layers, freshly initialised, seeded."""
        with _random_states_kept():
            self.keras.utils.set_random_seed(seed_of(self.seed, draw))
            try:
                clone = self.keras.models.clone_model(self.source)
            except Exception as error:  # noqa: BLE001 - clone_model fails in many ways on custom models
                raise FovealError(f"re-initialising the Keras model (keras.models.clone_model) failed: "
                                  f"{type(error).__name__}: {error}; pass reinitialize=False") from None
        self.sub_model = self._sub_model(clone)

    def kept_parameters(self) -> list[str]:
        return []

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_channels_last:
            x = x.movedim(1, -1)
        try:
            output = self.sub_model(x, training=False)
        except Exception as error:  # noqa: BLE001 - any failure of user code becomes one line
            raise _run_error(error, tuple(x.shape)) from None
        output = check_feature_map(output, self.layer, x.ndim)
        return output.movedim(-1, 1) if self.output_channels_last else output


@contextmanager
def _random_states_kept() -> Iterator[None]:
    """keras.utils.set_random_seed seeds Python, numpy and torch too: put theirs back after."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def probe_for(model: Any, layer: str, seed: int) -> TorchProbe | KerasProbe:
    """The probe for a PyTorch module or a Keras 3 model (checked first: on the torch backend a
    Keras layer is also a torch.nn.Module)."""
    from ..keras import is_keras_model

    if not isinstance(layer, str):
        raise FovealError(f"layer is a name (a module path or a Keras layer name), not a "
                          f"{type(layer).__name__}")
    if is_keras_model(model):
        return KerasProbe(model, layer, seed)
    if isinstance(model, torch.nn.Module):
        return TorchProbe(model, layer, seed)
    raise FovealError(f"the ERF needs a torch.nn.Module or a Keras 3 model on the torch backend, not a "
                      f"{type(model).__name__}")
