"""CPU of the dashboard's refresh work, in-process, on the tests' scripted run (no terminal).

The scripted app (``tests/ui_fakes.py``) at 160x48 and 80x24, monitored plan, mid-run; then
60 seconds of data, each followed by four numbers ticks (a 4 Hz refresh) and one charts tick.
Reports the CPU seconds spent in ``tick_numbers`` / ``tick_charts`` (building what is shown and
handing it to the widgets; the terminal rendering that follows is the same either way) and in
the whole loop including Textual's rendering. Run it from a tree: ``PYTHONPATH=TREE python
TREE/bench/dashboard_tick.py``; compare two trees in the same session (ratios, not absolutes).
"""
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.ui_fakes import SAMPLE_PLAN, monitored_plan, play_running, scripted_app  # noqa: E402

SECONDS = 60


async def measure(size):
    phases = [{"name": "soak", "duration": "1h", "arrival_rate": 40}]
    app = scripted_app(loaded=monitored_plan(phases=phases, thresholds=SAMPLE_PLAN["thresholds"]))
    async with app.run_test(size=size) as pilot:
        await play_running(pilot)
        screen, coord = app.screen, app.scripted.coord
        ticks = 0.0
        t0 = time.process_time()
        for _ in range(SECONDS):
            coord.step(1)
            for _ in range(4):
                a = time.process_time()
                screen.tick_numbers()
                ticks += time.process_time() - a
                await pilot.pause(0)
            a = time.process_time()
            screen.tick_charts()
            ticks += time.process_time() - a
            await pilot.pause(0)
        total = time.process_time() - t0
    return ticks, total


for size in ((160, 48), (80, 24)):
    ticks, total = asyncio.run(measure(size))
    print(f"{size[0]}x{size[1]}: ticks {ticks * 1000 / SECONDS:.1f} ms CPU per data second, "
          f"with rendering {total * 1000 / SECONDS:.1f} ms", flush=True)
