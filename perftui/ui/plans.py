"""Plans as the UI sees them: finding them for the picker (``./plans`` and the package's
examples, deduplicated; each loaded and validated once, a plan that fails keeps its problems for
the picker to show), and what may be shown of one (``shown_plan``: secrets masked) and which
panels it needs (``is_monitored``, ``uses_protocols``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from msgspec import UNSET

from perftui.errors import PlanError, Problem, UserError
from perftui.plan import Plan
from perftui.plan import protocol_endpoints
from perftui.planload import LoadedPlan, load_plan, redacted_plan


def shown_plan(loaded: LoadedPlan, *, reveal: bool = False) -> Plan:
    """The plan as the screen may show it: credentials and ``${ENV}`` values are ``***``."""
    try:
        return msgspec.convert(redacted_plan(loaded, reveal=reveal), Plan)
    except (msgspec.ValidationError, TypeError, ValueError):
        # a masked value no longer validates (it cannot be shown as written): show only the shape
        return Plan(name=loaded.plan.name, phases=loaded.plan.phases, thresholds=loaded.plan.thresholds, slos=loaded.plan.slos,
                    target="demo" if loaded.plan.target == "demo" else "***")


def is_monitored(plan: Plan) -> bool:
    """The plan watches its target: health URLs, a metrics URL, a local process or a database."""
    m = plan.monitor
    return bool(m.health or m.metrics or m.process is not UNSET or m.postgres)


def uses_protocols(plan: Plan) -> bool:
    """The plan has WebSocket, GraphQL or MCP steps."""
    try:
        return bool(protocol_endpoints(plan))
    except Exception:  # noqa: BLE001 - a display decision only
        return False


@dataclass
class PlanEntry:
    path: Path
    origin: str
    """Where it was found, as shown to the user: "plans/" or "examples"."""
    loaded: LoadedPlan | None = None
    problems: list[Problem] = field(default_factory=list)
    shown: Plan | None = None
    """``shown_plan(loaded)``: what the picker displays."""
    profile: str = ""
    """The profile chosen in the picker ("" for the plan as written); ``loaded`` has it applied."""
    profile_names: list[str] = field(default_factory=list)
    base: LoadedPlan | None = None
    """The plan without a profile (its ``profiles`` describe the choices)."""

    @property
    def ok(self) -> bool:
        return self.loaded is not None

    @property
    def name(self) -> str:
        if self.shown is not None and self.shown.name:
            return self.shown.name
        return self.path.stem

    def reload(self) -> None:
        self.loaded, self.shown, self.problems, self.base, self.profile_names = None, None, [], None, []
        try:
            self.base = load_plan(self.path)
            self.profile_names = list(self.base.plan.profiles)
            if self.profile not in self.profile_names:
                self.profile = ""
            self.loaded = load_plan(self.path, profile=self.profile) if self.profile else self.base
            self.shown = shown_plan(self.loaded)
        except PlanError as exc:
            self.problems = exc.problems
        except UserError as exc:
            self.problems = [Problem(str(self.path), "", str(exc))]
        except OSError as exc:
            self.problems = [Problem(str(self.path), "", f"cannot read: {exc.strerror or exc}")]


    def next_profile(self) -> None:
        """Choose the next profile of the plan (after the last: none), and load the plan with it."""
        names = ["", *self.profile_names]
        self.profile = names[(names.index(self.profile) + 1) % len(names)] if self.profile in names else ""
        self.reload()


def examples_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "examples"


def default_plan_dirs() -> list[tuple[Path, str]]:
    return [(Path.cwd() / "plans", "plans/"), (examples_dir(), "examples")]


def _order(entry: PlanEntry) -> tuple:
    # The quick start first: a fresh install's `perftui` + Enter runs the demo.
    quick = entry.path.name == "demo.toml"
    demo = entry.loaded is not None and entry.loaded.plan.target == "demo"
    return (not quick, not demo, entry.path.name)


def discover(dirs: list[tuple[Path, str]] | None = None) -> list[PlanEntry]:
    seen: set[Path] = set()
    out: list[PlanEntry] = []
    for directory, origin in dirs if dirs is not None else default_plan_dirs():
        if not directory.is_dir():
            continue
        group = []
        for path in directory.glob("*.toml"):
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            entry = PlanEntry(path=path, origin=origin)
            entry.reload()
            group.append(entry)
        out.extend(sorted(group, key=_order))
    return out
