"""A password-protected cosign key pair, made by the pinned cosign (tests that sign share it)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

COSIGN = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "cosign"


def make_key_pair(where: Path, password: str) -> dict[str, Path]:
    """`cosign generate-key-pair` in `where`: {"key": cosign.key, "pub": cosign.pub}."""
    subprocess.run(
        [str(COSIGN), "generate-key-pair"],
        cwd=where,
        env={**os.environ, "COSIGN_PASSWORD": password},
        check=True,
        capture_output=True,
        timeout=120,
    )
    return {"key": where / "cosign.key", "pub": where / "cosign.pub"}
