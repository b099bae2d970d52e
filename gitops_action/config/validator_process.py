"""The configuration's schema check on the other core. Start-up is imports on one core while the
other idles, and jsonschema is the largest of them (~55 ms: attrs, referencing, every draft's
meta-schema). So a run forks itself once, before it imports the rest of the package: the copy
imports jsonschema and builds the validator meanwhile, then checks each configuration the run
sends it, and the run never imports jsonschema at all.

A copy of this process, not a program: it starts nothing, reads no file, and its environment is
emptied at once (it needs no input; what the run held in memory it still holds, as the run does).
It answers over two pipes; the run kills it at its end (and when the run dies, the copy sees the
pipes close). Whatever goes wrong with it (no fork on this system, a thread already running, a broken
pipe, a bug in the copy) and the run checks the configuration itself, as if it had none."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from gitops_action.config.yaml_lines import Lines
from gitops_action.errors import ConfigError

_SIZE = struct.Struct("!Q")


@dataclass
class _Copy:
    pid: int
    requests: BinaryIO
    answers: BinaryIO
    lock: threading.Lock = field(default_factory=threading.Lock)


# The run's copy, when it has one (start / stop: one per run, from cli.py).
_running: list[_Copy] = []


Check = Callable[[Any, Lines, str], None]


def start(check: Check, prepare: Callable[[], object]) -> None:
    """Fork the copy, which calls `prepare` (the imports to make beside the run's), then `check`
    on each configuration sent; unless a copy runs already, or another thread does (a fork copies
    only this thread: a lock another one holds would stay held in the copy for ever)."""
    if _running or not hasattr(os, "fork") or threading.active_count() > 1:
        return
    to_copy, requests = os.pipe()
    answers, from_copy = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        for fd in (to_copy, requests, answers, from_copy):
            os.close(fd)
        return
    if pid == 0:  # the copy: never returns
        try:
            os.close(requests)
            os.close(answers)
            _serve(to_copy, from_copy, check, prepare)
        finally:
            os._exit(
                0
            )  # no exit handler, no buffered output of the run's: they are the run's
    os.close(to_copy)
    os.close(from_copy)
    _running.append(_Copy(pid, os.fdopen(requests, "wb"), os.fdopen(answers, "rb")))


def stop() -> None:
    """End the copy and reap it. Killed, not awaited: it holds nothing to save, and a run that
    stops mid-check (a cancelled job) would otherwise wait for it to finish that check first.
    (It is this process's child, not yet reaped: its pid cannot name another process.)"""
    while _running:
        copy = _running.pop()
        with contextlib.suppress(OSError):
            os.kill(copy.pid, signal.SIGKILL)
        for stream in (copy.requests, copy.answers):
            with contextlib.suppress(OSError):
                stream.close()
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(copy.pid, 0)


def check(data: Any, lines: Lines, file: str) -> bool:
    """Have the copy check `data`: raises its ConfigError; True when it answered, False when the
    caller must check for itself."""
    if not _running:
        return False
    copy = _running[0]
    try:
        request = pickle.dumps((data, lines, file), protocol=pickle.HIGHEST_PROTOCOL)
    # data pickle cannot take (nested deeper than it goes: a RecursionError): the caller checks
    except Exception:
        return False
    try:
        with copy.lock:
            copy.requests.write(_SIZE.pack(len(request)) + request)
            copy.requests.flush()
            answer = _read(copy.answers)
    except (OSError, EOFError, ValueError):
        answer = None
    if answer is None:  # no usable copy: the caller checks
        return False
    kind, found = pickle.loads(answer)
    if kind == "error":
        raise ConfigError(*found)
    return bool(kind == "ok")


def _read(stream: BinaryIO) -> bytes | None:
    head = stream.read(_SIZE.size)
    if len(head) < _SIZE.size:
        return None
    (size,) = _SIZE.unpack(head)
    body = stream.read(size)
    return body if len(body) == size else None


def _serve(
    requests_fd: int, answers_fd: int, check: Check, prepare: Callable[[], object]
) -> None:
    """The copy's life: prepare (import and build the validator), then answer until the run
    closes."""
    os.environ.clear()
    # Ctrl-C reaches the whole process group: the run handles it; the copy just goes at the end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(Exception):
        prepare()
    requests = os.fdopen(requests_fd, "rb")
    answers = os.fdopen(answers_fd, "wb")
    while (request := _read(requests)) is not None:
        try:
            check(*pickle.loads(request))
            answer: tuple[str, Any] = ("ok", None)
        except ConfigError as exc:
            answer = ("error", (exc.file, exc.key, exc.message, exc.line))
        except Exception:  # a bug: the run checks for itself and meets it there
            answer = ("unsure", None)
        blob = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        answers.write(_SIZE.pack(len(blob)) + blob)
        answers.flush()
