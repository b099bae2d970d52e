"""config.validate (`check_here`, the in-process check): the schema's first error, the one the
user meant, at its key path and line; patterns read as ECMA-262 reads them (`$` is the end)."""

from __future__ import annotations

import pytest

from gitops_action.config.validate import _regex, check_here, schema
from gitops_action.config.yaml_lines import parse_yaml
from gitops_action.errors import ConfigError

FILE = ".timoni-flux.yaml"

HEAD = """\
version: 1
registry: oci://r.example.com/gitops
instances:
"""


def check(text: str) -> None:
    data, lines = parse_yaml(text, FILE)
    check_here(data, lines, FILE)


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        check(text)
    return err.value


def test_a_good_configuration_passes() -> None:
    check(HEAD + "  - name: web\n    namespace: apps\n    module: ./modules/web\n")


def test_dollar_is_the_end_of_the_text() -> None:
    # Python's `$` also matches before a final newline: "web\n" would pass ^[a-z0-9]...$
    assert _regex("^[a-z]+$").search("web\n") is None
    assert _regex("^[a-z]+$").search("web")
    # inside a class and escaped, `$` is a character
    assert _regex("^[$a]+$").search("$a$")
    assert _regex(r"^a\$$").search("a$")
    err = error(HEAD + '  - name: "web\\n"\n    namespace: apps\n    module: ./m\n')
    assert (err.key, err.line) == ("instances[0].name", 4)
    assert err.message.startswith("'web\\n' does not match")
    # a pattern error says what the field must be (the schema's description)
    assert err.message.endswith(
        "(Instance name (timoni build NAME); also the target id.)"
    )


def test_a_misspelt_required_key() -> None:
    err = error(HEAD + "  - name: web\n    namesppace: apps\n    module: ./m\n")
    assert (err.key, err.line) == ("instances[0].namesppace", 5)
    assert err.message == (
        "unknown key 'namesppace': did you mean `namespace`? (`namespace` is required)"
    )


def test_an_unknown_key_close_to_an_allowed_one() -> None:
    err = error(
        HEAD + "  - name: web\n    namespace: a\n    module: ./m\n    valeus: [a]\n"
    )
    assert (err.key, err.line) == ("instances[0].valeus", 7)
    assert err.message == "unknown key 'valeus': did you mean `values`?"


def test_an_unknown_key_like_no_other_lists_the_allowed_ones() -> None:
    err = error("version: 1\nzzz: 1\n")
    allowed = ", ".join(sorted(schema()["properties"]))
    assert (err.key, err.line) == ("zzz", 2)
    assert err.message == f"unknown key 'zzz' (allowed: {allowed})"


def test_a_missing_required_key() -> None:
    err = error(HEAD + "  - name: web\n    module: ./m\n")
    assert (err.key, err.line) == ("instances[0]", 4)
    assert err.message == "'namespace' is a required property"


def test_a_match_entry_is_checked_as_one() -> None:
    """An entry with `match` is reported against the match form (its own keys), not as an
    instance missing `name`."""
    entry = '  - match: "apps/{name}.cue"\n    module: ./m\n'
    err = error(HEAD + entry + "    namespace: a\n    bogus: 1\n")
    allowed = ", ".join(sorted(schema()["$defs"]["matchInstance"]["properties"]))
    assert "match" in allowed and "name" not in allowed.split(", ")
    assert (err.key, err.line) == ("instances[0].bogus", 7)
    assert err.message == f"unknown key 'bogus' (allowed: {allowed})"
    err = error(HEAD + entry)
    assert err.message == "'namespace' is a required property"


def test_top_level_type_and_version() -> None:
    assert error("version: 2\n").key == "version"
    assert error("- a\n").key == ""
