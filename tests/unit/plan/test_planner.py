"""plan.planner directly: the plan is a pure function of the configurations, the changes and the
files; a bundle's modules are read from its `file://` URLs, and a URL the text cannot tell makes any
change affect the bundle."""

from __future__ import annotations

import pytest

from gitops_action.changes.events import CommitRange
from gitops_action.changes.gitrepo import Change
from gitops_action.config.targets import Config, Target
from gitops_action.plan import planner

CONFIG = ".timoni-flux.yaml"


def test_plan_is_pure() -> None:
    def target(tid: str, files: tuple[str, ...], module: str = "modules/m") -> Target:
        return Target(
            id=tid,
            kind="instance",
            name=tid,
            artifact=f"oci://r/{tid}",
            tags=("t",),
            files=files,
            namespace="ns",
            module=module,
        )

    a = target("a", ("apps/a.cue",))
    b = target("b", ("apps/b.cue",), module="oci://example.com/m")
    cfg = Config(path=CONFIG, registry="oci://r", source="s", targets=(a, b))
    rng = CommitRange(head="h" * 40, base="b" * 40)
    files = {"apps/a.cue", "apps/b.cue", "modules/m/cue.mod/module.cue"}
    result = planner.plan(
        head_config=cfg,
        base_config=cfg,
        base_problem="",
        commit_range=rng,
        changes=[Change("M", "modules/m/x.cue"), Change("A", "modules/mx/y.cue")],
        head_files=files,
        bundle_texts={},
    )
    assert [(p.target.id, p.reasons) for p in result.targets] == [
        ("a", ("module modules/m changed (modules/m/x.cue)",))
    ]
    nothing = CommitRange(head="h" * 40, base=None, nothing="deleted")
    result = planner.plan(
        head_config=cfg,
        base_config=None,
        base_problem="",
        commit_range=nothing,
        changes=[],
        head_files=files,
        bundle_texts={},
    )
    assert (result.targets, result.matrix()) == ((), {"include": []})


def test_bundle_modules_are_read_from_file_urls() -> None:
    text = 'a: module: url: "file://../modules/webapp"\nb: module: url: "oci://x/y"\nc: module: url: "file://./m"\n'
    assert planner.bundle_modules("bundles/p.cue", text) == [
        "modules/webapp",
        "bundles/m",
    ]
    assert planner.bundle_modules("p.cue", 'm: url: "file://../outside"') == []


@pytest.mark.parametrize(
    "url",
    [
        '"file://\\(_dir)"',
        '"fi" + "le://../modules/webapp"',
        '"""\n\t\tfile://../modules/webapp\n\t\t"""',
        "_u",
    ],
    ids=["interpolated", "concatenated", "multi-line", "reference"],
)
def test_a_computed_bundle_url_makes_any_change_affect_the_bundle(url: str) -> None:
    """A module URL the text cannot tell could name any directory: a change of the module it names
    must not be planned away (issue 19: the containment check reads timoni's evaluation instead)."""
    text = f'_u: "file://../modules/webapp"\nbundle: instances: a: module: url: {url}\n'
    modules = planner.bundle_modules("bundles/p.cue", text)
    assert modules == [planner.WHOLE_REPOSITORY]
    t = Target(
        id="platform",
        kind="bundle",
        name="platform",
        artifact="oci://r/p",
        tags=("t",),
        files=("bundles/p.cue",),
    )
    change = "modules/webapp/templates/config.cue"
    reasons = planner.affected_reasons(
        t, {change: "M"}, planner.dirs_of([change]), modules
    )
    assert reasons and change in reasons[0]
    assert planner.affected_reasons(t, {}, set(), modules) == []
