"""Point a timoni error at the user's file and line.

timoni reports positions in files the user never wrote: `./values.cue` is its in-memory merge of
every `-f` file, bundle files become `./0.platform.cue`, and a CUE syntax error in a values file
prints the whole file (secrets included) instead of its name. So this module maps back:
field paths (`values.replicas: conflicting values ...`) to the line that sets them in the values
files, `./N.name.cue:L:C` to the N-th bundle file, and echoed file contents to the file's name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

FIELD_ERROR = re.compile(
    r"^(?P<path>(?:values|bundle|timoni\.instance\.config)(?:\.[\w\-\"#$]+)+):\s+(?P<msg>.+)$", re.M
)
# A closed schema reports the field where the module unifies the values (`instance: config: values`,
# as timoni's blueprints do): `timoni.instance.config.x: field not allowed` is `values.x`.
INSTANCE_CONFIG = "timoni.instance.config."
BUNDLE_POS = re.compile(r"\./(?P<index>\d+)\.[^\s:]*:(?P<line>\d+):(?P<col>\d+)")
FILE_POS = re.compile(r"(?P<file>[^\s:\"'()]+\.(?:cue|ya?ml|json)):(?P<line>\d+)(?::(?P<col>\d+))?")
LOG_PREFIX = re.compile(r"^\d{1,2}:\d{2}(?:AM|PM)\s+ERR\s+", re.M)
# Terminal escapes (colour, cursor moves) and other control characters: never in a message.
CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]?|[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# An error header (`a.b.#c.d: field not allowed:`) then its positions, indented, one a line.
ERROR_BLOCK = re.compile(r"^(?P<path>[^\s:]+):\s+(?P<msg>[^\n]*?):?\n(?P<at>(?:[ \t]+\S[^\n]*\n?)+)", re.M)
# timoni's merge of the defaults and every -f file, in memory: its lines are none of the user's.
MERGED_POS = re.compile(r"^\s*\./values\.cue:(?P<line>\d+):(?P<col>\d+)\s*$", re.M)


@dataclass(frozen=True)
class Located:
    file: str  # repo-relative
    line: int
    col: int
    message: str


def clean(stderr: str, files: Sequence[str], repo_root: Path) -> str:
    """timoni's stderr made safe to show: a values file it echoed whole is replaced by its name, and
    the values the target's files give secret-looking keys are hidden (CUE quotes values in errors:
    `conflicting values "pa55word" and "other"`)."""
    text = LOG_PREFIX.sub("", plain(stderr))
    hidden: set[str] = set()
    for f in files:
        try:
            content = (repo_root / f).read_text("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if len(content) > 8 and content in text:
            text = text.replace(content, f"<{f}>")
        hidden.update(secret_values(content))
    for value in sorted(hidden, key=len, reverse=True):
        text = text.replace(value, "***")
    return text.strip()


def plain(text: str) -> str:
    """Text without terminal escapes or control characters (tabs and newlines stay), and valid
    UTF-8: a file name's undecodable bytes (kept as surrogates) are written as \\udcXX."""
    return CONTROL.sub("", text).encode("utf-8", "backslashreplace").decode("utf-8")


# A key named like a credential (password, apiKey, client_secret, token, ...), then a string value:
# quoted (CUE, YAML, JSON) or a plain YAML scalar.
_SECRET_VALUE = re.compile(
    r"""[\w.-]*(?:passw(?:or)?d|passphrase|secret|token|api[_-]?key|private[_-]?key|credential)[\w.-]*["']?"""
    r"""[ \t]*:[ \t]*(?:"(?P<dq>(?:[^"\\\n]|\\.)+)"|'(?P<sq>[^'\n]+)'|(?P<plain>[^\s"'#{\[|>&*!][^\n#]*))""",
    re.I,
)


def secret_values(text: str) -> set[str]:
    """String values of secret-looking keys in a values or bundle file (6 characters or more, so that
    no common word is hidden everywhere)."""
    found = set()
    for m in _SECRET_VALUE.finditer(text):
        value = (m.group("dq") or m.group("sq") or m.group("plain") or "").strip().rstrip(",}")
        if len(value) >= 6 and value not in ("string", "true", "false", "null"):
            found.add(value)
    return found


def locate(stderr: str, files: Sequence[str], repo_root: Path, *, bundle: bool) -> list[Located]:
    """Best positions in the target's own files for the errors in `stderr` (already cleaned)."""
    found: list[Located] = []
    for m in FIELD_ERROR.finditer(stderr):
        msg = f"{m.group('path')}: {m.group('msg').strip()}"
        block = stderr[m.end() : m.end() + 2000]
        pos = BUNDLE_POS.search(block.split("\n\n")[0]) if bundle else None
        if pos and int(pos.group("index")) < len(files):
            found.append(
                Located(files[int(pos.group("index"))], int(pos.group("line")), int(pos.group("col")), msg)
            )
            continue
        path = m.group("path")
        if path.startswith(INSTANCE_CONFIG):
            path = "values." + path.removeprefix(INSTANCE_CONFIG)
        field = path.split(".")
        if bundle and len(field) > 3 and field[1] == "instances":
            field = field[3:]  # bundle.instances.NAME.values.x -> values.x
        hit = find_field(files, field, repo_root)
        if hit:
            found.append(Located(hit[0], hit[1], 1, msg))
    found.extend(merged_values_errors(stderr, files, repo_root, bundle=bundle))
    # timoni echoes the file with its final newline: `loading values from <f>\n failed: ...`.
    for m in re.finditer(r"<(?P<file>[^<>\n]+)>\s*failed: (?P<msg>.+)", stderr):
        if m.group("file") in files:
            found.append(Located(m.group("file"), 1, 1, f"{m.group('file')}: {m.group('msg').strip()}"))
    for m in FILE_POS.finditer(stderr):
        if m.group("file") == "./values.cue":
            continue  # timoni's merged values, not a file of the user's (see merged_values_errors)
        rel = _relative(m.group("file"), files, repo_root)
        if rel:
            line_text = _line_of(stderr, m.start())
            found.append(Located(rel, int(m.group("line")), int(m.group("col") or 1), line_text))
    unique: dict[tuple[str, int], Located] = {}
    for loc in found:
        unique.setdefault((loc.file, loc.line), loc)
    return list(unique.values())


BUNDLE_INSTANCE = re.compile(r"^build failed for (?P<name>[^\s:]+):", re.M)


def merged_values_errors(
    stderr: str, files: Sequence[str], repo_root: Path, *, bundle: bool
) -> list[Located]:
    """Errors timoni reports at `./values.cue:L:C`, its in-memory merge of the values: mapped to the
    user's file by content and position, never by the file's name. CUE formats that merge one field
    a line, nested fields one tab deeper under `values: {`, so column C puts the offending label
    C-1 levels below `values`: the last C-1 labels of the error's path (`...#cfg.colour` at column
    2 is `values.colour`), looked up in the target's files, last file first (the one that wins).
    In a bundle the instance is the one timoni names (`build failed for webapp:`) and the field is
    `bundle.instances.webapp.values.colour`."""
    found: list[Located] = []
    for block in ERROR_BLOCK.finditer(stderr):
        instance = [m.group("name") for m in BUNDLE_INSTANCE.finditer(stderr, 0, block.start())][-1:]
        if bundle and not instance:
            continue
        prefix = ["bundle", "instances", instance[0]] if bundle else []
        labels = _labels(block.group("path"))
        message = block.group("msg").strip().rstrip(":")
        for pos in MERGED_POS.finditer(block.group("at")):
            depth = int(pos.group("col")) - 1
            if not 1 <= depth <= len(labels):
                continue
            field = labels[-depth:]
            if any(label.startswith("#") for label in field):
                continue  # a definition's own field: not something a values file sets
            hit = find_field(files, [*prefix, "values", *field], repo_root)
            if hit:
                where = ".".join([*prefix, "values", *field])
                found.append(Located(hit[0], hit[1], 1, f"{where}: {message}"))
    return found


def _labels(path: str) -> list[str]:
    """`a."b.c".d` -> [a, "b.c", d]: dots inside quoted labels do not split."""
    return [m.group(0) for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[^.]+', path)]


def _line_of(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else None].strip()


def _relative(name: str, files: Sequence[str], repo_root: Path) -> str | None:
    """A file named in an error, if it is one of the target's files (by path or by base name)."""
    root = repo_root.resolve()
    p = Path(name)
    candidates = [p] if p.is_absolute() else [root / p]
    for c in candidates:
        try:
            rel = c.resolve().relative_to(root).as_posix()
        except (ValueError, OSError):
            continue
        if rel in files:
            return rel
    by_name = [f for f in files if Path(f).name == p.name]
    return by_name[0] if len(by_name) == 1 else None


def find_field(files: Sequence[str], field: Sequence[str], repo_root: Path) -> tuple[str, int] | None:
    """The last file (merge order) that sets `field`, and the line where it does."""
    for f in reversed(files):
        try:
            text = (repo_root / f).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        line = _yaml_line(text, field) if f.endswith((".yaml", ".yml", ".json")) else _cue_line(text, field)
        if line:
            return f, line
    return None


def _yaml_line(text: str, field: Sequence[str]) -> int | None:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    best: int | None = None
    for part in field:
        if not isinstance(node, yaml.MappingNode):
            break
        nxt = None
        for k, v in node.value:
            if str(k.value) == part.strip('"'):
                best, nxt = k.start_mark.line + 1, v
        if nxt is None:
            break
        node = nxt
    return best


_CUE_FIELD = re.compile(r"\s*(?:\"([^\"]+)\"|([\w\-#$]+))\??!?\s*:(?!=)")


def _cue_line(text: str, field: Sequence[str]) -> int | None:
    """Find `a: b: c:` or nested `a: { b: { c: ... } }` in a CUE file: a small scanner that tracks
    the labels of open braces. Good enough for values files; no CUE parser exists in Python."""
    stack: list[list[str]] = []
    best: int | None = None
    depth_best = 0
    want = [p.strip('"') for p in field]
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("//", 1)[0]
        labels: list[str] = []
        pos = 0
        while m := _CUE_FIELD.match(line, pos):
            labels.append(m.group(1) or m.group(2))
            pos = m.end()
        path = [lbl for frame in stack for lbl in frame] + labels
        common = 0
        while common < min(len(path), len(want)) and path[common] == want[common]:
            common += 1
        if labels and common == len(path) and common > depth_best:
            best, depth_best = n, common
        rest = line[pos:]
        opens, closes = rest.count("{"), rest.count("}")
        if opens > closes:
            stack.append(labels)
            stack.extend([] for _ in range(opens - closes - 1))
        for _ in range(closes - opens):
            if stack:
                stack.pop()
    return best
