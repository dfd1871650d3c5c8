"""Saved torch.export programs (`.pt2`), read without unpickling anything.

`torch.export.load` unpickles some payloads (weights in pickle format, sample inputs). foveal
reads only the program's JSON and gives every parameter, buffer and tensor constant a meta
tensor of the recorded shape and dtype: no weight byte is read.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import FovealError

_MODEL = re.compile(r"(?:.*/)?models/([^/]+)\.json")


def load_program(path: str | Path) -> Any:
    """The ExportedProgram in a .pt2 archive, with meta tensors for its state."""
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _bytes_to_dataclass

    path = Path(path)
    if not path.is_file():
        raise FovealError(f"{str(path)!r}: no such file")
    try:
        with zipfile.ZipFile(path) as archive:
            found = {m.group(1): name for name in archive.namelist() if (m := _MODEL.fullmatch(name))}
            if not found:
                raise FovealError(f"{str(path)!r} holds no exported program (no models/*.json); "
                                  f"save one with torch.export.save")
            if len(found) > 1 and "model" not in found:
                raise FovealError(f"{str(path)!r} holds several programs ({', '.join(sorted(found))})")
            text = archive.read(found.get("model") or next(iter(found.values())))
    except zipfile.BadZipFile:
        raise FovealError(f"{str(path)!r} is not a .pt2 archive (not a zip file)") from None
    try:
        serialized = _bytes_to_dataclass(schema.ExportedProgram, text)
        state, constants = _meta_state(serialized)
        return ExportedProgramDeserializer().deserialize(serialized, state, constants, None)
    except FovealError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign archive, said plainly
        raise FovealError(f"{str(path)!r}: cannot read the exported program: "
                          f"{type(exc).__name__}: {str(exc).strip()[:200]}") from None


def _meta_state(serialized: Any) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Meta tensors standing in for the parameters, buffers and tensor constants."""
    from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE

    metas = serialized.graph_module.graph.tensor_values
    state: dict[str, torch.Tensor] = {}
    constants: dict[str, torch.Tensor] = {}
    for spec in serialized.graph_module.signature.input_specs:
        kind, value = spec.type, spec.value
        if kind == "custom_obj":
            raise FovealError("the program holds a custom (torchbind) object, which only "
                              "unpickling could restore")
        if kind not in ("parameter", "buffer", "tensor_constant"):
            continue
        meta = metas[value.arg.name]
        sizes = [s.as_int for s in meta.sizes]
        if any(s is None for s in sizes):
            raise FovealError(f"{value.arg.name!r} has a symbolic size in the saved program")
        tensor = torch.empty(sizes, dtype=_SERIALIZE_TO_TORCH_DTYPE[meta.dtype], device="meta")
        if kind == "parameter":
            state[value.parameter_name] = torch.nn.Parameter(tensor, requires_grad=False)
        elif kind == "buffer" and getattr(value, "persistent", True) is not False:
            state[value.buffer_name] = tensor
        elif kind == "buffer":
            constants[value.buffer_name] = tensor
        else:
            constants[value.tensor_constant_name] = tensor
    return state, constants
