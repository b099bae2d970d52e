"""One home for each default (gitops_action/defaults.py): action.yml, `Settings`, the inputs, the
command line and flux all say the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_action import defaults
from gitops_action.inputs import settings
from gitops_action.registry.flux import Flux

ACTION: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "action.yml").read_text()
)
INPUTS: dict[str, dict[str, Any]] = ACTION["inputs"]
HOME = {
    "config": defaults.CONFIG,
    "revision": defaults.REVISION,
    "timeout": defaults.TIMEOUT,
}
HOME |= {"mode": defaults.MODE, "provider": defaults.PROVIDER}
HOME |= {"fulcio-url": defaults.FULCIO_URL, "rekor-url": defaults.REKOR_URL}
HOME |= {"sign": defaults.SIGN}


@pytest.mark.parametrize("name", sorted(HOME))
def test_action_yml_defaults_are_the_packages(name: str) -> None:
    assert str(INPUTS[name]["default"]) == HOME[name]


@pytest.mark.parametrize("name", sorted(HOME))
def test_settings_inputs_and_flags_default_alike(name: str) -> None:
    field = name.replace("-", "_")
    assert getattr(settings.Settings(), field) == HOME[name]
    assert getattr(settings.from_inputs({}), field) == HOME[name]
    if name != "mode":  # the command line names its mode: there is no auto
        assert getattr(settings.from_args(["plan"], {}), field) == HOME[name]


@pytest.mark.parametrize(
    "name",
    sorted(n for n, i in INPUTS.items() if "${{" not in str(i.get("default", ""))),
)
def test_every_default_in_action_yml_means_not_given(name: str) -> None:
    given = settings.from_inputs(
        {f"INPUT_{name.upper()}": str(INPUTS[name].get("default", ""))}
    )
    assert given == settings.from_inputs({})


def test_flux_calls_default_to_the_same_timeout() -> None:
    assert Flux(env={}).timeout == defaults.TIMEOUT


def test_every_flag_reaches_its_setting() -> None:
    argv = [
        "dry-run",
        "--config",
        "c.yaml",
        "--repo",
        "/r",
        "--all",
        "--base",
        "b",
        "--head",
        "h",
    ]
    argv += [
        "--targets",
        "a, b",
        "--revision",
        "{sha}",
        "--registry",
        "oci://r/x",
        "--registry-username",
        "u",
    ]
    argv += ["--provider", "aws", "--parallel", "3", "--comment", "--timeout", "90s"]
    argv += ["--summary-file", "s.md", "--output-file", "o.json"]
    got = settings.from_args(argv, {"REGISTRY_PASSWORD": "p", "GITHUB_TOKEN": "t"})
    assert got == settings.Settings(
        mode="dry-run",
        config="c.yaml",
        all=True,
        base="b",
        head="h",
        targets=("a", "b"),
        revision="{sha}",
        registry="oci://r/x",
        registry_username="u",
        registry_password="p",
        provider="aws",
        github_token="t",
        parallel=3,
        comment=True,
        timeout="90s",
        workspace=Path("/r"),
        summary_file="s.md",
        output_file="o.json",
    )
    assert (
        settings.from_args(["plan"], {"REGISTRY_PASSWORD": "p"}).registry_password == ""
    )
    assert not settings.from_args(["push", "--no-skip-unchanged"], {}).skip_unchanged
    for mode in ("promote", "flux-config"):  # the flags of one command only
        more = (
            ["--from", "a", "--to", "b", "--force"]
            if mode == "promote"
            else ["--output-dir", "d"]
        )
        more += ["--tag", "t"] if mode == "flux-config" else []
        got = settings.from_args([mode, *more], {})
        assert (got.from_tag, got.to_tag, got.force) == (
            ("a", "b", True) if mode == "promote" else ("", "", False)
        )
        assert (got.output_dir, got.flux_tag) == (
            ("d", "t") if mode == "flux-config" else ("", "")
        )
