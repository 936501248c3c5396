"""k6 WebSocket code -> perftui WebSocket steps: ``ws.connect(url, params, socket => ...)`` becomes
a ``ws_connect`` step, ``socket.send`` a ``ws_send``, ``socket.setTimeout(fn, ms)`` a ``ws_hold``
followed by ``fn``'s steps, ``socket.close()`` a ``ws_close``; ``socket.on("open", fn)`` runs
``fn``'s steps. Mixed into the k6 converter (``perftui.importers.k6``), whose expression evaluator
(``ev``), statement walker (``block``) and ``params`` translation it uses.
"""

from __future__ import annotations

import re
from typing import Any

from perftui.importers.common import seconds_text
from perftui.importers.k6_options import JsonBody, Undef, Untranslatable


class WsMixin:
    """The WebSocket part of the k6 converter."""

    def ws_url(self, url: str) -> str:
        """ws://host:port/path on the target's host:port -> /path (so --target moves it too)."""
        m = re.match(r"wss?://([^/?#]+)(.*)\Z", url)
        if not m or not self.targets:
            return url
        t = self.targets[0]
        d = re.fullmatch(r"\$\{[A-Za-z_]\w*:?-(.*)\}", t)
        t = d.group(1) if d else t
        host = re.match(r"https?://([^/?#]+)", t)
        if host and host.group(1) == m.group(1):
            return m.group(2) or "/"
        return url

    def ws_connect(self, e, where: tuple, steps: list[dict], local: dict) -> None:
        sw = self.swhere(where, steps)
        args = e.arguments
        if not args:
            self.todo(sw, e)
            return
        try:
            url = self.ev(args[0], local, sw)
        except Untranslatable:
            url = None
        if isinstance(url, Undef):
            url = "${" + url.name + "}"
        if not isinstance(url, str):
            self.todo(sw, e, "a WebSocket URL perftui cannot build before the run")
            return
        step: dict[str, Any] = {"ws_connect": self.ws_url(url)}
        fn = args[-1] if args[-1].type in ("FunctionExpression", "ArrowFunctionExpression") else None
        if len(args) >= 2 and args[1] is not fn:
            self.params(args[1], step, sw, local)
            step.pop("name", None)
            step.pop("timeout", None)
        self.conv.locate(sw, self.line(e))
        steps.append(step)
        if fn is None or not fn.params or fn.params[0].type != "Identifier":
            self.conv.todo(sw, "", "ws.connect without a callback: nothing is sent", self.line(e))
            return
        self.block(fn.body, where, steps, dict(local), ws=fn.params[0].name)

    def socket_call(self, method: str, e, where: tuple, steps: list[dict], local: dict, ws: str) -> bool:
        sw = self.swhere(where, steps)
        args = e.arguments
        if method == "send" and len(args) == 1:
            try:
                msg = self.ev(args[0], local, sw)
            except Untranslatable:
                return False
            msg = msg.value if isinstance(msg, JsonBody) else msg
            if isinstance(msg, Undef) or msg is None:
                return False
            self.conv.locate(sw, self.line(e))
            steps.append({"ws_send": msg})
            return True
        if method == "close" and not args:
            steps.append({"ws_close": True})
            return True
        if method == "on" and len(args) == 2 and args[0].type == "Literal" and args[0].value == "open" and \
                args[1].type in ("FunctionExpression", "ArrowFunctionExpression"):
            self.block(args[1].body, where, steps, local, ws)
            return True
        if method == "setTimeout" and len(args) == 2:
            fn, ms = args[0], args[1]
            try:
                delay = self.ev(ms, local, sw)
            except Untranslatable:
                return False
            if fn.type in ("FunctionExpression", "ArrowFunctionExpression") and isinstance(delay, (int, float)):
                steps.append({"ws_hold": seconds_text(delay / 1000.0)})
                self.conv.note(sw, f"socket.setTimeout(..., {delay}): the connection is held {delay / 1000:g} s")
                self.block(fn.body, where, steps, local, ws)
                return True
        return False
