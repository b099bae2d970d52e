"""The module URLs of a bundle, read from the value timoni evaluated (`timoni bundle vet --print-value`).

timoni prints `bundle: {...}` with CUE's exporter: fields `label: expression`, one per line, where
an expression is a string, a struct, a list, or anything else CUE can write (`*"latest" | string`,
`>=1`, ...). This reader is exact for what it returns (strings in every CUE form: `"..."`,
`\"\"\"` blocks, `#` hashes, escapes) and treats every other expression as opaque. Along the path
`bundle.instances.NAME.module.url`, anything but a plain struct or a plain string is an error: the
caller refuses the bundle rather than guess which module timoni would read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class CueValueError(ValueError):
    pass


@dataclass(frozen=True)
class Opaque:
    """An expression this reader does not evaluate (a number, a disjunction, a definition...)."""


@dataclass
class Struct:
    fields: dict[str, Value] = field(default_factory=dict)
    # every element was a plain `label: expression` with a label of its own
    clean: bool = True


Value = str | bytes | Struct | list["Value"] | Opaque
OPAQUE = Opaque()

_PUNCT = "{}[]():,"
_HASHES = re.compile("#*")
_WORD = re.compile(r"""[^\s{}\[\]():,"']+""")
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
           "/": "/", "\\": "\\", '"': '"', "'": "'"}  # fmt: skip


@dataclass(frozen=True)
class _Token:
    kind: str  # "str" (decoded value), "punct", "nl", "word"
    text: str
    value: str | bytes = ""


def bundle_module_urls(printed: str) -> list[tuple[str, str]]:
    """(instance, module url) of every instance, in the order timoni printed them."""
    top = _Parser(_tokens(printed)).struct_body(end="")
    bundle = _struct(top, "bundle")
    instances = _struct(bundle, "instances")
    found = []
    for name, instance in instances.fields.items():
        if not isinstance(instance, Struct):
            raise CueValueError(f"bundle.instances.{name} is not a plain struct")
        url = _struct(instance, "module", f"bundle.instances.{name}.").fields.get("url")
        if not isinstance(url, str):
            raise CueValueError(
                f"bundle.instances.{name}.module.url is not a plain string"
            )
        found.append((name, url))
    return found


def _struct(parent: Struct, name: str, where: str = "") -> Struct:
    value = parent.fields.get(name)
    if not parent.clean or not isinstance(value, Struct) or not value.clean:
        raise CueValueError(f"{where}{name} is not a plain struct")
    return value


# --- tokens -------------------------------------------------------------------------------------


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c in " \t\r":
            i += 1
        elif c == "\n":
            out.append(_Token("nl", c))
            i += 1
        elif text.startswith(
            "//", i
        ):  # a comment (timoni prints none; accepted all the same)
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
        elif c in _PUNCT:
            out.append(_Token("punct", c))
            i += 1
        elif c in "\"'" or (
            c == "#"
            and text[_HASHES.match(text, i).end() :][:1]  # type: ignore[union-attr]
            in ("'", '"')
        ):
            value, end = _string(text, i)
            out.append(_Token("str", text[i:end], value))
            i = end
        else:
            m = _WORD.match(text, i)
            assert m is not None  # c is none of the characters _WORD excludes
            out.append(_Token("word", m.group()))
            i = m.end()
    return out


def _string(text: str, start: int) -> tuple[str | bytes, int]:
    """A CUE string or bytes literal at `start`: its value and where it ends."""
    hashes = _HASHES.match(text, start).end() - start  # type: ignore[union-attr]
    q = text[start + hashes]
    triple = text.startswith(q * 3, start + hashes)
    opening = q * 3 if triple else q
    closing, escape = opening + "#" * hashes, "\\" + "#" * hashes
    body = start + hashes + len(opening)
    if triple:
        if text[body : body + 1] != "\n":
            raise CueValueError(
                f"a multi-line string must start on a new line (offset {start})"
            )
        body += 1
    # The first closing delimiter that is not an escaped character (one pass: a hostile value
    # full of escapes must not make this quadratic).
    stop = re.compile(f"({re.escape(escape)})|{re.escape(closing)}")
    i = body
    while (m := stop.search(text, i)) is not None and m.group(1) is not None:
        i = m.end() + 1
    if m is None or (not triple and "\n" in text[body : m.start()]):
        raise CueValueError(f"an unterminated string (offset {start})")
    end = m.start()
    raw = _dedent(text[body:end], start) if triple else text[body:end]
    value = _unescape(raw, escape, start)
    return (value.encode("utf-8", "surrogateescape") if q == "'" else value), end + len(
        closing
    )


def _dedent(raw: str, start: int) -> str:
    """A multi-line body: the closing line's indent is removed from every line; its newline goes."""
    head, _, indent = raw.rpartition("\n")
    if indent.strip(" \t"):
        raise CueValueError(f"text before the closing quotes (offset {start})")
    lines = head.split("\n")
    if any(ln and not ln.startswith(indent) for ln in lines):
        raise CueValueError(
            f"a line outside the indent of its multi-line string (offset {start})"
        )
    return "\n".join(ln[len(indent) :] for ln in lines)


def _unescape(raw: str, escape: str, start: int) -> str:
    out: list[str] = []
    i = 0
    while (j := raw.find(escape, i)) >= 0:
        out.append(raw[i:j])
        i = j + len(escape)
        c = raw[i : i + 1]
        if c in _SIMPLE and c:
            out.append(_SIMPLE[c])
            i += 1
            continue
        width = {"u": 4, "U": 8, "x": 2}.get(c, 0)
        digits = raw[i + 1 : i + 1 + width]
        if (
            not width
            or not re.fullmatch(r"[0-9a-fA-F]+", digits)
            or len(digits) != width
        ):
            raise CueValueError(
                f"an escape this reader does not know (offset {start})"
            )  # `\(`...
        code = int(digits, 16)
        # `\xHH` is a byte (bytes literals): a surrogate that surrogateescape turns back into it.
        out.append(chr(0xDC00 + code) if c == "x" and code >= 0x80 else chr(code))
        i += 1 + width
    out.append(raw[i:])
    return "".join(out)


# --- structure ----------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def struct_body(self, end: str) -> Struct:
        out = Struct()
        while (tok := self.peek()) is not None and tok.text != end:
            labels, value = self.element(end)
            if not labels:
                out.clean = (
                    out.clean and value is None
                )  # an embedding, `...` or a pattern
                continue
            label, *inner = labels
            found: Value = value if value is not None else OPAQUE
            for name in reversed(inner):  # `a: b: c`
                found = Struct({name: found}) if name is not None else OPAQUE
            if (
                label is None or label in out.fields
            ):  # not a plain label, or twice: nothing to trust
                out.clean = False
                out.fields[label or ""] = OPAQUE
            else:
                out.fields[label] = found
        if end and self.peek() is None:
            raise CueValueError(f"a struct without its closing {end!r}")
        return out

    def element(self, end: str) -> tuple[list[str | None], Value | None]:
        """One field or list element, up to a newline, a comma or `end`: its labels and value
        (None: nothing at all, e.g. a blank line)."""
        labels: list[str | None] = []
        items: list[tuple[_Token, Value]] = []
        while (tok := self.peek()) is not None and tok.text != end:
            self.i += 1
            if tok.kind == "nl" or tok.text == ",":
                if items or labels:
                    break
                continue
            if tok.text == ":" and tok.kind == "punct":
                labels.append(_label(items))
                items = []
            elif tok.text in "{[(" and tok.kind == "punct":
                items.append((tok, self.nested(tok.text)))
            elif tok.kind == "punct":
                raise CueValueError(f"an unexpected {tok.text!r}")
            else:
                items.append((tok, tok.value if tok.kind == "str" else OPAQUE))
        if not items:
            return labels, None if not labels else OPAQUE
        return labels, items[0][1] if len(items) == 1 else OPAQUE

    def nested(self, opening: str) -> Value:
        closing = {"{": "}", "[": "]", "(": ")"}[opening]
        if opening == "{":
            value: Value = self.struct_body(end="}")
        else:
            items: list[Value] = []
            while (tok := self.peek()) is not None and tok.text != closing:
                labels, item = self.element(closing)
                if item is not None:
                    items.append(OPAQUE if labels else item)
            value = items if opening == "[" else OPAQUE
        if self.peek() is None:
            raise CueValueError(f"no closing {closing!r}")
        self.i += 1
        return value


def _label(items: list[tuple[_Token, Value]]) -> str | None:
    """The label before a `:`, None when it is not a plain one (`foo?`, `[string]`, `#Def`...)."""
    if len(items) != 1:
        return None
    tok, value = items[0]
    if tok.kind == "str" and isinstance(value, str):
        return value
    if tok.kind == "word" and re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", tok.text):
        return tok.text
    return None
