"""Read a GraphDef from anything a user has: a message, bytes, a .pb or .pbtxt file (gzipped or
not), a tf.Graph, a tf.function or concrete function, a SavedModel directory.

Files and messages need only the `protobuf` runtime (foveal[tensorflow]). Functions and SavedModels
are TensorFlow objects, so TensorFlow freezes them: its own converter inlines the function library
(Keras layers are calls into it), lowers functional If/While to Switch/Merge, and turns the
captured variables into constants, whose shapes give the kernels. Bad input gets one clear line: a
truncated or random binary file, a text file with a syntax error (with its line and column), a
graph whose nodes have no name or op, or repeated names.

A file may be hostile: only regular files are opened (a FIFO or a device is refused before any
read), sizes are bounded (foveal.files: the file, and a gzip stream once decompressed), and a
large GraphDef is counted before protobuf builds it (MAX_ELEMENTS), so 20 MB of empty nodes cannot
take a GB. SavedModels and tf.functions are loaded by TensorFlow itself: trusted code only.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import GraphFormatError, quoted
from ..files import gunzip, read_file
from ..limits import LimitError
from .fields import MAX_OP_NAME, has_line_breaks
from .schema import message_classes

TEXT_SUFFIXES = (".pbtxt", ".txt", ".prototxt")


def _graph_def_class() -> Any:
    try:
        return message_classes()["GraphDef"]
    except ImportError as exc:
        raise GraphFormatError(f"reading a GraphDef needs the protobuf package ({exc}); install "
                               f"foveal[tensorflow]") from None


def load_graph_def(source: Any) -> Any:
    """The GraphDef in `source`, as foveal's own message class (fields named as in TensorFlow)."""
    cls = _graph_def_class()
    if isinstance(source, cls):
        return _checked(source, "the GraphDef")
    if is_tf_function(source) or is_saved_model(source):
        source = _frozen_function(source)
    if hasattr(source, "as_graph_def"):  # a tf.Graph
        source = source.as_graph_def()
    if hasattr(source, "SerializeToString"):  # TensorFlow's GraphDef, or another protobuf message
        if type(source).__name__ != "GraphDef":
            raise GraphFormatError(f"expected a GraphDef, got a {type(source).__name__} message")
        return _checked(_parse_binary(cls, source.SerializeToString(), "the GraphDef"), "the GraphDef")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _checked(_parse_binary(cls, bytes(source), "the bytes"), "the bytes")
    if isinstance(source, (str, os.PathLike)):
        return _load_file(cls, Path(source))
    raise GraphFormatError(f"cannot read a GraphDef from a {type(source).__name__}: pass a GraphDef, "
                           f"a tf.Graph, bytes, or a path to a .pb or .pbtxt file")


def is_tf_function(source: Any) -> bool:
    """A tf.function or a concrete function (checked by type name: no TensorFlow import)."""
    return type(source).__name__ in ("Function", "ConcreteFunction", "AtomicFunction") and (
        hasattr(source, "get_concrete_function") or hasattr(source, "graph"))


def is_saved_model(source: Any) -> bool:
    return isinstance(source, (str, os.PathLike)) and (Path(source) / "saved_model.pb").is_file()


def _frozen_function(source: Any) -> Any:
    """The concrete function's graph with the library inlined and variables as constants."""
    try:
        import tensorflow as tf
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    except ImportError as exc:
        raise GraphFormatError(f"reading a SavedModel needs TensorFlow ({exc}); or freeze it to a .pb "
                               f"where TensorFlow is installed") from None
    loaded = None  # holds the SavedModel's variables alive while the function is frozen
    if is_saved_model(source):
        loaded = tf.saved_model.load(str(source))
        signatures = dict(loaded.signatures)
        if not signatures:
            raise GraphFormatError(f"the SavedModel {str(source)!r} has no signature to analyse")
        source = signatures.get("serving_default") or signatures[sorted(signatures)[0]]
    if hasattr(source, "get_concrete_function"):
        if getattr(source, "input_signature", None) is None:
            raise GraphFormatError("this tf.function has no input_signature: pass "
                                   "f.get_concrete_function(tf.TensorSpec(shape, dtype)) instead")
        source = source.get_concrete_function()
    graph = convert_variables_to_constants_v2(source).graph
    del loaded
    return graph


def _load_file(cls: Any, path: Path) -> Any:
    """A regular file only (a FIFO or a device is refused before it is read), at most
    MAX_FILE_BYTES; gzipped, at most MAX_MEMBER_BYTES once decompressed."""
    if not os.path.lexists(path):
        raise GraphFormatError(f"graph file {str(path)!r} does not exist")
    where = repr(str(path))
    data = read_file(path)
    if path.suffix.lower() == ".gz":
        data = gunzip(data, where)
        path = path.with_suffix("")
    if path.suffix.lower() in TEXT_SUFFIXES:
        return _checked(_parse_text(cls, data, where), where)
    try:
        return _checked(_parse_binary(cls, data, where), where)
    except GraphFormatError as binary_error:
        if path.suffix.lower() == ".pb" or not _looks_like_text(data):
            raise
        try:  # no telling suffix: a text GraphDef is the other common case
            return _checked(_parse_text(cls, data, where), where)
        except GraphFormatError:
            raise binary_error from None


def _looks_like_text(data: bytes) -> bool:
    return b"\0" not in data[:4096]


SCAN_ABOVE = 8 << 20
"""Binary GraphDefs larger than this are scanned (count_elements) before protobuf parses them."""

MAX_ELEMENTS = 4_000_000
"""Messages and repeated strings of one binary GraphDef (nodes, inputs, attributes, dims...):
protobuf builds each one, at up to ~45 bytes for 2 bytes of file, so 20 MB of empty nodes would
take a GB. Real graphs hold about 30 per node (a 100,000-node graph: 3 million)."""

MAX_DEPTH = 100
"""Nesting of messages (protobuf's own limit when it parses)."""


@cache
def _element_tables() -> dict[str, dict[int, str | None]]:
    """Per message of the schema: field number -> the message type it holds (None: a repeated
    string, counted but not entered)."""
    from .schema import MESSAGES

    tables: dict[str, dict[int, str | None]] = {}
    for name, fields in MESSAGES.items():
        table: dict[int, str | None] = {}
        for field_name, number, kind, label in fields:
            if isinstance(kind, tuple):  # a map: entries with the value as field 2
                entry = f"{name}.{field_name}"
                table[number] = entry
                value = kind[2]
                tables[entry] = {2: value} if value in MESSAGES else {}
            elif kind in MESSAGES:
                table[number] = kind
            elif kind in ("string", "bytes") and label == 3:
                table[number] = None
        tables[name] = table
    return tables


def count_elements(data: bytes, limit: int | None = None) -> int | None:
    """How many messages and repeated strings protobuf would build from `data` (counting stops
    past `limit`), by walking the wire format depth first; None when it is not valid protobuf
    wire format (protobuf's own parse then says why)."""
    limit = MAX_ELEMENTS if limit is None else limit
    tables = _element_tables()
    count = 0
    stack: list[list[Any]] = [[0, len(data), tables["GraphDef"]]]  # [position, end, table] per level
    try:
        while stack:
            frame = stack[-1]
            pos, end, table = frame
            if pos >= end:
                stack.pop()
                continue
            tag, pos = _varint(data, pos)
            wire, number = tag & 7, tag >> 3
            if wire == 2:
                length, pos = _varint(data, pos)
                frame[0] = pos + length
                if frame[0] > end:
                    return None
                if number in table:
                    count += 1
                    if count > limit:
                        return count
                    child = table[number]
                    if child is not None and length:
                        if len(stack) >= MAX_DEPTH:
                            return None
                        stack.append([pos, pos + length, tables[child]])
            elif wire == 0:
                frame[0] = _varint(data, pos)[1]
            elif wire in (1, 5):
                frame[0] = pos + (8 if wire == 1 else 4)
            else:
                return None
    except IndexError:  # a varint runs past the end
        return None
    return count


def _too_many(where: str) -> LimitError:
    return LimitError(f"{where} holds more than {MAX_ELEMENTS:,} messages and strings (nodes, inputs, "
                      f"attributes); foveal's limit keeps the parse within memory (see docs/security.md)")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    value, shift = byte & 0x7F, 7
    while True:
        pos += 1
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos + 1
        shift += 7
        if shift > 70:
            raise IndexError("varint too long")


def _parse_binary(cls: Any, data: bytes, where: str) -> Any:
    from google.protobuf.message import DecodeError

    if len(data) > SCAN_ABOVE:
        count = count_elements(data)
        if count is not None and count > MAX_ELEMENTS:
            raise _too_many(where)
    graph = cls()
    try:
        graph.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:  # RecursionError is a RuntimeError
        raise GraphFormatError(f"{where} is not a binary GraphDef (truncated, or not a protobuf "
                               f"file): {_one_line(exc)}") from None
    return graph


def _parse_text(cls: Any, data: bytes, where: str) -> Any:
    from google.protobuf import text_format

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GraphFormatError(f"{where} is not a text GraphDef: not UTF-8 text ({exc})") from None
    if len(data) > SCAN_ABOVE:  # every message opens with '{' or '<', every string follows a ':'
        bound = data.count(b"{") + data.count(b"<") + data.count(b":")
        if bound > MAX_ELEMENTS:
            raise _too_many(where)
    try:
        return text_format.Parse(text, cls(), allow_unknown_field=True)
    except RecursionError:
        raise GraphFormatError(f"{where} is not a text GraphDef foveal reads: its messages nest too "
                               f"deeply") from None
    except text_format.ParseError as exc:
        reason = _one_line(str(exc).rpartition("': ")[2] or str(exc))
        raise GraphFormatError(f"{where} is not a valid text GraphDef: line {exc.GetLine()}, column "
                               f"{exc.GetColumn()}: {reason}") from None


def _checked(graph: Any, where: str) -> Any:
    """Random bytes can decode as a protobuf; a GraphDef has named nodes with ops, each name once.
    Names are TensorFlow's: no ':' (it starts an output slot), no leading '^' (a control input),
    no control character or line break (every message names nodes on one line)."""
    if not graph.node and not graph.library.function:
        raise GraphFormatError(f"{where} holds no GraphDef nodes (empty, or not a GraphDef)")
    seen: set[str] = set()
    for i, node in enumerate(graph.node):
        if not node.name or not node.op:
            raise GraphFormatError(f"{where} is not a GraphDef: node {i} has no "
                                   f"{'name' if not node.name else 'op'}")
        if ":" in node.name or node.name.startswith("^") or has_line_breaks(node.name):
            raise GraphFormatError(f"{where} is not a GraphDef: node {i} has the name {quoted(node.name)} "
                                   f"(a name has no ':', no leading '^' and no control character)")
        if has_line_breaks(node.op) or len(node.op) > MAX_OP_NAME:
            raise GraphFormatError(f"{where} is not a GraphDef: node {quoted(node.name)} has the op "
                                   f"{quoted(node.op)} (an op name has at most {MAX_OP_NAME} characters, "
                                   f"none a control character)")
        if node.name in seen:
            raise GraphFormatError(f"{where}: node name {quoted(node.name)} appears twice")
        seen.add(node.name)
    return graph


def _one_line(exc: Any) -> str:
    return " ".join(str(exc).split())[:200]
