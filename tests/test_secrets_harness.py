"""The secrets harness is not vacuous: a leak planted in each form, through each collector, is detected,
and public values (public key, keyid, the fixed PKCS#8 header) are not mistaken for leaks."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import sys
import unicodedata
import urllib.parse

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth.jwk import public_jwk
from datafold_auth.keys import paper_document, seed_words
from datafold_auth.keys.backup import BackupInfo
from datafold_auth.keys.paper import wordlist

from .secrets_harness import (
    WINDOW,
    Canary,
    Evidence,
    SecretScanner,
    collect_logs,
    expect_failure,
    recording_proxy,
    run_command,
)
from .servers import Harness, flask_app, serve_wsgi

CANARY = Canary.generate()


@pytest.fixture(scope="module")
def scanner() -> SecretScanner:
    return SecretScanner().add_canary(CANARY)


def _planted() -> dict[str, bytes]:
    key, seed = CANARY.key, CANARY.key.private_bytes_raw()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    words = seed_words(key)
    nfd = unicodedata.normalize("NFD", CANARY.passphrase)
    return {
        "hex": f"debug: seed={seed.hex()}".encode(),
        "HEX": seed.hex().upper().encode(),
        "base64": base64.b64encode(seed),
        "base64url unpadded": base64.urlsafe_b64encode(seed).rstrip(b"="),
        "base64url padded": base64.urlsafe_b64encode(seed),
        "JWK d": b'{"kty":"OKP","d":"' + base64.urlsafe_b64encode(seed).rstrip(b"=") + b'"}',
        "PEM": pem,
        "PEM body wrapped at 40": base64.b64encode(der)[:40],
        "raw seed in binary": b"\x00\x01" + seed + b"\xff",
        "raw DER": b"body=" + der,
        "truncated hex (12)": seed.hex()[20 : 20 + WINDOW].encode(),
        "truncated base64 (12)": base64.b64encode(der)[30 : 30 + WINDOW],
        "12 raw seed bytes": seed[5:17],
        "expanded key (SHA-512 of the seed), half": hashlib.sha512(seed).hexdigest()[64:].encode(),
        "BIP39 words over lines, numbered": f"7. {words[6]}\n8. {words[7]}\r\n9. {words[8].upper()}".encode(),
        "paper document": paper_document(key, BackupInfo(CANARY.keyid)).encode(),
        "passphrase": f"wrong passphrase {CANARY.passphrase!s} given".encode(),
        "passphrase NFD": nfd.encode(),
        "passphrase URL-encoded": urllib.parse.quote(CANARY.passphrase).encode(),
        "passphrase form-encoded": ("pass=" + urllib.parse.quote_plus(CANARY.passphrase)).encode(),
        "passphrase JSON ASCII": json.dumps({"p": CANARY.passphrase}).encode(),
        "passphrase base64": base64.b64encode(CANARY.secret),
        "passphrase bytes repr": repr(CANARY.secret).encode(),
        "passphrase hex": CANARY.secret.hex().encode(),
        "passphrase tail (12)": CANARY.passphrase[-WINDOW:].encode(),
    }


PLANTED = _planted()


@pytest.mark.parametrize("form", list(PLANTED))
def test_each_planted_form_is_detected(scanner: SecretScanner, form: str) -> None:
    evidence = Evidence()
    evidence.add("output", form, PLANTED[form])
    assert scanner.leaks(evidence), form
    with pytest.raises(AssertionError, match="secret material leaked"):
        scanner.assert_clean(evidence)


def test_public_values_are_not_leaks(scanner: SecretScanner) -> None:
    other = Ed25519PrivateKey.generate()
    public_pem = CANARY.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    other_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    evidence = Evidence()
    for text in (CANARY.keyid, str(public_jwk(CANARY.key)), public_pem, other_pem, other.private_bytes_raw().hex(),
                 Canary.generate().passphrase, "CANARY-pass-", " ".join(seed_words(other))):  # fmt: skip
        evidence.add("output", "public", text)
    scanner.assert_clean(evidence)


def test_mnemonic_words_close_together_in_any_order_are_a_leak(scanner: SecretScanner) -> None:
    """No three in a row, yet six of them inside a short text (e.g. printed in columns, shuffled)."""
    words = seed_words(CANARY.key)
    picked = [words[i] for i in (20, 3, 11, 7, 16, 0)]
    evidence = Evidence()
    evidence.add("output", "columns", " | ".join(f"{w} filler{n}" for n, w in enumerate(picked)).encode())
    assert [leak.form for leak in scanner.leaks(evidence)] == ["BIP39 words (any 6 of them)"]


@pytest.mark.parametrize("layout", ["html", "json log", "log lines"])
def test_mnemonic_words_between_markup_hex_and_base64_are_a_leak(scanner: SecretScanner, layout: str) -> None:
    """Layouts that put many tokens between the words (found by an adversarial review): only backup
    words count toward the span, so markup, field names, hex ids and signatures do not hide them."""
    words = seed_words(CANARY.key)
    if layout == "html":
        text = "<table>" + "".join(
            f'<tr class="backup-row"><td class="word-index" data-label="word number">{i}</td>'
            f'<td class="word mnemonic-word"><span class="word-text">{w}</span></td></tr>'
            for i, w in enumerate(words, 1)
        )
    elif layout == "json log":
        text = "\n".join(
            json.dumps(
                {
                    "level": "debug",
                    "logger": "datafold_auth.keys.paper",
                    "msg": "parsed word",
                    "index": i,
                    "word": w,
                    "request_id": hashlib.sha256(w.encode()).hexdigest(),
                }
            )
            for i, w in enumerate(words, 1)
        )
    else:
        signature = base64.b64encode(hashlib.sha512(b"x").digest()).decode()
        text = "\n".join(f"INFO accepted keyid={CANARY.keyid} sig=:{signature}: word={w}" for w in words)
    evidence = Evidence()
    evidence.add("log", layout, text.encode())
    assert "BIP39 words (any 6 of them)" in [leak.form for leak in scanner.leaks(evidence)]


def test_mnemonic_words_spread_over_long_prose_are_not_a_leak(scanner: SecretScanner) -> None:
    """Seven of the canary's words, far apart in a long page (a served script, a doc), are chance."""
    words = seed_words(CANARY.key)
    others = [w for w in wordlist() if w not in words]  # prose is full of BIP39 words: "run", "still", "lock"
    prose = " ".join(f"{word} " + " ".join(others[i * 40 : i * 40 + 40]) for i, word in enumerate(words[:7]))
    evidence = Evidence()
    evidence.add("traffic", "a long page", prose.encode())
    scanner.assert_clean(evidence)


def test_scanner_without_secrets_refuses_to_pass() -> None:
    with pytest.raises(AssertionError, match="no secrets"):
        SecretScanner().assert_clean(Evidence())


def test_log_collector_sees_debug_records_args_and_exception_text(scanner: SecretScanner) -> None:
    hexed = CANARY.key.private_bytes_raw().hex()
    for emit in (
        lambda: logging.getLogger("datafold_auth.anything").debug("seed %s", hexed),
        lambda: logging.getLogger("keytools").debug("no args", extra={"secret": hexed}),
        lambda: logging.getLogger().warning("root logger: %r", CANARY.secret),
    ):
        evidence = Evidence()
        with collect_logs(evidence):
            emit()
        assert evidence.channel("log") and scanner.leaks(evidence)
    evidence = Evidence()
    with collect_logs(evidence):
        try:
            raise ValueError(CANARY.passphrase)
        except ValueError:
            logging.getLogger("datafold_auth").exception("failed")  # the message is clean, the traceback is not
    assert next(leak.form for leak in scanner.leaks(evidence)).startswith("passphrase")
    assert logging.getLogger("datafold_auth").level == logging.NOTSET  # restored


def test_exception_collector_sees_message_args_notes_and_causes(scanner: SecretScanner) -> None:
    def nested() -> None:
        try:
            bytes.fromhex("zz")
        except ValueError as inner:
            raise ValueError(CANARY.key.private_bytes_raw()) from inner

    def cause() -> None:
        try:
            nested()
        except ValueError as exc:
            raise RuntimeError("outer message is clean") from exc

    def note() -> None:
        exc = KeyError("clean")
        exc.add_note(f"while trying {CANARY.passphrase}")
        raise exc

    for fn in (nested, cause, note):
        evidence = Evidence()
        with expect_failure(evidence, fn.__name__):
            fn()
        assert scanner.leaks(evidence), fn.__name__
    with pytest.raises(AssertionError, match="no exception"), expect_failure(Evidence(), "nothing"):
        pass


def test_repr_collector(scanner: SecretScanner) -> None:
    class Leaky:
        def __repr__(self) -> str:
            return f"Leaky(seed={CANARY.key.private_bytes_raw()!r})"

    evidence = Evidence()
    evidence.object(Leaky())
    assert scanner.leaks(evidence)


def test_command_collector(scanner: SecretScanner) -> None:
    evidence = Evidence()
    run_command(evidence, [sys.executable, "-c", "import sys; sys.stderr.write(sys.argv[1])",
                           CANARY.passphrase])  # fmt: skip
    assert next(leak.channel for leak in scanner.leaks(evidence)) == "output"
    with pytest.raises(AssertionError):
        run_command(Evidence(), [sys.executable, "-c", "raise SystemExit(3)"])


def test_traffic_collector_sees_every_byte_both_ways(scanner: SecretScanner) -> None:
    h = Harness()
    evidence = Evidence()
    with serve_wsgi(flask_app(h)) as url, recording_proxy(url, evidence) as proxy:
        body = b'{"d": "' + base64.urlsafe_b64encode(CANARY.key.private_bytes_raw()).rstrip(b"=") + b'"}'
        assert requests.post(proxy.url + "/health", data=body, timeout=10).status_code == 200
    evidence.assert_saw("traffic", b"POST /health HTTP/1.1", b"HTTP/1.1 200", body)
    assert "seed base64url (JWK d)" in {leak.form for leak in scanner.leaks(evidence)}
    assert {leak.where for leak in scanner.leaks(evidence)} == {f"{proxy.url} to server"}


def test_assert_saw_fails_on_an_empty_or_wrong_channel() -> None:
    evidence = Evidence()
    with pytest.raises(AssertionError, match="nothing was collected"):
        evidence.assert_saw("traffic")
    evidence.add("traffic", "x", b"GET / HTTP/1.1\r\n")
    with pytest.raises(AssertionError, match="was not seen"):
        evidence.assert_saw("traffic", "Signature:")
