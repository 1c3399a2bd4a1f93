"""The one redactor: every form in which a secret can leave talk-qa, replaced by a placeholder.

A key leaks in more shapes than its plain text: a syncer that logs its ``Authorization:
Basic …`` header prints ``base64(key + ":")`` (Chargebee and Invoiced both take the key
as the Basic user with an empty or any password), a URL carries it percent-encoded, a
``--sut-command`` holds it as an option value. Every output edge (sign-off, outcomes,
Allure results and attachment names, environment.properties, cassettes, logs) goes through
this one class so a new form is added once and covered everywhere.

Two layers: the known secrets in each of their encodings, and shapes that are secret
whatever their value (credentials after ``Authorization``/``Basic``/``Bearer``, values of
options and parameters named like a key). The second catches keys talk-qa was never told.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "<REDACTED>"
MIN_SECRET = 4  # shorter values would redact ordinary words ("ab" is no key)

_B64 = r"[A-Za-z0-9+/_-]"
# `Authorization: Basic x`, `"authorization": "Bearer x"`, `Authorization=x`, any case.
_AUTH_HEADER = re.compile(
    r"(?i)(\bauthorization\b\\?[\"']?\s*[:=]\s*\\?[\"']?)((?:basic|bearer|token|digest)\s+)?"
    r"([^\s\"'\\,;}\]]+)"
)
_BEARER = re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=-]{8,})")
_BASIC = re.compile(rf"(?i)(\bbasic\s+)({_B64}{{4,}}={{0,2}})")
# `--api-key=x`, `--token x`, `api_key=x` in a query, `"password": "x"`: secret by name.
_NAMED = re.compile(
    r"(?i)(--?[\w-]*(?:key|token|secret|password|passwd)[\w-]*(?:=|\s+)"
    r"|\b[\w-]*(?:api[_-]?key|token|secret|password|passwd)\\?[\"']?\s*[:=]\s*\\?[\"']?)"
    r"([^\s\"'\\&,;}\]]+)"
)
_B64_RUN = re.compile(rf"{_B64}{{8,}}={{0,2}}")
_URL_USERINFO = re.compile(r"(?i)\b(https?://)([^/\s@<>\"']+@)")  # https://key:pw@host


def _b64(raw: str) -> tuple[str, str]:
    data = raw.encode("utf-8")
    return base64.b64encode(data).decode("ascii"), base64.urlsafe_b64encode(data).decode("ascii")


def secret_forms(secret: str) -> Iterator[str]:
    """The encodings of ``secret`` that may appear in text, longest (most specific) first."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    for raw in (secret + ":", secret):
        for encoded in _b64(raw):
            forms.add(encoded)
            forms.add(encoded.rstrip("="))
    yield from sorted(forms, key=len, reverse=True)


def _decodes_to_secret(token: str, secrets: Mapping[str, str]) -> str | None:
    """The placeholder whose secret is inside the base64 ``token`` (any password), or None."""
    padded = token + "=" * (-len(token) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            text = decode(padded).decode("utf-8", errors="ignore")
        except (binascii.Error, ValueError):
            continue
        for placeholder, secret in secrets.items():
            if secret in text:
                return placeholder
    return None


class Redactor:
    """Replaces every form of the given secrets, and credential-shaped text, by placeholders.

    ``secrets`` maps a placeholder (``<CHARGEBEE_API_KEY>``) to its value; values shorter
    than four characters are ignored. The repr names the placeholders, never the values:
    allure-pytest-bdd records every step argument's repr as a step parameter.
    """

    def __init__(self, secrets: Mapping[str, str]) -> None:
        self._secrets = {p: v for p, v in secrets.items() if v and len(v) >= MIN_SECRET}
        pairs = [(form, p) for p, v in self._secrets.items() for form in secret_forms(v)]
        pairs.sort(key=lambda pair: len(pair[0]), reverse=True)
        self._forms = pairs

    def __repr__(self) -> str:
        return f"Redactor({', '.join(sorted(self._secrets))})"

    def __call__(self, text: str) -> str:
        for form, placeholder in self._forms:
            text = text.replace(form, placeholder)
        text = _B64_RUN.sub(self._b64_token, text)
        text = _AUTH_HEADER.sub(lambda m: f"{m[1]}{m[2] or ''}{self._keep(m[3])}", text)
        text = _BEARER.sub(lambda m: m[1] + self._keep(m[2]), text)
        text = _BASIC.sub(self._basic, text)
        text = _URL_USERINFO.sub(lambda m: f"{m[1]}{REDACTED}@", text)
        return _NAMED.sub(lambda m: m[1] + self._keep(m[2]), text)

    def sensitive_data(self) -> list[tuple[str, str]]:
        """vcrpy's ``filter_sensitive_data``: (placeholder, form) for every known form.

        Longest forms first, so a base64 credential is replaced before the plain key inside
        a longer text could split it.
        """
        return [(placeholder, form) for form, placeholder in self._forms]

    def _keep(self, value: str) -> str:
        """A value already replaced by a placeholder stays readable; anything else goes."""
        return value if value.startswith("<") and value.endswith(">") else REDACTED

    def _b64_token(self, match: re.Match[str]) -> str:
        placeholder = _decodes_to_secret(match[0], self._secrets)
        return placeholder if placeholder is not None else match[0]

    def _basic(self, match: re.Match[str]) -> str:
        """``Basic <base64 of user:password>`` only: "basic information" is no credential."""
        token = match[2]
        try:
            decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=False)
        except (binascii.Error, ValueError):
            return match[0]
        return match[1] + REDACTED if b":" in decoded else match[0]

    def redact_bytes(self, data: bytes) -> bytes:
        """The same redaction over bytes that are text; in binary data, the known forms only.

        A key inside binary data (say, a screenshot's metadata) is still a leak: losing that
        file's checksum is the lesser harm.
        """
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return self.known_forms(data)
        redacted = self(text)
        return data if redacted == text else redacted.encode("utf-8")

    def known_forms(self, data: bytes) -> bytes:
        """Only the known secrets' forms replaced: for data the shape rules could break.

        A generated page's scripts hold ``token: x`` as code, not as a credential.
        """
        for form, placeholder in self._forms:
            data = data.replace(form.encode("utf-8"), placeholder.encode("utf-8"))
        return data


def redactor_from_env(env: Mapping[str, str]) -> Redactor:
    """The redactor of the keys in an environment (the five variables talk-qa reads)."""
    return Redactor(
        {
            "<CHARGEBEE_API_KEY>": env.get("CHARGEBEE_API_KEY", ""),
            "<INVOICED_API_KEY>": env.get("INVOICED_API_KEY", ""),
        }
    )


def redact_files(
    paths: Iterable[Path], redact: Redactor, *, known_only: bool = False
) -> list[Path]:
    """Rewrite each file (or every file below a folder) with its secrets redacted.

    The last guard at the report edge: whatever a writer upstream forgot (a syncer's log in
    an attachment, a command line in a label) is scrubbed before anyone opens the folder.
    A file whose *name* holds a secret is renamed too. ``known_only`` replaces the known
    keys' forms and nothing else (generated code). Returns the files that changed.
    """
    changed: list[Path] = []
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            if not path.is_file():
                continue
            data = path.read_bytes()
            clean = redact.known_forms(data) if known_only else redact.redact_bytes(data)
            if clean != data:
                path.write_bytes(clean)
            name = redact(path.name).replace("/", "_")
            if name != path.name:
                path = path.rename(path.with_name(name))
            elif clean == data:
                continue
            changed.append(path)
    return changed


@contextlib.contextmanager
def redacted_output(redact: Redactor) -> Iterator[None]:
    """While the block runs, everything this process writes to stdout or stderr (Python's
    streams and file descriptors 1 and 2 alike, so C code and child processes too) goes on
    to the stdout it started with, line by line as it comes, redacted, stderr merged in.

    `talkqa signoff` runs the feature suite inside this block: the suite prints a failing
    syncer's output tail, and the console and CI logs are outputs too. It works at the file
    descriptor level, not by running the suite as a child process with its output piped,
    because a child costs a fresh interpreter that imports pytest, pytest-bdd, Allure and
    talk-qa again (~1.2 s of CPU per sign-off).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    streams = sys.stdout, sys.stderr
    saved = os.dup(1), os.dup(2)
    emit = _emitter(sys.stdout, saved[0])
    read_end, write_end = os.pipe()

    def pump() -> None:
        with open(read_end, "rb") as pipe:
            for raw in pipe:
                emit(redact.redact_bytes(raw))

    thread = threading.Thread(target=pump, name="talkqa-redacted-output", daemon=True)
    thread.start()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        with open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace",
                  closefd=False) as merged:  # fmt: skip
            sys.stdout = sys.stderr = merged
            try:
                yield
            finally:
                sys.stdout, sys.stderr = streams
    finally:
        os.dup2(saved[0], 1)  # the pipe's last writers gone: the pump reads to its end
        os.dup2(saved[1], 2)
        thread.join()
        os.close(saved[0])
        os.close(saved[1])


def _emitter(stdout: Any, fd: int) -> Callable[[bytes], None]:
    """How the pump passes a redacted line on to ``stdout``: through ``fd`` (a copy of
    descriptor 1) when ``stdout`` writes to descriptor 1, which the pipe now holds; else
    through the stream itself (a test's captured stdout)."""
    try:
        to_fd = stdout.fileno() == 1
    except (AttributeError, OSError, ValueError):
        to_fd = False
    if to_fd:

        def write_fd(line: bytes) -> None:
            while line:
                line = line[os.write(fd, line) :]

        return write_fd

    def write_stream(line: bytes) -> None:
        stdout.write(line.decode("utf-8", errors="replace"))
        stdout.flush()

    return write_stream
