"""comment.fit: sections folded into one line, largest first, until the whole fits the budget."""

from __future__ import annotations

from support.samples import result

from gitops_action.report import comment


def sections(*sizes: int) -> list[tuple[object, str]]:
    return [
        (result(f"t{i}", "dry-run"), f"- t{i} " + "x" * (n - 5))
        for i, n in enumerate(sizes)
    ]


def total(lines: list[str]) -> int:
    # sections are joined by a blank line
    return sum(len(s) + len(comment.SEP) for s in lines)


def test_what_fits_is_left_alone() -> None:
    secs = sections(100, 200, 300)
    assert comment.fit(secs, 10_000, "this comment") == [s for _, s in secs]  # type: ignore[arg-type]
    assert comment.fit(secs, total([s for _, s in secs]), "this comment") == [
        s for _, s in secs
    ]  # type: ignore[arg-type]


def test_largest_sections_fold_first_and_order_is_kept() -> None:
    secs = sections(500, 3000, 800, 2000)
    out = comment.fit(secs, 2500, "this comment")  # type: ignore[arg-type]
    assert out[0] == secs[0][1] and out[2] == secs[2][1]  # the small ones are whole
    assert (
        out[1]
        == "- **t1** · dry-run: section too large for this comment, see the job summary"
    )
    assert (
        out[3]
        == "- **t3** · dry-run: section too large for this comment, see the job summary"
    )
    assert total(out) <= 2500


def test_only_as_many_fold_as_needed() -> None:
    secs = sections(1000, 1000, 1000)
    out = comment.fit(secs, 2500, "the job summary")  # type: ignore[arg-type]
    folded = [s for s in out if "too large" in s]
    assert folded == [
        "- **t0** · dry-run: section too large for the job summary (GitHub's 1 MiB limit)"
    ]
    assert total(out) <= 2500


def test_too_many_targets_for_one_line_each_drop_lines_and_say_so() -> None:
    secs = sections(*([200] * 40))
    out = comment.fit(secs, 600, "this comment")  # type: ignore[arg-type]
    assert total(out) <= 600
    assert (
        out[-1]
        == f"- ... and {40 - (len(out) - 1)} more target(s), listed in the job summary"
    )
    assert all(s.startswith("- **t") and "section too large" in s for s in out[:-1])
    # the first ones
    assert [s.split("**")[1] for s in out[:-1]] == [
        f"t{i}" for i in range(len(out) - 1)
    ]


def test_nothing_fits() -> None:
    assert comment.fit(sections(100), 10, "this comment") == []  # type: ignore[arg-type]


def test_a_section_shorter_than_its_folded_line_stays_whole() -> None:
    secs = sections(20, 5000)
    out = comment.fit(secs, 200, "this comment")  # type: ignore[arg-type]
    assert out[0] == secs[0][1]
    assert out[1].startswith("- **t1** · dry-run: section too large")
