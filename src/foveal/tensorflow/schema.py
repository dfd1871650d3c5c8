"""The part of TensorFlow's GraphDef schema foveal reads, declared here so that parsing a .pb or
.pbtxt file needs only the `protobuf` runtime, not TensorFlow.

Field numbers and names are those of tensorflow/core/framework/{graph,node_def,attr_value,tensor,
tensor_shape,function,op_def,versions,types}.proto. Fields foveal never reads (debug info, resource
handles, gradients) are left out: a binary parse keeps them as unknown fields, and a text parse
skips them. The classes live in a private descriptor pool, so they never clash with TensorFlow's
own when both are imported.
"""

from __future__ import annotations

from functools import cache
from typing import Any

PACKAGE = "tensorflow"

DATA_TYPES = [
    "DT_INVALID", "DT_FLOAT", "DT_DOUBLE", "DT_INT32", "DT_UINT8", "DT_INT16", "DT_INT8", "DT_STRING",
    "DT_COMPLEX64", "DT_INT64", "DT_BOOL", "DT_QINT8", "DT_QUINT8", "DT_QINT32", "DT_BFLOAT16",
    "DT_QINT16", "DT_QUINT16", "DT_UINT16", "DT_COMPLEX128", "DT_HALF", "DT_RESOURCE", "DT_VARIANT",
    "DT_UINT32", "DT_UINT64", "DT_FLOAT8_E5M2", "DT_FLOAT8_E4M3FN",
]
"""DataType values 0..25 in order; each X also exists as X_REF = value + 100 (old graphs)."""

OPTIONAL, REPEATED = 1, 3
# (field name, number, type, label); a type is a scalar name, "DataType", or a message name;
# ("map", key type, value type) declares a proto map
MESSAGES: dict[str, list[tuple[str, int, Any, int]]] = {
    "GraphDef": [("node", 1, "NodeDef", REPEATED), ("library", 2, "FunctionDefLibrary", OPTIONAL),
                 ("version", 3, "int32", OPTIONAL), ("versions", 4, "VersionDef", OPTIONAL)],
    "NodeDef": [("name", 1, "string", OPTIONAL), ("op", 2, "string", OPTIONAL),
                ("input", 3, "string", REPEATED), ("device", 4, "string", OPTIONAL),
                ("attr", 5, ("map", "string", "AttrValue"), REPEATED)],
    "AttrValue": [("list", 1, "AttrValue.ListValue", OPTIONAL), ("s", 2, "bytes", OPTIONAL),
                  ("i", 3, "int64", OPTIONAL), ("f", 4, "float", OPTIONAL), ("b", 5, "bool", OPTIONAL),
                  ("type", 6, "DataType", OPTIONAL), ("shape", 7, "TensorShapeProto", OPTIONAL),
                  ("tensor", 8, "TensorProto", OPTIONAL), ("placeholder", 9, "string", OPTIONAL),
                  ("func", 10, "NameAttrList", OPTIONAL)],
    "AttrValue.ListValue": [("s", 2, "bytes", REPEATED), ("i", 3, "int64", REPEATED),
                            ("f", 4, "float", REPEATED), ("b", 5, "bool", REPEATED),
                            ("type", 6, "DataType", REPEATED), ("shape", 7, "TensorShapeProto", REPEATED),
                            ("tensor", 8, "TensorProto", REPEATED), ("func", 9, "NameAttrList", REPEATED)],
    "NameAttrList": [("name", 1, "string", OPTIONAL), ("attr", 2, ("map", "string", "AttrValue"), REPEATED)],
    "TensorShapeProto": [("dim", 2, "TensorShapeProto.Dim", REPEATED), ("unknown_rank", 3, "bool", OPTIONAL)],
    "TensorShapeProto.Dim": [("size", 1, "int64", OPTIONAL), ("name", 2, "string", OPTIONAL)],
    "TensorProto": [("dtype", 1, "DataType", OPTIONAL), ("tensor_shape", 2, "TensorShapeProto", OPTIONAL),
                    ("version_number", 3, "int32", OPTIONAL), ("tensor_content", 4, "bytes", OPTIONAL),
                    ("float_val", 5, "float", REPEATED), ("double_val", 6, "double", REPEATED),
                    ("int_val", 7, "int32", REPEATED), ("string_val", 8, "bytes", REPEATED),
                    ("scomplex_val", 9, "float", REPEATED), ("int64_val", 10, "int64", REPEATED),
                    ("bool_val", 11, "bool", REPEATED), ("dcomplex_val", 12, "double", REPEATED),
                    ("half_val", 13, "int32", REPEATED), ("uint32_val", 16, "uint32", REPEATED),
                    ("uint64_val", 17, "uint64", REPEATED)],
    "FunctionDefLibrary": [("function", 1, "FunctionDef", REPEATED)],
    "FunctionDef": [("signature", 1, "OpDef", OPTIONAL),
                    ("attr", 5, ("map", "string", "AttrValue"), REPEATED),
                    ("node_def", 3, "NodeDef", REPEATED), ("ret", 4, ("map", "string", "string"), REPEATED),
                    ("control_ret", 6, ("map", "string", "string"), REPEATED)],
    "OpDef": [("name", 1, "string", OPTIONAL), ("input_arg", 2, "OpDef.ArgDef", REPEATED),
              ("output_arg", 3, "OpDef.ArgDef", REPEATED), ("control_output", 20, "string", REPEATED)],
    "OpDef.ArgDef": [("name", 1, "string", OPTIONAL), ("description", 2, "string", OPTIONAL),
                     ("type", 3, "DataType", OPTIONAL), ("type_attr", 4, "string", OPTIONAL),
                     ("number_attr", 5, "string", OPTIONAL), ("type_list_attr", 6, "string", OPTIONAL),
                     ("is_ref", 16, "bool", OPTIONAL)],
    "VersionDef": [("producer", 1, "int32", OPTIONAL), ("min_consumer", 2, "int32", OPTIONAL),
                   ("bad_consumers", 3, "int32", REPEATED)],
}

ONEOFS = {"AttrValue": "value"}
"""Messages whose fields all belong to one oneof (so b: false is told apart from no value)."""


@cache
def message_classes() -> dict[str, Any]:
    """Message classes by name ('GraphDef', 'NodeDef', ...), built once from the table above."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    scalar = descriptor_pb2.FieldDescriptorProto
    scalars = {"string": scalar.TYPE_STRING, "bytes": scalar.TYPE_BYTES, "int32": scalar.TYPE_INT32,
               "int64": scalar.TYPE_INT64, "uint32": scalar.TYPE_UINT32, "uint64": scalar.TYPE_UINT64,
               "float": scalar.TYPE_FLOAT, "double": scalar.TYPE_DOUBLE, "bool": scalar.TYPE_BOOL}
    file = descriptor_pb2.FileDescriptorProto(name="foveal/tensorflow_graph.proto", package=PACKAGE,
                                             syntax="proto3")
    enum = file.enum_type.add(name="DataType")
    for i, name in enumerate(DATA_TYPES):
        enum.value.add(name=name, number=i)
    for i, name in enumerate(DATA_TYPES[1:], start=101):
        enum.value.add(name=f"{name}_REF", number=i)

    def declare(message: Any, name: str, fields: list[tuple[str, int, Any, int]]) -> None:
        for field_name, number, kind, label in fields:
            field = message.field.add(name=field_name, number=number, label=label)
            if isinstance(kind, tuple):  # a map: a nested KeyEntry message with map_entry set
                entry = message.nested_type.add(name=f"{field_name.title().replace('_', '')}Entry")
                entry.options.map_entry = True
                declare(entry, entry.name, [("key", 1, kind[1], OPTIONAL), ("value", 2, kind[2], OPTIONAL)])
                field.type = scalar.TYPE_MESSAGE
                field.type_name = f".{PACKAGE}.{name}.{entry.name}"
            elif kind in scalars:
                field.type = scalars[kind]
            elif kind == "DataType":
                field.type, field.type_name = scalar.TYPE_ENUM, f".{PACKAGE}.DataType"
            else:
                field.type, field.type_name = scalar.TYPE_MESSAGE, f".{PACKAGE}.{kind}"

    made: dict[str, Any] = {}
    for full_name, fields in MESSAGES.items():
        outer, _, inner = full_name.partition(".")
        parent = made.get(outer) if inner else None
        message = (parent.nested_type.add(name=inner) if parent is not None
                   else file.message_type.add(name=full_name))
        made[full_name] = message
        declare(message, full_name, fields)
        if full_name in ONEOFS:
            message.oneof_decl.add(name=ONEOFS[full_name])
            for field in message.field:
                field.oneof_index = 0
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
            for name in MESSAGES}
