"""{{ }} templates (perftui.template) and the JSON path subset (perftui.jsonpath)."""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perftui.jsonpath import MISSING, JsonPath, compile_path
from perftui.template import BUILTINS, CONTEXT, Template, TemplateError, compile_json, compile_template, to_text

# ---- templates -----------------------------------------------------------------------------


def test_static_template_is_returned_unchanged():
    t = compile_template("/api/users?limit=20")
    assert isinstance(t, Template) and t.static and t.names == frozenset()
    assert t.render({}) is t.source
    assert compile_template("").render({"x": 1}) == ""
    assert compile_template("a } b }} c {").static


@pytest.mark.parametrize(
    "text, vars, expected",
    [
        ("Bearer {{ authToken }}", {"authToken": "abc"}, "Bearer abc"),
        ("{{authToken}}", {"authToken": "abc"}, "abc"),
        ("{{   a   }}-{{b}}", {"a": 1, "b": 2.5}, "1-2.5"),
        ("/users/{{ id }}/x", {"id": 42}, "/users/42/x"),
        ("{{ flag }}", {"flag": True}, "true"),
        ("{{ flag }}", {"flag": False}, "false"),
        ("{{ nothing }}", {"nothing": None}, ""),
        ("[{{ undefined }}]", {}, "[]"),
        ("{{ obj }}", {"obj": {"a": [1, 2]}}, '{"a":[1,2]}'),
        ("{{ obj.a[1] }}", {"obj": {"a": [1, 2]}}, "2"),
        ("{{ obj.a[-1] }}", {"obj": {"a": [1, 2]}}, "2"),
        ("{{ obj.a.0 }}", {"obj": {"a": [7, 8]}}, "7"),
        ("{{ obj.missing.deeper }}", {"obj": {"a": 1}}, ""),
        ("{{ obj[5] }}", {"obj": [1]}, ""),
        ("100% {{ x }} %s %%", {"x": "y"}, "100% y %s %%"),
        ("{{ '{{' }} literal {{ \"}}\" }}", {}, "{{ literal }}"),
        ("{{ $vu }}/{{ $iteration }}/{{ $worker }}", {"$vu": 3, "$iteration": 9, "$worker": 0}, "3/9/0"),
        ("é{{ x }}ü", {"x": "ß"}, "éßü"),
    ],
)
def test_render(text, vars, expected):
    assert compile_template(text).render(vars) == expected


def test_names_are_user_variables_only():
    t = compile_template("{{ a }} {{ b.c }} {{ a }} {{ $vu }} {{ $uuid() }} {{ 'lit' }}")
    assert t.names == frozenset({"a", "b"}) and not t.static


def test_constant_expressions_are_not_static_but_render_once():
    t = compile_template("x{{ 'y' }}z")
    assert not t.static and t.names == frozenset() and t.render({}) == "xyz"


def test_builtins():
    assert set(BUILTINS) >= {"randomString", "randomInt", "uuid", "randomUUID", "timestamp", "isoTime"}
    assert set(CONTEXT) == {"vu", "iteration", "worker"}
    s = compile_template("{{ $randomString() }}").render({})
    assert re.fullmatch(r"[a-z0-9]{10}", s)
    assert re.fullmatch(r"[a-z0-9]{3}", compile_template("{{ $randomString(3) }}").render({}))
    assert compile_template("{{ $randomString(0) }}").render({}) == ""
    seen = {compile_template("{{ $randomInt(1, 3) }}").render({}) for _ in range(300)}
    assert seen == {"1", "2", "3"}  # inclusive at both ends
    assert compile_template("{{ $randomInt(-2, -2) }}").render({}) == "-2"
    assert compile_template("{{ $randomNumber(5,5) }}").render({}) == "5"
    for fn in ("uuid", "randomUUID"):
        u = compile_template(f"{{{{ ${fn}() }}}}").render({})
        assert uuid.UUID(u).version == 4
    before = int(time.time() * 1000)
    ts = int(compile_template("{{ $timestamp() }}").render({}))
    assert before <= ts <= int(time.time() * 1000)
    iso = compile_template("{{$isoTime()}}").render({})
    assert iso.endswith("Z") and abs(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() - time.time()) < 5


def test_each_render_draws_fresh_values():
    t = compile_template("{{ $uuid() }}")
    assert len({t.render({}) for _ in range(20)}) == 20


@pytest.mark.parametrize(
    "text, message",
    [
        ("{{ x", "'{{' is never closed"),
        ("abc {{", "'{{' is never closed"),
        ("{{ }}", "empty '{{ }}'"),
        ("{{ x y }}", "expected '}}' to close the expression, got 'y }}'"),
        ("{{ 1x }}", "expected a variable name, $function() or 'text'"),
        ("{{ x-y }}", "expected '}}' to close the expression"),
        ("{{ $ }}", "expected a built-in name after '$'"),
        ("{{ $nope() }}", "unknown built-in $nope; known: $randomString"),
        ("{{ $randmInt(1, 2) }}", "did you mean $randomInt?"),
        ("{{ $uuid }}", "$uuid is a function: write $uuid()"),
        ("{{ $vu() }}", "$vu is a value, not a function"),
        ("{{ $randomInt(1) }}", "wrong number of arguments (1): $randomInt(a, b)"),
        ("{{ $uuid(1) }}", "wrong number of arguments (1): $uuid()"),
        ("{{ $randomInt(5, 1) }}", "lower bound 5 is greater than the upper bound 1"),
        ("{{ $randomString(-1) }}", "length must be between 0 and"),
        ("{{ $randomString(x) }}", "expected an integer argument"),
        ("{{ $randomInt(1 2) }}", "expected ',' or ')'"),
        ("{{ $randomInt(1, 2 }}", "expected ',' or ')'"),
        ("{{ 'open }}", "unterminated string literal"),
        ("{{ a[x] }}", "expected an integer index"),
        ("{{ a[1 }}", "expected ']'"),
    ],
)
def test_errors_say_what_was_expected_and_where(text, message):
    with pytest.raises(TemplateError) as info:
        compile_template(text)
    assert message in str(info.value)
    assert "(at character " in str(info.value) and repr(text)[:20] in str(info.value)
    assert isinstance(info.value, ValueError)


def test_compile_is_cached_and_templates_are_reusable():
    assert compile_template("{{ a }}") is compile_template("{{ a }}")
    t = compile_template("{{ a }}")
    assert [t.render({"a": i}) for i in range(3)] == ["0", "1", "2"]


def test_to_text():
    assert to_text("s") == "s" and to_text(None) == "" and to_text(True) == "true" and to_text(3) == "3"
    assert to_text(0.5) == "0.5" and to_text([1, "a"]) == '[1,"a"]' and to_text((1,)) == "[1]"
    assert to_text(dt.date(2026, 1, 2)) == "2026-01-02"


def test_render_is_cheap():
    t = compile_template("Bearer {{ authToken }}")
    vars = {"authToken": "x" * 40}
    start = time.perf_counter()
    for _ in range(20_000):
        t.render(vars)
    per_call = (time.perf_counter() - start) / 20_000
    assert per_call < 20e-6  # typically well under 1 µs; generous for slow CI machines


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), st.text(max_size=10)))
def test_fuzz_compile_only_raises_template_error(text, vars):
    try:
        t = compile_template(text)
    except TemplateError:
        return
    out = t.render(vars)
    assert isinstance(out, str)
    if "{{" not in text:
        assert out == text


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.text(alphabet="abc{}% '$", max_size=6), st.sampled_from(["{{ x }}", "{{ y.z }}"])), max_size=6))
def test_fuzz_literals_survive(parts):
    text = "".join(parts)
    try:
        t = compile_template(text)
    except TemplateError:
        return
    vars = {"x": "X", "y": {"z": "Z"}}
    out = t.render(vars)
    if t.static:
        assert out == text


# ---- JSON bodies ---------------------------------------------------------------------------


def test_json_static_body_is_encoded_once():
    jt = compile_json({"a": 1, "b": ["x", {"c": None}], "d": 1.5, "e": True})
    assert jt.static and jt.names == frozenset()
    assert jt.render({}) == b'{"a":1,"b":["x",{"c":null}],"d":1.5,"e":true}'
    assert jt.render({}) is jt.render({})


def test_json_native_types_for_whole_string_templates():
    jt = compile_json(
        {
            "email": "{{ email }}",
            "count": "{{ n }}",
            "n_text": "n={{ n }}",
            "rand": "{{ $randomInt(7, 7) }}",
            "ts": "{{ $timestamp() }}",
            "obj": "{{ captured }}",
            "missing": "{{ nope }}",
            "list": ["{{ n }}", "lit", {"deep": "{{ flag }}"}],
            "jsonrpc": "2.0",
        }
    )
    assert not jt.static and jt.names == {"email", "n", "captured", "nope", "flag"}
    out = msgspec.json.decode(jt.render({"email": "a@b", "n": 3, "captured": {"id": 1}, "flag": False}))
    assert out["email"] == "a@b" and out["count"] == 3 and out["n_text"] == "n=3"
    assert out["rand"] == 7 and isinstance(out["ts"], int)
    assert out["obj"] == {"id": 1} and out["missing"] == ""
    assert out["list"] == [3, "lit", {"deep": False}] and out["jsonrpc"] == "2.0"


def test_json_is_compact_and_keys_are_not_templated():
    jt = compile_json({"{{ k }}": "{{ v }}"})
    assert jt.render({"v": "x"}) == b'{"{{ k }}":"x"}'
    assert compile_json("{{ v }}").render({"v": [1, 2]}) == b"[1,2]"
    assert compile_json(5).render({}) == b"5"
    assert compile_json(dt.datetime(2026, 1, 2, 3, 4, 5)).render({}) == b'"2026-01-02T03:04:05"'


def test_json_template_errors_name_the_place():
    with pytest.raises(TemplateError, match=r"^params\.arguments\.text: .*never closed"):
        compile_json({"params": {"arguments": {"text": "{{ oops"}}})
    with pytest.raises(TemplateError, match=r"^items\[1\]: "):
        compile_json({"items": ["ok", "{{ $bad() }}"]})


def test_json_seed_mcp_body():
    # Seed 000's MCP request, as a plan would write it.
    jt = compile_json(
        {
            "jsonrpc": "2.0",
            "id": "{{ $randomUUID() }}",
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "Load test message {{ $randomUUID() }}"}},
        }
    )
    a, b = (msgspec.json.decode(jt.render({})) for _ in range(2))
    assert a["id"] != b["id"] and uuid.UUID(a["id"])
    assert a["params"]["arguments"]["text"].startswith("Load test message ")


# ---- JSON paths ----------------------------------------------------------------------------

DOC = {
    "token": "t",
    "data": {"items": [{"id": 1}, {"id": 2, "tags": ["a", "b"]}], "key with space": 5, "it's": 6},
    "zero": 0,
    "none": None,
    "list": [10, 20, 30],
}


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("$", DOC),
        ("$.token", "t"),
        ("$.data.items[0].id", 1),
        ("$.data.items[-1].tags[1]", "b"),
        ("$.data['key with space']", 5),
        ('$.data["key with space"]', 5),
        ("$.data['it\\'s']", 6),
        ("$['data']['items'][1]['id']", 2),
        ("$.zero", 0),
        ("$.none", None),
        ("$.list[2]", 30),
        ("$.list.1", 20),
        ("  $.token  ", "t"),
        ("$.data.items[ 0 ].id", 1),
        ("$.missing", MISSING),
        ("$.token.deeper", MISSING),
        ("$.list[3]", MISSING),
        ("$.list[-4]", MISSING),
        ("$.data[0]", MISSING),
        ("$.list.x", MISSING),
    ],
)
def test_find(expr, expected):
    found = compile_path(expr).find(DOC)
    if expected is MISSING:
        assert found is MISSING
    else:
        assert found == expected


def test_find_on_odd_documents():
    p = compile_path("$.a[0]")
    for doc in (None, 5, "text", [], {}, {"a": "xyz"}, {"a": {}}):
        assert p.find(doc) is MISSING
    assert compile_path("$").find(None) is None
    assert not MISSING and repr(MISSING) == "MISSING"


def test_paths_compare_by_source():
    assert compile_path("$.a") == compile_path("$.a") and len({compile_path("$.a"), compile_path("$.a")}) == 1
    assert isinstance(compile_path("$.a"), JsonPath) and compile_path("$.a").source == "$.a"


@pytest.mark.parametrize(
    "expr, message",
    [
        ("", "empty JSON path"),
        ("token", "must start with '$': did you mean '$.token'?"),
        (".token", "did you mean '$.token'?"),
        ("$.", "expected a key name after '.'"),
        ("$..a", "recursive descent '..' is not supported"),
        ("$.*", "wildcards are not supported"),
        ("$.a[*]", "wildcards and filters are not supported"),
        ("$.a[?(@.x)]", "wildcards and filters are not supported"),
        ("$.a[x]", "expected an index like [0] or [-1], or a quoted key"),
        ("$.a['x]", "expected an index like [0]"),
        ("$a", "expected '.' or '[' at character 2"),
        ("$.a b", "expected '.' or '[' at character 4"),
    ],
)
def test_bad_paths(expr, message):
    with pytest.raises(ValueError) as info:
        compile_path(expr)
    assert message in str(info.value)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="$.[]'\"ab0-1* ", max_size=15))
def test_fuzz_paths(expr):
    try:
        p = compile_path(expr)
    except ValueError:
        return
    p.find(DOC)
    p.find([DOC])
