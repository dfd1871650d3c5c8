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
from .errors import FovealError, GraphFormatError
from .graph import Graph

FORMAT = "foveal-graph"
VERSION = 1


def _encode(value: Any) -> Any:
    if isinstance(value, Fraction):
        return value.numerator if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if isinstance(value, str) and "/" in value:
        try:
            return Fraction(value)
        except ValueError:
            return value
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


def graph_from_dict(data: Any) -> Graph:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GraphFormatError(f"not a foveal graph: expected an object with \"format\": \"{FORMAT}\"")
    version = data.get("version")
    if version != VERSION:
        raise GraphFormatError(f"foveal graph format version {version!r} is not supported "
                               f"(this foveal reads version {VERSION})")
    axes = data.get("axes")
    nodes = data.get("nodes")
    if not isinstance(axes, list) or not axes or not isinstance(nodes, list):
        raise GraphFormatError("a foveal graph needs a non-empty \"axes\" list and a \"nodes\" list")
    graph = Graph(tuple(axes), name=str(data.get("name", "graph")))
    for i, entry in enumerate(nodes):
        if not isinstance(entry, dict) or "name" not in entry or "op" not in entry:
            raise GraphFormatError(f"node #{i} needs at least \"name\" and \"op\"")
        name, op_name = entry["name"], entry["op"]
        cls = O.OP_CLASSES.get(op_name)
        if cls is None:
            raise GraphFormatError(f"node {name!r} has op {op_name!r}, which is not in the format; "
                                   f"known ops: {', '.join(sorted(O.OP_CLASSES))}")
        params = entry.get("params", {})
        if not isinstance(params, dict):
            raise GraphFormatError(f"node {name!r}: \"params\" must be an object")
        fields = {f.name for f in dataclasses.fields(cls)}
        extra = set(params) - fields
        if extra:
            raise GraphFormatError(f"node {name!r} ({op_name}) has unknown params {sorted(extra)}; "
                                   f"expected {sorted(fields)}")
        try:
            op = cls(**{k: _decode(v) for k, v in params.items()})
        except TypeError as missing:
            raise GraphFormatError(f"node {name!r} ({op_name}): {missing}") from None
        inputs = entry.get("inputs", [])
        if not isinstance(inputs, list) or not all(isinstance(r, str) for r in inputs):
            raise GraphFormatError(f"node {name!r}: \"inputs\" must be a list of node names")
        graph.add(name, op, inputs, entry.get("outputs", 1), entry.get("label"))
    outputs = data.get("outputs", [])
    if outputs:
        graph.set_outputs(*outputs)
    graph.validate()
    return graph


def dumps(graph: Graph) -> str:
    """One node per line: readable, and diffs show which nodes changed."""
    data = graph_to_dict(graph)
    nodes = data.pop("nodes")
    head = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in data.items())
    body = ",\n".join(f"  {json.dumps(n)}" for n in nodes)
    return "{\n" + head + ',\n "nodes": [\n' + body + "\n ]\n}"


def loads(text: str) -> Graph:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as bad:
        raise GraphFormatError(
            f"malformed JSON at line {bad.lineno}, column {bad.colno}: {bad.msg}") from None
    return graph_from_dict(data)


def load(path: str | os.PathLike[str]) -> Graph:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FovealError(f"no such file: {p}") from None
    except (OSError, UnicodeDecodeError) as bad:
        raise GraphFormatError(f"cannot read {p} as a foveal JSON graph: {bad}") from None
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
