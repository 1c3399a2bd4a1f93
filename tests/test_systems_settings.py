"""Settings come from the environment, say what is missing, and never show a key."""

from __future__ import annotations

import pytest

from talkqa.errors import UserError
from talkqa.systems.settings import Settings

FULL = {
    "CHARGEBEE_SITE": "acme-test",
    "CHARGEBEE_API_KEY": "cb_secret",
    "INVOICED_API_KEY": "inv_secret",
}


def test_defaults_derive_the_chargebee_url_from_the_site_and_use_the_invoiced_sandbox() -> None:
    settings = Settings.from_env(FULL)
    assert settings.chargebee_base_url == "https://acme-test.chargebee.com/api/v2"
    assert settings.invoiced_base_url == "https://api.sandbox.invoiced.com"
    assert settings.chargebee_api_key.get_secret_value() == "cb_secret"
    assert settings.invoiced_api_key.get_secret_value() == "inv_secret"
    assert settings.chargebee_requests_per_minute == 150


def test_base_urls_override_and_lose_their_trailing_slash() -> None:
    settings = Settings.from_env(
        {
            **FULL,
            "CHARGEBEE_BASE_URL": "http://127.0.0.1:8001/api/v2/",
            "INVOICED_BASE_URL": "http://127.0.0.1:8002/",
        }
    )
    assert settings.chargebee_base_url == "http://127.0.0.1:8001/api/v2"
    assert settings.invoiced_base_url == "http://127.0.0.1:8002"


def test_a_base_url_makes_the_site_optional() -> None:
    env = {k: v for k, v in FULL.items() if k != "CHARGEBEE_SITE"}
    settings = Settings.from_env({**env, "CHARGEBEE_BASE_URL": "http://cb.local/api/v2"})
    assert settings.chargebee_site is None
    assert settings.chargebee_base_url == "http://cb.local/api/v2"


def test_a_missing_variable_is_named_with_what_to_set() -> None:
    env = {k: v for k, v in FULL.items() if k != "INVOICED_API_KEY"}
    with pytest.raises(UserError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert message.startswith("missing environment variable INVOICED_API_KEY: set INVOICED_API_KEY")
    assert "Invoiced API key" in message
    assert "\n" not in message


def test_blank_values_count_as_missing_and_all_missing_are_listed() -> None:
    with pytest.raises(UserError) as caught:
        Settings.from_env({"CHARGEBEE_API_KEY": "  "})
    message = str(caught.value)
    assert message.startswith(
        "missing environment variables CHARGEBEE_SITE, CHARGEBEE_API_KEY, INVOICED_API_KEY:"
    )
    assert "CHARGEBEE_BASE_URL" in message


def test_from_env_reads_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in FULL.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("INVOICED_BASE_URL", "http://inv.local")
    monkeypatch.delenv("CHARGEBEE_BASE_URL", raising=False)
    assert Settings.from_env().invoiced_base_url == "http://inv.local"


def test_keys_never_appear_in_repr_or_the_redacted_view() -> None:
    settings = Settings.from_env(FULL)
    for shown in (repr(settings), str(settings), str(settings.redacted())):
        assert "cb_secret" not in shown
        assert "inv_secret" not in shown
    assert settings.redacted() == {
        "chargebee_base_url": "https://acme-test.chargebee.com/api/v2",
        "invoiced_base_url": "https://api.sandbox.invoiced.com",
        "chargebee_site": "acme-test",
    }


@pytest.mark.parametrize(("raw", "budget"), [("0", None), ("1000", 1000), ("", 150)])
def test_request_budgets_come_from_the_environment(raw: str, budget: int | None) -> None:
    settings = Settings.from_env({**FULL, "CHARGEBEE_REQUESTS_PER_MINUTE": raw})
    assert settings.chargebee_requests_per_minute == budget


@pytest.mark.parametrize(
    ("chargebee", "invoiced", "expected"),
    [
        ("http://127.0.0.1:9/api/v2", "http://localhost:8", (None, None)),
        ("http://[::1]:9/api/v2", "https://api.sandbox.invoiced.com", (None, 600)),
        ("https://acme-test.chargebee.com/api/v2", "http://127.0.0.1:8", (150, None)),
    ],
)
def test_a_local_sandbox_gets_no_budget_unless_one_is_set(
    chargebee: str, invoiced: str, expected: tuple[int | None, int | None]
) -> None:
    env = {**FULL, "CHARGEBEE_BASE_URL": chargebee, "INVOICED_BASE_URL": invoiced}
    settings = Settings.from_env(env)
    assert (settings.chargebee_requests_per_minute, settings.invoiced_requests_per_minute) == (
        expected
    )
    explicit = Settings.from_env({**env, "CHARGEBEE_REQUESTS_PER_MINUTE": "60"})
    assert explicit.chargebee_requests_per_minute == 60


@pytest.mark.parametrize("raw", ["fast", "-5"])
def test_a_bad_budget_is_a_user_error(raw: str) -> None:
    with pytest.raises(UserError, match="INVOICED_REQUESTS_PER_MINUTE"):
        Settings.from_env({**FULL, "INVOICED_REQUESTS_PER_MINUTE": raw})


@pytest.mark.parametrize(("raw", "cap"), [("0", None), ("5", 5), ("", 50), ("  ", 50)])
def test_concurrency_caps_come_from_the_environment_also_on_loopback(
    raw: str, cap: int | None
) -> None:
    env = {**FULL, "CHARGEBEE_BASE_URL": "http://127.0.0.1:9/api/v2"}
    settings = Settings.from_env({**env, "CHARGEBEE_MAX_CONCURRENT_REQUESTS": raw})
    assert settings.chargebee_max_concurrent == cap
    assert settings.invoiced_max_concurrent == 10


@pytest.mark.parametrize("raw", ["many", "-1"])
def test_a_bad_concurrency_cap_is_a_user_error(raw: str) -> None:
    with pytest.raises(UserError, match="INVOICED_MAX_CONCURRENT_REQUESTS"):
        Settings.from_env({**FULL, "INVOICED_MAX_CONCURRENT_REQUESTS": raw})


def test_as_env_round_trips_through_from_env() -> None:
    settings = Settings.for_sandbox("http://127.0.0.1:1/api/v2", "http://127.0.0.1:2")
    assert settings.chargebee_requests_per_minute is None
    assert Settings.from_env(settings.as_env()) == settings


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/api/v2", "http://127.0.0.1:port/api/v2"])
def test_a_port_out_of_range_is_a_user_error_before_any_request(url: str) -> None:
    with pytest.raises(UserError, match=r"CHARGEBEE_BASE_URL=.* has no valid port \(1-65535\)"):
        Settings.from_env({**FULL, "CHARGEBEE_BASE_URL": url})
