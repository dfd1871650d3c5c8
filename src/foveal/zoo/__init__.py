"""The built-in zoo: graphs of torchvision and keras.applications models, shipped with the package.

They were captured by `scripts/capture-zoo` (see `foveal.zoo.capture`) and are stored in foveal's
JSON graph format, gzip-compressed, one file per model, with an index saying where each came from
and at which input sizes it holds. Reading them needs only the core: no framework is imported.

A graph holds at every input size when capturing it at two sizes gave the same graph. Otherwise
(a resize to another tensor's size, a window shift that follows the size, a fixed positional
embedding) it holds only at the size it was captured at, and analysing it at another size is
refused: analyse the framework's model at that size instead.
"""

from __future__ import annotations

import ast
import difflib
import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from .. import graph_json
from ..errors import FovealError
from ..graph import Graph

INDEX = "index.json"
GRAPHS = "graphs"


@dataclass(frozen=True)
class ZooEntry:
    """Where a zoo graph came from and at which input sizes it holds."""

    name: str
    source: str
    """How it was built, e.g. 'torchvision.models.resnet50()' or 'keras.applications.ResNet50(...)'."""
    captured_at: tuple[int, ...]
    """The spatial input size it was captured at."""
    fixed_size: bool
    """True when the graph holds only at `captured_at` (see the module docstring)."""
    task: str
    """'classification', 'segmentation' or 'detection backbone'."""
    channels_last: bool = False
    """The model's input is (N, *spatial, C) (Keras) rather than (N, C, *spatial)."""
    channels: int | None = None
    """The input's channel count, which a full input_shape must repeat."""

    def describe(self) -> str:
        sizes = "x".join(map(str, self.captured_at))
        return f"{self.task}; {self.source}; " + (f"{sizes} only" if self.fixed_size else "any input size")


@cache
def _index() -> dict[str, ZooEntry]:
    data = json.loads(resources.files(__name__).joinpath(INDEX).read_text(encoding="utf-8"))
    return {name: ZooEntry(name, e["source"], tuple(e["captured_at"]), e["fixed_size"], e["task"],
                           e["input_layout"] == "channels_last", e["channels"])
            for name, e in data["models"].items()}


def names() -> list[str]:
    """The zoo's model names, sorted."""
    return sorted(_index())


def entry(name: str) -> ZooEntry:
    index = _index()
    if name not in index:
        raise FovealError(f"{name!r} is not in the zoo{suggest(name)}")
    return index[name]


def suggest(name: str) -> str:
    """The closest zoo names, as the end of an error message."""
    close = difflib.get_close_matches(name, _index(), n=3)
    return f"; did you mean {', '.join(close)}?" if close else "; 'foveal zoo' lists the zoo's models"


def is_zoo_name(name: object) -> bool:
    return isinstance(name, str) and name in _index()


def load(name: str) -> Graph:
    """The zoo graph called `name` (a fresh Graph each call: callers may change it)."""
    entry(name)
    data = resources.files(__name__).joinpath(GRAPHS).joinpath(f"{name}.json.gz").read_bytes()
    return graph_json.loads(gzip.decompress(data).decode("utf-8"))


def input_size(name: str, requested: Any) -> Any:
    """The spatial input size to analyse zoo model `name` at: the requested one (None, spatial
    sizes, or a dict of them), checked against a fixed-size entry, which also defaults to its
    capture size."""
    found = entry(name)
    if not found.fixed_size:
        return requested
    if requested is None:
        return found.captured_at
    for sizes in requested.values() if isinstance(requested, Mapping) else [requested]:
        spatial = tuple(sizes)
        if spatial != found.captured_at:
            captured = "x".join(map(str, found.captured_at))
            raise FovealError(f"zoo model {name!r} holds only at input size {captured}: its graph depends "
                              f"on the input size ({found.source} was captured at {captured}); analyse "
                              f"the framework's model itself at {'x'.join(map(str, spatial))}")
    return requested



def factory(name: str) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    """Zoo model `name`'s source (`torchvision.models.googlenet(init_weights=False)`,
    `torchvision.models.fasterrcnn_resnet50_fpn(weights_backbone=None).backbone`) as
    (`pkg.module:factory`, keyword arguments, attributes to take from the result), so that a
    front-end can rebuild the framework's model (an ERF, the benchmark's FLOPs). The source is
    foveal's own index, read as a syntax tree of constants, never evaluated."""
    source = entry(name).source
    refused = FovealError(f"zoo model {name!r} ({source}) cannot be rebuilt from its source")
    tree = ast.parse(source, mode="eval").body
    attributes: list[str] = []
    while isinstance(tree, ast.Attribute) and isinstance(tree.value, ast.Call):
        attributes.insert(0, tree.attr)
        tree = tree.value
    if not isinstance(tree, ast.Call) or tree.args or not isinstance(tree.func, ast.Attribute):
        raise refused
    path: list[str] = [tree.func.attr]
    node: ast.expr = tree.func.value
    while isinstance(node, ast.Attribute):
        path.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise refused
    path.insert(0, node.id)
    keywords = {k.arg: ast.literal_eval(k.value) for k in tree.keywords if k.arg}
    return f"{'.'.join(path[:-1])}:{path[-1]}", keywords, tuple(attributes)


def framework(name: str) -> str:
    """The package zoo model `name` was captured from: 'torchvision' or 'keras'."""
    return entry(name).source.split(".", 1)[0]
