"""Command line: ``perftui [run|quick|validate|import|demo] ...``.

Exit codes: 0 ok, 1 a threshold failed, 2 bad input (plan, flags), 130 interrupted (results
still written). User errors print a message, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from perftui import __version__
from perftui.errors import UserError
from perftui.units import parse_duration, printable, printable_lines

EPILOG = "exit codes: 0 ok · 1 a threshold failed · 2 bad input · 130 interrupted (session still written)"


ENV_EPILOG = ("every option can also be set in the environment as PERFTUI_<OPTION> (--rate: PERFTUI_RATE, "
              "--out: PERFTUI_OUT, --headless: PERFTUI_HEADLESS=1, --header: PERFTUI_HEADER, one per line); "
              "a flag on the command line wins · " + EPILOG)
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _env_help(p: argparse.ArgumentParser) -> None:
    """Say each option's variable in ``--help`` (the values are read by ``_env_defaults``)."""
    for action in p._actions:
        if action.option_strings and action.help != argparse.SUPPRESS and action.dest != "help":
            action.help = (action.help or "") + f" [env PERFTUI_{action.dest.upper()}]"


def _env_defaults(p: argparse.ArgumentParser) -> set[str]:
    """Options from ``PERFTUI_<DEST>`` variables (k6's K6_*, Locust's LOCUST_*): the variable becomes
    the option's default, so a flag given on the command line wins. A bad value is exit 2 naming
    the variable. Returns the options set from the environment."""
    found = set()
    for action in p._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or action.dest == "help":
            continue
        var = "PERFTUI_" + action.dest.upper()
        raw = os.environ.get(var)
        if raw is None:
            continue
        found.add(action.dest)
        if isinstance(action, argparse._StoreTrueAction):
            word = raw.strip().lower()
            if word not in TRUE_WORDS + FALSE_WORDS:
                p.error(f"{var}={raw!r}: expected 1/true/yes/on or 0/false/no/off")
            action.default = word in TRUE_WORDS
            continue
        values = [v for v in raw.splitlines() if v.strip()] if isinstance(action, argparse._AppendAction) else [raw]
        parsed = []
        for v in values:
            try:
                value = action.type(v) if action.type else v
            except (argparse.ArgumentTypeError, ValueError) as exc:
                p.error(f"{var}={v!r}: {exc}")
            if action.choices is not None and value not in action.choices:
                p.error(f"{var}={v!r}: expected one of {', '.join(map(str, action.choices))}")
            parsed.append(value)
        action.default = parsed if isinstance(action, argparse._AppendAction) else parsed[0]
    return found


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with one clear line (and the usage) — argparse's default,
    kept explicit because the exit code is part of perftui's contract."""

    def error(self, message: str):  # noqa: D401
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


# Far above what a use needs, low enough that a typo is refused instead of starting 100,000
# worker processes or redrawing the dashboard a million times a second.
MAX_WORKERS = 256
MAX_REFRESH_HZ = 30.0
# --rate and --vus: the plan loader's limits (planload.MAX_RATE, MAX_VUS), checked here too so the
# message names the flag.


def _positive_float(name: str, most: float = float("inf")):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{name} must be greater than 0, got {text!r}")
        if not value <= most:
            raise argparse.ArgumentTypeError(f"{name} must be at most {most:g}, got {text!r}")
        return value

    return parse


def _positive_int(name: str, most: int = MAX_WORKERS):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be at least 1, got {text!r}")
        if value > most:
            raise argparse.ArgumentTypeError(f"{name} must be at most {most}, got {text!r}")
        return value

    return parse


def _duration(text: str) -> str:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration must be greater than 0, got {text!r}")
    return text


def _header(text: str) -> str:
    if ":" not in text or not text.split(":", 1)[0].strip():
        raise argparse.ArgumentTypeError(f"header must look like 'Name: value', got {text!r}")
    return text


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--headless", action="store_true", help="no dashboard: progress lines and a summary (default without a TTY)")
    p.add_argument("--out", metavar="FILE", help="write the session JSON here (default: the sessions directory)")
    p.add_argument("--workers", type=_positive_int("--workers"), metavar="N",
                   help="worker processes (default: CPU cores minus one, at least one; with --cluster one per CPU of the cluster)")
    p.add_argument("--rate", type=_positive_float("--rate", 10_000_000.0), metavar="N",
                   help="replace the phases with one open-model phase of N arrivals/s")
    p.add_argument("--vus", type=_positive_int("--vus", 1_000_000), metavar="N",
                   help="replace the phases with one closed-model phase of N virtual users")
    p.add_argument("--duration", type=_duration, metavar="D", help="length of that phase: 30s, 5m, 1h (default 30s)")
    p.add_argument("--start", action="store_true", help="dashboard: start the run at once instead of waiting for 's'")
    p.add_argument("--refresh", type=_positive_float("--refresh", MAX_REFRESH_HZ), default=4.0, metavar="HZ",
                   help="dashboard refresh rate (default 4; 1 suits slow SSH links)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the workers on a Ray cluster's nodes: ray://HOST:PORT, HOST:PORT or auto "
                        "(needs pip install 'perftui[cluster]'; docs/cluster.md)")
    p.add_argument("--detach", action="store_true",
                   help="run in the background (no TTY needed); prints the session id: perftui attach ID")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--session-id", help=argparse.SUPPRESS)
    _add_sessions_dir(p)
    p.add_argument("--baseline", metavar="NAME",
                   help="when the run ends, compare it with this saved baseline (perftui baseline save); "
                        "exit 1 when a regression reaches --fail-on")
    _add_compare_options(p)
    _add_report_outputs(p)
    p.add_argument("--metrics-port", type=_port, metavar="PORT",
                   help="serve perftui's live metrics for Prometheus on 127.0.0.1:PORT/metrics while the run goes")
    p.add_argument("--reveal-secrets", action="store_true",
                   help="do not redact ${ENV} values and Authorization/Cookie headers in the session file")


# ---- perftui find-limit: each flag sets one key of [find_limit] (perftui.plan.limit.FindLimit)

FIND_LIMIT_FLAGS = ("start_rate", "max_rate", "step_factor", "step_size", "step_duration", "settle", "precision",
                    "max_steps", "p99", "error_rate", "late_rate", "recovery_rate", "recovery")


def _number(name: str):
    def parse(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None

    return parse


def _fraction(name: str):
    """``0.01`` or ``1%``."""
    def parse(text: str) -> float:
        try:
            return float(text[:-1]) / 100 if text.strip().endswith("%") else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a fraction (0.01) or a percentage (1%), got {text!r}") from None

    return parse


def _add_find_limit_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the search (each sets the key of the same name in [find_limit])")
    g.add_argument("--start-rate", type=_number("--start-rate"), metavar="N", help="arrivals/s of the first step (default 10)")
    g.add_argument("--max-rate", type=_number("--max-rate"), metavar="N", help="highest rate tried (default 10000)")
    g.add_argument("--step-factor", type=_number("--step-factor"), metavar="F", help="raise each step ×F (default 1.5)")
    g.add_argument("--step-size", type=_number("--step-size"), metavar="N", help="raise each step by N/s instead")
    g.add_argument("--step-duration", metavar="D", help="how long each step is measured (default 10s)")
    g.add_argument("--settle", metavar="D", help="time at a new rate before it is measured (default 2s)")
    g.add_argument("--precision", type=_fraction("--precision"), metavar="F",
                   help="stop narrowing when broke/held is within this (default 5%%)")
    g.add_argument("--max-steps", type=_positive_int("--max-steps", 200), metavar="N", help="most steps (default 30)")
    g.add_argument("--p99", metavar="D", help="a step breaks when its p99 is over this (default 1s)")
    g.add_argument("--error-rate", type=_fraction("--error-rate"), metavar="F",
                   help="... when more of its requests fail (default 1%%)")
    g.add_argument("--late-rate", type=_fraction("--late-rate"), metavar="F",
                   help="... when more of its arrivals start late or are dropped (default 1%%)")
    g.add_argument("--recovery-rate", type=_number("--recovery-rate"), metavar="N",
                   help="rate after a step that broke (default half the highest rate that held)")
    g.add_argument("--recovery", metavar="D", help="how long to wait for the target to recover (default 30s)")


def _find_limit_settings(args) -> dict:
    return {key: ("--" + key.replace("_", "-"), getattr(args, key)) for key in FIND_LIMIT_FLAGS
            if getattr(args, key, None) is not None}


def _add_sessions_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sessions-dir", metavar="DIR",
                   help="where sessions are journaled and written (default $PERFTUI_SESSIONS_DIR or "
                        "~/.local/share/perftui/sessions)")


def _levels(text: str):
    from perftui.compare import parse_levels

    try:
        return parse_levels(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"--alpha must be a number between 0 and 1, got {text!r}")
    return value


def _non_negative_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"--min-change-ms must be a number ≥ 0, got {text!r}")
    return value


def _add_compare_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fail-on", choices=("minor", "major", "critical", "never"), default="major",
                   help="exit 1 when a regression reaches this level (default major)")
    p.add_argument("--levels", type=_levels, default=(10.0, 20.0, 50.0), metavar="MINOR,MAJOR,CRITICAL",
                   help="change sizes in %% of the levels (default 10,20,50)")
    p.add_argument("--alpha", type=_alpha, default=0.05, metavar="P",
                   help="significance level: a change with a larger p-value is noise, shown ~ (default 0.05)")
    p.add_argument("--min-change-ms", type=_non_negative_ms, default=1.0, metavar="MS",
                   help="latency changes smaller than this are never classified (default 1)")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be a whole number from 1 to 65535, got {text!r}")
    return value


def _add_report_outputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report (charts, tables)")
    p.add_argument("--junit", metavar="FILE", help="write the thresholds as JUnit XML (one testcase each)")
    p.add_argument("--csv", metavar="DIR", help="write stats.csv, history.csv and errors.csv into DIR")


def _add_compare_commands(sub) -> None:
    cmp = sub.add_parser("compare", help="compare two sessions: changes, their significance, a verdict",
                         epilog="exit codes: 0 no regression at --fail-on · 1 a regression at --fail-on or worse · 2 bad input")
    cmp.add_argument("baseline", metavar="BASELINE", help="session file, directory or id")
    cmp.add_argument("current", metavar="CURRENT", help="session file, directory or id")
    cmp.add_argument("--json", action="store_true", help="print the comparison as a JSON document")
    _add_compare_options(cmp)
    _add_sessions_dir(cmp)

    rep = sub.add_parser("report", help="write reports of a session: HTML, JUnit XML, CSV",
                         epilog="exit codes: 0 written · 2 bad input (session, paths)")
    rep.add_argument("session", metavar="SESSION", help="session file, directory or id")
    _add_report_outputs(rep)
    rep.add_argument("--baseline", metavar="NAME|SESSION",
                     help="add the comparison with a saved baseline (or a session file, directory or id)")
    _add_compare_options(rep)
    _add_sessions_dir(rep)

    base = sub.add_parser("baseline", help="named baselines: save a session as one, list them")
    bsub = base.add_subparsers(dest="baseline_command", metavar="ACTION", parser_class=_Parser, required=True)
    save = bsub.add_parser("save", help="keep a session as the baseline NAME (replaces an older one)")
    save.add_argument("name", metavar="NAME")
    save.add_argument("session", metavar="SESSION", help="session file, directory or id")
    _add_sessions_dir(save)
    bls = bsub.add_parser("ls", help="list the saved baselines")
    _add_sessions_dir(bls)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="perftui", description="Live load tests in the terminal: open a plan picker, or run a plan.",
                     epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"perftui {__version__}")
    parser.add_argument("--refresh", type=_positive_float("--refresh", MAX_REFRESH_HZ), default=4.0, metavar="HZ",
                        help="dashboard refresh rate (default 4)")
    parser.add_argument("--workers", type=_positive_int("--workers"), metavar="N", help="worker processes")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="run a plan (dashboard with a TTY, headless without)", epilog=ENV_EPILOG)
    run.add_argument("plan", metavar="PLAN", help="plan file (TOML)")
    run.add_argument("--target", metavar="URL", help="override the plan's target (a URL, or 'demo')")
    run.add_argument("--profile", metavar="NAME", help="apply the plan's [profiles.NAME] (light, stress, ...)")
    _add_run_options(run)
    _env_help(run)

    quick = sub.add_parser("quick", help="load one URL, no plan file needed", epilog=ENV_EPILOG)
    quick.add_argument("url", metavar="URL")
    quick.add_argument("--method", default="GET", metavar="M", help="HTTP method (default GET)")
    quick.add_argument("--header", "-H", action="append", default=[], type=_header, metavar="K:V",
                       help="request header, repeatable")
    quick.add_argument("--body", metavar="TEXT", help="request body (use @file to read a file)")
    _add_run_options(quick)
    _env_help(quick)
    limit = sub.add_parser("find-limit", help="find the target's breaking point: raise the rate step by step until it breaks",
                           epilog="exit codes: 0 a limit was found · 1 none found (every step held up to --max-rate, or "
                                  "perftui itself was the bottleneck) · 2 bad input · 130 interrupted")
    limit.add_argument("plan", metavar="PLAN", help="plan file (TOML); its [find_limit] section, if any, gives the defaults")
    limit.add_argument("--target", metavar="URL", help="override the plan's target (a URL, or 'demo')")
    _add_run_options(limit)
    for action in limit._actions:  # the search chooses the rates: refused with a message, not offered
        if action.dest in ("rate", "vus", "duration"):
            action.help = argparse.SUPPRESS
    _add_find_limit_options(limit)
    _env_help(limit)
    parser.set_defaults(_run_parsers={"run": run, "quick": quick, "find-limit": limit})

    val = sub.add_parser("validate", help="check a plan; exit 0 with a summary or 2 with every problem")
    val.add_argument("plan", metavar="PLAN")

    imp = sub.add_parser("import", help="translate an Artillery YAML or k6 script into a plan (TOML)")
    imp.add_argument("file", metavar="FILE", help="Artillery .yml/.yaml or k6 .js")
    imp.add_argument("-o", "--output", metavar="PLAN.toml", help="write here (default: standard output)")

    ls = sub.add_parser("ls", help="list running and finished sessions")
    _add_sessions_dir(ls)

    attach = sub.add_parser("attach", help="open the dashboard on a running (detached) session")
    attach.add_argument("id", nargs="?", metavar="ID", help="session id or a unique prefix (default: the newest running)")
    attach.add_argument("--refresh", type=_positive_float("--refresh", MAX_REFRESH_HZ), default=4.0, metavar="HZ")
    attach.add_argument("--headless", action="store_true", help="print progress lines instead of the dashboard")
    _add_sessions_dir(attach)

    recover = sub.add_parser("recover", help="rebuild the session JSON of a run that died (kill -9, crash)")
    recover.add_argument("path", metavar="PATH", help="session directory, or a session id")
    recover.add_argument("--out", metavar="FILE", help="also write the document here")
    _add_sessions_dir(recover)

    _add_compare_commands(sub)

    opn = sub.add_parser("open", help="open a saved session in the results view (a cursor over its timeline)")
    opn.add_argument("session", metavar="ID|DIR|FILE", help="session id (or unique prefix), session directory (its name or path), or document")
    _add_sessions_dir(opn)

    schema = sub.add_parser("schema", help="print the JSON schema of the plan format (for editors)")
    schema.add_argument("-o", "--output", metavar="FILE", help="write here (default: standard output)")

    demo = sub.add_parser("demo", help="run the embedded demo target in the foreground")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8088, help="port (default 8088; 0 picks a free one)")
    demo.add_argument("--latency", default="0ms", metavar="D",
                      help="added latency: 20ms, uniform:5ms:50ms, normal:20ms:5ms, exp:20ms, lognormal:20ms:0.5")
    demo.add_argument("--error-rate", type=float, default=0.0, metavar="F", help="fraction of /api requests answered 500")
    return parser


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty() and os.environ.get("CI") is None


def _load_plan(path, profile: str | None = None):
    """A TOML plan (with ``[profiles.<profile>]`` applied), or an Artillery/k6 script converted
    in memory (``perftui.importers``)."""
    from perftui.importers import is_foreign, load_foreign
    from perftui.planload import load_plan

    if is_foreign(path):
        if profile:
            raise UserError(f"{path}: --profile {profile}: profiles are [profiles.NAME] sections of a TOML plan;"
                            " convert the script with perftui import first")
        return load_foreign(path)
    return load_plan(path, profile=profile)


def _load(args):
    from perftui.planload import apply_overrides, quick_plan

    if args.command == "quick":
        body = args.body
        if body and body.startswith("@"):
            try:
                with open(body[1:], encoding="utf-8") as f:
                    body = f.read()
            except OSError as exc:
                raise UserError(f"--body {args.body}: cannot read file: {exc.strerror}") from None
        rate = args.rate
        if rate is None and args.vus is None:
            rate = 10.0
        return quick_plan(args.url, rate=rate, vus=args.vus, duration=args.duration or "30s",
                          method=args.method, headers=args.header, body=body)
    loaded = _load_plan(args.plan, getattr(args, "profile", None))
    if args.command == "find-limit":
        from perftui.planload import with_find_limit

        if args.rate or args.vus or args.duration:
            raise UserError("find-limit chooses the rates itself: use --start-rate, --max-rate and --step-duration "
                            "instead of --rate, --vus and --duration")
        if args.target:
            loaded = apply_overrides(loaded, target=args.target)
        return with_find_limit(loaded, _find_limit_settings(args))
    if args.target or args.rate or args.vus or args.duration:
        loaded = apply_overrides(loaded, target=args.target, rate=args.rate, vus=args.vus, duration=args.duration)
    return loaded


def _run(args) -> int:
    from perftui.runtime import check_out_path, check_sessions_dir

    if args.rate is not None and args.vus is not None:
        raise UserError("--rate and --vus exclude each other: pick the open model (--rate) or the closed model (--vus)")
    loaded = _load(args)
    check_out_path(args.out)
    check_sessions_dir()
    from perftui.report import end_of_run_hook

    after = end_of_run_hook(args)
    if args.cluster:
        from perftui.run import cluster

        cluster.check(args.cluster)  # Ray installed, the address answers: else exit 2 now
        if not args.detach:  # a detached run connects in its own process
            cluster.connect(args.cluster)
        cluster.use(args.cluster)
    if args.detach:
        from perftui.sessions import detach

        return detach(loaded, args.argv)
    port = args.metrics_port or _plan_metrics_port(loaded)
    if port:
        from perftui.export.prometheus import MetricsExporter

        exporter = MetricsExporter(port)  # a session observer: it follows the run the viewer makes
        exporter.start()
        try:
            return _run_viewer(args, loaded, after, (exporter,))
        finally:
            exporter.stop()
    return _run_viewer(args, loaded, after)


def _plan_metrics_port(loaded) -> int | None:
    output = getattr(loaded.plan, "output", None)
    port = getattr(output, "metrics_port", None) if output is not None else None
    if port is not None and not 1 <= port <= 65535:
        raise UserError(f"{loaded.path or 'plan'}: [output] metrics_port: expected a port from 1 to 65535, got {port}")
    return port


def _run_viewer(args, loaded, after, observers: tuple = ()) -> int:
    if args.headless or args.serve or not _interactive() or not _has_dashboard():
        from perftui.headless import run_headless

        return run_headless(loaded, workers=args.workers, out=args.out, reveal_secrets=args.reveal_secrets,
                            serve=args.serve, session_id=args.session_id, after=after, observers=observers)
    from perftui.ui.app import run_dashboard

    extra: dict = {"observers": observers}
    if args.baseline:  # already checked by end_of_run_hook: an unknown name stopped the command
        from perftui.baselines import load_baseline, p95_series

        extra.update(baseline_p95=p95_series(load_baseline(args.baseline)), baseline_name=args.baseline)
    if after is None:
        return run_dashboard(loaded, workers=args.workers, out=args.out, reveal_secrets=args.reveal_secrets,
                             start=args.start, refresh=args.refresh, **extra)
    from perftui.sessions import after_dashboard

    return after_dashboard(lambda: run_dashboard(loaded, workers=args.workers, out=args.out,
                                                 reveal_secrets=args.reveal_secrets, start=args.start,
                                                 refresh=args.refresh, **extra), args.out, after)


def _has_dashboard() -> bool:
    try:
        import perftui.ui.app  # noqa: F401
    except ImportError:
        return False
    return True


def _validate(args) -> int:
    from perftui.plan import shown_target
    from perftui.run.clock import phase_specs
    from perftui.plan import is_benchmark

    loaded = _load_plan(args.plan)
    plan = loaded.plan
    specs = phase_specs(plan.phases)
    total = sum(s.duration for s in specs)
    steps = sum(len(s.steps) for s in plan.scenarios)
    if plan.find_limit is not None:
        from perftui.run.limit import plan_line

        load = plan_line(plan)
    elif is_benchmark(plan):
        load = f"benchmark of {len(plan.scenarios)} operation(s)"
    else:
        load = f"{len(specs)} phase(s), {total:.0f}s"
    print(f"{printable(args.plan)}: ok · '{printable(plan.name)}' → {printable(shown_target(plan))} · {load} · "
          f"{len(plan.scenarios)} scenario(s), {steps} step(s) · {len(plan.thresholds)} threshold(s)"
          + (f" · {len(plan.slos)} SLO(s)" if plan.slos else ""))
    from perftui.planload.datacheck import data_summary

    for line in data_summary(plan):
        print(printable(f"  data {line}"))
    if plan.profiles:
        from perftui.planload.profilelist import check_profiles

        print(printable_lines(check_profiles(args.plan, plan)))
    return 0


def _demo(args) -> int:
    from perftui.demo.__main__ import main as demo_main

    argv = ["--host", args.host, "--port", str(args.port), "--latency", args.latency, "--error-rate", str(args.error_rate)]
    return demo_main(argv) or 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command in ("run", "quick", "find-limit"):
        from_env = _env_defaults(args._run_parsers[args.command])
        if from_env:
            args = parser.parse_args(argv)  # again, now with the environment's defaults
            # a flag wins over the environment: --vus on the command line beats PERFTUI_RATE
            for mine, other in (("rate", "vus"), ("vus", "rate")):
                if mine in from_env and other not in from_env and getattr(args, other) is not None:
                    setattr(args, mine, None)
    args.argv = argv
    if getattr(args, "sessions_dir", None):
        os.environ["PERFTUI_SESSIONS_DIR"] = os.path.abspath(args.sessions_dir)
    try:
        if args.command is None:
            if not _interactive() or not _has_dashboard():
                parser.print_help()
                return 0
            from perftui.runtime import check_sessions_dir
            from perftui.ui.app import run_picker

            check_sessions_dir()

            return run_picker(workers=args.workers, refresh=args.refresh)
        if args.command in ("run", "quick", "find-limit"):
            return _run(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "import":
            from perftui.importers import cmd_import

            return cmd_import(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "schema":
            from perftui.schema import cmd_schema

            return cmd_schema(args)
        if args.command == "report":
            from perftui.report import cmd_report

            return cmd_report(args)
        if args.command == "baseline":
            from perftui.baselines import cmd_baseline

            return cmd_baseline(args)
        if args.command in ("ls", "attach", "recover", "compare", "open"):
            from perftui import sessions

            return getattr(sessions, f"cmd_{args.command}")(args)
    except UserError as exc:
        text = printable_lines(str(exc))  # messages quote what the user gave, control characters too
        print(f"perftui: {text}" if "\n" not in text else f"perftui: invalid input:\n{text}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


def entry() -> None:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (perftui ls | head): end quietly with SIGPIPE's status, as other
        # Unix tools do; output still buffered goes to /dev/null instead of a second error at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            try:
                os.dup2(devnull, stream.fileno())
            except (OSError, ValueError):
                pass
        code = 128 + 13
    sys.exit(code)
