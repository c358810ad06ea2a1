"""Server-drawn SVG charts: no JavaScript and no chart library, so they render in any browser
(and in screenshots) and cost one small string per page."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def _fmt(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:.0f}"


def step_chart(points: Sequence[tuple[datetime, float]], *, title: str,
               until: datetime | None = None, width: int = 720, height: int = 260) -> SafeString:
    """A step line of (time, value) points — e.g. the best score so far over time.

    The SVG carries a <title>/<desc> and an aria-label, so a screen reader gets a summary;
    the page shows the same numbers in a table.
    """
    pad_l, pad_r, pad_t, pad_b = 56, 16, 16, 36
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    pts = sorted(points, key=lambda p: p[0])
    if not pts:
        return mark_safe("")
    # The last best score holds until `until` (now), so the line runs to the right edge.
    end = max(until, pts[-1][0]) if until is not None else pts[-1][0]
    t0, t1 = pts[0][0].timestamp(), end.timestamp()
    if t1 <= t0:
        t1 = t0 + 1
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.05 * (abs(lo) or 1), hi + 0.05 * (abs(hi) or 1)
    span = hi - lo
    lo, hi = lo - span * 0.08, hi + span * 0.08

    def x(ts: float) -> float:
        return pad_l + (ts - t0) / (t1 - t0) * inner_w

    def y(v: float) -> float:
        return pad_t + (hi - v) / (hi - lo) * inner_h

    parts = []
    for i in range(5):  # horizontal grid with value labels
        v = lo + (hi - lo) * i / 4
        yy = y(v)
        parts.append(f'<line class="grid-line" x1="{pad_l}" x2="{width - pad_r}" y1="{yy:.1f}" y2="{yy:.1f}"/>')
        parts.append(f'<text x="{pad_l - 6}" y="{yy + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    path = []
    for i, (when, value) in enumerate(pts):
        px, py = x(when.timestamp()), y(value)
        if i == 0:
            path.append(f"M{px:.1f},{py:.1f}")
        else:
            path.append(f"H{px:.1f}V{py:.1f}")
    path.append(f"H{pad_l + inner_w:.1f}")
    parts.append(f'<path class="series" d="{" ".join(path)}"/>')
    for when, value in pts:
        parts.append(f'<circle class="dot" cx="{x(when.timestamp()):.1f}" cy="{y(value):.1f}" r="3.5">'
                     f'<title>{escape(when.strftime("%Y-%m-%d %H:%M"))}: {_fmt(value)}</title></circle>')
    axis_y = pad_t + inner_h
    parts.append(f'<line class="axis" x1="{pad_l}" x2="{width - pad_r}" y1="{axis_y}" y2="{axis_y}"/>')
    parts.append(f'<text x="{pad_l}" y="{height - 10}">{escape(pts[0][0].strftime("%Y-%m-%d %H:%M"))}</text>')
    parts.append(f'<text x="{width - pad_r}" y="{height - 10}" text-anchor="end">'
                 f'{escape(end.strftime("%Y-%m-%d %H:%M"))}</text>')
    summary = (f"{len(pts)} leading score{'s' if len(pts) != 1 else ''}, from {_fmt(pts[0][1])} "
               f"to {_fmt(pts[-1][1])}")
    return mark_safe(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}: {escape(summary)}" xmlns="http://www.w3.org/2000/svg">'
        f'<title>{escape(title)}</title><desc>{escape(summary)}</desc>{"".join(parts)}</svg>'
    )
