"""The one handler-table type every front-end keeps its ops in.

A table is read-only defaults (built once, at import) plus the extras of one call (the user's
`handlers=`), which win. `with_extras` makes the per-call table without copying the defaults.
Keys are what the front-end looks ops up by: PyTorch module classes, functions, tensor-method
names and ATen ops; ONNX `domain::OpType`; Keras layer classes (or their names); TensorFlow op
names. A front-end asks `get(key)`; a lookup that finds nothing is counted by the front-end's
builder (`GraphBuilder.unhandled`), so a conversion can say which ops it met without a handler.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

H = TypeVar("H")


class HandlerTable(Mapping[Any, H], Generic[H]):
    def __init__(self, defaults: Mapping[Any, H], extras: Mapping[Any, H] | None = None) -> None:
        self.defaults: Mapping[Any, H] = defaults if isinstance(defaults, MappingProxyType) \
            else MappingProxyType(dict(defaults))
        self.extras: Mapping[Any, H] = MappingProxyType(dict(extras or {}))

    def with_extras(self, extras: Mapping[Any, H] | None) -> HandlerTable[H]:
        """The same defaults with this call's extras (the defaults are shared, never copied)."""
        return HandlerTable(self.defaults, extras) if extras else self

    def __getitem__(self, key: Any) -> H:
        if key in self.extras:
            return self.extras[key]
        return self.defaults[key]

    def get(self, key: Any, default: Any = None) -> Any:
        extras = self.extras
        if extras and key in extras:
            return extras[key]
        return self.defaults.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.extras or key in self.defaults

    def __iter__(self) -> Iterator[Any]:
        yield from self.extras
        yield from (k for k in self.defaults if k not in self.extras)

    def __len__(self) -> int:
        return len(self.defaults) + sum(1 for k in self.extras if k not in self.defaults)

    def __repr__(self) -> str:
        return f"HandlerTable({len(self.defaults)} defaults, {len(self.extras)} extras)"
