"""The redactor against every form in which a key leaves a process."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from talkqa.redact import REDACTED, Redactor, redact_files, redactor_from_env, secret_forms

KEY = "live_k3y/with+odd=chars"
OTHER = "inv-0123456789abcdef"
redact = Redactor({"<CB>": KEY, "<INV>": OTHER})


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "leak",
    [
        KEY,
        quote(KEY, safe=""),
        quote_plus(KEY),
        b64(KEY + ":"),
        b64(KEY + ":").rstrip("="),
        base64.urlsafe_b64encode((KEY + ":").encode()).decode(),
        b64(KEY),
        b64(KEY + ":some-password"),
        b64("user:" + KEY),
    ],
)
def test_every_encoding_of_a_known_key_becomes_its_placeholder(leak: str) -> None:
    out = redact(f"GET /customers failed with {leak} in it")
    assert leak not in out
    assert KEY not in out and b64(KEY + ":") not in out
    assert "<CB>" in out


@pytest.mark.parametrize(
    "line",
    [
        f"Authorization: Basic {b64(KEY + ':')}",
        f"authorization: basic {b64(KEY + ':')}",
        f"AUTHORIZATION=Basic {b64(KEY + ':')}",
        f"{{'Authorization': 'Basic {b64(KEY + ':')}'}}",
        json.dumps({"headers": {"authorization": f"Basic {b64(KEY + ':')}"}}),
    ],
)
def test_an_authorization_header_of_a_known_key_shows_the_placeholder(line: str) -> None:
    out = redact(line)
    assert KEY not in out and b64(KEY + ":") not in out
    assert "<CB>" in out


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi.payload.sig"),
        ("authorization: token ghp_unknownvalue", "ghp_unknownvalue"),
        ("Authorization: Basic " + b64("stranger:pw"), b64("stranger:pw")),
        ("retrying with bearer abcdefgh12345678", "abcdefgh12345678"),
        ("sent basic " + b64("someone:else"), b64("someone:else")),
        ("my-syncer --api-key=unknown123 --once", "unknown123"),
        ("my-syncer --token unknown456", "unknown456"),
        ("https://x.test/v1?api_key=unknown789&page=2", "unknown789"),
        ('{"password": "hunter2hunter2"}', "hunter2hunter2"),
        ("CHARGEBEE_BASE_URL=https://ukey:upw@acme.chargebee.com/api/v2", "ukey:upw"),
    ],
)
def test_credentials_talkqa_was_never_told_are_redacted_by_their_shape(
    line: str, secret: str
) -> None:
    out = redact(line)
    assert secret not in out
    assert REDACTED in out


@pytest.mark.parametrize(
    "text",
    [
        "mismatch: currency_code 'USD' != currency 'EUR' (customer cb_42)",
        "the basic information of customer ABCDEFGH is missing",
        "Authorization failed for chargebee: check CHARGEBEE_API_KEY",
        "missing: Chargebee Customer 16BjnOS6xX4pe2 has no Invoiced Customers person",
    ],
)
def test_ordinary_report_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_a_sut_command_holding_a_key_shows_neither_the_key_nor_its_base64() -> None:
    command = f"my-syncer --cb {KEY} --header 'Authorization: Basic {b64(OTHER + ':')}'"
    out = redact(f"command: {command}")
    for leak in (KEY, OTHER, b64(KEY + ":"), b64(OTHER + ":")):
        assert leak not in out
    assert out.startswith("command: my-syncer --cb <CB>")


def test_short_values_are_not_secrets_and_the_repr_never_shows_a_key() -> None:
    short = Redactor({"<K>": "supersecret", "<SHORT>": "ab"})
    assert short("401 for supersecret, ab") == "401 for <K>, ab"
    assert repr(short) == "Redactor(<K>)"


def test_bytes_are_redacted_as_text_or_as_known_forms_in_binary() -> None:
    assert redact.redact_bytes(f"key {KEY}".encode()) == b"key <CB>"
    binary = b"\x89PNG\r\n\x1a\n" + KEY.encode() + b"\xff\xfe basic abcdefgh"
    assert redact.redact_bytes(binary) == b"\x89PNG\r\n\x1a\n<CB>\xff\xfe basic abcdefgh"
    untouched = b"\x89PNG\xff\xfe plain bytes"
    assert redact.redact_bytes(untouched) == untouched


def test_forms_include_the_padded_and_unpadded_basic_credential() -> None:
    forms = set(secret_forms("abcd"))
    assert {"abcd", b64("abcd:"), b64("abcd:").rstrip("=")} <= forms


def test_the_environment_redactor_knows_both_vendor_keys() -> None:
    env_redact = redactor_from_env({"CHARGEBEE_API_KEY": KEY, "INVOICED_API_KEY": OTHER})
    assert env_redact(f"{KEY} {b64(OTHER + ':')}") == "<CHARGEBEE_API_KEY> <INVOICED_API_KEY>"


def test_redacting_json_text_keeps_it_valid_json() -> None:
    record = {
        "stdout": f'Authorization: Basic {b64(KEY + ":")}\n"token": "abc123456"\\',
        "cmd": f"syncer --api-key={OTHER}",
        "auth": f'{{"Authorization": "Bearer {b64("x:y")}"}}',
    }
    out = redact(json.dumps(record))
    assert KEY not in out and OTHER not in out and b64(KEY + ":") not in out
    loaded = json.loads(out)
    assert loaded["cmd"] == "syncer --api-key=<INV>"


def test_redact_files_rewrites_text_and_renames_files_named_by_a_secret(tmp_path: Path) -> None:
    results = tmp_path / "allure-results"
    results.mkdir()
    leaky = results / "a-result.json"
    leaky.write_text(json.dumps({"name": f"sut {KEY}"}), encoding="utf-8")
    clean = results / "b-result.json"
    clean.write_text('{"name": "fine"}', encoding="utf-8")
    named = results / f"log-{OTHER}.txt"
    named.write_text("nothing secret", encoding="utf-8")
    binary = results / "shot.png"
    binary.write_bytes(b"\x89PNG\xff" + KEY.encode())
    changed = redact_files([results], redact)
    assert sorted(p.name for p in changed) == ["a-result.json", "log-<INV>.txt", "shot.png"]
    assert json.loads(leaky.read_text("utf-8")) == {"name": "sut <CB>"}
    assert clean.read_text("utf-8") == '{"name": "fine"}'
    assert not named.exists() and (results / "log-<INV>.txt").is_file()
    assert binary.read_bytes() == b"\x89PNG\xff<CB>"


def test_vcr_gets_every_known_form_longest_first() -> None:
    pairs = redact.sensitive_data()
    assert ("<CB>", KEY) in pairs and ("<CB>", b64(KEY + ":")) in pairs
    assert ("<INV>", OTHER) in pairs
    assert [len(form) for _, form in pairs] == sorted((len(f) for _, f in pairs), reverse=True)


def test_a_one_line_error_never_quotes_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.cli_runner import run_cli

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    url = f"https://{KEY}@acme.chargebee.com/api/v2"
    monkeypatch.setenv("CHARGEBEE_API_KEY", KEY)
    monkeypatch.setenv("INVOICED_API_KEY", OTHER)
    monkeypatch.setenv("CHARGEBEE_BASE_URL", url.replace("https", "ftp"))
    assert run_cli(["check", "dataflows/chargebee-invoiced.rst"], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "is not an http(s) URL" in err and "<CHARGEBEE_API_KEY>" in err
    assert KEY not in err and quote(KEY, safe="") not in err


def test_redacted_output_hides_a_key_however_the_process_or_its_children_write_it(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """`talkqa signoff` runs its feature suite in its own process inside this block: what
    Python prints, what is written straight to descriptors 1 and 2, and what a child process
    inherits them for all reach stdout, in order, with the key hidden."""
    import os
    import subprocess
    import sys

    from talkqa.redact import redacted_output

    key = "sk_live_f00dcafe42"
    with redacted_output(Redactor({"<KEY>": key})):
        print(f"print {key}")
        sys.stderr.write(f"stderr {key}\n")
        os.write(1, f"fd1 {key}\n".encode())
        os.write(2, f"fd2 {key}\n".encode())
        subprocess.run(["echo", f"child {key}"], check=True)
    print("after")
    out, err = capfd.readouterr()
    assert key not in out + err
    lines = ["print <KEY>", "stderr <KEY>", "fd1 <KEY>", "fd2 <KEY>", "child <KEY>", "after"]
    assert out.splitlines() == lines
    assert err == ""
