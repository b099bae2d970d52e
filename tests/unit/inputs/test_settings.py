"""inputs.settings: the action's inputs (`INPUT_*`, as the runner passes them) read into `Settings`,
each bad value refused with the input's name; the timeout read as flux reads a Go duration. (The
command line's flags: tests/unit/test_cli.py; the signing inputs: tests/unit/sign/test_signing.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_action.errors import SettingsError
from gitops_action.inputs.settings import (
    Settings,
    duration_seconds,
    from_inputs,
    parallelism,
)
from gitops_action.registry.credentials import basic_auth


def inputs(**given: str) -> dict[str, str]:
    """INPUT_<NAME> as the runner sets it: upper case, hyphens kept (`registry_username` -> hyphen)."""
    return {f"INPUT_{k.replace('_', '-').upper()}": v for k, v in given.items()}


def refused(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as e:
        from_inputs(env)
    return str(e.value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90.0),
        ("5m", 300.0),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("1h2m3s", 3723.0),
    ],
)
def test_a_timeout_is_a_go_duration(value: str, seconds: float) -> None:
    assert duration_seconds(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "90", "5 m", "1m30", "m5", "5min", "-5s", "1d"])
def test_a_timeout_that_is_not_a_go_duration_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="input `timeout`"):
        duration_seconds(value)
    if value:  # an empty input is the default
        assert refused(inputs(timeout=value)).startswith("input `timeout`:")


def test_no_inputs_give_the_defaults() -> None:
    """Every input left empty means the same as the field's default in `Settings`."""
    assert from_inputs({}) == Settings()
    empty = {f"INPUT_{n.upper()}": "" for n in ("mode", "config", "timeout", "comment")}
    assert from_inputs(empty) == Settings()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("Yes", True),
        (" ON ", True),
        ("1", True),
        ("false", False),
        ("No", False),
        ("off", False),
        ("0", False),
        ("", False),
    ],
)
def test_booleans_in_the_spellings_yaml_users_write(value: str, expected: bool) -> None:
    assert from_inputs(inputs(all=value)).all is expected


def test_a_boolean_that_is_neither_is_refused_by_name() -> None:
    assert (
        refused(inputs(all="maybe"))
        == "input `all`: expected true or false, got 'maybe'"
    )
    assert refused(inputs(skip_unchanged="y")).startswith("input `skip-unchanged`:")


def test_skip_unchanged_and_comment_default_to_true_when_empty() -> None:
    s = from_inputs(inputs(skip_unchanged="", comment=""))
    assert s.skip_unchanged and s.comment
    s = from_inputs(inputs(skip_unchanged="false", comment="false"))
    assert not s.skip_unchanged and not s.comment


def test_targets_split_on_commas_and_lines() -> None:
    s = from_inputs(inputs(targets=" web-staging, staging/billing\nplatform ,,\n"))
    assert s.targets == ("web-staging", "staging/billing", "platform")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("-1", "input `parallel`: must not be negative"),
        ("four", "input `parallel`: expected a number, got 'four'"),
        ("2.5", "input `parallel`: expected a number, got '2.5'"),
    ],
)
def test_parallel_is_a_count(value: str, says: str) -> None:
    assert refused(inputs(parallel=value)) == says


def test_parallel_zero_means_every_cpu_this_process_may_use() -> None:
    assert from_inputs(inputs(parallel="")).parallel == 0
    assert from_inputs(inputs(parallel="3")).parallel == 3
    assert parallelism(3) == 3
    assert parallelism(0) >= 1


@pytest.mark.parametrize("config", ["../outside.yaml", "/etc/x.yaml", "a/../../x.yaml"])
def test_a_config_outside_the_repository_is_refused(config: str) -> None:
    assert refused(inputs(config=config)).startswith(
        f"input `config`: {config!r} is outside the repository"
    )


def test_a_config_path_inside_the_repository_is_taken_as_given() -> None:
    assert from_inputs(inputs(config="deploy/../gitops.yaml")).config == (
        "deploy/../gitops.yaml"
    )


def test_registry_and_login_checks() -> None:
    assert refused(inputs(registry="ghcr.io/org")) == (
        "input `registry`: must start with oci://, got 'ghcr.io/org'"
    )
    for half in (inputs(registry_username="u"), inputs(registry_password="p")):
        assert refused(half).endswith("must be given together")
    assert refused(inputs(provider="azure-ad")).startswith("input `provider`:")
    assert refused(inputs(mode="deploy")).startswith("input `mode`: expected one of")


def test_a_password_is_taken_as_given_other_inputs_are_trimmed() -> None:
    s = from_inputs(
        inputs(
            registry=" oci://r.example/x ",
            registry_username=" u ",
            registry_password=" p w ",
        )
    )
    assert (s.registry, s.registry_username, s.registry_password) == (
        "oci://r.example/x",
        "u",
        " p w ",
    )


def test_the_workspace_is_githubs() -> None:
    assert from_inputs({"GITHUB_WORKSPACE": "/github/workspace"}).workspace == Path(
        "/github/workspace"
    )


def test_the_secrets_include_the_login_as_docker_config_holds_it() -> None:
    s = from_inputs(
        inputs(registry_username="ci", registry_password="s3cr3t", github_token="ghs_x")
    )
    shown = s.secrets()
    assert {"s3cr3t", "ghs_x", basic_auth("ci", "s3cr3t")} <= set(shown)
    assert "" not in shown and "ci" not in shown
    assert Settings().secrets() == ()
