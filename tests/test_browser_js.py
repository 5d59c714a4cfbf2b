"""browser/datafold-auth.js outside a browser: the pure logic run in node (v20 has Ed25519 in WebCrypto).

* the HTTP WG structured-field suite (RFC 8941 files; ``date`` and
  ``display-string`` are RFC 9651 types no DataFold field uses);
* the RFC vectors of ``../shared/vectors/rfc-vectors.json`` (B.2.6 signature,
  JWK thumbprints, Content-Digest);
* the DataFold signer against the Python :class:`~datafold_auth.Signer`, field by field;
* the module's shape: no imports (no runtime dependency, no build step) and a
  ``.d.ts`` that declares every export.

The same JavaScript runners are used in Chromium by tests/test_browser_page.py.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

import datafold_auth as df

from .conftest import ROOT, VECTORS

BROWSER = ROOT / "browser"
MODULE = BROWSER / "datafold-auth.js"
SUITE = VECTORS / "structured-field-tests"
SF_FILES = [
    "item", "list", "dictionary", "param-dict", "param-list", "param-listlist", "listlist",
    "string", "string-generated", "token", "token-generated", "number", "number-generated",
    "binary", "boolean", "key-generated", "large-generated", "examples",
]  # fmt: skip
SF_SERIALISATION_FILES = ["key-generated", "number", "string-generated", "token-generated"]
SF_SKIPPED = {
    "date": "RFC 9651 Date type; not used by any DataFold field",
    "display-string": "RFC 9651 Display String type; not used by any DataFold field",
}
NODE = shutil.which("node")

# --------------------------------------------------------------------------- shared JavaScript runners

SF_RUNNER = r"""
async function runSf(df, data) {
  const fromTagged = (v) => {
    if (v && typeof v === "object" && !Array.isArray(v) && "__type" in v) {
      if (v.__type === "token") return new df.Token(v.value);
      if (v.__type === "binary") return df.base64Decode(v.value);
      if (v.__type === "decimal") return new df.SfDecimal(v.value);
      throw new Error("unexpected type " + v.__type);
    }
    return v;
  };
  const params = (pairs) => new Map(pairs.map(([k, v]) => [k, fromTagged(v)]));
  const member = ([bare, p]) =>
    Array.isArray(bare) ? [bare.map(([b, q]) => [fromTagged(b), params(q)]), params(p)] : [fromTagged(bare), params(p)];
  const expected = (c) =>
    c.header_type === "dictionary" ? new Map(c.expected.map(([k, v]) => [k, member(v)]))
    : c.header_type === "list" ? c.expected.map(member) : member(c.expected);
  const tag = (v) => {
    if (v instanceof df.Token) return { t: v.value };
    if (v instanceof df.SfDecimal) return { d: v.value };
    if (v instanceof Uint8Array) return { b: df.base64Encode(v) };
    if (typeof v === "number" && !Number.isInteger(v)) return { d: v };
    return v;
  };
  const tagParams = (p) => Array.from(p.entries()).map(([k, v]) => [k, tag(v)]);
  const tagMember = (m) =>
    Array.isArray(m[0]) ? [m[0].map(([b, q]) => [tag(b), tagParams(q)]), tagParams(m[1])] : [tag(m[0]), tagParams(m[1])];
  const tagValue = (type, v) =>
    type === "dictionary" ? Array.from(v.entries()).map(([k, m]) => [k, tagMember(m)])
    : type === "list" ? v.map(tagMember) : tagMember(v);
  const serializers = { item: df.serializeItem, list: df.serializeList, dictionary: df.serializeDictionary };
  const results = [];
  for (const c of data.parse) {
    let ok = true, detail = "";
    try {
      const parsed = df.parseField(c.raw, c.header_type);
      if (c.must_fail) {
        ok = false; detail = "parsed, but must fail";
      } else {
        const got = JSON.stringify(tagValue(c.header_type, parsed));
        const want = JSON.stringify(tagValue(c.header_type, expected(c)));
        const canonical = (c.canonical ?? c.raw).join(", ");
        const out = serializers[c.header_type](parsed);
        if (got !== want) { ok = false; detail = `parsed ${got}, expected ${want}`; }
        else if (out !== canonical) { ok = false; detail = `serialized ${JSON.stringify(out)}, expected ${JSON.stringify(canonical)}`; }
      }
    } catch (e) {
      if (!(e instanceof df.StructuredFieldError)) { ok = false; detail = "unexpected error " + e; }
      else if (!c.must_fail && !c.can_fail) { ok = false; detail = "refused: " + e.message; }
    }
    results.push({ file: c.file, name: c.name, ok, detail });
  }
  for (const c of data.serialize) {
    let ok = true, detail = "";
    try {
      const out = serializers[c.header_type](expected(c));
      if (c.must_fail) { ok = false; detail = `serialized ${JSON.stringify(out)}, but must fail`; }
      else if (out !== (c.canonical ?? []).join(", ")) { ok = false; detail = `serialized ${JSON.stringify(out)}, expected ${JSON.stringify(c.canonical)}`; }
    } catch (e) {
      if (!(e instanceof df.StructuredFieldError)) { ok = false; detail = "unexpected error " + e; }
      else if (!c.must_fail) { ok = false; detail = "refused: " + e.message; }
    }
    results.push({ file: "serialisation-tests/" + c.file, name: c.name, ok, detail });
  }
  return results;
}
"""

RFC_RUNNER = r"""
async function runRfc(df, v) {
  const k = v.rfc9421_b14_test_key_ed25519;
  const jwk = { kty: "OKP", crv: "Ed25519", x: k.jwk.x, d: k.jwk.d };
  const priv = await crypto.subtle.importKey("jwk", jwk, { name: "Ed25519" }, false, ["sign"]);
  const b = v.rfc9421_b26_ed25519_signature;
  const [components, params] = df.parseDictionary(b.signature_input).get(b.label);
  const request = { method: b.request.method, url: b.request.target_uri, headers: b.request.headers, body: b.request.body };
  const signed = await df.signMessage(priv, request, { label: b.label, components, params });
  const t = v.rfc8037_a1_a3_jwk_thumbprint;
  const cd = v.rfc9530_content_digest;
  return {
    signature_input: signed.signatureInput,
    signature: signed.signature,
    signature_base: signed.signatureBase,
    thumbprint_b14: await df.jwkThumbprint(k.jwk),
    thumbprint_8037: await df.jwkThumbprint(t.jwk),
    keyid_of_cryptokey: await df.keyIdOf(await df.importPublicJwk(t.jwk)),
    sha256: await df.contentDigest(cd.body),
    sha512: await df.contentDigest(cd.body, ["sha-512"]),
  };
}
"""

SIGNER_RUNNER = r"""
async function runSigner(df, data) {
  const priv = await crypto.subtle.importKey("jwk", data.jwk, { name: "Ed25519" }, false, ["sign"]);
  const signer = await df.Signer.create(priv, { kty: "OKP", crv: "Ed25519", x: data.jwk.x });
  const out = [];
  for (const r of data.requests) {
    const signed = await signer.sign(
      { method: r.method, url: r.url, headers: r.headers, body: Uint8Array.from(atob(r.body_b64), (c) => c.charCodeAt(0)) },
      { now: data.now, nonce: data.nonce },
    );
    out.push({ headers: signed.headers, base: signed.signatureBase, keyid: signer.keyid });
  }
  return out;
}
"""

SIGNER_REQUESTS: list[tuple[str, str, list[tuple[str, str]], bytes]] = [
    ("POST", "https://api.example.com/v1/items?page=2", [("Content-Type", "application/json")], b'{"a":1}'),
    ("GET", "http://127.0.0.1:8000/api/hello", [], b""),
    ("GET", "https://example.com/a%20b/%C3%A9/x?q=%20y&z=%2F", [], b""),
    ("PUT", "http://example.com:8080/", [("Content-Type", " text/plain; charset=utf-8 ")], bytes(range(256))),
    ("DELETE", "http://[::1]:8000/x?", [], b""),
    ("PATCH", "https://example.com/items/7?a=1&a=2", [("content-type", "application/merge-patch+json")], b"{}"),
]


def _tag_expected(value: Any) -> Any:
    """The suite's JSON with floats tagged as decimals and binary as standard base64 (what the runner reads)."""
    if isinstance(value, dict) and value.get("__type") == "binary":
        return {"__type": "binary", "value": base64.b64encode(base64.b32decode(value["value"])).decode()}
    if isinstance(value, dict):
        return {k: _tag_expected(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tag_expected(v) for v in value]
    if isinstance(value, float):
        return {"__type": "decimal", "value": value}
    return value


def sf_suite_data() -> dict[str, list[dict[str, Any]]]:
    """Every parse and serialisation case of the RFC 8941 files, ready for :data:`SF_RUNNER`."""
    parse = []
    for name in SF_FILES:
        for case in json.loads((SUITE / f"{name}.json").read_text()):
            parse.append({**_tag_expected(case), "file": name})
    serialize = []
    for name in SF_SERIALISATION_FILES:
        for case in json.loads((SUITE / "serialisation-tests" / f"{name}.json").read_text()):
            serialize.append({**_tag_expected(case), "file": name})
    return {"parse": parse, "serialize": serialize}


def check_sf_results(results: list[dict[str, Any]], file: str) -> None:
    """Assert that every case of one suite file passed (and that the file had cases)."""
    mine = [r for r in results if r["file"] == file]
    assert mine, f"no cases from {file}"
    failed = [f"{r['name']}: {r['detail']}" for r in mine if not r["ok"]]
    assert not failed, f"{len(failed)} of {len(mine)} cases of {file} failed:\n" + "\n".join(failed[:20])


def signer_data(rfc_vectors: dict[str, Any]) -> dict[str, Any]:
    """The RFC 9421 test key, fixed created/nonce and :data:`SIGNER_REQUESTS`, for :data:`SIGNER_RUNNER`."""
    jwk = rfc_vectors["rfc9421_b14_test_key_ed25519"]["jwk"]
    return {
        "jwk": {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"], "d": jwk["d"]},
        "now": 1800000000,
        "nonce": "R3o5JlsK4cELCXjiOtXbZg",
        "requests": [
            {"method": m, "url": u, "headers": h, "body_b64": base64.b64encode(b).decode()}
            for m, u, h, b in SIGNER_REQUESTS
        ],
    }


def check_signer_results(results: list[dict[str, Any]], rfc_vectors: dict[str, Any]) -> None:
    """The JavaScript signer's fields and bases equal the Python signer's for every request."""
    key = load_pem_private_key(rfc_vectors["rfc9421_b14_test_key_ed25519"]["private_key_pem"].encode(), None)
    assert isinstance(key, Ed25519PrivateKey)
    signer = df.Signer(key)
    record = df.KeyRecord.for_public_key(key.public_key(), client_id="js")
    assert len(results) == len(SIGNER_REQUESTS)
    for (method, url, headers, body), got in zip(SIGNER_REQUESTS, results, strict=True):
        request = df.Request.from_url(method, url, headers, body)
        added = signer.sign(request, now=1800000000, nonce="R3o5JlsK4cELCXjiOtXbZg")
        assert [tuple(h) for h in got["headers"]] == added, url
        assert got["keyid"] == signer.keyid
        # and the Python verifier accepts the JavaScript signature
        sent = [*headers, *((name, value) for name, value in got["headers"])]
        verified = df.verify_request(
            df.Request.from_url(method, url, sent, body),
            now=1800000000,
            resolve_key=lambda _keyid: record,
            nonce_store=df.MemoryNonceStore(),
        )
        assert verified.keyid == signer.keyid


# --------------------------------------------------------------------------- node


def run_node(script: str, data: Any, tmp_path: Path) -> Any:
    """Run an ES module script in node with ``df`` (the browser module) and ``data`` in scope; return its JSON result."""
    if NODE is None:
        pytest.skip("node is not installed")
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps(data))
    program = (
        'import { readFileSync } from "node:fs";\n'
        'import { pathToFileURL } from "node:url";\n'
        "const df = await import(pathToFileURL(process.env.DF_MODULE).href);\n"
        "const data = JSON.parse(readFileSync(process.env.DF_DATA, 'utf8'));\n"
        f"{script}\n"
        "process.stdout.write(JSON.stringify(await main(df, data)));\n"
    )
    env = {**os.environ, "DF_MODULE": str(MODULE), "DF_DATA": str(data_file)}
    proc = subprocess.run(
        [NODE, "--input-type=module", "-e", program], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def node_sf_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    script = SF_RUNNER + "\nconst main = runSf;"
    return run_node(script, sf_suite_data(), tmp_path_factory.mktemp("sf"))  # type: ignore[no-any-return]


@pytest.mark.parametrize("file", SF_FILES + [f"serialisation-tests/{f}" for f in SF_SERIALISATION_FILES])
def test_structured_field_suite_in_node(node_sf_results: list[dict[str, Any]], file: str) -> None:
    check_sf_results(node_sf_results, file)


@pytest.mark.parametrize("file", sorted(SF_SKIPPED))
def test_rfc9651_only_files_are_skipped(file: str) -> None:
    assert (SUITE / f"{file}.json").exists()
    pytest.skip(SF_SKIPPED[file])


def test_rfc_vectors_in_node(rfc_vectors: dict[str, Any], tmp_path: Path) -> None:
    got = run_node(RFC_RUNNER + "\nconst main = runRfc;", rfc_vectors, tmp_path)
    check_rfc_results(got, rfc_vectors)


def check_rfc_results(got: dict[str, Any], rfc_vectors: dict[str, Any]) -> None:
    """RFC 9421 B.2.6 byte for byte, the RFC 7638 thumbprints and the RFC 9530 digests."""
    b26 = rfc_vectors["rfc9421_b26_ed25519_signature"]
    assert got["signature_input"] == b26["signature_input"]
    assert got["signature_base"] == b26["signature_base"]
    assert got["signature"] == b26["signature"]
    assert got["thumbprint_b14"] == rfc_vectors["rfc9421_b14_test_key_ed25519"]["jwk_thumbprint_sha256"]
    thumb = rfc_vectors["rfc8037_a1_a3_jwk_thumbprint"]["jwk_thumbprint_sha256"]
    assert got["thumbprint_8037"] == got["keyid_of_cryptokey"] == thumb
    digests = rfc_vectors["rfc9530_content_digest"]
    assert got["sha256"] == digests["sha-256"]
    assert got["sha512"] == digests["sha-512"]


def test_signer_matches_python_in_node(rfc_vectors: dict[str, Any], tmp_path: Path) -> None:
    got = run_node(SIGNER_RUNNER + "\nconst main = runSigner;", signer_data(rfc_vectors), tmp_path)
    check_signer_results(got, rfc_vectors)


def test_protocol_doc_example_in_node(rfc_vectors: dict[str, Any], tmp_path: Path) -> None:
    """docs/protocol.md's worked example, produced by the browser signer."""
    data = signer_data(rfc_vectors)
    data["requests"] = data["requests"][:1]
    got = run_node(SIGNER_RUNNER + "\nconst main = runSigner;", data, tmp_path)[0]
    doc = (ROOT / "docs" / "protocol.md").read_text()
    assert "".join(f"{k}: {v}\n" for k, v in got["headers"]) in doc
    assert got["base"] + "\n" in doc


def test_module_is_dependency_free() -> None:
    source = MODULE.read_text()
    assert not re.search(r"^\s*import\s", source, re.M), "datafold-auth.js must not import anything"
    assert not re.search(r"(?<![#\w.])(require|import)\(", source), "no require() or dynamic import()"
    assert json.loads((BROWSER / "package.json").read_text())["type"] == "module"


def test_declarations_cover_every_export(tmp_path: Path) -> None:
    exported = set(run_node("const main = async (df) => Object.keys(df);", None, tmp_path))
    declared = set(
        re.findall(r"^export (?:const|function|class) (\w+)", (BROWSER / "datafold-auth.d.ts").read_text(), re.M)
    )
    assert exported == declared


def test_missing_ed25519_is_a_clear_error(tmp_path: Path) -> None:
    script = """
const main = async (df) => {
  const real = crypto.subtle.generateKey.bind(crypto.subtle);
  crypto.subtle.generateKey = async (alg, ...rest) => {
    if ((alg.name || alg) === "Ed25519") throw new DOMException("Unrecognized name.", "NotSupportedError");
    return real(alg, ...rest);
  };
  try { await df.generateKeyPair(); return null; } catch (e) { return { name: e.name, reason: e.reason, message: e.message }; }
};"""
    got = run_node(script, None, tmp_path)
    assert got["name"] == "DatafoldAuthError" and got["reason"] == "unsupported_browser"
    assert "no Ed25519 in WebCrypto" in got["message"]


def test_register_names_the_refused_scopes(tmp_path: Path) -> None:
    """A ``403 scope_not_allowed`` answer (the server's own bytes) is thrown with the refused scopes."""
    from datafold_auth.registration import RegistrationService, ScopeNotAllowed

    service = RegistrationService(df.MemoryRegistry(), df.MemoryNonceStore())
    status, headers, body = service.refuse(ScopeNotAllowed(["read:itme", "Admin"]))
    script = """
const main = async (df, data) => {
  const pair = await df.generateKeyPair();
  const answer = (body) => async () => new Response(body, { status: data.status, headers: data.headers });
  const refused = async (body) => {
    const signer = await df.Signer.create(pair.privateKey, pair.publicKey, { fetch: answer(body) });
    try { await df.register(signer, "http://127.0.0.1:1/register/keys", { scopes: ["read:itme", "Admin"] }); }
    catch (e) { return { reason: e.reason, status: e.status, message: e.message, problem: e.problem }; }
  };
  const plain = JSON.parse(data.body);
  delete plain.refused_scopes;
  const hostile = JSON.parse(data.body);  // a server's own text: only scope-shaped strings reach the message
  hostile.refused_scopes = ["ok", "\u001b[31mred", "a b", 7, "x".repeat(129), ...Array(70).fill("many")];
  return {
    named: await refused(data.body),
    plain: await refused(JSON.stringify(plain)),
    hostile: await refused(JSON.stringify(hostile)),
  };
};"""
    data = {"status": status, "headers": dict(headers), "body": body.decode()}
    got = run_node(script, data, tmp_path)
    named, plain = got["named"], got["plain"]
    assert (named["reason"], named["status"]) == ("scope_not_allowed", 403)
    assert named["message"] == (
        "registration refused: 403 scope_not_allowed: A requested scope may not be self-assigned."
        " (refused scopes: read:itme, Admin)"
    )
    assert named["problem"]["refused_scopes"] == ["read:itme", "Admin"]
    assert (
        plain["message"] == "registration refused: 403 scope_not_allowed: A requested scope may not be self-assigned."
    )
    shown = got["hostile"]["message"].split(" (refused scopes: ")[1].rstrip(")").split(", ")
    assert shown == ["ok"] + ["many"] * 59  # the first 64 entries, scope-tokens only
