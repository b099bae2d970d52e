"""registry.deadline: a socket used within `deadline(seconds)` is shut down once the seconds are
over, so a read blocked on a trickling server returns; outside a deadline `guard` does nothing."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from gitops_action.registry.deadline import Deadline, deadline, guard


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.settimeout(10)
    yield a, b
    a.close()
    b.close()


def test_a_blocked_read_returns_at_the_deadline(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, _ = pair
    start = time.monotonic()
    with deadline(0.2) as d:
        guard(a)
        assert a.recv(1) == b""  # nothing was sent: only the shutdown ends the read
    took = time.monotonic() - start
    assert d.expired and 0.15 <= took < 5


def test_a_request_done_in_time_is_left_alone(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    with deadline(0.5) as d:
        guard(a)
        b.sendall(b"x")
        assert a.recv(1) == b"x"
    # past the deadline: the request is over, its socket no longer watched
    time.sleep(0.8)
    assert not d.expired
    b.sendall(b"y")
    assert a.recv(1) == b"y"


def test_guard_outside_a_deadline_does_nothing(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    guard(a)
    guard(None)
    b.sendall(b"z")
    assert a.recv(1) == b"z"


def test_a_socket_added_after_expiry_is_shut_at_once(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, _ = pair
    d = Deadline(at=0.0)
    d.expire()
    d.add(a)
    assert a.recv(1) == b""


def test_the_earliest_deadline_wakes_the_watchdog(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A later, longer deadline under way must not delay a shorter one started after it."""
    a, _ = pair
    with deadline(30) as long:
        start = time.monotonic()
        with deadline(0.2) as short:
            guard(a)
            assert a.recv(1) == b""
        assert time.monotonic() - start < 5
    assert short.expired and not long.expired


class _Tunnel:
    """What urllib3 holds as a connection's socket for TLS inside a TLS proxy's tunnel (an `https://`
    proxy): its SSLTransport, which is no socket; the socket it runs over is its `socket`."""

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock


def _cut(sock: socket.socket) -> bool:
    """Whether `sock` was shut down (a read ends at once) rather than left waiting."""
    sock.settimeout(2)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


@pytest.mark.unit
def test_a_tunnelled_connection_is_cut_and_the_watchdog_lives_on() -> None:
    ours, _server = socket.socketpair()
    with deadline(0.1) as due:
        guard(_Tunnel(ours))
        time.sleep(0.4)
    assert due.expired
    assert _cut(ours)
    # the next request's deadline is still kept
    later, _other = socket.socketpair()
    with deadline(0.1) as due:
        guard(later)
        time.sleep(0.4)
    assert due.expired
    assert _cut(later)
