"""plan.catchup without a registry or git: the marker tag, what `read_tags` makes of the tags' answers
(a `pull` over a dict of tags), and `extend`, which merges the event's plan with what the tags hold."""

from __future__ import annotations

import re

from gitops_action.changes.events import CommitRange
from gitops_action.changes.gitrepo import Change
from gitops_action.config.targets import Config, Target
from gitops_action.inputs.settings import TAG
from gitops_action.plan import catchup, planner
from gitops_action.plan.catchup import Held
from gitops_action.plan.history import COMMIT, Since
from gitops_action.registry.oci import Call, Pulled

CONFIG = ".timoni-flux.yaml"
HEAD = "e" * 40  # hex: a commit a revision can name
BASE = "b" * 40
OK = Call(ok=True, failure="", error="", seconds=0.0)
MISSING = Call(ok=False, failure="missing", error="not found", seconds=0.0)
DOWN = Call(ok=False, failure="transient", error="connection refused", seconds=0.0)


def sha(n: int) -> str:
    return f"{n:040x}"


def target(tid: str, *tags: str, host: str = "r.example") -> Target:
    return Target(
        id=tid,
        kind="instance",
        name=tid,
        artifact=f"oci://{host}/{tid}",
        tags=tags or ("latest",),
        files=(f"apps/{tid}.cue",),
        namespace="ns",
        module="modules/m",
    )


def holding(commit: str, digest: str = "sha256:1") -> Pulled:
    return Pulled(OK, revision=f"main@sha1:{commit}", digest=digest)


# --- the marker tag ------------------------------------------------------------------------------


def test_the_marker_of_a_tag_is_a_valid_tag_of_its_own() -> None:
    assert catchup.marker_tag("staging") == "staging.tfp-checked"
    long_a, long_b = "a" * 120, "a" * 119 + "b"
    for tag in ("staging", "v1.2.3_RC", long_a, long_b, "x" * 128):
        marker = catchup.marker_tag(tag)
        assert TAG.fullmatch(marker), marker
        assert marker != tag
    # Too long to append to: a digest of the tag, still one marker per tag.
    assert catchup.marker_tag(long_a) != catchup.marker_tag(long_b)
    assert catchup.marker_tag(long_a) == catchup.marker_tag(long_a)


def test_a_revision_is_shortened_to_seven_hex_digits_of_its_commit() -> None:
    full = sha(0xABCDEF12345)
    assert catchup.short_revision(f"main@sha1:{full}") == f"main@sha1:{full[:7]}"
    assert catchup.short_revision(f"sha1:{full}") == f"sha1:{full[:7]}"
    assert catchup.short_revision("v1.2.3") == "v1.2.3"  # no commit in it: as it is
    assert catchup.short_revision("") == ""


# --- read_tags: one read per tag, a dead host asked once ---------------------------------------


def dict_registry(tags: dict[str, Pulled], asked: list[str]) -> catchup.Pull:
    """A registry's answers by URL (nothing there: missing); every URL asked is noted."""

    def pull(url: str) -> Pulled:
        asked.append(url)
        return tags.get(url, Pulled(MISSING))

    return pull


def test_read_tags_takes_the_first_tags_commit_and_the_other_tags_that_differ() -> None:
    web = target("web", "staging", "stable", "canary")
    new = target("new", "latest", "extra")
    noted = target("noted")
    asked: list[str] = []
    pull = dict_registry(
        {
            "oci://r.example/web:staging": holding(sha(1), "sha256:a"),
            "oci://r.example/web:stable": holding(sha(1), "sha256:a"),
            "oci://r.example/web:canary": holding(sha(0), "sha256:old"),
            # a revision template without the SHA: the commit annotation says which
            "oci://r.example/noted:latest": Pulled(
                OK, revision="v7", digest="sha256:n", annotations={COMMIT: sha(7)}
            ),
        },
        asked,
    )
    held = catchup.read_tags([web, new, noted], pull)
    assert held["web"].commit == sha(1) and held["web"].stale == ("canary",)
    assert held["noted"].commit == sha(7)
    # Nothing at the first tag: the others are not read, the target is new (an answer, not a failure).
    assert held["new"].commit == "" and held["new"].answered
    assert "oci://r.example/new:extra" not in asked
    assert sorted(asked) == sorted(set(asked))  # each tag read once


def test_a_host_that_cannot_be_reached_is_asked_once() -> None:
    up, down = target("up"), [target(f"d{i}", host="dead.example") for i in range(5)]
    asked: list[str] = []

    def pull(url: str) -> Pulled:
        asked.append(url)
        return Pulled(DOWN) if "dead.example" in url else holding(sha(1))

    held = catchup.read_tags([up, *down], pull)
    assert sum("dead.example" in u for u in asked) == 1
    assert all(not held[t.id].answered and not held[t.id].commit for t in down)
    assert held["up"].answered and held["up"].commit == sha(1)


def test_a_check_record_moved_to_the_tag_says_no_commit() -> None:
    record = Pulled(
        OK,
        revision=f"main@sha1:{sha(3)}",
        digest="sha256:r",
        annotations={catchup.CHECKED: "sha256:x"},
    )
    held = catchup.read_tags([target("t")], lambda url: record)
    assert held["t"].commit == "" and held["t"].answered


# --- extend: the event's plan and the tags merged ------------------------------------------------


def event_plan(targets: list[Target], changed: list[str]) -> planner.Plan:
    cfg = Config(
        path=CONFIG, registry="oci://r.example", source="s", targets=tuple(targets)
    )
    files = {f for t in targets for f in t.files} | {"modules/m/cue.mod/module.cue"}
    return planner.plan(
        head_config=cfg,
        base_config=cfg,
        base_problem="",
        commit_range=CommitRange(head=HEAD, base=BASE),
        changes=[Change("M", path) for path in changed],
        head_files=files,
        bundle_texts={},
    )


def behind(n: int, *paths: str) -> Since:
    return Since(
        "behind",
        behind=n,
        change_map=dict.fromkeys(paths, "M"),
        changed_dirs=frozenset(planner.dirs_of(list(paths))),
    )


def held_at(pulled: Pulled, tag: str = "latest") -> Held:
    return Held(tag, pulled, catchup.commit_at(pulled))


def test_extend_merges_the_tags_with_the_event() -> None:
    names = ("current", "left", "same", "newer", "new", "unread")
    targets = [target(n) for n in names]
    # The event changed the files of `current` and `newer` only.
    plan = event_plan(targets, ["apps/current.cue", "apps/newer.cue"])
    assert [p.target.id for p in plan.targets] == ["current", "newer"]
    held = {
        "current": held_at(holding(HEAD)),
        "left": held_at(holding(sha(1))),  # behind, and its file changed since
        "same": held_at(holding(sha(2))),  # behind, nothing of its own changed since
        "newer": held_at(holding(sha(3))),  # a descendant of head
        "new": held_at(Pulled(MISSING)),
        "unread": held_at(Pulled(DOWN)),
    }
    since = {
        HEAD: Since("head"),
        sha(1): behind(2, "apps/left.cue"),
        sha(2): behind(5, "apps/current.cue"),
        sha(3): Since("ahead"),
    }
    out = catchup.extend(plan, held, since)
    by_id = {p.target.id: p for p in out.targets}
    assert sorted(by_id) == ["current", "left", "new", "newer"]

    # The event's own target keeps its reasons, and learns what its tag holds.
    assert by_id["current"].status == "planned" and not by_id["current"].caught_up
    assert by_id["current"].reasons == plan.targets[0].reasons
    assert by_id["current"].base == HEAD

    # Left behind by an earlier run: planned from its tag, saying how far back and why.
    left = by_id["left"]
    assert left.status == "planned" and left.caught_up and left.base == sha(1)
    assert left.reasons[0].startswith(
        f"behind: latest holds main@sha1:{sha(1)[:7]} (2 commits back); since then: "
    )
    assert "apps/left.cue" in left.reasons[0]
    assert left.reasons[-1] == catchup.LEFT_BEHIND

    # A tag that holds a newer commit is never moved back, even though the event took the target.
    newer = by_id["newer"]
    assert newer.status == "skipped" and "a descendant of this commit" in newer.error
    assert "not moving it back" in newer.error

    # Nothing at the tag: a new target, delivered now.
    assert by_id["new"].caught_up
    assert by_id["new"].reasons[0] == "new target: latest holds nothing yet"

    # The unread tag keeps the event's decision (not taken), and the plan says so once.
    assert (out.from_tags, out.unread) == (5, 1)
    assert len(out.warnings) == len(plan.warnings) + 1
    assert "1 tag(s) could not be read (connection refused)" in out.warnings[-1]
    assert out.matrix() == {
        "include": [{"target": t} for t in ("current", "left", "new")]
    }


def test_extend_with_every_target_planned_drops_those_their_tags_say_are_current() -> (
    None
):
    """A new branch (no base) takes every target: the tags still leave out what they already hold."""
    targets = [target("current"), target("left")]
    cfg = Config(
        path=CONFIG, registry="oci://r.example", source="s", targets=tuple(targets)
    )
    plan = planner.plan(
        head_config=cfg,
        base_config=None,
        base_problem="",
        commit_range=CommitRange(head=HEAD, base=None, why_all="new branch"),
        changes=[],
        head_files={
            "apps/current.cue",
            "apps/left.cue",
            "modules/m/cue.mod/module.cue",
        },
        bundle_texts={},
    )
    assert plan.every and len(plan.targets) == 2
    held = {"current": held_at(holding(HEAD)), "left": held_at(holding(sha(1)))}
    out = catchup.extend(
        plan, held, {HEAD: Since("head"), sha(1): behind(1, "apps/left.cue")}
    )
    assert [p.target.id for p in out.targets] == ["left"]
    # Not "left behind by an earlier run": every target was taken anyway.
    assert not out.targets[0].caught_up
    assert catchup.LEFT_BEHIND not in out.targets[0].reasons
    assert re.search(r"\(1 commit back\)", out.targets[0].reasons[0])
