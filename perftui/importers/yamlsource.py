"""YAML that remembers where things are: PyYAML's composer, with every mapping and list keeping
the line of each key and item, so that problems in an Artillery script name ``file:line``.
Used by ``perftui.importers.artillery``.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from perftui.errors import PlanError, Problem

class LDict(dict):
    line: int | None = None
    key_lines: dict


class LList(list):
    line: int | None = None
    item_lines: list


def load_yaml(text: str, file: str) -> Any:
    """Parse YAML into dicts/lists that remember the line of each key and item."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _build(loader, node, 0)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = e.problem or "syntax error"
        if e.context:
            what = f"{e.context}, {what}"
        raise PlanError([Problem(file, "", f"invalid YAML: {what}", mark.line + 1 if mark else None)]) from None
    except yaml.YAMLError as e:
        raise PlanError([Problem(file, "", f"invalid YAML: {e}")]) from None
    except RecursionError:
        raise PlanError([Problem(file, "", "the YAML is nested too deeply")]) from None
    finally:
        loader.dispose()


def _build(loader, node, depth: int) -> Any:
    import yaml

    if depth > 64:
        raise PlanError([Problem(loader.name, "", "the YAML is nested too deeply (or refers to itself)",
                                 node.start_mark.line + 1)])
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out = LDict()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        for k, v in node.value:
            key = loader.construct_object(k, deep=True) if isinstance(k, yaml.ScalarNode) else str(k.value)
            key = _scalar(key)
            key = key if isinstance(key, str) else str(key).lower() if isinstance(key, bool) else str(key)
            out[key] = _build(loader, v, depth + 1)
            out.key_lines[key] = k.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        out = LList()
        out.line = node.start_mark.line + 1
        out.item_lines = []
        for item in node.value:
            out.append(_build(loader, item, depth + 1))
            out.item_lines.append(item.start_mark.line + 1)
        return out
    return _scalar(loader.construct_object(node, deep=True))


def _scalar(value: Any) -> Any:
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def key_line(d: Any, key: str) -> int | None:
    if isinstance(d, LDict):
        return d.key_lines.get(key, d.line)
    return None


def item_line(lst: Any, i: int) -> int | None:
    if isinstance(lst, LList) and i < len(lst.item_lines):
        return lst.item_lines[i]
    return getattr(lst, "line", None)
