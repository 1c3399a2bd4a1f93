"""The verdict rule (``talkqa.outcome.decide``): a broken promise is NO-GO; otherwise anything
talk-qa could not judge, or nothing judged at all, is INCOMPLETE (exit 4), never GO."""

from __future__ import annotations

import pytest

from talkqa.outcome import ExitCode, Verdict, decide


@pytest.mark.parametrize(
    ("broken", "judged", "unjudged", "verdict"),
    [
        (False, True, False, Verdict.GO),
        (False, True, True, Verdict.INCOMPLETE),
        (False, False, False, Verdict.INCOMPLETE),
        (False, False, True, Verdict.INCOMPLETE),
        (True, True, False, Verdict.NO_GO),
        (True, True, True, Verdict.NO_GO),
    ],
)
def test_the_verdict_of_each_case(
    broken: bool, judged: bool, unjudged: bool, verdict: Verdict
) -> None:
    assert decide(broken=broken, judged=judged, unjudged=unjudged) is verdict


def test_each_verdict_has_its_own_exit_code() -> None:
    codes = {v: ExitCode.of(v) for v in Verdict}
    assert codes == {
        Verdict.GO: ExitCode.OK,
        Verdict.NO_GO: ExitCode.FINDINGS,
        Verdict.INCOMPLETE: ExitCode.INCOMPLETE,
    }
    assert int(ExitCode.INCOMPLETE) == 4
