"""The inputs an ERF is averaged over: seeded noise, images from a folder, or the caller's tensors.

Every source yields float32 CPU batches in channels-first layout (N, C, *spatial); the probe
moves them to the model's device and layout. Folder and shape problems are reported when the
source is made, before any model runs.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import FovealError, InvalidParameterError, ShapeError
from ..input_spec import Given, parse_one

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_RATIO = 256 / 224
"""The usual ImageNet evaluation transform: resize to 256, centre-crop 224; the same ratio at any size."""
DEFAULT_IMAGE_SIZE = (224, 224)


@dataclass
class InputSource:
    """Batches to run, how many samples they hold (None: unknown up front), and what to tell the
    user about them (images skipped, fewer samples than asked)."""

    batches: Iterator[torch.Tensor]
    total: int | None
    kind: str
    notes: list[str] = field(default_factory=list)


def input_source(inputs: Any, input_shape: tuple[int, ...] | None, *, samples: int | None,
                 default_samples: int, batch_size: int, seed: int,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 channels_last: bool = False) -> InputSource:
    """The source `inputs` names. input_shape is channels-first (N, C, *spatial); N is not used
    (samples and batch_size say how many inputs run, and how many at once).

    inputs: None (standard-normal noise of input_shape), a folder or an image file, a tensor or
    array (N, C, *spatial), or an iterable of them (or of (images, labels) pairs). Tensors are in
    the model's layout (channels_last for most Keras models) and are used whole unless `samples`
    caps them.
    """
    if input_shape is not None:
        input_shape = check_shape(input_shape)
    if isinstance(inputs, (str, os.PathLike)):
        return _images(Path(inputs), input_shape, default_samples if samples is None else samples,
                       batch_size, seed, mean, std)
    if mean is not None or std is not None:
        raise InvalidParameterError("mean and std normalise images read from a folder; normalise "
                                    "tensors yourself")
    if inputs is None:
        if input_shape is None:
            raise FovealError("noise inputs need input_shape=(N, C, *spatial), e.g. (1, 3, 224, 224); "
                              "or pass inputs= (tensors or an image folder)")
        count = default_samples if samples is None else samples
        return InputSource(_noise(input_shape[1:], count, batch_size, seed), count, "noise")
    if _is_array(inputs):
        inputs = [inputs]
    elif not isinstance(inputs, Iterable):
        raise FovealError(f"inputs must be None (noise), an image folder, a tensor (N, C, *spatial) or "
                          f"an iterable of tensors, not a {type(inputs).__name__}")
    total = None  # a generator's length is unknown until it ends
    if isinstance(inputs, (list, tuple)) and all(_is_array(t) for t in inputs):
        available = sum(int(np.shape(t)[0]) if np.ndim(t) else 0 for t in inputs)
        total = available if samples is None else min(samples, available)
    tensors = _tensors(inputs, input_shape, samples, batch_size, channels_last)
    return InputSource(tensors, total, "tensors")


def check_shape(shape: Any) -> tuple[int, ...]:
    """(N, C, *spatial) as a tuple of positive ints, with at least one spatial axis (parsed as
    every input shape is: foveal.input_spec)."""
    try:
        out = parse_one(shape, Given.FULL).full("an ERF")
    except InvalidParameterError:
        out = ()
    if len(out) < 3:
        raise InvalidParameterError(f"input_shape must be (N, C, *spatial) with positive integers "
                                    f"and at least one spatial axis, got {shape!r}")
    return out


def _is_array(value: Any) -> bool:
    return isinstance(value, (torch.Tensor, np.ndarray))


# -- noise --------------------------------------------------------------------------------------------

def _noise(shape: tuple[int, ...], count: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """count standard-normal samples of shape (C, *spatial), from a generator of their own (the
    global RNG is not touched), so the same seed gives the same inputs."""
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, count, batch_size):
        yield torch.randn((min(batch_size, count - start), *shape), generator=generator)


# -- images -------------------------------------------------------------------------------------------

def image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (subfolders too, as in an ImageFolder layout), by name."""
    if not folder.exists():
        raise FovealError(f"image folder {str(folder)!r} does not exist")
    if folder.is_file():
        return [folder]
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FovealError(f"image folder {str(folder)!r} has no image files "
                          f"({', '.join(IMAGE_SUFFIXES)})")
    return files


def _images(folder: Path, input_shape: tuple[int, ...] | None, count: int, batch_size: int, seed: int,
            mean: Sequence[float] | None, std: Sequence[float] | None) -> InputSource:
    size = DEFAULT_IMAGE_SIZE if input_shape is None else input_shape[2:]
    channels = 3 if input_shape is None else input_shape[1]
    if len(size) != 2 or channels != 3:
        raise ShapeError(f"images are read as RGB, 3 x H x W; input_shape {input_shape} is not (N, 3, H, W): "
                         f"pass tensors for other inputs")
    scale = _per_channel("mean", IMAGENET_MEAN if mean is None else mean)
    spread = _per_channel("std", IMAGENET_STD if std is None else std)
    if any(s <= 0 for s in spread):
        raise InvalidParameterError(f"std must be positive, got {tuple(spread)}")
    files = image_files(folder)
    try:
        from PIL import Image  # noqa: F401
    except ImportError:
        raise FovealError("reading images needs Pillow: pip install foveal[erf]") from None
    random.Random(seed).shuffle(files)  # a seeded subset, not the first classes of a sorted folder
    source = InputSource(iter(()), min(count, len(files)), "images")
    normalise = (torch.tensor(scale).view(3, 1, 1), torch.tensor(spread).view(3, 1, 1))
    source.batches = _image_batches(files, (size[0], size[1]), count, batch_size, normalise, source)
    if len(files) < count:
        source.notes.append(f"{len(files)} image file(s) in {str(folder)!r}, fewer than the {count} samples "
                            f"asked for")
    return source


def _per_channel(name: str, values: Sequence[float]) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be 3 numbers (R, G, B), got {values!r}") from None
    if len(out) != 3:
        raise InvalidParameterError(f"{name} must be 3 numbers (R, G, B), got {values!r}")
    return out


def _image_batches(files: list[Path], size: tuple[int, int], count: int, batch_size: int,
                   normalise: tuple[torch.Tensor, torch.Tensor], source: InputSource,
                   ) -> Iterator[torch.Tensor]:
    """Readable images, normalised, batch_size at a time; unreadable files are skipped and noted."""
    batch: list[torch.Tensor] = []
    used, skipped, first_error = 0, 0, ""
    for path in files:
        if used == count:
            break
        try:
            image = load_image(path, size)
        except (OSError, ValueError) as error:  # PIL's UnidentifiedImageError is an OSError
            skipped += 1
            first_error = first_error or f"{path.name}: {error}"
            continue
        batch.append((image - normalise[0]) / normalise[1])
        used += 1
        if len(batch) == batch_size:
            yield torch.stack(batch)
            batch = []
    if batch:
        yield torch.stack(batch)
    if skipped:
        source.notes.append(f"skipped {skipped} unreadable image file(s) (first: {first_error})")
    if not used:
        raise FovealError(f"no readable image among {len(files)} file(s) (first error: {first_error})")
    source.total = used


def load_image(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """RGB in [0, 1], (3, H, W): scaled so that it covers size * 256/224 (the shorter side for a
    square size), bilinear, then centre-cropped to size."""
    from PIL import Image

    height, width = size
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    scale = max(height / image.height, width / image.width) * RESIZE_RATIO
    resized = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    image = image.resize(resized, Image.Resampling.BILINEAR)
    left, top = (resized[0] - width) // 2, (resized[1] - height) // 2
    image = image.crop((left, top, left + width, top + height))
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)


# -- tensors ------------------------------------------------------------------------------------------

def _tensors(inputs: Iterable[Any], input_shape: tuple[int, ...] | None, samples: int | None,
             batch_size: int, channels_last: bool) -> Iterator[torch.Tensor]:
    """The caller's tensors, channels-first, re-cut into batches of batch_size, up to samples."""
    expected = None if input_shape is None else input_shape[1:]
    used = 0
    for item in inputs:
        if isinstance(item, (tuple, list)) and item and _is_array(item[0]):
            item = item[0]  # (images, labels), as a DataLoader yields them
        if not _is_array(item):
            raise FovealError(f"inputs must hold tensors or arrays (N, C, *spatial), found a "
                              f"{type(item).__name__}")
        tensor = torch.as_tensor(item).detach().to("cpu", torch.float32)
        if tensor.ndim < 3:
            raise ShapeError(f"input tensors are (N, C, *spatial) with a batch axis, got shape "
                             f"{tuple(tensor.shape)}")
        if channels_last:
            tensor = tensor.movedim(-1, 1)
        if expected is None:
            expected = tuple(tensor.shape[1:])
        elif tuple(tensor.shape[1:]) != expected:
            raise ShapeError(f"input tensors must all have one shape (C, *spatial) channels-first "
                             f"{expected}; got {tuple(tensor.shape[1:])}")
        for chunk in tensor.split(batch_size):
            if samples is not None and used >= samples:
                return
            if samples is not None:
                chunk = chunk[:samples - used]
            used += len(chunk)
            yield chunk
    if not used:
        raise FovealError("inputs holds no tensor")
