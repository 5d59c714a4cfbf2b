"""docs/protocol.md section 7's rotation example and fingerprint are exactly what the code produces and accepts."""

from __future__ import annotations

import json
import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

import datafold_auth as df
from datafold_auth.jwk import b64url_decode
from datafold_auth.registration import NEW_KEY_LABEL, NEW_KEY_TAG, handle_rotation, rotation_request

from .conftest import ROOT

NEW_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"  # RFC 8037 appendix A.1


def test_rotation_example_is_exact(rfc_vectors: dict[str, Any]) -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", doc, flags=re.S)
    current = load_pem_private_key(rfc_vectors["rfc9421_b14_test_key_ed25519"]["private_key_pem"].encode(), None)
    assert isinstance(current, Ed25519PrivateKey)
    new = Ed25519PrivateKey.from_private_bytes(b64url_decode(NEW_D))
    old_signer, new_signer = df.Signer(current), df.Signer(new)
    body = json.dumps({"jwk": df.public_jwk(new)}, separators=(",", ":")).encode()
    url = f"https://api.example.com/register/keys/{old_signer.keyid}/rotate"
    request = df.Request.from_url("POST", url, [("Content-Type", "application/json")], body)
    old_signer.sign(request, now=1800000000, nonce="R3o5JlsK4cELCXjiOtXbZg")
    proof = new_signer.relabeled(label=NEW_KEY_LABEL, tag=NEW_KEY_TAG)
    added = proof.sign(request, now=1800000000, nonce="Qm9Lq8ZtV1xYp2Hs7WdR4c")
    params = dict(added)["Signature-Input"].split("=", 1)[1]
    components = [(c, {}) for c in ("@method", "@authority", "@path", "@query", "content-digest", "content-type")]
    assert df.signature_base(request, components, params).decode() + "\n" in blocks
    assert body.decode() + "\n" in blocks
    # the documented single field lines are what rotation_request sends
    built = rotation_request(old_signer, new_signer, "https://api.example.com/register/keys", now=1800000000)
    names = [name for name, _ in built.headers]
    assert names == ["Content-Type", "Content-Digest", "Signature-Input", "Signature"]
    fields = dict(request.headers)
    joined = {n: ", ".join(v for k, v in request.headers if k == n) for n in ("Signature-Input", "Signature")}
    text = "".join(
        f"{n}: {joined.get(n, fields[n])}\n" for n in ("Content-Type", "Content-Digest", "Signature-Input", "Signature")
    )
    assert text in blocks
    # and the server accepts exactly these bytes
    merged = df.Request.from_url("POST", url, [(n, joined.get(n, fields[n])) for n in names], body)
    registry = df.MemoryRegistry()
    registry.register(df.KeyRecord.for_public_key(current.public_key(), client_id="doc"))
    old, fresh = handle_rotation(
        merged, old_signer.keyid, now=1800000000, registry=registry, nonce_store=df.MemoryNonceStore()
    )
    assert (old.replaced_by, fresh.keyid, fresh.client_id) == (
        new_signer.keyid,
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
        "doc",
    )


def test_fingerprint_example() -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text()
    fingerprint = df.key_fingerprint("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
    assert fingerprint == "SD5M V7VJ WFKW NGCU B5YM AEL2 ELVD PPK4"
    assert f"has fingerprint\n`{fingerprint}`" in doc
    new = Ed25519PrivateKey.from_private_bytes(b64url_decode(NEW_D))
    assert df.key_fingerprint(new) == fingerprint == df.KeyRecord.for_public_key(new.public_key(), "x").fingerprint


def test_every_reason_is_in_troubleshooting() -> None:
    doc = (ROOT / "docs" / "troubleshooting.md").read_text()
    missing = [reason.value for reason in df.Reason if f"`{reason.value}`" not in doc]
    assert missing == []
