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
    span = WIDTH - LABEL - 80  # room for the value after the longest bar ("41.5/100")
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


@dataclass(frozen=True)
class Pair:
    """One label, two values side by side: a source's figure and the sector's."""

    label: str
    first: float
    second: float


FIRST_COLOUR, SECOND_COLOUR = "#3b6ea5", "#c9a227"


def paired_chart(title: str, pairs: list[Pair], names: tuple[str, str], unit: str = "",
                 scale: float | None = None) -> Markup:
    """Two bars per label (first above second) on one scale (`scale`, e.g. 100 for shares, else
    the largest value), with a legend naming both series; each pair says its label and both
    values (`data-first`, `data-second`, and its title)."""
    step = 2 * BAR + 3 * GAP
    legend = BAR + GAP
    height = legend + max(len(pairs), 1) * step + GAP
    top = scale or max((max(p.first, p.second) for p in pairs), default=0) or 1
    span = WIDTH - LABEL - 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart paired" role="img" '
             f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">',
             f"<title>{escape(title)}</title>"]
    for index, (name, colour) in enumerate(zip(names, (FIRST_COLOUR, SECOND_COLOUR))):
        x = LABEL + index * 200
        parts.append(f'<g class="legend"><rect x="{x}" y="{GAP}" width="12" height="12" '
                     f'fill="{colour}"></rect><text x="{x + 18}" y="{GAP + 11}">{escape(name)}'
                     "</text></g>")
    if not pairs:
        parts.append(f'<text x="{GAP}" y="{legend + BAR}">—</text>')
    for index, pair in enumerate(pairs):
        y = legend + GAP + index * step
        first, second = f"{pair.first:g}{unit}", f"{pair.second:g}{unit}"
        parts.append(
            f'<g class="pair" data-label="{escape(pair.label)}" data-first="{pair.first:g}" '
            f'data-second="{pair.second:g}"><title>{escape(pair.label)} : {escape(names[0])} '
            f"{escape(first)}, {escape(names[1])} {escape(second)}</title>"
            f'<text x="{LABEL - GAP}" y="{y + BAR + 2}" text-anchor="end">{escape(pair.label)}</text>')
        for row, (value, shown, colour) in enumerate(((pair.first, first, FIRST_COLOUR),
                                                      (pair.second, second, SECOND_COLOUR))):
            top_y = y + row * (BAR + GAP // 2)
            length = round(span * value / top, 1)
            parts.append(f'<rect x="{LABEL}" y="{top_y}" width="{length}" height="{BAR}" '
                         f'fill="{colour}"></rect><text x="{LABEL + length + GAP}" '
                         f'y="{top_y + BAR - 5}">{escape(shown)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class Series:
    """One line of a time chart: a name (in the legend) and a value per period, None where there
    is none yet."""

    name: str
    values: tuple[float | None, ...]


SERIES_COLOURS = (FIRST_COLOUR, SECOND_COLOUR, "#7a4d9c", "#3f8f5a")
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM, PLOT_HEIGHT = 60, 40, 34, 40, 200
MOST_AXIS_LABELS = 12


def _y_ticks(top: float) -> list[float]:
    return [top * step / 4 for step in range(5)]


def line_chart(title: str, labels: list[str], series: list[Series], description: str = "",
               unit: str = "", scale: float | None = None) -> Markup:
    """A time chart: one line per series over the periods `labels` (left to right), on one scale
    (`scale`, e.g. 100 for scores, else the largest value), with a legend. The title and
    `description` (`<desc>`: what the chart shows, in words) name it for screen readers; each point
    says its series, period and value (`data-series`, `data-label`, `data-value`, and its title);
    a gap (None) breaks the line. No period draws a chart that says there is nothing."""
    height = PLOT_TOP + PLOT_HEIGHT + PLOT_BOTTOM
    width = WIDTH
    span = width - PLOT_LEFT - PLOT_RIGHT
    values = [v for s in series for v in s.values if v is not None]
    top = scale or max(values, default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart line" role="img" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
             f"<title>{escape(title)}</title>"]
    if description:
        parts.append(f"<desc>{escape(description)}</desc>")
    for index, one in enumerate(series):
        x = PLOT_LEFT + index * 200
        parts.append(f'<g class="legend"><rect x="{x}" y="{GAP}" width="12" height="12" '
                     f'fill="{SERIES_COLOURS[index % len(SERIES_COLOURS)]}"></rect>'
                     f'<text x="{x + 18}" y="{GAP + 11}">{escape(one.name)}</text></g>')
    if not labels:
        parts.append(f'<text x="{PLOT_LEFT}" y="{PLOT_TOP + BAR}">—</text></svg>')
        return Markup("".join(parts))

    def y_of(value: float) -> float:
        return round(PLOT_TOP + PLOT_HEIGHT * (1 - value / top), 1)

    def x_of(index: int) -> float:
        if len(labels) == 1:
            return PLOT_LEFT + span / 2
        return round(PLOT_LEFT + span * index / (len(labels) - 1), 1)

    parts.append('<g class="axis" aria-hidden="true">')
    for tick in _y_ticks(top):
        y = y_of(tick)
        parts.append(f'<line x1="{PLOT_LEFT}" x2="{PLOT_LEFT + span}" y1="{y}" y2="{y}" '
                     f'stroke="#ddd"></line><text x="{PLOT_LEFT - GAP}" y="{y + 4}" '
                     f'text-anchor="end">{tick:g}</text>')
    every = -(-len(labels) // MOST_AXIS_LABELS)  # at most twelve labels, the latest always
    for index, label in enumerate(labels):
        if (len(labels) - 1 - index) % every == 0:
            parts.append(f'<text x="{x_of(index)}" y="{PLOT_TOP + PLOT_HEIGHT + 18}" '
                         f'text-anchor="middle" font-size="11">{escape(label)}</text>')
    parts.append("</g>")
    for index, one in enumerate(series):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        dashes = ' stroke-dasharray="6 4"' if index else ""  # an equal line shows beneath
        parts.append(f'<g class="series" data-series="{escape(one.name)}">')
        segment: list[str] = []
        for position, value in enumerate(one.values):
            if value is None:
                parts.extend(_polyline(segment, colour, dashes))
                segment = []
                continue
            segment.append(f"{x_of(position)},{y_of(value)}")
        parts.extend(_polyline(segment, colour, dashes))
        for position, (label, value) in enumerate(zip(labels, one.values)):
            if value is None:
                continue
            parts.append(
                f'<g class="point" data-series="{escape(one.name)}" data-label="{escape(label)}" '
                f'data-value="{value:g}"><title>{escape(label)} : {escape(one.name)} '
                f'{value:g}{escape(unit)}</title><circle cx="{x_of(position)}" '
                f'cy="{y_of(value)}" r="3.5" fill="{colour}"></circle></g>')
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _polyline(points: list[str], colour: str, dashes: str) -> list[str]:
    if len(points) < 2:
        return []
    return [f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
            f'stroke-width="2"{dashes}></polyline>']
