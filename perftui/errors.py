"""User-facing errors. Anything raised as a ``UserError`` is printed without a traceback and
ends the program with exit code 2 (see ``cli.main``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where (file, key path, line) and what was expected."""

    file: str
    path: str  # TOML words: "phases[2].arrival_rate", "" for the whole file
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.path:
            return f"{where}: {self.path}: {self.message}"
        return f"{where}: {self.message}"


class UserError(Exception):
    """Bad input from the user (flags, files). Exit code 2, no traceback."""

    exit_code = 2


class PlanError(UserError):
    """A plan failed to load or validate; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
