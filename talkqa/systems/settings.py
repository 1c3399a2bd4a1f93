"""Where the vendors are and how to authenticate, read from the environment.

The same five variables configure talk-qa and any external system under test (the command
driver passes them on), so a user sets them once. Keys are ``SecretStr``: they never show
up in a repr, a log line or a report; ``redacted()`` is the view reports use.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr

from talkqa.errors import UserError

INVOICED_SANDBOX_URL = "https://api.sandbox.invoiced.com"
CHARGEBEE_DEFAULT_RPM = 150  # Chargebee test sites allow 150 requests/minute
INVOICED_DEFAULT_RPM = 600  # Invoiced documents no number; stay polite
CHARGEBEE_DEFAULT_CONCURRENCY = 50  # Chargebee: about 50 concurrent GETs / POSTs per site
INVOICED_DEFAULT_CONCURRENCY = 10  # Invoiced documents no number; stay polite

_HOW_TO_SET: Mapping[str, str] = {
    "CHARGEBEE_SITE": "your Chargebee site name (the 'acme-test' in acme-test.chargebee.com), "
    "or set CHARGEBEE_BASE_URL",
    "CHARGEBEE_API_KEY": "a Chargebee API key (Settings > Configure Chargebee > API keys)",
    "INVOICED_API_KEY": "an Invoiced API key (Settings > Developers > API keys)",
}


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _budget(env: Mapping[str, str], name: str, default: int, url: str) -> int | None:
    """The variable when set; else the vendor's budget, or none for a local sandbox.

    Throttling a sandbox on 127.0.0.1 only slows the run down: it never says 429 unless a
    fault asks it to, and then the client's retries are what is under test.
    """
    raw = env.get(name, "").strip()
    if not raw:
        return None if _is_loopback(url) else default
    try:
        value = int(raw)
    except ValueError:
        raise UserError(
            f"environment variable {name}={raw!r} is not a whole number: "
            "set it to requests per minute, or 0 for no budget"
        ) from None
    if value < 0:
        raise UserError(f"environment variable {name}={raw!r} is negative: use 0 for no budget")
    return value or None


def _cap(env: Mapping[str, str], name: str, default: int) -> int | None:
    """The variable when set (0 = no cap), else the vendor's cap: also on loopback, where it
    costs nothing and the sandbox's ``chargebee-test-site`` preset enforces Chargebee's."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UserError(
            f"environment variable {name}={raw!r} is not a whole number: "
            "set it to the most requests in flight at once, or 0 for no cap"
        ) from None
    if value < 0:
        raise UserError(f"environment variable {name}={raw!r} is negative: use 0 for no cap")
    return value or None


_SITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def _check_site(site: str) -> None:
    """A site is the first label of the host: a URL or host here is the usual mistake."""
    if not _SITE.fullmatch(site):
        raise UserError(
            f"environment variable CHARGEBEE_SITE={site!r} is not a site name: give only the "
            "'acme-test' of acme-test.chargebee.com, or set CHARGEBEE_BASE_URL to a full URL"
        )


def _check_url(name: str, url: str, example: str) -> None:
    """Fail now, naming the variable, rather than after every retry of the first request."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(
            f"environment variable {name}={url!r} is not an http(s) URL: set it like {example}"
        )
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise UserError(
            f"environment variable {name}={url!r} has no valid port (1-65535): "
            f"set it like {example}"
        ) from None


class Settings(BaseModel):
    """Connection settings for both vendors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chargebee_site: str | None = None
    chargebee_api_key: SecretStr
    chargebee_base_url: str
    invoiced_api_key: SecretStr
    invoiced_base_url: str = INVOICED_SANDBOX_URL
    chargebee_requests_per_minute: int | None = CHARGEBEE_DEFAULT_RPM
    invoiced_requests_per_minute: int | None = INVOICED_DEFAULT_RPM
    chargebee_max_concurrent: int | None = CHARGEBEE_DEFAULT_CONCURRENCY
    invoiced_max_concurrent: int | None = INVOICED_DEFAULT_CONCURRENCY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (default ``os.environ``); UserError names what is missing.

        Empty values count as missing: an exported-but-blank key is the usual mistake.
        """
        source = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = source.get(name, "").strip()
            return value or None

        site = get("CHARGEBEE_SITE")
        chargebee_url = get("CHARGEBEE_BASE_URL")
        required = ["CHARGEBEE_API_KEY", "INVOICED_API_KEY"]
        if chargebee_url is None:
            required.insert(0, "CHARGEBEE_SITE")
        missing = [name for name in required if get(name) is None]
        if missing:
            hints = "; ".join(f"{name} = {_HOW_TO_SET[name]}" for name in missing)
            raise UserError(
                f"missing environment variable{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}: set {hints}"
            )
        if chargebee_url is None and site is not None:
            _check_site(site)
        chargebee_base_url = (chargebee_url or f"https://{site}.chargebee.com/api/v2").rstrip("/")
        invoiced_base_url = (get("INVOICED_BASE_URL") or INVOICED_SANDBOX_URL).rstrip("/")
        _check_url(
            "CHARGEBEE_BASE_URL", chargebee_base_url, "https://acme-test.chargebee.com/api/v2"
        )
        _check_url("INVOICED_BASE_URL", invoiced_base_url, INVOICED_SANDBOX_URL)
        return cls(
            chargebee_site=site,
            chargebee_api_key=SecretStr(get("CHARGEBEE_API_KEY") or ""),
            chargebee_base_url=chargebee_base_url,
            invoiced_api_key=SecretStr(get("INVOICED_API_KEY") or ""),
            invoiced_base_url=invoiced_base_url,
            chargebee_requests_per_minute=_budget(
                source, "CHARGEBEE_REQUESTS_PER_MINUTE", CHARGEBEE_DEFAULT_RPM, chargebee_base_url
            ),
            invoiced_requests_per_minute=_budget(
                source, "INVOICED_REQUESTS_PER_MINUTE", INVOICED_DEFAULT_RPM, invoiced_base_url
            ),
            chargebee_max_concurrent=_cap(
                source, "CHARGEBEE_MAX_CONCURRENT_REQUESTS", CHARGEBEE_DEFAULT_CONCURRENCY
            ),
            invoiced_max_concurrent=_cap(
                source, "INVOICED_MAX_CONCURRENT_REQUESTS", INVOICED_DEFAULT_CONCURRENCY
            ),
        )

    @classmethod
    def for_sandbox(
        cls,
        chargebee_base_url: str,
        invoiced_base_url: str,
        *,
        chargebee_api_key: str = "sandbox",
        invoiced_api_key: str = "sandbox",
    ) -> Settings:
        """Settings for the bundled emulators: no request budget (they never say 429 unasked)."""
        return cls(
            chargebee_site="sandbox",
            chargebee_api_key=SecretStr(chargebee_api_key),
            chargebee_base_url=chargebee_base_url.rstrip("/"),
            invoiced_api_key=SecretStr(invoiced_api_key),
            invoiced_base_url=invoiced_base_url.rstrip("/"),
            chargebee_requests_per_minute=None,
            invoiced_requests_per_minute=None,
        )

    def redacted(self) -> dict[str, str]:
        """What a report may show: where the vendors are, never the keys."""
        view = {
            "chargebee_base_url": self.chargebee_base_url,
            "invoiced_base_url": self.invoiced_base_url,
        }
        if self.chargebee_site:
            view["chargebee_site"] = self.chargebee_site
        return view

    def as_env(self) -> dict[str, str]:
        """The environment an external system under test needs (keys included: keep private)."""
        env = {
            "CHARGEBEE_API_KEY": self.chargebee_api_key.get_secret_value(),
            "CHARGEBEE_BASE_URL": self.chargebee_base_url,
            "INVOICED_API_KEY": self.invoiced_api_key.get_secret_value(),
            "INVOICED_BASE_URL": self.invoiced_base_url,
            "CHARGEBEE_REQUESTS_PER_MINUTE": str(self.chargebee_requests_per_minute or 0),
            "INVOICED_REQUESTS_PER_MINUTE": str(self.invoiced_requests_per_minute or 0),
            "CHARGEBEE_MAX_CONCURRENT_REQUESTS": str(self.chargebee_max_concurrent or 0),
            "INVOICED_MAX_CONCURRENT_REQUESTS": str(self.invoiced_max_concurrent or 0),
        }
        if self.chargebee_site:
            env["CHARGEBEE_SITE"] = self.chargebee_site
        return env
