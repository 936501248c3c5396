"""Applying a ``[profiles.NAME]`` section (``perftui.plan.profile``) to a plan, before validation.

``apply_profile`` returns the plan's data with the profile applied and a map from the keys the
profile supplied (``phases``, ``defaults.timeout``, ...) to where the profile wrote them
(``profiles.stress.phases``): the validator reports a problem in them at the profile's key and
line. Called by ``perftui.planload.load``; ``profile_names`` and ``profile_summary`` serve the
CLI and the plan picker.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from perftui.errors import PlanError, Problem
from perftui.plan import Plan, Profile, duration_s
from perftui.plan.profile import MERGED, REPLACED, SHORTCUTS
from perftui.planload.source import Path_, _quote
from perftui.units import format_duration


def profile_names(data: Any) -> list[str]:
    profiles = data.get("profiles") if isinstance(data, dict) else None
    return [k for k in profiles if isinstance(k, str)] if isinstance(profiles, dict) else []


def unknown_profile(file: str, name: str, names: list[str]) -> PlanError:
    if not names:
        msg = (f"no profile {_quote(name)}: this plan has no [profiles.NAME] sections"
               " (run it without --profile, or add one)")
    else:
        import difflib

        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {_quote(close[0])}?" if close else ""
        msg = f"no profile {_quote(name)} in this plan{hint} (its profiles: {', '.join(names)})"
    return PlanError([Problem(file, "--profile", msg)])


def apply_profile(data: dict[str, Any], name: str, file: str
                  ) -> tuple[dict[str, Any], dict[Path_, Path_], list[tuple[Path_, str]]]:
    """The plan data with profile ``name`` applied, the key map (see the module), and problems
    of the profile's shortcuts. Raises ``PlanError`` when the plan has no such profile."""
    names = profile_names(data)
    if name not in names:
        raise unknown_profile(file, name, names)
    prof = data["profiles"][name]
    out = dict(data)
    out["profile"] = name
    remap: dict[Path_, Path_] = {}
    problems: list[tuple[Path_, str]] = []
    if not isinstance(prof, dict):
        return out, remap, problems  # the validator reports the wrong type
    at: Path_ = ("profiles", name)
    for key in REPLACED:
        if key in prof:
            out[key] = prof[key]
            remap[(key,)] = at + (key,)
    for key in MERGED:
        if isinstance(prof.get(key), dict):
            base = data.get(key)
            out[key] = _merge(base if isinstance(base, dict) else {}, prof[key], (key,), at + (key,), remap)
    shortcuts = [k for k in SHORTCUTS if k in prof]
    if shortcuts:
        if "phases" in prof:
            problems.append((at + ("phases",), f"a profile gives phases, or {' and '.join(shortcuts)} for one phase;"
                                               " not both"))
        elif "vus" in prof and "arrival_rate" in prof:
            problems.append((at + ("vus",), "vus (closed model) and arrival_rate (open model) cannot be combined"))
        else:
            _shortcut_phase(out, prof, name, at, remap, problems)
    return out, remap, problems


def _merge(base: dict[str, Any], over: dict[str, Any], path: Path_, source: Path_,
           remap: dict[Path_, Path_]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merged[k] = _merge(base[k], v, path + (k,), source + (k,), remap)
        else:
            merged[k] = v
            remap[path + (k,)] = source + (k,)
    return merged


def _shortcut_phase(out: dict[str, Any], prof: dict[str, Any], name: str, at: Path_,
                    remap: dict[Path_, Path_], problems: list[tuple[Path_, str]]) -> None:
    """``vus``/``arrival_rate``/``duration`` of a profile: one phase, as the CLI flags make it."""
    length = prof.get("duration", "30s")
    remap[("phases",)] = at
    remap[("phases", 0, "duration")] = at + ("duration",)
    if "vus" in prof:
        vus = prof["vus"]
        out["phases"] = [{"name": f"{name}: {vus} VUs", "duration": length, "vus": vus}]
        remap[("phases", 0, "vus")] = at + ("vus",)
        return
    if "arrival_rate" in prof:
        rate = prof["arrival_rate"]
        shown = f"{rate:g}/s" if isinstance(rate, (int, float)) and not isinstance(rate, bool) else str(rate)
        out["phases"] = [{"name": f"{name}: {shown}", "duration": length, "arrival_rate": rate}]
        remap[("phases", 0, "arrival_rate")] = at + ("arrival_rate",)
        return
    phases = out.get("phases")
    first = next((i for i, p in enumerate(phases) if isinstance(p, dict) and not p.get("pause")), None) \
        if isinstance(phases, list) else None
    if first is None:
        problems.append((at + ("duration",), "duration alone reshapes the plan's first phase, and it has none"
                                             " (only pauses?); add vus or arrival_rate"))
        return
    shaped = dict(phases[first])
    ramp_to = shaped.pop("ramp_to", None)
    for key in ("arrival_rate", "vus"):  # a ramp from 0 holds its end value instead
        if shaped.get(key) == 0 and isinstance(ramp_to, (int, float)) and ramp_to:
            shaped[key] = ramp_to if key == "arrival_rate" else int(ramp_to)
    shaped["duration"] = length
    out["phases"] = [shaped]
    remap[("phases", 0)] = remap[("phases",)] = ("phases", first)
    remap[("phases", 0, "duration")] = at + ("duration",)


def profile_summary(plan: Plan, name: str, *, target: bool = True) -> str:
    """One line about a profile for the picker and ``validate``: its load and length."""
    prof: Profile | None = plan.profiles.get(name)
    if prof is None:
        return ""
    parts: list[str] = []
    phases = prof.phases if prof.phases is not UNSET else None
    if prof.vus is not UNSET:
        parts.append(f"{prof.vus} VUs")
    elif prof.arrival_rate is not UNSET:
        parts.append(f"{prof.arrival_rate:g}/s")
    elif phases:
        peak_vus = max((max(p.vus, p.ramp_to if p.ramp_to is not UNSET else 0) for p in phases if p.vus is not UNSET),
                       default=None)
        peak_rate = max((max(p.arrival_rate, p.ramp_to if p.ramp_to is not UNSET else 0) for p in phases
                         if p.arrival_rate is not UNSET), default=None)
        if peak_vus is not None:
            parts.append(f"up to {peak_vus:g} VUs")
        if peak_rate is not None:
            parts.append(f"up to {peak_rate:g}/s")
        parts.append(f"{len(phases)} phase(s)")
    try:
        if phases:
            parts.append(format_duration(sum(duration_s(p.duration) for p in phases)))
        elif prof.duration is not UNSET:
            parts.append(format_duration(duration_s(prof.duration)))
        elif prof.vus is not UNSET or prof.arrival_rate is not UNSET:
            parts.append(format_duration(30))
    except ValueError:
        pass
    if target and prof.target is not UNSET:
        parts.append(f"→ {prof.target}")
    if prof.thresholds is not UNSET:
        parts.append(f"{len(prof.thresholds)} threshold(s)")
    return " · ".join(parts)

