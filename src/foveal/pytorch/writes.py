"""In-place writes in an fx graph, followed as PyTorch runs them.

torch.fx records `x.add_(y)` as a node but leaves every later use of `x` on the node before the
write, and it cannot record `x[i] = y` at all; an analysis of that graph would miss what the write
brought in. Here the tracer records item assignment as the functional `assign` and the in-place
operators (`+=`) as the plain ones marked as writing (`WRITES`), and `follow_writes`, once each
node's value is known, moves every
later read of the written tensor onto the write's node: the graph then says what PyTorch computes.
A write that reaches other tensors through a view (`v = x[:, :2]; v.add_(y)`, then `x` read) or
that changes the tensor's shape in place is not rewritten: it is reported, and capture goes
through torch.export, which makes every write functional itself.
"""

from __future__ import annotations

import inspect
import operator
from functools import cache
from typing import Any

import torch
from torch import fx


def assign(x: torch.Tensor, key: Any, value: Any) -> torch.Tensor:
    """`x[key] = value` as a function: a copy of x with the part written (fx records this
    for item assignment on a traced tensor)."""
    out = x.clone()
    if isinstance(value, torch.Tensor) and "meta" in (value.device.type, out.device.type) \
            and value.device != out.device:  # shapes only: both on meta
        out, value = out.to("meta"), value.to("meta")
    out[key] = value
    return out


_INPLACE_OPERATORS = ("iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow", "imatmul",
                      "iand", "ior", "ixor", "ilshift", "irshift")
WRITES = "foveal_writes_first_argument"
"""The meta key of a node that writes into its first argument although its target does not
say so: `x += y`, recorded as `operator.add` so that it is named and labelled as an add."""


class WritingProxy(fx.Proxy):
    """An fx proxy on which item assignment and `+=` (and the other in-place operators) are
    recorded: fx's own falls back to `x = x + y` (a new tensor, so an alias of x misses the
    write) and refuses `x[i] = y`."""

    def __setitem__(self, key: Any, value: Any) -> None:
        written = self.tracer.create_proxy("call_function", assign, (self, key, value), {})
        if isinstance(written, fx.Proxy):  # this proxy is x: later reads of it read the write
            self.node = written.node


def _inplace(name: str) -> Any:
    plain = name[1:]
    target = getattr(operator, plain, None) or getattr(operator, f"{plain}_")

    def method(self: fx.Proxy, other: Any) -> fx.Proxy:
        result = self.tracer.create_proxy("call_function", target, (self, other), {})
        if isinstance(result, fx.Proxy):
            result.node.meta[WRITES] = True
        return result

    method.__name__ = f"__{name}__"
    return method


for _name in _INPLACE_OPERATORS:
    setattr(WritingProxy, f"__{_name}__", _inplace(_name))


_VIEWS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "transpose", "permute", "flatten", "unflatten",
    "squeeze", "unsqueeze", "expand", "expand_as", "narrow", "select", "t", "split",
    "split_with_sizes", "chunk", "unbind", "tensor_split", "hsplit", "vsplit", "as_strided",
    "diagonal", "movedim", "moveaxis", "swapaxes", "swapdims", "unfold", "contiguous", "detach",
    "to", "type_as", "float", "half", "double", "bfloat16", "type", "real", "imag", "view_as_real",
    "view_as_complex", "getitem", "getattr", "identity", "alias", "numpy_T", "T", "mT", "H", "mH",
    "ravel", "align_as", "rename", "requires_grad",
})
"""Ops whose result may share its input's storage: a write into one is seen by the other."""

_SAME_GEOMETRY = frozenset({
    "relu", "relu6", "sigmoid", "tanh", "hardtanh", "hardswish", "hardsigmoid", "silu", "gelu",
    "elu", "selu", "celu", "leaky_relu", "mish", "exp", "log", "sqrt", "rsqrt", "abs", "neg",
    "clamp", "clip", "clamp_min", "clamp_max", "sign", "square", "erf", "sin", "cos",
    "reciprocal", "floor", "ceil", "round", "dropout", "alpha_dropout", "feature_alpha_dropout",
    "requires_grad", "threshold", "rrelu",
})
"""Writes that read only the written tensor, element by element: a stale alias has the same
receptive field, so a view of it need not be followed."""


_SAME_MODULES = frozenset({
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "SiLU", "Hardswish", "Hardsigmoid", "Hardtanh",
    "Mish", "Sigmoid", "Tanh", "Threshold", "RReLU", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
    "AlphaDropout", "FeatureAlphaDropout", "Identity", "Flatten", "Unflatten",
})
"""Module classes that write element by element (`inplace=True`) or may return their input."""


def _plain_name(n: fx.Node, module_of: Any) -> str:
    """The op's plain name: a method's or a function's, without trailing underscores, or a
    module's class name."""
    if n.op == "call_method":
        return str(n.target).rstrip("_")
    if n.op == "call_function":
        return getattr(n.target, "__name__", str(n.target)).rstrip("_")
    if n.op == "call_module":
        return type(module_of(str(n.target))).__name__
    return n.op


def written(n: fx.Node, module_of: Any) -> fx.Node | None:
    """The node of the tensor that `n` writes into, or None for a node that writes nothing."""
    if not n.args or not isinstance(n.args[0], fx.Node):
        return None
    if n.op == "call_method":
        name = str(n.target)
        return n.args[0] if name[-1:] == "_" and name[:2] != "__" else None
    if n.op == "call_function":
        if n.target is assign or n.meta.get(WRITES) or _writes_by_name(n.target) or _inplace_argument(n):
            return n.args[0]
        return None
    if n.op == "call_module":  # nn.ReLU(inplace=True) and friends keep it as a plain attribute
        return n.args[0] if vars(module_of(str(n.target))).get("inplace") is True else None
    return None


def _writes_by_name(target: Any) -> bool:
    """torch.relu_, F.relu_ and the like: a torch function whose name ends in one underscore."""
    try:
        return _named_as_writing(target)
    except TypeError:  # an unhashable callable
        return False


@cache
def _named_as_writing(target: Any) -> bool:
    name = getattr(target, "__name__", "") or ""
    return name[-1:] == "_" and name[:2] != "__" and getattr(target, "__module__", "") in (
        "torch", "torch.nn.functional", "torch._C._VariableFunctions", "torch._C._nn")


def _inplace_argument(n: fx.Node) -> bool:
    """A call such as F.relu(x, inplace=True), or with `inplace` passed by position."""
    if n.kwargs.get("inplace") is True:
        return True
    if len(n.args) < 2:
        return False
    try:
        signature = _signature_with_inplace(n.target)
    except TypeError:  # an unhashable callable
        return False
    if signature is None:
        return False
    try:
        bound = signature.bind_partial(*n.args, **n.kwargs)
    except TypeError:
        return False
    return bound.arguments.get("inplace") is True


@cache
def _signature_with_inplace(target: Any) -> inspect.Signature | None:
    """The target's signature when it takes `inplace` (F.relu, F.dropout...), else None; once a
    function, since most calls (add, getitem, cat) take no such argument."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    return signature if "inplace" in signature.parameters else None


def follow_writes(graph: fx.Graph, values: dict[fx.Node, Any], module_of: Any) -> str | None:
    """Moves each read of a tensor that comes after an in-place write into it onto the write's
    node (whose value is the written tensor). Returns why that cannot be done (a write seen
    through a view, a write that changes the shape), leaving the graph as it was; None when done."""
    writes = [(n, base) for n in graph.nodes if (base := written(n, module_of)) is not None
              and isinstance(values.get(base), torch.Tensor)]
    if not writes:
        return None
    order = {n: i for i, n in enumerate(graph.nodes)}
    for n, base in writes:
        result = values.get(n)
        name = _plain_name(n, module_of)
        if not isinstance(result, torch.Tensor) or result.shape != values[base].shape:
            return f"node {n.name!r} ({name}) changes the shape of the tensor it writes into"
        if n.meta.get(WRITES) or (name not in _SAME_GEOMETRY and name not in _SAME_MODULES):
            seen = _seen_through_view(n, base, order, values, module_of)
            if seen is not None:
                return (f"node {n.name!r} ({name}) writes into a tensor that {seen.name!r} reads "
                        f"afterwards through a view")
    for n, base in writes:
        base = n.args[0]  # an earlier write may have moved it
        for user in [u for u in base.users if order[u] > order[n]]:
            user.replace_input_with(base, n)
    return None


def _seen_through_view(n: fx.Node, base: fx.Node, order: dict[fx.Node, int],
                       values: dict[fx.Node, Any], module_of: Any) -> fx.Node | None:
    """A node after `n` that reads `base`'s storage other than through `base` itself: a view
    of it made before the write, the tensor it is a view of, or the same buffer read again."""
    def is_view(m: fx.Node) -> bool:
        if m.op == "call_module":  # modules that may return their input itself
            name = _plain_name(m, module_of)
            return name in ("Identity", "Flatten", "Unflatten") or "Dropout" in name
        return m.op in ("call_method", "call_function") and _plain_name(m, module_of) in _VIEWS

    root = base
    while is_view(root) and isinstance(root.args[0], fx.Node):
        root = root.args[0]
    others: list[fx.Node] = []
    stack, seen = [root], {root}
    while stack:
        node = stack.pop()
        if node is not base:
            others.append(node)
        for user in node.users:
            made_after = node is base and order[user] > order[n]  # moved onto the write: not stale
            if user not in seen and not made_after and is_view(user) and user.args[0] is node:
                seen.add(user)
                stack.append(user)
    if root.op == "get_attr":
        others += [m for m in root.graph.nodes if m.op == "get_attr" and m.target == root.target
                   and m is not root]
    for other in others:
        if not isinstance(values.get(other), torch.Tensor):  # `x.shape`: the write keeps sizes
            continue
        for user in other.users:
            if order[user] > order[n] and user not in seen:
                return user
    return None
