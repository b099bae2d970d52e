"""Issue 3: from a real GitHub event payload to the two commits to compare (events.commit_range).

Payloads are the real examples of npm `@octokit/webhooks-examples`, patched per case; repositories
are real git repositories in temp dirs, including a shallow `git clone --depth 1 file://...`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support import payloads
from support.repos import GitRepo

from gitops_action.changes import events
from gitops_action.changes.events import CommitRange, EventError
from gitops_action.changes.gitrepo import ZERO_SHA, Repo

VERSIONS = Path(__file__).resolve().parents[3] / "tools" / "versions.env"


@pytest.fixture
def source(tmp_path: Path) -> tuple[GitRepo, list[str]]:
    """A repository with three commits on main: [first, second, third]."""
    repo = GitRepo.init(tmp_path / "source")
    shas = []
    for i in range(3):
        repo.write(f"file-{i}.txt", f"{i}\n")
        shas.append(repo.commit_all(f"commit {i}"))
    return repo, shas


def commit_range(
    repo: GitRepo, event: str, payload: dict[str, object], head: str, **kw: object
) -> CommitRange:
    path = payloads.write(payload, repo.path.parent / f"{event}-event.json")
    # the way the action reads GITHUB_EVENT_PATH
    loaded = events.load_payload(str(path))
    return events.commit_range(
        Repo(repo.path), event=event, payload=loaded, head=head, **kw
    )  # type: ignore[arg-type]


def test_material_is_the_pinned_package() -> None:
    pinned = dict(
        ln.split("=", 1)
        for ln in VERSIONS.read_text().splitlines()
        if "=" in ln and ln[0] != "#"
    )
    assert payloads.version() == pinned["OCTOKIT_WEBHOOKS_EXAMPLES_VERSION"]
    real = payloads.example("push")
    assert {
        "before",
        "after",
        "forced",
        "created",
        "deleted",
        "ref",
        "repository",
    } <= set(real)


def test_push_compares_before_with_after(source: tuple[GitRepo, list[str]]) -> None:
    repo, (_, second, third) = source
    rng = commit_range(repo, "push", payloads.push(before=second, after=third), third)
    assert (rng.base, rng.head, rng.why_all, rng.nothing) == (second, third, "", "")
    assert not rng.is_pull_request


def test_new_branch_takes_everything(source: tuple[GitRepo, list[str]]) -> None:
    repo, (*_, third) = source
    rng = commit_range(
        repo, "push", payloads.push(before=ZERO_SHA, after=third, created=True), third
    )
    assert rng.base is None
    assert rng.why_all == "a new branch: there is no previous commit to compare with"
    assert rng.nothing == ""


def test_deleted_branch_is_nothing_to_do(source: tuple[GitRepo, list[str]]) -> None:
    repo, (*_, third) = source
    payload = payloads.push(before=third, after=ZERO_SHA, deleted=True)
    rng = commit_range(repo, "push", payload, third)
    assert rng.base is None
    assert rng.nothing == "the push deleted the branch: nothing to build"


def test_forced_push_with_unfetchable_before_takes_everything(tmp_path: Path) -> None:
    src = GitRepo.init(tmp_path / "source")
    src.write("a.txt", "a\n")
    first = src.commit_all("first")
    src.write("a.txt", "rewritten later\n")
    lost = src.commit_all("lost")
    # The force push: history rewritten, the old commit unreachable and pruned from origin.
    src.git("reset", "-q", "--hard", first)
    src.write("b.txt", "b\n")
    after = src.commit_all("replacement")
    src.git("reflog", "expire", "--expire=now", "--all")
    src.git("gc", "-q", "--prune=now")
    assert (
        subprocess.run(
            ["git", "-C", str(src.path), "cat-file", "-e", lost], check=False
        ).returncode
        != 0
    )

    clone = src.shallow_clone(tmp_path / "clone")
    rng = commit_range(
        clone, "push", payloads.push(before=lost, after=after, forced=True), after
    )
    assert rng.base is None
    assert rng.why_all.startswith(
        f"the push's `before` commit (forced push) {lost[:12]} cannot be fetched ("
    )
    assert rng.why_all.endswith("): every target is affected")


def test_before_missing_from_shallow_clone_is_fetched(
    source: tuple[GitRepo, list[str]], tmp_path: Path
) -> None:
    src, (first, second, third) = source
    clone = src.shallow_clone(tmp_path / "clone")
    assert clone.git("rev-parse", "--is-shallow-repository") == "true"
    assert (
        subprocess.run(
            ["git", "-C", str(clone.path), "cat-file", "-e", first], check=False
        ).returncode
        != 0
    )
    assert clone.git("config", "remote.origin.url") == f"file://{src.path}"

    rng = commit_range(clone, "push", payloads.push(before=first, after=third), third)
    assert (rng.base, rng.why_all) == (first, "")
    # Fetched with depth 1: the base commit is there, the one between is not, and the clone stays shallow.
    assert clone.git("cat-file", "-t", first) == "commit"
    assert (
        subprocess.run(
            ["git", "-C", str(clone.path), "cat-file", "-e", second], check=False
        ).returncode
        != 0
    )
    assert clone.git("rev-parse", "--is-shallow-repository") == "true"
    assert [c.path for c in Repo(clone.path).diff(first, third)] == [
        "file-1.txt",
        "file-2.txt",
    ]


def test_base_equal_to_head_is_an_empty_plan_that_says_so(
    source: tuple[GitRepo, list[str]],
) -> None:
    repo, (*_, third) = source
    rng = commit_range(repo, "push", payloads.push(before=third, after=third), third)
    assert rng.base == third
    assert (
        rng.nothing
        == f"the push's `before` commit {third[:12]} is the head commit itself: nothing changed"
    )


def test_pull_request_compares_base_sha_with_github_sha(
    source: tuple[GitRepo, list[str]],
) -> None:
    repo, (first, second, third) = source
    payload = payloads.pull_request(base_sha=first, head_sha=second, number=7)
    # head: GITHUB_SHA (the merge commit)
    rng = commit_range(repo, "pull_request", payload, third)
    assert (rng.base, rng.head, rng.why_all) == (first, third, "")
    assert (rng.is_pull_request, rng.pr_number, rng.fork) == (True, 7, False)


def test_fork_pull_request_is_marked(source: tuple[GitRepo, list[str]]) -> None:
    repo, (first, second, third) = source
    payload = payloads.pull_request(base_sha=first, head_sha=second, fork=True)
    assert (
        payload["pull_request"]["head"]["repo"]["full_name"]
        != payload["repository"]["full_name"]
    )
    rng = commit_range(repo, "pull_request", payload, third)
    assert (rng.base, rng.fork) == (first, True)
    # The fork was deleted since: GitHub sends `head.repo: null`.
    payload["pull_request"]["head"]["repo"] = None
    assert commit_range(repo, "pull_request", payload, third).fork is True


def test_pull_request_base_missing_from_shallow_clone_is_fetched(
    source: tuple[GitRepo, list[str]], tmp_path: Path
) -> None:
    src, (first, _, third) = source
    clone = src.shallow_clone(tmp_path / "clone")
    rng = commit_range(
        clone,
        "pull_request",
        payloads.pull_request(base_sha=first, head_sha=third),
        third,
    )
    assert (rng.base, rng.why_all) == (first, "")


def test_merge_group_compares_base_sha(source: tuple[GitRepo, list[str]]) -> None:
    repo, (first, _, third) = source
    rng = commit_range(
        repo, "merge_group", payloads.merge_group(base_sha=first, head_sha=third), third
    )
    assert (rng.base, rng.head, rng.why_all, rng.is_pull_request) == (
        first,
        third,
        "",
        False,
    )


@pytest.mark.parametrize("event", ["workflow_dispatch", "schedule"])
def test_events_without_base_take_everything(
    source: tuple[GitRepo, list[str]], event: str
) -> None:
    repo, (*_, third) = source
    payload = (
        payloads.workflow_dispatch()
        if event == "workflow_dispatch"
        else payloads.schedule()
    )
    rng = commit_range(repo, event, payload, third)
    assert rng.base is None
    assert rng.why_all == f"a {event} event carries no base commit"


def test_base_input_overrides_the_event(source: tuple[GitRepo, list[str]]) -> None:
    repo, (first, second, third) = source
    payload = payloads.pull_request(base_sha=first, head_sha=third)
    rng = commit_range(repo, "pull_request", payload, third, base_override=second)
    assert (rng.base, rng.is_pull_request) == (second, True)
    rng = commit_range(
        repo,
        "workflow_dispatch",
        payloads.workflow_dispatch(),
        third,
        base_override="HEAD~2",
    )
    assert rng.base == first
    rng = commit_range(
        repo,
        "push",
        payloads.push(before=first, after=third),
        third,
        base_override="f" * 40,
    )
    assert rng.base is None
    assert rng.why_all.startswith(f"the `base` input {'f' * 12} cannot be fetched")


def test_all_input_wins_over_everything(source: tuple[GitRepo, list[str]]) -> None:
    repo, (first, _, third) = source
    rng = commit_range(
        repo,
        "push",
        payloads.push(before=first, after=third),
        third,
        take_all=True,
        base_override=first,
    )
    assert (rng.base, rng.why_all) == (None, "the `all` input is set")


def test_no_event_and_no_base(source: tuple[GitRepo, list[str]]) -> None:
    repo, (*_, third) = source
    rng = events.commit_range(Repo(repo.path), event="", payload={}, head=third)
    assert (rng.base, rng.why_all) == (None, "no base commit was given")


def test_unusable_payloads_are_usage_errors(
    tmp_path: Path, source: tuple[GitRepo, list[str]]
) -> None:
    repo, (*_, third) = source
    with pytest.raises(EventError, match="file not found"):
        events.load_payload(str(tmp_path / "absent.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(EventError, match="not valid JSON"):
        events.load_payload(str(tmp_path / "bad.json"))
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(EventError, match="expected a JSON object"):
        events.load_payload(str(tmp_path / "list.json"))
    payload = payloads.pull_request(base_sha=third, head_sha=third)
    del payload["pull_request"]["base"]["sha"]
    with pytest.raises(
        EventError, match=r"pull_request event payload has no `pull_request.base.sha`"
    ):
        events.commit_range(
            Repo(repo.path), event="pull_request", payload=payload, head=third
        )
    payload = payloads.merge_group(base_sha=third, head_sha=third)
    del payload["merge_group"]
    with pytest.raises(EventError, match=r"no `merge_group.base_sha`"):
        events.commit_range(
            Repo(repo.path), event="merge_group", payload=payload, head=third
        )
