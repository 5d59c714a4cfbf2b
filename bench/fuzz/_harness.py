"""Shared pieces of the atheris fuzz targets (see README.md in this folder).

Every target module defines ``seeds() -> list[bytes]`` (a small valid corpus made
with the project's own signers and backup writers) and ``test_one_input(data)``.
A target calls the code under test through :func:`typed`, which lets the
project's typed exceptions through (each must carry a :class:`Reason`) and lets
anything else escape: atheris reports an escaping exception as a finding.

Fixed inputs (key seeds, the clock) make every seed reproducible: a seed
signed at :data:`NOW` stays valid when it is replayed at :data:`NOW`.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth import KeyRecord, KeyStatus, MemoryNonceStore, Request, Signer, Verifier
from datafold_auth.errors import DatafoldAuthError, Reason
from datafold_auth.keys.kdf import KdfParams, Pbkdf2Params, ScryptParams
from datafold_auth.registry.memory import MemoryRegistry

NOW = 1_800_000_000
"""The clock of every target (epoch seconds); seeds are signed at this time."""
HOST = "api.example.com"
PASSPHRASE = b"correct horse battery staple"
KEY_A = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEY_B = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
KEY_C = Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96)))
KEY_D = Ed25519PrivateKey.from_private_bytes(bytes(range(96, 128)))
REASONS = frozenset(r.value for r in Reason)
WIRE_STATUSES = frozenset({400, 401, 403, 404, 405, 409, 413, 429, 503})
"""Statuses a refusal may have on the wire (never 500)."""

T = TypeVar("T")


class Finding(AssertionError):
    """A property of the target does not hold (reported by atheris like an uncaught exception)."""


def typed(func: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call ``func``; a :class:`DatafoldAuthError` with a valid reason gives ``None``, anything else escapes."""
    try:
        return func(*args, **kwargs)
    except DatafoldAuthError as exc:
        if not isinstance(exc.reason, Reason) or not exc.detail:
            raise Finding(f"typed exception without a reason or detail: {exc!r}") from exc
        return None


def cheap_kdf(kdf: KdfParams | None) -> bool:
    """Whether decrypting with ``kdf`` is fast enough for fuzzing (the harness skips the costly ones)."""
    if isinstance(kdf, Pbkdf2Params):
        return kdf.iterations <= 20_000
    if isinstance(kdf, ScryptParams):
        return kdf.log2_n <= 12 and kdf.r <= 8 and kdf.p <= 2
    return False


# ------------------------------------------------------------ keys and backends


def registry() -> MemoryRegistry:
    """A fresh registry holding KEY_A (client ``alice``, active, scopes read/write) and KEY_D (``alice``, pending)."""
    reg = MemoryRegistry()
    reg.register(KeyRecord.for_public_key(KEY_A.public_key(), "alice", scopes=("read", "write"), created_at=NOW - 60))
    pending = KeyRecord.for_public_key(KEY_D.public_key(), "alice", status=KeyStatus.PENDING, created_at=NOW - 60)
    reg.register(pending, allow_existing_client=True)
    return reg


def verifier() -> Verifier:
    """A verifier over a fresh :func:`registry` and nonce store."""
    return Verifier(registry(), MemoryNonceStore(), cache_ttl=0)


# ------------------------------------------------------------ HTTP messages as fuzz input
#
# A message is ``METHOD SP TARGET LF (NAME ":" SP? VALUE LF)* LF BODY`` read as latin-1,
# so every byte string is a message (a missing part is empty) and seeds stay readable.


def encode_message(method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [f"{method} {target}"] + [f"{name}: {value}" for name, value in headers]
    return ("\n".join(lines) + "\n\n").encode("latin-1") + body


def decode_message(data: bytes) -> tuple[str, str, list[tuple[str, str]], bytes]:
    head, _, body = data.partition(b"\n\n")
    lines = head.decode("latin-1").split("\n")
    method, _, target = lines[0].partition(" ")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name, value[1:] if value.startswith(" ") else value))
    return method, target, headers, body


def signed_message(signer: Signer, method: str, target: str, body: bytes = b"", headers: Any = ()) -> bytes:
    """A message signed by ``signer`` at :data:`NOW` (with ``Host``)."""
    request = Request.from_url(method, f"https://{HOST}{target}", [("Host", HOST), *headers], body)
    signer.sign(request, now=NOW, nonce=f"n-{method}-{len(body)}-{target}"[:60].replace('"', ""))
    return encode_message(method, target, request.headers, body)


def request_of(data: bytes) -> Request:
    method, target, headers, body = decode_message(data)
    path, sep, query = target.partition("?")
    host = next((v for k, v in headers if k.lower() == "host"), HOST)
    return Request(method, host, path, query if sep else None, headers, body, "https")


def environ_of(data: bytes, script_name: str = "") -> dict[str, Any]:
    """A PEP 3333 environ for a message (repeated fields joined with ``", "`` as servers do)."""
    method, target, headers, body = decode_message(data)
    path, _, query = target.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path[len(script_name) :] if path.startswith(script_name) else path,
        "QUERY_STRING": query,
        "RAW_URI": target,
        "SERVER_NAME": HOST,
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.1",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": io.StringIO(),
    }
    for name, value in headers:
        key = name.upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
        environ[key] = f"{environ[key]}, {value}" if key in environ else value
    return environ


def scope_of(data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An ASGI http scope and the ``http.request`` messages (body in two chunks) for a message."""
    method, target, headers, body = decode_message(data)
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("192.0.2.1", 1234),
        "server": (HOST, 443),
    }
    half = len(body) // 2
    messages = [
        {"type": "http.request", "body": body[:half], "more_body": True},
        {"type": "http.request", "body": body[half:], "more_body": False},
    ]
    return scope, messages


def check_problem(status: int, headers: Iterable[tuple[str, str]], content: bytes) -> None:
    """A refusal: a wire status, ``application/problem+json`` with a known ``reason``."""
    if status not in WIRE_STATUSES:
        raise Finding(f"refusal with status {status}")
    types = [v for k, v in headers if k.lower() == "content-type"]
    if types != ["application/problem+json"]:
        raise Finding(f"refusal with content type {types}")
    doc = json.loads(content)
    if doc.get("reason") not in REASONS or doc.get("status") != status:
        raise Finding(f"refusal without a valid reason: {doc}")


def call_wsgi(app: Any, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    answer: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer[:] = [int(status.split(" ", 1)[0]), headers]
        return lambda _data: None

    body = b"".join(app(environ, start_response))
    return answer[0], answer[1], body


def call_asgi(
    app: Any, scope: dict[str, Any], messages: list[dict[str, Any]]
) -> tuple[int, list[tuple[str, str]], bytes]:
    pending = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]]
    return start["status"], headers, body
