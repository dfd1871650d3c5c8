"""foveal's versioned JSON graph format (docs/graph-format.md). Round-trips exactly."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

from . import ops as O
from .errors import GraphError, GraphFormatError, quoted
from .files import gunzip, read_file
from .gc_pause import paused_gc
from .graph import Graph
from .limits import MAX_MEMBER_BYTES

FORMAT = "foveal-graph"
VERSION = 1


def _encode(value: Any) -> Any:
    if isinstance(value, Fraction):
        return value.numerator if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any, field: str, where: str) -> Any:
    """JSON -> op field: lists become tuples, "p/q" strings Fractions (checked later by the op)."""
    if isinstance(value, list):
        return tuple(_decode(v, field, where) for v in value)
    if isinstance(value, str) and "/" in value:
        try:
            return Fraction(value)
        except (ValueError, ZeroDivisionError):
            raise GraphFormatError(f"{where}: {field} {value!r} is not a fraction p/q with q > 0") from None
    if isinstance(value, dict):
        raise GraphFormatError(f"{where}: {field} must be a number, string, list or null, not an object")
    return value


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    nodes = []
    for node in graph:
        entry: dict[str, Any] = {"name": node.name, "op": node.op.op, "inputs": list(node.inputs)}
        params = {f.name: _encode(getattr(node.op, f.name)) for f in dataclasses.fields(node.op)}
        if params:
            entry["params"] = params
        if node.outputs != 1:
            entry["outputs"] = node.outputs
        if node.label is not None:
            entry["label"] = node.label
        nodes.append(entry)
    return {"format": FORMAT, "version": VERSION, "name": graph.name, "axes": list(graph.axes),
            "outputs": list(graph.declared_outputs), "nodes": nodes}


NODE_FIELDS = frozenset(["name", "op", "inputs", "params", "outputs", "label"])
NO_PARAMS: dict[str, Any] = {}
NO_INPUTS: list[str] = []


def graph_from_dict(data: Any) -> Graph:
    """Every field is checked where it is read; a node's op is built and checked once per distinct
    (op, params), so a chain of a million equal convolutions loads in seconds."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GraphFormatError(f"not a foveal graph: expected an object with \"format\": \"{FORMAT}\"")
    version = data.get("version")
    if type(version) is not int or version != VERSION:
        raise GraphFormatError(f"foveal graph format version {version!r} is not supported "
                               f"(this foveal reads version {VERSION})")
    axes = data.get("axes")
    nodes = data.get("nodes")
    if not isinstance(axes, list) or not axes or not isinstance(nodes, list):
        raise GraphFormatError("a foveal graph needs a non-empty \"axes\" list and a \"nodes\" list")
    try:
        graph = Graph(tuple(axes), name=data.get("name", "graph"))
    except GraphError as bad:
        raise GraphFormatError(str(bad)) from None
    n_axes = len(graph.axes)
    ops: dict[Any, O.Op] = {}
    for i, entry in enumerate(nodes):
        if type(entry) is not dict:
            raise GraphFormatError(f"node #{i} must be an object, got {quoted(entry)}")
        name, op_name = entry.get("name"), entry.get("op")
        if type(name) is not str or type(op_name) is not str:
            raise GraphFormatError(f"node #{i} needs a \"name\" and an \"op\", both strings")
        if len(entry) > 2 and not NODE_FIELDS.issuperset(entry):
            raise GraphFormatError(f"node {name!r} has unknown fields {sorted(set(entry) - NODE_FIELDS)}; "
                                   f"expected {sorted(NODE_FIELDS)}")
        params = entry.get("params", NO_PARAMS)
        key = (op_name, repr(params))  # repr tells 1, 1.0, true and "1" apart (== does not)
        op = ops.get(key)
        if op is None:
            op = ops[key] = _op(name, op_name, params, n_axes)
        inputs = entry.get("inputs", NO_INPUTS)
        if type(inputs) is not list:
            raise GraphFormatError(f"node {name!r}: \"inputs\" must be a list of node names")
        graph.add(name, op, inputs, entry.get("outputs", 1), entry.get("label"), normalized=True)
    outputs = data.get("outputs", [])
    if not isinstance(outputs, list):
        raise GraphFormatError("\"outputs\" must be a list of node names")
    if outputs:
        graph.set_outputs(*outputs)
    graph.validate()
    return graph


def _op(name: str, op_name: str, params: Any, n_axes: int) -> O.Op:
    """The checked op of a node: its class from `op_name`, its fields from `params`."""
    cls = O.OP_CLASSES.get(op_name)
    if cls is None:
        raise GraphFormatError(f"node {name!r} has op {op_name!r}, which is not in the format; "
                               f"known ops: {', '.join(sorted(O.OP_CLASSES))}")
    if not isinstance(params, dict):
        raise GraphFormatError(f"node {name!r}: \"params\" must be an object")
    fields = {f.name for f in dataclasses.fields(cls)}
    extra = set(params) - fields
    if extra:
        raise GraphFormatError(f"node {name!r} ({op_name}) has unknown params {sorted(extra)}; "
                               f"expected {sorted(fields)}")
    where = f"node {name!r} ({op_name})"
    try:
        op = cls(**{k: _decode(v, k, where) for k, v in params.items()})
    except TypeError as missing:
        raise GraphFormatError(f"{where}: {missing}") from None
    return O.normalize(op, n_axes, name)


def dumps(graph: Graph) -> str:
    """One node per line: readable, and diffs show which nodes changed."""
    data = graph_to_dict(graph)
    nodes = data.pop("nodes")
    head = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in data.items())
    body = ",\n".join(f"  {json.dumps(n)}" for n in nodes)
    return "{\n" + head + ',\n "nodes": [\n' + body + "\n ]\n}"


def loads(text: str) -> Graph:
    with paused_gc():
        try:
            data = json.loads(text)
        except json.JSONDecodeError as bad:
            raise GraphFormatError(
                f"malformed JSON at line {bad.lineno}, column {bad.colno}: {bad.msg}") from None
        except RecursionError:
            raise GraphFormatError("malformed JSON: nested too deeply") from None
        return graph_from_dict(data)


def load(path: str | os.PathLike[str]) -> Graph:
    p = Path(path)
    data = read_file(p, MAX_MEMBER_BYTES)
    if data[:2] == b"\x1f\x8b":  # gzipped (.json.gz), as the zoo's graphs are stored
        data = gunzip(data, str(p))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as bad:
        raise GraphFormatError(f"cannot read {p} as a foveal JSON graph: not UTF-8 text ({bad.reason} at "
                               f"byte {bad.start})") from None
    try:
        return loads(text)
    except GraphFormatError as bad:
        raise GraphFormatError(f"{p}: {bad}") from None


def save(graph: Graph, path: str | os.PathLike[str]) -> None:
    """Write atomically: a crash never leaves a partial file."""
    p = Path(path)
    text = dumps(graph)
    fd, tmp = tempfile.mkstemp(dir=p.parent or ".", prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
