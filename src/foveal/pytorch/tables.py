"""Which handler converts an fx node: the four op tables and the user's entries.

Each table is a `foveal.handler_table.HandlerTable` (read-only defaults, the call's extras):

- `modules.MODULES`: a `call_module` node, by module class (a subclass that keeps its base's
  forward is handled as the base), or by qualified name for library modules never imported;
- `functional.FUNCTIONS`: a `call_function` node, by function, or by qualified name;
- `functional.METHODS`: a `call_method` node, by tensor-method name;
- `aten.ATEN`: an ATen op of an exported graph, by packet name (pointwise-tagged ops are
  element-wise).

The user's `handlers=` go to the table their key belongs to (`Tables.with_extras`). A lookup
that finds nothing gives None; the builder then adds an unknown node and counts the op.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from .. import ops as O
from ..handler_table import HandlerTable
from .aten import ATEN, pointwise
from .builder import Builder, Handler, op_name, tensors
from .capture import qualified_name
from .functional import FUNCTIONS, METHODS
from .modules import MODULES
from .nodes import module_of
from .torchvision_ops import DEFORM_CONV

ATEN_KEYS = (torch._ops.OpOverload, torch._ops.OpOverloadPacket)


def user_handler(spec: Any) -> Handler:
    """A user's entry: a foveal op (applied position-wise to the inputs), or a callable taking the
    module (or the fx node of a function) and returning one."""

    def handle(b: Builder, n: fx.Node, args: tuple, kwargs: dict) -> Any:
        op = spec
        if not isinstance(spec, O.OP_TYPES):
            op = spec(module_of(b, n) if n.op == "call_module" else n)
        found = tensors((args, kwargs))
        connected = [v for v in found if v.node is not None]
        return b.emit(op, connected, found[0].layout)

    return handle


@dataclass(frozen=True)
class Tables:
    modules: HandlerTable[Handler]
    functions: HandlerTable[Handler]
    methods: HandlerTable[Handler]
    aten: HandlerTable[Handler]

    def with_extras(self, handlers: Mapping[Any, Any] | None) -> Tables:
        """The user's `handlers=` as the extras of the matching tables: an ATen op (or overload),
        a module class, a string (a tensor method's name), else a function (or callable class)."""
        extras: dict[str, dict[Any, Handler]] = {"modules": {}, "functions": {}, "methods": {}, "aten": {}}
        for key, spec in (handlers or {}).items():
            kind = ("aten" if isinstance(key, ATEN_KEYS)
                    else "modules" if isinstance(key, type) and issubclass(key, nn.Module)
                    else "methods" if isinstance(key, str) else "functions")
            extras[kind][key] = user_handler(spec)
        return Tables(self.modules.with_extras(extras["modules"]),
                      self.functions.with_extras(extras["functions"]),
                      self.methods.with_extras(extras["methods"]), self.aten.with_extras(extras["aten"]))

    @property
    def leaves(self) -> tuple[type, ...]:
        """The user's module classes: captured whole (their forward is not traced)."""
        return tuple(key for key in self.modules.extras if isinstance(key, type))

    @property
    def leaf_names(self) -> frozenset[str]:
        """Library modules with a handler of their own, by qualified name: kept whole under fx."""
        return frozenset(key for key in self.modules if isinstance(key, str))

    def handler_for(self, b: Builder, n: fx.Node) -> Handler | None:
        """The handler of an fx node, or None (an op without a handler)."""
        if n.op == "call_module":
            return self._module(b.captured.leaf_types[str(n.target)])
        if n.op == "call_method":  # an in-place method (`clamp_`) is its plain one on the tensor
            found = self.methods.get(n.target)
            return self.methods.get(str(n.target).rstrip("_")) if found is None else found
        target = n.target
        if isinstance(target, torch._ops.OpOverload):
            return self._aten(target)
        found = self.functions.get(target)
        if found is None:
            name = op_name(n)
            found = self.functions.get(name)
            if found is None and "deform_conv" in name:
                return DEFORM_CONV
        return found

    def _module(self, cls: type) -> Handler | None:
        found = self.modules.get(cls)
        if found is None:
            found = self.modules.get(qualified_name(cls))
        if found is not None:
            return found
        for base in cls.__mro__[1:]:
            found = self.modules.get(base)
            if found is not None and base is not nn.Module:
                return found if _same_forward(cls, base) else None
        return None

    def _aten(self, target: torch._ops.OpOverload) -> Handler | None:
        found = self.aten.get(target)
        if found is None:
            found = self.aten.get(target.overloadpacket)
        if found is not None:
            return found
        name = target.overloadpacket.__name__
        if torch.Tag.pointwise in target.tags:
            return pointwise(name)
        if target.namespace == "torchvision" and "deform_conv" in name:
            return DEFORM_CONV
        return self.aten.get(name) if target.namespace == "aten" else None


def _same_forward(cls: type, base: type) -> bool:
    """A subclass that keeps its base's forward behaves as the base."""
    return getattr(cls, "forward", None) is getattr(base, "forward", None)


TABLES = Tables(MODULES, FUNCTIONS, METHODS, ATEN)
"""The default tables; `TABLES.with_extras(handlers)` for one call."""
