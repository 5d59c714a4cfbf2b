"""Verifying signed requests (RFC 9421 section 3.2) per a :class:`VerificationPolicy`.

Sans-I/O: :func:`verify_request` takes the request parts, the current time in
epoch seconds, a key lookup and a nonce store, and returns a
:class:`VerifiedSignature` or raises :class:`SignatureError` with a reason.

Checks run cheapest first and the nonce is recorded last, so that a request
that fails any check never uses up its nonce:

1. ``Signature-Input``/``Signature`` present and well-formed; a signature
   with the policy's ``tag`` selected (RFC 9421 section 3.2 step 1-2);
2. parameters: ``alg`` (if present) is ``ed25519``; ``keyid``, ``created``
   and (by policy) ``nonce``/``expires`` present and typed;
3. freshness: ``created`` not more than ``clock_skew`` ahead of ``now``, not
   older than ``max_age + clock_skew``; ``expires`` not passed by more than
   ``clock_skew`` (section 3.2 step 4);
4. the policy's required components are covered;
5. the key is known and usable (``active``, not expired);
6. the signature verifies over the signature base (section 3.2 steps 5-7);
7. ``Content-Digest`` matches the body whenever it is covered or there is a body (RFC 9530);
8. the nonce was not seen before (section 7.2.2).
"""

from __future__ import annotations

import binascii
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature

from . import profile, sf
from .digest import EMPTY_HASHES, check_content_digest
from .errors import Reason as R
from .errors import RegistryError, SignatureError, StructuredFieldError
from .message import Request
from .nonce import NonceStore
from .profile import DEFAULT_POLICY, VerificationPolicy
from .registry import CachedRegistry, KeyLookup, KeyRecord
from .signature_base import Component, Plan, plan, planned_signature_base, signature_base

SIGNATURE_SIZE = 64
"""Ed25519 signature size in bytes (RFC 8032 section 5.1.6)."""


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """The outcome of a successful verification.

    Attributes:
        label: the signature's label.
        keyid: the key that signed.
        created: epoch seconds. expires: epoch seconds or ``None``.
        nonce: the nonce, or ``None`` if the policy allowed none.
        covered: the covered components ``(name, params)``, in order.
        record: the registry record of the key (client_id, scopes, status...).
    """

    label: str
    keyid: str
    created: int
    expires: int | None
    nonce: str | None
    covered: tuple[Component, ...]
    record: KeyRecord

    @property
    def client_id(self) -> str:
        """The identity the request acts as."""
        return self.record.client_id

    @property
    def scopes(self) -> tuple[str, ...]:
        """The key's scopes."""
        return self.record.scopes


_REPLAYED = "this nonce was already used with this key"


def _fail(reason: R, detail: str) -> SignatureError:
    return SignatureError(detail, reason)


_ONE_SIGNATURE = re.compile(r"([a-z*][a-z0-9_.*-]*)=:([A-Za-z0-9+/]{86}==):")
"""A Signature field of one member, a 64-byte Byte Sequence without parameters (RFC 8941 canonical form)."""
_SHA256_EMPTY = EMPTY_HASHES["sha-256"]
"""The empty SHA-256 context of :data:`datafold_auth.digest.EMPTY_HASHES` (bound once: the verify path)."""


def _sha256_field_matches(value: str, body: bytes) -> bool:
    """``True`` if ``value`` is exactly the single-member ``sha-256`` Content-Digest of ``body``.

    The same text comparison :func:`~datafold_auth.digest.check_content_digest`
    starts with (RFC 9530 section 2); ``False`` sends the field through that function.
    """
    if not value.startswith("sha-256=:"):
        return False
    h = _SHA256_EMPTY.copy()
    h.update(body)
    return value == "sha-256=:" + binascii.b2a_base64(h.finalize(), newline=False).decode("ascii") + ":"


def _has_content(request: Request) -> bool:
    if request.body:
        return True
    lengths = request.field_values("content-length")
    if not lengths:
        return False
    length = lengths[0].strip()
    if length.isascii() and length.isdigit():
        return int(length) != 0  # "00" is zero too (RFC 9110 section 8.6)
    return length != ""  # unreadable: assume content, so the digest is required


class _NoParams(dict[str, object]):
    """The (empty) parameters of a component without any: a dict that cannot be changed, so one
    instance can stand in every cached component list."""

    __slots__ = ()

    def _immutable(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("the parameters of a verified component cannot be changed")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _immutable


_NO_PARAMS = _NoParams()

_SHAPES: dict[str, tuple[tuple[Component, ...], bool, Plan | None]] = {}
_MAX_SHAPES = 256
_MAX_SHAPE_TEXT = 2048


def _shape(inner: str) -> tuple[tuple[Component, ...], bool, Plan | None]:
    """The covered components of an Inner List text ``("@method" ...)`` of plain Strings
    (``(name, {})`` each; the shared ``{}`` cannot be changed), whether every field name
    among them is lowercase, and their :func:`plan` (cached per text)."""
    shape = _SHAPES.get(inner)
    if shape is None:
        names = tuple(inner[2:-2].split('" "')) if len(inner) > 2 else ()
        lowercase = all(name == name.lower() or name.startswith("@") for name in names)
        components: tuple[Component, ...] = tuple((name, _NO_PARAMS) for name in names)
        shape = (components, lowercase, plan(names) if lowercase else None)
        if len(inner) <= _MAX_SHAPE_TEXT:
            if len(_SHAPES) >= _MAX_SHAPES:  # full (a flood of odd lists, perhaps): start over
                _SHAPES.clear()
            _SHAPES[inner] = shape
    return shape


def _chosen_member(
    inputs: list[str], policy: VerificationPolicy
) -> tuple[str, Sequence[Component], dict[str, object], str, Plan | None]:
    """The Signature-Input member the policy selects: ``(label, components, params, serialized, plan)``."""
    text = inputs[0] if len(inputs) == 1 else ", ".join(inputs)
    one = sf.match_one_inner_list(text)
    if one is not None:
        # The usual field: one canonical member, an Inner List of plain Strings. What the
        # general code below gives for this text (tests/test_core_fast_paths.py), without
        # its per-item work: the names and their plan are cached per list text.
        label, inner, params = one
        if policy.tag is not None and params.get("tag") != policy.tag:
            raise _fail(R.WRONG_TAG, f"no signature with tag {policy.tag!r}")
        # Counted before anything is cached: a refused list leaves nothing behind. (Strings
        # here hold no '"', so '" "' only ever separates two items.)
        if (inner.count('" "') + 1 if len(inner) > 2 else 0) > policy.max_components:
            raise _fail(R.MALFORMED_SIGNATURE_INPUT, f"more than {policy.max_components} covered components")
        components, lowercase, steps = _shape(inner)
        if not lowercase:
            raise _fail(R.MALFORMED_SIGNATURE_INPUT, "field names in component identifiers must be lowercase")
        return label, components, params, text[len(label) + 1 :], steps
    return _chosen_member_general(text, policy)


def _chosen_member_general(
    text: str, policy: VerificationPolicy
) -> tuple[str, Sequence[Component], dict[str, object], str, Plan | None]:
    """:func:`_chosen_member` for any Signature-Input text (the combined field value)."""
    try:
        members, texts = sf.parse_dictionary_canonical(text)
    except StructuredFieldError:
        raise _fail(R.MALFORMED_SIGNATURE_INPUT, "Signature-Input is not a structured dictionary") from None
    chosen = None
    for label, member in members.items():
        value, params = member
        if not isinstance(value, list):
            raise _fail(R.MALFORMED_SIGNATURE_INPUT, f"Signature-Input member {label!r} is not an inner list")
        if policy.tag is None or params.get("tag") == policy.tag:
            chosen = label, value, params
            break
    if chosen is None:
        if not members:
            raise _fail(R.MISSING_SIGNATURE, "Signature-Input is empty")
        raise _fail(R.WRONG_TAG, f"no signature with tag {policy.tag!r}")
    label, items, params = chosen
    if len(items) > policy.max_components:
        raise _fail(R.MALFORMED_SIGNATURE_INPUT, f"more than {policy.max_components} covered components")
    components: list[Component] = []
    names: list[str] = []
    plain = True
    for name, component_params in items:
        if type(name) is not str:
            raise _fail(R.MALFORMED_SIGNATURE_INPUT, "a component identifier is not a string")
        if name != name.lower() and not name.startswith("@"):
            raise _fail(R.MALFORMED_SIGNATURE_INPUT, "field names in component identifiers must be lowercase")
        components.append((name, component_params))
        names.append(name)
        if component_params:
            plain = False
    return label, components, params, texts[label], plan(tuple(names)) if plain else None


def _select(
    request: Request, policy: VerificationPolicy
) -> tuple[str, Sequence[Component], dict[str, object], str, bytes, Plan | None]:
    inputs = request.field_values("signature-input")
    signatures = request.field_values("signature")
    if not inputs or not signatures:
        raise _fail(R.MISSING_SIGNATURE, "no Signature-Input or Signature field")
    label, components, params, serialized, steps = _chosen_member(inputs, policy)
    signature_text = signatures[0] if len(signatures) == 1 else ", ".join(signatures)
    # The usual Signature field, one member that is a 64-byte Byte Sequence: what
    # sf.parse_dictionary gives for exactly this text, without its general regex.
    fast = _ONE_SIGNATURE.fullmatch(signature_text)
    if fast is not None and fast.group(1) == label:
        return label, components, params, serialized, binascii.a2b_base64(fast.group(2)), steps
    try:
        sig_members = sf.parse_dictionary(signature_text)
    except StructuredFieldError:
        raise _fail(R.MALFORMED_SIGNATURE, "Signature is not a structured dictionary") from None
    sig_member = sig_members.get(label)
    if sig_member is None:
        raise _fail(R.MALFORMED_SIGNATURE, f"Signature has no member {label!r}")
    signature = sig_member[0]
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
        raise _fail(R.MALFORMED_SIGNATURE, "the signature is not a 64-byte byte sequence")
    return label, components, params, serialized, signature, steps


def verify_request(
    request: Request,
    *,
    now: float,
    resolve_key: Callable[[str], KeyRecord | None],
    nonce_store: NonceStore | None,
    policy: VerificationPolicy = DEFAULT_POLICY,
) -> VerifiedSignature:
    """Verify a signed request.

    Args:
        request: the request parts as received.
        now: the current time in epoch seconds.
        resolve_key: returns the key record for a keyid, or ``None`` if unknown;
            may raise :class:`RegistryError` (answered as ``registry_unavailable``).
        nonce_store: where nonces are recorded (``None`` disables replay
            protection; only for tests of other checks).
        policy: what to demand (default: the DataFold profile).

    Returns:
        the :class:`VerifiedSignature`.

    Raises:
        SignatureError: with a reason from :class:`datafold_auth.errors.Reason`.
        RegistryError, NonceStoreError: a backend is unavailable (fail closed).
    """
    return _verify(request, now, lambda keyid, _now: resolve_key(keyid), nonce_store, policy)


def _verify(
    request: Request,
    now: float,
    resolve_key: Callable[[str, float], KeyRecord | None],
    nonce_store: NonceStore | None,
    policy: VerificationPolicy,
) -> VerifiedSignature:
    """:func:`verify_request`, called positionally, with ``resolve_key(keyid, now)`` (a cache's ``get``)."""
    label, components, params, serialized, signature, steps = _select(request, policy)

    alg = params.get("alg")
    if alg is not None and alg != profile.ALGORITHM:
        raise _fail(R.UNSUPPORTED_ALGORITHM, "alg is not ed25519")
    keyid = params.get("keyid")
    if type(keyid) is not str or not keyid or len(keyid) > policy.max_keyid_length:
        raise _fail(R.MISSING_PARAMETER, "keyid must be a non-empty string within the length limit")
    created = params.get("created")
    if type(created) is not int:
        raise _fail(R.MISSING_PARAMETER, "created is missing" if created is None else "created must be an integer")
    expires = params.get("expires")
    if expires is not None and type(expires) is not int:
        raise _fail(R.MISSING_PARAMETER, "expires must be an integer")
    if expires is None and policy.expires_required:
        raise _fail(R.MISSING_PARAMETER, "expires is missing")
    nonce = params.get("nonce")
    if nonce is None:
        if policy.nonce_required:
            raise _fail(R.MISSING_PARAMETER, "nonce is missing")
    elif type(nonce) is not str or not nonce or len(nonce) > policy.max_nonce_length:
        raise _fail(R.MISSING_PARAMETER, "nonce must be a non-empty string within the length limit")

    skew = policy.clock_skew
    if created > now + skew:
        raise _fail(R.CREATED_IN_FUTURE, f"created is {created - now:.0f} s ahead of this server's clock")
    if created < now - policy.max_age - skew:
        raise _fail(R.EXPIRED, f"created is {now - created:.0f} s old (max_age {policy.max_age} s)")
    if expires is not None and expires < now - skew:
        raise _fail(R.EXPIRED, "expires has passed")

    covered = steps.covered if steps is not None else {name for name, p in components if not p}
    if not covered.issuperset(policy.required_components):
        for name in policy.required_components:
            if name not in covered:
                raise _fail(R.MISSING_COMPONENT, f"{name} must be covered")
    has_content = _has_content(request)
    if has_content and not covered.issuperset(policy.body_components):
        for name in policy.body_components:
            if name not in covered:
                raise _fail(R.MISSING_COMPONENT, f"{name} must be covered when there is a body")

    record = resolve_key(keyid, now)
    if record is None:
        raise _fail(R.UNKNOWN_KEY, "keyid is not registered")
    if record.keyid != keyid:  # a registry answering with another key's record is never trusted
        raise _fail(R.UNKNOWN_KEY, "the registry answered with the record of another keyid")
    if not record.is_usable(now):
        raise _fail(R.KEY_NOT_ACTIVE, f"key status is {record.status.value}")

    if steps is not None:
        base = planned_signature_base(request, steps, serialized)
    else:
        base = signature_base(request, components, serialized)
    try:
        record.verifier_key.verify(signature, base)
    except InvalidSignature:
        raise _fail(R.BAD_SIGNATURE, "the signature does not verify over the signature base") from None

    if has_content or "content-digest" in covered:
        digests = request.field_values("content-digest")
        if not digests:
            raise _fail(R.MISSING_COMPONENT, "the request has a body but no Content-Digest")
        if len(digests) != 1 or not _sha256_field_matches(digests[0], request.body):
            check_content_digest(", ".join(digests), request.body)

    if nonce is not None and nonce_store is not None:
        lifetime_end = created + policy.max_age + skew
        if expires is not None:
            lifetime_end = min(lifetime_end, expires + skew)
        if not nonce_store.add(f"{keyid} {nonce}", math.ceil(lifetime_end) + 1, now):
            raise _fail(R.REPLAYED_NONCE, _REPLAYED)

    return VerifiedSignature(label, keyid, created, expires, nonce, tuple(components), record)


Offload = Callable[..., Awaitable[Any]]
"""``offload(function, *args)``: run ``function(*args)`` where it may block (e.g. ``asyncio.to_thread``)."""


class _NeedsLookup(Exception):
    """The cache cannot answer for this keyid: only the backend can (I/O)."""

    def __init__(self, keyid: str) -> None:
        super().__init__(keyid)
        self.keyid = keyid


class _DeferredNonce:
    """Stands in for a blocking nonce store: notes the one ``add`` for the caller to make later."""

    blocking = False

    def __init__(self) -> None:
        self.entry: tuple[str, float, float] | None = None

    def add(self, key: str, expires_at: float, now: float) -> bool:
        self.entry = (key, expires_at, now)
        return True


class Verifier:
    """Verifies requests against a key registry, with a nonce store and a policy.

    Args:
        registry: a :class:`~datafold_auth.registry.KeyLookup`; wrapped in a
            :class:`~datafold_auth.registry.CachedRegistry` with ``cache_ttl``.
        nonce_store: a :class:`~datafold_auth.nonce.NonceStore` (required).
        policy: the :class:`VerificationPolicy` (default: DataFold profile).
        cache_ttl: seconds a key record is cached (the revocation bound; default 5).

    Raises:
        TypeError: ``registry`` has no ``get`` or ``nonce_store`` no ``add``
            (``None`` would silently turn replay protection off).
    """

    def __init__(
        self,
        registry: KeyLookup,
        nonce_store: NonceStore,
        policy: VerificationPolicy = DEFAULT_POLICY,
        *,
        cache_ttl: float = 5.0,
    ) -> None:
        if not callable(getattr(registry, "get", None)):
            raise TypeError("Verifier needs a key registry (an object with get(keyid))")
        if not callable(getattr(nonce_store, "add", None)):
            raise TypeError("Verifier needs a nonce store (replay protection cannot be turned off here)")
        self.registry = registry
        self.cache = registry if isinstance(registry, CachedRegistry) else CachedRegistry(registry, ttl=cache_ttl)
        self.nonce_store = nonce_store
        self.policy = policy

    @property
    def blocking(self) -> bool:
        """``True`` if verification may do blocking I/O (registry or nonce store)."""
        return self.cache.blocking or bool(getattr(self.nonce_store, "blocking", True))

    def verify(self, request: Request, now: float) -> VerifiedSignature:
        """Verify ``request`` at ``now`` (epoch seconds). See :func:`verify_request`."""
        return _verify(request, now, self.cache.get, self.nonce_store, self.policy)

    async def verify_offloading(self, request: Request, now: float, offload: Offload) -> VerifiedSignature:
        """Verify ``request`` at ``now`` (epoch seconds) with only the blocking I/O passed to ``offload``.

        For event loops: parsing, the time and policy checks, the signature base
        and the Ed25519 verification run in the calling thread (they are CPU
        work, and a worker thread would not run them any sooner under the GIL);
        only a key lookup the cache cannot answer (:meth:`CachedRegistry.peek`)
        and recording the nonce in a store whose ``blocking`` is true go through
        ``offload(function, *args)``, e.g. ``asyncio.to_thread``; a blocking store
        with an ``add_async`` coroutine (:class:`~datafold_auth.nonce.NonceStore`)
        is awaited on the loop instead. The checks,
        their order and every outcome are those of :meth:`verify` (the nonce is
        recorded last there too, after every other check passed).

        A subclass that overrides :meth:`verify` (e.g. to read its own clock or
        log decisions) keeps it: its ``verify`` then runs whole through ``offload``.

        Raises:
            SignatureError, RegistryError, NonceStoreError: as :meth:`verify`.
        """
        if type(self).verify is not Verifier.verify:
            verified: VerifiedSignature = await offload(self.verify, request, now)
            return verified
        cache, store = self.cache, self.nonce_store
        deferred = _DeferredNonce() if getattr(store, "blocking", True) else None
        fetched: dict[str, KeyRecord | None] = {}

        def resolve(keyid: str, now: float) -> KeyRecord | None:
            if keyid in fetched:
                return fetched[keyid]
            hit, record = cache.peek(keyid, now)
            if hit:
                return record
            raise _NeedsLookup(keyid)

        while True:
            try:
                verified = _verify(request, now, resolve, store if deferred is None else deferred, self.policy)
                break
            except _NeedsLookup as miss:  # raised before anything was recorded: run again with the record
                fetched[miss.keyid] = await offload(cache.get, miss.keyid, now)
        if deferred is not None and deferred.entry is not None:
            add_async = getattr(store, "add_async", None)
            if add_async is not None:  # the store asks its backend on the loop itself (NonceStore.add_async)
                fresh = await add_async(*deferred.entry)
            else:
                fresh = await offload(store.add, *deferred.entry)
            if not fresh:
                raise _fail(R.REPLAYED_NONCE, _REPLAYED)
        return verified


__all__ = ["RegistryError", "VerifiedSignature", "Verifier", "verify_request"]
