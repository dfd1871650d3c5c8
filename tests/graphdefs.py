"""TensorFlow GraphDefs built with foveal's own schema classes (no TensorFlow needed), and the TF-slim
fixtures: the builders that the hostile tests (test_tensorflow_hostile.py) and the graphdef and
pbtxt fuzz formats (fuzz/fmt_graphdef.py) share. Importing this module needs nothing; building a
graph needs google.protobuf."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

SLIM = Path(__file__).resolve().parent / "fixtures" / "slim"
"""The TF-slim GraphDefs of the reference table (`<name>.pb.gz`)."""

INT32, INT64, FLOAT = 3, 9, 1
"""DataType values."""


def new_graph() -> Any:
    """An empty GraphDef."""
    from foveal.tensorflow.schema import message_classes

    return message_classes()["GraphDef"]()


def slim_graph(name: str) -> Any:
    """The TF-slim fixture `name` (alexnet_v2, vgg_a, inception_v3...), parsed."""
    graph = new_graph()
    graph.ParseFromString(gzip.decompress((SLIM / f"{name}.pb.gz").read_bytes()))
    return graph


def new_node(graph: Any, name: str, op: str, *inputs: str, **attrs: Any) -> Any:
    """A node; attrs: a list of ints, bytes, an int, a bool (the AttrValue oneof by type)."""
    node = graph.node.add(name=name, op=op)
    node.input.extend(inputs)
    for key, value in attrs.items():
        if isinstance(value, list):
            node.attr[key].list.i.extend(value)
        elif isinstance(value, bytes):
            node.attr[key].s = value
        elif isinstance(value, bool):
            node.attr[key].b = value
        else:
            node.attr[key].i = value
    return node


def placeholder(graph: Any, name: str, dims: tuple[int, ...], dtype: int | None = FLOAT) -> Any:
    """A Placeholder of shape `dims` (-1: unknown) and type `dtype` (None: no dtype attribute)."""
    node = new_node(graph, name, "Placeholder")
    if dtype is not None:
        node.attr["dtype"].type = dtype
    for size in dims:
        node.attr["shape"].shape.dim.add(size=size)
    return node


def const(graph: Any, name: str, dims: list[int], values: list[int] | None = None, dtype: int = INT32, *,
          dtype_attr: bool = True) -> Any:
    """A Const whose tensor has shape `dims` and, when given, integer `values` (no values: a
    declared shape only, as a weight foveal never reads); `dtype_attr`: the node's dtype attribute
    too, as TensorFlow writes it (foveal reads only the tensor's)."""
    node = graph.node.add(name=name, op="Const")
    tensor = node.attr["value"].tensor
    tensor.dtype = dtype
    if dtype_attr:
        node.attr["dtype"].type = dtype
    for size in dims:
        tensor.tensor_shape.dim.add(size=size)
    if values is not None:
        (tensor.int64_val if dtype == INT64 else tensor.int_val).extend(values)
    return node
