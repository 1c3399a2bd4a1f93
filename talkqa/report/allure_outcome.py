"""A scenario that ended before its first step, as an Allure result.

allure-pytest-bdd starts a scenario's result when pytest-bdd starts the scenario; a scenario
whose setup failed (a cassette that is missing or cut short) would never appear in Allure.
The outcome pipeline writes every scenario's outcome once, and this renders the ones Allure
did not see, as *broken* (talk-qa could not judge them), with the same reason.
"""

from __future__ import annotations

import hashlib
import time
import uuid

from talkqa.outcome import ScenarioOutcome, Status


def report_unstarted(outcome: ScenarioOutcome, feature_file: str, feature_name: str) -> None:
    """Hand the outcome to Allure's listeners (nothing happens when Allure is not running)."""
    try:
        from allure_commons import plugin_manager
        from allure_commons.model2 import Label, StatusDetails, TestResult
        from allure_commons.model2 import Status as AllureStatus
    except ImportError:  # allure-pytest-bdd is a dependency; a stripped install still runs
        return
    status = {
        Status.PASSED: AllureStatus.PASSED,
        Status.FAILED: AllureStatus.FAILED,
        Status.ERROR: AllureStatus.BROKEN,
        Status.SKIPPED: AllureStatus.SKIPPED,
    }[outcome.status]
    full_name = f"{feature_file}:{outcome.scenario}"
    digest = hashlib.md5(full_name.encode(), usedforsecurity=False).hexdigest()
    moment = int(time.time() * 1000)
    result = TestResult(
        uuid=str(uuid.uuid4()),
        name=outcome.scenario,
        fullName=full_name,
        testCaseId=digest,  # allure-pytest-bdd's own id of the scenario: md5 of its full name
        historyId=digest,
        status=status,
        statusDetails=StatusDetails(message=outcome.reason or outcome.status.value),
        start=moment,
        stop=moment,
        labels=[
            Label(name="feature", value=feature_name),
            Label(name="framework", value="pytest-bdd"),
            *([Label(name="tag", value=outcome.promise)] if outcome.promise else []),
        ],
    )
    plugin_manager.hook.report_result(result=result)
