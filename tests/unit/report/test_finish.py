"""report.finish: `scrub`, the last defence: no known secret in a result's error, log lines or
annotations, whatever form it took on the way."""

from __future__ import annotations

import base64

from gitops_action.config.model import Target
from gitops_action.push.results import Annotation, TargetResult
from gitops_action.report.finish import scrub

SECRET = "s3cr3t-Registry-Pa55"
WEB = Target("web", "instance", "web", "oci://r.io/web", ("latest",), ())


def test_scrub_every_shown_field() -> None:
    encoded = base64.b64encode(SECRET.encode()).decode()
    result = TargetResult(
        WEB,
        "failed",
        revision=f"main@{SECRET}",  # not shown as text by the reports: left as it is
        error=f"login with {SECRET} refused",
        log=[f"flux: {encoded}", "plain line"],
        annotations=[Annotation("a.cue", 3, 1, f"value {SECRET!r}")],
    )
    [clean] = scrub([result], [SECRET])
    assert clean.error == "login with *** refused"
    assert clean.log == ["flux: ***", "plain line"]
    assert clean.annotations == [Annotation("a.cue", 3, 1, "value '***'")]
    assert clean.target == WEB and clean.status == "failed"
    # the input is left as it was (results are shared with whoever holds them)
    assert result.error == f"login with {SECRET} refused"


def test_scrub_without_an_error_or_secrets() -> None:
    result = TargetResult(WEB, "pushed", log=["ok"])
    assert scrub([result], [SECRET]) == [result]
    assert scrub([result], []) == [result]
    assert scrub([], [SECRET]) == []
