"""``perftui import`` and ``run``/``validate`` on Artillery YAML and k6 scripts.

The users' own scripts are kept in tests/fixtures/import/seeds/ as they wrote them (two of them do
not parse: those are the bad-input cases); tests/fixtures/import/{artillery,k6}/all-keys.* hold
every key the importers translate. Runs are short (about a second, a few arrivals per second)
against the embedded demo target.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from perftui.importers import convert, to_toml
from perftui.planload import load_plan, plan_from_dict
from tests.conftest import read_session, run_cli, write_plan

FIX = Path(__file__).resolve().parent / "fixtures" / "import"
SEEDS = FIX / "seeds"
ALL_YML = FIX / "artillery" / "all-keys.yml"
ALL_JS = FIX / "k6" / "all-keys.js"

IMPORTABLE = [
    SEEDS / "artillery-load-test.yml",
    SEEDS / "artillery-stress-test.yml",
    SEEDS / "metrics-sessions-fixed.js",
    SEEDS / "omni-websocket.js",
    SEEDS / "aiaas-test-data.js",
    ALL_YML,
    ALL_JS,
]


def _run_brief(path: Path, demo, tmp_path, *extra: str, env: dict | None = None):
    out = tmp_path / "s.json"
    load = () if "--vus" in extra else ("--rate", "4")
    r = run_cli("run", str(path), *load, "--duration", "1s", "--workers", "1", "--out", str(out), *extra,
                env=env, timeout=90)
    return r, out


# ---- round trip: the TOML written is the plan converted ---------------------------------------

@pytest.mark.parametrize("path", IMPORTABLE, ids=lambda p: p.name)
def test_import_output_round_trips_through_the_loader(path, tmp_path):
    r = run_cli("import", str(path), env={"BASE_URL": "http://127.0.0.1:9"})
    assert r.returncode == 0, r.stderr
    conv = convert(path)
    assert tomllib.loads(r.stdout) == conv.plan
    assert r.stdout == to_toml(conv)
    # Every TODO comment in the file is listed on stderr, and the other way round.
    assert r.stdout.count("# TODO:") == len(conv.todos)
    for t in conv.todos:
        assert t.message in r.stderr
    plan_file = write_plan(tmp_path, r.stdout, "imported.toml")
    if path.name in ("omni-websocket.js", "aiaas-test-data.js"):
        with pytest.raises(Exception, match="at least one step"):
            load_plan(plan_file, env={"TARGET": "http://127.0.0.1:9"})
    else:
        loaded = load_plan(plan_file, env={"BASE_URL": "http://127.0.0.1:9"})
        assert loaded.plan.scenarios


# ---- the users' scripts -----------------------------------------------------------------------

def test_seed_artillery_load_test_shape_and_run(demo, tmp_path):
    path = SEEDS / "artillery-load-test.yml"
    plan = convert(path).plan
    assert plan["target"] == "http://localhost:3001"
    assert [(p["name"], p["duration"], p["arrival_rate"]) for p in plan["phases"]] == [
        ("Warm up", 60, 10), ("Sustained load", 300, 50), ("Peak load", 120, 100), ("Cool down", 60, 10)]
    assert plan["defaults"] == {"timeout": "30s"}
    assert [(s["name"], s["weight"], len(s["steps"])) for s in plan["scenarios"]] == [
        ("Core API Flow", 40, 5), ("Payment Operations", 20, 3), ("Notifications", 20, 3),
        ("Admin Operations", 10, 2), ("Health Checks", 10, 3)]
    sign_in = plan["scenarios"][0]["steps"][1]
    assert sign_in == {"method": "POST", "url": "/auth/sign-in",
                       "json": {"email": "{{ testEmail }}", "password": "{{ testPassword }}"},
                       "capture": [{"json": "$.token", "as": "authToken"}], "expect": {"status": [200, 401]}}
    assert plan["scenarios"][0]["steps"][2]["if"] == "authToken"
    assert plan["scenarios"][0]["steps"][3]["query"] == {"limit": 20, "status": "open"}
    assert plan["variables"]["adminToken"] == ""  # used, never defined: a TODO says so

    r, out = _run_brief(path, demo, tmp_path, "--target", demo.url)
    assert r.returncode in (0, 1), r.stderr
    assert r.stderr.count("config.processor") == 1
    doc = read_session(out)
    assert doc["summary"]["requests"] > 0
    names = {e["name"] for e in doc["endpoints"]}
    assert names & {"GET /health", "POST /auth/sign-in"}


def test_seed_artillery_stress_test_shape_and_run(demo, tmp_path):
    path = SEEDS / "artillery-stress-test.yml"
    plan = convert(path).plan
    assert [(p["arrival_rate"], p.get("ramp_to")) for p in plan["phases"]] == [
        (50, 100), (100, 200), (200, 500), (500, 1000), (1000, None)]
    assert plan["scenarios"] == [{"name": "Simple health check", "steps": [{"url": "/health"}]}]
    r = run_cli("validate", str(path))
    assert r.returncode == 0, r.stderr
    assert "5 phase(s), 360s" in r.stdout
    r, out = _run_brief(path, demo, tmp_path, "--target", demo.url)
    assert r.returncode == 0, r.stderr
    doc = read_session(out)
    assert doc["summary"]["status_codes"] == {"200": doc["summary"]["requests"]}
    assert doc["summary"]["requests"] >= 2


def test_seed_k6_metrics_sessions_shape_and_run(demo, tmp_path):
    path = SEEDS / "metrics-sessions-fixed.js"
    conv = convert(path)
    plan = conv.plan
    assert plan["target"] == "${BASE_URL}"
    assert [(p["duration"], p["vus"], p["ramp_to"]) for p in plan["phases"]] == [
        ("2m", 1, 100), ("5m", 100, 1000), ("2m", 1000, 0)]
    assert plan["thresholds"] == ["p(95) < 500", "error_rate < 0.01"]
    steps = plan["scenarios"][0]["steps"]
    assert steps == [{"method": "POST", "url": "/api/v1/metrics/sessions",
                      "headers": {"Authorization": "Bearer {{ token }}"}, "expect": {"status": 200}},
                     {"think": 1}]
    todos = " ".join(t.message for t in conv.todos)
    assert "payload" in todos and "r.timings.duration" in todos and "in quotes" in todos
    # BASE_URL comes from the environment: the run goes to the demo, whose 404s are errors.
    r, out = _run_brief(path, demo, tmp_path, "--vus", "1", env={"BASE_URL": demo.url})
    r2 = r
    assert r2.returncode in (0, 1), r2.stderr
    doc = read_session(out)
    assert doc["summary"]["requests"] >= 1
    assert [e["name"] for e in doc["endpoints"]] == ["POST /api/v1/metrics/sessions"]


@pytest.mark.parametrize("name, line, needle", [
    ("omni-service-load.yml", 26, "invalid YAML"),
    ("smm-model-router.yml", 5, "invalid YAML: mapping values are not allowed here"),
    ("metrics-sessions-verbatim.js", 1, "JavaScript the parser rejects"),
])
@pytest.mark.parametrize("command", ["import", "validate", "run"])
def test_seeds_that_do_not_parse_exit_2_with_file_and_line(name, line, needle, command):
    r = run_cli(command, str(SEEDS / name))
    assert r.returncode == 2
    assert f"{name}:{line}: {needle}" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("name", ["omni-websocket.js", "aiaas-test-data.js"])
def test_seeds_with_nothing_translatable_say_so(name):
    r = run_cli("import", str(SEEDS / name))
    assert r.returncode == 0
    assert "does not load as it is" in r.stderr and "at least one step" in r.stderr
    if name == "omni-websocket.js":
        for part in ("setup() is not run", "teardown() is not run", "wsConnection.receive()"):
            assert part in r.stderr and part in r.stdout
    else:
        assert "no `export default function`" in r.stderr
    r = run_cli("validate", str(SEEDS / name), env={"TARGET": "http://127.0.0.1:9"})
    assert r.returncode == 2
    assert re.search(rf"{re.escape(name)}(:\d+)?: scenarios\[1\](\.steps)?: a scenario needs at least one step",
                     r.stderr), r.stderr


# ---- every Artillery key ----------------------------------------------------------------------

def test_artillery_every_key():
    conv = convert(ALL_YML)
    plan = conv.plan
    assert plan["thresholds"] == ["p95 <= 500ms", "p99 <= 1000ms", "error_rate <= 5%"]
    assert plan["defaults"] == {"timeout": "10s", "headers": {"X-Client": "perftui-import"}}
    assert plan["variables"] == {
        "pageSize": 20, "color": ["red", "blue"],
        "email": ["test1@example.com", "test2@example.com"],
        "password": ["TestPassword123!", "TestPassword123!"]}
    assert plan["phases"] == [
        {"name": "Warm up", "duration": 2, "arrival_rate": 2},
        {"name": "Ramp", "duration": 4, "arrival_rate": 1, "ramp_to": 3, "max_in_flight": 20},
        {"name": "Breathe", "duration": 1, "pause": True},
        {"name": "Ten arrivals", "duration": 5, "arrival_rate": 2.0}]
    shop, chat = plan["scenarios"]
    assert (shop["name"], shop["weight"], chat["weight"]) == ("Shop", 3, 1)
    s = shop["steps"]
    assert s[0] == {"url": "/health", "expect": {"status": 200, "json_exists": ["$", "$.status"]}}
    assert s[1]["capture"] == [{"json": "$.token", "as": "authToken"}, {"json": "$.user.role", "as": "role"},
                               {"header": "content-type", "as": "ctype"},
                               {"regex": '"id":\\s*(\\d+)', "as": "userId"}]
    assert s[1]["expect"] == {"status": [200, 401], "json_equals": {"$.user.role": "user"}}
    assert s[2] == {"url": "/api/profile", "headers": {"Authorization": "Bearer {{ authToken }}"}, "if": "authToken"}
    assert s[3]["query"] == {"limit": "{{ pageSize }}", "status": "open"}
    assert s[4] == {"think": 0.1}
    assert s[5] == s[6] == s[7] == {"url": "/api/users/{{ $randomNumber(1, 10) }}"}  # loop count 3
    assert s[8] == {"method": "PUT", "url": "/echo", "body": "plain text {{ color }}"}
    assert s[9] == {"method": "PATCH", "url": "/echo", "json": {"note": "{{ $randomString() }}"}}
    assert s[10] == {"method": "DELETE", "url": "/status/204"}
    assert chat["steps"] == [{"ws_connect": "/ws"}, {"ws_send": '{"type": "ping"}'},
                             {"ws_send": {"type": "subscribe", "channel": "c1"}}, {"ws_hold": 0.2}]
    todo_keys = [t.key for t in conv.todos]
    assert todo_keys == ["config.payload.fields", "config.plugins.publish-metrics", "config.processor",
                         "scenarios[1].beforeScenario", "scenarios[1].flow[3].get.beforeRequest",
                         "scenarios[1].flow[3].get.afterResponse", "scenarios[1].flow[10]"]
    lines = {t.key: t.line for t in conv.todos}
    assert lines["scenarios[1].flow[3].get.beforeRequest"] == 88
    # The TODO sits beside its step in the TOML.
    text = to_toml(conv)
    todo_at = text.index("processor hook 'signRequest'")
    assert text.index('url = "/auth/sign-in"') < todo_at < text.index('url = "/api/profile"')
    assert "processor function 'pickItem'" in text.split('url = "/status/204"')[1]


def test_artillery_environments_become_plans(tmp_path):
    out = tmp_path / "shop.toml"
    r = run_cli("import", str(ALL_YML), "-o", str(out))
    assert r.returncode == 0, r.stderr
    base = load_plan(out).plan
    staging = load_plan(tmp_path / "shop.staging.toml").plan
    local = load_plan(tmp_path / "shop.local.toml").plan
    assert base.target == "http://localhost:3001" and len(base.phases) == 4
    assert staging.target == "https://staging.example.com"
    assert [(p.duration, p.arrival_rate) for p in staging.phases] == [(60, 5)]
    assert staging.defaults.timeout == "10s" and local.defaults.timeout == "5s"
    assert local.target == base.target and len(local.phases) == 4
    assert staging.name == "all-keys (staging)"
    # Each environment's TODOs are listed once, not once per plan.
    assert r.stderr.count("processor hook 'signRequest'") == 1


def test_artillery_run_directly_warns_once_per_item(demo, tmp_path):
    r, out = _run_brief(ALL_YML, demo, tmp_path, "--target", demo.url)
    assert r.returncode in (0, 1), r.stderr
    for needle in ("processor hook 'signRequest'", "processor hook 'logResponse'", "processor function 'pickItem'",
                   "config.plugins.publish-metrics", "environments (staging, local) are not applied"):
        assert r.stderr.count(needle) == 1, needle
    doc = read_session(out)
    names = {e["name"] for e in doc["endpoints"]}
    assert "GET /health" in names and "WS connect /ws" in names
    assert doc["summary"]["requests"] > 0


def test_artillery_templates_and_untranslatable_flow(tmp_path):
    path = write_plan(tmp_path, """
        config:
          target: "{{ $processEnvironment.TARGET_URL }}"
          phases:
            - duration: "1m"
              arrivalRate: 0
            - duration: 10
              arrivalRate: 1
        scenarios:
          - flow:
              - post:
                  url: "/x/${literal}"
                  json: { id: "{{ $uuid }}", at: "{{ $timestamp }}", bad: "{{ $nope() }}" }
                  ifTrue: "status == 200"
              - log: "hello"
              - loop:
                  - get: { url: "/y" }
                count: 1000
              - loop:
                  - get: { url: "/z" }
                over: items
    """, "t.yml")
    conv = convert(path)
    plan = conv.plan
    assert plan["target"] == "${TARGET_URL}"
    assert plan["phases"][0] == {"duration": "1m", "pause": True}
    steps = plan["scenarios"][0]["steps"]
    assert steps[0]["url"] == "/x/$${literal}"
    assert steps[0]["json"] == {"id": "{{ $uuid() }}", "at": "{{ $timestamp() }}", "bad": ""}
    assert "if" not in steps[0]
    assert steps[1:] == [{"url": "/y"}, {"url": "/z"}]
    messages = " | ".join(t.key + ": " + t.message for t in conv.todos)
    for needle in ("$nope()", "status == 200", "log 'hello'", "more than 500 unrolled steps", "over:".rstrip(":")):
        assert needle in messages, needle
    loaded = plan_from_dict(plan, env={"TARGET_URL": "http://127.0.0.1:9"})
    assert loaded.plan.target == "http://127.0.0.1:9"


@pytest.mark.parametrize("yaml_text, key, line, needle", [
    ("config:\n  target: http://h\n  phases:\n    - duration: 10\n      arrivalRate: ten\n",
     "config.phases[1].arrivalRate", 5, "expected a number of arrivals per second, got a string"),
    ("config:\n  target: http://h\n  phases: [{duration: 10, arrivalRate: 1}]\nscenarios:\n  - flow: {get: /x}\n",
     "scenarios[1].flow", 5, "expected a list of steps"),
    ("config:\n  target: http://h\n  phases:\n    - duration: soon\n      arrivalRate: 1\n",
     "config.phases[1].duration", 4, "expected a number of seconds or a duration"),
    ("config:\n  target: 42\n", "config.target", 2, "expected a URL string"),
    ("config:\n  target: http://h\n  phases: [{duration: 1, arrivalRate: 1}]\nscenarios:\n  - flow:\n"
     "      - get:\n          url: /x\n          expect:\n            - statusCode: ok\n",
     "scenarios[1].flow[1].get.expect[1].statusCode", 9, "expected a status code"),
    ("- just\n- a list\n", "", 1, "an Artillery script is a mapping"),
])
def test_artillery_bad_input_exit_2(tmp_path, yaml_text, key, line, needle):
    path = tmp_path / "bad.yml"
    path.write_text(yaml_text)
    for command in ("import", "validate"):
        r = run_cli(command, str(path))
        assert r.returncode == 2, r.stderr
        where = f"{path}:{line}: {key}: " if key else f"{path}:{line}: "
        assert where + needle in r.stderr, r.stderr
        assert "Traceback" not in r.stderr


def test_plan_problems_in_a_yaml_point_at_its_lines(tmp_path):
    path = tmp_path / "p.yml"
    path.write_text("config:\n  target: http://h\n  phases: [{duration: 1, arrivalRate: 1}]\nscenarios:\n"
                    "  - flow:\n      - get:\n          url: /x/{{ unclosed\n")
    r = run_cli("validate", str(path))
    assert r.returncode == 2
    assert f"{path}:6: scenarios[1].steps[1].url:" in r.stderr


# ---- every k6 construct -----------------------------------------------------------------------

def test_k6_every_key():
    conv = convert(ALL_JS)
    plan = conv.plan
    assert plan["target"] == "${BASE_URL:-http://localhost:8088}"
    assert plan["thresholds"] == ["p(95) < 500", "avg < 300", "p(99){GetUser} < 800", "error_rate < 0.5",
                                  "requests > 1", "success_rate > 0.5"]
    assert plan["phases"] == [
        {"name": "open", "duration": "2s", "arrival_rate": 2.0, "max_in_flight": 20},
        {"name": "ramp stage 1", "duration": "2s", "arrival_rate": 1.0, "ramp_to": 4.0},
        {"name": "ramp stage 2", "duration": "1s", "arrival_rate": 4.0, "ramp_to": 0.0},
        {"name": "users stage 1", "duration": "2s", "vus": 0, "ramp_to": 2},
        {"name": "steady", "duration": "1s", "vus": 2},
        {"name": "batch", "duration": "1s", "vus": 2}]
    s = plan["scenarios"][0]["steps"]
    assert s[0] == {"method": "POST", "url": "/auth/sign-in",
                    "json": {"email": "test1@example.com", "password": "TestPassword123!"},
                    "headers": {"Content-Type": "application/json"},
                    "expect": {"status": [200, 401], "json_exists": ["$.token"]},
                    "capture": [{"json": "$.token", "as": "token"}]}
    assert s[1] == {"url": "/api/users/{{ $vu }}", "headers": {"Authorization": "Bearer {{ token }}"},
                    "name": "GetUser", "expect": {"status": [200, 404], "body_contains": "id"},
                    "capture": [{"json": "$.id", "as": "userId"}]}
    assert s[2] == {"method": "PUT", "url": "/echo", "body": "text body"}
    assert s[3]["body"] == "a=1&b=two"
    assert s[4] == {"method": "DELETE", "url": "/status/204"}
    assert s[5] == {"url": "/api/profile", "headers": {"Authorization": "Bearer {{ token }}"}, "if": "token"}
    assert s[6:] == [{"ws_connect": "/ws", "headers": {"X-Client": "k6"}}, {"ws_send": {"type": "ping"}},
                     {"ws_hold": 0.2}, {"ws_close": True}, {"think": 0.1}]
    messages = " | ".join(t.key + ": " + t.message for t in conv.todos)
    for needle in ("new Trend", "setup() is not run", "at the same time", "shared-iterations", "login_time",
                   "loginTrend.add", "socket.on('message'", "sleep(Math.random())"):
        assert needle in messages, needle


def test_k6_run_directly(demo, tmp_path):
    r, out = _run_brief(ALL_JS, demo, tmp_path, env={"BASE_URL": demo.url})
    assert r.returncode in (0, 1), r.stderr
    assert r.stderr.count("setup() is not run") == 1
    doc = read_session(out)
    names = {e["name"] for e in doc["endpoints"]}
    assert {"POST /auth/sign-in", "GetUser", "WS connect /ws"} <= names
    assert doc["summary"]["requests"] > 0


def test_k6_small_cases(tmp_path):
    path = tmp_path / "s.js"
    path.write_text(
        "import http from 'k6/http';\n"
        "export const options = { vus: 3, duration: '20s', iterations: 9,\n"
        "  thresholds: { 'http_req_duration{name:Gone}': ['p(95)<1'], http_req_waiting: ['p(95)<1'] } };\n"
        "export default () => {\n"
        "  http.get(`http://api.test:8080/a/${__ITER + 1}`);\n"
        "  const r = http.get('http://api.test:8080/b?q=1');\n"
        "  const v = JSON.parse(r.body).items[0].id;\n"
        "  const loc = r.headers['Location'];\n"
        "  http.get(`http://other.test/c/${v}/${loc}`);\n"
        "  for (let i = 0; i < 3; i++) { http.get('/x'); }\n"
        "};\n")
    conv = convert(path)
    plan = conv.plan
    assert plan["target"] == "http://api.test:8080"
    assert plan["phases"] == [{"duration": "20s", "vus": 3}]
    assert "thresholds" not in plan
    s = plan["scenarios"][0]["steps"]
    assert s == [{"url": "/b?q=1", "capture": [{"json": "$.items[0].id", "as": "v"},
                                                {"header": "Location", "as": "loc"}]},
                 {"url": "http://other.test/c/{{ v }}/{{ loc }}"}]
    messages = " | ".join(t.key + ": " + t.message for t in conv.todos)
    for needle in ("__ITER + 1", "iterations", "'Gone'", "http_req_waiting", "a loop"):
        assert needle in messages, needle
    assert [t.line for t in conv.todos if "__ITER" in t.message] == [5]


@pytest.mark.parametrize("js, line, needle", [
    ("export default function () {\n  http.get(`x`\n}\n", 3, "JavaScript the parser rejects"),
    ("export const options = { vus: 'many' };\nexport default function () {}\n", None, "options.vus"),
    ("const o = x?.y;\n", 1, "JavaScript the parser rejects: Unexpected token"),
])
def test_k6_bad_input_exit_2(tmp_path, js, line, needle):
    path = tmp_path / "bad.js"
    path.write_text(js)
    r = run_cli("import", str(path))
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
    if line:
        assert f"{path}:{line}: " in r.stderr
    assert "Traceback" not in r.stderr


def test_import_writes_file_and_help_lists_it(tmp_path):
    out = tmp_path / "x.toml"
    r = run_cli("import", str(SEEDS / "artillery-stress-test.yml"), "-o", str(out))
    assert r.returncode == 0 and r.stdout == ""
    assert f"wrote {out}" in r.stderr
    assert tomllib.loads(out.read_text())["phases"][0]["ramp_to"] == 100
    r = run_cli("import", str(tmp_path / "missing.yml"))
    assert r.returncode == 2 and "missing.yml: no such file" in r.stderr
    r = run_cli("import", str(out))
    assert r.returncode == 2 and "imports Artillery YAML" in r.stderr
    r = run_cli("--help")
    assert "import" in r.stdout


# ---- no traceback, whatever the input --------------------------------------------------------

_ODD = [None, 1, -3, 0, 2.5, "x", "", "{{ a }}", "${X}", True, [], {}, [1, "a"], {"a": None}, {"url": 3},
        ["{{ $nope }}"], "10 min", {"json": "$..x", "as": "z"}]


def _paths(o, pre=()):
    yield pre
    if isinstance(o, dict):
        for k, v in o.items():
            yield from _paths(v, pre + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from _paths(v, pre + (i,))


def test_artillery_odd_values_give_problems_or_plans_never_tracebacks():
    import copy
    import random

    import yaml

    from perftui.errors import UserError
    from perftui.importers.artillery import convert_file
    from perftui.importers.common import write_toml

    base = yaml.safe_load(ALL_YML.read_text())
    paths = [p for p in _paths(base) if p]
    rnd = random.Random(16)
    outcomes = {"plan": 0, "problem": 0}
    for _ in range(300):
        doc = copy.deepcopy(base)
        for _ in range(rnd.randint(1, 3)):
            p = rnd.choice(paths)
            o = doc
            try:
                for k in p[:-1]:
                    o = o[k]
                o[p[-1]] = copy.deepcopy(rnd.choice(_ODD))
            except (KeyError, IndexError, TypeError):
                pass
        try:
            conv = convert_file(ALL_YML, yaml.safe_dump(doc))
        except UserError as e:
            assert str(e) and "Traceback" not in str(e)
            outcomes["problem"] += 1
            continue
        assert tomllib.loads(write_toml(conv, [])) == conv.plan
        outcomes["plan"] += 1
    assert outcomes["plan"] > 50 and outcomes["problem"] > 50, outcomes


def test_k6_odd_values_give_problems_or_plans_never_tracebacks():
    import random

    import esprima

    from perftui.errors import UserError
    from perftui.importers.common import write_toml
    from perftui.importers.k6 import convert_file

    text = ALL_JS.read_text()
    lits = [t for t in esprima.tokenize(text, {"range": True}) if t.type in ("Numeric", "String", "Boolean")]
    pool = ["null", "[]", "{}", "'x'", "-1", "1.5", "0", "undefined", "foo", "() => 1", "'${X}'", "`${foo}`",
            "true", "[1, 'a']", "{a: null}", "'10 min'", "(r) => r.status === 'a'", "__ITER + 1", "parseInt(v)"]
    rnd = random.Random(16)
    outcomes = {"plan": 0, "problem": 0}
    for _ in range(200):
        mutated = text
        for t in sorted(rnd.sample(lits, rnd.randint(1, 3)), key=lambda t: t.range[0], reverse=True):
            mutated = mutated[:t.range[0]] + rnd.choice(pool) + mutated[t.range[1]:]
        try:
            conv = convert_file(ALL_JS, mutated)
        except UserError as e:
            assert str(e)
            outcomes["problem"] += 1
            continue
        assert tomllib.loads(write_toml(conv, [])) == conv.plan
        outcomes["plan"] += 1
    assert outcomes["plan"] > 30 and outcomes["problem"] > 10, outcomes
