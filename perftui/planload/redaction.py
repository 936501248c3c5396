"""The redacted copy of a plan stored in session files: credentials in sensitive headers and
every value that came from the environment masked. Called by the coordinator and the UI."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from perftui.planload.load import LoadedPlan
from perftui.planload.sqlchecks import dsn_without_password
from perftui.planload.source import SENSITIVE_HEADERS
from perftui.template import TemplateError, compile_template

# ---- redaction -----------------------------------------------------------------------------

_AUTH_PREFIX = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9_-]*\s+)?\Z")


def _pure_template(value: str) -> bool:
    """True for values like ``"Bearer {{ authToken }}"``: nothing secret is written in them."""
    try:
        t = compile_template(value)
    except TemplateError:
        return False
    if t.static:
        return False
    literal = re.sub(r"\{\{.*?\}\}", "", value)
    return bool(_AUTH_PREFIX.match(literal))


def redacted_plan(loaded: LoadedPlan, *, reveal: bool = False) -> dict[str, Any]:
    """The plan as run, as plain data for the session file. Unless ``reveal``: credentials
    written into Authorization/Cookie/Proxy-Authorization/X-Api-Key headers become ``"***"``
    and every value that came from the environment is masked wherever it appears."""
    data: dict[str, Any] = msgspec.to_builtins(loaded.plan)
    # The profile that ran is kept (``profile``); the other variants are not what ran.
    data.pop("profiles", None)
    if reveal:
        return data
    # Masking a one- or two-character value everywhere would garble the record without
    # protecting anything; such values are masked only where they are the whole string.
    secrets = sorted((s for s in loaded.secrets if len(s) >= 3), key=len, reverse=True)
    short = {s for s in loaded.secrets if 0 < len(s) < 3}

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            if value in short:
                return "***"
            for s in secrets:
                if s in value:
                    value = value.replace(s, "***")
            return value
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    def headers(h: Any) -> None:
        if not isinstance(h, dict):
            return
        for name, value in h.items():
            if name.lower() in SENSITIVE_HEADERS and isinstance(value, str) and not _pure_template(value):
                h[name] = "***"

    for db in (data.get("databases") or {}).values():
        if isinstance(db, dict) and isinstance(db.get("dsn"), str):
            db["dsn"] = dsn_without_password(db["dsn"])
    headers(data.get("defaults", {}).get("headers"))
    headers(data.get("monitor", {}).get("headers"))
    for sc in data.get("scenarios", []):
        for st in sc.get("steps", []):
            headers(st.get("headers"))
    return mask(data)

