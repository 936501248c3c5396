"""Screenshots of the real app against the real embedded demo target.

    python screenshots/make_screenshots.py [--quick] [--no-png] [--only demo|monitored]

Drives the app with Pilot (``run_test``), as a user would. On ``plans/demo.toml``: the picker,
Enter, ``s``; the dashboard about 15 s into the run; then the results once the run completes
(``--quick``: stop it with ``x`` right after the mid-run pictures); each at 160x48 and 80x24.
On ``plans/monitored.toml`` (``monitored-160x48``): the dashboard about 24 s in, while the demo
target is stalled (``POST /_demo/stall``), so the target panel shows a health check down next to
the metric sparklines. Pictures are written as SVG into this directory, then as PNG through
headless Chromium when it is installed (``apt-get install chromium``; rsvg/cairosvg misdraw
braille chart lines and box drawing). Session files go to a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

SIZES = {"160x48": (160, 48), "80x24": (80, 24)}


async def wait_for(pilot, predicate, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("the app did not get there in time")
        await pilot.pause(0.1)


async def shoot(pilot, name: str, written: list[Path], sizes=SIZES) -> None:
    """Save the current screen at every size (back at 160x48 afterwards)."""
    for label, (w, h) in sizes.items():
        await pilot.resize_terminal(w, h)
        await pilot.pause(0.3)
        screen = pilot.app.screen
        if hasattr(screen, "tick_numbers"):  # draw at this size now, not at the next timer tick
            screen.tick_numbers()
            screen.tick_charts(force=True)
            await pilot.pause(0.2)
        filename = f"{name}-{label}.svg"
        pilot.app.save_screenshot(filename=filename, path=str(HERE))
        written.append(HERE / filename)
        print(f"  {filename}", flush=True)
    await pilot.resize_terminal(160, 48)
    await pilot.pause(0.3)


async def run(quick: bool) -> list[Path]:
    from perftui.ui.app import PerftuiApp
    from perftui.ui.screens.dashboard import DashboardScreen
    from perftui.ui.screens.results import ResultsScreen

    written: list[Path] = []
    app = PerftuiApp(plan_dirs=[(ROOT / "plans", "plans/")])
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_for(pilot, lambda: bool(getattr(app.screen, "entries", None)), 10)
            await pilot.pause(0.5)
            print("picker", flush=True)
            await shoot(pilot, "picker", written)

            await pilot.press("enter")  # the first entry is the demo quick start
            await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), 10)
            c = app.controller
            assert c.plan.target == "demo", "expected plans/demo.toml first in the picker"
            await wait_for(pilot, lambda: c.coord is not None, 30)  # the demo target is up
            await pilot.press("s")
            await wait_for(pilot, lambda: c.state == "running", 30)
            await wait_for(pilot, lambda: c.coord.session.elapsed() >= 8, 30)
            c.coord.annotate("screenshot run: 8 s in")
            await wait_for(pilot, lambda: c.coord.session.elapsed() >= 15, 30)
            print("dashboard, 15 s in", flush=True)
            await shoot(pilot, "dashboard", written)

            if quick:
                await pilot.press("x")
            total = sum(s.duration for s in c.coord.specs)
            await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen), total + 30)
            await pilot.pause(1.0)
            print("results", flush=True)
            await shoot(pilot, "results", written)
            await pilot.press("q")
    finally:
        if app.controller is not None:
            await app.controller.shutdown("screenshots done")
            app.controller.close_target()
    return written


async def run_monitored() -> list[Path]:
    import httpx

    from perftui.planload import load_plan
    from perftui.ui.app import PerftuiApp

    written: list[Path] = []
    app = PerftuiApp(load_plan(ROOT / "plans" / "monitored.toml"), start=True)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            c = app.controller
            await wait_for(pilot, lambda: c is not None and c.state == "running", 30)
            await wait_for(pilot, lambda: c.coord.session.elapsed() >= 20, 30)
            async with httpx.AsyncClient() as client:  # /health/detailed answers 503 while stalled
                await client.post(f"{c.target.url}/_demo/stall", json={"seconds": 6})
            await wait_for(pilot, lambda: c.coord.session.monitor.any_down, 10)
            await wait_for(pilot, lambda: c.coord.session.elapsed() >= 24, 10)
            app.clear_notifications()
            print("monitored, 24 s in, target stalled", flush=True)
            await shoot(pilot, "monitored", written, {"160x48": (160, 48)})
            await pilot.press("x")
            await wait_for(pilot, lambda: c.ended, 30)
    finally:
        if app.controller is not None:
            await app.controller.shutdown("screenshots done")
            app.controller.close_target()
    return written


def to_png(svg: Path) -> Path | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        return None
    m = re.search(r'viewBox="0 0 ([0-9.]+) ([0-9.]+)"', svg.read_text(encoding="utf-8"))
    w, h = (int(float(m.group(1))) + 1, int(float(m.group(2))) + 1) if m else (1600, 1000)
    png = svg.with_suffix(".png")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={w},{h}", f"--screenshot={png}", svg.as_uri()],
                   check=True, capture_output=True, timeout=120)
    return png


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="stop the run after the mid-run pictures")
    parser.add_argument("--no-png", action="store_true", help="SVG only")
    parser.add_argument("--only", choices=("demo", "monitored"), help="one set of pictures")
    args = parser.parse_args()
    svgs: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="perftui-shots-") as sessions:
        os.environ["PERFTUI_SESSIONS_DIR"] = sessions
        if args.only in (None, "demo"):
            svgs += asyncio.run(run(args.quick))
        if args.only in (None, "monitored"):
            svgs += asyncio.run(run_monitored())
    if not args.no_png:
        for svg in svgs:
            png = to_png(svg)
            if png is None:
                print("chromium not found: SVGs only (apt-get install chromium)")
                break
            print(f"  {png.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
