"""Point a release's action.yml at the prebuilt image of that release.

    python3 tools/release_action.py --tag v1.2.3 --owner Org [--file action.yml] [--check]

On main, action.yml says `image: Dockerfile` (a job builds the image: for development). The release
workflow runs this on the release tag's commit: `runs.image` becomes
`docker://ghcr.io/<owner>/timoni-flux-push:<version>`, so `uses: <owner>/timoni-flux-push@v1` pulls
the image instead of compiling timoni and flux. Prints the image and the major tag (`v1`) as
`image=...` / `major=...` lines (for $GITHUB_OUTPUT).

Checks: the tag is `v<major>.<minor>.<patch>` (an optional `-pre.release` suffix), the version the
file already names (if any) is the tag's, and nothing but the one `image:` line of `runs:` changes.
Running it again on its own output changes nothing. Only the standard library: the workflow runs it
with the runner's python3.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

IMAGE_NAME = "timoni-flux-push"
TAG = re.compile(
    r"^v(?P<major>0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$"
)
# GitHub owners: letters, digits, single hyphens; ghcr.io wants them lower-case.
OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
IMAGE_LINE = re.compile(r"^(?P<indent>[ \t]+)image:[ \t]*(?P<value>\S.*?)[ \t]*$")


class ReleaseError(ValueError):
    """The tag, the owner or action.yml is not what a release can use."""


@dataclass(frozen=True)
class Release:
    tag: str  # v1.2.3
    version: str  # 1.2.3 (the image tag)
    major: str  # v1 (the tag users name)
    image: str  # docker://ghcr.io/<owner>/timoni-flux-push:1.2.3


def release(tag: str, owner: str) -> Release:
    m = TAG.match(tag)
    if not m:
        raise ReleaseError(f"release tag {tag!r} is not v<major>.<minor>.<patch>")
    if not OWNER.match(owner):
        raise ReleaseError(f"{owner!r} is not a GitHub owner name")
    version = tag[1:]
    return Release(
        tag,
        version,
        f"v{m['major']}",
        f"docker://ghcr.io/{owner.lower()}/{IMAGE_NAME}:{version}",
    )


def _unquote(value: str) -> str:
    value = value.split(" #", 1)[0].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _runs_image_line(lines: list[str]) -> int:
    """The index of the `image:` line directly under the top-level `runs:` mapping."""
    start = next(
        (i for i, ln in enumerate(lines) if re.match(r"^runs:[ \t]*(#.*)?$", ln)), None
    )
    if start is None:
        raise ReleaseError("action.yml has no top-level `runs:`")
    found: list[int] = []
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.strip() and not line[0].isspace() and not line.lstrip().startswith("#"):
            break  # the next top-level key
        if IMAGE_LINE.match(line):
            found.append(i)
    if len(found) != 1:
        raise ReleaseError(
            f"action.yml's `runs:` has {len(found)} `image:` lines, expected one"
        )
    block = "\n".join(lines[start:])
    if not re.search(r"^[ \t]+using:[ \t]*['\"]?docker['\"]?[ \t]*$", block, re.M):
        raise ReleaseError("action.yml's `runs.using` is not `docker`")
    return found[0]


def pin(text: str, rel: Release) -> str:
    """action.yml with `runs.image` naming the release's image. Accepts `Dockerfile` (main) or
    this release's image already (idempotent); refuses an image of another version or owner."""
    lines = text.split("\n")
    i = _runs_image_line(lines)
    m = IMAGE_LINE.match(lines[i])
    assert m is not None
    current = _unquote(m["value"])
    if current != rel.image:
        if current.startswith("docker://"):
            name, _, version = current.rpartition(":")
            if name == rel.image.rpartition(":")[0]:
                raise ReleaseError(
                    f"action.yml names version {version}, the tag is {rel.tag}"
                )
            raise ReleaseError(f"action.yml already names another image: {current}")
        if current != "Dockerfile":
            raise ReleaseError(
                f"action.yml's image is {current!r}, expected `Dockerfile` (main's)"
            )
    lines[i] = f"{m['indent']}image: {rel.image}"
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--tag", required=True, help="the release tag, v1.2.3")
    p.add_argument(
        "--owner", required=True, help="the repository owner (github.repository_owner)"
    )
    p.add_argument("--file", type=Path, default=Path("action.yml"))
    p.add_argument(
        "--check",
        action="store_true",
        help="only check: exit 1 if the file is not pinned",
    )
    args = p.parse_args(argv)
    try:
        rel = release(args.tag, args.owner)
        text = args.file.read_text("utf-8")
        new = pin(text, rel)
    except (ReleaseError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        if new != text:
            print(f"error: {args.file} does not name {rel.image}", file=sys.stderr)
            return 1
    elif new != text:
        args.file.write_text(new, "utf-8")
    print(f"image={rel.image}\nmajor={rel.major}\nversion={rel.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
