"""Finding plans for the picker: ``./plans`` and the package's examples, deduplicated.

Each plan is loaded (validated) once; a plan that fails keeps its problems for the picker to show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from perftui.errors import PlanError, Problem, UserError
from perftui.planload import LoadedPlan, load_plan


@dataclass
class PlanEntry:
    path: Path
    origin: str
    """Where it was found, as shown to the user: "plans/" or "examples"."""
    loaded: LoadedPlan | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.loaded is not None

    @property
    def name(self) -> str:
        if self.loaded is not None and self.loaded.plan.name:
            return self.loaded.plan.name
        return self.path.stem

    def reload(self) -> None:
        self.loaded, self.problems = None, []
        try:
            self.loaded = load_plan(self.path)
        except PlanError as exc:
            self.problems = exc.problems
        except UserError as exc:
            self.problems = [Problem(str(self.path), "", str(exc))]
        except OSError as exc:
            self.problems = [Problem(str(self.path), "", f"cannot read: {exc.strerror or exc}")]


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
