"""Saved torch.export programs (`.pt2`), read without running anything the file says.

A `.pt2` file is a zip archive. foveal reads one member of it, the program's JSON
(`models/<name>.json`), bounded in size, and nothing else: no weight is read, nothing is
unpickled. Before torch sees any of it, the JSON is checked and rewritten here:

- every field has the type torch's schema gives it (`torch._export.serde.schema`); fields torch
  does not know are dropped;
- every symbolic size (`{"as_expr": {"expr_str": ...}}`) is parsed by foveal's own grammar
  (`sym_expr`) and evaluated at the input shape being analysed, then replaced by the integer:
  torch, which reads such text with `sympy.sympify` (Python's `eval`), only ever sees integers.
  The program's ranges and shape assertions are checked at that shape first;
- every call target is an ATen or prims operator registered with the dispatcher and returning
  tensors, so that fake tensors intercept it (no Python function, no TorchScript builtin such as
  `aten::save`, no `#` extension, no custom object), or a `torch.no_grad()` block whose subgraph
  follows the same rules. Size arithmetic (`_operator.mul`, `aten.sym_size`, ...) is never called:
  foveal evaluates it and removes the node;
- every device becomes `meta`, and every parameter, buffer and constant a meta tensor of the
  recorded shape and dtype; batch norm and dropout are read in inference mode, as foveal captures
  modules;
- names are Python identifiers (fx turns them into variables of generated code), module paths
  printable text; node metadata other than `nn_module_stack` (stack traces, `source_fn_stack`,
  whose targets torch resolves by name) is dropped, and so are `guards_code` (Python source) and
  the module call graph's tree specs;
- counts are bounded: bytes, JSON containers, nodes, recorded sizes, tensors per list, and the
  tensors a split or unbind returns.

torch's own deserializer then builds the ExportedProgram from the rewritten program, which holds
only integers, identifiers, plain constants and operators of the allow-list.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import keyword
import os
import re
import types
import typing
from typing import Any

import torch

from ..errors import FovealError, quoted
from ..files import open_zip, read_member
from ..limits import MAX_AXIS_LENGTH, LimitError
from . import sym_expr
from .sym_expr import ExprError, UnboundSymbol

MAX_PROGRAM_BYTES = 32 << 20
"""The program's JSON, decompressed (a ResNet-50 takes 0.4 MB, a ViT-B/16 1 MB)."""

MAX_PROGRAM_CONTAINERS = 3_000_000
"""JSON objects and arrays in the program (each costs Python about 100 bytes once parsed)."""

MAX_PROGRAM_NODES = 10_000
"""Nodes, inputs and outputs of the program, subgraphs included: a ResNet-50 has about 800, the
largest torchvision classifiers (Swin-V2-B, EfficientNet-B7) about 3,000. torch takes about 2 ms
per node that an output depends on to read and lower a program, so a program at the limit takes
about 25 s."""

MAX_PROGRAM_SIZES = 200_000
"""Values recorded with the program: tensors, their sizes and strides, symbolic numbers (a
ResNet-50 records about 5,000)."""

MAX_STRING = 1 << 20
"""One string of the program."""

_MODEL = re.compile(r"(?:.*/)?models/([^/]+)\.json")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")
_FQN = re.compile(r"[A-Za-z0-9_]{1,200}(?:\.[A-Za-z0-9_]{1,200}){0,63}")
_OP_TARGET = re.compile(r"torch\.ops\.(aten|prims)\.([A-Za-z_][A-Za-z0-9_]{0,99})"
                        r"\.([A-Za-z_][A-Za-z0-9_]{0,99})")

SYM_TARGETS = frozenset(
    [f"_operator.{name}" for name in ("add", "sub", "mul", "floordiv", "mod", "truediv", "neg", "pos", "pow",
                                      "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "lshift", "rshift")]
    + [f"math.{name}" for name in ("trunc", "ceil", "floor")]
    + [f"torch.sym_{name}" for name in ("not", "int", "float", "ite", "max", "min", "sqrt", "sum")]
    + [f"torch.ops.aten.{name}" for name in ("sym_size.int", "sym_stride.int", "sym_numel.default",
                                             "sym_storage_offset.default")])
"""Size arithmetic: foveal takes each result from the program's own expression for it (evaluated at
the input shape) and removes the node; these targets are never resolved or called."""

ASSERTIONS = frozenset({"torch.ops.aten._assert_scalar.default", "torch.ops.aten.sym_constrain_range.default",
                        "torch.ops.aten.sym_constrain_range_for_size.default"})
"""Checks on sizes: foveal evaluates them at the input shape (a failing one is an error) and removes
them."""

DROPPED = frozenset({"torch.ops.aten._assert_tensor_metadata.default", "torch.ops.aten._assert_async.default",
                     "torch.ops.aten._assert_async.msg"})
"""Checks on values, dtypes and devices, which say nothing about sizes: removed."""

DENIED_OPS = frozenset({"aten::from_file", "aten::from_file.out", "aten::_print"})
"""Dispatcher ops that reach outside the tensors they are given (a file, stdout)."""

_SYM_KINDS = {"as_sym_int": "int", "as_sym_bool": "bool", "as_sym_float": "float"}
_SYM_LISTS = {"as_sym_ints": "as_sym_int", "as_sym_bools": "as_sym_bool", "as_sym_floats": "as_sym_float"}
_PLAIN = frozenset({"as_none", "as_int", "as_ints", "as_float", "as_floats", "as_string", "as_strings",
                    "as_bool", "as_bools", "as_scalar_type", "as_memory_format", "as_layout", "as_complex",
                    "as_int_lists", "as_float_lists"})
_COUNTED_OUTPUTS: dict[str, str | None] = {
    "unbind.int": None, "unbind_copy.int": None, "split.Tensor": "split_size",
    "split_copy.Tensor": "split_size", "unsafe_split.Tensor": "split_size", "chunk.default": "chunks",
    "unsafe_chunk.default": "chunks", "tensor_split.sections": "sections", "hsplit.int": "sections",
    "vsplit.int": "sections", "dsplit.int": "sections"}
"""Ops returning as many tensors as a size (None) or an argument says."""

MAX_LIST = 4096
"""Tensors in one argument list or one output list of a node (a concatenation, a split)."""

_CONSTANT_INPUTS = frozenset({"as_int", "as_float", "as_bool", "as_none", "as_string"})
_META = {"type": "meta", "index": None}
HIGHER_ORDER = frozenset({"torch.ops.higher_order.wrap_with_set_grad_enabled"})
"""Higher-order ops foveal reads: a `torch.no_grad()` block, whose subgraph is checked like the
program's graph."""


def load_program(path: str | os.PathLike[str], input_shape: tuple[int, ...] | None = None
                 ) -> tuple[Any, tuple[int, ...]]:
    """The ExportedProgram saved in a .pt2 archive, made static at `input_shape` (the recorded
    shape when None), with meta tensors for its state; and the input shape."""
    where = repr(str(path))
    member, text = _read_program_json(path, where)
    name = member if member.isprintable() and len(member) <= 200 else quoted(member)
    program = _Program(_parse(text, where, name), f"{where}: {name}", where)
    shape = program.bind(input_shape)
    return program.deserialize(), shape


# -- the archive ------------------------------------------------------------------------------------


def _read_program_json(path: str | os.PathLike[str], where: str) -> tuple[str, bytes]:
    """The name and the bytes of the program's JSON member."""
    with open_zip(path, ".pt2 archive") as archive:
        found: dict[str, str] = {}
        for name in archive.namelist():
            m = _MODEL.fullmatch(name)
            if m:
                found.setdefault(m.group(1), name)
        if not found:
            raise FovealError(f"{where} holds no exported program (no models/*.json); save one with "
                              f"torch.export.save")
        if len(found) > 1 and "model" not in found:
            listed = ", ".join(repr(k[:40]) for k in sorted(found)[:5])
            raise FovealError(f"{where} holds several programs ({listed}{', ...' if len(found) > 5 else ''})")
        member = found.get("model") or next(iter(found.values()))
        return member, read_member(archive, member, where, MAX_PROGRAM_BYTES)


def _parse(data: bytes, where: str, name: str) -> Any:
    containers = data.count(b"{") + data.count(b"[")
    if containers > MAX_PROGRAM_CONTAINERS:
        raise LimitError(f"{where}: {name} has {containers:,} JSON objects and arrays, over foveal's limit "
                         f"of {MAX_PROGRAM_CONTAINERS:,}")
    cannot = f"{where}: cannot read the exported program {name}:"
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FovealError(f"{cannot} not UTF-8 text (byte {exc.start})") from None
    except RecursionError:
        raise FovealError(f"{cannot} its JSON nests too deeply") from None
    except ValueError as exc:
        raise FovealError(f"{cannot} not valid JSON ({_one_line(exc)})") from None


# -- the program's JSON, typed by torch's schema -------------------------------------------------


def _conform(tp: Any, value: Any, depth: int = 0) -> Any:
    """`value` checked against the schema type `tp`: the same tree, with the fields torch's schema
    does not know left out; anything else is a `_Bad` naming the field (its path is built while
    the error unwinds, so a valid tree costs no path strings)."""
    if depth > 40:
        raise _Bad("", "nests deeper than the program format does")
    kind, a, b = _plan(tp)
    if kind == "optional":
        return None if value is None else _conform(a, value, depth)
    if kind == "list":
        if type(value) is not list:
            raise _Bad("", f"is {_kind(value)}, not a list")
        if a in (int, float, bool, str) and _plain_list(a, value):
            return [float(v) for v in value] if a is float else value
        out = []
        for i, v in enumerate(value):
            try:
                out.append(_conform(a, v, depth + 1))
            except _Bad as bad:
                raise bad.inside(f"[{i}]") from None
        return out
    if kind == "dict":
        if type(value) is not dict:
            raise _Bad("", f"is {_kind(value)}, not an object")
        result = {}
        for k, v in value.items():
            try:
                result[k] = _conform(a, v, depth + 1)
            except _Bad as bad:
                raise bad.inside(f"[{quoted(k)}]") from None
        return result
    if kind == "union":
        if type(value) is not dict or len(value) != 1:
            raise _Bad("", f"must be an object with one of {', '.join(a)[:120]}")
        ((key, inner),) = value.items()
        if key not in a:
            raise _Bad("", f"has an unknown kind {quoted(key)}")
        try:
            return {key: _conform(a[key], inner, depth + 1)}
        except _Bad as bad:
            raise bad.inside(f".{key}") from None
    if kind == "class":
        if type(value) is not dict:
            raise _Bad("", f"is {_kind(value)}, not an object")
        fields = {}
        for name, field_type in a.items():
            if name in value:
                try:
                    fields[name] = _conform(field_type, value[name], depth + 1)
                except _Bad as bad:
                    raise bad.inside(f".{name}") from None
            elif name in b:
                raise _Bad("", f"has no field {name!r}")
        return fields
    if kind == "enum":
        if type(value) is not int or value not in a._value2member_map_:
            raise _Bad("", f"is {quoted(value)}, not one of the values of {a.__name__}")
        return value
    if kind == "bool":
        if type(value) is not bool:
            raise _Bad("", f"is {_kind(value)}, not true or false")
        return value
    if kind == "int":
        if type(value) is not int:
            raise _Bad("", f"is {_kind(value)}, not an integer")
        if not -(1 << 63) <= value < 1 << 63:
            raise _Bad("", f"is {quoted(value)}, out of the 64-bit range")
        return value
    if kind == "float":
        if type(value) not in (int, float):
            raise _Bad("", f"is {_kind(value)}, not a number")
        try:
            return float(value)
        except OverflowError:
            raise _Bad("", "is out of the range of a float") from None
    if kind == "str":
        if type(value) is not str:
            raise _Bad("", f"is {_kind(value)}, not a string")
        if len(value) > MAX_STRING:
            raise _Bad("", f"is a string of {len(value):,} characters, over foveal's limit")
        return value
    raise _Bad("", f"has a type foveal does not read ({tp!r})")


_PLANS: dict[Any, tuple[str, Any, Any]] = {}


def _plan(tp: Any) -> tuple[str, Any, Any]:
    """How a schema type is checked and built: (kind, detail, detail), worked out once per type."""
    plan = _PLANS.get(tp)
    if plan is not None:
        return plan
    from torch._export.serde.union import _Union

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        plan = ("optional", options[0], None) if len(options) == 1 else ("unknown", None, None)
    elif origin is list:
        plan = ("list", typing.get_args(tp)[0], None)
    elif origin is dict:
        plan = ("dict", typing.get_args(tp)[1], None)
    elif isinstance(tp, type) and issubclass(tp, _Union):
        plan = ("union", _fields(tp), None)
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        required = {f.name for f in dataclasses.fields(tp)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        plan = ("class", _fields(tp), required)
    elif isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        plan = ("enum", tp, None)
    elif tp in (bool, int, float, str):
        plan = (tp.__name__, None, None)
    else:
        plan = ("unknown", None, None)
    _PLANS[tp] = plan
    return plan


def _build(tp: Any, value: Any) -> Any:
    """The schema dataclasses for a tree `_conform` checked (what torch's `_dict_to_dataclass`
    does, with each type's plan worked out once)."""
    kind, a, _ = _plan(tp)
    if kind == "optional":
        return None if value is None else _build(a, value)
    if kind == "list":
        return value if a in (int, float, bool, str) else [_build(a, v) for v in value]
    if kind == "dict":
        return {k: _build(a, v) for k, v in value.items()}
    if kind == "union":
        ((key, inner),) = value.items()
        return tp.create(**{key: _build(a[key], inner)})
    if kind == "class":
        return tp(**{k: _build(a[k], v) for k, v in value.items()})
    return value


def _plain_list(item: type, value: list) -> bool:
    """Whether a list of ints, floats, booleans or strings is valid as a whole (checked at C speed;
    when not, `_conform` finds the bad item and names it)."""
    kinds = set(map(type, value))
    if item is int:
        return kinds <= {int} and (not value or (max(value) < 1 << 63 and min(value) > -(1 << 63)))
    if item is float:
        return kinds <= {int, float} and (int not in kinds or all(abs(v) < 1 << 1000 for v in value))
    if item is str:
        return kinds <= {str} and (not value or max(map(len, value)) <= MAX_STRING)
    return kinds <= {bool}


_FIELDS: dict[type, dict[str, Any]] = {}


def _fields(cls: type) -> dict[str, Any]:
    from torch._export.serde import schema

    if cls not in _FIELDS:
        _FIELDS[cls] = typing.get_type_hints(cls, globalns=vars(schema))
    return _FIELDS[cls]


class _Bad(FovealError):
    """A field of the program that foveal refuses (the message is completed by _Program)."""

    def __init__(self, path: str, what: str) -> None:
        self.path, self.what = path, what
        super().__init__(f"{path} {what}")

    def inside(self, prefix: str) -> _Bad:
        return _Bad(prefix + self.path, self.what)


# -- checking, binding and rewriting the program ----------------------------------------------------


class _Scope:
    """The names one graph defines, and its nodes with their roles."""

    def __init__(self, graph: dict, path: str) -> None:
        self.graph, self.path = graph, path
        self.defined: set[str] = set()
        self.tensors: set[str] = set()
        self.syms: set[str] = set()
        self.nodes: list[tuple[str, dict, str]] = []  # (role, node, where)

    def define(self, name: str, where: str) -> None:
        _identifier(name, where)
        if name in self.defined:
            raise _Bad(where, f"defines {quoted(name)} a second time")
        self.defined.add(name)

    def define_tensor(self, name: str, where: str) -> None:
        self.define(name, where)
        if name not in self.graph["tensor_values"]:
            raise _Bad(where, f"names {quoted(name)}, which has no entry in tensor_values")
        self.tensors.add(name)

    def use_tensor(self, name: str, where: str) -> None:
        if name not in self.tensors:
            raise _Bad(where, f"uses {quoted(name)}, which no input or earlier node defines")

    def use_sym(self, body: dict, where: str) -> None:
        if "as_name" in body and body["as_name"] not in self.syms:
            raise _Bad(where, f"uses {quoted(body['as_name'])}, which no earlier node computes")

    def check_argument(self, arg: dict, where: str) -> None:
        ((kind, body),) = arg.items()
        if kind in _PLAIN or kind == "as_device":
            return
        if kind == "as_tensor":
            self.use_tensor(body["name"], where)
        elif kind == "as_tensors":
            _bounded_list(body, where)
            for t in body:
                self.use_tensor(t["name"], where)
        elif kind == "as_nested_tensors":
            _bounded_list([t for inner in body for t in inner], where)
            for inner in body:
                for t in inner:
                    self.use_tensor(t["name"], where)
        elif kind == "as_optional_tensor":
            if "as_tensor" in body:
                self.use_tensor(body["as_tensor"]["name"], where)
        elif kind == "as_optional_tensors":
            _bounded_list(body, where)
            for t in body:
                if "as_tensor" in t:
                    self.use_tensor(t["as_tensor"]["name"], where)
        elif kind in _SYM_KINDS:
            self.use_sym(body, where)
        elif kind in _SYM_LISTS:
            for item in body:
                self.use_sym(item, where)
        else:
            raise _Bad(where, f"is an argument of kind {kind} (a subgraph, a custom object or an operator), "
                              f"which foveal does not read")

    def check_output(self, arg: dict, where: str) -> None:
        ((kind, body),) = arg.items()
        if kind == "as_tensor":
            self.use_tensor(body["name"], where)
        elif kind in _SYM_KINDS:
            self.use_sym(body, where)
        elif kind not in ("as_int", "as_float", "as_bool", "as_none"):
            raise _Bad(where, f"is an output of kind {kind}, which foveal does not read")


class _Program:
    """A program's JSON checked against the schema and foveal's rules; `bind` makes it static at an
    input shape and `deserialize` hands the rewritten JSON to torch."""

    def __init__(self, tree: Any, where: str, path_name: str) -> None:
        from torch._export.serde import schema

        self.where, self.path_name = where, path_name
        if not isinstance(tree, dict):
            raise FovealError(f"{where} holds {_kind(tree)}, not a program object")
        try:
            self.tree = _conform(schema.ExportedProgram, tree)
        except _Bad as bad:
            raise FovealError(f"{where}: {bad.path.removeprefix('.') or 'the program'} {bad.what}") from None
        self.expressions: dict[int, sym_expr.Node] = {}
        self.subgraphs: dict[int, _Scope] = {}
        self.values: dict[str, int] = {}
        self.shape: tuple[int, ...] = ()
        try:
            self._check()
        except _Bad as bad:
            raise FovealError(f"{where}: {bad.path} {bad.what}") from None

    # -- checks that need no input shape ----------------------------------------------------------

    def _check(self) -> None:
        from torch._export.serde.schema import SCHEMA_VERSION

        tree = self.tree
        version = tree["schema_version"]
        if version["major"] != SCHEMA_VERSION[0] and (version["major"], version["minor"]) != (0, 0):
            raise _Bad("schema_version", f"is {version['major']}.{version['minor']}; this torch reads "
                                         f"programs of schema {SCHEMA_VERSION[0]}.x (save it with this "
                                         f"torch)")
        for i, name in enumerate(tree.get("verifiers", [])):
            if name not in ("", "ATEN", "TRAINING"):
                raise _Bad(f"verifiers[{i}]", f"is {quoted(name)}, not a verifier foveal knows "
                                              f"(ATEN, TRAINING)")
        gm = tree["graph_module"]
        sig = gm["signature"]
        self._check_signature(sig)
        graph = gm["graph"]
        if len(graph["inputs"]) != len(sig["input_specs"]):
            raise _Bad("graph_module.graph.inputs", f"has {len(graph['inputs'])} entries for "
                                                    f"{len(sig['input_specs'])} input specs")
        self.node_count = self.size_count = 0
        self.top = self._check_graph(graph, "graph_module.graph", 0)
        self.graph = graph
        for i, spec in enumerate(sig["input_specs"]):
            ((kind, body),) = spec.items()
            if kind in ("parameter", "buffer", "tensor_constant"):
                name = body["arg"]["name"]
                if name not in graph["tensor_values"]:
                    raise _Bad(f"graph_module.signature.input_specs[{i}].{kind}",
                               f"names {quoted(name)}, which has no entry in tensor_values")
                if any("as_int" not in size for size in graph["tensor_values"][name]["sizes"]):
                    raise _Bad(f"graph_module.graph.tensor_values[{quoted(name)}]",
                               f"gives the {kind} a symbolic size; the sizes of a {kind} are fixed")
        user = {s["user_input"]["arg"].get("as_tensor", {}).get("name") for s in sig["input_specs"]
                if "user_input" in s}
        self.user_inputs = [a["as_tensor"]["name"] for a in graph["inputs"]
                            if "as_tensor" in a and a["as_tensor"]["name"] in user]
        if len(sig["output_specs"]) != len(graph["outputs"]):
            raise _Bad("graph_module.signature.output_specs", f"has {len(sig['output_specs'])} entries for "
                                                               f"{len(graph['outputs'])} outputs")
        for i, spec in enumerate(sig["output_specs"]):
            ((kind, body),) = spec.items()
            where = f"graph_module.signature.output_specs[{i}].{kind}"
            if kind == "token":
                raise _Bad(where, "is an effect token: the program calls side-effecting ops")
            if kind == "user_output":
                self.top.check_output(body["arg"], f"{where}.arg")
            else:
                self.top.use_tensor(body["arg"]["name"], f"{where}.arg")
                for key in ("buffer_name", "parameter_name"):
                    if key in body:
                        _fqn(body[key], f"{where}.{key}")
                if "user_input_name" in body:
                    _identifier(body["user_input_name"], f"{where}.user_input_name")

    def _check_signature(self, sig: dict) -> None:
        for i, spec in enumerate(sig["input_specs"]):
            ((kind, body),) = spec.items()
            where = f"graph_module.signature.input_specs[{i}].{kind}"
            if kind == "custom_obj":
                raise _Bad(where, "is a custom (torchbind) object, which only unpickling could restore")
            if kind == "token":
                raise _Bad(where, "is an effect token: the program calls side-effecting ops")
            if kind == "user_input":
                arg = body["arg"]
                if "as_tensor" in arg:
                    _identifier(arg["as_tensor"]["name"], f"{where}.arg")
                elif not _CONSTANT_INPUTS & arg.keys():
                    raise _Bad(f"{where}.arg", f"is an input of kind {next(iter(arg))}, which foveal "
                                               f"does not read")
            elif kind == "constant_input":
                _identifier(body["name"], f"{where}.name")
            else:
                _identifier(body["arg"]["name"], f"{where}.arg.name")
                key = {"parameter": "parameter_name", "buffer": "buffer_name",
                       "tensor_constant": "tensor_constant_name"}[kind]
                _fqn(body[key], f"{where}.{key}")

    def _check_graph(self, graph: dict, path: str, depth: int) -> _Scope:
        """One graph (the program's, or a subgraph of a higher-order op): its values, inputs, nodes
        and outputs. Names are the graph's own."""
        if depth > 4:
            raise _Bad(path, "nests subgraphs deeper than foveal reads")
        self.node_count += len(graph["nodes"]) + len(graph["inputs"]) + len(graph["outputs"])
        if self.node_count > MAX_PROGRAM_NODES:
            raise _Bad(path, f"takes the program over foveal's limit of {MAX_PROGRAM_NODES:,} nodes and "
                             f"inputs")
        for table in ("tensor_values", "sym_int_values", "sym_bool_values", "sym_float_values"):
            for name, value in graph.get(table, {}).items():
                _identifier(name, f"{path}.{table}")
                if table == "tensor_values":
                    self._check_tensor_meta(value, f"{path}.tensor_values[{quoted(name)}]")
                else:
                    self.size_count += 1
                    self._parse_sym(value, f"{path}.{table}[{quoted(name)}]")
        if graph.get("custom_obj_values"):
            raise _Bad(f"{path}.custom_obj_values", "is not empty: the program holds custom (torchbind) "
                                                    "objects, which only unpickling could restore")
        scope = _Scope(graph, path)
        for i, arg in enumerate(graph["inputs"]):
            where = f"{path}.inputs[{i}]"
            if "as_tensor" in arg:
                scope.define_tensor(arg["as_tensor"]["name"], where)
            elif "as_sym_int" in arg or "as_sym_float" in arg or "as_sym_bool" in arg:
                raise _Bad(where, "is a symbolic number: foveal reads programs whose inputs are tensors "
                                  "and constants")
            elif depth or not _CONSTANT_INPUTS & arg.keys():
                raise _Bad(where, f"is an input of kind {next(iter(arg))}, which foveal does not read")
        for i, node in enumerate(graph["nodes"]):
            self._check_node(node, f"{path}.nodes[{i}]", scope, depth)
        for i, arg in enumerate(graph["outputs"]):
            scope.check_output(arg, f"{path}.outputs[{i}]")
        return scope

    def _check_tensor_meta(self, meta: dict, where: str) -> None:
        if len(meta["sizes"]) > 64 or len(meta["strides"]) != len(meta["sizes"]):
            raise _Bad(where, f"has {len(meta['sizes'])} sizes and {len(meta['strides'])} strides")
        self.size_count += 2 * len(meta["sizes"]) + 1
        if self.size_count > MAX_PROGRAM_SIZES:
            raise _Bad(where, f"takes the program over foveal's limit of {MAX_PROGRAM_SIZES:,} recorded "
                              f"sizes and strides")
        for field in ("sizes", "strides"):
            for k, size in enumerate(meta[field]):
                self._parse_sym(size, f"{where}.{field}[{k}]")
        self._parse_sym(meta["storage_offset"], f"{where}.storage_offset")

    def _parse_sym(self, value: dict, where: str) -> None:
        """Each `as_expr` parsed by foveal's grammar (its text never goes further)."""
        if "as_expr" not in value:
            return
        text = value["as_expr"]["expr_str"]
        try:
            self.expressions[id(value)] = sym_expr.parse(text)
        except ExprError as err:
            raise _Bad(where, f"is a size expression foveal does not read ({err}): {quoted(text)}") from None

    def _check_node(self, node: dict, where: str, scope: _Scope, depth: int) -> None:
        target = node["target"]
        if node.get("name") is not None:
            _identifier(node["name"], f"{where}.name")
            where = f"{where} ({node['name']})"
        role = _target_role(target)
        if role is None:
            raise _Bad(where, f"calls {quoted(target)}, which foveal does not read from a .pt2 (it reads "
                              f"ATen and prims operators, size arithmetic and torch.no_grad blocks)")
        stack = node["metadata"].get("nn_module_stack")
        if stack is not None:
            _module_stack(stack, f"{where}.metadata.nn_module_stack")
        devices = _device_arguments(target) if role == "op" else set()
        for i, named in enumerate(node["inputs"]):
            at = f"{where}.inputs[{i}]"
            arg = named["arg"]
            if named["name"] in devices and not arg.keys() & {"as_device", "as_none"}:
                raise _Bad(at, f"gives the device {quoted(named['name'])} as {next(iter(arg))}, not as a "
                               f"device")
            if "as_graph" in arg and role == "hop":
                sub = arg["as_graph"]
                _identifier(sub["name"], f"{at}.as_graph.name")
                self.subgraphs[id(sub)] = self._check_graph(sub["graph"], f"{at}.as_graph.graph", depth + 1)
            else:
                scope.check_argument(arg, at)
        scope.nodes.append((role, node, where))
        outputs = node["outputs"]
        if role == "sym":
            if len(outputs) != 1 or not (outputs[0].keys() & _SYM_KINDS.keys()):
                raise _Bad(f"{where}.outputs", "of size arithmetic must be one symbolic number")
            ((kind, out),) = outputs[0].items()
            if "as_name" not in out:
                raise _Bad(f"{where}.outputs[0]", "must name the symbolic number it computes")
            table = f"sym_{_SYM_KINDS[kind]}_values"
            scope.define(out["as_name"], f"{where}.outputs[0]")
            if out["as_name"] not in scope.graph.get(table, {}):
                raise _Bad(f"{where}.outputs[0]", f"names {quoted(out['as_name'])}, which has no entry in "
                                                  f"{table}")
            scope.syms.add(out["as_name"])
            return
        if role in ("assert", "drop") and any(kind != "as_none" for out in outputs for kind in out):
            raise _Bad(f"{where}.outputs", "of a check must be empty")
        for i, out in enumerate(outputs):
            ((kind, body),) = out.items()
            at = f"{where}.outputs[{i}]"
            if kind == "as_tensor":
                scope.define_tensor(body["name"], at)
            elif kind == "as_tensors":
                _bounded_list(body, at)
                for t in body:
                    scope.define_tensor(t["name"], at)
            elif kind in _SYM_KINDS:
                raise _Bad(at, "is a symbolic number computed from tensor data (such as item()); "
                               "foveal needs sizes known from the input shape")
            elif kind != "as_none":
                raise _Bad(at, f"is an output of kind {kind}, which foveal does not read")

    # -- the input shape ----------------------------------------------------------------------------

    def recorded_shape(self) -> tuple[Any, ...]:
        """The first input's sizes: ints, or the text of their expressions."""
        meta = self.graph["tensor_values"][self.user_inputs[0]]
        return tuple(s["as_int"] if "as_int" in s else sym_expr.show(self.expressions[id(s)])
                     for s in meta["sizes"])

    def bind(self, input_shape: tuple[int, ...] | None) -> tuple[int, ...]:
        """Binds every size symbol: those of the first input from `input_shape`, the others from the
        sizes recorded with the other inputs; checks the recorded ranges and the program's shape
        assertions. Returns the input shape."""
        if not self.user_inputs:
            raise FovealError(f"{self.path_name}: the exported program takes no tensor input")
        recorded = self.recorded_shape()
        static = all(isinstance(s, int) for s in recorded)
        shown = "(" + ", ".join(str(s) for s in recorded) + ("," if len(recorded) == 1 else "") + ")"
        if input_shape is None:
            if not static:
                raise FovealError(f"{self.path_name} was exported with dynamic sizes {shown}; give "
                                  f"input_shape")
            shape = tuple(recorded)
        else:
            shape = tuple(input_shape)
            if static and shape != recorded:
                raise FovealError(f"{self.path_name} was exported for input shape {shown} only; export it "
                                  f"with dynamic_shapes to analyse {shape}, or analyse the module itself")
            if len(shape) != len(recorded):
                raise FovealError(f"{self.path_name} takes an input of rank {len(recorded)} {shown}, not "
                                  f"{shape}")
        meta = self.graph["tensor_values"][self.user_inputs[0]]
        self._solve(meta["sizes"], shape, f"the input {quoted(self.user_inputs[0])}", from_user=True)
        for name in self.user_inputs[1:]:
            sizes = self.graph["tensor_values"][name]["sizes"]
            hints = [s["as_int"] if "as_int" in s else (s["as_expr"].get("hint") or {}).get("as_int")
                     for s in sizes]
            self._solve(sizes, hints, f"the input {quoted(name)}", from_user=False)
        self._check_ranges(shape)
        self.shape = shape
        return shape

    def _solve(self, sizes: list[dict], shape: Any, what: str, from_user: bool) -> None:
        pending = [(k, s, shape[k]) for k, s in enumerate(sizes) if "as_expr" in s]
        for k, s in enumerate(sizes):
            if "as_int" in s and from_user and s["as_int"] != shape[k]:
                raise FovealError(f"{self.path_name}: axis {k} of {what} was exported with size "
                                  f"{s['as_int']} only, not {shape[k]}")
        while pending:
            left = []
            for k, s, target in pending:
                node = self.expressions[id(s)]
                unbound = sorted(sym_expr.symbols(node) - self.values.keys())
                if len(unbound) == 1 and isinstance(target, int):
                    value = sym_expr.solve(node, unbound[0], target, self.values)
                    if value is None or value < 0:
                        raise FovealError(f"{self.path_name}: axis {k} of {what} is "
                                          f"{sym_expr.show(node)[:80]} in the program, which no size "
                                          f"{unbound[0]} makes {target}")
                    self.values[unbound[0]] = value
                elif unbound:
                    left.append((k, s, target))
            if len(left) == len(pending):
                break
            pending = left
        for k, s in enumerate(sizes):
            if "as_expr" in s:
                value = self._evaluate(s, f"axis {k} of {what}")
                if from_user and value != shape[k]:
                    raise FovealError(f"{self.path_name}: axis {k} of {what} is "
                                      f"{sym_expr.show(self.expressions[id(s)])[:80]} in the program, which "
                                      f"is {value}, not {shape[k]}, at the sizes the other axes give")

    def _check_ranges(self, shape: tuple[int, ...]) -> None:
        for key, bounds in self.tree["range_constraints"].items():
            try:
                node = sym_expr.parse(key)
            except ExprError as err:
                raise FovealError(f"{self.where}: range_constraints[{quoted(key)}] is a size expression "
                                  f"foveal does not read ({err})") from None
            if sym_expr.symbols(node) - self.values.keys():
                continue  # a symbol no input has (the ops that use it are refused)
            try:
                value = sym_expr.evaluate(node, self.values)
            except ExprError as err:
                raise FovealError(f"{self.where}: range_constraints[{quoted(key)}]: {err}") from None
            low, high = bounds["min_val"], bounds["max_val"]
            if (low is not None and value < low) or (high is not None and value > high):
                axes = [k for k, size in enumerate(self.recorded_shape()) if size == sym_expr.show(node)]
                what = f"axis {axes[0]} of the input ({sym_expr.show(node)[:60]})" if axes else \
                    f"the size {sym_expr.show(node)[:60]}"
                low_text = "-inf" if low is None else low
                high_text = "inf" if high is None else high
                raise FovealError(f"{self.path_name} was exported for {what} from {low_text} to "
                                  f"{high_text}; the input shape {shape} makes it {value}")

    def _evaluate(self, value: dict, what: str) -> Any:
        """The value of one SymInt/SymBool/SymFloat at the bound symbols."""
        if "as_expr" not in value:
            return next(iter(value.values()))
        node = self.expressions[id(value)]
        try:
            return sym_expr.evaluate(node, self.values)
        except UnboundSymbol as err:
            if err.name.startswith("u"):
                raise FovealError(f"{self.where}: {what} depends on tensor data (size {err.name}, from an op "
                                  f"such as nonzero or item); foveal needs sizes known from the input "
                                  f"shape") from None
            raise FovealError(f"{self.where}: {what} uses size {err.name!r}, which the input shape does not "
                              f"determine") from None
        except ExprError as err:
            raise FovealError(f"{self.where}: {what}: {err}") from None

    # -- the rewritten program ---------------------------------------------------------------------

    def _static(self) -> dict:
        """The program at the bound sizes: no expression, no size arithmetic, devices on meta."""
        graph = self._static_graph(self.top)
        sig = self.tree["graph_module"]["signature"]
        output_specs = [{"user_output": {"arg": _concrete_output(s["user_output"]["arg"], self.top_syms)}}
                        if "user_output" in s else s for s in sig["output_specs"]]
        n_inputs = sum(1 for s in sig["input_specs"] if "user_input" in s)
        n_outputs = sum(1 for s in output_specs if "user_output" in s)
        return {
            "graph_module": {
                "graph": graph,
                "signature": {"input_specs": sig["input_specs"], "output_specs": output_specs},
                "module_call_graph": [_root_call(n_inputs, n_outputs)],
                "metadata": {},
                "treespec_namedtuple_fields": {},
            },
            "opset_version": self.tree["opset_version"],
            "range_constraints": {},
            "schema_version": self.tree["schema_version"],
            "verifiers": self.tree.get("verifiers", []),
            "torch_version": self.tree.get("torch_version", ""),
            "guards_code": [],
        }

    def _static_graph(self, scope: _Scope) -> dict:
        graph, g = scope.graph, scope.path
        sym: dict[str, Any] = {}
        for table, kind in (("sym_int_values", int), ("sym_bool_values", bool), ("sym_float_values", float)):
            for name, value in graph.get(table, {}).items():
                at = f"{g}.{table}[{quoted(name)}]"
                result = self._evaluate(value, at)
                if kind is float and not isinstance(result, bool):
                    result = float(result)
                if type(result) is not kind:
                    raise FovealError(f"{self.where}: {at} is {quoted(result)}, not "
                                      f"{'an integer' if kind is int else 'a ' + kind.__name__}")
                if isinstance(result, int):
                    _check_int(result, f"{self.where}: {at}")
                sym[name] = result
        if scope is self.top:
            self.top_syms = sym
        live = _live_nodes(scope)
        needed = {a["as_tensor"]["name"] for a in graph["inputs"] if "as_tensor" in a}
        for _role, node, _where in scope.nodes:
            if id(node) in live:
                needed |= _output_tensors(node)
        tensors = {}
        for name in sorted(needed):  # the others are never read
            meta = graph["tensor_values"][name]
            at = f"{g}.tensor_values[{quoted(name)}]"
            sizes = [self._int(s, f"{at}.sizes[{k}]", size=True) for k, s in enumerate(meta["sizes"])]
            strides = [self._int(s, f"{at}.strides[{k}]") for k, s in enumerate(meta["strides"])]
            offset = self._int(meta["storage_offset"], f"{at}.storage_offset")
            tensors[name] = {**meta, "sizes": [{"as_int": s} for s in sizes],
                             "strides": [{"as_int": s} for s in strides],
                             "storage_offset": {"as_int": offset}, "device": dict(_META)}
        nodes = []
        for role, node, at in scope.nodes:
            if role == "assert":
                self._assertion(node, sym, at)
            if id(node) not in live:
                continue
            inputs = []
            for named in node["inputs"]:
                arg = named["arg"]
                if "as_graph" in arg:
                    sub = arg["as_graph"]
                    subgraph = self._static_graph(self.subgraphs[id(sub)])
                    arg = {"as_graph": {"name": sub["name"], "graph": subgraph}}
                inputs.append({**named, "arg": _concrete(arg, sym)})
            if role == "op":
                self._check_list_output(node, inputs, tensors, at)
                inputs = _on_meta(node["target"], _inference_mode(node["target"], inputs))
            nodes.append({"target": node["target"], "inputs": inputs, "outputs": node["outputs"],
                          "metadata": {k: v for k, v in node["metadata"].items() if k == "nn_module_stack"},
                          "is_hop_single_tensor_return":
                              node.get("is_hop_single_tensor_return") if role == "hop" else None,
                          **({"name": node["name"]} if node.get("name") else {})})
        return {"inputs": graph["inputs"], "outputs": [_concrete_output(a, sym) for a in graph["outputs"]],
                "nodes": nodes, "tensor_values": tensors, "sym_int_values": {}, "sym_bool_values": {},
                "sym_float_values": {}, "custom_obj_values": {},
                "is_single_tensor_return": bool(graph.get("is_single_tensor_return", False))}

    def _check_list_output(self, node: dict, inputs: list[dict], tensors: dict[str, dict],
                           where: str) -> None:
        """An op that returns as many tensors as a size or an argument says (unbind, split, chunk)
        may return at most as many as the program lists for it: torch would build each of them."""
        op = node["target"].removeprefix("torch.ops.aten.")
        if op not in _COUNTED_OUTPUTS:
            return
        args = {named["name"]: _value(named["arg"]) for named in inputs}
        source = next((named["arg"]["as_tensor"]["name"] for named in inputs if "as_tensor" in named["arg"]),
                      None)
        sizes = [s["as_int"] for s in tensors[source]["sizes"]] if source in tensors else []
        dim = args.get("dim", 0)
        size = sizes[dim] if isinstance(dim, int) and -len(sizes) <= dim < len(sizes) else 0
        count_arg = _COUNTED_OUTPUTS[op]
        if count_arg is None:
            count = size
        elif count_arg == "split_size":
            step = args.get("split_size")
            count = -(-size // step) if isinstance(step, int) and step > 0 else size
        else:
            count = args.get(count_arg) if isinstance(args.get(count_arg), int) else 0
        listed = sum(len(next(iter(out.values()))) if "as_tensors" in out else 1 for out in node["outputs"])
        if count > listed:
            raise FovealError(f"{self.where}: {where} returns {count:,} tensors at input shape {self.shape}, "
                              f"where the program lists {listed:,}")

    def _int(self, value: dict, where: str, size: bool = False) -> int:
        result = self._evaluate(value, where)
        if type(result) is not int:
            raise FovealError(f"{self.where}: {where} is {quoted(result)}, not an integer")
        if size and not 0 <= result <= MAX_AXIS_LENGTH:
            raise FovealError(f"{self.where}: {where} is {result:,} at input shape {self.shape}, not a size "
                              f"(0 to {MAX_AXIS_LENGTH:,})")
        _check_int(result, f"{self.where}: {where}")
        return result

    def _assertion(self, node: dict, sym: dict[str, Any], where: str) -> None:
        values = [_value(_concrete(named["arg"], sym)) for named in node["inputs"]]
        if node["target"].endswith("_assert_scalar.default"):
            ok = values[0] if values else True
            message = values[1] if len(values) > 1 and isinstance(values[1], str) else ""
            if ok is False:
                raise FovealError(f"{self.path_name}: the program's check {quoted(message[:120])} fails at "
                                  f"input shape {self.shape} ({where})")
            return
        number = values[0] if values else None
        low = values[1] if len(values) > 1 and isinstance(values[1], int) else None
        high = values[2] if len(values) > 2 and isinstance(values[2], int) else None
        if isinstance(number, int) and ((low is not None and number < low)
                                        or (high is not None and number > high)):
            raise FovealError(f"{self.path_name}: a size of the program is {number} at input shape "
                              f"{self.shape}, outside the range [{low}, {high}] it was exported for "
                              f"({where})")

    def deserialize(self) -> Any:
        """The ExportedProgram of the static program, with meta tensors for its state."""
        from torch._export.serde import schema
        from torch._export.serde.serialize import ExportedProgramDeserializer

        from .export import quiet

        static = self._static()
        state, constants = _meta_state(static, self.where)
        try:
            with quiet():
                serialized = _build(schema.ExportedProgram, static)
                return ExportedProgramDeserializer().deserialize(serialized, state, constants, None)
        except FovealError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign program, said plainly
            raise FovealError(f"{self.where}: cannot read the exported program: {_one_line(exc)}") from None


def _meta_state(static: dict, where: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Meta tensors standing in for the parameters, buffers and tensor constants."""
    from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE

    metas = static["graph_module"]["graph"]["tensor_values"]
    state: dict[str, torch.Tensor] = {}
    constants: dict[str, torch.Tensor] = {}
    for spec in static["graph_module"]["signature"]["input_specs"]:
        ((kind, value),) = spec.items()
        if kind not in ("parameter", "buffer", "tensor_constant"):
            continue
        name = value["arg"]["name"]
        if name not in metas:
            raise FovealError(f"{where}: the {kind} {quoted(name)} has no entry in tensor_values")
        meta = metas[name]
        sizes = [s["as_int"] for s in meta["sizes"]]
        dtype = _SERIALIZE_TO_TORCH_DTYPE.get(meta["dtype"])
        if dtype is None:
            raise FovealError(f"{where}: the {kind} {quoted(name)} has dtype {meta['dtype']}, which torch "
                              f"does not know")
        try:
            tensor = torch.empty(sizes, dtype=dtype, device="meta")
        except Exception as exc:  # noqa: BLE001 - sizes torch refuses
            raise FovealError(f"{where}: the {kind} {quoted(name)} cannot have sizes {sizes}: "
                              f"{_one_line(exc)}") from None
        if kind == "parameter":
            state[value["parameter_name"]] = torch.nn.Parameter(tensor, requires_grad=False)
        elif kind == "buffer" and value.get("persistent", True) is not False:
            state[value["buffer_name"]] = tensor
        elif kind == "buffer":
            constants[value["buffer_name"]] = tensor
        else:
            constants[value["tensor_constant_name"]] = tensor
    return state, constants


# -- small rules ------------------------------------------------------------------------------------

_DISPATCHER: set[str] = set()


def _target_role(target: str) -> str | None:
    """'op' (an operator torch may call on fake tensors), 'sym' (size arithmetic), 'assert' (a size
    check), 'drop' (a value check), 'hop' (a torch.no_grad block), or None: refused."""
    if target in SYM_TARGETS:
        return "sym"
    if target in ASSERTIONS:
        return "assert"
    if target in DROPPED:
        return "drop"
    if target in HIGHER_ORDER:
        return "hop"
    return "op" if _operator(target) is not None else None


_OPERATORS: dict[str, Any] = {}


def _operator(target: str) -> Any:
    """The OpOverload `target` names, if it is an ATen or prims operator registered with the
    dispatcher (so fake tensors intercept it) that returns tensors; else None."""
    if target in _OPERATORS:
        return _OPERATORS[target]
    if len(_OPERATORS) > 10_000:
        _OPERATORS.clear()
    _OPERATORS[target] = op = _resolve_operator(target)
    return op


def _resolve_operator(target: str) -> Any:
    m = _OP_TARGET.fullmatch(target)
    if m is None:
        return None
    namespace, packet_name, overload_name = m.groups()
    if packet_name.startswith("__") or overload_name.startswith("__"):
        return None
    if not _DISPATCHER:
        _DISPATCHER.update(torch._C._dispatch_get_all_op_names())
    qualified = f"{namespace}::{packet_name}" + ("" if overload_name == "default" else f".{overload_name}")
    if qualified not in _DISPATCHER or qualified in DENIED_OPS:
        return None  # not a dispatcher op (a TorchScript builtin such as aten::save), or denied
    try:
        packet = getattr(getattr(torch.ops, namespace), packet_name)
    except (AttributeError, RuntimeError):
        return None
    if not isinstance(packet, torch._ops.OpOverloadPacket) or overload_name not in packet.overloads():
        return None
    op = getattr(packet, overload_name)
    if not isinstance(op, torch._ops.OpOverload):
        return None
    returns = op._schema.returns
    if not returns or not all(_is_tensor_type(r.type) for r in returns):
        return None  # an op computing no tensor computes a number from data, or only has effects
    return op


def _device_arguments(target: str) -> set[str]:
    """The names of the operator's Device arguments."""
    op = _operator(target)
    if op is None:
        return set()
    return {a.name for a in op._schema.arguments
            if isinstance(a.type, torch.DeviceObjType) or (isinstance(a.type, torch.OptionalType)
                                                           and isinstance(a.type.getElementType(),
                                                                          torch.DeviceObjType))}


def _is_tensor_type(t: Any) -> bool:
    if isinstance(t, torch.TensorType):
        return True
    if isinstance(t, (torch.ListType, torch.OptionalType)):
        return _is_tensor_type(t.getElementType())
    return False


def _concrete(arg: dict, sym: dict[str, Any]) -> dict:
    """An argument with each symbolic number replaced by its value and each device by meta."""
    ((kind, body),) = arg.items()
    if kind == "as_device":
        return {"as_device": dict(_META)}
    if kind in _SYM_KINDS:
        return {kind: _plain(body, _SYM_KINDS[kind], sym)}
    if kind in _SYM_LISTS:
        return {kind: [_plain(item, _SYM_KINDS[_SYM_LISTS[kind]], sym) for item in body]}
    return arg


_TRAINING_FLAGS = {"torch.ops.aten.batch_norm.default": "training", "torch.ops.aten.dropout.default": "train",
                   "torch.ops.aten.feature_dropout.default": "train",
                   "torch.ops.aten.alpha_dropout.default": "train",
                   "torch.ops.aten.feature_alpha_dropout.default": "train"}


def _on_meta(target: str, inputs: list[dict]) -> list[dict]:
    """Every Device argument of an operator given as meta, omitted ones too: a factory op would
    otherwise make a CPU tensor next to the meta state (a device mismatch), and an op without a meta
    kernel could then compute on it for real."""
    devices = _device_arguments(target)
    given = {named["name"] for named in inputs}
    meta = {"as_device": dict(_META)}
    return ([{**named, "arg": meta} if named["name"] in devices else named for named in inputs]
            + [{"name": name, "arg": meta, "kind": 2} for name in sorted(devices - given)])


def _inference_mode(target: str, inputs: list[dict]) -> list[dict]:
    """A program saved from a module in training mode, read as foveal captures modules: in eval mode
    (batch norm with its running statistics, no dropout)."""
    flag = _TRAINING_FLAGS.get(target)
    if flag is None:
        return inputs
    return [{**named, "arg": {"as_bool": False}} if named["name"] == flag and "as_bool" in named["arg"]
            else named for named in inputs]


def _live_nodes(scope: _Scope) -> set[int]:
    """The ids of the op nodes some output depends on: torch would trace the others too (a chain of
    unused nodes costs as much as a used one)."""
    used = set().union(*(_tensor_names(a) for a in scope.graph["outputs"]))
    live: set[int] = set()
    for role, node, _ in reversed(scope.nodes):
        if role in ("op", "hop") and _output_tensors(node) & used:
            live.add(id(node))
            used = used.union(*(_tensor_names(named["arg"]) for named in node["inputs"]))
    return live


def _output_tensors(node: dict) -> set[str]:
    return set().union(*(_tensor_names(out) for out in node["outputs"]))


def _tensor_names(arg: dict) -> set[str]:
    """The tensors an argument or output names."""
    ((kind, body),) = arg.items()
    if kind == "as_tensor":
        return {body["name"]}
    if kind == "as_tensors":
        return {t["name"] for t in body}
    if kind == "as_nested_tensors":
        return {t["name"] for inner in body for t in inner}
    if kind == "as_optional_tensor":
        return {body["as_tensor"]["name"]} if "as_tensor" in body else set()
    if kind == "as_optional_tensors":
        return {t["as_tensor"]["name"] for t in body if "as_tensor" in t}
    return set()


def _concrete_output(arg: dict, sym: dict[str, Any]) -> dict:
    """An output: a symbolic number becomes a constant (torch reads outputs `as_int`, not
    `as_sym_int` with a value)."""
    ((kind, body),) = arg.items()
    if kind in _SYM_KINDS and "as_name" in body:
        return {f"as_{_SYM_KINDS[kind]}": sym[body["as_name"]]}
    return arg


def _value(arg: dict) -> Any:
    """The Python value of a concrete argument (None for a tensor)."""
    ((kind, body),) = arg.items()
    if kind in _SYM_KINDS:
        return next(iter(body.values()))
    return body if kind in _PLAIN and kind != "as_none" else None


def _plain(body: dict, kind: str, sym: dict[str, Any]) -> dict:
    if "as_name" not in body:
        return body
    return {f"as_{kind}": sym[body["as_name"]]}


def _root_call(n_inputs: int, n_outputs: int) -> dict:
    """The module call graph's root entry: flat inputs, flat outputs (the program's own tree specs,
    which torch resolves by type name, are not passed on)."""
    from torch.utils import _pytree as pytree

    in_spec = pytree.treespec_dumps(pytree.tree_structure((tuple(range(n_inputs)), {})))
    out_spec = pytree.treespec_dumps(pytree.tree_structure(0 if n_outputs == 1 else tuple(range(n_outputs))))
    return {"fqn": "", "signature": {"inputs": [], "outputs": [], "in_spec": in_spec, "out_spec": out_spec,
                                     "forward_arg_names": None}}


def _bounded_list(items: list, where: str) -> None:
    if len(items) > MAX_LIST:
        raise _Bad(where, f"lists {len(items):,} tensors, over foveal's limit of {MAX_LIST:,}")


def _identifier(name: Any, where: str) -> None:
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or keyword.iskeyword(name):
        raise _Bad(where, f"names {quoted(name)}, not a Python identifier")


def _fqn(name: Any, where: str) -> None:
    if not isinstance(name, str) or not _FQN.fullmatch(name):
        raise _Bad(where, f"is {quoted(name)}, not a dotted attribute path")


def _module_stack(text: str, where: str) -> None:
    """torch's `key,path,type;...` format, in printable text."""
    if len(text) > 65536 or not text.isprintable():
        raise _Bad(where, "is not a short printable text")
    for item in text.split(";"):
        parts, depth = 1, 0
        for c in item:
            if c in "[(":
                depth += 1
            elif c in ")]":
                depth -= 1
            elif c == "," and depth == 0:
                parts += 1
        if parts != 3:
            raise _Bad(where, f"has an entry {quoted(item)} that is not 'key,path,type'")


def _check_int(value: int, where: str) -> None:
    if abs(value) >= 1 << 63:
        raise FovealError(f"{where} is {value:,}, out of the 64-bit range")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
