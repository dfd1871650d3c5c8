"""Read a GraphDef from anything a user has: a message, bytes, a .pb or .pbtxt file, a tf.Graph.

Only the `protobuf` runtime is needed (foveal[tensorflow]). Bad input gets one clear line: a
truncated or random binary file, a text file with a syntax error (with its line and column), a
graph whose nodes have no name or op, or repeated names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import GraphFormatError
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


def _load_file(cls: Any, path: Path) -> Any:
    if not path.is_file():
        raise GraphFormatError(f"graph file {str(path)!r} does not exist")
    data = path.read_bytes()
    where = repr(str(path))
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


def _parse_binary(cls: Any, data: bytes, where: str) -> Any:
    from google.protobuf.message import DecodeError

    graph = cls()
    try:
        graph.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise GraphFormatError(f"{where} is not a binary GraphDef (truncated, or not a protobuf "
                               f"file): {exc}") from None
    return graph


def _parse_text(cls: Any, data: bytes, where: str) -> Any:
    from google.protobuf import text_format

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GraphFormatError(f"{where} is not a text GraphDef: not UTF-8 text ({exc})") from None
    try:
        return text_format.Parse(text, cls(), allow_unknown_field=True)
    except text_format.ParseError as exc:
        reason = str(exc).rpartition("': ")[2] or str(exc)
        raise GraphFormatError(f"{where} is not a valid text GraphDef: line {exc.GetLine()}, column "
                               f"{exc.GetColumn()}: {reason}") from None


def _checked(graph: Any, where: str) -> Any:
    """Random bytes can decode as a protobuf; a GraphDef has named nodes with ops, each name once."""
    if not graph.node and not graph.library.function:
        raise GraphFormatError(f"{where} holds no GraphDef nodes (empty, or not a GraphDef)")
    seen: set[str] = set()
    for i, node in enumerate(graph.node):
        if not node.name or not node.op:
            raise GraphFormatError(f"{where} is not a GraphDef: node {i} has no "
                                   f"{'name' if not node.name else 'op'}")
        if node.name in seen:
            raise GraphFormatError(f"{where}: node name {node.name!r} appears twice")
        seen.add(node.name)
    return graph
