"""config.yaml_lines: the configuration parsed once with the line of every key path; a key given
twice and broken YAML are configuration errors at their line."""

from __future__ import annotations

import pytest

from gitops_action.config.yaml_lines import key_path, line_for, parse_yaml
from gitops_action.errors import ConfigError

TEXT = """\
version: 1
registry: oci://r.example
instances:
  - name: web
    tags: [staging, stable]
    values:
      - apps/web.cue
  - name: api
    module: ./modules/api
"""


def test_every_key_path_has_its_line() -> None:
    data, lines = parse_yaml(TEXT, "c.yaml")
    assert data["instances"][1]["module"] == "./modules/api"
    assert lines[("version",)] == 1
    assert lines[("instances",)] == 3
    assert lines[("instances", 0)] == 4
    assert lines[("instances", 0, "tags")] == 5
    assert lines[("instances", 0, "values", 0)] == 7
    assert lines[("instances", 1, "module")] == 9


def test_a_path_without_a_line_of_its_own_takes_its_nearest_parents() -> None:
    _, lines = parse_yaml(TEXT, "c.yaml")
    assert line_for(lines, ["instances", 1, "module"]) == 9
    assert line_for(lines, ["instances", 1, "tags"]) == 8  # absent: the entry's line
    assert line_for(lines, ["instances", 0, "tags", 1]) == 5
    assert line_for(lines, ["nowhere"]) == 1  # the document's
    assert line_for({}, ["x"]) is None


def test_key_paths_read_as_the_messages_write_them() -> None:
    assert key_path(["instances", 2, "values", 0]) == "instances[2].values[0]"
    assert key_path(["registry"]) == "registry"
    assert key_path([]) == ""


def test_a_key_given_twice_is_an_error_at_the_second() -> None:
    text = TEXT.replace(
        "    module: ./modules/api\n", "    module: ./a\n    module: ./b\n"
    )
    with pytest.raises(ConfigError) as e:
        parse_yaml(text, "c.yaml")
    assert (e.value.file, e.value.key, e.value.line) == (
        "c.yaml",
        "instances[1].module",
        10,
    )
    assert "duplicate key" in e.value.message


def test_broken_yaml_is_an_error_at_its_line() -> None:
    text = TEXT.replace("tags: [staging, stable]", "tags: [staging, stable")
    with pytest.raises(ConfigError) as e:
        parse_yaml(text, "c.yaml")
    assert e.value.file == "c.yaml" and e.value.key == ""
    assert e.value.message.startswith("invalid YAML: ")
    assert e.value.line is not None and 5 <= e.value.line <= 7


def test_an_empty_file_is_no_document() -> None:
    assert parse_yaml("", "c.yaml") == (None, {})
    assert parse_yaml("# only a comment\n", "c.yaml") == (None, {})
