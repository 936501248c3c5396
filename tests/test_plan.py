"""Plan loading and validation (perftui.planload): the shipped plans, broken plans with the exact
message / key path / line each must produce, env substitution, overrides, quick plans,
redaction, and fuzzing that only ever yields PlanError."""

from __future__ import annotations

import os
import re
import string
import tempfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec import UNSET

from perftui.errors import PlanError, Problem, UserError
from perftui.plan import HttpStep, Plan, ThinkStep, duration_s, endpoint_name, is_benchmark, phase_model, threshold_expr
from perftui.planload import (
    LoadedPlan,
    apply_overrides,
    format_path,
    load_plan,
    plan_from_dict,
    quick_plan,
    redacted_plan,
)
from perftui.template import compile_json, compile_template
from perftui.thresholds import parse_threshold

ROOT = Path(__file__).resolve().parent.parent
PLANS = sorted((ROOT / "plans").glob("*.toml"))
BAD = sorted((ROOT / "tests" / "plans_bad").glob("*.toml"))
EXPECT = re.compile(r"^# expect: (\S+) (\S+) :: (.*)$")


def minimal(**over) -> dict:
    data = {
        "target": "demo",
        "phases": [{"duration": "10s", "arrival_rate": 5}],
        "scenarios": [{"steps": [{"url": "/health"}]}],
    }
    data.update(over)
    return data


def problems_of(fn, *args, **kwargs) -> list[Problem]:
    with pytest.raises(PlanError) as info:
        fn(*args, **kwargs)
    assert info.value.problems, "a PlanError always carries problems"
    return info.value.problems


def write(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ---- the shipped plans ---------------------------------------------------------------------


def test_there_are_shipped_plans():
    assert {p.name for p in PLANS} >= {
        "demo.toml",
        "core-api-flow.toml",
        "stress-ramp.toml",
        "soak.toml",
        "benchmark.toml",
        "setup-teardown.toml",
    }


@pytest.mark.parametrize("path", PLANS, ids=lambda p: p.name)
def test_shipped_plan_loads(path: Path):
    loaded = load_plan(path, env={})
    plan = loaded.plan
    assert isinstance(loaded, LoadedPlan) and isinstance(plan, Plan)
    assert loaded.path == path and loaded.source == path.read_text(encoding="utf-8")
    assert plan.target == "demo" or (plan.databases and not plan.target)  # a database plan has no HTTP target
    # a benchmark plan runs its scenarios' benchmarks instead of phases; a breaking-point search makes
    # its own steps, and its result (not thresholds) is the verdict
    search = plan.find_limit is not None
    assert plan.name and (plan.phases or is_benchmark(plan) or search) and plan.scenarios and (plan.thresholds or search)
    assert path.read_text(encoding="utf-8").startswith("#"), (
        "each plan starts with a comment header"
    )
    for th in plan.thresholds:
        parse_threshold(threshold_expr(th))
    for sc in plan.scenarios:
        assert sc.name and sc.steps
    # the session record must be able to carry it
    msgspec.msgpack.decode(msgspec.msgpack.encode(plan), type=Plan)


def test_core_api_flow_follows_the_seed():
    plan = load_plan(ROOT / "plans" / "core-api-flow.toml", env={}).plan
    assert [(p.name, duration_s(p.duration), p.arrival_rate) for p in plan.phases] == [
        ("Warm up", 60, 10),
        ("Sustained load", 300, 50),
        ("Peak load", 120, 100),
        ("Cool down", 60, 10),
    ]
    assert [(s.name, s.weight) for s in plan.scenarios] == [
        ("Core API Flow", 40),
        ("Payment Operations", 20),
        ("Notifications", 20),
        ("Admin Operations", 10),
        ("Health Checks", 10),
    ]
    assert duration_s(plan.defaults.timeout) == 30
    assert plan.variables["testEmail"] == [
        "test1@example.com",
        "test2@example.com",
        "test3@example.com",
    ]
    assert plan.variables["testPassword"] == "TestPassword123!"
    core = plan.scenarios[0].steps
    assert [endpoint_name(s) for s in core] == [
        "GET /health",
        "POST /auth/sign-in",
        "GET /api/profile",
        "GET /api/bounties",
        "GET /api/bounties/{id}",
    ]
    assert core[1].capture[0].json == "$.token" and core[1].capture[0].as_ == "authToken"
    assert core[1].expect.status == [200, 401]
    assert core[2].if_ == "authToken"
    assert core[3].query == {"limit": 20, "status": "open"}
    assert core[4].expect.status == [200, 404]
    assert {"p50 < 100ms", "p95 < 200ms", "p99 < 500ms", "error_rate < 1%", "rps > 100"} <= set(
        plan.thresholds
    )


def test_env_reaches_the_shipped_plan_and_is_a_secret():
    loaded = load_plan(ROOT / "plans" / "core-api-flow.toml", env={"ADMIN_TOKEN": "s3cr3t-admin"})
    assert loaded.plan.variables["adminToken"] == "s3cr3t-admin"
    assert loaded.secrets == frozenset({"s3cr3t-admin"})
    assert "s3cr3t-admin" not in msgspec.json.encode(redacted_plan(loaded)).decode()


def test_stress_and_soak_shapes():
    stress = load_plan(ROOT / "plans" / "stress-ramp.toml", env={}).plan
    assert all(phase_model(p) == "open" and p.max_in_flight is not UNSET for p in stress.phases)
    assert stress.phases[0].arrival_rate == 50 and stress.phases[-1].arrival_rate == 1000
    soak = load_plan(ROOT / "plans" / "soak.toml", env={}).plan
    assert sum(duration_s(p.duration) for p in soak.phases) >= 8 * 3600


# ---- broken plans: message, key path and line ---------------------------------------------


def _expectations(path: Path) -> list[tuple[int | None, str, str]]:
    text = path.read_bytes().decode("utf-8", "replace")
    out = []
    for line in text.splitlines():
        if m := EXPECT.match(line):
            ln, key, msg = m.groups()
            out.append((None if ln == "-" else int(ln), "" if key == "-" else key, msg))
    return out


def test_bad_fixtures_cover_the_brief():
    names = {p.stem for p in BAD}
    assert names >= {
        "unknown_key",
        "wrong_type",
        "zero_duration",
        "bad_duration",
        "rate_and_vus",
        "neither",
        "empty_scenarios",
        "zero_weights",
        "step_without_url",
        "undefined_variable",
        "bad_jsonpath",
        "bad_threshold",
        "url_without_scheme",
        "invalid_toml",
        "missing_env",
        "invalid_utf8",
        "many_problems",
        "huge_values",
        "bad_urls",
        "crlf_target",
        "unknown_protocol_metric",
        "bad_demo_latency",
    }


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_plan_reports_exactly_what_is_wrong(path: Path):
    expected = _expectations(path)
    assert expected, f"{path.name} has no '# expect:' lines"
    problems = problems_of(load_plan, path, env={})
    shown = "\n".join(f"{p.line} {p.path or '-'} :: {p.message}" for p in problems)
    for line, key, msg in expected:
        assert any(p.line == line and p.path == key and msg in p.message for p in problems), (
            f"expected line {line}, path {key!r}, message containing {msg!r}; got:\n{shown}"
        )
        assert all(p.file == str(path) for p in problems)
    assert len(problems) == len(expected), f"unexpected extra problems:\n{shown}"


def test_plan_error_text_is_compiler_like():
    err = None
    try:
        load_plan(ROOT / "tests" / "plans_bad" / "wrong_type.toml", env={})
    except PlanError as e:
        err = e
    assert err is not None and isinstance(err, UserError)
    first = str(err).splitlines()[0]
    assert first.endswith(
        'wrong_type.toml:7: phases[1].arrival_rate: expected a number, got a string ("10"); remove the quotes'
    )


def test_many_problems_are_reported_together_and_in_line_order():
    problems = problems_of(load_plan, ROOT / "tests" / "plans_bad" / "many_problems.toml", env={})
    assert len(problems) == 9
    lines = [p.line for p in problems]
    assert lines == sorted(lines)


def test_problems_in_several_sections_at_once():
    data = minimal(
        target="ftp://example.com",
        phases=[{"duration": "1x", "arrival_rate": 1}, {"duration": "1s", "vus": 0}],
        scenarios=[{"weight": "heavy", "steps": [{"url": "/a", "method": "GRAB"}]}],
        thresholds=["p95 < 1%"],
        demo={"port": 70000},
    )
    problems = problems_of(plan_from_dict, data)
    paths = {p.path for p in problems}
    assert paths == {
        "target",
        "phases[1].duration",
        "phases[2].vus",
        "scenarios[1].weight",
        "scenarios[1].steps[1].method",
        "thresholds[1]",
        "demo.port",
    }
    assert all(p.file == "<plan>" and p.line is None for p in problems)


# ---- individual rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "over, path, message",
    [
        ({"target": ""}, "target", "must not be empty"),
        ({"target": "http://"}, "target", "has no host name"),
        ({"target": "https://x.example/?q=1"}, "target", "without ?query"),
        (
            {"target": "ws://x.example"},
            "target",
            'only http:// and https:// targets are supported, got "ws://"',
        ),
        ({"phases": []}, "phases", "a plan needs at least one phase"),
        ({"phases": {"duration": "1s"}}, "phases", "expected an array of tables"),
        (
            {"phases": [{"duration": "1s", "pause": True, "ramp_to": 3}]},
            "phases[1].ramp_to",
            "a pause phase cannot ramp",
        ),
        (
            {"phases": [{"duration": "1s", "vus": 2, "ramp_to": 2.5}]},
            "phases[1].ramp_to",
            "whole number",
        ),
        (
            {"phases": [{"duration": "1s", "vus": 2.5}]},
            "phases[1].vus",
            "expected an integer, got a number (2.5); use a whole number",
        ),
        (
            {"phases": [{"duration": "1s", "arrival_rate": 0}]},
            "phases[1].arrival_rate",
            "must be greater than 0",
        ),
        (
            {"phases": [{"duration": "1s", "arrival_rate": float("inf")}]},
            "phases[1].arrival_rate",
            "must be greater than 0",
        ),
        (
            {"phases": [{"duration": "1s", "arrival_rate": 1, "max_in_flight": 0}]},
            "phases[1].max_in_flight",
            "greater than 0",
        ),
        (
            {"phases": [{"duration": "1s", "arrival_rate": 1, "arrivals": "poison"}]},
            "phases[1].arrivals",
            'did you mean "poisson"?',
        ),
        (
            {"phases": [{"duration": "1s", "vus": 1, "arrivals": "poisson"}]},
            "phases[1].arrivals",
            "open-model phases",
        ),
        (
            {"phases": [{"arrival_rate": 1}]},
            "phases[1]",
            'missing required key "duration" in [[phases]]',
        ),
        (
            {"scenarios": [{"steps": []}]},
            "scenarios[1].steps",
            "a scenario needs at least one step",
        ),
        ({"scenarios": [{"name": "x"}]}, "scenarios[1]", "a scenario needs at least one step"),
        (
            {"scenarios": [{"steps": [{"think": "1s", "method": "GET"}]}]},
            "scenarios[1].steps[1]",
            "may only have think",
        ),
        (
            {"scenarios": [{"steps": [{"url": "/a", "think": "-1s"}]}]},
            "scenarios[1].steps[1].think",
            "expected a duration",
        ),
        (
            {"scenarios": [{"steps": [{"url": "/a", "timeout": 0}]}]},
            "scenarios[1].steps[1].timeout",
            "greater than 0",
        ),
        (
            {"scenarios": [{"steps": [{"url": "/a{{ x"}]}]},
            "scenarios[1].steps[1].url",
            "bad template: '{{' is never closed",
        ),
        (
            {"scenarios": [{"steps": [{"url": "/a", "query": {"q": "{{ $nope() }}"}}]}]},
            "scenarios[1].steps[1].query.q",
            "unknown built-in $nope",
        ),
        (
            {"scenarios": [{"steps": [{"url": "/a", "json": {"a": ["{{ who }}"]}}]}]},
            "scenarios[1].steps[1].json",
            "{{ who }}",
        ),
        (
            {"scenarios": [{"steps": [{"url": "/a", "body": "{{ who }}"}]}]},
            "scenarios[1].steps[1].body",
            "no variable 'who'",
        ),
        (
            {"scenarios": [{"steps": [{"url": "/a", "headers": {"Bad Name": "x"}}]}]},
            'scenarios[1].steps[1].headers."Bad Name"',
            "not a valid HTTP header name",
        ),
        (
            {"scenarios": [{"steps": [{"url": "/a", "headers": {"X": "a\r\nB: c"}}]}]},
            "scenarios[1].steps[1].headers.X",
            "line breaks",
        ),
        (
            {"scenarios": [{"steps": [{"url": "/a", "if": "nobody"}]}]},
            "scenarios[1].steps[1].if",
            'no variable "nobody"',
        ),
        (
            {"scenarios": [{"steps": [{"url": "/a", "capture": [{"as": "x"}]}]}]},
            "scenarios[1].steps[1].capture[1]",
            "exactly one of json, header or regex",
        ),
        (
            {"scenarios": [{"steps": [{"url": "/a", "capture": [{"json": "$.a"}]}]}]},
            "scenarios[1].steps[1].capture[1]",
            'missing required key "as"',
        ),
        (
            {"scenarios": [{"steps": [{"url": "/a", "capture": [{"json": "$.a", "as": "1x"}]}]}]},
            "scenarios[1].steps[1].capture[1].as",
            "must be a variable name",
        ),
        (
            {
                "scenarios": [
                    {"steps": [{"url": "/a", "expect": {"json_equals": {"status": "ok"}}}]}
                ]
            },
            "scenarios[1].steps[1].expect.json_equals.status",
            "must start with '$'",
        ),
        (
            {"scenarios": [{"steps": [{"url": "/a", "expect": {"status": []}}]}]},
            "scenarios[1].steps[1].expect.status",
            "at least one status code",
        ),
        (
            {"scenarios": [{"steps": [{"url": "/a", "expect": {"status": "200"}}]}]},
            "scenarios[1].steps[1].expect.status",
            "expected an integer or an array of integers",
        ),
        (
            {"scenarios": [{"steps": [{"url": "ftp://x/a"}]}]},
            "scenarios[1].steps[1].url",
            "only http:// and https://",
        ),
        ({"scenarios": [{"steps": [{"url": "/a b"}]}]}, "scenarios[1].steps[1].url", "spaces"),
        ({"defaults": {"late_threshold": "-"}}, "defaults.late_threshold", "expected a duration"),
        ({"defaults": {"tls_verify": "no"}}, "defaults.tls_verify", "expected true or false"),
        ({"demo": {"latency": 5}}, "demo.latency", "expected a string, got an integer (5)"),
        ({"demo": {"latency": " "}}, "demo.latency", "must not be empty"),
        ({"demo": {"error_rate": -0.1}}, "demo.error_rate", "fraction from 0 to 1"),
        ({"variables": {"my-var": 1}}, "variables.my-var", "variable names use letters"),
        ({"variables": {"xs": []}}, "variables.xs", "an empty list"),
        (
            {"variables": {"xs": [[1]]}},
            "variables.xs[1]",
            "expected a string, number or boolean, got an array",
        ),
        ({"thresholds": "p95 < 1s"}, "thresholds", "expected an array (a string or a table each)"),
        (
            {"thresholds": ["p95{GET /nope} < 1s"]},
            "thresholds[1]",
            'no step has the endpoint name "GET /nope"',
        ),
        ({"config": {"target": "x"}}, "config", "Artillery's config: section is not used"),
        ({"stages": []}, "stages", 'did you mean "phases"? (stages is the k6 spelling)'),
        ({"timeout": 3}, "timeout", "did you mean [defaults] timeout?"),
        (
            {"scenarios": [{"flow": [{"get": {"url": "/"}}]}]},
            "scenarios[1].flow",
            'did you mean "steps"?',
        ),
        (
            {"scenarios": [{"steps": [{"get": "/"}]}]},
            "scenarios[1].steps[1].get",
            'write method = "GET" and url = "..."',
        ),
        ({"zzz": 1}, "zzz", "valid keys: name, description, target"),
    ],
)
def test_rule(over, path, message):
    problems = problems_of(plan_from_dict, minimal(**over))
    assert any(p.path == path and message in p.message for p in problems), [
        str(p) for p in problems
    ]


def test_valid_variations_load():
    data = minimal(
        variables={"ids": [1, 2, 3], "flag": True, "ratio": 0.5, "name": "x"},
        phases=[
            {"duration": 5, "arrival_rate": 10, "ramp_to": 0},  # ramping down to zero is legitimate
            {"duration": "1m30s", "vus": 10, "ramp_to": 1},
            {"duration": "250ms", "pause": True},
            {"duration": "1s", "arrival_rate": 0.5, "arrivals": "poisson", "max_in_flight": 3},
        ],
        scenarios=[
            {
                "weight": 0,
                "steps": [{"url": "/a"}],
            },  # a weight of 0 is allowed while others are > 0
            {
                "weight": 2.5,
                "steps": [
                    {
                        "url": "https://other.example:8443/x?y=1",
                        "method": "post",
                        "body": "{{ $randomString(5) }}",
                    },
                    {"think": "0s"},
                    {
                        "url": "{{ next }}",
                        "capture": [
                            {"regex": "next=(\\S+)", "as": "next"},
                            {"header": "X-Id", "as": "xid"},
                        ],
                    },
                    {
                        "url": "/users/{{ ids }}",
                        "query": {"v": "{{ $vu }}", "b": True},
                        "if": "xid",
                        "timeout": "2s",
                        "expect": {
                            "status": 200,
                            "json_equals": {"$.a[0]['b c']": 1},
                            "json_exists": ["$"],
                            "body_contains": "ok",
                        },
                    },
                    {"url": "/j", "json": [1, "{{ flag }}", {"n": "{{ ratio }}"}]},
                ],
            },
        ],
        thresholds=["p(99.9) < 1s", "ws.connect.p95 < 50ms", "success_rate > 99%"],
    )
    plan = plan_from_dict(data, file="x/y/mine.toml").plan
    assert plan.name == "mine"  # defaults to the file stem
    assert plan.phases[0].name == "phase 1" and plan.scenarios[1].name == "scenario 2"
    assert plan.scenarios[1].steps[0].method == "POST"  # normalised
    assert plan_from_dict(minimal()).plan.name == "plan"


def test_plan_from_dict_rejects_non_tables():
    (p,) = problems_of(plan_from_dict, ["not", "a", "table"])
    assert p.path == "" and "a plan must be a table of keys, got an array" in p.message


def test_plan_from_dict_keeps_the_toml_source():
    loaded = plan_from_dict(minimal())
    assert 'target = "demo"' in loaded.source and loaded.path is None


def test_format_path_counts_from_one_and_quotes_odd_keys():
    assert format_path(("phases", 0, "arrival_rate")) == "phases[1].arrival_rate"
    assert format_path(("defaults", "headers", "X Y")) == 'defaults.headers."X Y"'
    assert format_path(()) == ""


# ---- files ---------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    (p,) = problems_of(load_plan, tmp_path / "nope.toml")
    assert p.message == "no such file" and p.file.endswith("nope.toml") and p.line is None


def test_directory(tmp_path):
    (p,) = problems_of(load_plan, tmp_path)
    assert "is a directory" in p.message


def test_too_large(tmp_path):
    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.truncate(10 * 1024 * 1024 + 1)
    (p,) = problems_of(load_plan, big)
    assert "larger than 10 MB" in p.message


def test_utf8_bom_is_accepted(tmp_path):
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + tomli_text(minimal()).encode())
    assert load_plan(p, env={}).plan.target == "demo"


def tomli_text(data: dict) -> str:
    import tomli_w

    return tomli_w.dumps(data)


def test_line_numbers_for_dotted_keys_inline_tables_and_arrays(tmp_path):
    text = """\
target = "demo"
demo.error_rate = 3
phases = [
  { duration = "1s", arrival_rate = 1 },
  { duration = "1s",
    arrival_rate = -1 },
]
[[scenarios]]
name = "a"
[[scenarios]]
name = "b"
[[scenarios.steps]]
url = "/x"
[[scenarios.steps]]
url = "/y"
capture = [
  { json = "$.ok", as = "ok" },
  { json = "$..bad", as = "bad" },
]
[scenarios.steps.headers]
"X Quoted" = "{{ missing }}"
"""
    # TOML 1.0 forbids newlines inside inline tables; keep the file valid.
    text = text.replace(
        '{ duration = "1s",\n    arrival_rate = -1 },', '{ duration = "1s", arrival_rate = -1 },\n'
    )
    problems = problems_of(load_plan, write(tmp_path, text), env={})
    where = {p.path: p.line for p in problems}
    assert where == {
        "demo.error_rate": 2,
        "phases[2].arrival_rate": 5,
        "scenarios[1]": 8,  # no steps
        "scenarios[2].steps[2].capture[2].json": 18,
        'scenarios[2].steps[2].headers."X Quoted"': 21,
    }


# ---- ${ENV} substitution -------------------------------------------------------------------


def test_env_substitution_defaults_escapes_and_secrets():
    data = minimal(
        target="${T:-demo}",
        variables={
            "user": "${USER_NAME}",
            "pw": "pre-${PW}-post",
            "lit": "$${NOT_ENV}",
            "empty": "${EMPTY:-fallback}",
            "dash": "${UNSET-dash}",
            "blank": "${EMPTY-kept}",
        },
        phases=[{"duration": "${D:-5s}", "vus": "${VUS}"}],
    )
    loaded = plan_from_dict(
        data, env={"USER_NAME": "alice", "PW": "hunter2", "VUS": "7", "EMPTY": ""}
    )
    v = loaded.plan.variables
    assert loaded.plan.target == "demo"
    assert v == {
        "user": "alice",
        "pw": "pre-hunter2-post",
        "lit": "${NOT_ENV}",
        "empty": "fallback",
        "dash": "dash",
        "blank": "",
    }
    assert loaded.plan.phases[0].vus == 7  # "${VUS}" alone takes the type the key needs
    assert loaded.plan.phases[0].duration == "5s"
    # "7" became the integer 7: a setting, not a credential, so it is not masked anywhere
    assert loaded.secrets == frozenset({"alice", "hunter2"})


def test_env_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("PERFTUI_TEST_TARGET_URL", "http://127.0.0.1:9")
    assert (
        plan_from_dict(minimal(target="${PERFTUI_TEST_TARGET_URL}")).plan.target
        == "http://127.0.0.1:9"
    )


def test_env_value_of_the_wrong_type_is_reported():
    problems = problems_of(
        plan_from_dict, minimal(phases=[{"duration": "1s", "vus": "${VUS}"}]), env={"VUS": "many"}
    )
    assert [(p.path, p.message) for p in problems] == [
        ("phases[1].vus", 'expected an integer, got a string ("many")')
    ]


def test_missing_env_is_reported_once_per_value():
    problems = problems_of(plan_from_dict, minimal(target="${NO_SUCH_TARGET}"), env={})
    assert [(p.path, p.message.split(";")[0]) for p in problems] == [
        ("target", "environment variable NO_SUCH_TARGET is not set (used as ${NO_SUCH_TARGET})")
    ]


def test_unclosed_env_reference():
    (p,) = problems_of(plan_from_dict, minimal(description="costs ${5"), env={})
    assert p.path == "description" and "'${' is not closed" in p.message


# ---- overrides -----------------------------------------------------------------------------


@pytest.fixture
def demo_plan() -> LoadedPlan:
    return load_plan(ROOT / "plans" / "demo.toml", env={})


def test_override_rate(demo_plan):
    out = apply_overrides(demo_plan, rate=250)
    (ph,) = out.plan.phases
    assert phase_model(ph) == "open" and ph.arrival_rate == 250 and duration_s(ph.duration) == 30
    assert out.plan.scenarios == demo_plan.plan.scenarios and out.path == demo_plan.path
    assert demo_plan.plan.phases != out.plan.phases  # the original is untouched


def test_override_vus_and_duration(demo_plan):
    (ph,) = apply_overrides(demo_plan, vus=4, duration="2m").plan.phases
    assert phase_model(ph) == "closed" and ph.vus == 4 and duration_s(ph.duration) == 120


def test_override_duration_alone_keeps_the_first_shape(tmp_path):
    text = tomli_text(
        minimal(
            phases=[
                {"duration": "5s", "pause": True},
                {
                    "name": "ramp",
                    "duration": "1m",
                    "arrival_rate": 20,
                    "ramp_to": 100,
                    "arrivals": "poisson",
                    "max_in_flight": 9,
                },
                {"duration": "1m", "vus": 3},
            ]
        )
    )
    loaded = load_plan(write(tmp_path, text), env={})
    (ph,) = apply_overrides(loaded, duration="10s").plan.phases
    assert (ph.arrival_rate, ph.ramp_to, ph.arrivals, ph.max_in_flight, ph.duration) == (
        20,
        UNSET,
        "poisson",
        9,
        "10s",
    )


def test_override_target(demo_plan):
    assert (
        apply_overrides(demo_plan, target="https://staging.example:8443").plan.target
        == "https://staging.example:8443"
    )
    assert apply_overrides(demo_plan) is demo_plan


@pytest.mark.parametrize(
    "kwargs, flag, message",
    [
        ({"rate": 0}, "--rate", "greater than 0"),
        ({"rate": float("nan")}, "--rate", "greater than 0"),
        ({"vus": -1}, "--vus", "greater than 0"),
        ({"vus": 1.5}, "--vus", "whole number"),
        ({"rate": 5, "vus": 5}, "--rate", "cannot be combined"),
        ({"duration": "forever"}, "--duration", "expected a duration"),
        ({"duration": "0s"}, "--duration", "greater than 0"),
        ({"target": "localhost"}, "--target", "needs a scheme"),
    ],
)
def test_bad_overrides(demo_plan, kwargs, flag, message):
    problems = problems_of(apply_overrides, demo_plan, **kwargs)
    assert any(
        p.path == flag and message in p.message and p.file == "<command line>" for p in problems
    ), problems


def test_override_keeps_secrets():
    loaded = plan_from_dict(minimal(variables={"k": "${KEY}"}), env={"KEY": "abcdef"})
    assert apply_overrides(loaded, rate=3).secrets == frozenset({"abcdef"})


# ---- quick plans ---------------------------------------------------------------------------


def test_quick_plan():
    loaded = quick_plan(
        "http://localhost:3000/api/users?limit=5",
        rate=50,
        vus=None,
        duration="10s",
        method="post",
        headers=["Authorization: Bearer abc", "X-Trace:1"],
        body='{"a": 1}',
    )
    plan = loaded.plan
    assert plan.target == "http://localhost:3000"
    (ph,) = plan.phases
    assert ph.arrival_rate == 50 and ph.duration == "10s"
    (step,) = plan.scenarios[0].steps
    assert (step.method, step.url, step.body) == ("POST", "/api/users?limit=5", '{"a": 1}')
    assert step.headers == {"Authorization": "Bearer abc", "X-Trace": "1"}
    assert endpoint_name(step) == "POST /api/users"
    assert loaded.path is None and loaded.source


def test_quick_plan_closed_model_and_defaults():
    plan = quick_plan("https://example.com", rate=None, vus=3).plan
    assert plan.target == "https://example.com" and plan.phases[0].vus == 3
    assert plan.scenarios[0].steps[0].url == "/" and duration_s(plan.phases[0].duration) == 30
    assert quick_plan("http://h:1/", rate=None, vus=None).plan.phases[0].vus == 10


@pytest.mark.parametrize(
    "url, kwargs, flag, message",
    [
        ("localhost:3000/x", {}, "URL", "expected an http:// or https:// URL"),
        ("http://h:99999/", {}, "URL", "not a valid URL"),
        ("http://h/", {"headers": ["NoColon"]}, "--header", 'expected "Name: value"'),
        ("http://h/", {"rate": -1}, "--rate", "greater than 0"),
        ("http://h/", {"duration": "soon"}, "phases[1].duration", "expected a duration"),
        ("http://h/{{ x }}", {}, "scenarios[1].steps[1].url", "no variable 'x'"),
    ],
)
def test_bad_quick_plans(url, kwargs, flag, message):
    kw = {"rate": None, "vus": None} | kwargs
    problems = problems_of(quick_plan, url, **kw)
    assert any(p.path == flag and message in p.message for p in problems), problems


# ---- redaction -----------------------------------------------------------------------------


def test_redacted_plan():
    data = minimal(
        defaults={
            "headers": {
                "authorization": "Basic dXNlcjpwYXNz",
                "X-Api-Key": "{{ key }}",
                "Accept": "*/*",
            }
        },
        variables={"key": "${API_KEY}", "note": "token=${API_KEY}&x=1"},
        scenarios=[
            {
                "steps": [
                    {
                        "url": "/a/${API_KEY}",
                        "headers": {
                            "Cookie": "sid=abc",
                            "Authorization": "Bearer {{ key }}",
                            "PROXY-AUTHORIZATION": "Token xyz {{ key }}",
                        },
                    },
                ]
            }
        ],
    )
    loaded = plan_from_dict(data, env={"API_KEY": "k-12345"})
    out = redacted_plan(loaded)
    assert out["defaults"]["headers"] == {
        "authorization": "***",
        "X-Api-Key": "{{ key }}",
        "Accept": "*/*",
    }
    step = out["scenarios"][0]["steps"][0]
    assert step["headers"] == {
        "Cookie": "***",
        "Authorization": "Bearer {{ key }}",
        "PROXY-AUTHORIZATION": "***",
    }
    assert step["url"] == "/a/***"
    assert out["variables"] == {"key": "***", "note": "token=***&x=1"}
    assert "k-12345" not in msgspec.json.encode(out).decode()
    # the plan itself is untouched, and reveal shows everything
    assert loaded.plan.variables["key"] == "k-12345"
    revealed = redacted_plan(loaded, reveal=True)
    assert revealed["variables"]["key"] == "k-12345" and revealed["defaults"]["headers"][
        "authorization"
    ].startswith("Basic")
    # and it is plain data that converts back into a Plan
    msgspec.convert(out, Plan)


def test_short_secrets_are_masked_only_as_whole_values():
    data = minimal(variables={"region": "${REGION}", "path": "/v1/users"}, description="release v1")
    loaded = plan_from_dict(data, env={"REGION": "v1"})
    assert loaded.secrets == frozenset({"v1"})
    out = redacted_plan(loaded)
    assert out["variables"] == {"region": "***", "path": "/v1/users"} and out["description"] == "release v1"


# ---- small helpers -------------------------------------------------------------------------


def test_endpoint_name():
    assert endpoint_name(HttpStep(url="/api/bounties/{{ id }}?x=1")) == "GET /api/bounties/{{ id }}"
    assert endpoint_name(HttpStep(url="/a#frag", method="post")) == "POST /a"
    assert HttpStep(url="/a", name="custom").endpoint == "custom"
    assert ThinkStep(think="1s").endpoint == "think"


def test_duration_s():
    assert duration_s("1m30s") == 90 and duration_s(2) == 2.0 and duration_s("250ms") == 0.25
    with pytest.raises(ValueError):
        duration_s("soon")


def test_every_template_in_the_shipped_plans_compiles_for_the_engine():
    for path in PLANS:
        plan = load_plan(path, env={}).plan
        for sc in plan.scenarios:
            for stp in sc.steps:
                if getattr(stp, "url", UNSET) is not UNSET:  # step kinds without url have no such key
                    compile_template(stp.url)
                if getattr(stp, "json", UNSET) is not UNSET:
                    compile_json(stp.json)


# ---- fuzzing: nothing but PlanError comes out ---------------------------------------------

KEYS = [
    "name",
    "description",
    "target",
    "defaults",
    "demo",
    "variables",
    "phases",
    "scenarios",
    "thresholds",
    "timeout",
    "connect_timeout",
    "headers",
    "keep_alive",
    "late_threshold",
    "tls_verify",
    "latency",
    "error_rate",
    "port",
    "duration",
    "arrival_rate",
    "vus",
    "ramp_to",
    "arrivals",
    "max_in_flight",
    "pause",
    "weight",
    "steps",
    "method",
    "url",
    "query",
    "json",
    "body",
    "capture",
    "expect",
    "if",
    "think",
    "as",
    "header",
    "regex",
    "status",
    "json_equals",
    "json_exists",
    "body_contains",
]
SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "demo",
            "http://x",
            "10s",
            "0",
            "-1s",
            "{{ x }}",
            "{{",
            "$.a",
            "${X}",
            "$${X}",
            "${X:-1}",
            "p95 < 1s",
            "GET",
            "/a",
            "poisson",
            "uniform",
            "[",
            "(",
            "}}",
            "1e309",
        ]
    ),
    st.datetimes(),
)
KEY = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
TOMLISH = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEY, children, max_size=5)
    ),
    max_leaves=25,
)


def _only_plan_errors(fn, *args, **kwargs) -> None:
    try:
        result = fn(*args, **kwargs)
    except PlanError as e:
        assert e.problems and all(
            isinstance(p, Problem) and isinstance(p.message, str) for p in e.problems
        )
        str(e)
    else:
        assert isinstance(result, LoadedPlan)
        redacted_plan(result)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEY, TOMLISH, max_size=8))
def test_fuzz_random_dicts(data):
    _only_plan_errors(plan_from_dict, data, env={"X": "1"})


def _mutations():
    base = minimal(
        variables={"v": [1, 2]},
        scenarios=[
            {
                "steps": [
                    {
                        "url": "/a/{{ v }}",
                        "capture": [{"json": "$.t", "as": "t"}],
                        "expect": {"status": 200},
                    }
                ]
            }
        ],
        thresholds=["p95 < 1s"],
    )
    paths = [
        ("target",),
        ("phases", 0, "duration"),
        ("phases", 0, "arrival_rate"),
        ("phases", 0),
        ("scenarios", 0, "steps", 0, "url"),
        ("scenarios", 0, "steps", 0, "capture", 0, "json"),
        ("scenarios", 0, "steps", 0, "expect"),
        ("scenarios", 0, "steps", 0),
        ("scenarios", 0),
        ("thresholds", 0),
        ("variables", "v"),
        ("scenarios", 0, "steps", 0, "capture"),
        ("phases",),
        ("scenarios",),
    ]
    return base, paths


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_valid_plan(data):
    import copy

    base, paths = _mutations()
    plan = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        node = plan
        try:
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = data.draw(TOMLISH)
        except (KeyError, IndexError, TypeError):
            pass
    _only_plan_errors(plan_from_dict, plan, env={})


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(blob):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "fuzz.toml"
        p.write_bytes(blob)
        _only_plan_errors(load_plan, p, env={})


TOML_ALPHABET = string.ascii_letters + string.digits + " \n\t=[]{}\"',.#$-_:"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=TOML_ALPHABET, max_size=200))
def test_fuzz_toml_like_text(text):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "fuzz.toml"
        p.write_text(text, encoding="utf-8")
        _only_plan_errors(load_plan, p, env={})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEY, TOMLISH, max_size=6))
def test_fuzz_dicts_through_toml_text(data):
    """Write random data as TOML and load it, so the line locator sees every kind of layout."""
    import tomli_w

    try:
        text = tomli_w.dumps(data)
    except (TypeError, ValueError):
        return
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "fuzz.toml"
        p.write_text(text, encoding="utf-8")
        _only_plan_errors(load_plan, p, env={})


def test_no_plan_error_is_a_traceback_for_the_cli(tmp_path):
    # UserError subclasses are printed without a traceback by cli.main
    assert issubclass(PlanError, UserError) and PlanError.exit_code == 2
    assert os.path.exists(ROOT / "plans" / "demo.toml")


def test_ramps_may_start_from_zero():
    from perftui.planload import plan_from_dict

    ok = plan_from_dict({"target": "http://x", "phases": [{"duration": "5s", "arrival_rate": 0, "ramp_to": 50},
                                                          {"duration": "5s", "vus": 0, "ramp_to": 10}],
                         "scenarios": [{"steps": [{"url": "/"}]}]})
    assert ok.plan.phases[0].arrival_rate == 0 and ok.plan.phases[1].vus == 0
    with pytest.raises(PlanError) as e:
        plan_from_dict({"target": "http://x", "phases": [{"duration": "5s", "arrival_rate": 0}],
                        "scenarios": [{"steps": [{"url": "/"}]}]})
    assert "must be greater than 0" in str(e.value)


def test_each_step_kind_is_its_own_type():
    from perftui.plan import ACTION_STEPS, GraphQLStep, McpStep, WsSendStep, step_type

    plan = plan_from_dict(minimal(scenarios=[{"steps": [
        {"url": "/a"}, {"think": "1s"}, {"graphql": "query Q { a }"}, {"mcp": "tools/call", "tool": "t"},
        {"ws_connect": "/ws"}, {"ws_send": {"type": "hi"}},
    ]}])).plan
    steps = plan.scenarios[0].steps
    assert [type(s) for s in steps] == [HttpStep, ThinkStep, GraphQLStep, McpStep, ACTION_STEPS["ws_connect"], WsSendStep]
    assert [s.endpoint for s in steps] == ["GET /a", "think", "GraphQL Q", "MCP tools/call:t", "WS connect /ws", "WS send hi"]
    # the kinds survive the worker's wire and a session file's plain data
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(plan), type=Plan) == plan
    assert msgspec.convert(msgspec.to_builtins(plan), Plan) == plan
    # a key that does not apply is rejected by the kind's Struct itself
    assert step_type({"ws_send": "x", "match": "id"}) is WsSendStep
    with pytest.raises(msgspec.ValidationError, match="unknown field `match`"):
        msgspec.convert({"ws_send": "x", "match": "id"}, WsSendStep)
