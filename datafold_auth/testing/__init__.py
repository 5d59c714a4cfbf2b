"""Test helpers for apps that use datafold-auth, and the pytest plugin that serves them as fixtures.

Installing the package registers the plugin (:mod:`datafold_auth.testing.plugin`,
``pytest11`` entry point ``datafold_auth``); docs/testing.md lists its
fixtures, marker and options. The helpers work without pytest too:

* :class:`FakeClock`: a clock that moves only when told;
* :class:`KeyFactory` / :class:`EphemeralKey`: fresh Ed25519 keys registered
  with a client_id, scopes, status and expiry;
* :class:`RecordingNonceStore`: a nonce store that shows what it saw;
* :class:`ClockedVerifier`: a verifier on a test clock that logs its decisions;
* :func:`assert_rejected` / :func:`assert_accepted`: check an answer, with a
  readable message on failure;
* :mod:`datafold_auth.testing.clients`: signed werkzeug/Flask, Starlette,
  httpx and requests test clients.
"""

from .assertions import assert_accepted, assert_rejected, describe_response, problem_details, rejection_reason
from .clock import FakeClock
from .identities import DEFAULT_CLIENT_ID, EphemeralKey, KeyFactory, PinnedNonceSigner
from .nonces import NonceUse, RecordingNonceStore
from .registries import RegistryFactory
from .verifier import ClockedVerifier, Verification

__all__ = [
    "DEFAULT_CLIENT_ID",
    "ClockedVerifier",
    "EphemeralKey",
    "FakeClock",
    "KeyFactory",
    "NonceUse",
    "PinnedNonceSigner",
    "RecordingNonceStore",
    "RegistryFactory",
    "Verification",
    "assert_accepted",
    "assert_rejected",
    "describe_response",
    "problem_details",
    "rejection_reason",
]
