"""``--junit FILE``: the run's thresholds as a JUnit XML test suite, one testcase per threshold, for
CI systems that show test results (and a testcase for the baseline comparison when there is one).
Called by ``perftui.report``."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def render(doc: dict, comparison: dict | None = None) -> bytes:
    suite = ET.Element("testsuite", name=f"perftui {doc.get('plan_name')}", timestamp=str(doc.get("started_at") or ""),
                       time=f"{float(doc.get('duration_s') or 0):.3f}")
    failures = 0
    cases = 0
    for t in doc.get("thresholds") or []:
        if not isinstance(t, dict):
            continue
        cases += 1
        case = ET.SubElement(suite, "testcase", classname="perftui.thresholds", name=str(t.get("expr")), time="0")
        value = t.get("value")
        text = f"{t.get('expr')}: " + (str(t.get("detail")) if t.get("detail") else f"value {value}")
        if not t.get("ok"):
            failures += 1
            ET.SubElement(case, "failure", message=text, type="threshold").text = text
        else:
            ET.SubElement(case, "system-out").text = text
    if comparison is not None:
        cases += 1
        base = comparison.get("baseline") or {}
        case = ET.SubElement(suite, "testcase", classname="perftui.baseline",
                             name=f"no regression at {comparison.get('fail_on')} against {base.get('id')}", time="0")
        worse = [r for r in comparison.get("rows") or [] if r.get("direction") == "worse" and r.get("level") != "none"]
        text = "; ".join(f"{r['scope']} {r['metric']} {r['change_pct']:+.1f}% ({r['level']})" for r in worse
                         if r.get("change_pct") is not None) or "no regression"
        if comparison.get("failed"):
            failures += 1
            ET.SubElement(case, "failure", message=text, type="regression").text = text
        else:
            ET.SubElement(case, "system-out").text = text
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    root = ET.Element("testsuites", name="perftui", tests=str(cases), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")
