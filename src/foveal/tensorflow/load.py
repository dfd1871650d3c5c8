"""Read a GraphDef from anything a user has: a message, bytes, a .pb or .pbtxt file (gzipped or
not), a tf.Graph, a tf.function or concrete function, a SavedModel directory.

Files and messages need only the `protobuf` runtime (foveal[tensorflow]). Functions and SavedModels
are TensorFlow objects, so TensorFlow freezes them: its own converter inlines the function library
(Keras layers are calls into it), lowers functional If/While to Switch/Merge, and turns the
captured variables into constants, whose shapes give the kernels. Bad input gets one clear line: a
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
    if not path.is_file():
        raise GraphFormatError(f"graph file {str(path)!r} does not exist")
    data = path.read_bytes()
    where = repr(str(path))
    if path.suffix.lower() == ".gz":
        import gzip
        import zlib

        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise GraphFormatError(f"{where} is not a gzip file ({exc})") from None
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
