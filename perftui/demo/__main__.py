"""``python -m perftui.demo``: run the demo target in the foreground.

Prints ``perftui demo target listening on http://HOST:PORT`` once ready; exits 0 on
SIGINT/SIGTERM and 2 on bad flags.
"""

from __future__ import annotations

import argparse
import sys

from perftui.demo.latency import parse_latency
from perftui.demo.state import check_error_rate


def _latency(text: str) -> str:
    try:
        parse_latency(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _error_rate(text: str) -> float:
    try:
        return check_error_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, got {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m perftui.demo",
        description="Run the perftui demo target (HTTP, GraphQL, MCP and WebSocket endpoints).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=0, help="port to bind; 0 picks a free one (default 0)")
    parser.add_argument(
        "--latency",
        type=_latency,
        default="0ms",
        metavar="SPEC",
        help="added latency on loaded endpoints: 20ms, uniform:5ms:50ms, normal:20ms:5ms, exp:20ms, lognormal:20ms:0.5",
    )
    parser.add_argument(
        "--error-rate", type=_error_rate, default=0.0, metavar="F", help="fraction of loaded requests failing with 500"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from perftui.lifeline import watch_parent

    watch_parent()  # started by perftui: go when it goes
    try:
        from prometheus_client import disable_created_metrics

        disable_created_metrics()  # no *_created series in this process's /metrics
    except ImportError:  # pragma: no cover - older prometheus-client
        pass
    from perftui.demo.server import serve

    try:
        serve(args.host, args.port, args.latency, args.error_rate)
    except OSError as exc:
        print(f"perftui demo: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a signal that arrived before our handlers were installed
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
