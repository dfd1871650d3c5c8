"""Saved torch.export programs (.pt2) and the zip archives around them, as bytes: the helpers that
the hostile tests (test_pt2_hostile.py) and the pt2 fuzz format (fuzz/fmt_pt2.py) share. Importing
this module needs nothing; exporting needs torch."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
from collections.abc import Iterable
from typing import Any

Member = tuple[str, bytes, int]
"""A member of an archive: its name, its bytes and its compression (zipfile.ZIP_STORED, ...)."""


# -- programs -------------------------------------------------------------------------------------
def saved_program(model: Any, shape: tuple[int, ...], dynamic: Any = None) -> bytes:
    """`model`, in eval mode, exported at an input of zeros of `shape` (`dynamic`: torch.export's
    dynamic_shapes), as torch.export.save writes it."""
    import torch

    model.eval()
    program = torch.export.export(model, (torch.zeros(shape),), dynamic_shapes=dynamic, strict=False)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


def dynamic_model() -> tuple[Any, Any]:
    """conv 3 (pad 1) -> max pool 2 -> nearest x2 -> conv 3 on 3 channels, and the dynamic shapes
    that export it for even heights and widths from 8 to 128."""
    import torch
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), nn.Upsample(scale_factor=2),
                          nn.Conv2d(4, 2, 3))
    h, w = torch.export.Dim("h", min=4, max=64), torch.export.Dim("w", min=4, max=64)
    return model, ({2: 2 * h, 3: 2 * w},)


def refuse_unpickling(monkeypatch: Any) -> None:
    """pickle.load, pickle.loads and torch.load fail the test (a pytest MonkeyPatch undoes it):
    foveal reads a .pt2 without unpickling anything."""
    import pickle

    import torch

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("foveal unpickled something")

    for target, name in ((pickle, "loads"), (pickle, "load"), (torch, "load")):
        monkeypatch.setattr(target, name, refuse)


# -- archives -------------------------------------------------------------------------------------
def read_members(data: bytes) -> list[Member]:
    """The members of the zip archive `data`, in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i), i.compress_type) for i in z.infolist()]


def write_zip(members: Iterable[Member], compression: int | None = None) -> bytes:
    """A zip archive of `members` in order, each stored or deflated as it says (or as `compression`
    says, for all; any other method: stored), dated 2020-01-01 so that the same members give the
    same bytes. Names that repeat are written as they are."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as z:
        warnings.simplefilter("ignore")  # zipfile warns of duplicate names
        for name, data, own in members:
            method = own if compression is None else compression
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = method if method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) \
                else zipfile.ZIP_STORED
            z.writestr(info, data)
    return buffer.getvalue()


def program_index(members: list[Member]) -> int | None:
    """Where the program's JSON (`<archive>/models/<name>.json`) is among `members`; None if nowhere."""
    for i, (name, _, _) in enumerate(members):
        if name.endswith(".json") and "/models/" in f"/{name}":
            return i
    return None


def patch_headers(data: bytes, name: str, flags: int | None = None, method: int | None = None,
                  new_name: bytes | None = None) -> bytes:
    """The archive with the flag bits, compression method or name bytes (of the same length) of
    member `name` set in both its local and its central directory header."""
    buf = bytearray(data)
    raw = name.encode()
    for signature, flag_at, method_at, name_len_at, name_at in ((b"PK\x03\x04", 6, 8, 26, 30),
                                                                 (b"PK\x01\x02", 8, 10, 28, 46)):
        at = buf.find(signature)
        while at >= 0:
            length = struct.unpack_from("<H", buf, at + name_len_at)[0]
            if bytes(buf[at + name_at:at + name_at + length]) == raw:
                if flags is not None:
                    struct.pack_into("<H", buf, at + flag_at, flags)
                if method is not None:
                    struct.pack_into("<H", buf, at + method_at, method)
                if new_name is not None and len(new_name) == length:
                    buf[at + name_at:at + name_at + length] = new_name
            at = buf.find(signature, at + 4)
    return bytes(buf)
