"""The one spelling of every promise name and Gherkin tag talk-qa writes.

A promise's name is its Gherkin tag, its pytest marker, its ``--promise`` value, its sign-off
column key and the ``check`` of its findings: everything else imports it from here, so a
renamed promise cannot leave a stale copy behind.
"""

from __future__ import annotations

from enum import StrEnum


class PromiseId(StrEnum):
    """The promises a checklist section can make, in sign-off column order."""

    EXISTS = "exists"
    LINK_FIRST = "link_first"
    MERGE = "merge"
    PROPERTIES = "properties"
    REFERENCES = "references"
    EDITS = "edits"
    VENDOR_LIMITS = "vendor_limits"
    CONFLICTS = "conflicts"
    IDEMPOTENCE = "idempotence"


class FeatureTag(StrEnum):
    """Tags on a whole feature (a section), not on a promise's scenario."""

    DATAFLOW = "dataflow"
    EXISTENCE_ONLY = "existence_only"
    UNBOUND = "unbound"
    NO_API = "no_api"


FEATURE_TAG_DOCS: dict[FeatureTag, str] = {
    FeatureTag.DATAFLOW: "a feature generated from a dataflow checklist",
    FeatureTag.EXISTENCE_ONLY: "the section's property table is empty: existence and linking only",
    FeatureTag.UNBOUND: "talk-qa has no connector for a datatype of this section",
    FeatureTag.NO_API: "a vendor offers no API to keep this section's promises (not run)",
}
