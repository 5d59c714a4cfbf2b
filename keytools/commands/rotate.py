"""``keytools rotate URL``: replace the key by a new one at the server, with no gap in service.

The exchange is docs/protocol.md section 7.1: one request signed by the
current key and carrying a proof signature by the new key. The new key is
kept as ``<name>.next`` until the server has answered, so an interrupted
rotation is finished by running the command again; then it replaces the key
under ``<name>`` (with the same passphrase and store). The old key keeps
verifying at the server for its overlap (10 minutes by default), so requests
already signed with it still pass.
"""

from __future__ import annotations

import argparse

from datafold_auth import Signer
from datafold_auth.errors import KeyFormatError
from datafold_auth.jwk import key_fingerprint
from datafold_auth.keys import KeyMetadata, generate_private_key
from datafold_auth.message import Request
from datafold_auth.registration import rotation_request

from ..common import KeytoolsError, add_key_arguments, format_time, say, unlock_key, warn
from ..http import dumps, expect, send

NAME = "rotate"
HELP = "rotate the key at a server: a new key replaces it, the old one keeps working for the server's overlap"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: URL, --label, --timeout, --json and the key options."""
    parser.add_argument("url", help="the registration endpoint's keys URL, e.g. https://api.example/register/keys")
    parser.add_argument("--label", help="label of the new key (default: the current key's)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default 30)")
    parser.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    add_key_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Rotate; on success the new key is stored under ``--name`` and the old private key is replaced."""
    key, meta, store, passphrase = unlock_key(args)
    next_name = f"{args.name}.next"
    if store.exists(next_name):
        new_key = store.load(next_name, passphrase=passphrase)
        say(f"finishing the interrupted rotation to {store.metadata(next_name).keyid}")
    else:
        new_key = generate_private_key()
        store.save(
            next_name,
            new_key,
            KeyMetadata.for_key(next_name, new_key, label=meta.label, client_id=meta.client_id),
            passphrase=passphrase,
            allow_unencrypted=not meta.encrypted,
        )
    current, new = Signer(key), Signer(new_key)
    try:
        request = rotation_request(current, new, args.url, label=args.label)
    except (ValueError, KeyFormatError) as exc:
        raise KeytoolsError(str(exc)) from None
    response = send(request, timeout=args.timeout)
    if response.status_code == 409:
        # A rotation whose answer was lost: the server already has the new key, replacing this one.
        check = send(Request.from_url("GET", f"{args.url.rstrip('/')}/{new.keyid}"), timeout=args.timeout)
        if check.status_code != 200 or check.json().get("replaces") != current.keyid:
            expect(response, 201, what="rotation")
        doc = {"key": check.json(), "previous": None}
    else:
        doc = expect(response, 201, what="rotation")
    new_meta = KeyMetadata.for_key(args.name, new_key, label=args.label or meta.label, client_id=meta.client_id)
    new_meta.servers = list(meta.servers)
    new_meta.add_server(args.url)
    new_meta.server_status = {args.url: str(doc["key"].get("status", "active"))}
    store.save(
        args.name, new_key, new_meta, passphrase=passphrase, overwrite=True, allow_unencrypted=not meta.encrypted
    )
    store.delete(next_name)
    warn(f"the new key has no backup yet. Make one now: keytools backup json --name {args.name} --out FILE")
    if args.json:
        print(dumps(doc))
    else:
        previous = doc.get("previous") or {}
        print(f"rotated: {current.keyid} -> {new.keyid} (client {doc['key']['client_id']!r})")
        print(f"fingerprint: {key_fingerprint(new.keyid)}")
        if previous.get("overlap_until"):
            until = format_time(previous["overlap_until"])
            print(f"the old key verifies until {until} (the server's overlap; revoking the new key ends it)")
    return 0
