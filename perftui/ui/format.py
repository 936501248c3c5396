"""Small formatting helpers shared by the UI's panels (units come from ``perftui.units``)."""

from __future__ import annotations

from perftui.units import format_count


def fmt_rate(rps: float | None) -> str:
    """Requests per second: ``0.5/s``, ``42.0/s``, ``1.23k/s``."""
    if rps is None:
        return "-"
    if rps >= 1000:
        return f"{format_count(rps)}/s"
    return f"{rps:.1f}/s"


def fmt_pct(fraction: float | None) -> str:
    if fraction is None:
        return "-"
    pct = fraction * 100
    if pct == 0:
        return "0%"
    if pct < 0.01:
        return "<0.01%"
    if pct < 10:
        return f"{pct:.2f}%"
    return f"{pct:.1f}%"


def fmt_target(value: float, kind: str) -> str:
    """A phase's live target: ``55/s`` or ``12 VUs``."""
    if kind == "closed":
        return f"{int(round(value))} VUs"
    if kind == "open":
        return f"{value:,.4g}/s" if value < 1000 else f"{format_count(value)}/s"
    return "pause"


def ellipsize(text: str, width: int) -> str:
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"
