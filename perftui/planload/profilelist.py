"""``perftui validate`` of a plan's profiles: each applied in turn and validated. Called by the CLI."""

from __future__ import annotations

from perftui.errors import PlanError, Problem
from perftui.plan import Plan
from perftui.planload.load import load_plan
from perftui.planload.profiles import profile_summary


def check_profiles(path: str, plan: Plan) -> str:
    """``perftui validate``: every profile applied in turn; the lines to print, or ``PlanError``
    with the problems of every profile that does not validate."""
    lines: list[str] = []
    problems: list[Problem] = []
    for name in plan.profiles:
        try:
            load_plan(path, profile=name)
        except PlanError as e:
            problems.extend(p for p in e.problems if p not in problems)
            continue
        summary = profile_summary(plan, name)
        desc = plan.profiles[name].description
        lines.append(f"  profile {name}: ok" + (f" · {summary}" if summary else "") + (f" · {desc}" if desc else ""))
    if problems:
        raise PlanError(problems)
    return "\n".join(lines)
