"""Reading model files that may be hostile: regular files only, every size bounded.

A path can name a FIFO (opening it would block), a device (`/dev/zero` reads forever) or a
file that grows while it is read; a gzip stream or an archive member can inflate a thousandfold.
These functions read at most a limit's worth and say so in one line otherwise.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from .errors import FovealError
from .limits import MAX_ARCHIVE_MEMBERS, MAX_FILE_BYTES, MAX_MEMBER_BYTES, LimitError


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """The file at `path` opened for reading, if it is a regular file. It is opened without
    blocking and checked with fstat, so a FIFO or a device swapped in after any earlier check
    cannot hang foveal either."""
    p = str(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FovealError(f"{p!r}: no such file") from None
    except (OSError, ValueError, TypeError) as error:
        raise FovealError(f"cannot read {p!r}: {getattr(error, 'strerror', None) or error}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = ("a folder" if stat.S_ISDIR(info.st_mode)
                    else "not a regular file (a FIFO, socket or device)")
            raise FovealError(f"{p!r} is {kind}; foveal reads model files only")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_file(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file (see open_regular), at most `limit`."""
    p = str(path)
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise LimitError(f"{p!r} has {size:,} bytes, over foveal's limit of {limit:,}")
        try:
            data = _bounded_read(handle, limit, first=size + 1)
        except OSError as error:
            raise FovealError(f"cannot read {p!r}: {error.strerror or error}") from None
    if len(data) > limit:
        raise LimitError(f"{p!r} grew past foveal's limit of {limit:,} bytes while being read")
    return data


def _bounded_read(stream: Any, limit: int, first: int = 1 << 20) -> bytes:
    """At most limit + 1 bytes of `stream`, read in pieces: asking for the whole limit at once
    would reserve that much memory up front."""
    chunks = []
    total = 0
    size = min(first, limit + 1)
    while total <= limit:
        chunk = stream.read(min(size, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        size = 1 << 20
    return b"".join(chunks)


def is_regular_file(path: Any) -> bool:
    """Whether `path` names a regular file (following links), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError, TypeError):
        return False


def gunzip(data: bytes, where: str, limit: int = MAX_MEMBER_BYTES) -> bytes:
    """The decompressed bytes of a gzip stream (several members allowed), at most `limit`."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as stream:
            out = _bounded_read(stream, limit)
    except (OSError, EOFError, zlib.error) as error:
        raise FovealError(f"{where} is not a valid gzip file ({error})") from None
    if len(out) > limit:
        raise LimitError(f"{where} decompresses to more than foveal's limit of {limit:,} bytes")
    return out


def read_member(archive: zipfile.ZipFile, name: str, where: str, limit: int = MAX_MEMBER_BYTES) -> bytes:
    """One archive member, decompressed, at most `limit` bytes whatever its header claims; every
    failure of the archive (encrypted, unknown compression, corrupt stream) is one FovealError."""
    try:
        with archive.open(name) as member:
            data = _bounded_read(member, limit)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError, OSError, EOFError,
            zlib.error, ValueError, KeyError, UnicodeDecodeError) as error:
        raise FovealError(f"{where}: cannot read member {name!r}: {type(error).__name__}: "
                          f"{' '.join(str(error).split())[:160]}") from None
    if len(data) > limit:
        raise LimitError(f"{where}: member {name!r} decompresses to more than foveal's limit of "
                         f"{limit:,} bytes")
    return data


@contextmanager
def open_zip(path: str | os.PathLike[str], what: str = "zip archive") -> Iterator[zipfile.ZipFile]:
    """A zip archive read in place (only its directory and the members asked for are ever read),
    its directory bounded (MAX_ARCHIVE_MEMBERS) before zipfile parses it; every failure to read it
    as a zip file is one FovealError."""
    where = repr(str(path))
    with open_regular(path) as handle:
        try:
            end = zipfile._EndRecData(handle)  # type: ignore[attr-defined]
            if end is None:
                raise zipfile.BadZipFile("no end of central directory")
            members = end[zipfile._ECD_ENTRIES_TOTAL]  # type: ignore[attr-defined]
            size = end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
            if members > MAX_ARCHIVE_MEMBERS or size > 64 * MAX_ARCHIVE_MEMBERS:
                raise LimitError(f"{where} lists {members:,} members in {size:,} bytes, over foveal's limit "
                                 f"of {MAX_ARCHIVE_MEMBERS:,} members")
            handle.seek(0)
            archive = zipfile.ZipFile(handle)
        except FovealError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, UnicodeDecodeError,
                NotImplementedError, RuntimeError, KeyError, IndexError, OverflowError,
                struct.error) as error:
            raise FovealError(f"{where} is not a {what} (not a valid zip file: "
                              f"{' '.join(str(error).split())[:160] or type(error).__name__})") from None
        with archive:
            yield archive
