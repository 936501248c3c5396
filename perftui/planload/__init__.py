"""Loading and validating test plans: TOML text -> ``${ENV}`` substitution -> ``perftui.plan.Plan``.

Called by the CLI (``perftui run/validate``), the plan picker, the importers and the coordinator.
Every problem in a plan is collected and raised together as one ``PlanError``; each ``Problem``
names the file, the key path in TOML words (``scenarios[2].steps[1].url``; array indices count
from 1, so ``phases[1]`` is the first ``[[phases]]``) and the line where it was found.

The package, by job:

- ``source``: reading a plan file (bounded), TOML syntax errors, the line of each key, the words
  messages use;
- ``env``: ``${ENV}`` substitution;
- ``driver``: the field-wise conversion into the plan types (``perftui.plan``), with unknown keys,
  wrong types and out-of-range values worded in TOML terms and the Artillery/k6 hints;
- ``checks`` and ``validate``: the checks of meaning (plan tables; each step kind);
- ``load``: ``load_plan`` / ``plan_from_dict``;
- ``overrides``: ``--target/--rate/--vus/--duration`` and the plans of ``perftui run URL``;
- ``redaction``: the copy of a plan stored in session files.
"""

from __future__ import annotations

from perftui.planload.load import LoadedPlan, load_plan, plan_from_dict
from perftui.planload.overrides import apply_overrides, quick_plan, with_find_limit
from perftui.planload.redaction import SENSITIVE_HEADERS, redacted_plan
from perftui.planload.source import CLI_FILE, HTTP_METHODS, MAX_PLAN_BYTES, format_path

__all__ = [
    "CLI_FILE",
    "HTTP_METHODS",
    "MAX_PLAN_BYTES",
    "SENSITIVE_HEADERS",
    "LoadedPlan",
    "apply_overrides",
    "format_path",
    "load_plan",
    "plan_from_dict",
    "quick_plan",
    "redacted_plan",
    "with_find_limit",
]
