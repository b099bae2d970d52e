"""Point a timoni error at the user's file and line.

timoni reports positions in files the user never wrote: `./values.cue` is its in-memory merge of
every `-f` file, bundle files become `./0.platform.cue`, and a CUE syntax error in a values file
prints the whole file (secrets included) instead of its name. So this module maps back:
field paths (`values.replicas: conflicting values ...`) to the line that sets them in the values
files, `./N.name.cue:L:C` to the N-th bundle file, and echoed file contents to the file's name.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from gitops_action.text import plain

FIELD_ERROR = re.compile(
    r"^(?P<path>(?:values|bundle|timoni\.instance\.config)(?:\.[\w\-\"#$]+)+):\s+(?P<msg>.+)$",
    re.M,
)
# A closed schema reports the field where the module unifies the values (`instance: config: values`,
# as timoni's blueprints do): `timoni.instance.config.x: field not allowed` is `values.x`.
INSTANCE_CONFIG = "timoni.instance.config."
BUNDLE_POS = re.compile(r"\./(?P<index>\d+)\.[^\s:]*:(?P<line>\d+):(?P<col>\d+)")
FILE_POS = re.compile(
    r"(?P<file>[^\s:\"'()]+\.(?:cue|ya?ml|json)):(?P<line>\d+)(?::(?P<col>\d+))?"
)
LOG_PREFIX = re.compile(r"^\d{1,2}:\d{2}(?:AM|PM)\s+ERR\s+", re.M)


# Terminal escapes (colour, cursor moves) and other control characters: never in a message.
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
    # A YAML file timoni echoes as the CUE it made of it (its own spacing): found by its words.
    text = ECHOED.sub(
        lambda m: (
            f"loading values from <{_echoed(m['text'], files, repo_root)}>\n failed: "
        ),
        text,
    )
    for value in sorted(hidden, key=len, reverse=True):
        text = text.replace(value, "***")
    return text.strip()


ECHOED = re.compile(r"loading values from (?P<text>[^<].*?)\n failed: ", re.S)
WORD = re.compile(r"[\w.-]+")
UNNAMED = "a values file"


def _echoed(text: str, files: Sequence[str], repo_root: Path) -> str:
    """Which values file timoni echoed: the one with the same words in the same order (keys and
    values, comments aside); else the only YAML file without the top-level `values:` key."""
    # the YAML's comments, as CUE comments
    said = WORD.findall(re.sub(r"//[^\n]*", "", text))
    lacking = []
    for f in files:
        try:
            content = (repo_root / f).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not f.endswith((".yaml", ".yml", ".json")):
            continue
        try:
            data = yaml.safe_load(content)
        except yaml.YAMLError:
            continue
        if WORD.findall(json.dumps(data)) == said:
            return f
        if not (isinstance(data, dict) and "values" in data):
            lacking.append(f)
    return lacking[0] if len(lacking) == 1 else UNNAMED


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
        value = (
            (m.group("dq") or m.group("sq") or m.group("plain") or "")
            .strip()
            .rstrip(",}")
        )
        if len(value) >= 6 and value not in ("string", "true", "false", "null"):
            found.add(value)
    return found


@dataclass(frozen=True)
class CueError:
    """One error as timoni prints it: `path: message` then its positions, one a line, indented. The
    `N errors in empty disjunction` header is merged with its N causes (the cause is the point)."""

    path: str
    message: str
    positions: tuple[tuple[str, int, int], ...]
    # in a bundle: the instance timoni names (`build failed for webapp:`)
    instance: str = ""


HEADER = re.compile(r"^(?P<path>[^\s:]+):\s+(?P<msg>.*?):?\s*$")
POSITION = re.compile(r"^[ \t]+(?P<file>[^\s:]+):(?P<line>\d+):(?P<col>\d+)\s*$")
DISJUNCTION = re.compile(r"^(?P<n>\d+) errors in empty disjunction$")


def parse(stderr: str) -> list[CueError]:
    """timoni's (cleaned) stderr -> its errors, in order."""
    found: list[CueError] = []
    instance = ""
    for line in stderr.splitlines():
        if m := BUNDLE_INSTANCE.match(line):
            instance = m.group("name")
        elif (m := POSITION.match(line)) and found:
            last = found[-1]
            at = (m.group("file"), int(m.group("line")), int(m.group("col")))
            found[-1] = CueError(
                last.path, last.message, (*last.positions, at), last.instance
            )
        elif m := HEADER.match(line):
            found.append(
                CueError(m.group("path"), m.group("msg").strip(), (), instance)
            )
    return _merge_disjunctions(found)


def _merge_disjunctions(errors: list[CueError]) -> list[CueError]:
    out: list[CueError] = []
    i = 0
    while i < len(errors):
        e = errors[i]
        m = DISJUNCTION.match(e.message)
        causes = errors[i + 1 : i + 1 + int(m.group("n"))] if m else []
        causes = [c for c in causes if c.path.startswith(e.path)]
        if not causes:
            out.append(e)
            i += 1
            continue
        said = "; ".join(
            c.message if c.path == e.path else f"{c.path}: {c.message}" for c in causes
        )
        at = tuple(dict.fromkeys(p for c in [e, *causes] for p in c.positions))
        out.append(CueError(e.path, f"{e.message}: {said}", at, e.instance))
        i += 1 + len(causes)
    return out


def locate(
    stderr: str,
    files: Sequence[str],
    repo_root: Path,
    *,
    bundle: bool,
    module: str | None = None,
) -> list[Located]:
    """Positions in the repository for the errors in `stderr` (already cleaned), the most useful
    first: where the user's files set the value, then every other position timoni gives (the
    module's constraint, for a local `module`), each error with its whole cause."""
    first: list[Located] = []
    more: list[Located] = []
    for err in parse(stderr):
        at, message = _value_position(err, files, repo_root, bundle=bundle)
        first.extend(at)
        for name, line, col in err.positions:
            rel = _position_file(name, files, repo_root, module, bundle=bundle)
            if rel:
                more.append(Located(rel, line, col, message))
    found = first + more
    # timoni echoes the file with its final newline: `loading values from <f>\n failed: ...`.
    for m in re.finditer(r"<(?P<file>[^<>\n]+)>\s*failed: (?P<msg>.+)", stderr):
        if m.group("file") in files:
            msg = m.group("msg").strip()
            # timoni reads a values file's `values:` key only
            if msg == "field not found: values":
                msg += (
                    " (a values file holds its values under a top-level `values:` key)"
                )
            found.append(Located(m.group("file"), 1, 1, f"{m.group('file')}: {msg}"))
    # positions in a message's text (e.g. a YAML syntax error)
    for m in FILE_POS.finditer(stderr):
        rel = (
            _relative(m.group("file"), files, repo_root)
            if m.group("file") != "./values.cue"
            else None
        )
        if rel:
            found.append(
                Located(
                    rel,
                    int(m.group("line")),
                    int(m.group("col") or 1),
                    _line_of(stderr, m.start()),
                )
            )
    unique: dict[tuple[str, int], Located] = {}
    for loc in found:
        unique.setdefault((loc.file, loc.line), loc)
    return list(unique.values())


def _value_position(
    err: CueError, files: Sequence[str], repo_root: Path, *, bundle: bool
) -> tuple[list[Located], str]:
    """Where the target's own files set the value the error is about, and the error's message."""
    path = err.path
    if path.startswith(INSTANCE_CONFIG):
        path = "values." + path.removeprefix(INSTANCE_CONFIG)
    message = f"{path}: {err.message}"
    for name, line, col in err.positions if bundle else ():
        pos = BUNDLE_POS.fullmatch(name + f":{line}:{col}")
        if pos and int(pos.group("index")) < len(files):
            return [
                Located(files[int(pos.group("index"))], line, col, message)
            ], message
    if FIELD_ERROR.match(f"{path}: {err.message}"):
        field = _labels(path)
        if bundle and len(field) > 3 and field[1] == "instances":
            field = field[3:]  # bundle.instances.NAME.values.x -> values.x
        hit = find_field(files, field, repo_root)
        return ([Located(hit[0], hit[1], 1, message)] if hit else []), message
    merged = merged_values_errors(err, files, repo_root, bundle=bundle)
    return merged, merged[0].message if merged else message


def _position_file(
    name: str,
    files: Sequence[str],
    repo_root: Path,
    module: str | None,
    *,
    bundle: bool,
) -> str | None:
    """A position's file in the repository: a file of the local module (timoni names them from the
    module's root), or one of the target's files. Never timoni's merged `./values.cue`."""
    if name == "./values.cue" or (bundle and BUNDLE_POS.fullmatch(name + ":1:1")):
        return None
    if module and name.startswith("./"):
        rel = posixpath.normpath(posixpath.join(module, name))
        if not rel.startswith("../") and (repo_root / rel).is_file():
            return rel
    return _relative(name, files, repo_root)


BUNDLE_INSTANCE = re.compile(r"^build failed for (?P<name>[^\s:]+):", re.M)


def merged_values_errors(
    err: CueError, files: Sequence[str], repo_root: Path, *, bundle: bool
) -> list[Located]:
    """An error timoni reports at `./values.cue:L:C`, its in-memory merge of the values: mapped to
    the user's file by content and position, never by the file's name. CUE formats that merge one
    field a line, nested fields one tab deeper under `values: {`, so column C puts the offending
    label C-1 levels below `values`: the last C-1 labels of the error's path (`...#cfg.colour` at
    column 2 is `values.colour`), looked up in the target's files, last file first (the one that
    wins). In a bundle the instance is the one timoni names (`build failed for webapp:`) and the
    field is `bundle.instances.webapp.values.colour`."""
    if bundle and not err.instance:
        return []
    prefix = ["bundle", "instances", err.instance] if bundle else []
    labels = _labels(err.path)
    found: list[Located] = []
    for name, _line, col in err.positions:
        depth = col - 1
        if name != "./values.cue" or not 1 <= depth <= len(labels):
            continue
        field = labels[-depth:]
        if any(label.startswith("#") for label in field):
            continue  # a definition's own field: not something a values file sets
        hit = find_field(files, [*prefix, "values", *field], repo_root)
        if hit:
            where = ".".join([*prefix, "values", *field])
            found.append(Located(hit[0], hit[1], 1, f"{where}: {err.message}"))
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


def find_field(
    files: Sequence[str], field: Sequence[str], repo_root: Path
) -> tuple[str, int] | None:
    """The file that sets `field`, and the line where it does: the last one (merge order) among
    those that set the most of it, so a value in a shared file is found there, not at the `values:`
    line of a later file that only opens the same block."""
    best: tuple[int, str, int] | None = None
    for f in files:
        try:
            text = (repo_root / f).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        yaml_like = f.endswith((".yaml", ".yml", ".json"))
        depth, line = _yaml_line(text, field) if yaml_like else _cue_line(text, field)
        if line and (best is None or depth >= best[0]):
            best = (depth, f, line)
    return (best[1], best[2]) if best else None


def _yaml_line(text: str, field: Sequence[str]) -> tuple[int, int | None]:
    """How many labels of `field` the YAML sets, and the line of the deepest."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return 0, None
    best: int | None = None
    depth = 0
    for part in field:
        if not isinstance(node, yaml.MappingNode):
            break
        nxt = None
        for k, v in node.value:
            if str(k.value) == part.strip('"'):
                best, nxt = k.start_mark.line + 1, v
        if nxt is None:
            break
        node, depth = nxt, depth + 1
    return depth, best


_CUE_FIELD = re.compile(r"\s*(?:\"([^\"]+)\"|([\w\-#$]+))\??!?\s*:(?!=)")


def _cue_line(text: str, field: Sequence[str]) -> tuple[int, int | None]:
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
        # The line sets a prefix of `field`, or all of it on the way to deeper labels (`a: b: c: {`).
        if labels and common in (len(path), len(want)) and common > depth_best:
            best, depth_best = n, common
        rest = line[pos:]
        opens, closes = rest.count("{"), rest.count("}")
        if opens > closes:
            stack.append(labels)
            stack.extend([] for _ in range(opens - closes - 1))
        for _ in range(closes - opens):
            if stack:
                stack.pop()
    return depth_best, best
