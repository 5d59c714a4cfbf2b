"""Signing requests (RFC 9421 section 3.1) with Ed25519 per the DataFold profile."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterable, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import profile, sf
from .digest import ALGORITHMS as DIGEST_ALGORITHMS
from .digest import content_digest
from .jwk import jwk_thumbprint
from .message import Request
from .signature_base import Component, Plan, plan, planned_signature_base, serialize_component_id, signature_base

_SHAPES: dict[tuple[str, ...], tuple[str, Plan | None]] = {}
"""Per list of covered component names (the profile's, with or without ``content-digest`` and
its optional fields): the serialized Inner List and the signature base plan."""


def serialize_signature_params(components: Sequence[Component], params: dict[str, object]) -> str:
    """The ``@signature-params`` value: the covered components as an Inner List with
    the signature parameters (RFC 9421 section 2.3), e.g.
    ``("@method" "@path");created=1618884473;keyid="k"``.

    Raises:
        StructuredFieldError: a name or parameter has no valid serialization.
    """
    return sf.serialize_inner_list(([(name, p) for name, p in components], params))


def sign_message(
    request: Request,
    private_key: Ed25519PrivateKey,
    *,
    label: str,
    components: Sequence[Component],
    params: dict[str, object],
) -> tuple[str, str]:
    """Sign the given components of ``request`` with exactly the given parameters.

    This is the low-level operation (any components, any parameters); the
    :class:`Signer` applies the DataFold profile on top of it.

    Args:
        request: the request parts.
        private_key: the Ed25519 private key.
        label: the signature label, e.g. ``"sig1"``.
        components: covered components in order, e.g. ``[("@method", {}), ("date", {})]``.
        params: signature parameters in order, e.g. ``{"created": 1618884473, "keyid": "k"}``.

    Returns:
        ``(signature_input, signature)``: the member values for the
        ``Signature-Input`` and ``Signature`` fields, each ``label=...``.

    Raises:
        SignatureError: a covered component is missing or unsupported.
    """
    signature_params = serialize_signature_params(components, params)
    base = signature_base(request, components, signature_params)
    signature = private_key.sign(base)
    label = sf.serialize_key(label)
    return f"{label}={signature_params}", f"{label}=:{base64.b64encode(signature).decode('ascii')}:"


def new_nonce() -> str:
    """A fresh nonce: 16 bytes from the OS CSPRNG, base64url (22 characters)."""
    return secrets.token_urlsafe(16)


class Signer:
    """Signs requests per the DataFold profile (docs/protocol.md).

    One signer serves every adapter (requests, httpx, keytools, tests).

    Args:
        private_key: the client's Ed25519 private key. It stays inside this
            object; ``repr`` shows only the keyid.
        label: signature label (default ``df``).
        tag: ``tag`` parameter (default ``datafold``).
        expires_in: seconds from ``created`` to ``expires``; ``None`` omits
            ``expires`` (default 300).
        digest_algorithms: Content-Digest algorithms (default ``("sha-256",)``).

    Raises:
        TypeError, ValueError: an argument has the wrong type or value.
        StructuredFieldError: ``label`` or ``tag`` cannot be serialized.
    """

    __slots__ = ("_key", "_tail", "digest_algorithms", "expires_in", "keyid", "label", "tag")

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        *,
        label: str = profile.LABEL,
        tag: str | None = profile.TAG,
        expires_in: int | None = 300,
        digest_algorithms: Iterable[str] = ("sha-256",),
    ) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError("Signer needs an Ed25519PrivateKey")
        if tag is not None and not isinstance(tag, str):
            raise TypeError("tag must be a string or None")
        if expires_in is not None:
            if isinstance(expires_in, bool) or not isinstance(expires_in, int):
                raise TypeError("expires_in must be whole seconds or None")
            if expires_in <= 0:
                raise ValueError("expires_in must be positive (or None to send no expires)")
        if isinstance(digest_algorithms, str | bytes):
            raise TypeError('digest_algorithms is a sequence of names, e.g. ("sha-256",)')
        algorithms = tuple(digest_algorithms)
        if not algorithms or any(name not in DIGEST_ALGORITHMS for name in algorithms):
            raise ValueError(f"digest_algorithms must be one or more of {', '.join(DIGEST_ALGORITHMS)}")
        self._key = private_key
        self.keyid: str = jwk_thumbprint(private_key)
        self.label = sf.serialize_key(label)
        self.tag = tag
        self.expires_in = expires_in
        self.digest_algorithms = algorithms
        tail = f";keyid={sf.serialize_bare_item(self.keyid)};alg={sf.serialize_bare_item(profile.ALGORITHM)}"
        if tag is not None:
            tail += f";tag={sf.serialize_bare_item(tag)}"
        self._tail = tail

    @staticmethod
    def _shape(names: tuple[str, ...]) -> tuple[str, Plan | None]:
        """The Inner List text ``("@method" ...)`` of ``names`` and their :func:`plan` (cached per list)."""
        shape = _SHAPES.get(names)
        if shape is None:
            covered = "(" + " ".join(serialize_component_id((name, {})) for name in names) + ")"
            shape = _SHAPES[names] = (covered, plan(names))  # a few lists at most: the profile's names
        return shape

    @staticmethod
    def _nonce_text(nonce: str | None) -> str:
        if nonce is None:
            return '"' + new_nonce() + '"'
        return sf.serialize_bare_item(nonce)

    def __repr__(self) -> str:
        return f"Signer(keyid={self.keyid!r})"

    def relabeled(self, *, label: str, tag: str | None) -> Signer:
        """A signer of the same key with another label and tag (a rotation proof: docs/protocol.md 7.1).

        Raises:
            StructuredFieldError: ``label`` or ``tag`` cannot be serialized.
        """
        return Signer(
            self._key, label=label, tag=tag, expires_in=self.expires_in, digest_algorithms=self.digest_algorithms
        )

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public key matching the private key held by this signer."""
        return self._key.public_key()

    def sign(self, request: Request, *, now: float | None = None, nonce: str | None = None) -> list[tuple[str, str]]:
        """Sign ``request`` in place and return the field lines that were added.

        Adds ``Content-Digest`` (when the request has content; replacing any
        existing one), ``Signature-Input`` and ``Signature``.

        Args:
            request: the request parts; ``headers`` is extended.
            now: ``created`` in epoch seconds (default: the clock).
            nonce: the nonce (default: :func:`new_nonce`). Never reuse one.

        Returns:
            ``[(name, value), ...]`` for the added fields.
        """
        created = int(time.time() if now is None else now)
        added: list[tuple[str, str]] = []
        names = profile.BASE_COMPONENTS
        if request.body:
            if request.field_values("content-digest") is not None:
                request.headers = [(k, v) for k, v in request.headers if k.lower() != "content-digest"]
                request._index = None
            digest = content_digest(request.body, self.digest_algorithms)
            request.add_header("Content-Digest", digest)
            added.append(("Content-Digest", digest))
            names += ("content-digest",)
        for name in profile.OPTIONAL_FIELDS:
            if request.field_values(name) is not None:
                names += (name,)
        covered, steps = self._shape(names)
        # The parameters are written directly (all values are integers or
        # strings already known to be valid sf-strings); this equals
        # serialize_signature_params() and is checked against it in tests.
        parts = [covered, ";created=", str(created)]
        if self.expires_in is not None:
            parts += [";expires=", str(created + self.expires_in)]
        parts += [";nonce=", self._nonce_text(nonce), self._tail]
        signature_params = "".join(parts)
        if steps is not None:
            base = planned_signature_base(request, steps, signature_params)
        else:  # pragma: no cover - the profile's names always have a plan
            base = signature_base(request, [(name, {}) for name in names], signature_params)
        signature = self._key.sign(base)
        signature_input = f"{self.label}={signature_params}"
        signature_value = f"{self.label}=:{base64.b64encode(signature).decode('ascii')}:"
        for name, value in (("Signature-Input", signature_input), ("Signature", signature_value)):
            request.add_header(name, value)
            added.append((name, value))
        return added

    def sign_parts(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        now: float | None = None,
        nonce: str | None = None,
    ) -> list[tuple[str, str]]:
        """Sign a request given as method, absolute URL, field lines and body.

        Returns:
            the field lines to add (see :meth:`sign`).
        """
        return self.sign(Request.from_url(method, url, headers, body), now=now, nonce=nonce)


__all__ = ["Signer", "new_nonce", "serialize_signature_params", "sign_message"]
