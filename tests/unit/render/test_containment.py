"""render.containment: every file timoni can reach for a target must resolve inside the repository;
a symlink (or a module URL) that leaves it refuses the target, naming the path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_action.config.model import Target
from gitops_action.render.containment import bundle_escape, escape, forget


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    forget()
    yield
    forget()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "modules/web/cue.mod").mkdir(parents=True)
    (root / "modules/web/cue.mod/module.cue").write_text('module: "web"\n')
    (root / "modules/web/templates").mkdir()
    (root / "modules/web/templates/x.cue").write_text("package templates\n")
    (root / "apps").mkdir()
    (root / "apps/web.cue").write_text("values: {}\n")
    (root / "bundles").mkdir()
    (root / "bundles/b.cue").write_text("bundle: {}\n")
    (tmp_path / "outside.txt").write_text("SECRET=1\n")
    return root


def instance(*files: str, module: str = "modules/web") -> Target:
    return Target(
        "web", "instance", "web", "oci://r.io/web", ("latest",), files,
        module=module, key="instances[0]",
    )  # fmt: skip


def bundle(*files: str) -> Target:
    return Target(
        "b", "bundle", "b", "oci://r.io/b", ("latest",), files, key="bundles[0]"
    )


def test_a_repository_without_links_is_fine(repo: Path) -> None:
    assert escape(repo, instance("apps/web.cue")) == ""


def test_a_link_inside_the_repository_is_fine(repo: Path) -> None:
    (repo / "apps/linked.cue").symlink_to("web.cue")
    (repo / "modules/web/shared").symlink_to("../../apps")
    # a directory link to its own parent is followed once, not for ever
    (repo / "modules/web/templates/loop").symlink_to("..")
    assert escape(repo, instance("apps/linked.cue")) == ""


def test_a_values_file_linked_outside(repo: Path, tmp_path: Path) -> None:
    (repo / "apps/env.cue").symlink_to(tmp_path / "outside.txt")
    message = escape(repo, instance("apps/web.cue", "apps/env.cue"))
    assert message == (
        "apps/env.cue resolves outside the repository (symlink): refusing to read it "
        f"(instances[0]: {(tmp_path / 'outside.txt').resolve()})"
    )


def test_a_directory_link_on_the_way_counts_as_a_symlink(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "linked").symlink_to(tmp_path)
    assert "linked/outside.txt resolves outside the repository (symlink)" in escape(
        repo, instance("linked/outside.txt")
    )


def test_a_link_anywhere_in_the_module(repo: Path) -> None:
    (repo / "modules/web/templates/environ.cue").symlink_to("/proc/self/environ")
    message = escape(repo, instance("apps/web.cue"))
    assert message.startswith(
        "modules/web/templates/environ.cue resolves outside the repository (symlink)"
    )


def test_a_dangling_or_looping_link_in_the_module(repo: Path) -> None:
    (repo / "modules/web/a").symlink_to("b")
    (repo / "modules/web/b").symlink_to("a")
    # a loop resolves nowhere: never inside the repository
    message = escape(repo, instance("apps/web.cue"))
    assert message.startswith(("modules/web/a resolves", "modules/web/b resolves"))
    assert message.endswith("(instances[0]: /)")


def test_an_oci_module_is_not_walked(repo: Path) -> None:
    (repo / "modules/web/templates/environ.cue").symlink_to("/proc/self/environ")
    assert escape(repo, instance("apps/web.cue", module="oci://r.io/m")) == ""


def test_a_comma_in_a_file_name(repo: Path) -> None:
    assert escape(repo, instance("apps/a,b.cue")).startswith(
        "apps/a,b.cue: timoni splits -f on commas"
    )


def test_a_bundle_while_any_link_of_the_repository_leaves_it(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "cue.mod").mkdir()
    assert escape(repo, bundle("bundles/b.cue")) == ""
    (repo / "docs").mkdir()
    (repo / "docs/x").symlink_to(tmp_path / "outside.txt")
    forget()
    message = escape(repo, bundle("bundles/b.cue"))
    assert message.startswith("docs/x resolves outside the repository (symlink)")
    assert message.endswith(
        "; a bundle is not rendered while a symlink of the repository leaves it"
    )
    # an instance does not import the whole repository
    assert escape(repo, instance("apps/web.cue")) == ""


def test_git_metadata_is_not_walked(repo: Path, tmp_path: Path) -> None:
    (repo / "cue.mod").mkdir()
    (repo / ".git").mkdir()
    (repo / ".git/link").symlink_to(tmp_path / "outside.txt")
    assert escape(repo, bundle("bundles/b.cue")) == ""


def test_bundle_module_urls(repo: Path, tmp_path: Path) -> None:
    b = bundle("bundles/b.cue")
    # relative to the bundle file's directory, and inside
    assert bundle_escape(repo, b, [("web", "file://../modules/web")]) == ""
    assert bundle_escape(repo, b, [("x", "oci://r.io/mod")]) == ""
    url = "file://../../outside.txt"
    message = bundle_escape(repo, b, [("web", "file://../modules/web"), ("x", url)])
    assert message.startswith("../outside.txt resolves outside the repository (path)")
    assert message.endswith(
        f"; named by bundles/b.cue: instance x, module url {json.dumps(url)}"
    )
    absolute = f"file://{tmp_path}"
    assert bundle_escape(repo, b, [("x", absolute)]).startswith(
        f"{tmp_path} resolves outside the repository"
    )
    # an absolute URL into the repository is walked like a module
    inside = f"file://{repo.resolve()}/modules/web"
    assert bundle_escape(repo, b, [("x", inside)]) == ""
    (repo / "modules/web/env").symlink_to("/proc/self/environ")
    forget()
    assert "modules/web/env resolves outside" in bundle_escape(repo, b, [("x", inside)])


def test_a_relative_url_that_lands_outside_from_another_directory(
    repo: Path, tmp_path: Path
) -> None:
    """A value without a file of its own resolves against another directory: `outside.txt` one
    level above the repository exists, so the URL is refused even though from bundles/ it stays
    inside."""
    b = bundle("b.cue")  # at the root: ../outside.txt from here is outside already
    assert bundle_escape(repo, b, [("x", "file://../outside.txt")]).startswith(
        "../outside.txt resolves outside"
    )
    nested = bundle("bundles/b.cue")
    # from bundles/ it is the repository's own outside.txt (absent); from the root it exists
    message = bundle_escape(repo, nested, [("x", "file://../outside.txt")])
    assert message.startswith("../outside.txt resolves outside the repository")
    assert str((tmp_path / "outside.txt").resolve()) in message
