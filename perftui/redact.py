"""Masking values that came from the environment (``${ENV}``) in everything perftui shows or
writes: endpoint names made from URL paths, error messages, the target, events.

The loader records every substituted value (``LoadedPlan.secrets``); the coordinator builds one
``masker`` from them and applies it where text from the running plan enters the session record
(worker snapshots, failures, the target), so the session file, checkpoints, the journal, the
recovered document, the headless summary and the dashboard all see the masked text.
``--reveal-secrets`` turns it off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

MASK = "***"


def masker(secrets: Iterable[str]) -> Callable[[str], str]:
    """A function replacing each secret in a string by ``***``. As in the session's plan
    (``planload.redacted_plan``), one- and two-character values are masked only where they are
    the whole string: masking them everywhere would garble the record and protect nothing."""
    values = set(secrets)
    long = sorted((s for s in values if len(s) >= 3), key=len, reverse=True)
    short = {s for s in values if 0 < len(s) < 3}
    if not long and not short:
        return _same
    cache: dict[str, str] = {}

    def mask(text: str) -> str:
        hit = cache.get(text)
        if hit is not None:
            return hit
        out = MASK if text in short else text
        for s in long:
            if s in out:
                out = out.replace(s, MASK)
        if len(cache) < 10_000:  # endpoint names repeat every snapshot; error texts may not
            cache[text] = out
        return out

    return mask


def _same(text: str) -> str:
    return text
