"""``keytools verify FILE SIG``: check a detached Ed25519 signature (exit status 3 if it does not verify)."""

from __future__ import annotations

import argparse
import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from datafold_auth.errors import KeyFormatError
from datafold_auth.jwk import b64url_decode, jwk_thumbprint
from datafold_auth.keys import read_public_key

from ..common import VerificationFailed, add_json_argument, add_name_argument, emit, find_key
from .import_key import read_input

NAME = "verify"
HELP = "verify a detached signature SIG of FILE with a stored key's public key (--name) or a public key file (--key)"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: FILE SIG, --name or --key, --json."""
    parser.add_argument("file", metavar="FILE", help="the signed file ('-' for stdin)")
    parser.add_argument("signature", metavar="SIG", help="the signature: 64 raw bytes or their base64")
    add_name_argument(parser)
    parser.add_argument(
        "--key", metavar="PUBFILE", help="a public key file (SPKI PEM/DER, JWK, ssh-ed25519 line, raw hex/base64url)"
    )
    add_json_argument(parser)


def read_signature(data: bytes, what: str) -> bytes:
    """64 raw bytes, or base64/base64url text of 64 bytes.

    Raises:
        KeyFormatError: anything else.
    """
    if len(data) == 64:
        return data
    text = data.strip()
    try:
        if b"-" in text or b"_" in text:
            raw = b64url_decode(text.decode("ascii"))
        else:
            raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise KeyFormatError(f"{what} is not an Ed25519 signature (64 bytes, raw or base64)") from None
    if len(raw) != 64:
        raise KeyFormatError(f"{what} holds {len(raw)} bytes; an Ed25519 signature is 64")
    return raw


def run(args: argparse.Namespace) -> int:
    """Print ``good signature`` and exit 0, or fail with exit status 3."""
    if args.key is not None:
        public, source = read_public_key(read_input(args.key), what=args.key)
    else:
        _store, meta = find_key(args)
        public, source = Ed25519PublicKey.from_public_bytes(b64url_decode(meta.public_key)), f"stored key {meta.name!r}"
    keyid = jwk_thumbprint(public)
    data = read_input(args.file)
    signature = read_signature(read_input(args.signature), args.signature)
    try:
        public.verify(signature, data)
    except InvalidSignature:
        raise VerificationFailed(
            f"BAD signature: {args.signature} is not a signature of {args.file} by {keyid}"
        ) from None
    emit(
        args,
        {"valid": True, "file": args.file, "signature_file": args.signature, "keyid": keyid, "key_source": source},
        [f"good signature: {args.file} signed by {keyid} ({source})"],
    )
    return 0
