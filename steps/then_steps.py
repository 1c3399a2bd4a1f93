"""The Then steps: each judges one promise of the section and fails with its findings."""

from __future__ import annotations

from pytest_bdd import parsers, then

from talkqa.scene import (
    judge_conflict,
    judge_conflicts_reported,
    judge_edits,
    judge_kept,
    judge_merged,
    judge_unchanged,
    judge_unlinked,
    scene,
)


@then(
    parsers.re(
        r"every (?P<source>.+) has exactly one linked (?P<target>.+?)(?: with (?P<fixed>.+))?"
    )
)
@then(
    parsers.re(
        r"every (?P<source>.+) has at most one linked (?P<target>.+?)(?: with (?P<fixed>.+))?"
    )
)
def linked_once(source: str, target: str) -> None:
    """Exactly one (every) or at most one (conditional sections: the condition is prose) linked
    target: the exists check judges both, as it asserts missing only for "every" sections."""
    sc = scene()
    sc.expect_names(source=source, target=target)
    sc.judge({"exists"})


@then(parsers.re(r"no (?P<target>.+) is created for an unlinked (?P<source>.+)"))
def nothing_created_unlinked(source: str, target: str) -> None:
    judge_unlinked(scene(), source, target)


@then("every linked pair has these properties equal under their declared types:")
def properties_equal(datatable: list[list[str]]) -> None:
    scene().judge_rows(datatable, "properties")


@then("every reference points at the target linked to the referenced source:")
def references_point_at_links(datatable: list[list[str]]) -> None:
    scene().judge_rows(datatable, "references")


@then(
    parsers.re(
        r"the (?:edits reached (?P<system>.+)|edit stays in (?P<here>.+)) and every link "
        r"still holds"
    )
)
def edits_reached() -> None:
    judge_edits(scene())


@then(parsers.re(r"(?P<system>.+) keeps (?P<path>\S+) as it was and every link still holds"))
def other_side_kept(path: str) -> None:
    judge_kept(scene(), path)


@then(parsers.re(r"both systems hold the newest edit of each pair, (?P<system>.+)'s on a tie"))
def newest_edit_won() -> None:
    judge_conflict(scene())


@then("the system under test reported each conflict")
def conflicts_reported() -> None:
    judge_conflicts_reported(scene())


@then(parsers.re(r"each (?P<source>.+) is linked to its existing (?P<target>.+) and to no other"))
def merged_not_duplicated(source: str, target: str) -> None:
    judge_merged(scene(), source, target)


@then(parsers.re(r"no entity changed in (?P<first>.+) or (?P<second>.+)"))
def nothing_changed() -> None:
    judge_unchanged(scene())
