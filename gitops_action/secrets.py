"""How a secret is written on its way out, and how to hide it: the forms a serialiser gives it
(JSON, YAML, URL, base64), the lines of a PEM key, the HTTP Basic value of a login. Used by every
stage that prints or writes text."""

from __future__ import annotations

import base64
import functools
import json
import urllib.parse

import yaml


def basic_auth(username: str, password: str) -> str:
    """base64(user:password): the docker config's `auth` value and an HTTP Basic credential."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def redact(text: str, secrets: list[str]) -> str:
    """Every known secret out of `text`, in each form it takes on the way out (see `forms`)."""
    for s in secrets:
        if s:
            for form in forms(s):
                text = text.replace(form, "***")
    return text


# an encoded form shorter than this would blank ordinary text; the raw secret always goes
MIN_FORM = 6


@functools.lru_cache(maxsize=256)
def forms(secret: str) -> tuple[str, ...]:
    """The secret as printed and as the serialisations on the way out write it: JSON (the outputs,
    `\\"` and `\\u00e9`), YAML double- and single-quoted (a diff; PyYAML writes `\\xE9`), Go and CUE
    quoting (an error message), URL-encoded, base64 (plain and URL-safe, with and without padding).
    Longest first, so a longer form is never left half-replaced by a shorter one inside it."""
    raw = secret.encode()
    found = {
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        _yaml_double(secret, unicode=False),
        _yaml_double(secret, unicode=True),
        secret.replace("'", "''"),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
    }
    found |= {f.rstrip("=") for f in found}
    kept = {f for f in found if len(f) >= MIN_FORM} | {secret}
    return tuple(sorted(kept, key=len, reverse=True))


def _yaml_double(text: str, *, unicode: bool) -> str:
    """PyYAML's double-quoted form, without the quotes (escapes: \\" \\\\ \\xE9 \\u2603 \\t ...)."""
    dumped = yaml.safe_dump(
        text, default_style='"', allow_unicode=unicode, width=1_000_000
    )
    return dumped.strip().removesuffix("...").strip()[1:-1]


def pem_parts(pem: str) -> list[str]:
    """The lines of a PEM body worth masking on their own (a log line may hold one line of a key);
    header lines are not secret, and masking a few characters would blank them all over the log."""
    return [
        ln.strip()
        for ln in pem.splitlines()
        if len(ln.strip()) >= 8 and not ln.startswith("-----")
    ]
