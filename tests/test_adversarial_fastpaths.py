"""Adversarial checks of the verification fast paths (one-member Signature-Input shortcut,
component-list / plan caches, whole-second nonce expiry).

Each test is a defect found by trying to break the new code; see the test docstrings.
"""

from __future__ import annotations

import gc
import tracemalloc

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import datafold_auth as df
from datafold_auth import Reason

NOW = 1_800_000_000


def test_refused_oversized_component_lists_are_not_cached() -> None:
    """An unsigned request whose Signature-Input lists more than ``max_components`` components is
    refused (``malformed_signature_input``) without any key, as before. But the shortcut builds
    and caches the component tuple *and* its ``plan()`` for the whole list (``_shape`` runs
    before the ``max_components`` check; the general code checks the count first and never
    plans such a list). ``_SHAPES`` / ``_PLANS`` bound the number of entries (256 each), not
    their size, so a flood of distinct ~8 KB Signature-Inputs (within gunicorn's default
    8190-byte field limit) pins ~0.3 MB per request: ~140 MB for 256 requests of 1000 names.
    Refused requests must not leave state behind that grows with the attacker's list size."""
    key = Ed25519PrivateKey.generate()
    registry = df.MemoryRegistry()
    registry.register(df.KeyRecord.for_public_key(key.public_key(), client_id="alice"))
    verifier = df.Verifier(registry, df.MemoryNonceStore(), cache_ttl=0)
    limit = verifier.policy.max_components
    count = 600  # ~8 KB of field value, far above max_components
    assert count > limit

    def flood(rounds: int, tag: str) -> None:
        for i in range(rounds):
            inner = "(" + " ".join(f'"x-{tag}{i}-{j}"' for j in range(count)) + ")"
            request = df.Request.from_url(
                "GET",
                "https://api.example.com/v1/items",
                [
                    ("Signature-Input", f'sig1={inner};created={NOW};keyid="k";alg="ed25519";tag="datafold"'),
                    ("Signature", "sig1=:" + "A" * 86 + "==:"),
                ],
            )
            with pytest.raises(df.SignatureError) as caught:
                verifier.verify(request, NOW)
            assert caught.value.reason is Reason.MALFORMED_SIGNATURE_INPUT

    flood(1, "warm")  # first-use allocations (regex, imports) are not what is measured
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        flood(40, "flood")
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert retained < 2_000_000, f"40 refused requests left {retained / 1e6:.1f} MB cached"


def test_memory_nonce_store_forgets_entries_expiring_at_minus_infinity() -> None:
    """``MemoryNonceStore.add`` maps an ``expires_at`` that ``math.ceil`` cannot take to the
    "never" bucket -- meant for +inf and NaN ("kept for good, as before"), but -inf lands there
    too. Before, an entry expiring at -inf was already past and was purged by the next ``add``;
    now it is kept forever: its key is refused as a replay for good and it holds a unit of
    capacity for good (a full store then fails closed with ``NonceStoreError``)."""
    store = df.MemoryNonceStore(capacity=1)
    assert store.add("k n1", float("-inf"), NOW) is True
    # The only entry expired long ago: the store has room, and the key is free again.
    assert store.add("k n2", NOW + 300, NOW + 1) is True


def test_memory_nonce_store_minus_infinity_key_is_free_again() -> None:
    """The same -inf entry, seen through its key: it expired before it was recorded, so a later
    ``add`` of that key is fresh (as with any expired entry), not a replay forever."""
    store = df.MemoryNonceStore()
    assert store.add("k n", float("-inf"), NOW) is True
    assert store.add("k n", NOW + 300, NOW + 1) is True
