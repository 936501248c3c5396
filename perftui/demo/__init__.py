"""The embedded demo target: a local HTTP/WebSocket server that example plans run against.

* ``python -m perftui.demo`` / ``perftui demo`` runs it in the foreground.
* :func:`launch` starts it in a subprocess and returns a :class:`DemoProcess` (``.url``,
  ``.port``, ``.pid``, ``.stop()``; also a context manager).
* :func:`create_app` builds the Starlette app for in-process use.
* :func:`parse_latency` parses the ``--latency`` spec (``20ms``, ``uniform:5ms:50ms``, ...).

The heavier modules (Starlette, graphql-core, prometheus-client) are imported lazily, so
``from perftui.demo import launch`` stays cheap for the load generator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perftui.demo.latency import Latency, parse_latency

if TYPE_CHECKING:  # pragma: no cover
    from perftui.demo.process import DemoProcess, launch
    from perftui.demo.server import create_app, serve

__all__ = ["DemoProcess", "Latency", "create_app", "launch", "parse_latency", "serve"]

_LAZY = {
    "DemoProcess": "perftui.demo.process",
    "launch": "perftui.demo.process",
    "create_app": "perftui.demo.server",
    "serve": "perftui.demo.server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'perftui.demo' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
