"""The GitHub (or plain CI) environment a run sees, read once from the process environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Context:
    in_actions: bool
    event_name: str
    event_path: str
    sha: str
    ref_name: str
    repository: str
    server_url: str
    api_url: str
    run_id: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Context:
        return cls(
            in_actions=env.get("GITHUB_ACTIONS") == "true",
            event_name=env.get("GITHUB_EVENT_NAME", ""),
            event_path=env.get("GITHUB_EVENT_PATH", ""),
            sha=env.get("GITHUB_SHA", ""),
            ref_name=env.get("GITHUB_REF_NAME", ""),
            repository=env.get("GITHUB_REPOSITORY", ""),
            server_url=env.get("GITHUB_SERVER_URL", "https://github.com"),
            api_url=env.get("GITHUB_API_URL", "https://api.github.com"),
            run_id=env.get("GITHUB_RUN_ID", ""),
        )

    def run_url(self) -> str:
        if not (self.repository and self.run_id):
            return ""
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"
