"""Template helpers for the web UI: accessible form widgets, status badges, byte sizes."""
from __future__ import annotations

from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def widget(field):
    """Render a bound field's widget wired to its help text and errors, so screen readers
    announce both (`aria-describedby`) and invalid fields say so (`aria-invalid`)."""
    attrs: dict[str, str] = {}
    described = []
    if field.help_text:
        described.append(f"{field.auto_id}_help")
    if field.errors:
        described.append(f"{field.auto_id}_error")
        attrs["aria-invalid"] = "true"
    if described:
        attrs["aria-describedby"] = " ".join(described)
    return field.as_widget(attrs=attrs)


@register.simple_tag
def status_badge(status: str):
    return format_html('<span class="badge badge-{}">{}</span>', status, status)


@register.filter
def filesize(value) -> str:
    try:
        size = float(value)
    except (TypeError, ValueError):
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""
