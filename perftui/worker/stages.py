"""What a worker runs besides the load shapes: ``[[setup]]`` and ``[[teardown]]`` (once per run,
in one worker, with their own connections and recorders so their requests never enter the
load's statistics) and benchmarks (a fixed number of warm-up and measured iterations of one
scenario). Called by ``perftui.worker.main``; the coordinator's half is ``perftui.run.stages``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import msgspec

from perftui.plan import Plan, Scenario
from perftui.worker.messages import Bench, StageDone
from perftui.worker.scenario import CompiledScenario, ScenarioRunner

_now = time.monotonic


def captured_vars(start: dict[str, Any], end: dict[str, Any]) -> dict[str, Any]:
    """The variables a flow set or changed (``$``-names are the engine's own and stay behind)."""
    return {k: v for k, v in end.items() if not k.startswith("$") and (k not in start or start[k] != v)}


async def run_stage(plan: Plan, target: str, stage: str, steps: list, shared: dict[str, Any], *,
                    worker_index: int, seed: int, timeout: float) -> StageDone:
    """Run ``steps`` once, in order, stopping at the first one that fails (no answer, an error
    status, a failed ``expect``): a setup that did not log in must not start the load."""
    one = msgspec.structs.replace(plan, scenarios=[Scenario(name=stage, steps=list(steps))], on_start=[])
    runner = ScenarioRunner(one, target, worker_index=worker_index, seed=seed)
    vars = runner.new_vu()
    vars.update(shared)
    before = dict(vars)
    t0 = _now()
    message = ""
    try:
        message = await asyncio.wait_for(_steps_until_failure(runner, runner.scenarios[0], vars), timeout)
    except TimeoutError:
        message = f"did not finish within {timeout:g}s"
    except Exception as exc:  # noqa: BLE001 - reported, the run decides
        message = f"internal: {type(exc).__name__}: {exc}"
    finally:
        await runner.close()
    deltas = [d for d in (r.take_delta() for r in runner.recorders.values()) if d is not None]
    return StageDone(worker=worker_index, stage=stage, ok=not message, message=message, duration=_now() - t0,
                     endpoints=deltas, captured=captured_vars(before, vars) if not message else {})


async def _steps_until_failure(runner: ScenarioRunner, scenario: CompiledScenario, vars: dict[str, Any]) -> str:
    """Each step through the runner's own request path; "" when all went through, else why not."""
    for step in scenario.steps:
        if step.if_var is not None and not vars.get(step.if_var):
            continue
        if step.kind != "think":
            errors = step.recorder.errors
            runner.errors_sample.clear()
            await runner.run_step(step, vars)
            if step.recorder.errors != errors:
                return f"step {step.name!r}: " + _why(step.name, runner.errors_sample[-1] if runner.errors_sample else "")
        if step.think:
            await asyncio.sleep(step.think)
    return ""


def _why(name: str, sample: str) -> str:
    """An error sample (``kind: endpoint: detail``) as ``detail (kind)``."""
    kind, _, rest = sample.partition(": ")
    if not rest:
        return sample or "failed"
    if rest.startswith(name + ": "):
        rest = rest[len(name) + 2:]
    return f"{rest} ({kind})"


class BenchRun:
    """One benchmark in one worker: ``warmup`` iterations whose requests are thrown away, then
    exactly ``iterations`` measured ones, over ``concurrency`` lanes that take the next iteration
    from a shared count (so the total is exact whatever each lane's speed). After its warm-up a
    worker says so (``warmed``) and waits until every worker has (``go``): no measured sample
    overlaps another worker's warm-up, and the measured samples run at the set concurrency."""

    def __init__(self, runner: ScenarioRunner, bench: Bench, warmed: Callable[[], None]):
        self.runner = runner
        self.bench = bench
        self.scenario = runner.scenarios[bench.scenario]
        self.warming = bench.warmup > 0
        """While true, the worker's snapshots carry no requests (they are discarded)."""
        self.warmed = 0
        self.measured = 0
        self.in_flight = 0
        self.stopping = False
        self.warmed_up = warmed
        self.go = asyncio.Event()

    async def run(self) -> tuple[int, int]:
        b = self.bench
        lanes = [self.runner.new_vu() for _ in range(b.concurrency)]
        if b.warmup:
            await self._pass(lanes, b.warmup, warm=True)
            self.discard()
        if b.hold:
            self.warmed_up()
            await self.go.wait()
        self.warming = False
        await self._pass(lanes, b.iterations, warm=False)
        return self.measured, self.warmed

    def discard(self) -> None:
        """The warm-up's requests leave every statistic (called between the two passes, when no
        warm-up request is in flight)."""
        runner = self.runner
        for rec in runner.recorders.values():
            rec.take_delta()
        runner.take_extra()
        runner.iterations = 0
        runner.errors_sample.clear()

    async def _pass(self, lanes: list[dict[str, Any]], count: int, *, warm: bool) -> None:
        left = [count]

        async def lane(vars: dict[str, Any]) -> None:
            runner = self.runner
            while left[0] > 0 and not self.stopping:
                left[0] -= 1
                self.in_flight += 1
                try:
                    await runner.iteration(vars, None, self.scenario)
                except Exception as exc:  # a bug must not end the benchmark silently
                    runner.errors_sample.append(f"internal: {type(exc).__name__}: {exc}")
                finally:
                    self.in_flight -= 1
                if warm:
                    self.warmed += 1
                else:
                    self.measured += 1

        await asyncio.gather(*(lane(v) for v in lanes))
