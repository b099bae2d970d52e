"""registry.deadline: every socket a request used is shut down at its whole deadline, whatever
wraps it, and the one watchdog thread goes on serving the requests after."""

from __future__ import annotations

import socket
import time

import pytest

from gitops_action.registry.deadline import deadline, guard


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
