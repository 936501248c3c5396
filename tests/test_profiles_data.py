"""Plan profiles (``[profiles.NAME]``, ``--profile``) and test data from files (``[variables.NAME]
file = ...``): loading, the problems of bad input, and what arrives at a real HTTP server on
127.0.0.1 that records every value it is sent (distribution between virtual users, iterations
and worker processes)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from perftui.errors import PlanError
from perftui.plan.data import DataFile, read_data
from perftui.planload import load_plan, redacted_plan
from perftui.worker.datafeed import DataFeed
from tests.conftest import read_session, run_cli, write_plan

# ---- a server that records what it was sent -------------------------------------------------


class Recorder:
    """HTTP/1.1 keep-alive server on 127.0.0.1 (a thread per connection) that answers 200 and
    keeps the query parameters of every request."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        lock = threading.Lock()
        queries = self.queries

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                with lock:
                    queries.append(dict(parse_qsl(urlsplit(self.path).query)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Recorder:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _run(plan: Path, *args: str, env: dict | None = None) -> dict:
    out = plan.parent / "session.json"
    r = run_cli("run", str(plan), "--headless", "--out", str(out), *args, env=env, timeout=90)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = read_session(out)
    doc["_stdout"] = r.stdout
    return doc


def _users_csv(directory: Path, n: int, name: str = "users.csv") -> Path:
    path = directory / name
    path.write_text("id,email\n" + "".join(f"{i},user{i}@example.com\n" for i in range(n)), encoding="utf-8")
    return path


# ---- data files: what arrives at the server ----------------------------------------------------


def test_sequential_rows_per_virtual_user_are_unique_across_workers(tmp_path):
    (tmp_path / "data").mkdir()
    _users_csv(tmp_path / "data", 40)
    with Recorder() as rec:
        plan = write_plan(tmp_path, f"""
            target = "{rec.url}"
            [variables.users]
            file = "data/users.csv"
            [[phases]]
            duration = "2s"
            vus = 12
            [[scenarios]]
            [[scenarios.steps]]
            url = "/r?u={{{{ users.id }}}}&e={{{{ users.email }}}}&vu={{{{ $vu }}}}&w={{{{ $worker }}}}"
            think = "50ms"
        """)
        doc = _run(plan, "--workers", "2")
    assert doc["plan"]["variables"]["users"]["file"] == str((tmp_path / "data" / "users.csv").resolve())
    by_vu: dict[tuple[str, str], set[str]] = defaultdict(set)
    for q in rec.queries:
        assert q["e"] == f"user{q['u']}@example.com"  # one row: its columns belong together
        by_vu[(q["w"], q["vu"])].add(q["u"])
    assert {w for w, _ in by_vu} == {"0", "1"}  # both workers ran virtual users
    assert len(by_vu) == 12
    assert all(len(rows) == 1 for rows in by_vu.values()), by_vu  # a virtual user keeps its row
    rows = [next(iter(r)) for r in by_vu.values()]
    assert len(set(rows)) == 12, sorted(rows)  # no row handed to two virtual users, on any worker
    # worker w hands out rows w, w + 2, w + 4, ...: the first twelve rows, in order
    assert sorted(map(int, rows)) == list(range(12))


def test_rows_per_iteration_advance_in_file_order_and_wrap(tmp_path):
    (tmp_path / "ids.json").write_text(json.dumps(["a", "b", "c", "d", "e"]))
    with Recorder() as rec:
        plan = write_plan(tmp_path, f"""
            target = "{rec.url}"
            [variables]
            item = {{ file = "ids.json", pick = "iteration" }}
            [[phases]]
            duration = "1s"
            vus = 1
            [[scenarios]]
            steps = [{{ url = "/r?v={{{{ item }}}}&i={{{{ $iteration }}}}" }}]
        """)
        _run(plan, "--workers", "1")
    seen = [q["v"] for q in rec.queries]
    assert len(seen) > 12
    assert seen[:12] == list("abcdeabcdeab")
    assert [int(q["i"]) for q in rec.queries[:5]] == [1, 2, 3, 4, 5]  # one virtual user, a row per iteration


def test_open_model_rows_in_order_per_arrival_and_at_random_per_iteration(tmp_path):
    """In the open model every arrival is a new virtual user: pick = "vu" hands each the next row
    (no row twice, across two workers); order = "random" covers every row, not in file order."""
    _users_csv(tmp_path, 1000)
    (tmp_path / "items.json").write_text(json.dumps([{"n": i, "tag": {"name": f"t{i}"}} for i in range(6)]))
    with Recorder() as rec:
        plan = write_plan(tmp_path, f"""
            target = "{rec.url}"
            [variables]
            users = {{ file = "users.csv" }}
            [variables.item]
            file = "items.json"
            pick = "iteration"
            order = "random"
            [[phases]]
            duration = "2s"
            arrival_rate = 120
            [[scenarios]]
            steps = [{{ url = "/r?u={{{{ users.id }}}}&n={{{{ item.n }}}}&t={{{{ item.tag.name }}}}" }}]
        """)
        _run(plan, "--workers", "2")
    ids = [int(q["u"]) for q in rec.queries]
    assert len(ids) >= 150 and len(set(ids)) == len(ids)  # 1000 rows: none used twice
    assert max(ids) < len(ids) + 20  # from the start of the file: both workers' shares, no gaps
    counts = Counter(q["n"] for q in rec.queries)
    assert set(counts) == {str(i) for i in range(6)}
    assert all(q["t"] == f"t{q['n']}" for q in rec.queries)  # nested JSON fields reach templates
    seq = [int(q["n"]) for q in rec.queries]
    assert any((b - a) % 6 != 1 for a, b in zip(seq, seq[1:]))


def test_feed_split_between_workers_without_a_shared_counter(tmp_path):
    import random

    spec = DataFile(file="x.json")
    (tmp_path / "x.json").write_text(json.dumps([{"i": i} for i in range(10)]))
    data = read_data(spec, tmp_path / "x.json")
    taken = []
    for w in range(3):
        feed = DataFeed(data, spec, w, 3, random.Random(0))
        taken.append([feed.next()["i"] for _ in range(5)])
    assert taken[0] == [0, 3, 6, 9, 0] and taken[1] == [1, 4, 7, 1, 4] and taken[2] == [2, 5, 8, 2, 5]
    first_rounds = taken[0][:4] + taken[1][:3] + taken[2][:3]
    assert sorted(first_rounds) == list(range(10))  # every row once before any repeats
    # more workers than rows: a worker without a share of its own walks the file from its offset
    (tmp_path / "y.json").write_text('["a", "b"]')
    few = read_data(spec, tmp_path / "y.json")
    feed = DataFeed(few, spec, 3, 5, random.Random(0))
    assert [feed.next() for _ in range(4)] == ["b", "a", "b", "a"]


def test_csv_options_tsv_header_less_and_quoted_fields(tmp_path):
    (tmp_path / "a.tsv").write_text("name\tcity\nAda\t\"Lon\tdon\"\n")
    (tmp_path / "b.csv").write_text('x@y.z;"a ""quoted"" one"\n', encoding="utf-8")
    plan = write_plan(tmp_path, """
        target = "http://127.0.0.1:9"
        [variables]
        a = { file = "a.tsv" }
        b = { file = "b.csv", delimiter = ";", columns = ["email", "note"] }
        [[phases]]
        duration = "1s"
        vus = 1
        [[scenarios]]
        steps = [{ url = "/?c={{ a.city }}&n={{ b.note }}" }]
    """)
    loaded = load_plan(plan)
    a, b = loaded.plan.variables["a"], loaded.plan.variables["b"]
    assert read_data(a, Path(a.file)).row(0) == {"name": "Ada", "city": "Lon\tdon"}
    assert read_data(b, Path(b.file)).row(0) == {"email": "x@y.z", "note": 'a "quoted" one'}


def test_a_large_csv_loads_fast(tmp_path):
    """100,000 rows: the loader's check and a worker's read are each well under a second on an idle
    core; the bound here is generous for a busy machine."""
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("id,email,token\n")
        for i in range(100_000):
            f.write(f"{i},user{i}@example.com,{i * 7919:012d}\n")
    plan = write_plan(tmp_path, """
        target = "http://127.0.0.1:9"
        [variables.users]
        file = "big.csv"
        [[phases]]
        duration = "1s"
        vus = 1
        [[scenarios]]
        steps = [{ url = "/?e={{ users.email }}" }]
    """)
    t0 = time.perf_counter()
    loaded = load_plan(plan)
    t1 = time.perf_counter()
    spec = loaded.plan.variables["users"]
    data = read_data(spec, Path(spec.file))
    t2 = time.perf_counter()
    assert len(data) == 100_000 and data.row(99_999)["email"] == "user99999@example.com"
    assert t1 - t0 < 10 and t2 - t1 < 10, (t1 - t0, t2 - t1)


# ---- data files: bad input ---------------------------------------------------------------------

_DATA_PLAN = """
target = "http://127.0.0.1:9"

[variables.users]
file = "{file}"{extra}

[[phases]]
duration = "1s"
vus = 1

[[scenarios]]
steps = [{{ url = "/?e={{{{ users.email }}}}" }}]
"""


@pytest.mark.parametrize("file,content,extra,expected", [
    ("missing.csv", None, "", "missing.csv: no such file"),
    ("empty.csv", "", "", "empty.csv: the file is empty"),
    ("header.csv", "email,name\n", "", "header.csv line 1: no data rows after the header line"),
    ("short.csv", "email,name\na@b.c,A\nb@c.d\n", "", "short.csv line 3: 1 field(s), but there are 2 column(s) (email, name)"),
    ("quote.csv", 'email,name\n"a@b.c,A\n', "", "quote.csv line 2: invalid CSV"),
    ("dup.csv", "email,email\na,b\n", "", "two columns are named 'email'"),
    ("space.csv", "e mail\nx\n", "", 'column "e mail" cannot be used in a template'),
    ("latin1.csv", b"email\ncaf\xe9\n", "", "latin1.csv line 2: not valid UTF-8"),
    ("object.json", '{"email": "a"}', "", "object.json line 1: expected a JSON array"),
    ("broken.json", '[\n{"email": "a"},\n{"email": }\n]', "", "broken.json line 3: invalid JSON"),
    ("mixed.json", '[{"email": "a"}, "b"]', "", "element 2 is not an object"),
    ("none.json", "[]", "", "the JSON array is empty"),
    ("ok.json", '[{"email": "a"}]', '\ndelimiter = ";"', "delimiter is for CSV files"),
    ("ok.csv", "email\na\n", '\npick = "each"', 'expected one of "vu", "iteration"'),
    ("ok.csv", "email\na\n", '\ndelimiter = "::"', "must be one character"),
])
def test_bad_data_files_name_plan_key_line_and_data_line(tmp_path, file, content, extra, expected):
    if content is not None:
        p = tmp_path / file
        p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content)
    plan = tmp_path / "plan.toml"
    plan.write_text(_DATA_PLAN.format(file=file, extra=extra))
    with pytest.raises(PlanError) as e:
        load_plan(plan)
    msg = str(e.value)
    assert expected in msg, msg
    problem = e.value.problems[0]
    assert problem.file == str(plan) and problem.line in (4, 5, 6)
    assert problem.path.startswith("variables.users")


def test_a_bad_data_file_is_exit_2_from_the_cli(tmp_path):
    (tmp_path / "users.csv").write_text("email,name\na@b.c\n")
    plan = tmp_path / "plan.toml"
    plan.write_text(_DATA_PLAN.format(file="users.csv", extra=""))
    r = run_cli("run", str(plan), "--headless")
    assert r.returncode == 2
    assert f"{plan}:5: variables.users.file: users.csv line 2: 1 field(s), but there are 2 column(s)" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_template_may_name_a_data_variable_only_if_it_is_defined(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(_DATA_PLAN.format(file="users.csv", extra="").replace("users.email", "user.email"))
    (tmp_path / "users.csv").write_text("email\na\n")
    with pytest.raises(PlanError, match=r"did you mean \{\{ users \}\}"):
        load_plan(plan)


# ---- profiles ----------------------------------------------------------------------------------

_PROFILES = """
name = "envs"
target = "{target}"
thresholds = ["p95 < 1s"]

[defaults]
timeout = "10s"
headers = {{ X-Base = "1" }}

[[phases]]
name = "base"
duration = "1s"
vus = 1

[[scenarios]]
steps = [{{ url = "/r?p={{{{ which }}}}" }}]

[variables]
which = "base"

[profiles.light]
description = "CI"
vus = 3
duration = "1s"
thresholds = ["error_rate < 1%", "requests > 1"]
variables = {{ which = "light" }}

[profiles.stress]
[profiles.stress.defaults]
timeout = "2s"
headers = {{ X-Stress = "1" }}
[[profiles.stress.phases]]
name = "climb"
duration = "1s"
arrival_rate = 5
ramp_to = 20
"""


def test_a_profile_replaces_phases_and_thresholds_and_merges_tables(tmp_path):
    plan = write_plan(tmp_path, _PROFILES.format(target="http://127.0.0.1:9"))
    base = load_plan(plan).plan
    assert base.profile == "" and list(base.profiles) == ["light", "stress"]
    light = load_plan(plan, profile="light").plan
    assert light.profile == "light"
    assert [(p.name, p.vus, p.duration) for p in light.phases] == [("light: 3 VUs", 3, "1s")]
    assert light.thresholds == ["error_rate < 1%", "requests > 1"] and light.variables["which"] == "light"
    assert light.defaults.timeout == "10s"
    stress = load_plan(plan, profile="stress").plan
    assert [(p.name, p.arrival_rate, p.ramp_to) for p in stress.phases] == [("climb", 5, 20)]
    assert stress.thresholds == ["p95 < 1s"]  # not given: the plan's
    assert stress.defaults.timeout == "2s" and stress.defaults.headers == {"X-Base": "1", "X-Stress": "1"}


def test_duration_alone_reshapes_the_first_phase(tmp_path):
    plan = write_plan(tmp_path, _PROFILES.format(target="http://127.0.0.1:9")
                      + '\n[profiles.long]\nduration = "5m"\n')
    phases = load_plan(plan, profile="long").plan.phases
    assert [(p.name, p.vus, p.duration) for p in phases] == [("base", 1, "5m")]


def test_problems_in_a_profile_name_the_profile_line(tmp_path):
    text = _PROFILES.format(target="http://127.0.0.1:9") + """
[profiles.bad]
thresholds = ["p95{GET /nope} < 1s"]
[profiles.bad.defaults]
timout = "1s"
[[profiles.bad.phases]]
duration = "1m"
vus = 0
"""
    plan = write_plan(tmp_path, text)
    lines = text.lstrip().splitlines()
    line_of = lambda s: next(i + 1 for i, ln in enumerate(lines) if ln.startswith(s))  # noqa: E731
    # checked even when the profile is not the one that runs
    with pytest.raises(PlanError) as e:
        load_plan(plan)
    found = {(p.path, p.line) for p in e.value.problems}
    assert ("profiles.bad.defaults.timout", line_of("timout")) in found
    assert ("profiles.bad.phases[1].vus", line_of("vus = 0")) in found
    assert "did you mean \"timeout\"" in str(e.value)
    # applied, its thresholds are checked against the plan's endpoints, at the profile's line
    text2 = text.replace('timout = "1s"', 'timeout = "1s"').replace("vus = 0", "vus = 2")
    plan.write_text(text2.lstrip())
    load_plan(plan)  # the plan as written is fine now
    with pytest.raises(PlanError) as e:
        load_plan(plan, profile="bad")
    [p] = e.value.problems
    assert p.path == "profiles.bad.thresholds[1]" and p.line == line_of("thresholds = [\"p95{GET")
    assert "no step has the endpoint name" in p.message


def test_profile_shortcut_problems_name_the_profile_keys(tmp_path):
    text = _PROFILES.format(target="http://127.0.0.1:9") + """
[profiles.both]
vus = 2
arrival_rate = 4
[profiles.twice]
vus = 2
[[profiles.twice.phases]]
duration = "1s"
vus = 1
[profiles.neg]
vus = -1
duration = "0s"
"""
    plan = write_plan(tmp_path, text)
    for name, where, words in [("both", "profiles.both.vus", "cannot be combined"),
                               ("twice", "profiles.twice.phases", "not both"),
                               ("neg", "profiles.neg.vus", "from 1 to")]:
        with pytest.raises(PlanError) as e:
            load_plan(plan, profile=name)
        assert any(p.path == where and words in p.message for p in e.value.problems), (name, str(e.value))
    with pytest.raises(PlanError) as e:
        load_plan(plan, profile="neg")
    assert any(p.path == "profiles.neg.duration" for p in e.value.problems), str(e.value)


def test_unknown_profile_is_exit_2_listing_the_profiles(tmp_path):
    plan = write_plan(tmp_path, _PROFILES.format(target="http://127.0.0.1:9"))
    r = run_cli("run", str(plan), "--profile", "ligth")
    assert r.returncode == 2
    assert 'no profile "ligth" in this plan; did you mean "light"? (its profiles: light, stress)' in r.stderr
    other = write_plan(tmp_path, _PROFILES.format(target="http://127.0.0.1:9").split("[profiles.light]")[0], "p2.toml")
    r = run_cli("run", str(other), "--profile", "light")
    assert r.returncode == 2 and "this plan has no [profiles.NAME] sections" in r.stderr


def test_a_plan_cannot_choose_its_own_profile(tmp_path):
    plan = write_plan(tmp_path, 'profile = "light"\n' + _PROFILES.format(target="http://127.0.0.1:9"))
    with pytest.raises(PlanError, match="profile: a profile is chosen when the plan runs"):
        load_plan(plan)


def test_validate_checks_and_lists_every_profile(tmp_path):
    plan = write_plan(tmp_path, _PROFILES.format(target="http://127.0.0.1:9"))
    r = run_cli("validate", str(plan))
    assert r.returncode == 0, r.stderr
    assert "profile light: ok · 3 VUs · 1s · 2 threshold(s) · CI" in r.stdout
    assert "profile stress: ok · up to 20/s · 1 phase(s) · 1s" in r.stdout
    plan.write_text(plan.read_text() + '\n[profiles.far]\nthresholds = ["p95{GET /x} < 1s"]\n')
    r = run_cli("validate", str(plan))
    assert r.returncode == 2 and "profiles.far.thresholds[1]: no step has the endpoint name" in r.stderr


def test_a_run_with_a_profile_from_the_environment_records_it(tmp_path):
    with Recorder() as rec:
        plan = write_plan(tmp_path, _PROFILES.format(target=rec.url))
        doc = _run(plan, "--workers", "1", env={"PERFTUI_PROFILE": "light"})
    assert doc["plan"]["profile"] == "light" and "profiles" not in doc["plan"]
    assert doc["plan"]["phases"][0]["vus"] == 3
    assert {q["p"] for q in rec.queries} == {"light"}
    first = doc["_stdout"].splitlines()[0]
    assert first.startswith("perftui · envs [profile light] → ")
    assert "envs [profile light] · " in doc["_stdout"]  # the summary's head line
    assert [t["expr"] for t in doc["thresholds"]] == ["error_rate < 1%", "requests > 1"]
    r = run_cli("ls")
    assert r.returncode == 0 and "envs [light]" in r.stdout
    # compare says when the runs had different profiles; the HTML report names the profile
    light = tmp_path / "session.json"
    plain = tmp_path / "plain.json"
    other = json.loads(light.read_text())
    del other["plan"]["profile"]
    plain.write_text(json.dumps(other))
    r = run_cli("compare", str(plain), str(light), "--fail-on", "never")
    assert r.returncode == 0, r.stderr
    assert "note: the runs used different profiles (none and light); their load was not the same" in r.stdout
    assert "(envs [light], " in r.stdout
    r = run_cli("report", str(light), "--html", str(tmp_path / "r.html"))
    assert r.returncode == 0, r.stderr
    assert '<h1>envs <span class="meta">[profile light]</span></h1>' in (tmp_path / "r.html").read_text()


def test_the_command_line_beats_the_environment_and_overrides_apply_after_the_profile(tmp_path):
    with Recorder() as rec:
        plan = write_plan(tmp_path, _PROFILES.format(target=rec.url))
        doc = _run(plan, "--workers", "1", "--profile", "stress", "--vus", "2", "--duration", "1s",
                   env={"PERFTUI_PROFILE": "light"})
    assert doc["plan"]["profile"] == "stress"
    assert [p["vus"] for p in doc["plan"]["phases"]] == [2]
    assert doc["plan"]["defaults"]["timeout"] == "2s"


def test_redacted_plan_keeps_the_profile_but_not_the_other_variants(tmp_path):
    plan = write_plan(tmp_path, _PROFILES.format(target="http://127.0.0.1:9"))
    data = redacted_plan(load_plan(plan, profile="stress"))
    assert data["profile"] == "stress" and "profiles" not in data


# ---- the plan picker ---------------------------------------------------------------------------


async def test_the_picker_shows_a_plans_profiles_and_opens_the_chosen_one(tmp_path):
    from perftui.ui.app import PerftuiApp
    from perftui.ui.screens.picker import PickerScreen
    from perftui.ui.widgets import HeaderBar
    from tests.test_ui import dashboard, text_of
    from tests.ui_fakes import ScriptedBackend

    plans = tmp_path / "plans"
    plans.mkdir()
    write_plan(plans, _PROFILES.format(target="http://127.0.0.1:9"), "envs.toml")
    backend = ScriptedBackend()
    app = PerftuiApp(plan_dirs=[(plans, "plans/")], backend=backend)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, PickerScreen)
        head = text_of(picker.head)
        assert "profile   none   light   stress    p: next" in head
        assert "2 profiles" in str(picker.plan_list.get_option_at_index(0).prompt)
        await pilot.press("p")
        entry = picker.entries[0]
        assert entry.profile == "light" and entry.loaded.plan.phases[0].vus == 3
        head = text_of(picker.head)
        assert "3 VUs · 1s · 2 threshold(s)" in head and "\nCI\n" in head  # the profile's description
        assert "light: 3 VUs" in text_of(picker.body) and "requests > 1" in text_of(picker.body)
        assert "[light]" in str(picker.plan_list.get_option_at_index(0).prompt)
        await pilot.press("p", "p")  # stress, then back to the plan as written
        assert entry.profile == "" and entry.loaded.plan.phases[0].name == "base"
        await pilot.press("p", "enter")
        screen = await dashboard(pilot, app)
        assert app.controller.plan.profile == "light"
        assert "[light]" in text_of(screen.query_one(HeaderBar))


def test_a_detached_run_keeps_its_profile(tmp_path):
    sessions = tmp_path / "sessions"
    env = {"PERFTUI_SESSIONS_DIR": str(sessions)}
    with Recorder() as rec:
        plan = write_plan(tmp_path, _PROFILES.format(target=rec.url))
        r = run_cli("run", str(plan), "--profile", "light", "--detach", "--workers", "1", env=env)
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 60
        while not list(sessions.glob("*/session.json")) and time.monotonic() < deadline:
            time.sleep(0.2)
    [doc_path] = list(sessions.glob("*/session.json"))
    doc = read_session(doc_path)
    assert doc["plan"]["profile"] == "light" and doc["summary"]["requests"] > 0
    assert {q["p"] for q in rec.queries} == {"light"}
    r = run_cli("ls", env=env)
    assert "envs [light]" in r.stdout


def test_a_template_reading_a_field_the_data_file_lacks_is_refused(tmp_path):
    (tmp_path / "users.csv").write_text("email,password\na,b\n")
    (tmp_path / "ids.json").write_text("[1, 2]")
    (tmp_path / "pairs.json").write_text("[[1, 2], [3, 4]]")
    plan = write_plan(tmp_path, """
        target = "http://127.0.0.1:9"
        [variables]
        users = { file = "users.csv" }
        ids = { file = "ids.json" }
        pairs = { file = "pairs.json" }
        [[phases]]
        duration = "1s"
        vus = 1
        [[scenarios]]
        [[scenarios.steps]]
        url = "/?e={{ users.emial }}&i={{ ids.n }}&p={{ pairs.0 }}&ok={{ users.email }}"
        json = { p = "{{ users.pasword }}" }
    """)
    with pytest.raises(PlanError) as e:
        load_plan(plan)
    msgs = [(p.path, p.line, p.message) for p in e.value.problems]
    assert msgs == [
        ("scenarios[1].steps[1].url", 11, '{{ users.emial }}: no row of users.csv has a field "emial" (email, password);'
                                          " did you mean {{ users.email }}?"),
        ("scenarios[1].steps[1].url", 11, "{{ ids.n }}: the elements of ids.json are plain values, not objects;"
                                          " write {{ ids }}"),
        ("scenarios[1].steps[1].json.p", 12, '{{ users.pasword }}: no row of users.csv has a field "pasword"'
                                             " (email, password); did you mean {{ users.password }}?"),
    ]
    # a step that captures into the name replaces the rows: its fields are whatever was captured
    plan.write_text(plan.read_text().replace('json = { p = "{{ users.pasword }}" }',
                                             'capture = [{ json = "$", as = "users" }]')
                    .replace("{{ ids.n }}", "{{ ids }}"))
    load_plan(plan)


def test_validate_describes_the_data_files(tmp_path):
    r = run_cli("validate", "plans/test-data.toml")
    assert r.returncode == 0, r.stderr
    assert "  data users ← plans/data/users.csv · 200 rows (email, password, name) · per virtual user, in order" in r.stdout
    assert "  data bounty ← plans/data/bounties.json · 15 rows (id, status) · per iteration, at random" in r.stdout


def test_environment_values_in_a_profile_take_the_type_of_their_key(tmp_path):
    plan = write_plan(tmp_path, _PROFILES.format(target="http://127.0.0.1:9") + """
[profiles.env]
vus = "${VUS:-4}"
duration = "${LENGTH}"
[profiles.env.defaults]
max_connections = "${CONNS:-7}"
""")
    loaded = load_plan(plan, profile="env", env={"VUS": "6", "LENGTH": "2m"})
    assert [(p.vus, p.duration) for p in loaded.plan.phases] == [(6, "2m")]
    assert loaded.plan.defaults.max_connections == 7
    with pytest.raises(PlanError) as e:
        load_plan(plan, profile="env", env={"VUS": "lots", "LENGTH": "2m"})
    assert [p.path for p in e.value.problems] == ["profiles.env.vus"]
    with pytest.raises(PlanError) as e:
        load_plan(plan, profile="env", env={})
    assert [(p.path, "LENGTH is not set" in p.message) for p in e.value.problems] == [("profiles.env.duration", True)]
    _users_csv(tmp_path, 50)
    plan = write_plan(tmp_path, """
        target = "http://127.0.0.1:9"
        [variables.users]
        file = "users.csv"
        [[phases]]
        duration = "10s"
        arrival_rate = 5
        ramp_to = 15
        [[scenarios]]
        steps = [{ url = "/?e={{ users.email }}" }]
    """)
    r = run_cli("validate", str(plan))
    assert r.returncode == 0, r.stderr
    assert "50 rows (id, email) · per virtual user, in order (up to 100 virtual users: rows will be shared)" in r.stdout


def test_a_profile_that_does_not_run_needs_none_of_its_environment_variables(tmp_path):
    plan = write_plan(tmp_path, _PROFILES.format(target="http://127.0.0.1:9") + """
[profiles.production]
target = "${PROD_URL}"
vus = "${PROD_VUS:-50}"
duration = "${PROD_LENGTH}"
[profiles.production.defaults]
headers = { Authorization = "Bearer ${PROD_TOKEN}" }
""")
    assert load_plan(plan, profile="light", env={}).plan.target == "http://127.0.0.1:9"
    assert load_plan(plan, env={}).plan.profile == ""
    with pytest.raises(PlanError) as e:
        load_plan(plan, profile="production", env={"PROD_URL": "http://prod.example"})
    assert [p.path for p in e.value.problems] == ["profiles.production.duration",
                                                   "profiles.production.defaults.headers.Authorization"]
    plan.write_text(plan.read_text().replace('duration = "${PROD_LENGTH}"\n', ""))
    prod = load_plan(plan, profile="production", env={"PROD_URL": "http://prod.example", "PROD_TOKEN": "s3cret"})
    assert prod.plan.phases[0].vus == 50
    assert prod.plan.target == "http://prod.example"
    assert redacted_plan(prod)["defaults"]["headers"]["Authorization"] == "***"
    # validate applies every profile: it names what production needs
    r = run_cli("validate", str(plan), env={"PROD_URL": "", "PROD_TOKEN": ""})
    assert r.returncode == 2 and "profiles.production.target" in r.stderr
