"""Charts drawn on the server as SVG: readable without JavaScript, by screen readers (a title per
chart and per bar) and by machines (each bar says its label and value)."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, BAR, GAP, LABEL = 640, 20, 6, 200


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str = ""  # what is written after the bar (default: the value)


def bar_chart(title: str, bars: list[Bar], unit: str = "") -> Markup:
    """A horizontal bar chart; an empty list draws a chart that says there is nothing."""
    height = max(len(bars), 1) * (BAR + GAP) + GAP
    top = max((b.value for b in bars), default=0) or 1
    span = WIDTH - LABEL - 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">',
             f"<title>{escape(title)}</title>"]
    if not bars:
        parts.append(f'<text x="{GAP}" y="{BAR}">—</text>')
    for index, bar in enumerate(bars):
        y = GAP + index * (BAR + GAP)
        length = round(span * bar.value / top, 1)
        shown = bar.text or f"{bar.value:g}{unit}"
        parts.append(
            f'<g class="bar" data-label="{escape(bar.label)}" data-value="{bar.value:g}">'
            f"<title>{escape(bar.label)} : {escape(shown)}</title>"
            f'<text x="{LABEL - GAP}" y="{y + BAR - 5}" text-anchor="end">{escape(bar.label)}</text>'
            f'<rect x="{LABEL}" y="{y}" width="{length}" height="{BAR}" fill="#3b6ea5"></rect>'
            f'<text x="{LABEL + length + GAP}" y="{y + BAR - 5}">{escape(shown)}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))
