"""Capture an nn.Module as an fx graph whose every node carries its output's shape.

torch.fx symbolic tracing is the fast path: it records module calls and the functional ops
between them in a few milliseconds. Shapes come from running that graph once on meta tensors:
parameters and buffers are swapped for meta stand-ins of the same shape, so no weight is read
or allocated and the user's module is never modified. Control flow on sizes, which fx refuses,
is decided at the analysed shape by a second trace whose proxies carry meta values
(`_ShapeTracer`); a model fx still cannot trace goes through torch.export (`export.py`). Both
run with device requests (`.cuda()`, `device="cuda"`) kept on the input's device, so CUDA-only
code is captured on a CPU machine.

Only when those meta routes fail does `capture="auto"` run the model for real, once, on the CPU
(an op without a meta kernel, `.item()` of a weight, `torch.autocast` asked for the meta device):
meta parameters get random stand-ins, the input is a random tensor of the requested shape, and a
value read into Python (`.item()`) or a size that depends on the input or on the stand-ins
refuses the route rather than give a number that holds for this one input.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.func import functional_call
from torch.multiprocessing.reductions import StorageWeakRef
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import FovealError, InvalidParameterError
from ..input_spec import Form
from .sizes import METHOD_RULES, rule_for_function, rule_for_module
from .writes import WritingProxy, follow_writes


class CaptureError(FovealError):
    """The model could not be turned into a graph (tracing or shape propagation failed)."""


CAPTURE_METHODS = ("auto", "fx", "export")


@dataclass
class Captured:
    """A captured module: the fx graph, each node's output (meta or fake), and names."""

    root: nn.Module
    """The module whose attributes the graph's `get_attr` and `call_module` targets name."""
    graph: fx.Graph
    values: dict[fx.Node, Any]
    module_outputs: list[tuple[str, fx.Node, str]] = field(default_factory=list)
    """(module path, node it returned, class name) per non-leaf module call, innermost first."""
    leaf_types: dict[str, type] = field(default_factory=dict)
    input_node: fx.Node | None = None
    """The placeholder of the analysed input (None: the first tensor placeholder)."""
    names: dict[fx.Node, str] = field(default_factory=dict)
    """Exported graphs: each node's base name from its module stack."""
    labels: dict[fx.Node, str] = field(default_factory=dict)
    state: dict[fx.Node, torch.Tensor] = field(default_factory=dict)
    """Exported graphs: the parameter, buffer or constant each other placeholder takes."""
    method: str = "fx"
    ran_on: str = "meta"
    """Where the shapes came from: 'meta', or 'cpu' when the meta routes failed and the model ran
    on real CPU tensors (`capture="auto"` only)."""
    _gm: fx.GraphModule | None = field(default=None, repr=False)

    @property
    def gm(self) -> fx.GraphModule:
        """The graph as a GraphModule, made on first use: its code generation costs a third of
        tracing, and only running the graph again (verify, FLOP counts) needs it."""
        if self._gm is None:
            self._gm = as_graph_module(self.root, self.graph)
        return self._gm


def as_graph_module(root: nn.Module, graph: fx.Graph) -> fx.GraphModule:
    if isinstance(root, fx.GraphModule) and root.graph is graph:
        return root
    return fx.GraphModule(root, graph, type(root).__name__)


class _Tracer(fx.Tracer):
    """fx's tracer, also noting what every non-leaf module call returned."""

    def __init__(self, leaves: tuple[type, ...] = (), leaf_names: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.module_outputs: list[tuple[str, fx.Node, str]] = []
        self.leaves = leaves
        self.leaf_names = leaf_names

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        return (isinstance(m, self.leaves) or qualified_name(type(m)) in self.leaf_names
                or super().is_leaf_module(m, module_qualified_name))

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return WritingProxy(node, self)

    def trace(self, root: Any, concrete_args: Any = None) -> fx.Graph:
        """fx's trace; what forward stored on a module meanwhile is undone where it holds an fx
        proxy (`_StoredOnModules`)."""
        self._names: dict[str, tuple[dict[int, str], Iterator[tuple[str, torch.Tensor]]]] = {}
        self._stored = _StoredOnModules()
        if isinstance(root, nn.Module):
            self._stored.watch(root)
        with self._stored:
            return super().trace(root, concrete_args)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        """fx's, with the parameter (or buffer) found by identity in a table filled as the
        model's tensors are walked, once at most a trace: fx walks them at each access, which
        took MViTv2-huge 3.9 s of its 4."""
        name = None
        if isinstance(attr_val, nn.Parameter):
            name = self._name_of("parameters", attr_val)
        if name is None and self.proxy_buffer_attributes and isinstance(attr_val, torch.Tensor):
            name = self._name_of("buffers", attr_val)
        if name is None:
            return attr_val
        if name not in parameter_proxy_cache:
            parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {})
        return parameter_proxy_cache[name]

    def _name_of(self, kind: str, tensor: torch.Tensor) -> str | None:
        if kind not in self._names:
            walk = self.root.named_parameters() if kind == "parameters" else self.root.named_buffers()
            self._names[kind] = ({}, iter(walk))
        table, rest = self._names[kind]
        name = table.get(id(tensor))
        while name is None:
            try:
                found, t = next(rest)
            except (StopIteration, RuntimeError):  # walked them all (or the model changed)
                return None
            table[id(t)] = found
            if t is tensor:
                return found
        return name

    def call_module(self, m: torch.nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        path = self.path_of_module(m)
        traced = not self.is_leaf_module(m, path)
        if traced:
            self._stored.watch(m)  # its forward runs: it may store on itself
        result = super().call_module(m, forward, args, kwargs)
        if traced and isinstance(result, fx.Proxy):
            self.module_outputs.append((path, result.node, type(m).__name__))
        return result


_PLAIN = (bool, int, float, torch.Size)


def _plain(value: Any) -> bool:
    """A Python value a branch may read: a number, a torch.Size, or a tuple or list of them."""
    if isinstance(value, (tuple, list)) and not isinstance(value, torch.Size):
        return all(isinstance(v, _PLAIN) for v in value)
    return isinstance(value, _PLAIN)


_UNKNOWN = object()


class _ShapeTracer(_Tracer):
    """fx's tracer whose proxies carry their value on meta tensors, computed as the graph is built
    (the node run as `MetaRun` runs it), so that a branch, `len`, `int()` or iteration on a value
    that is a plain Python number or size (`if H != self.img_size[0]`, `for d in x.shape`) is
    decided at the analysed input shape, where fx refuses it. A branch on a tensor (data-dependent
    control flow) or on a value that could not be computed still raises as fx does. Hugging Face's
    transformers tracer (HFTracer) works the same way."""

    proxy_buffer_attributes = True  # a buffer's method called with a size read from a proxy
    # (`self.inv_freq.expand(ids.shape[0], -1)`) is recorded, where PyTorch refuses the proxy

    def __init__(self, example: torch.Tensor, leaves: tuple[type, ...] = (),
                 leaf_names: frozenset[str] = frozenset()) -> None:
        super().__init__(leaves, leaf_names)
        self.example = example
        self._run: MetaRun | None = None
        self._placeholders = 0
        self._in_meta = False

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _ShapeProxy(node, self)

    def create_proxy(self, kind: str, target: Any, args: Any, kwargs: Any, *rest: Any, **options: Any
                     ) -> Any:
        """A size, a number or a flag computed from sizes is that plain value, as at run time:
        PyTorch takes no proxy where it wants an int (`torch.ones(B, N)`, `t.expand(n, -1)`),
        and the graph is for this input shape anyway. Reading an attribute (`x.shape`, whose
        node fx makes here) stays a proxy."""
        proxy = super().create_proxy(kind, target, args, kwargs, *rest, **options)
        if kind in ("call_function", "call_method") and target is not getattr and not self._in_meta:
            value = self.value(proxy.node)
            if _plain(value):
                return value
        return proxy

    def create_node(self, kind: str, target: Any, args: Any, kwargs: Any, name: str | None = None,
                    type_expr: Any | None = None) -> fx.Node:
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        if kind == "output":
            return node
        if self._run is None:
            self._run = MetaRun(self.root, self.graph)
        values = self._run.values
        if kind == "placeholder":
            self._placeholders += 1
            if self._placeholders == 1:
                values[node] = self.example
            elif node.args:  # a default value from the signature
                values[node] = node.args[0]
            return node
        self._in_meta = True
        try:
            with torch.no_grad():
                self._run.run_node(node)
        except Exception:  # noqa: BLE001 - unknown: a branch on it raises as fx's does
            values.pop(node, None)
        finally:
            self._in_meta = False
        return node

    def value(self, node: fx.Node) -> Any:
        return _UNKNOWN if self._run is None else self._run.values.get(node, _UNKNOWN)

    def call_module(self, m: torch.nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        if self._in_meta:  # a leaf module running on meta tensors: its submodules run, untraced
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if self._in_meta:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def to_bool(self, obj: fx.Proxy) -> bool:
        value = self.value(obj.node)
        if _plain(value):
            return bool(value)
        return super().to_bool(obj)

    def iter(self, obj: fx.Proxy) -> Iterator:
        value = self.value(obj.node)
        if _plain(value) and isinstance(value, (tuple, list)):
            items: Any = obj
            return (items[i] for i in range(len(value)))
        return super().iter(obj)


class _Concrete:
    """`len`, `int()` and `operator.index` of a proxy whose meta value is a plain Python value
    (and `len` of a tensor, its first size): that value; fx's error otherwise."""

    tracer: Any
    node: fx.Node

    def __getattr__(self, k: str) -> Any:
        return _ShapeAttribute(self, k)  # type: ignore[arg-type]

    def _known(self, what: str) -> Any:
        value = self.tracer.value(self.node)
        if isinstance(value, (int, float)) or (what == "len" and _plain(value)):
            return value
        if what == "len" and isinstance(value, torch.Tensor) and value.dim() > 0:
            return value
        return _UNKNOWN

    def __len__(self) -> int:
        value = self._known("len")
        if value is _UNKNOWN:
            return fx.Proxy.__len__(self)  # type: ignore[arg-type]
        return len(value)

    def __index__(self) -> int:
        value = self._known("int")
        if value is _UNKNOWN or not isinstance(value, int):
            raise TypeError(f"'{type(self).__name__}' object cannot be interpreted as an integer "
                            f"(its value is not a Python int known at trace time)")
        return value.__index__()

    def __int__(self) -> int:
        value = self._known("int")
        if value is _UNKNOWN:
            raise TypeError(f"int() of a traced value that is not a Python number known at "
                            f"trace time ({self.node.name})")
        return int(value)


class _ShapeProxy(_Concrete, WritingProxy):
    pass


class _ShapeAttribute(_Concrete, fx.proxy.Attribute):
    pass


def _prune_shape_reads(graph: fx.Graph, values: dict[fx.Node, Any]) -> None:
    """Drops the size reads and comparisons a decided branch left unused (`x.shape`, `[1]`,
    `!=`): the graph is what fx would have traced with the branch written out."""
    for node in reversed(graph.nodes):
        if node.users or not _plain(values.get(node, _UNKNOWN)):
            continue
        if ((node.op == "call_function" and (node.target is getattr or node.target is len
                                             or getattr(node.target, "__module__", "") in _PURE))
                or (node.op == "call_method" and node.target in ("size", "dim", "numel"))):
            graph.erase_node(node)


_PURE = frozenset({"_operator", "operator"})


def check_input_shape(input_shape: Any) -> tuple[int, ...]:
    """(N, C, *spatial) with 1 to 3 spatial axes, or (N, L): a raw signal (audio) to which the
    model adds its own channel dim."""
    if isinstance(input_shape, torch.Size):
        input_shape = tuple(input_shape)
    if not isinstance(input_shape, (tuple, list)) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in input_shape):
        raise InvalidParameterError(
            f"input_shape for a PyTorch module must be a tuple of positive ints (N, C, *spatial), "
            f"got {input_shape!r}")
    if not 2 <= len(input_shape) <= 5:
        raise InvalidParameterError(
            f"input_shape {tuple(input_shape)} has rank {len(input_shape)}; a PyTorch model takes "
            f"(N, C, L), (N, C, H, W), (N, C, D, H, W) or a raw signal (N, L)")
    return tuple(input_shape)


def input_form(rank: int) -> Form:
    """Where a PyTorch input of `rank` holds its spatial axes: (N, L) is a raw signal, any other
    rank is channels first."""
    return Form.SIGNAL if rank == 2 else Form.CHANNELS_FIRST


def spatial_sizes(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The spatial sizes of a PyTorch input shape, in axis order."""
    return tuple(shape[d] for d in input_form(len(shape)).spatial_dims(len(shape)))


def example_input(module: torch.nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised input on the parameters' device (meta for a model built on meta, even
    when a few of its tensors were made on the CPU regardless, as Hugging Face's wav2vec2 makes
    `masked_spec_embed`) with their floating dtype (a half-precision model gets a half input)."""
    tensors = [*module.parameters(), *module.buffers()]
    device = tensors[0].device if tensors else torch.device("meta")
    if device.type not in ("meta", "cpu") or any(t.device.type == "meta" for t in tensors):
        device = torch.device("meta")  # a CUDA model on a machine without CUDA: meta too
    dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.get_default_dtype())
    return torch.empty(input_shape, device=device, dtype=dtype)


class _StayOn(TorchFunctionMode):
    """Keeps a model's tensors off devices this machine may not have: `.cuda()`, `.to("cuda")` and
    `device="cuda"` requests (any device but the CPU and meta) stay where the input is."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device = device

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if not kwargs and func is not torch.Tensor.cuda and func is not torch.Tensor.to:
            return func(*args)  # a device is requested by keyword, or through these two methods
        kwargs = dict(kwargs or {})
        if func is torch.Tensor.cuda:
            return args[0]
        if func is torch.Tensor.to and any(_elsewhere(a) for a in (*args[1:], kwargs.get("device"))):
            dtype = kwargs.get("dtype") or next((a for a in args[1:] if isinstance(a, torch.dtype)), None)
            return args[0] if dtype is None else func(args[0], dtype)
        if _elsewhere(kwargs.get("device")):
            kwargs["device"] = self.device
        return func(*args, **kwargs)


def _elsewhere(device: Any) -> bool:
    """A device request other than the CPU or meta (a string, torch.device or CUDA index)."""
    if isinstance(device, bool) or not isinstance(device, (str, torch.device, int)):
        return False
    if isinstance(device, int):
        return True
    return torch.device(device).type not in ("cpu", "meta")


@contextmanager
def on_device(device: torch.device) -> Iterator[None]:
    with _StayOn(device):
        yield


def first_line(exc: BaseException, with_type: bool = True) -> str:
    """An exception's first line, for one-line errors (its type alone if it says nothing)."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if with_type else text.splitlines()[0]


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def trace(module: torch.nn.Module, leaves: tuple[type, ...] = (),
          leaf_names: frozenset[str] = frozenset(), example: torch.Tensor | None = None
          ) -> tuple[fx.Graph, _Tracer]:
    """The fx graph of `module` (its targets are paths in `tracer.root`, the module itself) and
    the tracer. No GraphModule is made (`Captured.gm` makes one when asked). With `example`,
    branches on sizes are decided at its shape (`_ShapeTracer`)."""
    tracer = _Tracer(leaves, leaf_names) if example is None else _ShapeTracer(example, leaves, leaf_names)
    with on_device(torch.device("cpu")):  # constants a CUDA-only model makes while tracing
        graph = tracer.trace(module)
    if isinstance(tracer, _ShapeTracer) and tracer._run is not None:
        _prune_shape_reads(graph, tracer._run.values)
        tracer._run = None  # the meta values are not kept: `propagate` runs the graph again
    return graph, tracer


class _StoredOnModules:
    """What forward stores on the model while fx traces it, undone where it holds an fx proxy.

    fx runs forward's Python, so what forward stores on a module (ConViT's buffer rebuilt for
    the token count, LeViT's attention biases cached in a dict keyed by device) would be a proxy
    on the user's module afterwards, and the next real forward would fail. Attribute assignments
    are logged (nn.Module.__setattr__, patched while tracing, as fx patches __getattr__); the
    dict attributes of each module whose forward runs are copied first. Afterwards an attribute
    or entry that holds a proxy gets its old value back, or is removed when it is new."""

    def __init__(self) -> None:
        self.assigned: list[tuple[nn.Module, str, dict[str, Any] | None, Any]] = []
        self.dicts: list[tuple[dict, dict]] = []
        self.watched: set[int] = set()

    def watch(self, module: nn.Module) -> None:
        if id(module) not in self.watched:
            self.watched.add(id(module))
            self.dicts += [(v, dict(v)) for k, v in module.__dict__.items()
                           if type(v) is dict and k not in ("_parameters", "_buffers", "_modules")]

    def __enter__(self) -> None:
        original = self._original = nn.Module.__setattr__
        log = self.assigned

        def logged(module: nn.Module, name: str, value: Any) -> None:
            if _holds_proxy(value):
                table = _table_of(module, name)
                log.append((module, name, table, None if table is None else table[name]))
            original(module, name, value)

        nn.Module.__setattr__ = logged  # type: ignore[method-assign, assignment]

    def __exit__(self, *exc: Any) -> None:
        nn.Module.__setattr__ = self._original  # type: ignore[method-assign]
        for table, before in self.dicts:
            for key in [k for k, v in table.items() if before.get(k) is not v and _holds_proxy(v)]:
                if key in before:
                    table[key] = before[key]
                else:
                    del table[key]
        for module, name, table, old in reversed(self.assigned):
            state = module.__dict__
            for where in (state.get("_parameters"), state.get("_buffers"), state.get("_modules"), state):
                if where is not None and name in where and _holds_proxy(where[name]):
                    del where[name]
            if table is not None:
                table[name] = old


def _table_of(module: nn.Module, name: str) -> dict[str, Any] | None:
    """The dict of the module that holds attribute `name`: parameters, buffers, submodules or
    plain attributes; None when it has none."""
    state = module.__dict__
    for table in (state.get("_parameters"), state.get("_buffers"), state.get("_modules"), state):
        if table is not None and name in table:
            return table
    return None


def _holds_proxy(value: Any) -> bool:
    if isinstance(value, fx.Proxy):
        return True
    if isinstance(value, (tuple, list)):
        return any(isinstance(v, fx.Proxy) for v in value)
    return isinstance(value, dict) and any(isinstance(v, fx.Proxy) for v in value.values())


_CONTROL_FLOW = ("symbolically traced variables cannot be used as inputs to control flow",
                 "'len' is not supported in symbolic tracing", "Proxy object cannot be iterated",
                 "Proxy'",  # "not 'Proxy'", "'WritingProxy' object cannot be interpreted..."
                 "not 'Attribute'",
                 "positional argument but")  # `torch.ones(B, N)`: PyTorch takes no proxy for an int


def _shape_retry(module: torch.nn.Module, input_shape: tuple[int, ...], leaves: tuple[type, ...],
                 leaf_names: frozenset[str], failed: Exception) -> tuple[fx.Graph, _Tracer] | None:
    """When fx refused control flow, a second trace that decides branches on sizes at the
    analysed shape; None when that fails too (data-dependent control flow) or fx failed for
    another reason."""
    text = str(failed)
    if not isinstance(failed, fx.proxy.TraceError) and not any(c in text for c in _CONTROL_FLOW):
        return None
    try:
        return trace(module, leaves, leaf_names, example_input(module, input_shape).to("meta"))
    except Exception:  # noqa: BLE001 - the first trace's error is the one reported
        return None


class MetaRun:
    """Runs the graph on meta tensors, with meta stand-ins for parameters and buffers.

    With `sizes` (capture's default), an op that has a size rule (`sizes.py`) gets its output
    from the rule and PyTorch's kernel does not run; `check` runs the kernel as well and raises
    when the two differ (the tests' self-check). Without `sizes` every kernel runs (FLOP counts
    need them). Kernels run with device requests kept on the meta device (`on_device`); the loop
    is fx.Interpreter's without its per-node bookkeeping, which cost as much as the rules."""

    def __init__(self, root: nn.Module, graph: fx.Graph, sizes: bool = True, check: bool = False) -> None:
        self.module = root
        self.graph = graph
        self.values: dict[fx.Node, Any] = {}
        self._meta: dict[int, torch.Tensor] = {}
        self.sizes = sizes
        self.check = check
        self.node_name = ""
        self._stay = _StayOn(torch.device("meta"))

    def run(self, *args: Any) -> Any:
        """Every node in order; the placeholders take `args`. Returns the output's value."""
        inputs = iter(args)
        values = self.values
        for n in self.graph.nodes:
            if n.op == "placeholder":
                values[n] = next(inputs)
            elif n.op == "output":
                values[n] = result = fx.node.map_arg(n.args[0], values.__getitem__)
                return result
            else:
                self.run_node(n)
        return None

    def run_node(self, n: fx.Node) -> Any:
        self.node_name = n.name
        lookup = self.values.__getitem__
        args = fx.node.map_arg(n.args, lookup)
        kwargs = fx.node.map_arg(n.kwargs, lookup)
        target = n.target
        if n.op == "call_module":
            sub = self._attribute(str(target))
            rule = rule_for_module(sub) if self.sizes else None
            result = self._by_rule(rule, sub, args, kwargs, lambda: self._module(sub, args, kwargs))
        elif n.op == "call_function":
            rule = rule_for_function(target, lambda: _function_name(target)) if self.sizes else None
            result = self._by_rule(rule, None, args, kwargs, lambda: target(*args, **kwargs))  # type: ignore[operator]
        elif n.op == "call_method":
            on_tensor = self.sizes and args and isinstance(args[0], torch.Tensor)
            rule = METHOD_RULES.get(str(target)) if on_tensor else None
            result = self._by_rule(rule, None, args, kwargs,
                                   lambda: getattr(args[0], target)(*args[1:], **kwargs))  # type: ignore[arg-type]
        elif n.op == "get_attr":
            result = self._as_meta(self._attribute(str(target)))
        else:
            raise CaptureError(f"node {n.name!r}: unexpected fx op {n.op!r}")
        self.values[n] = result
        return result

    def _attribute(self, target: str) -> Any:
        """A submodule, parameter, buffer or other attribute by dotted path (the module's own
        dicts first: nn.Module.__getattr__ costs a microsecond a step)."""
        found: Any = self.module
        for part in target.split("."):
            if isinstance(found, nn.Module):
                for table in (found._modules, found._parameters, found._buffers):
                    if part in table:
                        found = table[part]
                        break
                else:
                    found = getattr(found, part)
            else:
                found = getattr(found, part)
        return found

    def _as_meta(self, value: Any) -> Any:
        if not isinstance(value, torch.Tensor) or value.device.type == "meta":
            return value
        found = self._meta.get(id(value))
        if found is None:
            found = self._meta[id(value)] = torch.empty_like(value, device="meta")
        return found

    def _module(self, sub: nn.Module, args: Any, kwargs: Any) -> Any:
        state: dict[str, torch.Tensor] = dict(sub.named_parameters())
        state.update(sub.named_buffers())
        if all(v.device.type == "meta" for v in state.values()):
            return sub(*args, **kwargs)
        return functional_call(sub, {k: self._as_meta(v) for k, v in state.items()}, args, kwargs)

    def _by_rule(self, rule: Any, module: Any, args: Any, kwargs: Any, kernel: Any) -> Any:
        found = None if rule is None else rule(module, args, kwargs)
        if found is None or self.check:
            with self._stay:
                by_kernel = kernel()
            if found is None:
                return by_kernel
            check_sizes(found, by_kernel, self.node_name)
        return found


class SizeRuleError(FovealError):
    """A size rule gave another output than PyTorch's kernel (`MetaRun(check=True)`)."""


def check_sizes(by_rule: Any, by_kernel: Any, where: str) -> None:
    """The rule's output has the kernel's structure, and each tensor its shape, dtype and strides
    (on dims longer than 1, where strides matter)."""
    if isinstance(by_kernel, (tuple, list)) and not isinstance(by_kernel, torch.Size):
        if not isinstance(by_rule, (tuple, list)) or len(by_rule) != len(by_kernel):
            raise SizeRuleError(f"node {where!r}: the size rule gave {by_rule!r}, PyTorch {by_kernel!r}")
        for r, k in zip(by_rule, by_kernel):
            check_sizes(r, k, where)
        return
    if not isinstance(by_kernel, torch.Tensor):
        raise SizeRuleError(f"node {where!r}: the size rule gave a tensor, PyTorch "
                            f"{type(by_kernel).__name__}")
    strides = [(r, k) for r, k, size in zip(by_rule.stride(), by_kernel.stride(), by_kernel.shape)
               if size > 1]
    if (by_rule.shape != by_kernel.shape or by_rule.dtype != by_kernel.dtype
            or any(r != k for r, k in strides)):
        raise SizeRuleError(
            f"node {where!r}: the size rule gave {tuple(by_rule.shape)} {by_rule.dtype} strides "
            f"{by_rule.stride()}, PyTorch {tuple(by_kernel.shape)} {by_kernel.dtype} strides "
            f"{by_kernel.stride()}")


def _function_name(target: Any) -> str:
    module = getattr(target, "__module__", None) or ""
    return f"{module}.{getattr(target, '__qualname__', '')}"


class _RunFailed(CaptureError):
    """Running the traced graph failed (not the arguments): another route may still work."""


def _arguments(graph: fx.Graph, example: torch.Tensor) -> list[Any]:
    """The example for the first placeholder, each other one's default value."""
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if not placeholders:
        raise CaptureError("the module's forward takes no input")
    args: list[Any] = [example]
    for extra in placeholders[1:]:
        if extra.args:  # a default value from the signature
            args.append(extra.args[0])
        else:
            raise CaptureError(f"forward() takes more than one input ({extra.target!r} too); "
                               f"wrap the model so that it takes one tensor")
    return args


def propagate(root: nn.Module, graph: fx.Graph, example: torch.Tensor, check: bool = False
              ) -> dict[fx.Node, Any]:
    """Each node's output on meta tensors: by size rule where one applies, else by PyTorch's
    kernel; `check`: both, compared (SizeRuleError on a difference)."""
    run = MetaRun(root, graph, check=check)
    input_shape = tuple(example.shape)
    args = _arguments(graph, example.to("meta"))
    try:
        with torch.no_grad():
            run.run(*args)
    except FovealError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model, said plainly
        raise _RunFailed(f"running the model on a meta tensor of shape {input_shape} failed"
                         f"{_after(run.values)}: {first_line(exc)}") from None
    return run.values


def _after(values: dict[fx.Node, Any]) -> str:
    where = next(reversed(values), None)
    return f" after node {where.name!r}" if where is not None else ""


# -- the real run on the CPU --------------------------------------------------------------------


def _random_like(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Real CPU values for a meta tensor, in its dtype: floats in [0.5, 1.5) (no unit is dead),
    zeros otherwise."""
    if t.is_floating_point() or t.is_complex():
        return torch.rand(t.shape, generator=gen, dtype=t.dtype) + 0.5
    return torch.zeros(t.shape, dtype=t.dtype)


class _Unfollowable(CaptureError):
    """The real run read values into Python, or made a size from them, that a shape-only capture
    cannot stand for: the result would hold for this one input (or these random weights)."""


_INPUT, _STAND_IN = "the input", "random stand-ins"
_READS_INTO_PYTHON = frozenset({"tolist", "numpy", "__array__"})
"""Tensor methods that read values without an ATen op (item(), int(), bool() run
`_local_scalar_dense`, which the dispatch mode sees)."""


class _Sources:
    """What each live tensor's values were computed from, by storage (a view shares its base's,
    and a write into a view reaches the base): the input, the stand-ins, or neither (the
    model's real weights and constants). The first read of input or stand-in values into Python,
    or a size made from them, is kept with the node that did it."""

    def __init__(self) -> None:
        self.of: dict[StorageWeakRef, frozenset[str]] = {}
        self.node: fx.Node | None = None
        self.problem: str | None = None

    def mark(self, t: torch.Tensor, source: str) -> None:
        self._add(t, frozenset({source}))

    def sources(self, tree: Any) -> frozenset[str]:
        found: frozenset[str] = frozenset()
        for t in _tensors_in(tree):
            key = _storage(t)
            if key is not None:
                found |= self.of.get(key, frozenset())
        return found

    def _add(self, t: torch.Tensor, sources: frozenset[str]) -> None:
        key = _storage(t)
        if key is not None and sources:
            self.of[key] = self.of.get(key, frozenset()) | sources

    def flow(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        """Outputs, and arguments the op writes into, take what its tensor arguments came from."""
        sources = self.sources((args, kwargs))
        if not sources:
            return
        for t in _tensors_in(out):
            self._add(t, sources)
        schema = getattr(func, "_schema", None)
        for arg, value in zip(getattr(schema, "arguments", ()), args):
            if arg.alias_info is not None and arg.alias_info.is_write:
                for t in _tensors_in(value):
                    self._add(t, sources)
        for arg in getattr(schema, "arguments", ()):
            if arg.alias_info is not None and arg.alias_info.is_write and arg.name in kwargs:
                for t in _tensors_in(kwargs[arg.name]):
                    self._add(t, sources)

    def check(self, what: str, sources: frozenset[str], size: bool = False) -> None:
        if not sources or self.problem is not None:
            return
        where = f"node {self.node.name!r}" if self.node is not None else "the model"
        of = " and ".join(sorted(sources))
        done = (f"makes a tensor whose size depends on values computed from {of}" if size
                else f"reads values computed from {of} into Python")
        if _INPUT in sources:
            why = ("so the result would hold for this one input, and a dependence carried by a "
                   "Python number is not followed")
        else:
            why = ("which stand in for parameters or buffers on the meta device; give the model "
                   "its weights (build it on the CPU) so these values are real")
        self.problem = f"{where} {done} ({what}), {why}"


def _storage(t: torch.Tensor) -> StorageWeakRef | None:
    try:
        return StorageWeakRef(t.untyped_storage())
    except Exception:  # noqa: BLE001 - tensors without a storage (sparse, nested) carry nothing
        return None


def _tensors_in(tree: Any) -> list[torch.Tensor]:
    found: list[torch.Tensor] = []
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            found.append(item)
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return found


class _FlowMode(TorchDispatchMode):
    """Follows `_Sources` through every ATen op; notes value reads and value-dependent sizes."""

    def __init__(self, sources: _Sources) -> None:
        super().__init__()
        self.record = sources

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        tags = getattr(func, "tags", ())
        if torch.Tag.data_dependent_output in tags:
            self.record.check(f"{func.overloadpacket.__name__}: item(), int(), float() or bool() "
                              f"of a tensor", self.record.sources((args, kwargs)))
        elif torch.Tag.dynamic_output_shape in tags:
            self.record.check(str(func), self._size_sources(func, args, kwargs), size=True)
        out = func(*args, **kwargs)
        self.record.flow(func, args, kwargs, out)
        return out

    def _size_sources(self, func: Any, args: tuple, kwargs: dict) -> frozenset[str]:
        """Where the output's size comes from: for indexing, only boolean masks decide it."""
        if func is torch.ops.aten.index.Tensor:
            masks = [t for t in _tensors_in(args[1:]) if t.dtype in (torch.bool, torch.uint8)]
            return self.record.sources(masks)
        return self.record.sources((args, kwargs))


class _ReadMode(TorchFunctionMode):
    """Value reads that run no ATen op (`tolist`, `numpy`)."""

    def __init__(self, sources: _Sources) -> None:
        super().__init__()
        self.record = sources

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        if getattr(func, "__name__", None) in _READS_INTO_PYTHON and args:
            self.record.check(f"Tensor.{func.__name__}", self.record.sources(args[0]))
        return func(*args, **(kwargs or {}))


class RealRun(fx.Interpreter):
    """Runs the graph on real CPU tensors: parameters and buffers on the meta device get random
    stand-ins for the run (`functional_call`; the module is not changed), other weights are read
    as they are. Each node's value is kept as a meta tensor of its shape and dtype, so memory is
    released as the run goes; Python values (sizes, numbers read from constants) are kept."""

    def __init__(self, gm: fx.GraphModule, sources: _Sources) -> None:
        super().__init__(gm)
        self.extra_traceback = False  # foveal's message names the node
        self.values: dict[fx.Node, Any] = {}
        self.sources = sources
        self._gen = torch.Generator().manual_seed(0)
        self._real: dict[int, torch.Tensor] = {}

    def _as_real(self, value: Any) -> Any:
        if not isinstance(value, torch.Tensor) or value.device.type != "meta":
            return value
        found = self._real.get(id(value))
        if found is None:
            found = self._real[id(value)] = _random_like(value, self._gen)
            self.sources.mark(found, _STAND_IN)
        return found

    def get_attr(self, target: Any, args: Any, kwargs: Any) -> Any:
        return self._as_real(super().get_attr(target, args, kwargs))

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        sub = self.fetch_attr(target)
        state = {k: self._as_real(v) for k, v in [*sub.named_parameters(), *sub.named_buffers()]
                 if v.device.type == "meta"}
        if not state:
            return sub(*args, **kwargs)
        return functional_call(sub, state, args, kwargs)

    def run_node(self, n: fx.Node) -> Any:
        self.sources.node = n
        result = super().run_node(n)
        if self.sources.problem is not None:
            raise _Unfollowable(self.sources.problem)
        self.values[n] = _as_meta(result)
        return result


def _as_meta(value: Any) -> Any:
    """A value with every tensor in it replaced by a meta tensor of its shape and dtype."""
    if isinstance(value, torch.Tensor):
        return torch.empty_like(value, device="meta")
    if isinstance(value, (tuple, list)) and not isinstance(value, torch.Size) and _tensors_in(value):
        items = [_as_meta(v) for v in value]
        if isinstance(value, list):
            return items
        if hasattr(value, "_fields"):  # a named tuple
            return type(value)(*items)
        return type(value)(items) if type(value) is not tuple else tuple(items)
    if isinstance(value, dict) and _tensors_in(value):
        return type(value)({k: _as_meta(v) for k, v in value.items()})
    return value


def real_run(root: nn.Module, graph: fx.Graph, example: torch.Tensor) -> dict[fx.Node, Any]:
    """Each node's output shape from one run on the CPU with a random input of the example's shape
    and dtype (values in [0.5, 1.5), as verify's probes)."""
    sources = _Sources()
    probe = torch.rand(tuple(example.shape), generator=torch.Generator().manual_seed(1),
                       dtype=example.dtype) + 0.5
    sources.mark(probe, _INPUT)
    run = RealRun(as_graph_module(root, graph), sources)
    args = _arguments(graph, probe)
    try:
        with torch.no_grad(), on_device(torch.device("cpu")), _ReadMode(sources), _FlowMode(sources):
            run.run(*args)
    except FovealError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model, said plainly
        raise _RunFailed(f"running the model on a CPU tensor of shape {tuple(example.shape)} "
                         f"failed{_after(run.values)}: {first_line(exc)}") from None
    return run.values


# -- choosing the route -------------------------------------------------------------------------


def capture(module: torch.nn.Module, input_shape: tuple[int, ...], leaves: tuple[type, ...] = (),
            method: str = "auto", leaf_names: frozenset[str] = frozenset()) -> Captured:
    """fx trace plus meta shapes; torch.export when fx cannot trace (or when asked); with 'auto',
    a real run on the CPU when those fail on meta tensors.

    leaves: the user's module classes, kept whole; leaf_names: library classes (by qualified
    name) that have a handler of their own, kept whole under fx."""
    if method not in CAPTURE_METHODS:
        raise InvalidParameterError(f"capture must be one of {', '.join(CAPTURE_METHODS)}, got "
                                    f"{method!r}")
    if method == "export":
        return _export(module, input_shape, leaves)
    name = type(module).__name__
    try:
        graph, tracer = trace(module, leaves, leaf_names)
    except Exception as exc:  # noqa: BLE001 - fx fails in many ways on dynamic code
        retried = _shape_retry(module, input_shape, leaves, leaf_names, exc)
        if retried is None:
            reason = first_line(exc, with_type=False)
            if method == "fx":
                raise CaptureError(f"torch.fx could not trace {name}: {reason}. {_OPTIONS}") from None
            return _export_routes(module, input_shape, leaves,
                                  f"torch.fx could not trace {name} ({reason})")
        graph, tracer = retried
    example = example_input(module, input_shape)
    ran_on = "meta"
    try:
        values = propagate(tracer.root, graph, example)
    except _RunFailed as meta_failed:
        if method == "fx":
            raise CaptureError(f"{meta_failed}. {_SHAPE_HINT}") from None
        try:
            graph, tracer = _on_a_copy(module, leaves, leaf_names, (graph, tracer))
            values = real_run(tracer.root, graph, example)
        except CaptureError as cpu_failed:
            raise CaptureError(
                f"could not capture {name}; torch.fx + meta tensors: {meta_failed}; torch.fx + a real "
                f"run on the CPU: {_same_or(cpu_failed, meta_failed)}. {_SHAPE_HINT}") from None
        ran_on = "cpu"
    root = tracer.root
    modules = {n.target: root.get_submodule(n.target) for n in graph.nodes if n.op == "call_module"}
    not_followed = follow_writes(graph, values, modules.__getitem__)
    if not_followed is not None:
        if method == "fx":
            raise CaptureError(f"torch.fx does not see in-place writes, and foveal could not follow "
                               f"this one: {not_followed}; capture='export' makes writes "
                               f"functional") from None
        return _export_routes(module, input_shape, leaves,
                              f"an in-place write under torch.fx ({not_followed})")
    leaf_types = {target: type(m) for target, m in modules.items()}
    return Captured(root, graph, values, tracer.module_outputs, leaf_types, ran_on=ran_on)


def _on_a_copy(module: torch.nn.Module, leaves: tuple[type, ...], leaf_names: frozenset[str],
               traced: tuple[fx.Graph, _Tracer]) -> tuple[fx.Graph, _Tracer]:
    """A model with meta weights runs as a copy, traced again: what its forward stores on itself
    (timm's attention-bias caches, keyed by device) would hold values made from random stand-ins,
    which must not stay on the user's module. A copy that fails runs the original."""
    if not _has_meta_weights(module):
        return traced
    tracer = traced[1]
    example = tracer.example if isinstance(tracer, _ShapeTracer) else None
    try:
        return trace(copy.deepcopy(module), leaves, leaf_names, example)
    except Exception:  # noqa: BLE001 - an uncopyable module: the original, as traced
        return traced


def _has_meta_weights(module: torch.nn.Module) -> bool:
    return any(t.device.type == "meta" for t in [*module.parameters(), *module.buffers()])


_SHAPE_HINT = ("Check the input shape (too small an input, a wrong rank or a model that asserts one "
               "size fail here)")


def _same_or(failed: Exception, before: Exception) -> str:
    """The CPU run's reason, or 'failed the same way' when it is the meta run's."""
    def reason(text: str) -> str:  # where and why, without the device
        return text.split(" failed", 1)[-1]

    if isinstance(failed, _RunFailed) and reason(str(failed)) == reason(str(before)):
        return "failed the same way"
    return str(failed)


_OPTIONS = ("Control flow that depends on tensor values cannot be captured; options: make that "
            "part a leaf (handlers={TheModuleClass: op} captures a module whole; torch.fx.wrap a "
            "function), analyse a submodule that traces, or describe the model as a foveal Graph")


def _export(module: torch.nn.Module, input_shape: tuple[int, ...], leaves: tuple[type, ...],
            device: torch.device | None = None) -> Captured:
    from .export import export_module

    if leaves:
        raise CaptureError("handlers keyed by a module class need torch.fx (the class is kept "
                           "whole there), but torch.export was used; key the handler by the ATen "
                           "op instead")
    return export_module(module, input_shape, device)


def _export_routes(module: torch.nn.Module, input_shape: tuple[int, ...], leaves: tuple[type, ...],
                   fx_failed: str) -> Captured:
    """torch.export on the parameters' device; when that is meta, once more on the CPU, with
    random stand-ins for meta weights (fake tensors on the CPU run an op's CPU kernel where it
    has no meta kernel, and code that asks for the device, such as
    `torch.autocast(device_type=x.device.type)`, gets one that works)."""
    device = example_input(module, input_shape).device.type
    try:
        return _export(module, input_shape, leaves)
    except CaptureError as err:
        tried = f"{fx_failed}; torch.export on {_DEVICE[device]}: {err}"
        if device != "meta" or leaves:
            raise CaptureError(f"{tried}. {_OPTIONS}") from None
    try:
        real, made = _with_stand_ins(module)
    except Exception as exc:  # noqa: BLE001 - a module that cannot be copied, said plainly
        raise CaptureError(f"{tried}; torch.export on the CPU: copying the module to give it CPU "
                           f"weights failed ({first_line(exc)}). {_OPTIONS}") from None
    try:
        captured = _export(real, input_shape, leaves, torch.device("cpu"))
    except CaptureError as err:
        with_stand_ins = " (random stand-ins for the meta weights)" if made else ""
        raise CaptureError(f"{tried}; torch.export on the CPU{with_stand_ins}: "
                           f"{_same_export(err, tried)}. {_OPTIONS}") from None
    captured.state = {n: torch.empty_like(t, device="meta") if id(t) in made else t
                      for n, t in captured.state.items()}  # the stand-ins are not kept
    captured.ran_on = "cpu"
    return captured


_DEVICE = {"meta": "meta tensors", "cpu": "the CPU"}


def _same_export(failed: Exception, before: str) -> str:
    reason = str(failed).split(": ", 1)[-1]
    return "failed the same way" if before.endswith(reason) else str(failed)


def _with_stand_ins(module: torch.nn.Module) -> tuple[torch.nn.Module, set[int]]:
    """A copy of the module whose meta parameters and buffers hold random CPU values (tied ones
    stay tied), and the ids of those stand-ins; the user's module is not changed."""
    if not _has_meta_weights(module):
        return module, set()
    real = copy.deepcopy(module)
    gen = torch.Generator().manual_seed(0)
    made: dict[int, torch.Tensor] = {}
    for kind in ("parameter", "buffer"):
        named = real.named_parameters if kind == "parameter" else real.named_buffers
        for path, t in list(named(remove_duplicate=False)):
            if t.device.type != "meta":
                continue
            found = made.get(id(t))
            if found is None:
                found = _random_like(t, gen)
                if kind == "parameter":
                    found = nn.Parameter(found, requires_grad=False)
                made[id(t)] = found
            owner, _, attr = path.rpartition(".")
            setattr(real.get_submodule(owner), attr, found)
    return real, {id(t) for t in made.values()}
