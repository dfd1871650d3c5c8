"""Saved torch.export programs (.pt2): seeds are small exports; mutations edit the program's JSON
(values, types, sizes, size expressions, call targets, names, nodes) or the zip archive around it
(member names, flags, compression, sizes, planted pickles)."""

from __future__ import annotations

import json
import pickle
import random
import re
import zipfile
import zlib
from typing import Any

from pt2_archives import dynamic_model, patch_headers, program_index, read_members, saved_program, write_zip

SUFFIX = ".pt2"
REQUIRES = ("torch",)
API_KWARGS = {"input_shape": (1, 3, 16, 16)}  # every seed was exported at this shape (one with dynamic sizes)
CLI_ARGS = ["--input-shape", "1,3,16,16", "--format", "json"]

MARKER = "/tmp/foveal-fuzz-pt2-ran-code"
"""A file only a hostile expression, target or pickle that foveal executed would create."""

VALUES = (0, 1, 2, -1, 3, 7, 64, 10**9, 10**12, 2**63, -(2**63) - 1, 10**30, 1.5, -0.0, float("inf"),
          float("nan"), "", "abc", "x", "\udc80", "s0", "u0", "torch.os.system", "#ext:op", "meta", "cuda",
          "as_int", True, False, None, [], {}, [1], [1, 2], [[], []], {"as_int": 3},
          {"as_expr": {"expr_str": "s0"}}, {"as_none": True}, {"as_tensor": {"name": "x"}},
          {"as_graph": {"name": "g", "graph": {}}}, {"as_custom_obj": {"name": "c", "class_fqn": "os"}})

EXPRESSIONS = (
    f"__import__('os').system('touch {MARKER}')*0+1",
    f"Integer(__import__('os').system('touch {MARKER}'))",
    "Symbol('s0', positive=True, integer=True)", "Symbol('u0', integer=True)", "Symbol('x')",
    "Mul(Integer(2), Symbol('s0', positive=True, integer=True))", "2*s0", "s0 + 1", "s0//0", "Mod(s0, 0)",
    "s0**99999999", "Pow(Integer(10), Integer(100))", "10**10**10", "9" * 50, "Max(1, 2, s0)", "Min()",
    "Float('nan', precision=53)", "Float('1e999', precision=53)", "TruncToInt(Float('2.5', precision=53))",
    "CeilToInt(IntTrueDiv(s0, 3))", "lambda: 1", "s0.__class__", "(" * 200 + "1" + ")" * 200, "-" * 500 + "1",
    "Eq(s0, 2)", "Rational(1, 2)", "Unknown(s0)", "s0 if s0 else 1", "[s0]", "", "s0 s1", "Symbol(s0)",
    "Symbol('s0', evaluate=__import__('os'))", "FloorDiv(Integer(7), Integer(-2))", "u0 + s0", "zuf0",
    "Integer(1)" * 3, "1e308*10", "Add(" * 100 + "1" + ")" * 100,
)

TARGETS = (
    "torch.os.system", "builtins.eval", "os.system", "torch.ops.aten.save.default",
    "torch.ops.aten.from_file.default", "torch.ops.aten._print.default", "torch.ops.aten.manual_seed.default",
    "#ext:op", "_operator.getitem", "_operator.mul", "torch.sym_max", "math.floor",
    "torch.ops.higher_order.cond", "torch.ops.aten.__class__.default", "torch.ops.aten.conv2d.__call__",
    "torch.ops.aten.relu.default", "torch.ops.aten.unbind.int", "torch.ops.aten.split.Tensor",
    "torch.ops.aten.item.default", "torch.ops.aten.sym_size.int", "torch.ops.aten._assert_scalar.default",
    "torch.ops.prims.convert_element_type.default", "torch.ops.torchvision.roi_align.default",
    "torch.ops.aten.nonzero.default", "torch.ops.aten.add.Tensor", "torch.ops.aten.conv2d.default",
    "torch.ops.higher_order.wrap_with_set_grad_enabled", "torch.nn.Module", "torch.ops.aten.expand.default",
    "torch.ops.aten.full.default", "torch.ops.aten.zeros.default",
)

NAMES = ("x", "input", "class", "", "a b", "x; import os", "__import__", "_", "a" * 300, "torch", "self",
         "\u00e9", "0abc", "getattr", "output", "p_0_weight", "conv2d", "relu")


# -- seeds --------------------------------------------------------------------------------------------


def _models() -> list[tuple[Any, tuple[int, ...], Any]]:
    """(model, input shape, dynamic shapes) of each seed (an export records forward's line number)."""
    import torch
    from torch import nn

    class Branches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, padding=1)
            self.b = nn.Conv2d(3, 4, 5, stride=2, padding=2)
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.pool = nn.AvgPool2d(3, stride=2, padding=1)

        def forward(self, x: Any) -> Any:
            return torch.cat([self.pool(self.a(x)), self.up(self.pool(self.b(x)))[:, :, :8, :8]], 1).relu()

    conv = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, dilation=2),
                         nn.BatchNorm2d(4), nn.MaxPool2d(2, ceil_mode=True))
    linear = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.Flatten(), nn.Linear(4 * 7 * 7, 5))
    dynamic, dynamic_shapes = dynamic_model()
    return [(conv, (1, 3, 16, 16), None), (linear, (1, 3, 16, 16), None), (Branches(), (1, 3, 16, 16), None),
            (dynamic, (1, 3, 16, 16), dynamic_shapes)]


def _normalise(data: bytes) -> bytes:
    """The archive with its random serialization id fixed (seeds must be deterministic)."""
    members = read_members(data)
    return write_zip([(n, b"0" if n.endswith("serialization_id") else d, c) for n, d, c in members])


def seeds() -> list[bytes]:
    import torch

    out = []
    for i, (model, shape, dynamic) in enumerate(_models()):
        torch.manual_seed(i)
        for p in model.parameters():
            torch.nn.init.normal_(p)
        out.append(_normalise(saved_program(model, shape, dynamic)))
    return out


# -- the archive -------------------------------------------------------------------------------------


class _Planted:
    """A pickle that would create MARKER if anything unpickled it."""

    def __reduce__(self) -> Any:
        import os

        return (os.system, (f"touch {MARKER}",))


def _mutate_zip(data: bytes, rng: random.Random) -> bytes:
    members = read_members(data)
    at = program_index(members)
    kind = rng.randrange(9)
    if kind == 0:  # plant pickles in every member but the program
        bomb = pickle.dumps(_Planted())
        members = [(n, d if i == at else bomb, c) for i, (n, d, c) in enumerate(members)]
        return write_zip(members)
    if kind == 1 and at is not None:  # a program that inflates a lot (bounded read)
        name, text, _ = members[at]
        padding = b" " * rng.choice((1 << 20, 40 << 20, 100 << 20))
        members[at] = (name, text[:-1] + padding + text[-1:], zipfile.ZIP_DEFLATED)
        return write_zip(members)
    if kind == 2 and at is not None:  # encrypted flag, unknown compression, both
        name = members[at][0]
        members[at] = (name, members[at][1], zipfile.ZIP_DEFLATED)
        out = write_zip(members)
        choice = rng.randrange(3)
        return patch_headers(out, name, flags=1 if choice != 1 else None, method=99 if choice else None)
    if kind == 3 and at is not None:  # a corrupt deflate stream
        name, text, _ = members[at]
        members[at] = (name, text, zipfile.ZIP_DEFLATED)
        out = bytearray(write_zip(members))
        start = out.find(zlib.compress(text)[2:12])
        if start > 0:
            for k in range(rng.randrange(1, 8)):
                out[start + rng.randrange(64) + k] ^= 0xFF
        return bytes(out)
    if kind == 4:  # a member name that is not UTF-8, flagged as UTF-8
        members.append(("XXXX", b"{}", zipfile.ZIP_STORED))
        return patch_headers(write_zip(members), "XXXX", flags=0x800, new_name=b"\xff\xfe\xfd\xfc")
    if kind == 5 and at is not None:  # renamed, or a second program
        name, text, c = members[at]
        if rng.random() < 0.5:
            names = ("models/model.json", "a/models/other.json", "model.json", "models/.json",
                     "models/x/y.json", name.upper())
            members[at] = (rng.choice(names), text, c)
        else:
            members.append((name.replace("model.json", "second.json"), text, c))
            if rng.random() < 0.5:
                members[at] = (name.replace("model.json", "first.json"), text, c)
        return write_zip(members)
    if kind == 6:  # truncated archive
        return data[:rng.randrange(len(data))]
    if kind == 7 and at is not None:  # the program is not JSON, or JSON but not an object
        name, _, c = members[at]
        members[at] = (name, rng.choice((pickle.dumps(_Planted()), b"[1, 2]", b"null", b"\"text\"", b"{",
                                         b"\xff\xfe{}", b"[" * 100000 + b"]" * 100000, b"{}")), c)
        return write_zip(members)
    # duplicated member names (zipfile takes the last)
    if at is not None:
        members.append((members[at][0], b"{}", zipfile.ZIP_STORED))
    return write_zip(members)


# -- the program's JSON ---------------------------------------------------------------------------------


def _slots(tree: Any) -> list[tuple[Any, Any]]:
    found = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                found.append((node, k))
                stack.append(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                found.append((node, i))
                stack.append(v)
    return found


def _graph(tree: Any) -> dict | None:
    g = tree.get("graph_module", {}).get("graph") if isinstance(tree, dict) else None
    return g if isinstance(g, dict) else None


def _output_name(node: dict) -> Any:
    outputs = node.get("outputs")
    if isinstance(outputs, list) and outputs and isinstance(outputs[0], dict):
        tensor = outputs[0].get("as_tensor")
        return tensor.get("name") if isinstance(tensor, dict) else None
    return None


def _renamed(node: dict, values: dict, suffix: str, base: Any = None) -> dict:
    """A copy of `node` whose tensor output has a new name (with a copy of its tensor meta)."""
    copy = json.loads(json.dumps(node))
    name = _output_name(copy)
    if isinstance(name, str):
        new = f"{base if isinstance(base, str) else name}{suffix}"
        copy["outputs"][0]["as_tensor"]["name"] = new
        if name in values:
            values[new] = json.loads(json.dumps(values[name]))
        if isinstance(copy.get("name"), str):
            copy["name"] = new
    return copy


def _mutate_json(tree: Any, rng: random.Random) -> Any:
    slots = _slots(tree)
    graph = _graph(tree)
    nodes = graph.get("nodes") if graph else None
    nodes = nodes if isinstance(nodes, list) and nodes and all(isinstance(n, dict) for n in nodes) else None
    values = graph.get("tensor_values") if graph else None
    values = values if isinstance(values, dict) and values else None
    kind = rng.randrange(12)
    if kind == 0 and values:  # a size or stride becomes a (hostile) expression
        meta = values[rng.choice(list(values))]
        field = rng.choice(("sizes", "strides"))
        if isinstance(meta, dict) and isinstance(meta.get(field), list) and meta[field]:
            hint = rng.choice(({"as_int": 4}, None, {"as_float": 1.0}))
            expression = rng.choice(EXPRESSIONS)
            found = sorted(set(re.findall(r"Symbol\('(s[0-9]+)'", json.dumps(values))))
            if found:  # the program's own symbols, so that more expressions can be evaluated
                expression = expression.replace("s0", rng.choice(found))
            meta[field][rng.randrange(len(meta[field]))] = {"as_expr": {"expr_str": expression, "hint": hint}}
            return tree
    if kind == 1 and nodes:  # another call target
        rng.choice(nodes)["target"] = rng.choice(TARGETS + tuple(str(n.get("target")) for n in nodes))
        return tree
    if kind == 2 and nodes:  # delete, duplicate or swap nodes
        i, j = rng.randrange(len(nodes)), rng.randrange(len(nodes))
        choice = rng.randrange(4)
        if choice == 0:
            del nodes[i]
        elif choice == 1:
            nodes.insert(i, json.loads(json.dumps(nodes[j])))
        elif choice == 2 and values:  # a copy with outputs of its own: a parallel branch
            nodes.insert(j + 1, _renamed(nodes[j], values, "_dup"))
        else:
            nodes[i], nodes[j] = nodes[j], nodes[i]
        return tree
    if kind == 3 and (values or nodes):  # a name
        if values and rng.random() < 0.5:
            old = rng.choice(list(values))
            values[rng.choice(NAMES)] = values.pop(old)
        elif nodes:
            node = rng.choice(nodes)
            outputs = node.get("outputs")
            if _output_name(node) is not None:
                outputs[0]["as_tensor"] = {"name": rng.choice(NAMES)}
            else:
                node["name"] = rng.choice(NAMES)
        return tree
    if kind == 4 and values:  # a recorded size
        meta = values[rng.choice(list(values))]
        if isinstance(meta, dict) and isinstance(meta.get("sizes"), list) and meta["sizes"]:
            size = rng.choice((0, -1, 1, 10**6, 10**12, 2**62))
            meta["sizes"][rng.randrange(len(meta["sizes"]))] = {"as_int": size}
            return tree
    if kind == 5 and nodes:  # an argument value
        node = rng.choice(nodes)
        inputs = node.get("inputs")
        if isinstance(inputs, list) and inputs and isinstance(inputs[-1], dict):
            named = rng.choice(inputs)
            if isinstance(named, dict):
                ints = [rng.choice((0, -1, 10**9, 2**40))] * rng.choice((1, 2, 3))
                named["arg"] = rng.choice(({"as_ints": ints},
                                           {"as_int": rng.choice((0, -5, 10**15))},
                                           {"as_floats": [float("inf"), float("nan")]},
                                           {"as_float": 1e300}, {"as_bool": True}, {"as_string": "reflect"},
                                           {"as_device": {"type": "cuda", "index": 3}},
                                           {"as_operator": "torch.os.system"},
                                           {"as_sym_int": {"as_name": "nowhere"}}, {"as_none": True},
                                           {"as_tensor": {"name": rng.choice(NAMES)}}))
                return tree
    if kind == 6 and isinstance(tree, dict):  # range constraints
        ranges = tree.setdefault("range_constraints", {})
        if isinstance(ranges, dict):
            ranges[rng.choice(("s0", "2*s0", "s1", EXPRESSIONS[0], "u0", "x"))] = {
                "min_val": rng.choice((None, 0, 2, 10**9)), "max_val": rng.choice((None, 1, 64, -1))}
            return tree
    if kind == 7 and nodes:  # module stacks
        node = rng.choice(nodes)
        meta = node.get("metadata")
        if isinstance(meta, dict):
            key = rng.choice(("nn_module_stack", "source_fn_stack", "torch_fn", "stack_trace", "custom",
                              "from_node"))
            meta[key] = rng.choice(("a,b", "k,p,torch.nn.modules.conv.Conv2d;x", "\n\x00", "k,p,t" * 1000,
                                    "x,torch.os.system", "{", "[1]", "k,(a,b),c", "k,p,t;k2,p2,os.system"))
            return tree
    if kind == 8 and nodes and values:  # a long chain of copies of one node, each reading the last
        j = rng.randrange(len(nodes))
        previous = nodes[j]
        base = _output_name(previous)
        for k in range(rng.choice((10, 100, 1000))):
            copy = _renamed(previous, values, f"_c{k}", base)
            source = _output_name(previous)
            for named in copy.get("inputs", []):
                if isinstance(named, dict) and "as_tensor" in (named.get("arg") or {}):
                    named["arg"] = {"as_tensor": {"name": source}}
                    break
            nodes.insert(j + 1 + k, copy)
            previous = copy
        return tree
    if not slots:
        return tree
    container, key = rng.choice(slots)
    if kind == 9 and isinstance(container, dict):
        del container[key]
    elif kind == 10 and isinstance(container, list):
        container.insert(key, container[key])
    else:
        container[key] = rng.choice(VALUES)
    return tree


def mutate(data: bytes, rng: random.Random) -> bytes:
    try:
        members = read_members(data)
    except Exception:  # noqa: BLE001 - not a zip: the harness mutates bytes
        return data
    if rng.random() < 0.25:
        try:
            return _mutate_zip(data, rng)
        except Exception:  # noqa: BLE001 - a broken archive cannot be rebuilt
            return data
    at = program_index(members)
    if at is None:
        return data
    name, text, compression = members[at]
    try:
        tree = _mutate_json(json.loads(text), rng)
        members[at] = (name, json.dumps(tree).encode("utf-8", "surrogatepass"), compression)
    except (ValueError, RecursionError):  # not JSON (an earlier mutation): the harness mutates bytes
        return data
    return write_zip(members)
