"""The advice as text: the model before, a table of proposals, then each proposal's edits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import Advice, Network, Proposal


def si(value: float | None) -> str:
    """12345678 -> '12.3 M'; None -> 'n/a'."""
    if value is None:
        return "n/a"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:g}"


def span(network: Network) -> str:
    if network.resolution_range is None:
        return "none"
    low, high = network.resolution_range
    return f"{'x'.join(map(str, low))} to {'x'.join(map(str, high))}"


def ratio(after: Any, before: Any) -> str:
    return "" if after is None or not before else f" ({after / before:.2f}x)"


def summary_line(network: Network) -> str:
    estimated = " (estimated: it cannot run there)" if network.estimated else ""
    layers = "layer" if len(network.critical) == 1 else "layers"
    return (f"{len(network.unproductive_convs)} of {network.convolutions} convolutions unproductive"
            f"{estimated}; {len(network.critical)} critical {layers}; "
            f"{len(network.productive_blocks)} of "
            f"{network.blocks} blocks productive; FLOPs {si(network.flops)}; parameters "
            f"{si(network.parameters)}; input resolutions {span(network)}")


def rows(advice: Advice) -> list[list[str]]:
    before = advice.before
    out = [["proposal", "FLOPs", "parameters", "unproductive convs", "critical", "productive blocks",
            "input range"],
           ["(model)", si(before.flops), si(before.parameters), str(len(before.unproductive_convs)),
            str(len(before.critical)), f"{len(before.productive_blocks)}/{before.blocks}", span(before)]]
    for p in advice.proposals:
        after = p.after
        flops = si(after.flops) + ratio(after.flops, before.flops) if after.flops is not None else (
            f"n/a (spatial cost {p.cost_ratio:.2f}x)" if p.cost_ratio is not None else "n/a")
        params = si(after.parameters) + ratio(after.parameters, before.parameters)
        out.append([" + ".join(p.goals), flops, params,
                    str(len(after.unproductive_convs)), str(len(after.critical)),
                    f"{len(after.productive_blocks)}/{after.blocks}", span(after)])
    return out


def table(cells: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def proposal_text(p: Proposal) -> list[str]:
    lines = [f"{' + '.join(p.goals)}:"]
    lines += [f"  - {e.words}" for e in p.edits]
    critical = ", ".join(p.after.critical[:8]) + (" ..." if len(p.after.critical) > 8 else "")
    lines.append(f"  critical layers left: {critical or 'none'}")
    if p.after.unproductive_convs:
        lines.append(f"  unproductive convolutions left: {', '.join(p.after.unproductive_convs)}")
    if p.module is not None and p.after.output_shape is not None:
        lines.append(f"  edited module's output: {tuple(p.after.output_shape)}")
    lines += [f"  note: {n}" for n in p.notes]
    return lines


def advice_text(advice: Advice) -> str:
    size = "x".join(map(str, advice.resolution))
    lines = [f"foveal advise: {advice.model} at {size}", f"model: {summary_line(advice.before)}"]
    if not advice.needs_change:
        lines.append(f"no change needed: every convolution is productive at {size}")
    elif advice.proposals:
        lines += ["", table(rows(advice)), ""]
        for p in advice.proposals:
            lines += proposal_text(p)
    lines += [f"note: {n}" for n in advice.notes]
    return "\n".join(lines)
