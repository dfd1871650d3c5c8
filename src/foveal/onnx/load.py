"""Read an ONNX model's structure: from a path, bytes or a ModelProto, checked, its local functions
inlined, and its per-edge shapes inferred at the size being analysed.

Only the graph is read: weights stored in external files are never opened (their shapes are in
the model), and nothing is executed. Shape inference runs node by node on the declared types,
never on the weights' data, which keeps it fast on models of hundreds of megabytes and bounded
on hostile ones (`infer_shapes`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import FovealError, GraphFormatError, quoted
from ..files import is_regular_file, read_file
from ..limits import MAX_AXIS_LENGTH, LimitError
from .fields import KNOWN_TYPES, MAX_RANK, bounded, node_label, tensor_dims

KNOWN_OPSETS = range(1, 29)
"""ai.onnx opsets whose op definitions foveal follows (ONNX 1.23 defines up to 28)."""

DEFAULT_DOMAINS = ("", "ai.onnx")

MAX_INLINED_NODES = 1_000_000
"""Nodes of a graph once its model-local functions are inlined (real models have up to ~10^5)."""

_label = node_label
OP_NAME = re.compile(r"[^\s\x00-\x1f\x7f]{1,256}")
"""An op type or a domain: printable, no spaces (every message can quote it as it is)."""

Dims = tuple[int | str | None, ...]
"""A tensor's shape: an int, a symbolic name (dim_param) or None (unknown) per dimension."""


def onnx_module() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise FovealError(f"reading ONNX models needs the onnx package, which cannot be imported "
                          f"({exc}); install foveal[onnx]") from None
    return onnx


def is_onnx_model(obj: Any) -> bool:
    """A ModelProto or a path ending in .onnx, without importing onnx."""
    if isinstance(obj, (str, os.PathLike)):
        return str(obj).lower().endswith(".onnx")
    return type(obj).__name__ == "ModelProto" and type(obj).__module__.startswith("onnx")


def read_model(source: Any) -> Any:
    """The ModelProto in `source`, checked (`check_model`), with model-local functions inlined.

    A path is checked to be a regular file before onnx is imported (a missing file is reported
    as such even where onnx is not installed) and read with a bounded size (foveal.files)."""
    if isinstance(source, (str, os.PathLike)):
        where = str(Path(source))
        if not is_regular_file(source):
            read_file(source)  # says why: missing, a folder, a FIFO or a device
        onnx = onnx_module()
        model = _parse(onnx, read_file(source), where)
    else:
        onnx = onnx_module()
        if isinstance(source, onnx.ModelProto):
            model, where = source, "the model"
        elif isinstance(source, (bytes, bytearray)):
            model, where = _parse(onnx, bytes(source), "the bytes"), "the bytes"
        else:
            raise FovealError(f"cannot read an ONNX model from a {type(source).__name__}")
    check_text(model, where)
    if model.functions:
        check_functions(model, where)
        import onnx.inliner  # a submodule `import onnx` does not load

        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as exc:  # onnx reports malformed functions in its own words
            raise GraphFormatError(f"{where}: its functions cannot be inlined ({_first_line(exc)})") from None
    check_model(model, where)
    return model


def _parse(onnx: Any, data: bytes, where: str) -> Any:
    if not data:
        raise GraphFormatError(f"{where} is empty, not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError: truncated or not a protobuf at all
        raise GraphFormatError(f"{where} is not an ONNX model, or is truncated "
                               f"({_first_line(exc)})") from None
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# -- checks: what a complete, well-formed model has ------------------------------------------------
def _graphs(graph: Any) -> Iterator[Any]:
    """`graph` and every subgraph in its nodes' attributes (If, Loop, Scan bodies), iteratively."""
    todo = [graph]
    while todo:
        g = todo.pop()
        yield g
        for node in g.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    todo.append(attr.g)
                todo.extend(attr.graphs)


def check_text(model: Any, where: str) -> None:
    """Every name foveal reads is text. Protobuf hands a string field that is not UTF-8 over as
    bytes; ONNX requires UTF-8, so such a model is refused here, before any name is used."""
    def check(value: Any, what: str) -> None:
        if not isinstance(value, str):
            raise GraphFormatError(f"{where}: {what} is not UTF-8 text ({bytes(value)[:40]!r})")

    for entry in model.opset_import:
        check(entry.domain, "an opset import's domain")
    bodies = [(f"function {quoted(f.name)}", f) for f in model.functions]
    for kind, function in bodies:
        check(function.name, "a function's name")
        check(function.domain, f"{kind}'s domain")
        for name in [*function.input, *function.output, *function.attribute]:
            check(name, f"a name in {kind}")
    graphs = [("the graph", g) for g in _graphs(model.graph)]
    graphs += [(kind, g) for kind, f in bodies for g in _graphs(f)]
    for kind, graph in graphs:
        is_graph = hasattr(graph, "initializer")  # a GraphProto, not a FunctionProto
        infos = [*graph.input, *graph.output] if is_graph else []
        for info in [*infos, *graph.value_info]:
            check(info.name, f"a value name in {kind}")
            if info.type.HasField("tensor_type"):
                for d in info.type.tensor_type.shape.dim:
                    check(d.dim_param, f"a dimension name of {quoted(info.name)}")
        for tensor in getattr(graph, "initializer", ()):
            check(tensor.name, f"an initializer name in {kind}")
        for k, node in enumerate(graph.node):
            what = f"node #{k} of {kind}"
            for field in (node.name, node.op_type, node.domain):
                check(field, what + "'s name, op or domain")
            for field, value in (("op type", node.op_type), ("domain", node.domain)):
                if not OP_NAME.fullmatch(value) and (value or field == "op type"):
                    raise GraphFormatError(f"{where}: {what} has {field} {quoted(value)}, which is not a "
                                           f"name (at most 256 characters, no spaces or control characters)")
            for name in [*node.input, *node.output]:
                check(name, f"an input or output of {what}")
            for attr in node.attribute:
                check(attr.name, f"an attribute name of {what}")
                check(attr.ref_attr_name, f"an attribute reference of {what}")


def check_functions(model: Any, where: str) -> None:
    """Model-local functions neither call themselves (directly or through others) nor grow the
    graph past MAX_INLINED_NODES when inlined (a function calling another twice, 30 levels deep,
    would be 2^30 nodes)."""
    functions = {(f.domain, f.name): f for f in model.functions}

    def calls(nodes: Any) -> list[Any]:
        out = []
        for node in nodes:
            key = (node.domain, node.op_type)
            out.append(key if key in functions else None)
        return out

    size: dict[Any, int] = {}
    state: dict[Any, str] = {}
    for root in functions:
        stack = [root]
        while stack:
            key = stack[-1]
            if state.get(key) is None:
                state[key] = "open"
                callees = [c for c in calls(functions[key].node) if c is not None]
                for callee in callees:
                    if state.get(callee) == "open":
                        raise GraphFormatError(f"{where}: function {quoted(callee[1])} calls itself "
                                               f"(directly or through other functions)")
                    if state.get(callee) is None:
                        stack.append(callee)
                continue
            stack.pop()
            if state[key] == "open":
                state[key] = "done"
                size[key] = min(sum(size[c] if c is not None else 1 for c in calls(functions[key].node)),
                                MAX_INLINED_NODES + 1)
    total = sum(size[c] if c is not None else 1 for c in calls(model.graph.node))
    if total > MAX_INLINED_NODES:
        raise LimitError(f"{where}: inlining its functions would make more than {MAX_INLINED_NODES:,} "
                         f"nodes, beyond foveal's limit")


def check_model(model: Any, where: str) -> None:
    """What a complete model has: a graph with nodes, inputs and outputs, known opsets, every node
    input produced by something (a file cut at a field boundary still parses), every tensor
    produced once, and declared dims and data types that ONNX allows."""
    graph = model.graph
    if not model.HasField("graph") or not graph.node:
        raise GraphFormatError(f"{where} is not an ONNX model, or is truncated (no graph nodes)")
    if not graph.input or not graph.output:
        raise GraphFormatError(f"{where} is truncated or malformed: its graph declares no "
                               f"{'inputs' if not graph.input else 'outputs'}")
    opset = ai_onnx_opset(model)
    if model.ir_version >= 3 and not model.opset_import:
        raise GraphFormatError(f"{where} is truncated or malformed: it imports no opset")
    if opset not in KNOWN_OPSETS:
        raise GraphFormatError(f"{where} uses ai.onnx opset {opset}, which foveal does not know "
                               f"(it follows opsets {KNOWN_OPSETS[0]} to {KNOWN_OPSETS[-1]}); export "
                               f"with an older opset or convert the model with "
                               f"onnx.version_converter.convert_version")
    for info in graph.input:
        declared_dims(info, f"{where}: input {quoted(info.name)}")
    known = {""}
    for tensor in graph.initializer:
        what = f"{where}: initializer {quoted(tensor.name)}"
        if tensor.data_type not in KNOWN_TYPES:
            raise GraphFormatError(f"{what} has data type {tensor.data_type}, which ONNX does not define")
        tensor_dims(tensor, what)
        known.add(tensor.name)
    known.update(i.name for i in graph.input)
    known.update(t.values.name for t in graph.sparse_initializer)
    for node in graph.node:  # nodes need not be sorted
        if not node.output or not any(node.output):
            raise GraphFormatError(f"{where}: node {quoted(_label(node))} ({node.op_type}) has no outputs")
        for name in node.output:
            if name and name in known:
                raise GraphFormatError(f"{where}: tensor {quoted(name)} is produced twice (by node "
                                       f"{quoted(_label(node))} and another node or input)")
            known.add(name)
    local = {(f.domain, f.name) for f in model.functions}
    for node in graph.node:
        for name in node.input:
            if name not in known:
                raise GraphFormatError(f"{where} is truncated or malformed: node "
                                       f"{quoted(_label(node))} reads {quoted(name)}, which no "
                                       f"node, input or initializer provides")
        if node.domain not in DEFAULT_DOMAINS and (node.domain, node.op_type) not in local \
                and not any(i.domain == node.domain for i in model.opset_import):
            raise GraphFormatError(f"{where}: node {quoted(_label(node))} is in domain "
                                   f"{quoted(node.domain)}, which the model does not import")
    for out in graph.output:
        if out.name not in known:
            raise GraphFormatError(f"{where} is truncated or malformed: output {quoted(out.name)} is "
                                   f"produced by no node")


def declared_dims(info: Any, what: str) -> Dims | None:
    """A declared value's shape, checked: rank at most MAX_RANK, each length in [0, MAX_AXIS_LENGTH]."""
    dims = value_dims(info, checked=False)
    if dims is None:
        return None
    if len(dims) > MAX_RANK:
        raise LimitError(f"{what} has {len(dims)} dimensions, beyond foveal's limit of {MAX_RANK}")
    for d in dims:
        if isinstance(d, int):
            bounded(d, f"{what}: a dimension", minimum=0, limit=MAX_AXIS_LENGTH)
    return dims


def ai_onnx_opset(model: Any) -> int:
    for entry in model.opset_import:
        if entry.domain in DEFAULT_DOMAINS:
            return int(entry.version)
    return 1  # models from before opset imports (IR version < 3)


def infer_shapes(model: Any, input_name: str, input_dims: Dims, nodes: list[Any],
                 constant: Callable[[str], Any], shapes: dict[str, Dims]) -> None:
    """Every tensor's shape with the input set to `input_dims`, written into `shapes`.

    The nodes are visited in `nodes`' (topological) order and each op's own ONNX inference
    function runs on its node, as `onnx.shape_inference` would run it, given the types found so
    far and, as the data its data propagation would have found, the constant inputs foveal folds
    (`constant(name)`: a small numpy array or None; it may read `shapes`, which holds every
    earlier tensor's shape by then). Folding follows shape arithmetic that ONNX's data
    propagation does not, so one pass suffices.

    Node by node, because each output's type is checked before any other node reads it: a rank
    beyond MAX_RANK is an unknown rank, a length outside [0, MAX_AXIS_LENGTH] an unknown length.
    ONNX's whole-graph inference has no such bound: a chain of 30 Gather(x, x) nodes builds a
    shape of rank 2^30, and its data propagation writes out a ConstantOfShape of 10^9 elements.
    Nodes with subgraphs (If, Loop, Scan) and ops of other domains are not inferred; their
    outputs keep the types the model declares (value_info, graph outputs), if any. An op ONNX
    cannot infer (inputs that contradict it) leaves its outputs unknown. Weights are never read:
    only their declared types reach inference."""
    onnx = onnx_module()
    from onnx import defs

    opsets = {("" if o.domain in DEFAULT_DOMAINS else o.domain): int(o.version) for o in model.opset_import}
    opsets.setdefault("", 1)
    graph = model.graph
    types: dict[str, Any] = {}
    unknown = onnx.TypeProto()
    opset_imports = [onnx.helper.make_opsetid(domain, version) for domain, version in opsets.items()]

    def record(name: str, kind: Any) -> None:
        kind = _checked_type(onnx, kind)
        if kind is None:
            return
        types[name] = kind
        info = onnx.ValueInfoProto(name=name)
        info.type.CopyFrom(kind)
        dims = value_dims(info)
        if dims is not None:
            shapes[name] = dims

    for tensor in graph.initializer:
        record(tensor.name, onnx.helper.make_tensor_type_proto(tensor.data_type, list(tensor.dims)))
    for info in graph.input:
        kind = info.type
        if info.name == input_name:
            kind = onnx.TypeProto()
            kind.CopyFrom(info.type)
            shape = kind.tensor_type.shape
            shape.ClearField("dim")
            for d in input_dims:
                entry = shape.dim.add()
                if isinstance(d, int):
                    entry.dim_value = d
                elif isinstance(d, str):
                    entry.dim_param = d
        record(info.name, kind)
    declared = {info.name: info.type for info in (*graph.value_info, *graph.output)}
    schemas: dict[tuple[str, str], Any] = {}
    for node in nodes:
        domain = "" if node.domain in DEFAULT_DOMAINS else node.domain
        key = (domain, node.op_type)
        if key not in schemas:
            try:
                schemas[key] = defs.get_schema(node.op_type, opsets.get(domain, 1), domain)
            except Exception:  # no such op at this opset (or a domain onnx does not know)
                schemas[key] = None
        schema = schemas[key]
        found: dict[str, Any] = {}
        if schema is not None and not any(a.HasField("g") or a.graphs for a in node.attribute):
            data = {}
            for name in dict.fromkeys(node.input):
                value = constant(name) if name else None
                if value is not None:
                    data[name] = onnx.numpy_helper.from_array(value, name)
            try:
                found = onnx.shape_inference.infer_node_outputs(
                    schema, node, {n: types.get(n, unknown) for n in node.input if n}, data,
                    opset_imports=opset_imports, ir_version=model.ir_version or 3)
            except Exception:  # inputs that contradict the op: its outputs stay unknown
                found = {}
        for name in node.output:
            if not name:
                continue
            if name in found:
                kind = found[name]
                shapeless = kind.HasField("tensor_type") and not kind.tensor_type.HasField("shape")
                if shapeless and name in declared:
                    kind = declared[name]
            else:
                kind = declared.get(name)
            if kind is not None:
                record(name, kind)


MAX_TYPE_BYTES = 4096
"""A type that is not a tensor's (a sequence, an optional...) is kept when it is this small."""


def _checked_type(onnx: Any, kind: Any) -> Any:
    """`kind`, or a copy with the shape cut to what foveal allows: a tensor of rank beyond
    MAX_RANK has an unknown rank, a length outside [0, MAX_AXIS_LENGTH] is unknown; None for a
    type that is not a tensor's and is large."""
    if not kind.HasField("tensor_type"):
        return kind if kind.ByteSize() <= MAX_TYPE_BYTES else None
    tensor = kind.tensor_type
    if not tensor.HasField("shape"):
        return kind
    dims = tensor.shape.dim
    if len(dims) <= MAX_RANK and all(not d.HasField("dim_value") or 0 <= d.dim_value <= MAX_AXIS_LENGTH
                                     for d in dims):
        return kind
    out = onnx.TypeProto()
    out.tensor_type.elem_type = tensor.elem_type
    if len(dims) <= MAX_RANK:
        for d in dims:
            entry = out.tensor_type.shape.dim.add()
            if d.HasField("dim_value") and 0 <= d.dim_value <= MAX_AXIS_LENGTH:
                entry.dim_value = d.dim_value
            elif d.HasField("dim_param"):
                entry.dim_param = d.dim_param
    return out


def value_dims(info: Any, checked: bool = True) -> Dims | None:
    """A ValueInfoProto's shape, or None when its rank is unknown. `checked`: a rank beyond
    MAX_RANK is unknown, and so is a length outside [0, MAX_AXIS_LENGTH]."""
    kind = info.type.WhichOneof("value")
    if kind != "tensor_type" or not info.type.tensor_type.HasField("shape"):
        return None
    dim = info.type.tensor_type.shape.dim
    if checked and len(dim) > MAX_RANK:
        return None
    dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dim)
    if checked:
        dims = tuple(None if isinstance(d, int) and not 0 <= d <= MAX_AXIS_LENGTH else d for d in dims)
    return dims
