"""A panel that redraws only when what it shows has changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.widgets import Static


class LivePanel(Static):
    """``show(key, build)``: ``build()`` runs, and the panel repaints, only when ``key`` differs
    from the last one. Keys are cheap tuples of the numbers shown; building a Rich renderable and
    repainting is what costs."""

    FIXED_SIZE = False
    """Subclasses whose size never depends on their content skip the layout pass on update."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._key: Any = object()

    def show(self, key: Any, build: Callable[[], Any]) -> bool:
        if key == self._key:
            return False
        self._key = key
        self.update(build(), layout=not self.FIXED_SIZE)
        return True
