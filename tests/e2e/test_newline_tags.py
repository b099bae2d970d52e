"""Issue 19, finding 7d: a tag (or a name) that ends in a newline is refused where it is written.
Python's `$` also matches before a final newline: `TAG_RE.match("staging\\n")` and the schema's
`^...$` patterns let it through. Before: the configuration was accepted and the run went on to
flux with the newline in the reference. Real timoni, flux, registry and git."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GitRepo, run_cli
from support.action import annotations, run_action

CONFIG = ".timoni-flux.yaml"


@pytest.mark.parametrize(
    ("old", "new", "key", "said"),
    [
        ("tags: [staging]\n  - name: webapp-production", 'tags: ["staging\\n"]\n  - name: webapp-production',
         "instances[0].tags[0]", "is not a valid OCI tag"),
        ("- name: webapp-staging", '- name: "webapp-staging\\n"', "instances[0].name", "does not match"),
    ],
)  # fmt: skip
def test_a_trailing_newline_in_the_configuration_is_refused(
    example_repo: GitRepo,
    prefix: str,
    tmp_path: Path,
    old: str,
    new: str,
    key: str,
    said: str,
) -> None:
    config = example_repo.path / CONFIG
    assert old in config.read_text()
    config.write_text(config.read_text().replace(old, new))
    example_repo.commit_all("a newline")
    run = run_action(
        example_repo.path, tmp_path / "run", inputs={"registry": prefix, "all": "true"}
    )
    assert run.returncode == 2, run.stdout + run.stderr
    (error,) = [a for a in annotations(run.stdout) if a["level"] == "error"]
    assert (
        error["file"] == CONFIG and key in error["message"] and said in error["message"]
    ), error
    assert run.outputs["pushed"] == "0" and "Nothing was built" in run.summary


@pytest.mark.parametrize("args", [("promote", "--from", "staging", "--to", "production\n"),
                                  ("flux-config", "--tag", "stable\n")])  # fmt: skip
def test_a_tag_argument_with_a_trailing_newline_is_refused(
    example_repo: GitRepo, prefix: str, args: tuple[str, ...]
) -> None:
    """The action's inputs are stripped; the command line's arguments are not."""
    run = run_cli(example_repo, *args, "--registry", prefix)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "is not a valid OCI tag" in run.stderr and "\\n'" in run.stderr, run.stderr
