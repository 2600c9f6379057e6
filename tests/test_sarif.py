"""`yarch lint --format sarif`: a SARIF 2.1.0 log GitHub code scanning accepts. Checked here
for the structure the 2.1.0 schema requires of what yarch writes (the schema itself is not
available offline): version and `$schema`, one run whose driver lists every code as a rule,
results whose `ruleIndex` points at their `ruleId`, 1-based regions, related locations."""

from __future__ import annotations

import json

from click.testing import CliRunner

from compiler.cli import cli
from compiler.codes import CODES

from .conftest import SPECS


def _log(*paths: str) -> dict:
    out = CliRunner().invoke(cli, ["lint", "--format", "sarif", *paths])
    assert out.exit_code in (0, 1), out.output
    return json.loads(out.output)


def test_a_sarif_log_of_the_posts_mistakes() -> None:
    channels = SPECS.parent / "tests" / "fixtures" / "rules" / "channel-mismatch" / "fail.yaml"
    log = _log(str(SPECS / "posts"), str(channels))
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "yarch"
    assert [r["id"] for r in rules] == sorted(CODES)
    assert all(r["defaultConfiguration"]["level"] in ("error", "warning") for r in rules)
    results = run["results"]
    assert {r["ruleId"] for r in results} >= {
        "shape-mismatch",
        "unflattened-linear",
        "channel-mismatch",
    }
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["level"] in ("error", "warning") and r["message"]["text"]
        for location in r.get("locations", []) + r.get("relatedLocations", []):
            region = location["physicalLocation"]["region"]
            assert location["physicalLocation"]["artifactLocation"]["uri"].endswith(".yaml")
            assert 1 <= region["startLine"] <= region["endLine"]
            assert region["startColumn"] >= 1
    # the channels a layer receives, made elsewhere, are related locations with their labels
    related = [loc for r in results for loc in r.get("relatedLocations", [])]
    assert related and all(loc["message"]["text"] for loc in related)


def test_a_clean_spec_gives_a_log_with_no_results() -> None:
    (run,) = _log(str(SPECS / "googlenet.yaml"))["runs"]
    assert run["results"] == []
