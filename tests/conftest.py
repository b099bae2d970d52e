"""Shared fixtures: the real registry, real git repositories, the real tools on PATH.

Nothing here stands in for timoni, flux, git or the registry.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.github_api import GitHubApiServer  # noqa: E402
from support.registry import Registry, start_registry  # noqa: E402
from support.repos import GitRepo  # noqa: E402

TOOLS = ROOT / ".tools" / "bin"
EXAMPLES = ROOT / "examples" / "gitops"
OPENAPI = ROOT / ".tools/npm/openapi/api.github.com.json"
PR = 7  # the pull request number the GitHub API test server knows


UNIT = Path(__file__).resolve().parent / "unit"
REQUIRED = ("timoni", "flux", "cosign", "docker-registry")


def pytest_configure(config: pytest.Config) -> None:
    os.environ["PATH"] = f"{TOOLS}{os.pathsep}{os.environ['PATH']}"
    config.addinivalue_line(
        "markers", "unit: runs without timoni, flux and the registry (make unit)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(UNIT):
            item.add_marker(pytest.mark.unit)


def missing_tools() -> list[str]:
    """The pinned tools an integration test needs that are not installed."""
    found = {t: (TOOLS / t).exists() for t in ("timoni", "flux", "cosign")}
    found["docker-registry"] = shutil.which("docker-registry") is not None
    return [t for t in REQUIRED if not found[t]]


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Integration tests need the real, pinned tools: fail loudly, never skip. Unit tests need none.
    if item.get_closest_marker("unit") is None and (gone := missing_tools()):
        pytest.fail(
            f"{', '.join(gone)} missing: run tools/install.sh (make test does)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A real CNCF distribution registry on 127.0.0.1, plain HTTP, storage in a temp dir."""
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The same registry with htpasswd (bcrypt) auth and a self-signed TLS certificate."""
    reg = start_registry(
        tmp_path_factory.mktemp("auth-registry"),
        auth=("ci-user", "s3cr3t-Registry-Pa55"),
        tls=True,
    )
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def api_server() -> Iterator[GitHubApiServer]:
    """The GitHub REST API test double: every request is checked against GitHub's OpenAPI description."""
    if not OPENAPI.is_file():
        pytest.fail(f"{OPENAPI} is missing: run tools/test-material.sh", pytrace=False)
    with GitHubApiServer(OPENAPI, repo="octo-org/gitops", pull_numbers=(PR,)) as server:
        yield server


@pytest.fixture
def api(api_server: GitHubApiServer) -> GitHubApiServer:
    api_server.reset()
    return api_server


@pytest.fixture
def example_repo(tmp_path: Path) -> GitRepo:
    """A real git repository holding the example GitOps tree, one commit on main."""
    repo = GitRepo.init(tmp_path / "gitops")
    shutil.copytree(EXAMPLES, repo.path, dirs_exist_ok=True)
    repo.commit_all("initial")
    return repo


@pytest.fixture
def prefix(registry: Registry, request: pytest.FixtureRequest) -> str:
    """A registry prefix of this test's own, so tests never see each other's artifacts."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name.lower()).strip(
        "-"
    )[:60]
    return f"oci://{registry.host}/{name}"


def run_cli(
    repo: GitRepo, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m gitops_action ...` in the repository, as a user outside GitHub runs it."""
    full = {
        k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))
    }
    full["PYTHONPATH"] = str(ROOT)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "gitops_action", *args],
        cwd=repo.path,
        env=full,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def read_json(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text())
    return data


@pytest.fixture
def flux_pulls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many `flux pull` processes ran since the test began: a wrapper first on PATH logs each
    flux process (the reads the reader left to flux), then runs the real flux."""
    real = shutil.which("flux")
    assert real is not None
    wrapper, log = tmp_path / "flux-wrapper", tmp_path / "flux-calls.log"
    wrapper.mkdir()
    (wrapper / "flux").write_text(
        f'#!/bin/sh\necho "$1" >> {shlex.quote(str(log))}\nexec {shlex.quote(real)} "$@"\n'
    )
    (wrapper / "flux").chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper}{os.pathsep}{os.environ['PATH']}")
    return lambda: log.read_text().split().count("pull") if log.exists() else 0
