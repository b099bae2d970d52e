"""config.globs: `match` patterns capture one path segment per `{placeholder}`; `watch` globs keep
`*` and `?` within a segment, `**` across them, and a plain directory watches what is below it."""

from __future__ import annotations

import pytest

from gitops_action.config.globs import compile_match, glob_regex
from gitops_action.errors import ConfigError


def captured(pattern: str, path: str) -> dict[str, str] | None:
    m = compile_match(
        pattern, ".timoni-flux.yaml", "instances[0].match", 3
    ).regex.match(path)
    return m.groupdict() if m else None


def test_a_placeholder_is_one_path_segment() -> None:
    pattern = "clusters/{env}/{name}.cue"
    assert captured(pattern, "clusters/staging/billing.cue") == {
        "env": "staging",
        "name": "billing",
    }
    assert captured(pattern, "clusters/staging/eu/billing.cue") is None
    assert captured(pattern, "clusters/staging/billing.cue.orig") is None
    assert captured(pattern, "x/clusters/staging/billing.cue") is None


def test_a_repeated_placeholder_matches_the_same_segment_again() -> None:
    pattern = "apps/{name}/{name}.yaml"
    assert captured(pattern, "apps/web/web.yaml") == {"name": "web"}
    assert captured(pattern, "apps/web/api.yaml") is None


def test_the_words_and_the_literal_prefix() -> None:
    m = compile_match("clusters/{env}/**/{name}.cue", "c.yaml", "k", None)
    assert m.words == ("env", "name")
    assert m.literal_prefix == "clusters/"
    assert captured("clusters/{env}/**/{name}.cue", "clusters/prod/a/b/x.cue") == {
        "env": "prod",
        "name": "x",
    }
    assert captured("clusters/{env}/**/{name}.cue", "clusters/prod/x.cue") == {
        "env": "prod",
        "name": "x",
    }


def test_a_pattern_without_name_is_a_configuration_error_at_its_line() -> None:
    with pytest.raises(ConfigError) as e:
        compile_match("clusters/{env}/*.cue", "c.yaml", "instances[2].match", 14)
    assert (e.value.file, e.value.key, e.value.line) == (
        "c.yaml",
        "instances[2].match",
        14,
    )
    assert e.value.message == "a match pattern must capture {name}"


def test_regex_characters_in_a_pattern_are_literal() -> None:
    pattern = "apps/{name}.v1+(x).cue"
    assert captured(pattern, "apps/a.v1+(x).cue") == {"name": "a"}
    assert captured(pattern, "apps/a_v1+(x).cue") is None
    assert captured(pattern, "apps/a.v11(x).cue") is None


@pytest.mark.parametrize(
    ("glob", "path", "watched"),
    [
        ("apps/*.cue", "apps/a.cue", True),
        ("apps/*.cue", "apps/x/a.cue", False),
        ("apps/?.cue", "apps/a.cue", True),
        ("apps/?.cue", "apps/ab.cue", False),
        ("apps/?.cue", "apps//.cue", False),
        ("apps/**/*.cue", "apps/a.cue", True),
        ("apps/**/*.cue", "apps/x/y/a.cue", True),
        ("apps/**", "apps/x/y/a.cue", True),
        ("modules/shared", "modules/shared", True),
        ("modules/shared", "modules/shared/x/y.cue", True),
        ("modules/shared", "modules/shared2/y.cue", False),
        ("modules/shared", "other/modules/shared/y.cue", False),
        ("docs/**", "docs/line\nbreak.md", True),
        ("a+b/[x].cue", "a+b/[x].cue", True),
        ("a+b/[x].cue", "aab/x.cue", False),
    ],
)
def test_watch_globs(glob: str, path: str, watched: bool) -> None:
    assert bool(glob_regex(glob).match(path)) is watched
