"""``load_plan`` and ``plan_from_dict``: TOML text or a dict -> ``${ENV}`` substitution ->
validation -> a ``LoadedPlan``. Called by the CLI, the plan picker, the importers and the coordinator
(through ``perftui.planload``)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perftui.errors import PlanError, Problem
from perftui.planload.validate import Validator
from perftui.plan import Plan
from perftui.planload.env import _Substituter
from perftui.planload.sqlchecks import dsn_password
from perftui.planload.profiles import apply_profile
from perftui.planload.source import _Locator, _describe, _read_plan_file, _toml_problem


@dataclass(frozen=True)
class LoadedPlan:
    """A validated plan and where it came from."""

    plan: Plan
    """Validated, ``${ENV}`` substituted; durations still as written (see ``duration_s``)."""
    path: Path | None = None
    """The plan file, or None for plans built in memory (``quick_plan``, ``plan_from_dict``)."""
    source: str = ""
    """The plan's TOML text as written (before substitution)."""
    secrets: frozenset[str] = field(default=frozenset())
    """Every value that came from ``${ENV}`` substitution; ``redacted_plan`` masks them."""


def load_plan(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None,
              profile: str | None = None) -> LoadedPlan:
    """Read, substitute and validate a plan file, with ``[profiles.<profile>]`` applied when
    ``profile`` is given. Raises ``PlanError`` listing every problem."""
    p = Path(path)
    text = _read_plan_file(p)
    file = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PlanError([_toml_problem(file, text, e)]) from None
    except (ValueError, RecursionError) as e:  # tomllib can raise these on pathological input
        raise PlanError([Problem(file, "", f"invalid TOML: {e}")]) from None
    return _load(data, file=file, env=env, source=text, path=p, default_name=p.stem, profile=profile)


def plan_from_dict(
    data: dict[str, Any], *, file: str = "<plan>", env: Mapping[str, str] | None = None
) -> LoadedPlan:
    """Validate a plan given as the dict TOML parses into (same rules as ``load_plan``)."""
    source = ""
    if isinstance(data, dict):
        try:
            import tomli_w

            source = tomli_w.dumps(data)
        except Exception:  # noqa: BLE001 - the source text is informational
            source = ""
    stem = "" if file.startswith("<") else Path(file).stem
    return _load(data, file=file, env=env, source=source, path=None, default_name=stem, locate=False)


def _load(
    data: Any,
    *,
    file: str,
    env: Mapping[str, str] | None,
    source: str,
    path: Path | None,
    default_name: str,
    locate: bool = True,
    profile: str | None = None,
) -> LoadedPlan:
    locator = _Locator(source if locate else None)
    if not isinstance(data, dict):
        raise PlanError([Problem(file, "", f"a plan must be a table of keys, got {_describe(data)}")])
    subst = _Substituter(os.environ if env is None else env)
    try:
        data = subst.walk(data, ())
    except RecursionError:
        raise PlanError([Problem(file, "", "the plan is nested too deeply")]) from None
    v = Validator(file, locator, subst.full_refs, subst.failed)
    for p, msg in subst.problems:
        if p[:1] == ("profiles",) and len(p) > 2 and p[1] != profile:
            # A light run in CI need not set the variables only the production profile uses: the
            # key is left out of that profile here (applying the profile reports it).
            prof = data.get("profiles", {}).get(p[1])
            if isinstance(prof, dict):
                prof.pop(p[2], None)
            continue
        v.problem(p, msg, force=True)
    if "profile" in data:
        v.problem(("profile",), "a profile is chosen when the plan runs (--profile NAME, PERFTUI_PROFILE or the"
                                " plan picker), not written in the plan", force=True)
    if profile:
        data, v.remap, profile_problems = apply_profile(data, profile, file)
        # "${VUS}" written in the profile takes the type its key needs where the profile puts it too,
        # and a missing variable there is reported once, where it is written
        for to, src in v.remap.items():
            for refs in (subst.full_refs, subst.failed):
                refs.update(to + ref[len(src):] for ref in list(refs) if ref[: len(src)] == src)
        for p, msg in profile_problems:
            v.problem(p, msg, force=True)
    plan = v.run(data, default_name)
    if v.problems or plan is None:
        problems = list(dict.fromkeys(v.problems))  # a profile's key can be reported twice: as written, and applied
        raise PlanError(problems or [Problem(file, "", "the plan could not be validated")])
    # Values that became numbers or booleans ("${VUS}" -> 10) are settings, not credentials.
    secrets = {value for p, values in subst.secret_at.items() if p not in v.coerced for value in values}
    # a password written into a database DSN is as secret as one from the environment
    secrets |= {pw for db in plan.databases.values() if (pw := dsn_password(db.dsn))}
    return LoadedPlan(plan=plan, path=path, source=source, secrets=frozenset(secrets))


