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
