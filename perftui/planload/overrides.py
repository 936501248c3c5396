"""Command-line overrides (``--target/--rate/--vus/--duration``) and the one-step plans of
``perftui run URL``. Called by the CLI and the plan picker."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

import msgspec

from perftui.errors import PlanError, Problem
from perftui.planload.validate import Validator
from perftui.plan import is_benchmark
from perftui.planload.load import LoadedPlan, plan_from_dict
from perftui.planload.source import CLI_FILE, _HEADER_NAME, _Locator, _quote
from perftui.units import parse_duration



def _revalidate(loaded: LoadedPlan, plan_dict: dict[str, Any]) -> LoadedPlan:
    file = str(loaded.path) if loaded.path is not None else CLI_FILE
    v = Validator(file, _Locator(loaded.source if loaded.path is not None else None), set(), set())
    plan = v.run(plan_dict, loaded.plan.name)
    if v.problems or plan is None:
        raise PlanError(v.problems or [Problem(file, "", "the plan could not be validated")])
    return LoadedPlan(plan=plan, path=loaded.path, source=loaded.source, secrets=loaded.secrets)


def _cli_number(value: Any, flag: str, kind: type, problems: list[Problem]) -> None:
    bad = isinstance(value, bool) or not isinstance(value, (int, float))
    if not bad and kind is int and (not float(value).is_integer()):
        bad = True
    if bad or not math.isfinite(value) or value <= 0:
        what = "a whole number of virtual users" if kind is int else "a rate in iterations per second"
        problems.append(Problem(CLI_FILE, flag, f"expected {what} greater than 0, got {value!r}"))


def apply_overrides(
    loaded: LoadedPlan,
    *,
    target: str | None = None,
    rate: float | None = None,
    vus: int | None = None,
    duration: str | None = None,
) -> LoadedPlan:
    """Apply ``--target/--rate/--vus/--duration`` and re-validate.

    ``--rate`` replaces every phase with one open phase at that rate, ``--vus`` with one closed
    phase; their length is ``--duration`` (30s without it). ``--duration`` alone replaces the
    phases with one phase shaped like the first non-pause phase, at its starting value."""
    problems: list[Problem] = []
    if rate is not None and vus is not None:
        problems.append(Problem(CLI_FILE, "--rate", "--rate (open model) and --vus (closed model) cannot be combined"))
    if rate is not None:
        _cli_number(rate, "--rate", float, problems)
    if vus is not None:
        _cli_number(vus, "--vus", int, problems)
    if duration is not None:
        try:
            seconds = parse_duration(duration)
            if not (math.isfinite(seconds) and seconds > 0):
                raise ValueError(f"the duration must be greater than 0, got {duration!r}")
        except ValueError as e:
            problems.append(Problem(CLI_FILE, "--duration", str(e)))
    if is_benchmark(loaded.plan):
        for flag, value in (("--rate", rate), ("--vus", vus), ("--duration", duration)):
            if value is not None:
                problems.append(Problem(CLI_FILE, flag, f"{flag} replaces the phases, and a benchmark plan has none: "
                                                        "its sample counts are in each [scenarios.benchmark]"))
    if target is not None:
        v = Validator(CLI_FILE, _Locator(None), set(), set())
        v.check_target(target, ())
        problems.extend(Problem(CLI_FILE, "--target", p.message) for p in v.problems)
    if problems:
        raise PlanError(problems)
    if target is None and rate is None and vus is None and duration is None:
        return loaded
    plan_dict = msgspec.to_builtins(loaded.plan)
    if target is not None:
        plan_dict["target"] = target
    length: str | int | float = duration if duration is not None else "30s"
    if rate is not None:
        plan_dict["phases"] = [{"name": f"--rate {rate:g}/s", "duration": length, "arrival_rate": float(rate)}]
    elif vus is not None:
        plan_dict["phases"] = [{"name": f"--vus {int(vus)}", "duration": length, "vus": int(vus)}]
    elif duration is not None:
        first = next((p for p in loaded.plan.phases if not p.pause), None)
        if first is None:
            raise PlanError([Problem(CLI_FILE, "--duration", "the plan has only pause phases; add --rate or --vus")])
        shaped = msgspec.to_builtins(first)
        ramp_to = shaped.pop("ramp_to", None)
        for key in ("arrival_rate", "vus"):  # a ramp from 0 holds its end value instead
            if shaped.get(key) == 0 and ramp_to:
                shaped[key] = ramp_to if key == "arrival_rate" else int(ramp_to)
        shaped["duration"] = duration
        plan_dict["phases"] = [shaped]
    return _revalidate(loaded, plan_dict)


def quick_plan(
    url: str,
    *,
    rate: float | None,
    vus: int | None,
    duration: str = "30s",
    method: str = "GET",
    headers: list[str] | tuple[str, ...] = (),
    body: str | None = None,
) -> LoadedPlan:
    """A one-step plan for ``perftui run URL``: target is the URL's ``scheme://host[:port]``,
    the step requests its path and query. Without ``rate`` and ``vus``: 10 virtual users."""
    problems: list[Problem] = []
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise PlanError([Problem(CLI_FILE, "URL", f"not a valid URL ({e}): {_quote(url)}")]) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        hint = f"; did you mean {_quote('http://' + url)}?" if "://" not in url else ""
        raise PlanError([Problem(CLI_FILE, "URL", f"expected an http:// or https:// URL with a host, got {_quote(url)}{hint}")])
    if rate is not None and vus is not None:
        problems.append(Problem(CLI_FILE, "--rate", "--rate (open model) and --vus (closed model) cannot be combined"))
    if rate is not None:
        _cli_number(rate, "--rate", float, problems)
    if vus is not None:
        _cli_number(vus, "--vus", int, problems)
    header_map: dict[str, str] = {}
    for h in headers:
        name, sep, val = h.partition(":")
        if not sep or not _HEADER_NAME.match(name.strip()):
            problems.append(Problem(CLI_FILE, "--header", f'expected "Name: value", got {_quote(h)}'))
            continue
        header_map[name.strip()] = val.strip()
    if problems:
        raise PlanError(problems)
    netloc = parts.netloc.rpartition("@")[2]
    target = f"{parts.scheme}://{netloc}"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    step: dict[str, Any] = {"method": method.upper(), "url": path}
    if header_map:
        step["headers"] = header_map
    if body is not None:
        step["body"] = body
    if rate is not None:
        phase: dict[str, Any] = {"name": f"{rate:g}/s", "duration": duration, "arrival_rate": float(rate)}
    else:
        n = int(vus) if vus is not None else 10
        phase = {"name": f"{n} VUs", "duration": duration, "vus": n}
    data = {
        "name": f"{method.upper()} {url}",
        "target": target,
        "phases": [phase],
        "scenarios": [{"name": "quick", "steps": [step]}],
    }
    loaded = plan_from_dict(data, file=CLI_FILE, env={})
    return LoadedPlan(plan=loaded.plan, path=None, source=loaded.source, secrets=frozenset())




def with_find_limit(loaded: LoadedPlan, settings: dict[str, tuple[str, Any]]) -> LoadedPlan:
    """``perftui find-limit PLAN``: the plan's ``[find_limit]`` (or the defaults) updated with the
    command line's ``settings`` (key -> (flag, value)), in place of its phases. A bad value is
    reported under its flag."""
    from perftui.plan import FindLimit

    plan_dict = msgspec.to_builtins(loaded.plan)
    section = dict(plan_dict.get("find_limit") or {})
    section.update({key: value for key, (_flag, value) in settings.items()})
    flags = {f"find_limit.{key}": flag for key, (flag, _value) in settings.items()}
    v = Validator(CLI_FILE, _Locator(None), set(), set())
    v.struct(section, FindLimit, ("find_limit",))
    problems = [Problem(CLI_FILE, flags[p.path], p.message) for p in v.problems if p.path in flags]
    if problems:
        raise PlanError(problems)
    plan_dict["find_limit"] = section
    plan_dict.pop("phases", None)
    return _revalidate(loaded, plan_dict)
