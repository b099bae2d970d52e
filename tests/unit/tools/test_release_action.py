"""tools/release_action.py: the release tag's action.yml names the prebuilt image of that release."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools"))

import release_action as ra  # noqa: E402

ACTION = (ROOT / "action.yml").read_text("utf-8")
IMAGE = "docker://ghcr.io/octo-org/timoni-flux-push:1.4.2"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools/release_action.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_main_keeps_the_dockerfile_for_development() -> None:
    assert yaml.safe_load(ACTION)["runs"] == {"using": "docker", "image": "Dockerfile"}


def test_the_release_names_its_image_and_nothing_else_changes() -> None:
    new = ra.pin(ACTION, ra.release("v1.4.2", "Octo-Org"))
    assert yaml.safe_load(new)["runs"]["image"] == IMAGE
    before, after = ACTION.split("\n"), new.split("\n")
    assert len(before) == len(after)
    assert [(a, b) for a, b in zip(before, after, strict=True) if a != b] == [
        ("  image: Dockerfile", f"  image: {IMAGE}")
    ]
    loaded, original = yaml.safe_load(new), yaml.safe_load(ACTION)
    assert {k: v for k, v in loaded.items() if k != "runs"} == {
        k: v for k, v in original.items() if k != "runs"
    }


def test_it_is_idempotent_and_refuses_another_version() -> None:
    rel = ra.release("v1.4.2", "octo-org")
    once = ra.pin(ACTION, rel)
    assert ra.pin(once, rel) == once
    with pytest.raises(
        ra.ReleaseError, match=r"names version 1\.4\.2, the tag is v1\.5\.0"
    ):
        ra.pin(once, ra.release("v1.5.0", "octo-org"))
    with pytest.raises(ra.ReleaseError, match="another image"):
        ra.pin(once, ra.release("v1.4.2", "someone-else"))
    quoted = ACTION.replace("image: Dockerfile", f"image: '{IMAGE}'")
    assert yaml.safe_load(ra.pin(quoted, rel))["runs"]["image"] == IMAGE


@pytest.mark.parametrize(
    ("tag", "major"),
    [("v1.0.0", "v1"), ("v2.13.4", "v2"), ("v1.2.3-rc.1", "v1"), ("v0.9.0", "v0")],
)
def test_version_and_major_come_from_the_tag(tag: str, major: str) -> None:
    rel = ra.release(tag, "Org")
    assert (rel.version, rel.major) == (tag[1:], major)
    assert rel.image == f"docker://ghcr.io/org/timoni-flux-push:{tag[1:]}"


@pytest.mark.parametrize(
    "tag", ["1.2.3", "v1.2", "v01.2.3", "v1.2.3.4", "latest", "v1.2.3+meta", "v1", ""]
)
def test_a_tag_that_is_not_a_version_is_refused(tag: str) -> None:
    with pytest.raises(ra.ReleaseError, match="is not v<major>"):
        ra.release(tag, "org")


@pytest.mark.parametrize(
    "owner", ["", "-org", "org-", "a--b", "org/repo", "x" * 40, "org name"]
)
def test_a_bad_owner_is_refused(owner: str) -> None:
    with pytest.raises(ra.ReleaseError, match="not a GitHub owner"):
        ra.release("v1.0.0", owner)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("name: x\n", "no top-level `runs:`"),
        ("runs:\n  using: node20\n  main: index.js\n", "0 `image:` lines"),
        ("runs:\n  using: node20\n  image: Dockerfile\n", "not `docker`"),
        (
            "runs:\n  using: docker\n  image: other/Dockerfile\n",
            "expected `Dockerfile`",
        ),
    ],
)
def test_an_action_yml_it_cannot_vouch_for_is_refused(text: str, says: str) -> None:
    with pytest.raises(ra.ReleaseError, match=says):
        ra.pin(text, ra.release("v1.0.0", "org"))


def test_the_command_rewrites_in_place_checks_and_prints_outputs(
    tmp_path: Path,
) -> None:
    (tmp_path / "action.yml").write_text(ACTION, "utf-8")
    check = run("--tag", "v1.4.2", "--owner", "octo-org", "--check", cwd=tmp_path)
    assert check.returncode == 1 and "does not name" in check.stderr
    done = run("--tag", "v1.4.2", "--owner", "octo-org", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"image={IMAGE}", "major=v1", "version=1.4.2"]
    assert (
        yaml.safe_load((tmp_path / "action.yml").read_text())["runs"]["image"] == IMAGE
    )
    again = run("--tag", "v1.4.2", "--owner", "octo-org", "--check", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    wrong = run("--tag", "v2.0.0", "--owner", "octo-org", cwd=tmp_path)
    assert wrong.returncode == 1 and "the tag is v2.0.0" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_the_image_cross_compiles_its_go_tools_for_the_target_platform() -> None:
    """Multi-arch without emulation: the Go stage runs on the build platform with GOARCH set to
    the target's; the release builds each platform on a runner of its architecture."""
    text = (ROOT / "Dockerfile").read_text("utf-8")
    assert "FROM --platform=$BUILDPLATFORM golang:" in text
    assert 'GOARCH="${TARGETARCH}" /src/tools/install.sh' in text
    workflow = yaml.safe_load(
        (ROOT / ".github/workflows/release.yml").read_text("utf-8")
    )
    matrix = workflow["jobs"]["image"]["strategy"]["matrix"]["include"]
    assert {(m["platform"], m["runner"]) for m in matrix} == {
        ("linux/amd64", "ubuntu-24.04"),
        ("linux/arm64", "ubuntu-24.04-arm"),
    }
    steps = " ".join(str(s) for s in workflow["jobs"]["image"]["steps"])
    assert "qemu" not in steps.lower()
    publish = " ".join(
        str(s.get("run", "")) for s in workflow["jobs"]["publish"]["steps"]
    )
    assert 'cosign sign --yes "${IMAGE}@${DIGEST}"' in publish
