"""The user's `input_shape`, parsed once and resolved against each model's own layout.

Every entry point (the API, the CLI, the zoo, the ERF) parses with `parse`; each front-end then
asks for what it needs: the spatial sizes in its model's layout (`InputSpec.spatial`), or the
whole tensor shape to run a framework on (`InputSpec.full`). A shape that does not fit the
model's layout is an error naming both, never a silent reinterpretation.
"""

from __future__ import annotations

import enum
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidParameterError
from .graph import DEFAULT_AXES
from .limits import MAX_AXIS_LENGTH, check

MAX_RANK = 8
"""No model takes a tensor of more dims (batch, channels and up to six spatial axes)."""


class Form(enum.Enum):
    """Where the spatial axes sit in a model's input tensor."""

    CHANNELS_FIRST = "channels first"
    """(N, C, *spatial): PyTorch, ONNX, Keras with data_format='channels_first', foveal graphs."""
    CHANNELS_LAST = "channels last"
    """(N, *spatial, C): Keras and TensorFlow by default, and the zoo's keras.* graphs."""
    SIGNAL = "raw signal"
    """(N, T): a model that takes a raw signal (audio) and adds its own channel dim."""

    def spatial_dims(self, rank: int) -> range:
        """The dims of a full shape of `rank` that hold spatial axes."""
        if self is Form.CHANNELS_FIRST:
            return range(2, rank)
        if self is Form.CHANNELS_LAST:
            return range(1, rank - 1)
        return range(1, rank)

    def channel_dim(self, rank: int) -> int | None:
        return 1 if self is Form.CHANNELS_FIRST else rank - 1 if self is Form.CHANNELS_LAST else None

    def pattern(self, n_axes: int) -> str:
        """The full shape in words, e.g. (N, H, W, C)."""
        names = DEFAULT_AXES.get(n_axes) or tuple(f"S{k}" for k in range(n_axes))
        if self is Form.CHANNELS_FIRST:
            dims = ("N", "C", *names)
        elif self is Form.CHANNELS_LAST:
            dims = ("N", *names, "C")
        else:
            dims = ("N", *names)
        return f"({', '.join(dims)})"

    def rank(self, n_axes: int) -> int:
        return n_axes + (1 if self is Form.SIGNAL else 2)


class Given(enum.Enum):
    """What the numbers are: decided by their count (the API), or said by the caller (the CLI's
    --input-size and --input-shape)."""

    EITHER = "either"
    SPATIAL = "spatial sizes"
    FULL = "full shape"


@dataclass(frozen=True)
class InputSpec:
    """One input's requested shape: `sizes` as given (one int stands for every spatial axis)."""

    sizes: tuple[int, ...]
    given: Given = Given.EITHER
    one_for_all: bool = False
    """True when a single int was given for every spatial axis."""

    def __str__(self) -> str:
        return str(self.sizes[0]) if self.one_for_all else str(self.sizes)

    def spatial(self, n_axes: int, form: Form, channels: int | None = None,
                what: str = "the model") -> tuple[int, ...]:
        """The spatial sizes for a model with `n_axes` axes whose input has layout `form`
        (`channels`, when known, is checked against the full shape's channel dim)."""
        if self.one_for_all and self.given is not Given.FULL:
            return self.sizes * n_axes
        if len(self.sizes) == n_axes and self.given is not Given.FULL:
            return self.sizes
        if len(self.sizes) == form.rank(n_axes) and self.given is not Given.SPATIAL:
            return self._from_full(n_axes, form, channels, what)
        raise InvalidParameterError(self._mismatch(n_axes, form, what))

    def full(self, what: str) -> tuple[int, ...]:
        """The whole tensor shape, for a framework that runs the model on it."""
        if self.given is Given.SPATIAL or self.one_for_all:
            raise InvalidParameterError(f"{what} needs the full input shape, e.g. (1, 3, 224, 224) (or "
                                        f"(1, 16000) for a raw signal), not spatial sizes {self}")
        return self.sizes

    def _from_full(self, n_axes: int, form: Form, channels: int | None, what: str) -> tuple[int, ...]:
        rank = form.rank(n_axes)
        dim = form.channel_dim(rank)
        if channels is not None and dim is not None and self.sizes[dim] != channels:
            other = Form.CHANNELS_LAST if form is Form.CHANNELS_FIRST else Form.CHANNELS_FIRST
            hint = (f"; it reads as {other.pattern(n_axes)}: give {reordered(self.sizes, other, form)}"
                    if self.sizes[other.channel_dim(rank)] == channels else "")  # type: ignore[index]
            raise InvalidParameterError(
                f"input_shape {self.sizes} contradicts the layout of {what}, {form.pattern(n_axes)}, "
                f"{form.value} with C = {channels}: dim {dim} is {self.sizes[dim]}{hint}")
        return tuple(self.sizes[d] for d in form.spatial_dims(rank))

    def _mismatch(self, n_axes: int, form: Form, what: str) -> str:
        full = form.pattern(n_axes)
        if self.given is Given.SPATIAL:
            return (f"input size {self} does not fit {what}, which has {n_axes} spatial "
                    f"ax{'es' if n_axes != 1 else 'is'}")
        if self.given is Given.FULL:
            return f"input shape {self} does not fit {what}, which takes {full}"
        return (f"input_shape {self} does not fit {what}: give {n_axes} spatial "
                f"size{'s' if n_axes != 1 else ''} or the full shape {full}")


def reordered(sizes: tuple[int, ...], source: Form, target: Form) -> tuple[int, ...]:
    """A full shape read in layout `source`, written in layout `target` (both with channels)."""
    rank = len(sizes)
    channels = sizes[source.channel_dim(rank)]  # type: ignore[index]
    spatial = [sizes[d] for d in source.spatial_dims(rank)]
    if target is Form.CHANNELS_FIRST:
        return (sizes[0], channels, *spatial)
    return (sizes[0], *spatial, channels)


@dataclass(frozen=True)
class InputRequest:
    """The whole `input_shape`: nothing, one spec for the input analysed, or one per input."""

    one: InputSpec | None = None
    by_name: Mapping[str, InputSpec] | None = None

    @property
    def given(self) -> bool:
        return self.one is not None or bool(self.by_name)

    def spatial(self, n_axes: int, form: Form, channels: int | None = None,
                what: str = "the model") -> Any:
        """Spatial sizes for the engine: None, a tuple, or a dict by input name."""
        if self.by_name is not None:
            return {name: spec.spatial(n_axes, form, channels, f"input {name!r} of {what}")
                    for name, spec in self.by_name.items()}
        return None if self.one is None else self.one.spatial(n_axes, form, channels, what)


NOTHING = InputRequest()


def parse(value: Any, given: Given = Given.EITHER) -> InputRequest:
    """input_shape as the API takes it: None, an int, a sequence of ints (a torch.Size too), or
    a dict from input name to either."""
    if isinstance(value, InputRequest):
        return value
    if value is None:
        return NOTHING
    if isinstance(value, Mapping):
        if not value:
            return NOTHING
        by_name = {}
        for name, one in value.items():
            if not isinstance(name, str):
                raise InvalidParameterError(f"input_shape keys are input names, got {name!r}")
            by_name[name] = parse_one(one, given, f"input_shape[{name!r}]")
        return InputRequest(None, by_name)
    return InputRequest(parse_one(value, given, "input_shape"), None)


def parse_one(value: Any, given: Given = Given.EITHER, field: str = "input_shape") -> InputSpec:
    if isinstance(value, InputSpec):
        return value
    if _is_size(value):
        return InputSpec((_checked(value, field),), given, True)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or hasattr(value, "keys"):
        raise InvalidParameterError(f"{field} must be an int or a tuple of ints, got {value!r}")
    sizes = tuple(value)
    if not sizes or len(sizes) > MAX_RANK or not all(_is_size(s) for s in sizes):
        raise InvalidParameterError(f"{field} must be an int or a tuple of 1 to {MAX_RANK} positive ints, "
                                    f"got {value!r}")
    return InputSpec(tuple(_checked(s, field) for s in sizes), given)


def _is_size(value: Any) -> bool:
    """An integer (NumPy's too), never a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _checked(size: int, field: str) -> int:
    if size < 1:
        raise InvalidParameterError(f"{field} sizes must be >= 1, got {size}")
    return check(int(size), MAX_AXIS_LENGTH, "an input size")
