"""Read an ONNX model's structure: from a path, bytes or a ModelProto, checked, its local functions
inlined, and its per-edge shapes inferred at the size being analysed.

Only the graph is read: weights stored in external files are never opened (their shapes are in
the model), and nothing is executed. Shape inference runs on a copy without the weights' data,
which keeps it fast on models of hundreds of megabytes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import FovealError, GraphFormatError

KNOWN_OPSETS = range(1, 29)
"""ai.onnx opsets whose op definitions foveal follows (ONNX 1.23 defines up to 28)."""

DEFAULT_DOMAINS = ("", "ai.onnx")

Dims = tuple[int | str | None, ...]
"""A tensor's shape: an int, a symbolic name (dim_param) or None (unknown) per dimension."""


def onnx_module() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise FovealError(f"reading ONNX models needs the onnx package ({exc}); install "
                          f"foveal[onnx]") from None
    return onnx


def is_onnx_model(obj: Any) -> bool:
    """A ModelProto or a path ending in .onnx, without importing onnx."""
    if isinstance(obj, (str, os.PathLike)):
        return str(obj).lower().endswith(".onnx")
    return type(obj).__name__ == "ModelProto" and type(obj).__module__.startswith("onnx")


def read_model(source: Any) -> Any:
    """The ModelProto in `source`, checked, with model-local functions inlined."""
    onnx = onnx_module()
    if isinstance(source, onnx.ModelProto):
        model, where = source, "the model"
    elif isinstance(source, (bytes, bytearray)):
        model, where = _parse(onnx, bytes(source), "the bytes"), "the bytes"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise GraphFormatError(f"{path}: no such ONNX file")
        where = str(path)
        model = _parse(onnx, path.read_bytes(), where)
    else:
        raise FovealError(f"cannot read an ONNX model from a {type(source).__name__}")
    _check(model, where)
    if model.functions:
        import onnx.inliner  # a submodule `import onnx` does not load

        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as exc:  # onnx reports malformed functions in its own words
            raise GraphFormatError(f"{where}: its functions cannot be inlined ({_first_line(exc)})") from None
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
    return text[0] if text else type(exc).__name__


def _check(model: Any, where: str) -> None:
    """What a complete model has: a graph with nodes, inputs and outputs, known opsets, and every
    node input produced by something (a file cut at a field boundary still parses)."""
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
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    known.update(name for node in graph.node for name in node.output)  # nodes need not be sorted
    local = {(f.domain, f.name) for f in model.functions}
    for node in graph.node:
        for name in node.input:
            if name not in known:
                raise GraphFormatError(f"{where} is truncated or malformed: node "
                                       f"{node.name or node.op_type!r} reads {name!r}, which no "
                                       f"node, input or initializer provides")
        if node.domain not in DEFAULT_DOMAINS and (node.domain, node.op_type) not in local \
                and not any(i.domain == node.domain for i in model.opset_import):
            raise GraphFormatError(f"{where}: node {node.name or node.op_type!r} is in domain "
                                   f"{node.domain!r}, which the model does not import")
    for out in graph.output:
        if out.name not in known:
            raise GraphFormatError(f"{where} is truncated or malformed: output {out.name!r} is "
                                   f"produced by no node")


def ai_onnx_opset(model: Any) -> int:
    for entry in model.opset_import:
        if entry.domain in DEFAULT_DOMAINS:
            return int(entry.version)
    return 1  # models from before opset imports (IR version < 3)


def infer_shapes(model: Any, input_name: str, input_dims: Dims,
                 values: dict[str, Any] | None = None) -> dict[str, Dims]:
    """Every tensor's shape as ONNX shape inference finds it with the input set to `input_dims`;
    {} when inference fails (the decisions that need a shape then say so). `values` are tensors
    foveal folded (shape arithmetic ONNX's own data propagation does not follow): nodes read them
    as constants."""
    onnx = onnx_module()
    copy = _structure(onnx, model, input_name, input_dims, values or {})
    try:
        inferred = onnx.shape_inference.infer_shapes(copy, strict_mode=False, data_prop=True)
    except Exception:  # a model onnx cannot infer: shapes stay unknown
        return {}
    shapes: dict[str, Dims] = {}
    graph = inferred.graph
    for info in (*graph.input, *graph.value_info, *graph.output):
        dims = value_dims(info)
        if dims is not None:
            shapes[info.name] = dims
    for tensor in graph.initializer:
        shapes[tensor.name] = tuple(int(d) for d in tensor.dims)
    return shapes


def value_dims(info: Any) -> Dims | None:
    """A ValueInfoProto's shape, or None when its rank is unknown."""
    kind = info.type.WhichOneof("value")
    if kind != "tensor_type" or not info.type.tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                 for d in info.type.tensor_type.shape.dim)


WEIGHT_ELEMENTS = 64
"""Float initializers larger than this are weights: shape inference gets only their shapes."""


def _structure(onnx: Any, model: Any, input_name: str, input_dims: Dims, values: dict[str, Any]) -> Any:
    """A copy of the model without the weights' data, its input set to `input_dims`, and
    `values` given to the nodes that read them as constants."""
    copy = onnx.ModelProto()
    copy.ir_version = model.ir_version
    copy.opset_import.extend(model.opset_import)
    graph, g = model.graph, copy.graph
    g.node.extend(graph.node)
    if values:
        for node in g.node:
            for i, name in enumerate(node.input):
                if name in values:
                    node.input[i] = f"{name}::folded"
        for name, value in values.items():
            g.initializer.append(onnx.numpy_helper.from_array(value, f"{name}::folded"))
    g.output.extend(graph.output)
    g.value_info.extend(graph.value_info)
    declared = {i.name for i in graph.input}
    for info in graph.input:
        if info.name == input_name:
            info = _with_dims(onnx, info, input_dims)
        g.input.append(info)
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
              onnx.TensorProto.BFLOAT16}
    for tensor in graph.initializer:
        count = 1
        for d in tensor.dims:
            count *= d
        if tensor.data_type in floats and count > WEIGHT_ELEMENTS:
            if tensor.name not in declared:
                g.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type,
                                                                   list(tensor.dims)))
        elif not _external(tensor):
            g.initializer.append(tensor)
    return copy


def _external(tensor: Any) -> bool:
    return tensor.data_location == 1  # TensorProto.EXTERNAL: the data is in another file


def _with_dims(onnx: Any, info: Any, dims: Dims) -> Any:
    out = onnx.ValueInfoProto()
    out.CopyFrom(info)
    shape = out.type.tensor_type.shape
    shape.ClearField("dim")
    for d in dims:
        entry = shape.dim.add()
        if isinstance(d, int):
            entry.dim_value = d
        elif isinstance(d, str):
            entry.dim_param = d
    return out
