"""The floor plan, enforced: import contracts (pyproject.toml, ``[tool.importlinter]``) and what a
worker process really loads, measured in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What a worker may load from perftui: its own package and the plan types with the small
# helpers they use. Anything else (loader, thresholds, monitors, session, journal, UI) is a
# cost paid in every worker's start-up and memory, and a wall broken.
WORKER_MAY_LOAD = {"perftui", "perftui.plan", "perftui.plan.common", "perftui.plan.steps", "perftui.plan.stages",
                   "perftui.plan.data", "perftui.plan.profile", "perftui.plan.limit", "perftui.plan.rules", "perftui.template",
                   "perftui.jsonpath", "perftui.units", "perftui.lifeline"}


def test_import_contracts_hold():
    r = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
                        "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "BROKEN" not in r.stdout
    assert " KEPT" in r.stdout


def _loaded_by_worker_entry() -> set[str]:
    """Modules ``python -m perftui.worker`` imports before it would read its first frame (stdin
    is empty, so it starts, finds its coordinator gone and exits)."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "perftui.worker"], cwd=ROOT,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    names = set()
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "perftui.worker.main" in names, r.stderr[-2000:]
    return names


def test_worker_process_loads_only_the_worker_package():
    loaded = {n for n in _loaded_by_worker_entry() if n == "perftui" or n.startswith("perftui.")}
    outside = {n for n in loaded if not n.startswith("perftui.worker") and n not in WORKER_MAY_LOAD}
    assert not outside, f"a worker process imports {sorted(outside)}"
    assert {"perftui.worker.transport", "perftui.worker.scenario"} <= loaded


def test_worker_process_loads_no_ui_or_web_framework():
    loaded = _loaded_by_worker_entry()
    for heavy in ("textual", "rich", "starlette", "uvicorn", "prometheus_client", "tomllib"):
        assert heavy not in loaded, f"a worker process imports {heavy}"
