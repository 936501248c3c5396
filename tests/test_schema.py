"""``perftui schema``: the plan format's JSON schema accepts every shipped example plan and refuses
a plan with an unknown key or a wrong type."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    out = tmp_path_factory.mktemp("schema") / "plan.schema.json"
    r = run_cli("schema", "-o", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["$schema"].endswith("2020-12/schema")
    return doc


@pytest.mark.parametrize("plan", sorted((ROOT / "perftui" / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_example_plans_validate(schema, plan: Path):
    jsonschema.validate(tomllib.loads(plan.read_text()), schema)


def test_wrong_plans_do_not(schema):
    base = tomllib.loads((ROOT / "perftui" / "examples" / "demo.toml").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**base, "phasez": []}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**base, "thresholds": "p95 < 1s"}, schema)


def test_schema_to_stdout_and_bad_output():
    r = run_cli("schema")
    assert r.returncode == 0 and json.loads(r.stdout)["title"] == "perftui plan"
    r = run_cli("schema", "-o", "/nonexistent-dir/x.json")
    assert r.returncode == 2 and "/nonexistent-dir/x.json" in r.stderr


GOOD_STEPS = [
    {"url": "/api/users", "method": "POST", "json": {"a": 1}, "think": "1s"},
    {"think": "500ms"},
    {"graphql": "query Users { users { id } }", "variables": {"n": 1}},
    {"mcp": "tools/call", "tool": "search", "arguments": {"q": "x"}},
    {"ws_connect": "/ws", "subprotocols": ["chat"]},
    {"ws_request": {"type": "ping"}, "match": "type"},
]

# each mixes in a key that belongs to another kind (or two kinds' action keys)
MIXED_STEPS = [
    {"url": "/x", "ws_send": "hi"},                  # ws_send's action on an HTTP step
    {"think": "1s", "method": "POST"},               # an HTTP key on a pause
    {"graphql": "query { a }", "tool": "search"},    # an MCP key on a GraphQL step
    {"mcp": "tools/list", "variables": {"n": 1}},    # a GraphQL key on an MCP step
    {"ws_connect": "/ws", "json": {"a": 1}},         # an HTTP body on a WebSocket connect
    {"ws_request": {"t": 1}, "subprotocols": ["x"]},  # a ws_connect key on ws_request
    {"graphql": "query { a }", "ws_close": True},    # two action keys
]


def _with_steps(steps: list) -> dict:
    base = tomllib.loads((ROOT / "perftui" / "examples" / "demo.toml").read_text())
    # no thresholds: they name the example's endpoints, which these steps do not have
    return {**base, "thresholds": [], "scenarios": [{"name": "s", "steps": steps}]}


def test_steps_are_described_by_kind(schema):
    steps = schema["$defs"]["Scenario"]["properties"]["steps"]
    refs = {r["$ref"].rsplit("/", 1)[-1] for r in steps["items"]["anyOf"]}
    assert {"HttpStep", "ThinkStep", "GraphQLStep", "McpStep", "WsConnectStep", "WsSendStep", "WsRequestStep",
            "WsExpectStep", "WsHoldStep", "WsCloseStep"} <= refs
    for name in refs:
        assert schema["$defs"][name]["additionalProperties"] is False
    jsonschema.validate(_with_steps(GOOD_STEPS), schema)
    from perftui.planload import plan_from_dict

    assert len(plan_from_dict(_with_steps(GOOD_STEPS)).plan.scenarios[0].steps) == len(GOOD_STEPS)


@pytest.mark.parametrize("step", MIXED_STEPS, ids=lambda s: "+".join(s))
def test_a_step_with_another_kinds_key_fails(schema, step):
    from perftui.planload import plan_from_dict

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_with_steps([step]), schema)
    # the loader refuses it too, for the step: the schema says what perftui does
    from perftui.errors import PlanError

    with pytest.raises(PlanError) as err:
        plan_from_dict(_with_steps([step]))
    assert "scenarios[1].steps[1]" in str(err.value)  # positions count from 1
