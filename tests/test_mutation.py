"""The linter's mutation score (`scripts/mutation_score.py`): every channel number of the posts'
transcriptions is changed in turn, a PyTorch transcription on the meta device decides which
mutants break the network, and lint must report each of those at the line of the change."""

from __future__ import annotations

import json

import pytest

from compiler import lint_text
from compiler.diagnostics import SourceCache, render_github, render_json, render_text
from scripts.mutation_score import (
    ROOT,
    channel_sites,
    declares_channels,
    judge,
    main,
    mutants,
    read_yaml,
    run,
)

POSTS = sorted((ROOT / "specs" / "posts").glob("*.yaml"))


@pytest.fixture(scope="module")
def scores():
    # one mutation per number keeps it to a few seconds; the script's default adds `*2`
    return run(POSTS, ("+1",))


OWN_KINDS = ("input", "params", "conv", "linear", "bn", "inception", "seq", "expect")


def _block_argument(o) -> bool:
    """A mutant of an argument of a block instance (`InceptionA: {in_channels: 10}`)."""
    block, _, field = o.what.partition(".")
    return block not in OWN_KINDS and field != "in"


def _not_at_line(scores, which) -> list[str]:
    return [
        f"{s.spec}:{o.line}:{o.column} {o.what} {o.old} -> {o.new} ({o.caught}): {o.reason}; "
        f"lint: {o.new_errors}"
        for s in scores
        for o in s.outcomes
        if o.broken and o.caught != "line" and which(o)
    ]


def test_every_broken_mutant_is_caught_at_its_line(scores):
    assert _not_at_line(scores, lambda o: True) == []


def test_a_block_argument_is_reported_at_its_own_instance(scores):
    assert _not_at_line(scores, _block_argument) == []


def test_every_post_is_scored_with_broken_mutants(scores):
    assert [s.spec for s in scores] == [f"specs/posts/{p.name}" for p in POSTS]
    for s in scores:
        assert s.skipped is None, s.spec
        assert s.row["broken"] > 0, s.spec
    broken = sum(s.row["broken"] for s in scores)
    benign = sum(s.row["benign"] for s in scores)
    assert broken > 200 and benign > 50  # both kinds, in numbers
    # the posts' own mistakes the oracle gets past: seed 000's stride 0, and the 12544
    # features the text's AlexNet gives its first classifier layer
    repaired = {s.spec: s.repaired for s in scores if s.repaired}
    assert sorted(repaired) == [
        "specs/posts/alexnet_text.yaml",
        "specs/posts/googlenet_pytorch.yaml",
    ]


def test_sites_cover_every_kind_of_channel_number():
    data = read_yaml((ROOT / "specs/posts/googlenet_paddle.yaml").read_text(encoding="utf-8"))
    kinds = {s.what for s in channel_sites(data)}
    assert kinds == {
        "input",
        "conv.in",
        "conv.out",
        "linear.in",
        "linear.out",
        "inception.in",
        "inception.channels",
        "expect",
        "AuxOutput.in_channels",
        "params.num_classes",
    }
    assert declares_channels(data)
    keras = read_yaml((ROOT / "specs/posts/inception_keras.yaml").read_text(encoding="utf-8"))
    assert not declares_channels(keras)  # a post all the same: scored for its `expect:`s


SMALL = """\
input: [3, 8, 8]
layers:
  - conv: {name: a, in: 3, out: 16, kernel: 3, padding: 1}
  - relu
  - maxpool: 2
  - conv: {name: b, in: 16, out: 8, kernel: 1, expect: [8, 4, 4]}
  - flatten
  - linear: {name: fc, in: 128, out: 10}
"""


def test_the_oracle_is_pytorch_not_lint():
    assert judge(read_yaml(SMALL)).failure is None
    by_site = {(m.line, m.site.what, m.new): m for m in mutants(SMALL, "s.yaml", ("+1",))}
    # `out` of `a` feeds `in: 16` of `b`: torch refuses the mismatch
    verdict = judge(read_yaml(by_site[(3, "conv.out", 17)].text))
    assert "Given groups=1" in str(verdict.failure) or "channel" in str(verdict.failure)
    # a wrong `expect:` channel is a false claim, not a torch error
    verdict = judge(read_yaml(by_site[(6, "expect", 9)].text))
    assert verdict.failure is None and list(verdict.violations) == [(("layers", 3), 0)]
    # the classifier's width feeds nothing declared: a different network that works
    verdict = judge(read_yaml(by_site[(8, "linear.out", 11)].text))
    assert verdict.failure is None and not verdict.violations


def test_a_mismatch_names_where_the_channels_were_made():
    text = SMALL.replace("out: 16", "out: 17")
    result = lint_text(text, "s.yaml")
    (d,) = [d for d in result.diagnostics if d.code == "channel-mismatch"]
    assert [(s.line, s.column, label) for s, label in d.related] == [
        (3, 33, "17 channels come from here")
    ]
    assert render_text([d], SourceCache.of(result.sources)) == "\n".join(
        [
            "error[channel-mismatch]: `b` declares 16 input channels but receives 17",
            " --> s.yaml:6:25",
            "  |",
            "3 |   - conv: {name: a, in: 3, out: 17, kernel: 3, padding: 1}",
            "  |                                 -- 17 channels come from here",
            "...",
            "6 |   - conv: {name: b, in: 16, out: 8, kernel: 1, expect: [8, 4, 4]}",
            "  |                         ^^ declared here",
            "  |",
            "  = note: `maxpool_1` outputs 17 channels",
            "help: set `in: 17`, or change the layer that feeds it",
        ]
    )
    (row,) = json.loads(render_json([d], 1))["diagnostics"]
    assert row["related"] == [
        {
            "file": "s.yaml",
            "line": 3,
            "column": 33,
            "end_line": 3,
            "end_column": 35,
            "label": "17 channels come from here",
        }
    ]
    assert "%0Anote: 17 channels come from here (s.yaml:3:33)%0A" in render_github([d])


def test_the_parts_of_an_inception_tuple_are_one_related_span():
    text = (
        "input: [3, 8, 8]\n"
        "layers:\n"
        "  - inception: {name: i, in: 3, channels: [8, [4, 8], [4, 9], 8]}\n"
        "  - conv: {in: 32, out: 8, kernel: 1}\n"
    )
    (d,) = lint_text(text, "i.yaml").diagnostics
    ((span, label),) = d.related
    assert (span.line, span.column, span.end_column) == (3, 44, 64)
    assert label == "8 + 8 + 9 + 8 = 33 channels come from here"


def test_an_invalid_layer_still_has_its_channels_checked():
    # seed 000's `stride: 0`: the conv is invalid, its `expect:` stands in for it
    text = (
        "input: [3, 8, 8]\n"
        "layers:\n"
        "  - conv: {in: 4, out: 9, kernel: 1, stride: 0, expect: [8, 8, 8]}\n"
    )
    codes = [(d.code, d.span.line) for d in lint_text(text, "z.yaml").diagnostics]
    assert codes == [
        ("channel-mismatch", 3),
        ("invalid-value", 3),
        ("shape-mismatch", 3),
    ]


def test_the_script_prints_the_table_and_json(tmp_path, capsys):
    out = tmp_path / "score.json"
    code = main([str(ROOT / "specs/posts/alexnet_code.yaml"), "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "specs/posts/alexnet_code.yaml" in printed and "(100.0%)" in printed
    payload = json.loads(out.read_text())
    (spec,) = payload["specs"]
    assert spec["row"]["broken"] == spec["row"]["caught_at_line"] > 0
    assert payload["mutations"] == ["+1", "*2"]
