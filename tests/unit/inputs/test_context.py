"""inputs.context: the GitHub environment a run sees, with the public GitHub's URLs as defaults."""

from __future__ import annotations

from gitops_action.inputs.context import Context


def test_from_env_reads_every_variable() -> None:
    ctx = Context.from_env(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_EVENT_PATH": "/tmp/event.json",
            "GITHUB_SHA": "a" * 40,
            "GITHUB_REF_NAME": "main",
            "GITHUB_REPOSITORY": "org/repo",
            "GITHUB_SERVER_URL": "https://ghe.example.com",
            "GITHUB_API_URL": "https://ghe.example.com/api/v3",
            "GITHUB_RUN_ID": "42",
        }
    )
    assert ctx == Context(
        True,
        "push",
        "/tmp/event.json",
        "a" * 40,
        "main",
        "org/repo",
        "https://ghe.example.com",
        "https://ghe.example.com/api/v3",
        "42",
    )
    assert ctx.run_url() == "https://ghe.example.com/org/repo/actions/runs/42"


def test_outside_actions() -> None:
    ctx = Context.from_env({})
    assert not ctx.in_actions
    assert (ctx.server_url, ctx.api_url) == (
        "https://github.com",
        "https://api.github.com",
    )
    assert (ctx.event_name, ctx.sha, ctx.repository, ctx.run_id) == ("", "", "", "")
    assert ctx.run_url() == ""


def test_only_true_means_actions() -> None:
    assert not Context.from_env({"GITHUB_ACTIONS": "1"}).in_actions
    assert not Context.from_env({"GITHUB_ACTIONS": "True"}).in_actions


def test_run_url_needs_repository_and_run() -> None:
    assert Context.from_env({"GITHUB_REPOSITORY": "org/repo"}).run_url() == ""
    assert Context.from_env({"GITHUB_RUN_ID": "7"}).run_url() == ""
    assert (
        Context.from_env({"GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "7"}).run_url()
        == "https://github.com/o/r/actions/runs/7"
    )
