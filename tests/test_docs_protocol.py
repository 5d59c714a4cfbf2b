"""docs/protocol.md's worked example is exactly what the signer produces."""

from __future__ import annotations

import re
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key

import datafold_auth as df

from .conftest import ROOT


def _blocks(text: str) -> list[str]:
    return re.findall(r"```\n(.*?)```", text, flags=re.S)


def test_protocol_example_is_exact(rfc_vectors: dict[str, Any]) -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text()
    key = load_pem_private_key(rfc_vectors["rfc9421_b14_test_key_ed25519"]["private_key_pem"].encode(), None)
    request = df.Request.from_url(
        "POST", "https://api.example.com/v1/items?page=2", [("Content-Type", "application/json")], b'{"a":1}'
    )
    added = df.Signer(key).sign(request, now=1800000000, nonce="R3o5JlsK4cELCXjiOtXbZg")  # type: ignore[arg-type]
    headers = "".join(f"{name}: {value}\n" for name, value in added)
    params = dict(added)["Signature-Input"].split("=", 1)[1]
    components = [(c, {}) for c in ("@method", "@authority", "@path", "@query", "content-digest", "content-type")]
    base = df.signature_base(request, components, params).decode() + "\n"
    blocks = _blocks(doc)
    assert base in blocks
    assert headers in blocks
    # and the server side accepts it
    record = df.KeyRecord.for_public_key(key.public_key(), client_id="doc")  # type: ignore[union-attr]
    result = df.verify_request(request, now=1800000000, resolve_key=lambda k: record, nonce_store=df.MemoryNonceStore())
    assert result.keyid == "poqkLGiymh_W0uP6PZFw-dvez3QJT5SolqXBCW38r0U"
