"""Small-multiple time charts (one row per detection or crane), as geometry for inline SVG.

Only numbers and labels are computed here; the template draws them as ``<rect>`` and
``<text>``, escaped like everything else, so the report needs no chart library, script or
network access.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

BINS = 48
LABEL_W = 240  # px for the row label
PLOT_W = 560
ROW_H = 24
BAR_MAX = 18


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    height: float
    count: int
    tip: str  # "2026-03-02 14:00Z – 15:00Z: 3"


@dataclass(frozen=True)
class ChartRow:
    label: str
    total: int
    y: int
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Chart:
    title: str
    rows: tuple[ChartRow, ...]
    width: int
    height: int
    label_w: int
    plot_w: int
    ticks: tuple[tuple[float, str], ...]  # (x, label) on the time axis
    bin_text: str  # "one bar = 1 h"


def _instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _fmt(t: dt.datetime) -> str:
    return t.strftime("%m-%d %H:%M")


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def time_chart(title: str, points: list[tuple[str, str]]) -> Chart:
    """One row per label, ``BINS`` bars over the span of all ``(label, RFC 3339 time)`` points."""
    if not points:
        return Chart(title, (), 0, 0, LABEL_W, PLOT_W, (), "")
    times = [_instant(t) for _, t in points]
    start, end = min(times), max(times)
    span = max((end - start).total_seconds(), 1.0)
    step = span / BINS
    counts: dict[str, Counter[int]] = {}
    for (label, _), t in zip(points, times):
        b = min(int((t - start).total_seconds() / step), BINS - 1)
        counts.setdefault(label, Counter())[b] += 1
    peak = max(n for c in counts.values() for n in c.values())
    bar_w = PLOT_W / BINS
    rows = []
    order = sorted(counts, key=lambda k: (-sum(counts[k].values()), k))
    for i, label in enumerate(order):
        y = 20 + i * ROW_H
        bars = []
        for b, n in sorted(counts[label].items()):
            lo = start + dt.timedelta(seconds=b * step)
            hi = lo + dt.timedelta(seconds=step)
            bars.append(Bar(round(LABEL_W + b * bar_w, 1), round(max(bar_w - 1, 1), 1),
                            round(max(BAR_MAX * n / peak, 2), 1), n, f"{label}: {n} between {_fmt(lo)} and {_fmt(hi)} UTC"))
        rows.append(ChartRow(label, sum(counts[label].values()), y, tuple(bars)))
    ticks = tuple((round(LABEL_W + PLOT_W * k / 4, 1), _fmt(start + dt.timedelta(seconds=span * k / 4))) for k in range(5))
    height = 20 + len(rows) * ROW_H + 22
    return Chart(title, tuple(rows), LABEL_W + PLOT_W + 60, height, LABEL_W, PLOT_W, ticks, f"one bar = {_duration_text(step)}")
