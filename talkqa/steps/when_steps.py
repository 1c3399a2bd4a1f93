"""The When steps: the system under test runs, and the plan's change between two runs.

"the system under test has run" is a Given that shares its function with the When.
"""

from __future__ import annotations

from pytest_bdd import given, parsers, when

from talkqa.scene import change, run_sut_again, scene


@given("the system under test has run")
@when("the system under test runs")
def sut_runs() -> None:
    scene().run_sut()


@when("the system under test runs again")
def sut_runs_again() -> None:
    run_sut_again(scene())


@when(parsers.re(r".+ is edited (?:through|in) .+"))
def the_plan_changes_something() -> None:
    change(scene())
