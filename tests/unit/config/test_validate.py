"""config.validate (`check_here`, the in-process check): the schema's first error, the one the
user meant, at its key path and line; patterns read as ECMA-262 reads them (`$` is the end).

On a corpus of broken configurations, the full validate (draft 2020-12, `pattern` with
ECMA-262's `$`) is held to plain jsonschema (the same verdict, the same errors), and the error it
reports to the error the action reported when it first used jsonschema (the same one picked)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.exceptions
import pytest
import yaml

from gitops_action.config import targets as config
from gitops_action.config import validate
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


pytestmark = pytest.mark.unit  # no timoni, flux or registry: `make unit` runs these

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = yaml.safe_load((ROOT / "examples/gitops/.timoni-flux.yaml").read_text())
BUNDLE = {
    "name": "platform",
    "files": ["bundles/platform.cue"],
    "tags": ["x"],
    "watch": ["a/**"],
}
REPLACEMENTS: list[Any] = [
    *(1, 2, True, None),
    *("", "UPPER", "/abs", "a\\b", "{name}", "x" * 200),
    *([], {}, ["x"], [1]),
]

Path_ = tuple[str | int, ...]


def documents() -> Iterator[tuple[str, Any]]:
    """The example configuration (plus a bundle), then every single-point mutation of it."""
    base = copy.deepcopy(EXAMPLE)
    base.setdefault("bundles", []).append(BUNDLE)
    yield "example", base

    def paths(node: Any, at: Path_ = ()) -> Iterator[Path_]:
        yield at
        children: Any = node.items() if isinstance(node, dict) else []
        if isinstance(node, list):
            children = enumerate(node)
        for key, child in children:
            yield from paths(child, (*at, key))

    def at(doc: Any, path: Path_) -> Any:
        for p in path:
            doc = doc[p]
        return doc

    for path in list(paths(base)):
        if not path:
            continue
        parent, key = path[:-1], path[-1]
        removed = copy.deepcopy(base)
        del at(removed, parent)[key]
        yield f"delete {path}", removed
        for value in REPLACEMENTS:
            doc = copy.deepcopy(base)
            at(doc, parent)[key] = value
            yield f"{path} = {value!r}", doc
        if isinstance(at(base, path), dict):
            doc = copy.deepcopy(base)
            at(doc, path)["unknownKey"] = 1
            yield f"unknown key in {path}", doc
    yield "not a mapping", ["version", 1]
    yield "empty", {}


CORPUS = list(documents())


def reference_pick(data: Any) -> tuple[list[str | int], str] | None:
    """The error the action reported while it used jsonschema (config.validate before the change)."""
    validator = jsonschema.Draft202012Validator(config.inlined_schema())
    errors = sorted(
        validator.iter_errors(data),
        key=lambda e: (list(map(str, e.absolute_path)), e.message),
    )
    if not errors:
        return None
    best = errors[0]
    if best.validator == "oneOf" and best.context:
        meant = 1 if isinstance(best.instance, dict) and "match" in best.instance else 0
        branch = [
            e for e in best.context if e.schema_path and e.schema_path[0] == meant
        ]
        best = jsonschema.exceptions.best_match(branch) if branch else best
    return list(best.absolute_path), best.message


def test_the_corpus_is_large_and_mostly_broken() -> None:
    broken = [
        name for name, doc in CORPUS if list(validate.validator().iter_errors(doc))
    ]
    assert len(CORPUS) > 500 and len(broken) > 300, (len(CORPUS), len(broken))


@pytest.mark.parametrize("name,doc", CORPUS, ids=[n for n, _ in CORPUS])
def test_same_errors_as_jsonschema(name: str, doc: Any) -> None:
    """Only `$` differs from plain jsonschema's `pattern` (test_a_trailing_newline_does_not_match)."""
    schema = config.inlined_schema()
    ours = {
        (tuple(e.absolute_path), str(e.validator), e.message)
        for e in validate.validator().iter_errors(doc)
    }
    theirs = {
        (tuple(e.absolute_path), str(e.validator), e.message)
        for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)
    }
    assert ours == theirs


@pytest.mark.parametrize("name,doc", CORPUS, ids=[n for n, _ in CORPUS])
def test_same_error_reported_as_with_jsonschema(name: str, doc: Any) -> None:
    expected = reference_pick(doc)
    if expected is None:
        config.validate(doc, {}, "c.yaml")
        return
    with pytest.raises(config.ConfigError) as caught:
        config.validate(doc, {}, "c.yaml")
    path, message = expected
    assert caught.value.key == config.key_path(path) or caught.value.key.startswith(
        config.key_path(path)
    )
    assert (
        caught.value.message.startswith(message.split(" (")[0])
        or "unknown key" in caught.value.message
    )


def test_every_keyword_of_the_schema_has_its_place_in_the_tie_order() -> None:
    """Which of two errors at one place is reported (a missing required key before an unknown one)
    follows `validate._ORDER`: a keyword the schema starts using must be given its place there."""

    def keywords(node: Any, in_properties: bool = False) -> Iterator[str]:
        if isinstance(node, dict):
            for k, v in node.items():
                if not in_properties:
                    yield k
                yield from keywords(
                    v, in_properties=k in ("properties", "$defs") and not in_properties
                )
        elif isinstance(node, list):
            for v in node:
                yield from keywords(v)

    annotations = {"$schema", "$id", "title", "description", "$defs"}
    applicators = {"properties", "items"}  # their errors are their children's
    used = set(keywords(config.inlined_schema())) - annotations - applicators
    assert used <= set(validate._ORDER), used - set(validate._ORDER)


@pytest.mark.parametrize("name", ["webapp-staging\n", "webapp-staging\n\n"])
def test_a_trailing_newline_does_not_match(name: str) -> None:
    """ECMA-262's `$` is the end of the text; Python's `re` (plain jsonschema's `pattern`) also
    matches before a final newline."""
    doc = copy.deepcopy(EXAMPLE)
    doc["instances"][0]["name"] = name
    with pytest.raises(config.ConfigError) as caught:
        config.validate(doc, {}, "c.yaml")
    assert caught.value.key == "instances[0].name", caught.value
    assert "does not match" in caught.value.message, caught.value


@pytest.mark.parametrize(
    "key,named", [("2020-01-01", "2020-01-01"), ("1", "1"), ("true", "True")]
)
def test_a_key_yaml_reads_as_no_string_is_an_unknown_key(key: str, named: str) -> None:
    """YAML reads `2020-01-01:` as a date, `1:` as a number, `true:` as a boolean: an unknown key
    like any other (exit 2), not a TypeError out of the typo hint (an internal error, exit 1)."""
    with pytest.raises(ConfigError) as caught:
        config.load(f"version: 1\n{key}: x\n", file="c.yaml", repo_files=None)
    assert caught.value.key == named
    assert f"unknown key {named!r}" in caught.value.message
    if named == key:  # written as it reads: its own line
        assert caught.value.line == 2
