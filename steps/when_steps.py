"""The When steps: the system under test runs, and entities are edited between runs.

"the system under test has run" is a Given that shares its function with the When.
"""

from __future__ import annotations

from pytest_bdd import given, parsers, when

from talkqa.scene import edit_both_sides, edit_linked, edit_referenced, run_sut_again, scene


@given("the system under test has run")
@when("the system under test runs")
def sut_runs() -> None:
    scene().run_sut()


@when("the system under test runs again")
def sut_runs_again() -> None:
    run_sut_again(scene())


@when(
    parsers.re(
        r"(?:(?P<path>\S+) of )?each linked (?P<side>source|target) entity is edited "
        r"through the (?P<system>.+) API"
    )
)
def edit_each_linked(side: str, path: str | None) -> None:
    edit_linked(scene(), side, path)


@when(
    parsers.re(
        r"(?P<path>\S+) of each linked pair is edited in (?P<first>.+) and then in (?P<second>.+)"
    )
)
def edit_pair_on_both_sides(path: str, first: str, second: str) -> None:
    edit_both_sides(scene(), path, first)


@when(
    parsers.re(
        r"(?P<path>\S+) of each referenced (?P<names>.+) is edited through the (?P<system>.+) API"
    )
)
def edit_each_referenced(path: str, names: str) -> None:
    edit_referenced(scene(), path, names)
