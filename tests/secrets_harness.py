"""One harness for "no private key or passphrase material leaks" (library, keytools, shell scripts, browser).

Pieces (used by the ``tests/test_secrets_*.py`` modules):

* :class:`Canary` -- a freshly generated Ed25519 key and a recognisable passphrase;
* :class:`SecretScanner` -- every encoding of the secrets an implementation could leak (seed raw, hex lower/
  upper, base64, base64url with and without padding, the PKCS#8 DER and its base64 = the PEM body, the JWK
  ``d``, seed+public key as libsodium/OpenSSH hold it, runs of BIP39 / SLIP-39 words, the passphrase in UTF-8
  NFC/NFD, URL-encoded, JSON-escaped and base64), plus every 12-character window of the long text encodings
  (12-byte windows of the raw ones) that is *specific to the secret*: windows also found in the same encoding
  of an unrelated key or passphrase (e.g. the fixed PKCS#8 header) are dropped, so a truncated leak is caught
  without false alarms;
* :class:`Evidence` -- what the collectors saw, by channel (``log``, ``exception``, ``output``, ``traffic``,
  ``console``...), as bytes; :meth:`SecretScanner.assert_clean` searches all of it, and
  :meth:`Evidence.assert_saw` proves that a channel really carried data (the public key, the keyid, the
  signatures), so a broken collector cannot pass silently;
* collectors: :func:`collect_logs` (a DEBUG handler on the root, ``datafold_auth`` and ``keytools`` loggers,
  plus warnings), :meth:`Evidence.exception` / :func:`expect_failure` (str, repr, args, ``__notes__`` and the
  whole chained traceback of an exception), :meth:`Evidence.object` (repr/str of key, signer, store objects),
  :func:`run_command` (stdout/stderr of a subprocess) and :class:`RecordingProxy` (a TCP proxy on loopback in
  front of a real server that keeps every byte in both directions).

tests/test_secrets_harness.py proves the harness is not vacuous: a planted leak in each form is detected.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import subprocess
import threading
import traceback
import unicodedata
import urllib.parse
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import seed_words

WINDOW = 12
"""Length of the windows of long encodings searched for (characters, or bytes for raw forms)."""
SPECIFIC = 8
"""Of a window, how many characters (bytes) at least must come from the secret rather than fixed structure."""
WORD_RUN = 3
"""Consecutive mnemonic words that count as a leak."""
WORD_SET = 6
"""Distinct words of one mnemonic found close together in one text (any order or layout, e.g. columns)
that count as a leak: within :data:`WORD_SPAN` consecutive words of the text."""
WORD_SPAN = 96
"""How close :data:`WORD_SET` words must be: within this many consecutive *backup words* of the text
(BIP39 and SLIP-39 words; markup, field names, hex and base64 between them do not count). A mnemonic in
any layout (columns, an HTML table, one JSON log line per word) stays well within it; 6 of 24 common
English words spread over a long page of prose do not count (they did, by chance, in one CI run:
"join ... lock ... problem ... still"). Over the browser script, 1 random key in 2,000 still fires
(1 in 20 did with no span), 8 in 2,000 over the docs."""
FAILS = -1
"""``run_command(expect=FAILS)``: any non-zero exit status."""
LOGGERS = ("", "datafold_auth", "keytools")
"""Loggers :func:`collect_logs` listens to at DEBUG (``""`` is the root logger)."""


def canary_passphrase() -> str:
    """A recognisable, unique passphrase with non-ASCII characters (so NFC/NFD and escapes differ)."""
    return f"CANARY-pass-\u00e9\u00f8\u00c5-{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Canary:
    """A canary secret: a generated Ed25519 key and a passphrase chosen to be recognisable."""

    key: Ed25519PrivateKey
    passphrase: str

    @classmethod
    def generate(cls) -> Canary:
        return cls(Ed25519PrivateKey.generate(), canary_passphrase())

    @property
    def keyid(self) -> str:
        """The RFC 7638 thumbprint: public, expected to appear."""
        return jwk_thumbprint(self.key)

    @property
    def public_b64url(self) -> str:
        """The public key as the JWK ``x``: public, expected to appear."""
        return _b64url(self.key.public_key().public_bytes_raw())

    @property
    def secret(self) -> bytes:
        """The passphrase as UTF-8 bytes (what the library takes)."""
        return self.passphrase.encode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def key_text_forms(key: Ed25519PrivateKey) -> dict[str, str]:
    """The text encodings of a private key, by name."""
    seed = key.private_bytes_raw()
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    full = seed + key.public_key().public_bytes_raw()
    return {
        "seed hex": seed.hex(),
        "seed HEX": seed.hex().upper(),
        "seed base64": base64.b64encode(seed).decode(),
        "seed base64 unpadded": base64.b64encode(seed).decode().rstrip("="),
        "seed base64url (JWK d)": _b64url(seed),
        "seed base64url padded": base64.urlsafe_b64encode(seed).decode(),
        "PKCS#8 DER base64 (PEM body)": base64.b64encode(der).decode(),
        "PKCS#8 DER hex": der.hex(),
        "seed+public base64": base64.b64encode(full).decode(),
        "seed+public hex": full.hex(),
        "expanded key SHA-512(seed) hex": hashlib.sha512(seed).hexdigest(),
        "expanded key SHA-512(seed) base64": base64.b64encode(hashlib.sha512(seed).digest()).decode(),
        "seed bytes repr": bytes_repr(seed),
        "PKCS#8 DER bytes repr": bytes_repr(der),
    }


def key_raw_forms(key: Ed25519PrivateKey) -> dict[str, bytes]:
    """The binary encodings of a private key, by name."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {"seed raw": key.private_bytes_raw(), "PKCS#8 DER": der}


def bytes_repr(data: bytes) -> str:
    """How Python shows bytes (``repr`` of bytes/bytearray, e.g. in exception args), without ``b'...'``."""
    return repr(data)[2:-1]


def passphrase_forms(passphrase: str) -> dict[str, str]:
    """The text encodings of a passphrase, by name."""
    forms: dict[str, str] = {}
    for norm in ("NFC", "NFD"):
        text = unicodedata.normalize(norm, passphrase)
        raw = text.encode()
        forms.update(
            {
                f"passphrase {norm}": text,
                f"passphrase {norm} URL-encoded": urllib.parse.quote(text, safe=""),
                f"passphrase {norm} form-encoded": urllib.parse.quote_plus(text),
                f"passphrase {norm} JSON-escaped": json.dumps(text)[1:-1],
                f"passphrase {norm} base64": base64.b64encode(raw).decode(),
                f"passphrase {norm} base64url": _b64url(raw),
                f"passphrase {norm} hex": raw.hex(),
                f"passphrase {norm} bytes repr": bytes_repr(raw),
            }
        )
    return forms


def windows(text: bytes, size: int = WINDOW) -> set[bytes]:
    """Every ``size``-long slice of ``text``."""
    return {text[i : i + size] for i in range(len(text) - size + 1)}


@dataclass(frozen=True)
class Leak:
    """A secret form found in collected data."""

    secret: str
    form: str
    channel: str
    where: str
    context: str

    def __str__(self) -> str:
        return f"{self.secret}: {self.form} in {self.channel} ({self.where}): ...{self.context}..."


_NUMBERING = re.compile(rb"[0-9]+[.):]?")


@dataclass
class _Needle:
    secret: str
    form: str
    data: bytes
    fold_case: bool = False


class SecretScanner:
    """The set of byte strings whose presence anywhere means a secret leaked."""

    def __init__(self) -> None:
        self.needles: list[_Needle] = []
        self.word_sets: list[tuple[str, str, frozenset[bytes]]] = []
        self._reference_key = Ed25519PrivateKey.generate()
        self._reference_passphrase = canary_passphrase()

    # -- registering secrets

    def _add(self, secret: str, form: str, value: bytes, reference: bytes | None, window: bool = True) -> None:
        if not value:
            return
        self.needles.append(_Needle(secret, form, value))
        if window and len(value) > WINDOW:
            # a window must reach SPECIFIC units past the structure every such value shares (the prefix in common
            # with an unrelated reference: PKCS#8 header, passphrase template), and not occur in the reference
            common = next(
                (i for i, (a, b) in enumerate(zip(value, reference or b"", strict=False)) if a != b), len(value)
            )
            start = max(0, common - (WINDOW - SPECIFIC))
            specific = sorted(windows(value[start:]) - (windows(reference) if reference else set()))
            self.needles.extend(_Needle(secret, f"{form} [{WINDOW}-window]", w) for w in specific)

    def add_key(self, key: Ed25519PrivateKey, name: str = "key", *, words: bool = True) -> SecretScanner:
        """Every encoding of ``key`` (and runs of its BIP39 words if ``words``)."""
        reference_text = key_text_forms(self._reference_key)
        for form, text in key_text_forms(key).items():
            self._add(name, form, text.encode(), reference_text[form].encode())
        reference_raw = key_raw_forms(self._reference_key)
        for form, raw in key_raw_forms(key).items():
            self._add(name, form, raw, reference_raw[form])
        if words:
            self.add_words(seed_words(key), name, "BIP39 words")
        return self

    def add_passphrase(self, passphrase: str, name: str = "passphrase") -> SecretScanner:
        """Every encoding of ``passphrase``; windows common with an unrelated canary passphrase are dropped."""
        reference = passphrase_forms(self._reference_passphrase)
        for form, text in passphrase_forms(passphrase).items():
            # hex and base64 of a (mostly ASCII) passphrase carry few secret bits per character: whole values only
            window = not form.endswith(("hex", "base64", "base64url"))
            self._add(name, form, text.encode(), reference[form].encode(), window=window)
        return self

    def add_words(self, words: Sequence[str], name: str, form: str = "mnemonic words") -> SecretScanner:
        """Every run of :data:`WORD_RUN` consecutive words of a mnemonic (space-separated, case-folded)."""
        for i in range(len(words) - WORD_RUN + 1):
            run = " ".join(words[i : i + WORD_RUN]).lower()
            self.needles.append(_Needle(name, f"{form} {i + 1}-{i + WORD_RUN}", run.encode(), fold_case=True))
        distinct = frozenset(w.lower().encode() for w in words)
        if len(distinct) >= WORD_SET:
            self.word_sets.append((name, f"{form} (any {WORD_SET} of them)", distinct))
        return self

    def add_text(self, text: str, name: str, form: str = "text") -> SecretScanner:
        """A literal secret (e.g. a wrong passphrase guess), no windows."""
        self._add(name, form, text.encode(), None, window=False)
        return self

    def add_canary(self, canary: Canary, name: str = "canary") -> SecretScanner:
        self.add_key(canary.key, f"{name} key")
        self.add_passphrase(canary.passphrase, f"{name} passphrase")
        return self

    # -- searching

    def find(self, data: str | bytes, channel: str = "data", where: str = "") -> list[Leak]:
        """Every secret form in ``data`` (one :class:`Leak` per form found)."""
        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
        folded: bytes | None = None
        found: list[Leak] = []
        for needle in self.needles:
            hay = raw
            if needle.fold_case:  # words: any whitespace or line breaks between them, numbering ("7.") ignored
                if folded is None:
                    folded = b" ".join(t for t in raw.lower().split() if not _NUMBERING.fullmatch(t))
                hay = folded
            at = hay.find(needle.data)
            if at >= 0:
                context = hay[max(0, at - 20) : at + len(needle.data) + 20].decode("utf-8", "replace")
                found.append(Leak(needle.secret, needle.form, channel, where, context))
        if self.word_sets:
            tokens = re.findall(rb"[a-z]+", raw.lower())
            for name, form, words in self.word_sets:
                hits = _close_words(tokens, words)
                if hits is not None:
                    found.append(Leak(name, form, channel, where, b" ".join(sorted(hits)).decode()))
        return found

    def leaks(self, evidence: Evidence) -> list[Leak]:
        return [leak for item in evidence.items for leak in self.find(item.data, item.channel, item.where)]

    def assert_clean(self, evidence: Evidence) -> None:
        """Fail with every leak found in ``evidence``."""
        assert self.needles, "the scanner has no secrets to look for"
        found = self.leaks(evidence)
        if os.environ.get("SECRETS_HARNESS_STATS"):
            sizes = {c: len(evidence.channel(c)) for c in sorted(evidence.channels())}
            print(f"\nsecrets harness: {len(self.needles)} needles, {len(self.word_sets)} word sets, bytes {sizes}")
        assert not found, "secret material leaked:\n" + "\n".join(map(str, found[:40]))


@functools.lru_cache(maxsize=1)
def _backup_vocabulary() -> frozenset[bytes]:
    from datafold_auth.keys import paper, shamir

    return frozenset(w.encode() for w in paper.wordlist()) | frozenset(w.encode() for w in shamir._WORD_SET)


def _close_words(tokens: list[bytes], words: frozenset[bytes]) -> set[bytes] | None:
    """:data:`WORD_SET` distinct ``words`` within :data:`WORD_SPAN` consecutive backup words of
    ``tokens``, or ``None`` (a sliding window with counts: linear in the text)."""
    vocabulary = _backup_vocabulary() | words
    stream = [t for t in tokens if t in vocabulary]
    counts: dict[bytes, int] = {}
    for i, token in enumerate(stream):
        if token in words:
            counts[token] = counts.get(token, 0) + 1
        if i >= WORD_SPAN:
            gone = stream[i - WORD_SPAN]
            if gone in counts:
                counts[gone] -= 1
                if not counts[gone]:
                    del counts[gone]
        if len(counts) >= WORD_SET:
            return set(counts)
    return None


@dataclass
class Item:
    channel: str
    where: str
    data: bytes


@dataclass
class Evidence:
    """Everything collected, by channel."""

    items: list[Item] = field(default_factory=list)

    def add(self, channel: str, where: str, data: str | bytes) -> None:
        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
        self.items.append(Item(channel, where, raw))

    def exception(self, exc: BaseException, where: str = "") -> None:
        """str, repr, args, ``__notes__`` and the whole chained traceback of ``exc``."""
        parts = [str(exc), repr(exc), *map(repr, exc.args), *getattr(exc, "__notes__", [])]
        parts.append("".join(traceback.format_exception(exc)))
        cause: BaseException | None = exc.__cause__ or exc.__context__
        while cause is not None:
            parts.extend([str(cause), repr(cause), *map(repr, cause.args)])
            cause = cause.__cause__ or cause.__context__
        self.add("exception", where or type(exc).__name__, "\n".join(parts))

    def object(self, obj: object, where: str = "") -> None:
        """repr and str of an object (key, signer, store, auth adapter...)."""
        self.add("repr", where or type(obj).__name__, f"{obj!r}\n{obj!s}")

    def channel(self, name: str) -> bytes:
        return b"\n".join(i.data for i in self.items if i.channel == name)

    def channels(self) -> set[str]:
        return {i.channel for i in self.items}

    def assert_saw(self, channel: str, *needles: str | bytes) -> None:
        """The channel carried data, including every needle (proof the collector works)."""
        data = self.channel(channel)
        assert data, f"nothing was collected on channel {channel!r}"
        for needle in needles:
            raw = needle.encode() if isinstance(needle, str) else needle
            assert raw in data, f"{needle!r} was not seen on channel {channel!r}"


# --------------------------------------------------------------------------- collectors


class _Handler(logging.Handler):
    def __init__(self, evidence: Evidence) -> None:
        super().__init__(logging.DEBUG)
        self.evidence = evidence
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)  # includes the exception and stack text when the record has them
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}
        self.evidence.add("log", record.name, f"{text}\nargs={record.args!r} extra={extra!r}")


_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


@contextmanager
def collect_logs(evidence: Evidence) -> Iterator[None]:
    """Record every log record (DEBUG and up) of the root, ``datafold_auth`` and ``keytools`` loggers,
    and every warning, while the block runs."""
    handler = _Handler(evidence)
    saved: list[tuple[logging.Logger, int]] = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for warning in caught:
            evidence.add("log", "warnings", str(warning.message))
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)


@contextmanager
def expect_failure(evidence: Evidence, where: str, *types: type[BaseException]) -> Iterator[None]:
    """The block must raise one of ``types`` (default: any Exception); its whole text is recorded."""
    try:
        yield
    except types or Exception as exc:  # noqa: B030 (a tuple of types)
        evidence.exception(exc, where)
    else:
        raise AssertionError(f"{where}: no exception was raised")


def run_command(
    evidence: Evidence,
    argv: Sequence[str | Path],
    *,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    pass_fds: Sequence[int] = (),
    expect: int | None = 0,
    timeout: float = 120,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a process, record its stdout and stderr (channel ``output``), check its exit code
    (``expect``: that status, :data:`FAILS` for any non-zero one, None for no check)."""
    proc = subprocess.run(
        [str(a) for a in argv],
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        pass_fds=tuple(pass_fds),
        timeout=timeout,
        cwd=cwd,
        check=False,
    )
    where = " ".join(Path(str(a)).name if i == 0 else str(a) for i, a in enumerate(argv[:4]))
    evidence.add("output", f"{where} (stdout)", proc.stdout)
    evidence.add("output", f"{where} (stderr)", proc.stderr)
    if expect == FAILS:
        assert proc.returncode != 0, (argv, "succeeded, a failure was expected")
    elif expect is not None:
        assert proc.returncode == expect, (argv, proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return proc


class RecordingProxy:
    """A TCP proxy on ``127.0.0.1`` in front of ``upstream``, keeping every byte both ways.

    Clients talk to :attr:`url`; the bytes the server receives are :attr:`received`, the bytes it answers
    :attr:`sent`. One thread per connection (HTTP keep-alive and concurrent browser connections work).
    """

    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        assert parsed.hostname is not None and parsed.port is not None, upstream
        self.upstream = (parsed.hostname, parsed.port)
        self._lock = threading.Lock()
        self._received: list[bytes] = []
        self._sent: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._accept = threading.Thread(target=self._serve, name="recording-proxy", daemon=True)
        self._accept.start()

    @property
    def received(self) -> bytes:
        with self._lock:
            return b"".join(self._received)

    @property
    def sent(self) -> bytes:
        with self._lock:
            return b"".join(self._sent)

    def _serve(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._closing:
                client.close()
                return
            try:
                server = socket.create_connection(self.upstream, timeout=30)
            except OSError:
                client.close()
                continue
            with self._lock:
                self.connections += 1
                self._sockets += [client, server]
            for src, dst, sink in ((client, server, self._received), (server, client, self._sent)):
                thread = threading.Thread(target=self._pump, args=(src, dst, sink), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _pump(self, src: socket.socket, dst: socket.socket, sink: list[bytes]) -> None:
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                with self._lock:
                    sink.append(chunk)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
                try:
                    sock.shutdown(how)
                except OSError:
                    pass

    def record(self, evidence: Evidence, where: str = "") -> None:
        """Add both directions to ``evidence`` (channel ``traffic``)."""
        evidence.add("traffic", f"{where} to server", self.received)
        evidence.add("traffic", f"{where} from server", self.sent)

    def close(self) -> None:
        self._closing = True
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self._listener.close()
        self._accept.join(5)
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:  # connections still open (keep-alive): end them so their threads finish
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)
        for sock in sockets:
            sock.close()


@contextmanager
def recording_proxy(upstream: str, evidence: Evidence, where: str = "") -> Iterator[RecordingProxy]:
    """A :class:`RecordingProxy` whose traffic goes to ``evidence`` when the block ends."""
    proxy = RecordingProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
        proxy.record(evidence, where or proxy.url)


def signature_values(traffic: bytes) -> list[bytes]:
    """The ``Signature:`` header values in raw HTTP traffic (to prove signed requests went through)."""
    return [
        line.split(b":", 1)[1].strip()
        for line in traffic.split(b"\r\n")
        if line.lower().startswith(b"signature:") and b"=:" in line
    ]


def decode_signature(value: bytes) -> bytes:
    """The 64 signature bytes of a ``df=:...:`` header value."""
    return binascii.a2b_base64(value.split(b"=:", 1)[1].rstrip(b":"))


def clean_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test environment without DATAFOLD_*/D-Bus variables, with a temporary ``HOME`` and no keychain."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAFOLD_", "DBUS_", "XDG_"))}
    env.update(HOME=str(home), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    env.update(extra or {})
    return env
