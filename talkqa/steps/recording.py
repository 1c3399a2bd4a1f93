"""pytest-recording's fixtures as a talk-qa project's scenarios need them: one cassette per
scenario under the project's cassettes folder, talk-qa's vcrpy configuration, and recording
off unless asked for outside replay.

The plugin registers this module in ``pytest_configure``, after every entry-point plugin, so
these fixtures override pytest-recording's (two plugins' fixtures of one name: the later
registered wins). Any other test keeps pytest-recording's defaults.
"""

from __future__ import annotations

from typing import Any

import pytest

from talkqa.pytest_plugin import CheckedCassettePersister, scenario_slug, with_request_matcher
from talkqa.pytest_plugin import vcr_config as build_vcr_config
from talkqa.steps.plugin import cassette_path, scenario_of, suite_mode, take_checked_cassette


def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    """Each cassette's VCR knows the matcher talk-qa's configuration names, and loads the
    cassette replay's check already read rather than parsing it again."""
    with_request_matcher(vcr)
    vcr.register_persister(CheckedCassettePersister(vcr.persister, take_checked_cassette(config)))


@pytest.fixture(scope="session")
def record_mode(pytestconfig: pytest.Config) -> str:
    return str(pytestconfig.getoption("--record-mode") or "none")


@pytest.fixture(scope="session")
def disable_recording(pytestconfig: pytest.Config) -> bool:
    """Sandbox and live runs talk to real servers unless asked to record (--record-mode)."""
    if pytestconfig.getoption("--disable-recording"):
        return True
    return suite_mode(pytestconfig) != "replay" and pytestconfig.getoption("--record-mode") is None


@pytest.fixture
def vcr_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    if scenario_of(request) is None:  # pytest-recording's default, for other tests
        return {}
    return build_vcr_config(request.getfixturevalue("talkqa_settings"))


@pytest.fixture
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    scenario = scenario_of(request)
    if scenario is None:  # pytest-recording's default, for other tests
        return str(request.path.parent / "cassettes" / request.path.stem)
    return str(cassette_path(request.config, scenario).parent)


@pytest.fixture
def default_cassette_name(request: pytest.FixtureRequest) -> str:
    scenario = scenario_of(request)
    if scenario is None:  # pytest-recording's default, for other tests
        from pytest_recording.plugin import get_default_cassette_name

        return str(get_default_cassette_name(request.cls, request.node.name))
    return scenario_slug(scenario.name)
