"""A real OCI registry (Debian's docker-registry, the CNCF distribution) for the tests."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    directory: Path
    auth: tuple[str, str] | None = None
    ca_file: Path | None = None
    log: Path = field(default_factory=Path)

    @property
    def scheme(self) -> str:
        return "https" if self.ca_file else "http"

    def _context(self) -> ssl.SSLContext | None:
        return (
            ssl.create_default_context(cafile=str(self.ca_file))
            if self.ca_file
            else None
        )

    def request(
        self, path: str, *, method: str = "GET", accept: str = OCI_MANIFEST
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(
            f"{self.scheme}://{self.host}{path}",
            method=method,
            headers={"Accept": accept},
        )
        if self.auth:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(
                req, timeout=10, context=self._context()
            ) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def manifest(
        self, repository: str, reference: str
    ) -> tuple[str, dict[str, object]] | None:
        """(digest, manifest) at repository:reference over the registry's HTTP API, or None."""
        status, headers, body = self.request(f"/v2/{repository}/manifests/{reference}")
        if status == 404:
            return None
        assert status == 200, (status, body[:300])
        return headers["Docker-Content-Digest"], json.loads(body)

    def revision(self, repository: str, reference: str) -> str | None:
        found = self.manifest(repository, reference)
        if found is None:
            return None
        annotations = found[1].get("annotations") or {}
        assert isinstance(annotations, dict)
        return str(annotations.get("org.opencontainers.image.revision"))

    def blob(self, repository: str, digest: str) -> bytes:
        status, _, body = self.request(f"/v2/{repository}/blobs/{digest}", accept="*/*")
        assert status == 200, status
        return body

    def tags(self, repository: str) -> list[str]:
        status, _, body = self.request(
            f"/v2/{repository}/tags/list", accept="application/json"
        )
        if status == 404:
            return []
        return list(json.loads(body).get("tags") or [])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def start_registry(
    directory: Path, *, auth: tuple[str, str] | None = None, tls: bool = False
) -> Registry:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    lines = [
        "version: 0.1",
        "log: {level: warn}",
        f"storage: {{filesystem: {{rootdirectory: {directory / 'data'}}}, delete: {{enabled: true}}}}",
        f"http: {{addr: '127.0.0.1:{port}', secret: test-only-secret",
    ]
    ca = None
    if tls:
        cert, key = _self_signed(directory)
        lines[-1] += f", tls: {{certificate: {cert}, key: {key}}}"
        ca = cert
    lines[-1] += "}"
    if auth:
        htpasswd = directory / "htpasswd"
        subprocess.run(
            ["htpasswd", "-Bbc", str(htpasswd), auth[0], auth[1]],
            check=True,
            capture_output=True,
        )
        lines.append(f"auth: {{htpasswd: {{realm: test-registry, path: {htpasswd}}}}}")
    config = directory / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = directory / "registry.log"
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    reg = Registry(f"127.0.0.1:{port}", proc, directory, auth, ca, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            status, _, _ = reg.request("/v2/", accept="application/json")
            if status in (200, 401):
                return reg
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.1)
    reg.stop()
    raise RuntimeError(
        f"docker-registry did not answer /v2/ within 20s: {log.read_text()[-2000:]}"
    )
