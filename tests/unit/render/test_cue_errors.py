"""cue_errors.locate and clean directly: timoni's positions mapped back to the user's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_action.render import cue_errors
from gitops_action.render.cue_errors import Located

COMMON = """\
values: {
	image: {
		repository: "ghcr.io/stefanprodan/podinfo"
		tag:        "6.5.0"
	}
	replicas: 1
}
"""
STAGING = """\
values:
  replicas: 2
  endpoint: 443
  nested:
    deep: true
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps/common.cue").write_text(COMMON)
    (tmp_path / "apps/staging.yaml").write_text(STAGING)
    (tmp_path / "bundles").mkdir()
    (tmp_path / "bundles/platform.cue").write_text("bundle: {}\n")
    (tmp_path / "bundles/overlay.cue").write_text(
        "bundle: instances: web: values: replicas: 3\n"
    )
    return tmp_path


FILES = ("apps/common.cue", "apps/staging.yaml")


def test_a_field_error_points_at_the_last_file_that_sets_the_field(root: Path) -> None:
    stderr = "values.replicas: conflicting values 2 and string (mismatched types):\n    ./values.cue:14:13\n"
    assert cue_errors.locate(stderr, FILES, root, bundle=False) == [
        Located(
            "apps/staging.yaml",
            2,
            1,
            "values.replicas: conflicting values 2 and string (mismatched types)",
        )
    ]


def test_a_field_set_only_in_a_cue_file_is_found_in_nested_braces(root: Path) -> None:
    stderr = (
        'values.image.tag: conflicting values "6.5.0" and int:\n    ./values.cue:9:3\n'
    )
    (found,) = cue_errors.locate(stderr, ("apps/common.cue",), root, bundle=False)
    assert (found.file, found.line) == ("apps/common.cue", 4)
    assert found.message.startswith("values.image.tag: conflicting values")


def test_a_field_nobody_sets_points_at_the_deepest_part_that_is_set(root: Path) -> None:
    stderr = "values.nested.unknown: field not allowed\n"
    assert cue_errors.locate(stderr, FILES, root, bundle=False) == [
        Located("apps/staging.yaml", 4, 1, "values.nested.unknown: field not allowed")
    ]
    assert (
        cue_errors.locate("other.x: field not allowed\n", FILES, root, bundle=False)
        == []
    )


def test_bundle_positions_name_the_nth_bundle_file(root: Path) -> None:
    files = ("bundles/platform.cue", "bundles/overlay.cue")
    stderr = (
        "bundle.instances.web.values.replicas: conflicting values 3 and string:\n"
        "    ./1.overlay.cue:1:44\n"
    )
    assert cue_errors.locate(stderr, files, root, bundle=True) == [
        Located(
            "bundles/overlay.cue",
            1,
            44,
            "bundle.instances.web.values.replicas: conflicting values 3 and string",
        )
    ]
    # An index past the files is no file of this target: no position rather than a wrong one.
    stderr = "bundle.instances.web.values.replicas: conflicting values:\n    ./7.other.cue:1:1\n"
    assert cue_errors.locate(stderr, files, root, bundle=True) == []


def test_an_echoed_values_file_is_named_at_line_one(root: Path) -> None:
    stderr = (
        "loading values from <apps/common.cue>\n failed: expected operand, found '}'\n"
    )
    assert cue_errors.locate(stderr, FILES, root, bundle=False) == [
        Located("apps/common.cue", 1, 1, "apps/common.cue: expected operand, found '}'")
    ]


def test_file_positions_count_only_for_the_targets_own_files(
    root: Path, tmp_path: Path
) -> None:
    stderr = (
        f"error at {root}/apps/staging.yaml:3:13 here\n"
        "also staging.yaml:5:7 by base name\n"
        "/root/.cache/timoni/module/timoni.cue:1:1 in the module cache\n"
        "apps/other.cue:2:2 not a file of this target\n"
        "../outside.cue:1:1 outside the repository\n"
    )
    assert cue_errors.locate(stderr, FILES, root, bundle=False) == [
        Located(
            "apps/staging.yaml", 3, 13, f"error at {root}/apps/staging.yaml:3:13 here"
        ),
        Located("apps/staging.yaml", 5, 7, "also staging.yaml:5:7 by base name"),
    ]


def test_one_position_per_file_and_line(root: Path) -> None:
    stderr = "values.replicas: conflicting values:\n    ./values.cue:3:2\napps/staging.yaml:2:9 again\n"
    found = cue_errors.locate(stderr, FILES, root, bundle=False)
    assert [(f.file, f.line) for f in found] == [("apps/staging.yaml", 2)]
    assert (
        found[0].message == "values.replicas: conflicting values"
    )  # the first, most precise, wins


def test_clean_replaces_an_echoed_file_and_hides_secret_values(root: Path) -> None:
    (root / "apps/secret.cue").write_text(
        'values: {\n\tdb: password: "hunter2-very-secret"\n}\n'
    )
    echoed = (root / "apps/secret.cue").read_text().strip()
    error = 'values.db.password: conflicting values "hunter2-very-secret" and int'
    stderr = f"8:12PM ERR loading values:\n{echoed}\n{error}"
    text = cue_errors.clean(stderr, ("apps/secret.cue",), root)
    assert "hunter2-very-secret" not in text
    assert "<apps/secret.cue>" in text and "ERR" not in text
    assert text.endswith('values.db.password: conflicting values "***" and int')


# --- issue 20: timoni 0.31.0's own stderr, the value's file, every position, the whole cause ----

SHARED = "values:\n  replicas: 2\n  port: 0\n"
# `timoni build` of the example webapp module with -f values/common.yaml -f apps/staging.yaml
PORT_ERROR = """\
build failed:
values.port: 2 errors in empty disjunction:
values.port: conflicting values 8080 and 0:
    ./templates/config.cue:14:13
    ./timoni.cue:7:9
    ./values.cue:9:8
values.port: invalid value 0 (out of bound >0):
    ./templates/config.cue:14:26
    ./values.cue:9:8
"""


def test_a_value_in_a_shared_file_is_found_there_with_every_position(
    root: Path,
) -> None:
    """Before: annotated on apps/staging.yaml:1 (its `values:` line), the cause dropped."""
    (root / "values").mkdir()
    (root / "values/common.yaml").write_text(SHARED)
    (root / "modules/webapp/templates").mkdir(parents=True)
    (root / "modules/webapp/templates/config.cue").write_text("package templates\n")
    (root / "modules/webapp/timoni.cue").write_text("package main\n")
    files = ("values/common.yaml", "apps/staging.yaml")
    found = cue_errors.locate(
        PORT_ERROR, files, root, bundle=False, module="modules/webapp"
    )
    said = (
        "values.port: 2 errors in empty disjunction: conflicting values 8080 and 0; "
        "invalid value 0 (out of bound >0)"
    )
    assert found == [
        Located("values/common.yaml", 3, 1, said),
        Located("modules/webapp/templates/config.cue", 14, 13, said),
        Located("modules/webapp/timoni.cue", 7, 9, said),
    ]


def test_a_disjunction_keeps_its_cause(root: Path) -> None:
    (root / "apps/three.yaml").write_text('values:\n  replicas: "three"\n')
    stderr = (
        "values.replicas: 2 errors in empty disjunction:\n"
        'values.replicas: conflicting values "three" and 1 (mismatched types string and int):\n'
        "    ./templates/config.cue:13:13\n"
        'values.replicas: conflicting values "three" and int (mismatched types string and int):\n'
        "    ./templates/config.cue:13:17\n"
    )
    (found,) = cue_errors.locate(
        stderr, ("apps/common.cue", "apps/three.yaml"), root, bundle=False
    )
    assert (found.file, found.line) == ("apps/three.yaml", 2)
    assert found.message.endswith(
        'conflicting values "three" and int (mismatched types string and int)'
    )
