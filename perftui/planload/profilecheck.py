"""Checks of a ``[profiles.NAME]`` section as written (``perftui.plan.profile.Profile``), run on
every profile whether it is applied or not, so that ``perftui validate`` and a run without
``--profile`` still catch a broken profile. What the applied profile makes of the plan is checked
like any plan (``perftui.planload.profiles``). Mixed into the validator by
``perftui.planload.validate``."""

from __future__ import annotations

import re
from typing import Any

from msgspec import UNSET

from perftui.plan import Profile
from perftui.planload.driver import Driver
from perftui.planload.source import Path_, _quote
from perftui.plan.rules import threshold_expr
from perftui.thresholds import parse_threshold

_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


class ProfileChecks(Driver):
    def check_profile(self, prof: Profile, raw: dict[str, Any], path: Path_) -> None:
        name = path[-1] if path else ""
        if isinstance(name, str) and not _PROFILE_NAME.match(name):
            self.problem(path, f"profile names are typed on the command line (--profile NAME): letters, digits,"
                               f" '-', '_' and '.', got {_quote(name)}")
        if prof.duration is not UNSET:
            self.duration(prof.duration, path + ("duration",))
        if prof.target is not UNSET:
            self.check_target(prof.target, path + ("target",))
        if prof.phases is not UNSET and not prof.phases:
            self.problem(path + ("phases",), "must give at least one phase (leave phases out to keep the plan's)")
        for i, expr in enumerate(prof.thresholds if prof.thresholds is not UNSET else ()):
            try:
                parse_threshold(threshold_expr(expr))
            except ValueError as e:
                self.problem(path + ("thresholds", i), str(e))
