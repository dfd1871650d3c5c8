"""Per-node FLOPs of a torch model, keyed by the names of foveal's PyTorch graph.

The counts come from the same capture as the graph: the captured fx graph is run once more on
meta tensors (no weight is read, nothing is computed) under torch.utils.flop_counter's
FlopCounterMode, and each fx node's FLOPs go to the foveal node that its output became. So the
keys are the graph's node names (module paths) by construction, and the total is what
FlopCounterMode reports for the model.

Convention, FlopCounterMode's: only convolutions (grouped, dilated, transposed), matrix products
(linear, matmul, mm, bmm, addmm, baddbmm) and attention count, and a multiply-add counts as 2
FLOPs (tf.profiler's convention, which the receptive_field library's table uses). Bias adds,
batch norm, activations, pooling and other element-wise ops count 0: they are a fraction of a
percent of a convolutional network's cost, and leaving them out keeps the figure comparable with
FlopCounterMode, fvcore and most papers (which count multiply-adds, half of this figure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx
from torch.utils.flop_counter import FlopCounterMode

from ..errors import FovealError
from .builder import Builder, Value
from .capture import CaptureError, MetaRun, first_line

__all__ = ["NodeFlops", "flops_by_node", "count_flops"]


@dataclass(frozen=True)
class NodeFlops:
    """FLOPs per foveal node, plus what no input-dependent node took."""

    by_node: dict[str, int]
    unattributed: int = 0
    """FLOPs of ops that read no input pixel (computed on parameters or constants alone)."""
    ops: dict[str, int] = field(default_factory=dict)
    """FLOPs per counted ATen op (FlopCounterMode's breakdown), for reports."""

    @property
    def total(self) -> int:
        return sum(self.by_node.values()) + self.unattributed


def flops_by_node(module: torch.nn.Module, input_shape: Any, capture: str = "auto") -> dict[str, int]:
    """FLOPs of each node of `foveal.pytorch.graph_from_module(module, input_shape)`'s graph."""
    from . import convert

    return count_flops(convert(module, input_shape, capture=capture)).by_node


def count_flops(builder: Builder) -> NodeFlops:
    """FLOPs of the nodes of a converted capture (`foveal.pytorch.convert(...)`'s builder)."""
    captured = builder.captured
    gm = captured.gm
    training = [m for m in gm.modules() if m.training]
    gm.eval()
    try:
        per_fx, ops = _run_counting(gm, captured)
    finally:
        for m in training:
            m.training = True
    by_node: dict[str, int] = {}
    unattributed = 0
    for n, count in per_fx.items():
        if not count:
            continue
        name = _node_of(builder.env.get(n))
        if name is None:
            unattributed += count
        else:
            by_node[name] = by_node.get(name, 0) + count
    return NodeFlops(by_node, unattributed, ops)


def _node_of(value: Any) -> str | None:
    """The foveal node a captured output became (the first input-dependent one of a tuple)."""
    if isinstance(value, Value):
        return value.node
    if isinstance(value, (tuple, list)):
        for v in value:
            found = _node_of(v)
            if found is not None:
                return found
    return None


class _Counting(MetaRun):
    """The meta run of capture.py, noting the FLOPs FlopCounterMode saw during each node."""

    def __init__(self, gm: fx.GraphModule, counter: FlopCounterMode) -> None:
        super().__init__(gm, gm.graph, sizes=False)  # every kernel runs: FLOPs are counted on them
        self.counter = counter
        self.flops: dict[fx.Node, int] = {}

    def run_node(self, n: fx.Node) -> Any:
        before = self.counter.get_total_flops()
        result = super().run_node(n)
        self.flops[n] = self.counter.get_total_flops() - before
        return result


def _run_counting(gm: fx.GraphModule, captured: Any) -> tuple[dict[fx.Node, int], dict[str, int]]:
    """Run the graph on meta stand-ins of the captured values (placeholders: the input, and for
    exported graphs the parameters and buffers) and count."""
    counter = FlopCounterMode(display=False)
    run = _Counting(gm, counter)
    args = []
    for n in gm.graph.nodes:
        if n.op != "placeholder":
            continue
        value = captured.values.get(n)
        if isinstance(value, torch.Tensor):
            args.append(torch.empty(tuple(value.shape), dtype=value.dtype, device="meta"))
        elif n.args:  # a default value from the signature
            args.append(n.args[0])
        else:
            args.append(value)
    try:
        with torch.no_grad(), counter:  # MetaRun keeps device requests on meta
            run.run(*args)
    except FovealError:
        raise
    except Exception as exc:  # noqa: BLE001 - the capture ran; a failure here is said plainly
        raise CaptureError(f"counting FLOPs on meta tensors failed: {first_line(exc)}") from None
    ops = {str(op): count for op, count in counter.get_flop_counts().get("Global", {}).items()}
    return run.flops, ops
