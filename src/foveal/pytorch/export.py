"""Capture through torch.export (non-strict) on meta tensors, for models torch.fx cannot trace and
for saved programs.

The exported program is lowered with a trimmed decomposition table: every ATen op foveal has a
handler for stays whole (reflect padding, bicubic resize, pixel shuffle, linear, attention), and
only the rest is decomposed into ops that it knows. Lowering also makes in-place ops functional.
Nodes are named by module path from each node's `nn_module_stack`, as the fx path names them.
"""

from __future__ import annotations

import io
import logging
import operator
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from functools import cache
from typing import Any

import torch
from torch import fx

from ..errors import FovealError
from .aten import handled_packets
from .capture import Captured, CaptureError, example_input, first_line, on_device

_CONTAINERS = "torch.nn.modules.container."


def export_module(module: torch.nn.Module, input_shape: tuple[int, ...],
                  device: torch.device | None = None) -> Captured:
    """torch.export.export(strict=False) of the module on an example on its parameters' device
    (or on `device`)."""
    example = example_input(module, input_shape)
    if device is not None:
        example = torch.empty(example.shape, dtype=example.dtype, device=device)
    try:
        with on_device(example.device), torch.no_grad(), quiet():
            program = torch.export.export(module, (example,), strict=False)
    except FovealError:
        raise
    except Exception as exc:  # noqa: BLE001 - export fails in many ways on dynamic code
        raise CaptureError(f"torch.export could not capture {type(module).__name__}: "
                           f"{first_line(exc)}") from None
    return from_program(program)


def from_program(program: Any) -> Captured:
    """A Captured view of an ExportedProgram, after the trimmed lowering."""
    try:
        with quiet():
            program = program.run_decompositions(_decompositions())
    except Exception as exc:  # noqa: BLE001 - a failing lowering, said plainly
        raise CaptureError(f"lowering the exported program failed: {first_line(exc)[:300]}") from None
    gm = program.graph_module
    nodes = list(gm.graph.nodes)
    input_node = _user_input(program)
    values = {n: n.meta.get("val") for n in nodes}
    captured = Captured(gm, gm.graph, values, input_node=input_node, method="export")
    sig = program.graph_signature
    sources = {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
               **sig.inputs_to_lifted_tensor_constants}
    tensors = {**program.state_dict, **program.constants}
    captured.state = {n: tensors[sources[n.name]] for n in nodes
                      if n.op == "placeholder" and sources.get(n.name) in tensors}
    _name_by_module(captured, [n for n in nodes if n.op == "call_function"])
    _refuse_value_reads(captured, nodes)
    return captured


def _refuse_value_reads(captured: Captured, nodes: list[fx.Node]) -> None:
    """Numbers read from tensor values (`item()`, `tolist()`: a symbol in the graph) and sizes made
    from them (`nonzero`, a boolean mask) carry what shapes do not show. Read from the input, a
    number would scale every position as a constant would; read from weights or constants, it
    may set a size or a position that no handler can place. Both are refused, but a number from
    the weights that only scales values element-wise is kept."""
    depends: set[fx.Node | None] = {captured.input_node}
    for n in nodes:
        if n.op != "call_function":
            continue
        from_input = any(a in depends for a in n.all_input_nodes)
        if from_input:
            depends.add(n)
        tags = getattr(n.target, "tags", ())
        read = torch.Tag.data_dependent_output in tags
        size = torch.Tag.dynamic_output_shape in tags and _sized_by_values(n)
        if size or (read and from_input):
            of = "values computed from the input" if from_input else "tensor values"
            done = f"makes a tensor whose size depends on {of}" if size else f"reads {of} into a number"
            why = ("a dependence carried that way is not followed" if from_input
                   else "foveal needs sizes that follow from the input shape")
            raise CaptureError(f"node {_name(captured, n)!r} ({_short(n.target)}) {done}; {why}")
        if read:
            _only_scales(captured, n)


def _only_scales(captured: Captured, read: fx.Node) -> None:
    """A number read from weights or constants may reach tensors only through element-wise ops."""
    todo, seen = list(read.users), set()
    while todo:
        user = todo.pop()
        if user in seen:
            continue
        seen.add(user)
        if not isinstance(user.meta.get("val"), torch.Tensor):  # arithmetic on the number, asserts
            todo.extend(user.users)
        elif torch.Tag.pointwise not in getattr(user.target, "tags", ()):
            raise CaptureError(f"node {_name(captured, user)!r} ({_short(user.target)}) takes a number "
                               f"read from tensor values at node {_name(captured, read)!r} "
                               f"({_short(read.target)}: item(), tolist()); foveal needs sizes and "
                               f"positions that follow from the input shape")


def _name(captured: Captured, n: fx.Node) -> str:
    return captured.names.get(n, n.name)


def _sized_by_values(n: fx.Node) -> bool:
    """Whether a dynamic-shape op's output size comes from values: for indexing, only when an
    index is a boolean mask."""
    if n.target is not torch.ops.aten.index.Tensor:
        return True
    masks = [a.meta.get("val") for a in n.all_input_nodes[1:]]
    return any(isinstance(m, torch.Tensor) and m.dtype in (torch.bool, torch.uint8) for m in masks)


def _user_input(program: Any) -> fx.Node:
    """The placeholder of the program's first tensor input."""
    users = set(program.graph_signature.user_inputs)
    for n in program.graph.nodes:
        if n.op == "placeholder" and n.name in users and isinstance(n.meta.get("val"), torch.Tensor):
            return n
    raise CaptureError("the exported program takes no tensor input")


@cache
def _decompositions() -> dict[Any, Any]:
    keep = handled_packets()
    table = torch.export.default_decompositions()
    return {op: fn for op, fn in table.items()
            if getattr(getattr(op, "overloadpacket", None), "__name__", None) not in keep}


def _name_by_module(captured: Captured, nodes: list[fx.Node]) -> None:
    """Names and labels from `nn_module_stack`: the last node of a torch.nn leaf module's call is
    the module path, its earlier nodes `<path>/<op>`, other ops `<enclosing path>.<op>`; every
    other module call's last node stands for its output."""
    last_of_call: dict[str, fx.Node] = {}  # the call's output
    last_op_of_call: dict[str, fx.Node] = {}  # the op computing it (getitem picks from a tuple)
    calls: dict[str, tuple[str, str]] = {}
    stacks: dict[fx.Node, list[tuple[str, str, str]]] = {}
    for n in nodes:
        stack = [(key, path, _type_name(typ)) for key, (path, typ) in
                 (n.meta.get("nn_module_stack") or {}).items()]
        stacks[n] = stack
        value = captured.values.get(n)
        if not isinstance(value, (torch.Tensor, tuple, list)):
            continue
        for key, path, typ in stack:
            if n.target is not operator.getitem:
                last_op_of_call[key] = n
            if isinstance(value, torch.Tensor):
                last_of_call[key] = n
                calls[key] = (path, typ)
    for n in nodes:
        stack = stacks[n]
        op = _short(n.target)
        key, path, typ = stack[-1] if stack else ("", "", "")
        if path and _is_leaf(typ):
            if last_op_of_call.get(key) is n:
                captured.names[n], captured.labels[n] = path, typ.rsplit(".", 1)[-1]
            else:
                captured.names[n] = f"{path}/{op}"
        else:
            captured.names[n] = f"{path}.{op}" if path else op
    order = {n: i for i, n in enumerate(nodes)}
    outputs = [(path, last_of_call[key], typ) for key, (path, typ) in calls.items()
               if path and not _is_leaf(typ)]
    outputs.sort(key=lambda item: (order[item[1]], -item[0].count(".")))
    captured.module_outputs = [(path, n, typ.rsplit(".", 1)[-1]) for path, n, typ in outputs]


def _is_leaf(type_name: str) -> bool:
    """torch.nn's own modules, as fx treats them (containers excepted)."""
    return type_name.startswith("torch.nn.modules.") and not type_name.startswith(_CONTAINERS)


def _type_name(typ: Any) -> str:
    return typ if isinstance(typ, str) else f"{typ.__module__}.{typ.__qualname__}"


def _short(target: Any) -> str:
    packet = getattr(target, "overloadpacket", None)
    name = packet.__name__ if packet is not None else getattr(target, "__name__", str(target))
    return name.strip("_") or name


@contextmanager
def quiet() -> Iterator[None]:
    """torch.export logs warnings and whole graphs on failures foveal reports itself (the partial
    graph of a failed export is printed to stderr)."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
