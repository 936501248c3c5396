"""Checks of meaning for ``[scenarios.benchmark]`` and the ``[[setup]]``, ``[[on_start]]`` and
``[[teardown]]`` steps; mixed into the validator through ``perftui.planload.checks``."""

from __future__ import annotations

from typing import Any

from perftui.plan import Benchmark
from perftui.planload.source import Path_

_WS_ACTIONS = ("ws_connect", "ws_send", "ws_request", "ws_expect", "ws_hold", "ws_close")


class StageChecks:
    """``check_benchmark`` (called by the driver on each converted table)."""

    def check_benchmark(self, bm: Benchmark, raw: dict[str, Any], path: Path_) -> None:
        self.duration(bm.max_duration, path + ("max_duration",))


def benchmark_checks(checks: Any, raw: dict[str, Any]) -> bool:
    """Whole-plan rules of the stages; True when the plan is a benchmark plan (it then needs no
    ``[[phases]]``, and must not have any)."""
    for key in ("setup", "on_start", "teardown"):
        steps = raw.get(key)
        for i, st in enumerate(steps if isinstance(steps, list) else ()):
            used = [a for a in _WS_ACTIONS if isinstance(st, dict) and a in st]
            if used:
                checks.problem((key, i, used[0]), f"WebSocket steps belong in scenarios (a connection lives for one "
                                                  f"iteration); [[{key}]] takes HTTP, GraphQL and MCP steps")
    scenarios = raw.get("scenarios")
    if not isinstance(scenarios, list):
        return False
    marked = [i for i, sc in enumerate(scenarios) if isinstance(sc, dict) and "benchmark" in sc]
    if not marked:
        return False
    for i, sc in enumerate(scenarios):
        if isinstance(sc, dict) and i not in marked:
            checks.problem(("scenarios", i), "in a benchmark plan every scenario is benchmarked: add "
                                             "[scenarios.benchmark] iterations = N to this one too, or move it to another plan")
    if "phases" in raw:
        checks.problem(("phases",), "a benchmark plan runs each scenario's [scenarios.benchmark] instead of phases: "
                                    "remove [[phases]] (or the benchmark tables, for a load test)")
    return True
