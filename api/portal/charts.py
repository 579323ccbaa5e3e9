"""Bar charts as geometry for server-rendered SVG.

Pure functions from numbers to rectangles, ticks and labels; the template
(``portal/_charts.html``) draws them. No JavaScript and no chart library:
the dashboard works on closed office networks and in any browser, and the
numbers are also in a table next to each chart (colour is never the only
carrier of meaning).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    # Horizontal grid lines: (y, label).
    grid: list[tuple[float, str]] = field(default_factory=list)
    plot_left: float = 0
    plot_right: float = 0
    plot_top: float = 0
    plot_bottom: float = 0

    @property
    def empty(self) -> bool:
        return not self.bars


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is at least ``value``."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def stacked_columns(
    categories: list[str],
    series: list[tuple[str, str, list[int]]],
    *,
    width: int = 720,
    height: int = 240,
    label_every: int = 3,
) -> Chart:
    """One column per category, its segments stacked bottom-up in the order
    of ``series`` ((key, name, values))."""
    left, right, top, bottom = 40, width - 10, 12, height - 28
    chart = Chart(width, height, plot_left=left, plot_right=right, plot_top=top, plot_bottom=bottom)
    totals = [sum(values[i] for _, _, values in series) for i in range(len(categories))]
    ceiling = nice_ceiling(max(totals, default=0) or 1)
    scale = (bottom - top) / ceiling
    slot = (right - left) / max(len(categories), 1)
    bar_width = slot * 0.7
    for fraction in (0, 0.5, 1):
        value = ceiling * fraction
        if value == int(value):
            chart.grid.append((bottom - value * scale, str(int(value))))
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - bar_width) / 2
        base = bottom
        for key, name, values in series:
            value = values[i]
            if value:
                h = value * scale
                base -= h
                chart.bars.append(Bar(round(x, 2), round(base, 2), round(bar_width, 2), round(h, 2), key,
                                      f"{category}: {name} {value}"))
        if i % label_every == 0:
            chart.labels.append(Label(round(x + bar_width / 2, 2), height - 10, category))
    return chart


def horizontal_bars(
    rows: list[tuple[str, list[tuple[str, str, int]]]],
    *,
    width: int = 720,
    row_height: int = 28,
    label_width: int = 220,
) -> Chart:
    """One bar per row ((label, [(key, name, value), ...])), segments side
    by side, the row's total written after the bar."""
    height = max(1, len(rows)) * row_height + 8
    left, right = label_width, width - 60
    chart = Chart(width, height, plot_left=left, plot_right=right, plot_top=4, plot_bottom=height - 4)
    largest = max((sum(v for _, _, v in segments) for _, segments in rows), default=0) or 1
    scale = (right - left) / largest
    for r, (label, segments) in enumerate(rows):
        y = 4 + r * row_height
        x = left
        chart.labels.append(Label(left - 8, y + row_height / 2 + 5, label, "end"))
        for key, name, value in segments:
            if value:
                w = value * scale
                chart.bars.append(Bar(round(x, 2), y + 4, round(w, 2), row_height - 8, key, f"{label}: {name} {value}"))
                x += w
        total = sum(v for _, _, v in segments)
        chart.labels.append(Label(round(x + 6, 2), y + row_height / 2 + 5, str(total), "start"))
    return chart
