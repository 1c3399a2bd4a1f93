"""The Then steps: the scenario's promise (from its plan) judges what the scenario observed.

Each sentence a promise words its Then with is matched here; all but the conflict report
hand over to the plan's promise.
"""

from __future__ import annotations

from pytest_bdd import parsers, then

from talkqa.scene import judge_conflicts_reported, judge_promise, scene


@then(parsers.re(r"every .+ has (?:exactly|at most) one linked .+"))
@then(parsers.re(r"no .+ is created for an unlinked .+"))
@then(parsers.re(r"each .+ is linked to its existing .+ and to no other"))
@then("every linked pair has these properties equal under their declared types:")
@then("every reference points at the target linked to the referenced source:")
@then(parsers.re(r".+ and every link still holds"))
@then(parsers.re(r"both systems hold the newest edit of each pair, .+'s on a tie"))
@then(parsers.re(r"no entity changed in .+ or .+"))
def the_promise_holds() -> None:
    judge_promise(scene())


@then("the system under test reported each conflict")
def conflicts_reported() -> None:
    judge_conflicts_reported(scene())
