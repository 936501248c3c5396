"""``${ENV}`` substitution in plan values (``${NAME}``, ``${NAME:-default}``, ``${NAME-default}``,
``$${`` for a literal): records where each value came from, so the loader can coerce a value
standing alone (``"${VUS}"`` -> 10) and ``redacted_plan`` can mask what came from the environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


from perftui.planload.source import Path_

# ---- ${ENV} substitution -------------------------------------------------------------------

_ENV_START = re.compile(r"\$\$\{|\$\{")
_ENV_REF = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?\Z", re.DOTALL)


class _Substituter:
    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[tuple[Path_, str]] = []
        self.secret_at: dict[Path_, list[str]] = {}
        self.full_refs: set[Path_] = set()
        self.failed: set[Path_] = set()

    def walk(self, value: Any, path: Path_) -> Any:
        if isinstance(value, str):
            return self.string(value, path) if "${" in value else value
        if isinstance(value, dict):
            return {k: self.walk(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, path + (i,)) for i, v in enumerate(value)]
        return value

    def string(self, text: str, path: Path_) -> str:
        out: list[str] = []
        pos = 0
        refs = 0
        for m in _ENV_START.finditer(text):
            if m.start() < pos:
                continue
            out.append(text[pos : m.start()])
            if m.group() == "$${":
                out.append("${")
                pos = m.end()
                continue
            close = text.find("}", m.end())
            if close < 0:
                self.fail(path, "'${' is not closed: write ${NAME} or ${NAME:-default} (or $${ for a literal ${)")
                return text
            inner = text[m.end() : close]
            ref = _ENV_REF.match(inner)
            if not ref:
                self.fail(
                    path,
                    f"${{{inner}}} is not a valid environment reference: expected ${{NAME}} or ${{NAME:-default}}"
                    " (or $${ for a literal ${)",
                )
                return text
            name, op, default = ref.group(1), ref.group(2), ref.group(3)
            value = self.env.get(name)
            if value is not None and not (op == ":-" and value == ""):
                out.append(value)
                if value:
                    self.secret_at.setdefault(path, []).append(value)
            elif op is not None:
                out.append(default or "")
            else:
                self.fail(
                    path,
                    f"environment variable {name} is not set (used as ${{{name}}}); set it, or give a default:"
                    f" ${{{name}:-value}}",
                )
                return text
            refs += 1
            pos = close + 1
        out.append(text[pos:])
        result = "".join(out)
        if refs == 1 and text.startswith("${") and text.endswith("}") and text.find("}") == len(text) - 1:
            self.full_refs.add(path)
        return result

    def fail(self, path: Path_, message: str) -> None:
        self.problems.append((path, message))
        self.failed.add(path)


