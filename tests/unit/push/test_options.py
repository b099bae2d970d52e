"""push.options: one lock per OCI repository, so targets sharing one write to it one at a time."""

from __future__ import annotations

import threading

from gitops_action.push.options import RepositoryLocks


def test_one_lock_per_repository() -> None:
    locks = RepositoryLocks()
    a = locks("oci://r.io/web")
    assert locks("oci://r.io/web") is a
    assert locks("oci://r.io/api") is not a


def test_threads_asking_at_once_get_the_same_lock() -> None:
    locks = RepositoryLocks()
    got: list[threading.Lock] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        got.append(locks("oci://r.io/shared"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(lock is got[0] for lock in got)


def test_the_lock_excludes() -> None:
    locks = RepositoryLocks()
    with locks("oci://r.io/web"):
        assert not locks("oci://r.io/web").acquire(blocking=False)
        other = locks("oci://r.io/api")
        assert other.acquire(blocking=False)
        other.release()
