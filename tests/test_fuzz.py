"""The structural fuzzer (scripts/fuzz.py) in a short, fixed profile: PROFILE_CASES cases from
seed PROFILE_SEED, and its worker pool's time and memory limits.

`test_fuzz_profile` fails while the compiler still has the bugs the fuzzer found when it was
written (OverflowError from `int(1e999)`, RecursionError from long `${...}` sums, `extends:`
with a NUL byte or a 300-character name, unbounded `[1] * 10**9` in expressions, ...); it
passes once those are fixed. `make fuzz` runs 100,000 random cases instead.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import time

import pytest

from .conftest import ROOT

PROFILE_SEED = 20261206
PROFILE_CASES = 400


def _load_fuzz():
    name = "yarch_fuzz"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it is being run
    spec.loader.exec_module(module)
    return module


fuzz = _load_fuzz()


def _ok(seed, work):
    return {"seed": seed, "outcome": "ok", "seconds": 0.0, "rss": 0}


def test_fuzz_profile():
    records = fuzz.run(fuzz.case_seeds(PROFILE_SEED, PROFILE_CASES), 2)
    assert len(records) == PROFILE_CASES
    failures = [r for r in records if r["outcome"] != "ok"]
    lines = [
        f"seed {r['seed']}: {r['outcome']} {r.get('error', '')} at {r.get('where')}"
        for r in failures
    ]
    assert not failures, "replay one with `python scripts/fuzz.py --replay SEED`:\n" + "\n".join(
        lines
    )


def test_cases_are_reproducible_from_their_seed(tmp_path):
    for seed in range(40):
        a = fuzz.generate(seed, tmp_path)
        b = fuzz.generate(seed, tmp_path)
        files_a = fuzz.case_files(a, random.Random(seed))
        assert files_a == fuzz.case_files(b, random.Random(seed))
        assert a.mutations and a.mutations == b.mutations
    labels = {fuzz.generate(seed, tmp_path).label for seed in range(40)}
    assert len(labels) > 10  # the library specs and generated ones, not one spec again and again


def test_a_case_over_the_time_limit_is_killed_and_its_worker_replaced(monkeypatch):
    def slow_on_one(seed, work):
        if seed == 1:
            time.sleep(30)
        return _ok(seed, work)

    monkeypatch.setattr(fuzz, "run_case", slow_on_one)  # the workers are forked: they see it
    start = time.monotonic()
    records = fuzz.run([0, 1, 2, 3], 1, time_limit=1.0)
    assert time.monotonic() - start < 20  # generous: only catches a pool that waits for the sleep
    outcomes = {r["seed"]: r["outcome"] for r in records}
    assert outcomes == {0: "ok", 1: "timeout", 2: "ok", 3: "ok"}


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc are Linux's")
def test_a_case_over_the_memory_limit_is_over_memory(monkeypatch):
    def greedy(case, folder, stage):
        stage[0] = "greedy"
        if case.seed == 1:
            bytearray(2 * fuzz.MEMORY_LIMIT)

    monkeypatch.setattr(fuzz, "exercise", greedy)
    records = fuzz.run([0, 1, 2], 1)
    outcomes = {r["seed"]: r["outcome"] for r in records}
    assert outcomes == {0: "ok", 1: "over-memory", 2: "ok"}


def test_an_exception_is_an_internal_error_with_its_frame(monkeypatch, tmp_path):
    def broken(case, folder, stage):
        stage[0] = "lint_file"
        raise KeyError("missing")

    monkeypatch.setattr(fuzz, "exercise", broken)
    record = fuzz.run_case(5, tmp_path)
    assert record["outcome"] == "internal-error"
    assert record["type"] == "KeyError" and record["stage"] == "lint_file"
    assert "test_fuzz.py" in record["where"] and "broken" in record["where"]


def test_one_slow_command_is_a_timeout_named_by_its_command(monkeypatch, tmp_path):
    def slow_draw(case, folder, stage):
        stage[0] = "lint_file"
        stage[0] = "to_dot"
        time.sleep(0.3)
        stage[0] = "summarize"

    monkeypatch.setattr(fuzz, "exercise", slow_draw)
    monkeypatch.setattr(fuzz, "COMMAND_LIMIT", 0.2)
    record = fuzz.run_case(5, tmp_path)
    assert record["outcome"] == "timeout" and record["stage"] == "to_dot"
    assert record["command"] == "to_dot" and record["command_seconds"] >= 0.3
    monkeypatch.setattr(fuzz, "COMMAND_LIMIT", 10.0)
    assert fuzz.run_case(5, tmp_path)["outcome"] == "ok"


def test_each_case_starts_in_an_empty_folder(monkeypatch, tmp_path):
    seen = []

    def look(case, folder, stage):
        seen.append(sorted(p.name for p in folder.iterdir()))
        (folder / "left-behind.yaml").write_text("layers: []\n")

    monkeypatch.setattr(fuzz, "exercise", look)
    fuzz.run_case(1, tmp_path / "w")
    fuzz.run_case(2, tmp_path / "w")
    assert seen == [[], []]


def test_a_long_string_repeated_is_written_once_with_anchors():
    # a 100,000-character value multiplied 5,000 times was 500 MB of YAML, and the fuzzer's
    # own dump ran out of memory before yarch read a byte
    text = "x" * 100_000
    data = {"input": [3, 8, 8], "layers": [{"relu": {"name": text}}] * 2 + [text] * 5_000}
    assert fuzz.written_size(data) >= 200_000
    out = fuzz.dump(data, random.Random(0))
    assert len(out) < 1_000_000 and out.count(text) == 1
