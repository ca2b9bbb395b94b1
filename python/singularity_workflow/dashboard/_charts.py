"""Charts drawn on the server as SVG: time series over a window, and a run's task timeline.

No front-end build and no chart library: each function returns an ``<svg>`` element as
:class:`markupsafe.Markup`, every text in it (queue names, step names, numbers) escaped with
``html.escape``, colours as presentation attributes (the dashboard's Content-Security-Policy
forbids inline ``style``), so a page includes it as it is and the browser draws it. The pages
refresh the fragment that holds them (``data-live-src``), so the charts move with the data.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from markupsafe import Markup

__all__ = ["PALETTE", "TimelineRow", "series_chart", "timeline_chart"]

#: Series colours, in order (readable on the dashboard's light background).
PALETTE: Final = ("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04",
                  "#db2777")
_W: Final = 560
_H: Final = 210
_LEFT: Final = 52
_RIGHT: Final = 12
_TOP: Final = 28
_BOTTOM: Final = 44


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _nice_max(value: float) -> float:
    """Round a maximum up to 1, 2 or 5 times a power of ten (axis labels people read)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 5, 10):
        if value <= m * power:
            return float(m * power)
    return float(10 * power)


def _number(value: float) -> str:
    if value >= 100 or value.is_integer():
        return f"{value:.0f}"
    return f"{value:.2g}" if value < 1 else f"{value:.1f}"


def series_chart(chart_id: str, title: str, times: Sequence[datetime],
                 series: Mapping[str, Sequence[float | None]], *, unit: str = "",
                 bars: bool = False) -> Markup:
    """Draw series over time: lines, or stacked bars with ``bars``; None is a gap.

    ``times`` are the buckets' starts (the x axis); each series has one value per bucket. The
    legend names each series in its colour; an empty chart says "no data in this window".
    """
    n = len(times)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    parts = [f'<svg class="chart" id="{_e(chart_id)}" width="{_W}" height="{_H}"'
             f' viewBox="0 0 {_W} {_H}" role="img" aria-label="{_e(title)}">',
             f'<text class="chart-title" x="{_LEFT}" y="16" font-size="13"'
             f' font-weight="600" fill="#111827">{_e(title)}</text>']
    if bars:
        totals = [sum((s[i] or 0) for s in series.values()) for i in range(n)]
        top = max(totals, default=0)
    else:
        top = max((v for s in series.values() for v in s if v is not None), default=0)
    ymax = _nice_max(float(top))
    has_data = n > 0 and any(v for s in series.values() for v in s if v)
    # Axes and grid: 4 horizontal lines with their values.
    for k in range(5):
        y = _TOP + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"'
                     f' stroke="#e5e7eb" stroke-width="1"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" font-size="10" fill="#6b7280"'
                     f' text-anchor="end">{_e(_number(ymax * k / 4))}</text>')
    if unit:
        parts.append(f'<text x="{_LEFT - 6}" y="{_TOP - 8}" font-size="10" fill="#6b7280"'
                     f' text-anchor="end">{_e(unit)}</text>')
    if n:
        # The bucket starts at both ends and the middle, in UTC (the axis' ends are anchored
        # inwards so that they stay inside the picture).
        for idx in sorted({0, n // 2, n - 1}):
            x = _LEFT + plot_w * idx / max(n - 1, 1)
            anchor = "start" if idx == 0 and n > 1 else "end" if idx == n - 1 else "middle"
            parts.append(f'<text x="{x:.1f}" y="{_TOP + plot_h + 14}" font-size="10"'
                         f' fill="#6b7280" text-anchor="{anchor}">'
                         f'{_e(times[idx].strftime("%H:%M:%S"))}</text>')

    def ypos(v: float) -> float:
        return _TOP + plot_h - plot_h * (v / ymax)

    step = plot_w / n if n else plot_w
    base = [0.0] * n
    for s_index, (name, values) in enumerate(series.items()):
        color = PALETTE[s_index % len(PALETTE)]
        if bars:
            for i, v in enumerate(values):
                if not v:
                    continue
                y0, y1 = ypos(base[i]), ypos(base[i] + v)
                parts.append(f'<rect class="bar" data-series="{_e(name)}" data-i="{i}"'
                             f' x="{_LEFT + i * step + 1:.1f}" y="{y1:.1f}"'
                             f' width="{max(step - 2, 1):.1f}" height="{max(y0 - y1, 0.5):.1f}"'
                             f' fill="{color}"><title>{_e(name)}: {_e(_number(v))}</title></rect>')
                base[i] += v
        else:
            runs: list[list[str]] = [[]]
            for i, v in enumerate(values):
                if v is None:
                    runs.append([])
                    continue
                runs[-1].append(f"{_LEFT + (i + 0.5) * step:.1f},{ypos(v):.1f}")
            for pts in runs:
                if len(pts) == 1:
                    cx, cy = pts[0].split(",")
                    parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
                elif pts:
                    parts.append(f'<polyline class="series" data-series="{_e(name)}"'
                                 f' points="{" ".join(pts)}" fill="none" stroke="{color}"'
                                 f' stroke-width="2"/>')
        lx = _LEFT + (s_index % 4) * 126
        ly = _H - 18 + (s_index // 4) * 12
        parts.append(f'<rect x="{lx}" y="{ly - 8}" width="10" height="10" fill="{color}"/>'
                     f'<text class="legend" x="{lx + 14}" y="{ly + 1}" font-size="10"'
                     f' fill="#374151">{_e(name)[:22]}</text>')
    if not has_data:
        parts.append(f'<text class="empty" x="{_LEFT + plot_w / 2:.1f}"'
                     f' y="{_TOP + plot_h / 2:.1f}" font-size="12" fill="#9ca3af"'
                     f' text-anchor="middle">no data in this window</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One task on a run's timeline: its label, when it was queued, claimed and ended."""

    step: str
    task_index: int
    status: str
    attempts: int
    queued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None


_STATUS_COLOR: Final = {"completed": "#16a34a", "failed": "#dc2626", "started": "#2563eb",
                        "queued": "#9ca3af"}


def timeline_chart(rows: Sequence[TimelineRow], start: datetime, end: datetime, *,
                   more: int = 0) -> Markup:
    """Draw a Gantt-style timeline: per task, its queue wait (light) and run time (coloured).

    ``start``/``end`` bound the x axis (the run's start, and its end or now). A task still
    queued shows its wait up to ``end``; one running, its run time up to ``end``; a task that
    took several attempts is marked ``×n`` (its wait then includes the earlier attempts and
    their backoff: the tasks table keeps only the latest claim). ``more``: tasks not drawn.
    """
    label_w, row_h, top = 150, 18, 22
    plot_w = _W + 160 - label_w - _RIGHT
    height = top + row_h * max(len(rows), 1) + 30
    total = max((end - start).total_seconds(), 1e-3)

    def x(t: datetime | None) -> float:
        if t is None:
            return label_w + plot_w
        return label_w + plot_w * min(max((t - start).total_seconds() / total, 0.0), 1.0)

    width = _W + 160
    parts = [f'<svg class="timeline" id="timeline-svg" width="{width}" height="{height}"'
             f' viewBox="0 0 {width} {height}" role="img" aria-label="tasks of the run over time">']
    for k in range(5):
        gx = label_w + plot_w * k / 4
        parts.append(f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="{top - 4}" y2="{height - 24}"'
                     f' stroke="#e5e7eb"/><text x="{gx:.1f}" y="{height - 10}" font-size="10"'
                     f' fill="#6b7280" text-anchor="{"end" if k == 4 else "middle"}">'
                     f'+{_e(_number(total * k / 4))}s</text>')
    for i, r in enumerate(rows):
        y = top + i * row_h
        label = r.step if r.task_index == 0 and r.status != "map" else f"{r.step}[{r.task_index}]"
        parts.append(f'<g class="task" data-step="{_e(r.step)}" data-index="{r.task_index}"'
                     f' data-status="{_e(r.status)}" data-attempts="{r.attempts}">')
        parts.append(f'<text x="{label_w - 8}" y="{y + 12}" font-size="11" fill="#111827"'
                     f' text-anchor="end">{_e(label[:24])}</text>')
        queued = x(r.queued_at)
        claimed = x(r.started_at) if r.started_at is not None else x(r.ended_at or end)
        if r.queued_at is not None:
            parts.append(f'<rect class="wait" x="{queued:.1f}" y="{y + 3}"'
                         f' width="{max(claimed - queued, 1):.1f}" height="{row_h - 6}"'
                         f' fill="#e5e7eb"><title>{_e(label)}: waited'
                         f' {_e(_seconds(r.queued_at, r.started_at or r.ended_at or end))}'
                         f'</title></rect>')
        if r.started_at is not None:
            stop = x(r.ended_at or end)
            color = _STATUS_COLOR.get(r.status, "#6b7280")
            parts.append(f'<rect class="run" x="{claimed:.1f}" y="{y + 2}"'
                         f' width="{max(stop - claimed, 2):.1f}" height="{row_h - 4}"'
                         f' fill="{color}"><title>{_e(label)}: {_e(r.status)}, ran'
                         f' {_e(_seconds(r.started_at, r.ended_at or end))},'
                         f' attempt {r.attempts}</title></rect>')
        if r.attempts > 1:
            parts.append(f'<text class="retries" x="{x(r.ended_at or end) + 4:.1f}"'
                         f' y="{y + 12}" font-size="10" fill="#b45309">×{r.attempts}</text>')
        parts.append("</g>")
    if not rows:
        parts.append(f'<text x="{label_w}" y="{top + 12}" font-size="11" fill="#9ca3af">'
                     'no tasks yet</text>')
    if more:
        parts.append(f'<text x="{label_w}" y="{height - 24}" font-size="10" fill="#6b7280">'
                     f'and {more} more task(s) not drawn</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _seconds(a: datetime | None, b: datetime | None) -> str:
    if a is None or b is None:
        return "?"
    return f"{max((b - a).total_seconds(), 0):.3f} s"
