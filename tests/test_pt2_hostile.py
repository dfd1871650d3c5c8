"""Saved programs (.pt2) edited to attack the reader: size expressions and call targets that would
run a command, planted pickles, damaged archives, wrong types in the program's JSON.

Every input is a real `torch.export.save` archive of a small model, edited as zip or JSON. Each bad
file must end in a one-line FovealError (API) and exit status 2 with one line (CLI), and nothing
the file says may run: a marker file that the hostile payload would create must not exist.
Oracles: the live module analysed by foveal (itself checked by NaN probes in test_pytorch.py) and
hand-computed receptive fields.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pt2_archives import (
    dynamic_model,
    patch_headers,
    program_index,
    read_members,
    refuse_unpickling,
    saved_program,
    write_zip,
)

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import foveal  # noqa: E402
import foveal.files  # noqa: E402
from foveal.cli import main  # noqa: E402
from foveal.pytorch import pt2  # noqa: E402


class ConvLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, stride=2)
        self.conv2 = nn.Conv2d(4, 4, 3)
        self.head = nn.Linear(4 * 5 * 5, 10)

    def forward(self, x: Any) -> Any:
        return self.head(torch.flatten(self.conv2(self.conv1(x).relu()), 1))


@pytest.fixture(scope="module")
def saved(one_torch_thread) -> dict[str, Any]:
    torch.manual_seed(0)
    conv_linear = ConvLinear()
    dynamic, dynamic_shapes = dynamic_model()
    return {"conv_linear": saved_program(conv_linear, (1, 3, 16, 16)), "conv_linear_module": conv_linear,
            "dynamic": saved_program(dynamic, (1, 3, 32, 32), dynamic_shapes), "dynamic_module": dynamic}


# -- editing archives -------------------------------------------------------------------------------


def _edit(data: bytes, change: Callable[[dict], Any]) -> bytes:
    """The archive with its program's JSON changed by `change` (in place, or returning a new tree)."""
    members = read_members(data)
    at = program_index(members)
    name, text, compression = members[at]
    tree = json.loads(text)
    result = change(tree)
    members[at] = (name, json.dumps(tree if result is None else result).encode(), compression)
    return write_zip(members)


def _graph(tree: dict) -> dict:
    return tree["graph_module"]["graph"]


def _node(tree: dict, target_part: str) -> dict:
    return next(n for n in _graph(tree)["nodes"] if target_part in n["target"])


def _write(tmp_path: Path, data: bytes, name: str = "model.pt2") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _refused(path: Path, capsys: pytest.CaptureFixture, *fragments: str, shape: Any = None) -> str:
    """The API and the CLI both refuse `path` in one line that contains each fragment."""
    with pytest.raises(foveal.FovealError) as caught:
        foveal.receptive_field(str(path), shape)
    message = str(caught.value)
    assert "\n" not in message.strip() and "Traceback" not in message
    for fragment in fragments:
        assert fragment in message, message
    argv = ["analyze", str(path)] + (["--input-shape", ",".join(map(str, shape))] if shape else [])
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("foveal: error: "), err
    return message


@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Fails the test if anything is unpickled or a size expression reaches sympy; yields the marker
    path that a hostile payload would create."""
    import sympy

    refuse_unpickling(monkeypatch)
    sympified: list[str] = []
    real = sympy.sympify

    def sympify(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            sympified.append(value)
            raise AssertionError(f"sympify called on text {value[:80]!r}")
        return real(value, *args, **kwargs)

    monkeypatch.setattr(sympy, "sympify", sympify)
    marker = tmp_path / "ran"
    yield marker
    assert not marker.exists(), "a payload from the file ran"
    assert not sympified


# -- valid programs ---------------------------------------------------------------------------------


def test_conv_and_linear_export_analyses_like_the_module(tmp_path, saved, nothing_runs) -> None:
    # the recorded devices say cpu while the state is given as meta tensors: once a device mismatch
    path = _write(tmp_path, saved["conv_linear"])
    a = foveal.receptive_field(str(path))
    live = foveal.receptive_field(saved["conv_linear_module"], (1, 3, 16, 16))
    assert a["conv1"].size == (3, 3) and a["conv1"].stride == (2, 2) and a["conv1"].output_shape == (7, 7)
    assert a["conv2"].size == (7, 7) and a["conv2"].output_shape == (5, 5)  # 3 + (3 - 1) * 2
    for name in ("conv1", "conv2", "head"):
        assert (a[name].size, a[name].stride, a[name].output_shape, a[name].status) == \
            (live[name].size, live[name].stride, live[name].output_shape, live[name].status)
    assert a.output_name == "head"


def test_dynamic_export_at_two_shapes(tmp_path, saved, nothing_runs, capsys) -> None:
    path = _write(tmp_path, saved["dynamic"])
    for shape, out in (((1, 3, 64, 48), (62, 46)), ((1, 3, 20, 36), (18, 34))):
        a = foveal.receptive_field(str(path), shape)
        live = foveal.receptive_field(saved["dynamic_module"], shape)
        assert a.output.output_shape == live.output.output_shape == out
        # conv 3, pool 2 (rf 4, stride 2), nearest x2, conv 3: three upsampled pixels read two pooled
        # cells, 4 + 2 input pixels
        assert a.output.size == live.output.size == (6, 6)
        assert a.output.stride == live.output.stride
    _refused(path, capsys, "dynamic sizes (1, 3, 2*s", "give input_shape")
    _refused(path, capsys, "axis 2 of the input", "63", shape=(1, 3, 63, 48))
    _refused(path, capsys, "from 8 to 128", "makes it 256", shape=(1, 3, 256, 48))
    _refused(path, capsys, "axis 1", "size 3 only, not 4", shape=(1, 4, 64, 48))
    _refused(path, capsys, "rank 4", shape=(1, 3, 64))


def test_torch_no_grad_block_is_read(tmp_path, nothing_runs) -> None:
    class NoGrad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 5, stride=2)

        def forward(self, x: Any) -> Any:
            with torch.no_grad():
                y = self.conv(x)
            return nn.functional.max_pool2d(y + 1, 2)

    model = NoGrad()
    program = torch.export.export(model, (torch.zeros(1, 3, 16, 16),), strict=False)
    assert any("wrap_with_set_grad_enabled" in str(n.target) for n in program.graph.nodes)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    a = foveal.receptive_field(str(_write(tmp_path, buffer.getvalue())))
    assert a.output.size == (7, 7) and a.output.stride == (4, 4)  # 5 + (2 - 1) * 2


# -- code in size expressions, call targets and pickles ---------------------------------------------


def _command(marker: Path) -> str:
    return f"__import__('os').system('touch {marker}')*0+1"


EXPRESSION_PLACES = ["input size", "input stride", "output size", "hint-free size", "range key", "sym value"]


@pytest.mark.parametrize("place", EXPRESSION_PLACES)
def test_an_expression_that_runs_a_command_never_runs(tmp_path, saved, nothing_runs, capsys, place) -> None:
    hostile = _command(nothing_runs)

    def change(tree: dict) -> None:
        values = _graph(tree)["tensor_values"]
        expr = {"as_expr": {"expr_str": hostile, "hint": {"as_int": 32}}}
        if place == "input size":
            values["input"]["sizes"][2] = expr
        elif place == "input stride":
            values["input"]["strides"][0] = expr
        elif place == "output size":
            values[_graph(tree)["outputs"][0]["as_tensor"]["name"]]["sizes"][3] = expr
        elif place == "hint-free size":
            values["input"]["sizes"][3] = {"as_expr": {"expr_str": hostile, "hint": None}}
        elif place == "range key":
            tree["range_constraints"][hostile] = {"min_val": 2, "max_val": 4}
        else:
            _graph(tree)["sym_int_values"]["x1"] = expr

    path = _write(tmp_path, _edit(saved["dynamic"], change))
    message = _refused(path, capsys, "foveal does not read", shape=(1, 3, 32, 32))
    assert "unexpected character '.'" in message or "not a size expression" in message


@pytest.mark.parametrize("expression, fragment", [
    ("Symbol('s0').__class__", "unexpected character '.'"),
    ("Pow(Integer(3), Integer(99999999))", "exponent over 64"),
    ("Integer(10)**Integer(10)**Integer(10)", "exponent over 64"),
    ("FloorDiv(Integer(7), Integer(0))", "division by zero"),
    ("Heaviside(Integer(1))", "function 'Heaviside' is not one foveal evaluates"),
    ("Function('f')(Integer(1))", "unexpected '(' after a complete expression"),
    ("Symbol('s0', evaluate=True)", "unknown assumption"),
    ("lambda", "unknown name 'lambda'"), ("lambda: 1", "unexpected character ':'"),
    ("(" * 100 + "1" + ")" * 100, "nests deeper"),
    ("Symbol('u0', integer=True)", "depends on tensor data"),
    ("9" * 60, "more digits"),
])
def test_odd_expressions_are_refused_by_foveals_grammar(tmp_path, saved, nothing_runs, capsys, expression,
                                                        fragment) -> None:
    def change(tree: dict) -> None:
        strides = _graph(tree)["tensor_values"]["input"]["strides"]
        strides[1] = {"as_expr": {"expr_str": expression, "hint": None}}

    _refused(_write(tmp_path, _edit(saved["dynamic"], change)), capsys, fragment, shape=(1, 3, 32, 32))


@pytest.mark.parametrize("target", [
    "torch.os.system", "builtins.eval", "os.system", "torch.ops.aten.save.default",
    "torch.ops.aten.from_file.default", "torch.ops.aten._print.default", "#my_extension:op",
    "torch.ops.higher_order.cond", "torch.ops.aten.__class__.default", "torch.ops.aten.conv2d.__call__",
    "torch.ops.aten.item.default", "torch.ops.torchvision.roi_align.default",
    "torch.ops.aten.sym_size", "torch.nn.Module",
])
def test_call_targets_outside_the_allow_list(tmp_path, saved, nothing_runs, capsys, monkeypatch,
                                             target) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(os, "system", lambda *args: calls.append(args) or 0)

    def change(tree: dict) -> None:
        node = _node(tree, "conv2d")
        node["target"] = target
        node["inputs"] = [{"name": "command", "arg": {"as_string": f"touch {nothing_runs}"}, "kind": 1}]

    _refused(_write(tmp_path, _edit(saved["conv_linear"], change)), capsys, "(conv2d) calls", "does not read")
    assert not calls


def test_size_arithmetic_with_tensor_outputs_and_operator_arguments_are_refused(tmp_path, saved, nothing_runs,
                                                                                capsys) -> None:
    def sym_target(tree: dict) -> None:
        _node(tree, "conv2d")["target"] = "_operator.mul"

    _refused(_write(tmp_path, _edit(saved["conv_linear"], sym_target)), capsys, "must be one symbolic number")

    def operator_argument(tree: dict) -> None:
        _node(tree, "conv2d")["inputs"][1]["arg"] = {"as_operator": "torch.os.system"}

    _refused(_write(tmp_path, _edit(saved["conv_linear"], operator_argument)), capsys, "kind as_operator")

    def custom_object(tree: dict) -> None:
        tree["graph_module"]["signature"]["input_specs"][0] = {
            "custom_obj": {"arg": {"name": "obj", "class_fqn": "os.system"}, "custom_obj_name": "obj"}}

    _refused(_write(tmp_path, _edit(saved["conv_linear"], custom_object)), capsys,
             "custom (torchbind) object")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


def test_pickles_in_every_member_are_never_read(tmp_path, saved, nothing_runs) -> None:
    bomb = pickle.dumps(_Payload(nothing_runs))
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(2)}, buffer)  # a real torch.save file, too
    members = [(name, data if name.endswith("models/model.json") else (bomb if i % 2 else buffer.getvalue()),
                how) for i, (name, data, how) in enumerate(read_members(saved["conv_linear"]))]
    a = foveal.receptive_field(str(_write(tmp_path, write_zip(members))))
    assert a["conv2"].size == (7, 7)


# -- damaged archives -------------------------------------------------------------------------------


def _bomb(data: bytes) -> bytes:
    """The program padded to 40 MB of spaces inside its JSON, deflated to about 40 kB."""
    members = read_members(data)
    at = program_index(members)
    name, text, how = members[at]
    members[at] = (name, text[:-1] + b" " * (40 << 20) + text[-1:], how)
    return write_zip(members, zipfile.ZIP_DEFLATED)


def _program_name(data: bytes) -> str:
    members = read_members(data)
    return members[program_index(members)][0]


ARCHIVES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "zip bomb": (_bomb, "decompresses to more than foveal's limit"),
    "encrypted": (lambda d: patch_headers(d, _program_name(d), flags=1), "encrypted"),
    "unknown compression": (lambda d: patch_headers(d, _program_name(d), method=99),
                            "compression method is not supported"),
    "corrupt deflate stream": (lambda d: _corrupt_deflate(d), "cannot read member"),
    "non-UTF-8 member name": (lambda d: patch_headers(
        write_zip([*read_members(d), ("XXXX", b"{}", zipfile.ZIP_STORED)]), "XXXX", flags=0x800,
        new_name=b"\xff\xfe\xfd\xfc"), "not a valid zip file"),
    "truncated": (lambda d: d[: len(d) // 2], "not a valid zip file"),
    "not a zip": (lambda d: b"\x80\x04K\x01." * 10, "not a valid zip file"),
    "empty": (lambda d: b"", "not a valid zip file"),
    "no program": (lambda d: write_zip([m for m in read_members(d) if not m[0].endswith(".json")]),
                   "no exported program"),
    "several programs": (lambda d: write_zip([(n.replace("model.json", f"{k}.json"), x, c) for k in ("a", "b")
                                              for n, x, c in read_members(d)
                                              if n.endswith("models/model.json")]),
                         "several programs"),
}


def _corrupt_deflate(data: bytes) -> bytes:
    name = _program_name(data)
    packed = bytearray(write_zip(read_members(data), zipfile.ZIP_DEFLATED))
    with zipfile.ZipFile(io.BytesIO(bytes(packed))) as z:
        info = z.getinfo(name)
    start = info.header_offset + 30 + len(name.encode()) + len(info.extra)
    for k in range(8):
        packed[start + 16 + k] ^= 0xA5
    return bytes(packed)


@pytest.mark.parametrize("case", list(ARCHIVES))
def test_damaged_archives(tmp_path, saved, nothing_runs, capsys, case) -> None:
    damage, fragment = ARCHIVES[case]
    _refused(_write(tmp_path, damage(saved["conv_linear"])), capsys, fragment)


def test_paths_that_are_not_archives(tmp_path, capsys, monkeypatch, saved) -> None:
    folder = tmp_path / "folder.pt2"
    folder.mkdir()
    _refused(folder, capsys, "is a folder")
    _refused(tmp_path / "missing.pt2", capsys, "no such file")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.pt2"
        os.mkfifo(fifo)
        _refused(fifo, capsys, "not a regular file")
    monkeypatch.setattr(foveal.files, "MAX_ARCHIVE_MEMBERS", 5)
    _refused(_write(tmp_path, saved["conv_linear"]), capsys, "members", "over foveal's limit of 5")


# -- the program's JSON -----------------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A change setting the JSON field at `path` (dots and [index] / [name] parts)."""
    import re

    parts = [p for p in re.split(r"\.|\[|\]", path) if p]

    def change(tree: dict) -> None:
        here: Any = tree
        for part in parts[:-1]:
            here = here[int(part)] if isinstance(here, list) else here[part]
        last = parts[-1]
        here[int(last) if isinstance(here, list) else last] = value

    return change


PROGRAMS: dict[str, tuple[Callable[[dict], Any], str]] = {
    "graph_module an int": (_set("graph_module", 3), "graph_module is an integer, not an object"),
    "nodes an object": (_set("graph_module.graph.nodes", {}),
                        "graph_module.graph.nodes is an object, not a list"),
    "target a number": (_set("graph_module.graph.nodes[0].target", 5), "nodes[0].target is an integer"),
    "argument of two kinds": (_set("graph_module.graph.nodes[0].inputs[0].arg",
                                   {"as_int": 1, "as_bool": True}), "must be an object with one of"),
    "unknown argument kind": (_set("graph_module.graph.nodes[0].inputs[0].arg", {"as_code": "print(1)"}),
                              "unknown kind 'as_code'"),
    "size as text": (_set("graph_module.graph.tensor_values.x.sizes[0]", {"as_int": "3"}),
                     "sizes[0].as_int is a string, not an integer"),
    "size out of range": (_set("graph_module.graph.tensor_values.x.sizes[0]", {"as_int": 2**70}),
                          "out of the 64-bit range"),
    "negative size": (_set("graph_module.graph.tensor_values.conv2d.sizes[2]", {"as_int": -1}), "not a size"),
    "dtype unknown": (_set("graph_module.graph.tensor_values.x.dtype", 999),
                      "not one of the values of ScalarType"),
    "device a string": (_set("graph_module.graph.tensor_values.x.device", "cpu"), "device is a string"),
    "missing field": (lambda t: t["graph_module"]["graph"].pop("nodes") and None, "has no field 'nodes'"),
    "schema version": (_set("schema_version.major", 7), "schema_version is 7."),
    "verifier": (_set("verifiers", ["os.system"]), "not a verifier foveal knows"),
    "node name": (_set("graph_module.graph.nodes[0].name", "x; import os"), "not a Python identifier"),
    "tensor name": (_set("graph_module.graph.nodes[0].outputs[0].as_tensor.name", "class"),
                    "not a Python identifier"),
    "parameter path": (_set("graph_module.signature.input_specs[0].parameter.parameter_name",
                            "../etc/passwd"), "not a dotted attribute path"),
    "module stack": (_set("graph_module.graph.nodes[0].metadata.nn_module_stack", "k,p,t\nimport os"),
                     "not a short printable text"),
    "undefined tensor": (_set("graph_module.graph.nodes[0].inputs[0].arg",
                              {"as_tensor": {"name": "nowhere"}}),
                         "uses 'nowhere', which no input or earlier node defines"),
    "defined twice": (_set("graph_module.graph.nodes[1].outputs[0].as_tensor.name", "conv2d"),
                      "defines 'conv2d' a second time"),
    "subgraph argument": (_set("graph_module.graph.nodes[0].inputs[0].arg",
                               {"as_graph": {"name": "g", "graph": {"inputs": [], "outputs": [], "nodes": [],
                                                                   "tensor_values": {}, "sym_int_values": {},
                                                                   "sym_bool_values": {}}}}),
                          "kind as_graph"),
    "data-dependent output": (_set("graph_module.graph.nodes[0].outputs[0]",
                                   {"as_sym_int": {"as_name": "u0"}}), "computed from tensor data"),
    "deep nesting": (lambda t: {"graph_module": json.loads("[" * 50 + "]" * 50)}, "graph_module is a list"),
}


@pytest.mark.parametrize("case", list(PROGRAMS))
def test_program_json_with_wrong_fields(tmp_path, saved, nothing_runs, capsys, case) -> None:
    change, fragment = PROGRAMS[case]
    _refused(_write(tmp_path, _edit(saved["conv_linear"], change)), capsys, fragment)


@pytest.mark.parametrize("text, fragment", [
    (b"{", "not valid JSON"), (b"\xff\xfe{}", "not UTF-8 text"), (b"[" * 100000 + b"]" * 100000, "nests"),
    (b'{"a": 1' + b"0" * 5000 + b"}", "not valid JSON"), (b"null", "holds null, not a program object"),
    (b"[1, 2]", "holds a list, not a program object"), (pickle.dumps([1]), "not UTF-8 text"),
])
def test_program_text_that_is_not_json(tmp_path, saved, capsys, text, fragment) -> None:
    members = read_members(saved["conv_linear"])
    at = program_index(members)
    name, _, how = members[at]
    members[at] = (name, text, how)
    _refused(_write(tmp_path, write_zip(members)), capsys, fragment)


def test_a_split_into_more_tensors_than_the_program_lists_is_refused(tmp_path, nothing_runs, capsys) -> None:
    class Unbind(nn.Module):
        def forward(self, x: Any) -> Any:
            return torch.unbind(x, 2)[0]

    data = saved_program(Unbind(), (1, 3, 8, 8))
    a = foveal.receptive_field(str(_write(tmp_path, data, "ok.pt2")))
    assert a.output.output_shape == foveal.receptive_field(Unbind(), (1, 3, 8, 8)).output.output_shape

    def grow(tree: dict) -> None:  # the recorded input becomes 10**6 rows: unbind would build 10**6 tensors
        for meta in _graph(tree)["tensor_values"].values():
            if len(meta["sizes"]) == 4:
                meta["sizes"][2] = {"as_int": 10**6}

    _refused(_write(tmp_path, _edit(data, grow)), capsys, "returns 1,000,000 tensors", "lists 8")


class WithFactory(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: Any) -> Any:
        return self.conv(x) + torch.ones(1, 4, 1, 1, device=x.device)


def test_devices_become_meta_and_must_be_devices(tmp_path, nothing_runs, capsys) -> None:
    # one tensor made on the CPU (a factory op without a device) next to meta state: a device mismatch
    data = saved_program(WithFactory(), (1, 3, 8, 8))

    def device(value: dict) -> Callable[[dict], None]:
        def change(tree: dict) -> None:
            node = _node(tree, "aten.ones")
            next(n for n in node["inputs"] if n["name"] == "device")["arg"] = value

        return change

    for value in ({"as_device": {"type": "cuda", "index": 3}}, {"as_none": True}):
        a = foveal.receptive_field(str(_write(tmp_path, _edit(data, device(value)))))
        assert a.output.size == (3, 3) and a.output.output_shape == (6, 6)
    _refused(_write(tmp_path, _edit(data, device({"as_string": "cpu"}))), capsys, "gives the device 'device'",
             "as_string")


def test_a_program_saved_in_training_mode_is_read_in_eval_mode(tmp_path, nothing_runs) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.ReLU(), nn.MaxPool2d(2))
    model.train()
    program = torch.export.export(model, (torch.zeros(2, 3, 16, 16),), strict=False)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    a = foveal.receptive_field(str(_write(tmp_path, buffer.getvalue())))
    live = foveal.receptive_field(model, (2, 3, 16, 16))
    assert a.output.size == live.output.size == (4, 4) and a.output.output_shape == (7, 7)
    assert [n for n in a.graph.nodes][1:] == [n for n in live.graph.nodes][1:]



@pytest.mark.parametrize("text, value", [
    ("Mul(Integer(2), Symbol('s39', positive=True, integer=True))", 64),  # torch >= 2.6 (srepr)
    ("2*s39", 64), ("s39 + s7 - 1", 36), ("(s39//3) % 4", 2), ("-s39 + 2**3", -24), ("Max(1, s39, s7)", 32),
    ("FloorDiv(Add(Symbol('s39', positive=True, integer=True), Integer(-3)), Integer(2))", 14),
    ("TruncToInt(Mul(Float('2.5', precision=53), ToFloat(Symbol('s7', positive=True, integer=True))))", 12),
    ("CeilToInt(IntTrueDiv(s39, 5))", 7), ("Mod(s39, 5)", 2), ("CleanDiv(s39, 8)", 4), ("CeilDiv(s39, 5)", 7),
    ("ModularIndexing(s39, 4, 3)", 2), ("Eq(s39, 32)", True), ("And(s39 >= 2, Ne(s7, 5))", False),
    ("Rational(1, 2)*s39", 16), ("Min(s39, s7)", 5),
])
def test_size_expressions_in_both_of_torchs_forms(text, value) -> None:
    from foveal.pytorch import sym_expr

    node = sym_expr.parse(text)
    assert sym_expr.evaluate(node, {"s39": 32, "s7": 5}) == value
    assert sym_expr.symbols(node) <= {"s39", "s7"}


def test_a_size_is_solved_for_its_symbol() -> None:
    from foveal.pytorch import sym_expr

    node = sym_expr.parse("Add(Mul(Integer(2), Symbol('s0', positive=True, integer=True)), Integer(1))")
    assert sym_expr.solve(node, "s0", 65, {}) == 32
    assert sym_expr.solve(node, "s0", 64, {}) is None  # 2*s0 + 1 is odd
    assert sym_expr.show(node) == "2*s0 + 1"
    assert sym_expr.solve(sym_expr.parse("s0*s0"), "s0", 9, {}) is None  # not linear: refused, not guessed


def test_a_parameter_with_a_symbolic_size_is_refused(tmp_path, saved, nothing_runs, capsys) -> None:
    def change(tree: dict) -> None:
        weight = _graph(tree)["tensor_values"]["p_conv1_weight"]
        weight["sizes"][0] = {"as_expr": {"expr_str": "Symbol('s0', positive=True, integer=True)",
                                          "hint": {"as_int": 4}}}

    _refused(_write(tmp_path, _edit(saved["conv_linear"], change)), capsys,
             "tensor_values['p_conv1_weight'] gives the parameter a symbolic size")


def test_a_member_name_with_a_newline_stays_on_one_line(tmp_path, saved, capsys) -> None:
    members = [(name.replace("models/model.json", "models/a\nb.json"), data if not name.endswith("model.json")
                else b"[]", how) for name, data, how in read_members(saved["conv_linear"])]
    _refused(_write(tmp_path, write_zip(members)), capsys, "models/a\\nb.json", "holds a list")


@pytest.mark.parametrize("limit, value, fragment", [
    ("MAX_PROGRAM_NODES", 5, "over foveal's limit of 5 nodes and inputs"),
    ("MAX_PROGRAM_SIZES", 10, "over foveal's limit of 10 recorded sizes and strides"),
    ("MAX_PROGRAM_BYTES", 1000, "decompresses to more than foveal's limit of 1,000 bytes"),
    ("MAX_PROGRAM_CONTAINERS", 10, "JSON objects and arrays, over foveal's limit of 10"),
    ("MAX_LIST", 1, "lists 2 tensors, over foveal's limit of 1"),
])
def test_program_limits(tmp_path, saved, capsys, monkeypatch, limit, value, fragment) -> None:
    monkeypatch.setattr(pt2, limit, value)
    data = _edit(saved["conv_linear"], lambda t: None)
    if limit == "MAX_LIST":  # a concatenation of two tensors
        def cat(tree: dict) -> None:
            node = _node(tree, "flatten")
            node["target"] = "torch.ops.aten.cat.default"
            x = node["inputs"][0]["arg"]["as_tensor"]
            node["inputs"] = [{"name": "tensors", "arg": {"as_tensors": [x, x]}, "kind": 1}]

        data = _edit(saved["conv_linear"], cat)
    _refused(_write(tmp_path, data), capsys, fragment)


def test_nodes_no_output_depends_on_are_not_handed_to_torch(tmp_path, saved) -> None:
    def dead_chain(tree: dict) -> None:
        nodes, values = _graph(tree)["nodes"], _graph(tree)["tensor_values"]
        relu = _node(tree, "relu")
        previous = relu["outputs"][0]["as_tensor"]["name"]
        for k in range(300):
            copy = json.loads(json.dumps(relu))
            copy["name"] = f"dead{k}"
            copy["inputs"][0]["arg"] = {"as_tensor": {"name": previous}}
            copy["outputs"][0]["as_tensor"]["name"] = previous = f"dead{k}"
            values[previous] = values[relu["outputs"][0]["as_tensor"]["name"]]
            nodes.insert(nodes.index(relu) + 1 + k, copy)

    program, shape = pt2.load_program(_write(tmp_path, _edit(saved["conv_linear"], dead_chain)))
    assert shape == (1, 3, 16, 16)
    assert not [n for n in program.graph.nodes if n.name.startswith("dead")]
    assert foveal.receptive_field(str(tmp_path / "model.pt2"))["conv2"].size == (7, 7)


def test_a_lowered_training_mode_batch_norm_is_read(capsys) -> None:
    """Found by fuzzing: a lowered training-mode batch norm (its tuple output read by an adaptive
    pool) once made a PyTorch handler raise AttributeError. Its batch statistics are now read as
    what they are: global over the spatial axes (the pool after it then reads everything)."""
    path = Path(__file__).parent / "fixtures" / "pt2" / "native-batch-norm-functional.pt2"
    analysis = foveal.receptive_field(path)
    norm = next(r for r in analysis if r.node.op.op == "global")
    assert norm.is_global == (True, True) and norm.status == "exact"
    assert analysis.output.is_global == (True, True)
    assert main(["analyze", str(path)]) == 0
    capsys.readouterr()
