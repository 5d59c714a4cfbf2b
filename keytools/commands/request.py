"""``keytools request METHOD URL``: a curl-like signed request."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import requests

from datafold_auth import Signer
from datafold_auth.client.requests import DatafoldAuth

from ..common import KeytoolsError, add_key_arguments, load_signing_key, printable
from ..http import unreachable

NAME = "request"
HELP = "send a signed HTTP request and print the status, headers and body"


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"a header is 'Name: value', not {text!r}")
    return name.strip(), value.strip()


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: METHOD URL, --data/--data-file, -H (repeatable), --timeout, --json and the key options."""
    parser.add_argument("method", type=str.upper, help="HTTP method, e.g. GET or POST")
    parser.add_argument("url", help="absolute http(s) URL")
    body = parser.add_mutually_exclusive_group()
    body.add_argument(
        "--data",
        "-d",
        help="request body (text, sent as UTF-8); Content-Type defaults to application/json when the body"
        " parses as JSON, else application/octet-stream (override with -H)",
    )
    body.add_argument("--data-file", type=Path, help="read the request body from this file ('-' for stdin)")
    parser.add_argument("-H", "--header", action="append", type=_header, default=[], help="extra header 'Name: value'")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default 30)")
    parser.add_argument("--json", action="store_true", help="print status, headers and body as one JSON object")
    add_key_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Sign and send; exit 0 for a 2xx answer, 1 otherwise (the answer is printed either way)."""
    if not args.url.startswith(("http://", "https://")):
        raise KeytoolsError(f"the URL must be absolute http:// or https://, not {args.url!r}")
    key, _meta, _store = load_signing_key(args)
    if args.data_file is not None:
        try:
            data = sys.stdin.buffer.read() if str(args.data_file) == "-" else args.data_file.read_bytes()
        except OSError as exc:
            raise KeytoolsError(f"cannot read {args.data_file}: {exc.strerror}") from None
    else:
        data = args.data.encode("utf-8") if args.data is not None else None
    headers = dict(args.header)
    if data and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json" if _looks_like_json(data) else "application/octet-stream"
    try:
        response = requests.request(
            args.method,
            args.url,
            data=data,
            headers=headers,
            auth=DatafoldAuth(Signer(key)),
            timeout=args.timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise unreachable(args.url, exc, args.timeout) from None
    if args.json:
        try:
            body: object = response.json()
        except ValueError:
            body = response.text
        print(json.dumps({"status": response.status_code, "headers": dict(response.headers), "body": body}, indent=2))
    else:
        print(printable(f"HTTP {response.status_code} {response.reason}"))  # the head is escaped, the body not
        for name, value in response.headers.items():
            print(printable(f"{name}: {value}"))
        print()
        print(response.text)
    return 0 if 200 <= response.status_code < 300 else 1


def _looks_like_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True
