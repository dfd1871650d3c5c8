"""The advisor's section of the HTML report: the proposals' table and edits, and each
network's drawing before and after (Graphviz's SVG when `dot` is installed, else the DOT text)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from ..drawing import analysis_dot, dot_available, pipe
from ..html_report import _inline_svg
from .text import proposal_text, rows

if TYPE_CHECKING:
    from . import Advice


def proposals_section(advice: Advice) -> str:
    """One <section id="advice"> for html_report's `sections`."""
    size = "x".join(map(str, advice.resolution))
    parts = [f'<section id="advice"><h2>Architecture advisor at {size}</h2>']
    if not advice.needs_change:
        parts.append(f"<p>No convolution is unproductive at {size}: the model needs no change.</p>")
    else:
        cells = rows(advice)
        parts.append("<table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
                     + "</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in cells[1:]]
        parts.append("</tbody></table>")
        parts.append(_drawing("model", advice.analysis))
        for p in advice.proposals:
            parts.append(f"<pre>{html.escape(chr(10).join(proposal_text(p)))}</pre>")
            parts.append(_drawing(" + ".join(p.goals), p.analysis))
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in advice.notes]
    parts.append("</section>")
    return "\n".join(parts)


def _drawing(what: str, analysis: object) -> str:
    dot = analysis_dot(analysis)  # type: ignore[arg-type]
    head = f"<details><summary>drawing: {html.escape(what)}</summary>"
    if not dot_available():
        return f"{head}<pre>{html.escape(dot)}</pre></details>"
    return f'{head}<div class="drawing">{_inline_svg(pipe(dot, "svg"))}</div></details>'
