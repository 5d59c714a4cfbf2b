// @ts-check
/**
 * datafold-auth for browsers: Ed25519 keys made and kept by WebCrypto, stored in
 * IndexedDB, backed up in the formats of docs/formats.md, and RFC 9421 signed
 * requests that the datafold-auth Python middleware accepts (docs/protocol.md).
 *
 * One ES module, no build step and no dependency: WebCrypto (`crypto.subtle`)
 * does every cryptographic operation; this file holds only the container
 * formats (RFC 8941 structured fields, the signature base, DER and the backup
 * envelopes). Documentation: docs/browser.md. Types: datafold-auth.d.ts.
 *
 * @module datafold-auth
 */

export const VERSION = "0.1.0";
/** Signature label (RFC 9421 section 4.1). */
export const LABEL = "df";
/** The `tag` signature parameter of the DataFold profile. */
export const TAG = "datafold";
/** The `alg` signature parameter. */
export const ALGORITHM = "ed25519";
/** Components covered on every request, in the order signers send them. */
export const BASE_COMPONENTS = Object.freeze(["@method", "@authority", "@path", "@query"]);
/** PBKDF2-HMAC-SHA256 iterations used when writing backups and wrapping stored keys (as keytools). */
export const PBKDF2_ITERATIONS = 600000;
/** Iteration counts a reader accepts (as the Python reader): a hostile file cannot make it spin forever. */
export const PBKDF2_MIN_ITERATIONS = 1000;
export const PBKDF2_MAX_ITERATIONS = 10000000;

const ED25519 = { name: "Ed25519" };

// ------------------------------------------------------------------ errors

/**
 * Every error this module throws. `reason` is a short code: the server's
 * reason for refused requests (docs/troubleshooting.md, e.g. `digest_mismatch`),
 * or one of the client-side codes listed in docs/browser.md
 * (`unsupported_browser`, `wrong_passphrase`, `key_locked`, ...).
 */
export class DatafoldAuthError extends Error {
  /**
   * @param {string} reason
   * @param {string} message
   * @param {{status?: number, problem?: Problem | null, cause?: unknown, retryAfter?: number}} [options]
   */
  constructor(reason, message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DatafoldAuthError";
    /** @type {string} */
    this.reason = reason;
    /** @type {number | undefined} HTTP status, for answers of a server */
    this.status = options.status;
    /** @type {Problem | null} the RFC 9457 problem document, for answers of a server */
    this.problem = options.problem ?? null;
    /** @type {number | undefined} seconds to wait before signing again (`Retry-After` of a 429 `rate_limited` or 503) */
    this.retryAfter = options.retryAfter;
  }
}

/** A structured field value that cannot be parsed or serialized (RFC 8941). */
export class StructuredFieldError extends DatafoldAuthError {
  /** @param {string} message */
  constructor(message) {
    super("structured_field", message);
    this.name = "StructuredFieldError";
  }
}

// ------------------------------------------------------------------ feature detection

/** @type {Promise<void> | null} */
let ed25519Check = null;

function subtle() {
  const c = globalThis.crypto;
  if (!c || !c.subtle) {
    const secure = globalThis.isSecureContext === false ? " The page is not a secure context: serve it over https:// (or from http://localhost)." : "";
    throw new DatafoldAuthError("unsupported_browser", "WebCrypto (crypto.subtle) is not available." + secure);
  }
  return c.subtle;
}

/**
 * Check that this browser can do what the module needs; throws a
 * {@link DatafoldAuthError} with reason `unsupported_browser` and a sentence
 * saying what is missing. Ed25519 in WebCrypto shipped in Firefox 129,
 * Safari 17 and Chrome/Edge 137 (earlier Chromes behind a flag).
 *
 * @returns {Promise<{ed25519: true, indexedDB: boolean, secureContext: boolean}>}
 */
export async function checkSupport() {
  await requireEd25519();
  return {
    ed25519: true,
    indexedDB: typeof globalThis.indexedDB !== "undefined" && globalThis.indexedDB !== null,
    secureContext: globalThis.isSecureContext !== false,
  };
}

/** @returns {Promise<void>} */
function requireEd25519() {
  if (!ed25519Check) {
    ed25519Check = (async () => {
      const s = subtle();
      try {
        await s.generateKey(ED25519, false, ["sign", "verify"]);
      } catch (error) {
        ed25519Check = null;
        throw new DatafoldAuthError(
          "unsupported_browser",
          "This browser has no Ed25519 in WebCrypto, so it cannot make or use DataFold keys." +
            " Use a current browser (Chrome or Edge 137+, Firefox 129+, Safari 17+).",
          { cause: error },
        );
      }
    })();
  }
  return ed25519Check;
}

// ------------------------------------------------------------------ bytes and text

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * @param {string} text
 * @returns {Uint8Array}
 */
export function utf8(text) {
  return encoder.encode(text);
}

/**
 * Bytes of a string (UTF-8), an ArrayBuffer or a view, as a Uint8Array (no copy for a Uint8Array).
 * @param {string | ArrayBuffer | ArrayBufferView | null | undefined} data
 * @returns {Uint8Array}
 */
export function toBytes(data) {
  if (data === null || data === undefined) return new Uint8Array(0);
  if (typeof data === "string") return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("expected a string, an ArrayBuffer or a typed array");
}

/** @param {...Uint8Array} parts */
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Overwrite bytes with zeros (best effort: JavaScript cannot wipe strings or copies the engine made).
 * @param {...(Uint8Array | ArrayBuffer | null | undefined)} buffers
 */
function wipe(...buffers) {
  for (const b of buffers) {
    if (b) (b instanceof ArrayBuffer ? new Uint8Array(b) : b).fill(0);
  }
}

/** @param {number} size */
function randomBytes(size) {
  return globalThis.crypto.getRandomValues(new Uint8Array(size));
}

/**
 * Standard base64 with padding.
 * @param {Uint8Array | ArrayBuffer} data
 */
export function base64Encode(data) {
  const bytes = toBytes(data);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, Array.from(bytes.subarray(i, i + 0x8000)));
  }
  return btoa(text);
}

/**
 * Standard base64 (padding optional, no white space).
 * @param {string} text
 * @returns {Uint8Array}
 */
export function base64Decode(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new DatafoldAuthError("invalid_encoding", "not base64");
  let binary;
  try {
    binary = atob(text);
  } catch {
    throw new DatafoldAuthError("invalid_encoding", "not base64");
  }
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * Unpadded base64url (RFC 7515 appendix C), as JWK members and keyids use.
 * @param {Uint8Array | ArrayBuffer} data
 */
export function base64urlEncode(data) {
  return base64Encode(data).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Strict unpadded base64url: refuses padding, other alphabets and non-canonical trailing bits.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function base64urlDecode(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new DatafoldAuthError("invalid_encoding", "not unpadded base64url");
  }
  const bytes = base64Decode(text.replace(/-/g, "+").replace(/_/g, "/"));
  if (base64urlEncode(bytes) !== text) throw new DatafoldAuthError("invalid_encoding", "not canonical base64url");
  return bytes;
}

/** @param {Uint8Array} bytes */
function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ------------------------------------------------------------------ RFC 8941 structured fields

/** An RFC 8941 Token (distinct from a String). */
export class Token {
  /** @param {string} value */
  constructor(value) {
    this.value = String(value);
  }
  toString() {
    return this.value;
  }
}

/** An RFC 8941 Decimal, for values that must serialize as decimals even when integral (`1.0`). */
export class SfDecimal {
  /** @param {number} value */
  constructor(value) {
    this.value = Number(value);
  }
  valueOf() {
    return this.value;
  }
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z:/]$/;
const KEY_RE = /^[a-z*][a-z0-9_\-.*]*$/;
const TOKEN_RE = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$/;

class SfParser {
  /** @param {string} text */
  constructor(text) {
    this.s = text;
    this.i = 0;
  }
  get done() {
    return this.i >= this.s.length;
  }
  peek() {
    return this.s[this.i];
  }
  /** @param {string} message @returns {never} */
  fail(message) {
    throw new StructuredFieldError(`${message} at position ${this.i}`);
  }
  skipSP() {
    while (this.s[this.i] === " ") this.i++;
  }
  skipOWS() {
    while (this.s[this.i] === " " || this.s[this.i] === "\t") this.i++;
  }
  list() {
    /** @type {SfMember[]} */
    const members = [];
    while (!this.done) {
      members.push(this.itemOrInnerList());
      this.skipOWS();
      if (this.done) return members;
      if (this.s[this.i++] !== ",") this.fail("expected ',' in list");
      this.skipOWS();
      if (this.done) this.fail("trailing ',' in list");
    }
    return members;
  }
  dictionary() {
    /** @type {Map<string, SfMember>} */
    const dict = new Map();
    while (!this.done) {
      const key = this.key();
      if (this.peek() === "=") {
        this.i++;
        dict.set(key, this.itemOrInnerList());
      } else {
        dict.set(key, [true, this.parameters()]);
      }
      this.skipOWS();
      if (this.done) return dict;
      if (this.s[this.i++] !== ",") this.fail("expected ',' in dictionary");
      this.skipOWS();
      if (this.done) this.fail("trailing ',' in dictionary");
    }
    return dict;
  }
  /** @returns {SfMember} */
  itemOrInnerList() {
    return this.peek() === "(" ? this.innerList() : this.item();
  }
  /** @returns {SfInnerList} */
  innerList() {
    this.i++;
    /** @type {SfItem[]} */
    const items = [];
    while (!this.done) {
      this.skipSP();
      if (this.peek() === ")") {
        this.i++;
        return [items, this.parameters()];
      }
      items.push(this.item());
      const c = this.peek();
      if (c !== " " && c !== ")") this.fail("expected ' ' or ')' in inner list");
    }
    return this.fail("inner list without ')'");
  }
  /** @returns {SfItem} */
  item() {
    const bare = this.bareItem();
    return [bare, this.parameters()];
  }
  parameters() {
    /** @type {Map<string, SfBareItem>} */
    const params = new Map();
    while (this.peek() === ";") {
      this.i++;
      this.skipSP();
      const key = this.key();
      /** @type {SfBareItem} */
      let value = true;
      if (this.peek() === "=") {
        this.i++;
        value = this.bareItem();
      }
      params.set(key, value);
    }
    return params;
  }
  key() {
    const c = this.peek();
    if (c === undefined || !/[a-z*]/.test(c)) this.fail("a key must start with a lowercase letter or '*'");
    const start = this.i;
    while (!this.done && /[a-z0-9_\-.*]/.test(this.s[this.i])) this.i++;
    return this.s.slice(start, this.i);
  }
  /** @returns {SfBareItem} */
  bareItem() {
    const c = this.peek();
    if (c === undefined) return this.fail("empty item");
    if (c === "-" || (c >= "0" && c <= "9")) return this.number();
    if (c === '"') return this.string();
    if (c === "*" || /[A-Za-z]/.test(c)) return this.token();
    if (c === ":") return this.binary();
    if (c === "?") return this.boolean();
    return this.fail(`unexpected character ${JSON.stringify(c)}`);
  }
  number() {
    let sign = 1;
    let decimal = false;
    let digits = "";
    if (this.peek() === "-") {
      this.i++;
      sign = -1;
    }
    const first = this.peek();
    if (first === undefined || first < "0" || first > "9") this.fail("expected a digit");
    while (!this.done) {
      const c = this.s[this.i];
      if (c >= "0" && c <= "9") {
        digits += c;
        this.i++;
      } else if (!decimal && c === ".") {
        if (digits.length > 12) this.fail("too many integer digits in a decimal");
        digits += c;
        decimal = true;
        this.i++;
      } else {
        break;
      }
      if (!decimal && digits.length > 15) this.fail("integer too long");
      if (decimal && digits.length > 16) this.fail("decimal too long");
    }
    if (!decimal) return sign * Number(digits);
    if (digits.endsWith(".")) this.fail("decimal without fractional digits");
    if (digits.length - digits.indexOf(".") - 1 > 3) this.fail("more than 3 fractional digits");
    return new SfDecimal(sign * Number(digits));
  }
  string() {
    this.i++;
    let out = "";
    while (!this.done) {
      const c = this.s[this.i++];
      if (c === "\\") {
        if (this.done) this.fail("string ends after '\\'");
        const next = this.s[this.i++];
        if (next !== '"' && next !== "\\") this.fail("bad escape in string");
        out += next;
      } else if (c === '"') {
        return out;
      } else {
        const code = c.charCodeAt(0);
        if (code < 0x20 || code > 0x7e) this.fail("character not allowed in a string");
        out += c;
      }
    }
    return this.fail("string without closing '\"'");
  }
  token() {
    const start = this.i++;
    while (!this.done && TCHAR.test(this.s[this.i])) this.i++;
    return new Token(this.s.slice(start, this.i));
  }
  binary() {
    this.i++;
    const end = this.s.indexOf(":", this.i);
    if (end < 0) this.fail("byte sequence without closing ':'");
    const content = this.s.slice(this.i, end);
    this.i = end + 1;
    if (!/^[A-Za-z0-9+/=]*$/.test(content)) this.fail("not base64 in byte sequence");
    let binary;
    try {
      binary = atob(content);
    } catch {
      return this.fail("not base64 in byte sequence");
    }
    const out = new Uint8Array(binary.length);
    for (let k = 0; k < binary.length; k++) out[k] = binary.charCodeAt(k);
    return out;
  }
  boolean() {
    this.i++;
    const c = this.s[this.i++];
    if (c === "1") return true;
    if (c === "0") return false;
    return this.fail("a boolean is ?1 or ?0");
  }
}

/**
 * @param {string} text
 * @param {(p: SfParser) => T} parse
 * @template T
 */
function parseWhole(text, parse) {
  if (typeof text !== "string") throw new StructuredFieldError("a field value must be a string");
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(text)) throw new StructuredFieldError("a structured field is ASCII");
  const parser = new SfParser(text);
  parser.skipSP();
  const value = parse(parser);
  parser.skipSP();
  if (!parser.done) parser.fail("unexpected characters after the value");
  return value;
}

/**
 * Parse an RFC 8941 List: an array of Items (`[bare, params]`) and Inner Lists (`[[items], params]`).
 * @param {string} text
 * @returns {SfMember[]}
 */
export function parseList(text) {
  return parseWhole(text, (p) => p.list());
}

/**
 * Parse an RFC 8941 Dictionary into a Map (order kept; a repeated key keeps its first position and last value).
 * @param {string} text
 * @returns {Map<string, SfMember>}
 */
export function parseDictionary(text) {
  return parseWhole(text, (p) => p.dictionary());
}

/**
 * Parse an RFC 8941 Item: `[bareItem, Map params]`.
 * @param {string} text
 * @returns {SfItem}
 */
export function parseItem(text) {
  return parseWhole(text, (p) => p.item());
}

/**
 * Parse a field value of the given structured type; several field lines are joined with ", " first.
 * @param {string | string[]} value
 * @param {"item" | "list" | "dictionary"} type
 */
export function parseField(value, type) {
  const text = Array.isArray(value) ? value.join(", ") : value;
  if (type === "item") return parseItem(text);
  if (type === "list") return parseList(text);
  if (type === "dictionary") return parseDictionary(text);
  throw new TypeError(`unknown structured field type ${type}`);
}

/**
 * @param {SfParams | undefined} params
 * @returns {[string, SfBareItem][]}
 */
function paramEntries(params) {
  if (!params) return [];
  if (params instanceof Map) return Array.from(params.entries());
  if (Array.isArray(params)) return /** @type {[string, SfBareItem][]} */ (params);
  return Object.entries(params);
}

/**
 * Serialize a Key (lowercase letters, digits, `_-.*`; starting with a letter or `*`).
 * @param {string} key
 */
export function serializeKey(key) {
  if (typeof key !== "string" || !KEY_RE.test(key)) throw new StructuredFieldError(`invalid key ${JSON.stringify(key)}`);
  return key;
}

/** @param {number} value */
function serializeDecimal(value) {
  if (!Number.isFinite(value)) throw new StructuredFieldError("a decimal must be finite");
  const negative = value < 0;
  const magnitude = Math.abs(value);
  let text = magnitude < 1e-6 ? "0.0" : String(magnitude);
  if (text.includes("e")) throw new StructuredFieldError("decimal out of range");
  let [whole, fraction = ""] = text.split(".");
  if (fraction.length > 3) {
    // round half to even at 3 fractional digits, on the shortest decimal text of the number
    const kept = fraction.slice(0, 3);
    const rest = fraction.slice(3);
    let up = rest[0] > "5" || (rest[0] === "5" && /[1-9]/.test(rest.slice(1)));
    if (rest[0] === "5" && !/[1-9]/.test(rest.slice(1))) up = Number(kept[2]) % 2 === 1;
    let scaled = BigInt(whole + kept);
    if (up) scaled += 1n;
    const digits = scaled.toString().padStart(4, "0");
    whole = digits.slice(0, -3);
    fraction = digits.slice(-3);
  }
  fraction = fraction.replace(/0+$/, "") || "0";
  if (whole.length > 12) throw new StructuredFieldError("decimal has more than 12 integer digits");
  return `${negative ? "-" : ""}${whole}.${fraction}`;
}

/**
 * Serialize a Bare Item: integer (number), decimal ({@link SfDecimal} or a non-integral number),
 * string, {@link Token}, byte sequence (Uint8Array/ArrayBuffer) or boolean.
 * @param {SfBareItem} value
 */
export function serializeBareItem(value) {
  if (typeof value === "boolean") return value ? "?1" : "?0";
  if (value instanceof SfDecimal) return serializeDecimal(value.value);
  if (typeof value === "number") {
    if (!Number.isInteger(value)) return serializeDecimal(value);
    if (Math.abs(value) > 999999999999999) throw new StructuredFieldError("integer out of range");
    return String(value === 0 ? 0 : value);
  }
  if (typeof value === "string") {
    // eslint-disable-next-line no-control-regex
    if (/[^\x20-\x7e]/.test(value)) throw new StructuredFieldError("a string holds printable ASCII only");
    return '"' + value.replace(/[\\"]/g, (c) => "\\" + c) + '"';
  }
  if (value instanceof Token) {
    if (!TOKEN_RE.test(value.value)) throw new StructuredFieldError(`invalid token ${JSON.stringify(value.value)}`);
    return value.value;
  }
  const other = /** @type {unknown} */ (value);
  if (other instanceof Uint8Array || other instanceof ArrayBuffer) return ":" + base64Encode(other) + ":";
  throw new StructuredFieldError(`cannot serialize ${Object.prototype.toString.call(other)} as a bare item`);
}

/**
 * Serialize parameters (`;key=value`, `;flag` for true).
 * @param {SfParams | undefined} params
 */
export function serializeParams(params) {
  return paramEntries(params)
    .map(([k, v]) => ";" + serializeKey(k) + (v === true ? "" : "=" + serializeBareItem(v)))
    .join("");
}

/**
 * Serialize an Item given as `[bare, params]` (params: Map, object or array of pairs).
 * @param {SfItem} item
 */
export function serializeItem(item) {
  return serializeBareItem(item[0]) + serializeParams(item[1]);
}

/**
 * Serialize an Inner List `[[items...], params]`, e.g. `("@method" "@path");created=1`.
 * @param {SfInnerList} innerList
 */
export function serializeInnerList(innerList) {
  return "(" + innerList[0].map(serializeItem).join(" ") + ")" + serializeParams(innerList[1]);
}

/** @param {SfMember} member */
function serializeMember(member) {
  return Array.isArray(member[0]) ? serializeInnerList(/** @type {SfInnerList} */ (member)) : serializeItem(/** @type {SfItem} */ (member));
}

/**
 * @param {SfMember[]} list
 */
export function serializeList(list) {
  return list.map(serializeMember).join(", ");
}

/**
 * Serialize a Dictionary (Map, object or array of `[key, member]` pairs).
 * @param {Map<string, SfMember> | Record<string, SfMember> | [string, SfMember][]} dict
 */
export function serializeDictionary(dict) {
  const entries = dict instanceof Map ? Array.from(dict.entries()) : Array.isArray(dict) ? dict : Object.entries(dict);
  return entries
    .map(([key, member]) => {
      const name = serializeKey(key);
      if (!Array.isArray(member[0]) && member[0] === true) return name + serializeParams(member[1]);
      return name + "=" + serializeMember(member);
    })
    .join(", ");
}

// ------------------------------------------------------------------ keys and keyids

/**
 * Generate an Ed25519 key pair with WebCrypto. The private key is
 * non-extractable unless `extractable` is true (needed only to write a
 * backup or a passphrase-wrapped copy; see {@link KeyStore#createWithBackup}).
 *
 * @param {{extractable?: boolean}} [options]
 * @returns {Promise<CryptoKeyPair>}
 */
export async function generateKeyPair(options = {}) {
  await requireEd25519();
  const pair = /** @type {CryptoKeyPair} */ (await subtle().generateKey(ED25519, Boolean(options.extractable), ["sign", "verify"]));
  return pair;
}

/**
 * The public JWK (RFC 8037) of an Ed25519 public CryptoKey: `{kty: "OKP", crv: "Ed25519", x}`.
 * @param {CryptoKey} publicKey
 * @returns {Promise<PublicJwk>}
 */
export async function publicJwk(publicKey) {
  if (!publicKey || publicKey.type !== "public" || publicKey.algorithm.name !== "Ed25519") {
    throw new TypeError("publicJwk needs an Ed25519 public CryptoKey");
  }
  const raw = new Uint8Array(await subtle().exportKey("raw", publicKey));
  return { kty: "OKP", crv: "Ed25519", x: base64urlEncode(raw) };
}

/**
 * Check a public JWK and return it with only its public members.
 * @param {any} jwk
 * @returns {PublicJwk}
 */
export function checkPublicJwk(jwk) {
  if (!jwk || typeof jwk !== "object" || jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string") {
    throw new DatafoldAuthError("invalid_key", 'not an Ed25519 JWK ({"kty":"OKP","crv":"Ed25519","x":...})');
  }
  let raw;
  try {
    raw = base64urlDecode(jwk.x);
  } catch {
    throw new DatafoldAuthError("invalid_key", 'the JWK "x" is not canonical unpadded base64url');
  }
  if (raw.length !== 32) throw new DatafoldAuthError("invalid_key", "an Ed25519 public key is 32 bytes");
  return { kty: "OKP", crv: "Ed25519", x: jwk.x };
}

/**
 * The RFC 7638 JWK SHA-256 thumbprint of an Ed25519 public JWK, base64url
 * (43 characters): the DataFold keyid, equal to the Python value.
 * @param {PublicJwk} jwk
 * @returns {Promise<string>}
 */
export async function jwkThumbprint(jwk) {
  const { x } = checkPublicJwk(jwk);
  const input = `{"crv":"Ed25519","kty":"OKP","x":"${x}"}`;
  return base64urlEncode(await subtle().digest("SHA-256", utf8(input)));
}

/**
 * The keyid of a public CryptoKey or a public JWK.
 * @param {CryptoKey | PublicJwk} key
 * @returns {Promise<string>}
 */
export async function keyIdOf(key) {
  const jwk = typeof CryptoKey !== "undefined" && key instanceof CryptoKey ? await publicJwk(key) : /** @type {PublicJwk} */ (key);
  return jwkThumbprint(jwk);
}

/**
 * Import a public JWK as a verifying CryptoKey.
 * @param {PublicJwk} jwk
 * @returns {Promise<CryptoKey>}
 */
export async function importPublicJwk(jwk) {
  await requireEd25519();
  return subtle().importKey("raw", base64urlDecode(checkPublicJwk(jwk).x), ED25519, true, ["verify"]);
}

/**
 * Sign a test message with `privateKey` and verify it with `jwk`: the two belong together.
 * @param {CryptoKey} privateKey
 * @param {PublicJwk} jwk
 */
async function selfTest(privateKey, jwk) {
  const message = utf8("datafold-auth self-test " + newNonce());
  const signature = await subtle().sign("Ed25519", privateKey, message);
  if (!(await subtle().verify("Ed25519", await importPublicJwk(jwk), signature, message))) {
    throw new DatafoldAuthError("self_test_failed", "the private key does not match the public key (self-test failed)");
  }
}

// ------------------------------------------------------------------ Content-Digest and the signature base

const DIGESTS = /** @type {const} */ ({ "sha-256": "SHA-256", "sha-512": "SHA-512" });

/**
 * The RFC 9530 `Content-Digest` field value of `body`, e.g. `sha-256=:X48E...=:`.
 * @param {string | ArrayBuffer | ArrayBufferView} body
 * @param {("sha-256" | "sha-512")[]} [algorithms]
 * @returns {Promise<string>}
 */
export async function contentDigest(body, algorithms = ["sha-256"]) {
  const bytes = toBytes(body);
  const parts = [];
  for (const name of algorithms) {
    const hash = DIGESTS[name];
    if (!hash) throw new DatafoldAuthError("invalid_request", `unsupported digest algorithm ${name}`);
    parts.push(`${name}=:${base64Encode(await subtle().digest(hash, bytes))}:`);
  }
  return parts.join(", ");
}

/**
 * A fresh nonce: 16 random bytes, base64url (22 characters).
 */
export function newNonce() {
  return base64urlEncode(randomBytes(16));
}

/**
 * @param {HeadersInit | undefined} headers
 * @returns {[string, string][]}
 */
function headerPairs(headers) {
  if (!headers) return [];
  if (typeof Headers !== "undefined" && headers instanceof Headers) return Array.from(headers.entries());
  if (Array.isArray(headers)) return headers.map(([k, v]) => [String(k), String(v)]);
  return Object.entries(headers).map(([k, v]) => [k, String(v)]);
}

/**
 * @param {SignableRequest} request
 * @returns {NormalizedRequest}
 */
function normalizeRequest(request) {
  const base = globalThis.location ? globalThis.location.href : undefined;
  const url = request.url instanceof URL ? request.url : new URL(String(request.url), base);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new DatafoldAuthError("invalid_request", "only http:// and https:// URLs can be signed");
  }
  const fields = new Map();
  for (const [name, value] of headerPairs(request.headers)) {
    const key = name.toLowerCase();
    if (!fields.has(key)) fields.set(key, []);
    fields.get(key).push(value);
  }
  return { method: String(request.method || "GET"), url, fields, body: toBytes(request.body) };
}

/**
 * @param {NormalizedRequest} request
 * @param {string} name
 * @param {Map<string, SfBareItem>} params
 */
function componentValue(request, name, params) {
  const { url } = request;
  if (name.startsWith("@")) {
    if (params.size) throw new DatafoldAuthError("unsupported_component", `${name} takes no parameters here`);
    switch (name) {
      case "@method":
        return request.method;
      case "@authority":
        return url.host; // lowercase, default port removed by the URL parser: what the browser sends as Host
      case "@path":
        return url.pathname || "/";
      case "@query":
        return "?" + url.search.slice(1);
      case "@scheme":
        return url.protocol.slice(0, -1);
      case "@target-uri":
        return url.href.split("#")[0];
      case "@request-target":
        return (url.pathname || "/") + url.search;
      default:
        throw new DatafoldAuthError("unsupported_component", `derived component ${name} is not supported`);
    }
  }
  const lines = request.fields.get(name);
  if (!lines) throw new DatafoldAuthError("missing_component", `header field ${name} is not in the request`);
  const combined = lines.map((v) => v.replace(/\r?\n[ \t]+/g, " ").replace(/^[ \t]+|[ \t]+$/g, "")).join(", ");
  if (!params.size) return combined;
  const names = Array.from(params.keys());
  if (names.some((k) => k !== "sf" && k !== "key")) {
    throw new DatafoldAuthError("unsupported_component", `component parameters ${names.join(", ")} are not supported`);
  }
  if (params.has("key")) {
    const key = params.get("key");
    const member = typeof key === "string" ? parseDictionary(combined).get(key) : undefined;
    if (!member) throw new DatafoldAuthError("missing_component", `dictionary member ${String(key)} of ${name} is absent`);
    return serializeMember(member);
  }
  const kind = { "signature-input": "dictionary", signature: "dictionary", "content-digest": "dictionary" }[name];
  if (!kind) throw new DatafoldAuthError("unsupported_component", `the structured type of ${name} is unknown`);
  return serializeDictionary(parseDictionary(combined));
}

/**
 * @param {Component} component
 * @returns {[string, Map<string, SfBareItem>]}
 */
function componentParts(component) {
  if (typeof component === "string") return [component, new Map()];
  const [name, params] = component;
  return [name, new Map(paramEntries(params))];
}

/**
 * The RFC 9421 signature base (section 2.5) for `request`: one line per covered
 * component, then `"@signature-params": <signatureParams>`, joined with "\n".
 *
 * @param {SignableRequest} request
 * @param {Component[]} components e.g. `["@method", "@authority", "@path", "@query", "content-digest"]`
 * @param {string} signatureParams the serialized Inner List, e.g. `("@method");created=1618884473;keyid="k"`
 * @returns {string}
 */
export function signatureBase(request, components, signatureParams) {
  return baseOf(normalizeRequest(request), components, signatureParams);
}

/**
 * @param {NormalizedRequest} normalized
 * @param {Component[]} components
 * @param {string} signatureParams
 */
function baseOf(normalized, components, signatureParams) {
  const lines = [];
  const seen = new Set();
  for (const component of components) {
    const [name, params] = componentParts(component);
    const ident = serializeItem([name, params]);
    if (seen.has(ident)) throw new DatafoldAuthError("unsupported_component", `component ${ident} is covered twice`);
    seen.add(ident);
    const value = componentValue(normalized, name, params);
    // eslint-disable-next-line no-control-regex
    if (/[^\x20-\x7e\t]/.test(value)) {
      throw new DatafoldAuthError("unsupported_component", `component ${ident} has a value that is not printable ASCII`);
    }
    lines.push(`${ident}: ${value}`);
  }
  lines.push(`"@signature-params": ${signatureParams}`);
  return lines.join("\n");
}

/**
 * Sign the given components of `request` with exactly the given parameters
 * (the low-level operation; {@link Signer} applies the DataFold profile).
 *
 * @param {CryptoKey} privateKey an Ed25519 private key with usage "sign"
 * @param {SignableRequest} request
 * @param {{label: string, components: Component[], params: SfParams}} options
 * @returns {Promise<{signatureInput: string, signature: string, signatureBase: string}>}
 *   the `Signature-Input` and `Signature` member values (`label=...`) and the base that was signed
 */
export async function signMessage(privateKey, request, options) {
  const items = options.components.map((c) => {
    const [name, params] = componentParts(c);
    return /** @type {SfItem} */ ([name, params]);
  });
  const params = serializeInnerList([items, options.params]);
  const base = signatureBase(request, options.components, params);
  const signature = new Uint8Array(await subtle().sign("Ed25519", privateKey, utf8(base)));
  const label = serializeKey(options.label);
  return { signatureInput: `${label}=${params}`, signature: `${label}=:${base64Encode(signature)}:`, signatureBase: base };
}

// ------------------------------------------------------------------ the DataFold signer

const FETCH_OPTIONS = /** @type {const} */ (["mode", "credentials", "cache", "referrerPolicy", "integrity", "keepalive", "signal"]);

/**
 * Signs requests per the DataFold profile (docs/protocol.md section 2):
 * `Content-Digest` when there is a body, `Signature-Input` and `Signature`
 * with label `df`, covering `@method @authority @path @query`,
 * `content-digest` and `content-type` when present; parameters `created`,
 * `expires` (created + 300), `nonce`, `keyid`, `alg="ed25519"`, `tag="datafold"`.
 */
export class Signer {
  /**
   * Use {@link Signer.create}.
   * @param {CryptoKey} privateKey
   * @param {PublicJwk} jwk
   * @param {string} keyid
   * @param {SignerOptions} options
   */
  constructor(privateKey, jwk, keyid, options) {
    /** @type {CryptoKey} the private key (non-extractable unless it was made otherwise) */
    this.privateKey = privateKey;
    /** @type {PublicJwk} */
    this.publicJwk = jwk;
    /** @type {string} the RFC 7638 keyid */
    this.keyid = keyid;
    this.label = serializeKey(options.label ?? LABEL);
    this.tag = options.tag === undefined ? TAG : options.tag;
    this.expiresIn = options.expiresIn === undefined ? 300 : options.expiresIn;
    this.digestAlgorithms = options.digestAlgorithms ?? ["sha-256"];
    this.fetchImpl = options.fetch;
    if (this.expiresIn !== null && !(Number.isInteger(this.expiresIn) && this.expiresIn > 0)) {
      throw new TypeError("expiresIn must be a positive whole number of seconds, or null");
    }
  }

  /**
   * @param {CryptoKey} privateKey an Ed25519 private CryptoKey with usage "sign"
   * @param {CryptoKey | PublicJwk} publicKey its public key, as a CryptoKey or a JWK
   * @param {SignerOptions} [options]
   * @returns {Promise<Signer>}
   */
  static async create(privateKey, publicKey, options = {}) {
    await requireEd25519();
    if (!privateKey || privateKey.type !== "private" || privateKey.algorithm.name !== "Ed25519" || !privateKey.usages.includes("sign")) {
      throw new TypeError("Signer needs an Ed25519 private CryptoKey with usage 'sign'");
    }
    const jwk = typeof CryptoKey !== "undefined" && publicKey instanceof CryptoKey ? await publicJwk(publicKey) : checkPublicJwk(publicKey);
    return new Signer(privateKey, jwk, await jwkThumbprint(jwk), options);
  }

  /**
   * Sign a request. Returns the field lines to add; the request object is not changed.
   *
   * @param {SignableRequest} request method, absolute URL (or relative to the page), headers, body
   * @param {{now?: number, nonce?: string}} [options] `now`: created, epoch seconds (default: the clock);
   *   `nonce`: never reuse one (default: 16 random bytes)
   * @returns {Promise<SignedParts>}
   */
  async sign(request, options = {}) {
    const normalized = normalizeRequest(request);
    /** @type {[string, string][]} */
    const added = [];
    /** @type {string[]} */
    const components = [...BASE_COMPONENTS];
    if (normalized.body.length) {
      const digest = await contentDigest(normalized.body, this.digestAlgorithms);
      normalized.fields.set("content-digest", [digest]);
      added.push(["Content-Digest", digest]);
      components.push("content-digest");
    }
    if (normalized.fields.has("content-type")) components.push("content-type");
    const created = Math.floor(options.now ?? Date.now() / 1000);
    const nonce = options.nonce ?? newNonce();
    /** @type {[string, SfBareItem][]} */
    const params = [["created", created]];
    if (this.expiresIn !== null) params.push(["expires", created + this.expiresIn]);
    params.push(["nonce", nonce], ["keyid", this.keyid], ["alg", ALGORITHM]);
    if (this.tag !== null) params.push(["tag", this.tag]);
    const signatureParams = serializeInnerList([components.map((c) => /** @type {SfItem} */ ([c, new Map()])), params]);
    const base = baseOf(normalized, components, signatureParams);
    const signature = new Uint8Array(await subtle().sign("Ed25519", this.privateKey, utf8(base)));
    added.push(["Signature-Input", `${this.label}=${signatureParams}`], ["Signature", `${this.label}=:${base64Encode(signature)}:`]);
    return { headers: added, signatureBase: base, created, nonce, keyid: this.keyid };
  }

  /**
   * Build a signed fetch `Request` from fetch's arguments. The body is read
   * once (any BodyInit: string, JSON text, bytes, Blob, FormData,
   * URLSearchParams...) exactly as fetch would send it, including the
   * Content-Type fetch would add, and signed. The URL is the one fetch sends
   * (`@path`/`@query` percent-encoded by the URL parser). Redirects are not
   * followed unless `init.redirect` says so (`"manual"` by default): a
   * signature is for one URL.
   *
   * @param {RequestInfo | URL} input
   * @param {RequestInit} [init]
   * @param {{now?: number, nonce?: string}} [options]
   * @returns {Promise<{request: Request, signed: SignedParts, body: Uint8Array}>}
   */
  async signedRequest(input, init = {}, options = {}) {
    const draft = new Request(input, init);
    const body = draft.body === null ? new Uint8Array(0) : new Uint8Array(await draft.arrayBuffer());
    const headers = new Headers(draft.headers);
    headers.delete("content-digest");
    const signed = await this.sign({ method: draft.method, url: draft.url, headers, body }, options);
    for (const [name, value] of signed.headers) headers.set(name, value);
    /** @type {RequestInit} */
    const out = { method: draft.method, headers, redirect: init.redirect ?? "manual" };
    const copy = /** @type {Record<string, unknown>} */ (out);
    for (const name of FETCH_OPTIONS) if (init[name] !== undefined) copy[name] = init[name];
    if (init.referrer !== undefined) out.referrer = init.referrer;
    if (body.length) out.body = body;
    return { request: new Request(draft.url, out), signed, body };
  }

  /**
   * `fetch` with a DataFold signature (arguments as for fetch).
   * @param {RequestInfo | URL} input
   * @param {RequestInit} [init]
   * @returns {Promise<Response>}
   */
  async fetch(input, init = {}) {
    const { request } = await this.signedRequest(input, init);
    return (this.fetchImpl ?? globalThis.fetch)(request);
  }
}

/**
 * `fetch` signed by `signer` (the same as `signer.fetch(input, init)`).
 * @param {Signer} signer
 * @param {RequestInfo | URL} input
 * @param {RequestInit} [init]
 */
export function signedFetch(signer, input, init) {
  return signer.fetch(input, init);
}

// ------------------------------------------------------------------ server answers and registration

/**
 * *sync* The seconds of a `Retry-After` header (a number, or an HTTP date), or undefined.
 * @param {Response} response
 * @returns {number | undefined}
 */
export function retryAfterSeconds(response) {
  const value = (response.headers.get("retry-after") || "").trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/**
 * *sync* What a key status means for its holder (docs/operations.md section 3):
 * `{usable, text}` for `active`, `pending`, `rotated`, `suspended`, `revoked`, `expired`, `not_found`.
 * @param {string} status
 * @returns {{usable: boolean, text: string}}
 */
export function describeStatus(status) {
  const texts = /** @type {Record<string, [boolean, string]>} */ ({
    active: [true, "The server accepts requests signed with this key."],
    pending: [false, "Waiting for approval by an operator or by another active key of the same client."],
    rotated: [true, "Replaced by a new key; accepted until the rotation overlap ends."],
    suspended: [false, "Suspended by an operator: refused until an operator approves it again."],
    revoked: [false, "Revoked: refused for ever. Register or rotate to a new key."],
    expired: [false, "Expired: refused. Register a new key (rotate before expiry next time)."],
    not_found: [false, "The server does not know this key."],
  });
  const [usable, text] = texts[status] ?? [false, `Status ${status}: the server refuses requests signed with this key.`];
  return { usable, text };
}

/**
 * The RFC 9457 problem document of a refused request (`{type, title, status, reason}`), or null.
 * Reads the body of `response`. A `Retry-After` (429 `rate_limited`, 503) is added as `retry_after` (seconds).
 * @param {Response} response
 * @returns {Promise<Problem | null>}
 */
export async function readProblem(response) {
  const type = response.headers.get("content-type") || "";
  if (!/^application\/(problem\+)?json\b/i.test(type)) return null;
  try {
    const doc = await response.json();
    if (!(doc && typeof doc === "object" && typeof doc.reason === "string")) return null;
    const wait = retryAfterSeconds(response);
    if (wait !== undefined && doc.retry_after === undefined) doc.retry_after = wait;
    return doc;
  } catch {
    return null;
  }
}

/**
 * The body and headers of a registration (docs/protocol.md section 4), before signing.
 * @param {PublicJwk} jwk
 * @param {RegistrationOptions} [options]
 * @returns {{body: string, headers: Record<string, string>}}
 */
export function registrationBody(jwk, options = {}) {
  /** @type {Record<string, unknown>} */
  const doc = { jwk: checkPublicJwk(jwk) };
  if (options.clientId != null) doc.client_id = options.clientId;
  if (options.label != null) doc.label = options.label;
  if (options.scopes != null) doc.scopes = Array.from(options.scopes);
  return { body: JSON.stringify(doc), headers: { "Content-Type": "application/json" } };
}

/**
 * Register the signer's public key at `url` (the keys collection, e.g.
 * `https://api.example/register/keys`) with proof of possession: the request
 * is signed by the key being registered. Resolves to the server's key record
 * (`{keyid, status, client_id, ...}`); a refusal throws a
 * {@link DatafoldAuthError} whose `reason` is the server's (`duplicate_key`,
 * `client_id_taken`, `bad_proof`, ...). `429 rate_limited` carries `retryAfter`
 * (seconds); with `options.maxRetryWait` (seconds) a wait up to that long is
 * done here and the request signed again. The record's `status` may be
 * `pending` or `suspended` (see {@link describeStatus}).
 *
 * @param {Signer} signer
 * @param {string | URL} url
 * @param {RegistrationOptions} [options]
 * @returns {Promise<KeyRecord>}
 */
export async function register(signer, url, options = {}) {
  const { body, headers } = registrationBody(signer.publicJwk, options);
  for (;;) {
    const response = await signer.fetch(url, { method: "POST", headers, body });
    if (response.status === 201 || response.status === 200) return response.json();
    const error = await refusal(response, "registration");
    const wait = error.retryAfter;
    if (response.status !== 429 || wait === undefined || wait > (options.maxRetryWait ?? 0)) throw error;
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));  // then sign again: a fresh nonce
  }
}

/**
 * The server's record of `keyid` (`GET {url}/{keyid}`), or null when the server does not know it.
 * @param {string | URL} url the keys collection URL, as for {@link register}
 * @param {string} keyid
 * @param {{fetch?: typeof fetch}} [options]
 * @returns {Promise<KeyRecord | null>}
 */
export async function fetchKeyRecord(url, keyid, options = {}) {
  const base = String(url).replace(/\/+$/, "");
  const response = await (options.fetch ?? globalThis.fetch)(`${base}/${encodeURIComponent(keyid)}`, { headers: { Accept: "application/json" } });
  if (response.status === 404) return null;
  if (response.ok) return response.json();
  throw await refusal(response, "key status");
}

/**
 * @param {Response} response
 * @param {string} what
 */
async function refusal(response, what) {
  const problem = await readProblem(response.clone());
  const reason = problem ? problem.reason : "http_error";
  const title = problem && problem.title ? problem.title : response.statusText || "unexpected answer";
  const retryAfter = retryAfterSeconds(response);
  const wait = retryAfter === undefined ? "" : ` (wait ${retryAfter} s, then sign again)`;
  // 403 scope_not_allowed names the refused scopes (the caller's own, as sent); also in error.problem.refused_scopes
  const refused = problem && Array.isArray(problem.refused_scopes)
    ? problem.refused_scopes.slice(0, 64).filter((s) => typeof s === "string" && /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/.test(s))  // scope-tokens only (RFC 6749 section 3.3)
    : [];
  const scopes = refused.length ? ` (refused scopes: ${refused.join(", ")})` : "";
  return new DatafoldAuthError(reason, `${what} refused: ${response.status} ${reason}: ${title}${scopes}${wait}`, { status: response.status, problem, retryAfter });
}

// ------------------------------------------------------------------ key lifecycle (docs/protocol.md section 7)

/** The label of the new key's proof signature in a rotation (protocol.md 7.1). */
export const NEW_KEY_LABEL = "df-new";
/** The tag of the new key's proof signature in a rotation (protocol.md 7.1). */
export const NEW_KEY_TAG = "datafold-new-key";

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/**
 * *sync* The fingerprint people compare out of band (protocol.md 7.6): the
 * first 20 bytes of the keyid's SHA-256 thumbprint in RFC 4648 base32, as 8
 * groups of 4 characters, e.g. `SD5M V7VJ WFKW NGCU B5YM AEL2 ELVD PPK4`.
 * @param {string} keyid
 * @returns {string}
 */
export function fingerprint(keyid) {
  let bytes;
  try {
    bytes = typeof keyid === "string" && /^[A-Za-z0-9_-]{43}$/.test(keyid) ? base64urlDecode(keyid) : null;
  } catch {
    bytes = null;
  }
  if (!bytes || bytes.length !== 32) throw new DatafoldAuthError("invalid_key", "not a keyid (43 base64url characters)");
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const byte of bytes.subarray(0, 20)) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(acc >> bits) & 31];
    }
    acc &= 0xff;
  }
  return out.match(/.{4}/g)?.join(" ") ?? out;
}

/**
 * @param {string | URL} url
 * @param {string} keyid
 * @param {string} action
 */
function keyActionUrl(url, keyid, action) {
  return `${String(url).replace(/\/+$/, "")}/${encodeURIComponent(keyid)}/${action}`;
}

/**
 * @param {Signer | CryptoKeyPair} key
 * @param {SignerOptions} [options]
 * @returns {Promise<Signer>}
 */
async function asSigner(key, options = {}) {
  if (key instanceof Signer) return Signer.create(key.privateKey, key.publicJwk, options);
  if (key && key.privateKey && key.publicKey) return Signer.create(key.privateKey, key.publicKey, options);
  throw new TypeError("the new key must be a CryptoKeyPair or a Signer");
}

/**
 * Build the signed rotation request of protocol.md section 7.1 without sending it:
 * `POST {url}/{current keyid}/rotate` with body `{"jwk": <new public JWK>}`
 * (plus `label`, `expires_at` when given), one `Content-Digest`, the `df`
 * signature by the current key (tag `datafold`) and the `df-new` signature by
 * the new key (tag `datafold-new-key`), joined in one `Signature-Input` and one
 * `Signature` field line, `df` first.
 *
 * @param {Signer} signer the current key
 * @param {Signer | CryptoKeyPair} newKey the new key
 * @param {string | URL} url the keys collection, e.g. `https://api.example/register/keys`
 * @param {RotationOptions} [options]
 * @returns {Promise<SignedRotation>}
 */
export async function rotationRequest(signer, newKey, url, options = {}) {
  const proof = await asSigner(newKey, { label: NEW_KEY_LABEL, tag: NEW_KEY_TAG, expiresIn: signer.expiresIn, digestAlgorithms: signer.digestAlgorithms });
  if (proof.keyid === signer.keyid) throw new DatafoldAuthError("invalid_request", "the new key must differ from the current one");
  /** @type {Record<string, unknown>} */
  const doc = { jwk: proof.publicJwk };
  if (options.label != null) doc.label = options.label;
  if (options.expiresAt != null) doc.expires_at = options.expiresAt;
  const body = JSON.stringify(doc);
  const target = keyActionUrl(url, signer.keyid, "rotate");
  const now = options.now ?? Date.now() / 1000;
  const request = { method: "POST", url: target, headers: { "Content-Type": "application/json" }, body };
  const first = await signer.sign(request, { now, nonce: options.nonce });
  const second = await proof.sign(request, { now, nonce: options.newNonce });
  const field = (/** @type {SignedParts} */ s, /** @type {string} */ name) => s.headers.find(([n]) => n === name)?.[1] ?? "";
  const digest = field(first, "Content-Digest");
  if (digest !== field(second, "Content-Digest")) throw new DatafoldAuthError("invalid_request", "the two signers use different digest algorithms");
  /** @type {[string, string][]} */
  const headers = [
    ["Content-Type", "application/json"],
    ["Content-Digest", digest],
    ["Signature-Input", `${field(first, "Signature-Input")}, ${field(second, "Signature-Input")}`],
    ["Signature", `${field(first, "Signature")}, ${field(second, "Signature")}`],
  ];
  return { url: target, method: "POST", headers, body, newSigner: await asSigner(proof, {}), bases: [first.signatureBase, second.signatureBase] };
}

/**
 * Rotate: replace the signer's key by `newKey` on the server (protocol.md 7.1).
 * On `201` resolves to `{signer, record, previous}`: `signer` signs with the
 * new key (with the current signer's options); from then on use it. The old
 * key keeps verifying until `previous.overlap_until`.
 *
 * If the answer is lost (network error, or a 5xx), the rotation may have
 * happened: `GET {url}/{new keyid}` decides (its `replaces` is the old keyid:
 * done; `404`: not done). When that cannot be known either, throws reason
 * `rotation_unknown` with the new key's signer as `error.newSigner`: keep the
 * new private key and call `rotate` again with it (or look the key up later).
 * A refusal throws the server's reason (`key_not_active`, `invalid_transition`,
 * `duplicate_key`, `rate_limited`, ...).
 *
 * @param {Signer} signer the current key
 * @param {Signer | CryptoKeyPair} newKey
 * @param {string | URL} url the keys collection
 * @param {RotationOptions} [options]
 * @returns {Promise<RotationResult>}
 */
export async function rotate(signer, newKey, url, options = {}) {
  const built = await rotationRequest(signer, newKey, url, options);
  const fetchImpl = options.fetch ?? signer.fetchImpl ?? globalThis.fetch;
  const next = await Signer.create(built.newSigner.privateKey, built.newSigner.publicJwk, {
    label: signer.label, tag: signer.tag, expiresIn: signer.expiresIn, digestAlgorithms: signer.digestAlgorithms, fetch: signer.fetchImpl,
  });
  /** @type {unknown} */
  let lost;
  try {
    const response = await fetchImpl(built.url, { method: "POST", headers: built.headers, body: built.body, redirect: "manual" });
    if (response.status === 201 || response.status === 200) {
      const doc = await response.json();
      return { signer: next, record: doc.key, previous: doc.previous };
    }
    if (response.status < 500) throw await refusal(response, "rotation");
    lost = await refusal(response, "rotation");
  } catch (error) {
    if (error instanceof DatafoldAuthError) throw error;
    lost = error;
  }
  // the answer is lost: did the rotation happen?
  let record;
  try {
    record = await fetchKeyRecord(url, next.keyid, { fetch: fetchImpl });
  } catch (error) {
    throw Object.assign(
      new DatafoldAuthError("rotation_unknown", "The rotation's answer was lost and the server cannot say yet whether it happened; keep the new key and try again.", { cause: error }),
      { newSigner: next },
    );
  }
  if (record && record.replaces === signer.keyid) return { signer: next, record, previous: await fetchKeyRecord(url, signer.keyid, { fetch: fetchImpl }) };
  if (lost instanceof DatafoldAuthError) throw Object.assign(lost, { newSigner: next });
  throw Object.assign(new DatafoldAuthError("network_error", `rotation not done: ${lost}`, { cause: lost }), { newSigner: next });
}

/**
 * Revoke a key as its holder (protocol.md 7.2): `POST {url}/{keyid}/revoke`
 * signed by `signer`. `keyid` defaults to the signer's own key; another
 * active key of the same client may revoke a lost device's key. Final.
 * Resolves to the record (`status: "revoked"`).
 *
 * @param {Signer} signer
 * @param {string | URL} url the keys collection
 * @param {{reason?: string, keyid?: string}} [options]
 * @returns {Promise<KeyRecord>}
 */
export async function revoke(signer, url, options = {}) {
  const init = options.reason == null
    ? { method: "POST" }
    : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ reason: options.reason }) };
  const response = await signer.fetch(keyActionUrl(url, options.keyid ?? signer.keyid, "revoke"), init);
  if (response.ok) return response.json();
  throw await refusal(response, "revocation");
}

/**
 * Approve a `pending` key of the signer's client (protocol.md 7.3), after comparing {@link fingerprint}s.
 * @param {Signer} signer an active key of the same client
 * @param {string | URL} url the keys collection
 * @param {string} keyid the pending key
 * @returns {Promise<KeyRecord>}
 */
export async function approve(signer, url, keyid) {
  const response = await signer.fetch(keyActionUrl(url, keyid, "approve"), { method: "POST" });
  if (response.ok) return response.json();
  throw await refusal(response, "approval");
}

/**
 * The keys of a client (protocol.md 7.4), oldest first: `GET {mount}/clients/{clientId}/keys`,
 * signed by a usable key of that client.
 * @param {Signer} signer
 * @param {string | URL} url the keys collection (`{mount}/keys`)
 * @param {string} clientId
 * @returns {Promise<{client_id: string, keys: KeyRecord[]}>}
 */
export async function listClientKeys(signer, url, clientId) {
  const mount = String(url).replace(/\/+$/, "").replace(/\/keys$/, "");
  const response = await signer.fetch(`${mount}/clients/${encodeURIComponent(clientId)}/keys`, { headers: { Accept: "application/json" } });
  if (response.ok) return response.json();
  throw await refusal(response, "key listing");
}

// ------------------------------------------------------------------ DER (just enough for PKCS#8 and PBES2)

const PKCS8_V1_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const OID = Object.freeze({
  ed25519: "2b6570",
  pbes2: "2a864886f70d01050d",
  pbkdf2: "2a864886f70d01050c",
  scrypt: "2b06010401da47040b",
  aes256cbc: "60864801650304012a",
  hmacSha256: "2a864886f70d0209",
});
/** @type {Record<string, string>} */
const PRF_HASHES = {
  "2a864886f70d0207": "SHA-1",
  "2a864886f70d0209": "SHA-256",
  "2a864886f70d020a": "SHA-384",
  "2a864886f70d020b": "SHA-512",
};
/** @type {Record<string, number>} */
const AES_CBC_BITS = { "608648016503040102": 128, "608648016503040116": 192, "60864801650304012a": 256 };

/** @param {string} message @returns {DatafoldAuthError} */
function badBackup(message) {
  return new DatafoldAuthError("invalid_backup", message);
}

/**
 * @param {Uint8Array} bytes
 * @param {number} pos
 * @returns {{tag: number, value: Uint8Array, end: number}}
 */
function derElement(bytes, pos) {
  if (pos + 2 > bytes.length) throw badBackup("truncated DER");
  const tag = bytes[pos];
  let size = bytes[pos + 1];
  pos += 2;
  if (size & 0x80) {
    const count = size & 0x7f;
    if (count < 1 || count > 4 || pos + count > bytes.length) throw badBackup("bad DER length");
    size = 0;
    for (let k = 0; k < count; k++) size = size * 256 + bytes[pos++];
  }
  if (pos + size > bytes.length) throw badBackup("truncated DER");
  return { tag, value: bytes.subarray(pos, pos + size), end: pos + size };
}

/** @param {Uint8Array} content */
function derChildren(content) {
  const out = [];
  let pos = 0;
  while (pos < content.length) {
    const element = derElement(content, pos);
    out.push(element);
    pos = element.end;
  }
  return out;
}

/** @param {Uint8Array} bytes the whole input must be one element */
function derSingle(bytes) {
  const element = derElement(bytes, 0);
  if (element.end !== bytes.length) throw badBackup("trailing bytes after the DER structure");
  return element;
}

/** @param {{tag: number, value: Uint8Array}} element */
function derInteger(element) {
  if (element.tag !== 0x02 || !element.value.length || element.value[0] & 0x80 || element.value.length > 6) {
    throw badBackup("expected a small positive INTEGER");
  }
  return element.value.reduce((n, b) => n * 256 + b, 0);
}

/** @param {{tag: number, value: Uint8Array}} element */
function derOid(element) {
  if (element.tag !== 0x06) throw badBackup("expected an OBJECT IDENTIFIER");
  return hex(element.value);
}

/**
 * @param {number} tag
 * @param {...Uint8Array} parts
 */
function der(tag, ...parts) {
  const content = concat(...parts);
  const size = content.length;
  if (size < 0x80) return concat(Uint8Array.of(tag, size), content);
  const length = [];
  for (let n = size; n > 0; n = Math.floor(n / 256)) length.unshift(n & 0xff);
  return concat(Uint8Array.of(tag, 0x80 | length.length, ...length), content);
}

/** @param {string} hexText */
function oid(hexText) {
  return der(0x06, Uint8Array.from(hexText.match(/../g) ?? [], (h) => parseInt(h, 16)));
}

/** @param {number} value a positive integer, minimal DER encoding */
function derUint(value) {
  const bytes = [];
  for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  if (!bytes.length || bytes[0] & 0x80) bytes.unshift(0);
  return der(0x02, Uint8Array.from(bytes));
}

/**
 * The 32-byte seed of an Ed25519 PKCS#8 PrivateKeyInfo / OneAsymmetricKey (RFC 8410, v1 or v2).
 * @param {Uint8Array} pkcs8
 */
function seedFromPkcs8(pkcs8) {
  const top = derSingle(pkcs8);
  if (top.tag !== 0x30) throw badBackup("not a PKCS#8 private key");
  const [version, algorithm, key] = derChildren(top.value);
  if (!version || !algorithm || !key || derInteger(version) > 1) {
    throw badBackup("not a PKCS#8 private key");
  }
  const algo = derChildren(algorithm.value);
  if (algorithm.tag !== 0x30 || algo.length !== 1 || derOid(algo[0]) !== OID.ed25519) {
    throw new DatafoldAuthError("unsupported_backup", "this private key is not Ed25519");
  }
  if (key.tag !== 0x04) throw badBackup("not a PKCS#8 private key");
  const inner = derSingle(key.value);
  if (inner.tag !== 0x04 || inner.value.length !== 32) throw badBackup("the Ed25519 private key is not 32 bytes");
  return new Uint8Array(inner.value);
}

// ------------------------------------------------------------------ passphrases and key derivation

/**
 * @param {unknown} passphrase
 * @param {string} what
 * @returns {string}
 */
function requirePassphrase(passphrase, what) {
  if (typeof passphrase !== "string" || passphrase === "") {
    throw new DatafoldAuthError("passphrase_required", `${what} needs a passphrase`);
  }
  return passphrase;
}

/** @param {number} iterations */
function checkIterations(iterations) {
  if (!Number.isInteger(iterations) || iterations < PBKDF2_MIN_ITERATIONS || iterations > PBKDF2_MAX_ITERATIONS) {
    throw new DatafoldAuthError("invalid_backup", `PBKDF2 iteration count ${iterations} is out of bounds (${PBKDF2_MIN_ITERATIONS} to ${PBKDF2_MAX_ITERATIONS})`);
  }
  return iterations;
}

/**
 * A non-extractable AES key derived from a passphrase with PBKDF2 (WebCrypto).
 * The passphrase is NFC-normalized UTF-8, as in keytools and docs/formats.md.
 *
 * @param {string} passphrase
 * @param {Uint8Array} salt
 * @param {number} iterations
 * @param {string} hash "SHA-256" (or SHA-1/384/512 when reading other tools' PEM files)
 * @param {AesKeyAlgorithm | {name: string, length: number}} algorithm
 * @param {KeyUsage[]} usages
 */
async function passphraseKey(passphrase, salt, iterations, hash, algorithm, usages) {
  const secret = utf8(passphrase.normalize("NFC"));
  try {
    const material = await subtle().importKey("raw", secret, "PBKDF2", false, ["deriveKey"]);
    return await subtle().deriveKey({ name: "PBKDF2", salt, iterations, hash }, material, algorithm, false, usages);
  } finally {
    wipe(secret);
  }
}

function wrongPassphrase() {
  return new DatafoldAuthError("wrong_passphrase", "Wrong passphrase (or the data was modified or damaged).");
}

/**
 * @param {unknown} error
 * @returns {never}
 */
function rethrowCrypto(error) {
  if (error instanceof DatafoldAuthError) throw error;
  if (error && typeof error === "object" && "name" in error && error.name === "OperationError") throw wrongPassphrase();
  throw error;
}

/**
 * Two copies of a key from its seed: an extractable one (to learn the public
 * key, and to wrap for storage) and the non-extractable one that is kept.
 * @param {Uint8Array} seed wiped afterwards
 */
async function keysFromSeed(seed) {
  const pkcs8 = concat(PKCS8_V1_PREFIX, seed);
  try {
    const extractable = await subtle().importKey("pkcs8", pkcs8, ED25519, true, ["sign"]);
    const kept = await subtle().importKey("pkcs8", pkcs8, ED25519, false, ["sign"]);
    return { extractable, kept };
  } finally {
    wipe(pkcs8, seed);
  }
}

/**
 * @param {{extractable: CryptoKey, kept: CryptoKey}} keys
 * @returns {Promise<{privateKey: CryptoKey, extractableKey: CryptoKey, publicJwk: PublicJwk, keyid: string}>}
 */
async function finishRestore(keys) {
  const jwk = await subtle().exportKey("jwk", keys.extractable);
  const pub = checkPublicJwk({ kty: jwk.kty, crv: jwk.crv, x: jwk.x });
  jwk.d = "";
  await selfTest(keys.kept, pub);
  return { privateKey: keys.kept, extractableKey: keys.extractable, publicJwk: pub, keyid: await jwkThumbprint(pub) };
}

// ------------------------------------------------------------------ PEM backups (PKCS#8 PBES2)

/**
 * @param {string} text
 * @returns {{label: string, der: Uint8Array} | null}
 */
function readPem(text) {
  const match = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (!match) return null;
  const body = match[2].replace(/[\r\n\t ]/g, "");
  try {
    return { label: match[1], der: base64Decode(body) };
  } catch {
    throw badBackup(`the ${match[1]} PEM block is not valid base64`);
  }
}

/**
 * Parse an EncryptedPrivateKeyInfo with PBES2 (RFC 8018 section 6.2), refusing what WebCrypto cannot do.
 * @param {Uint8Array} data
 */
function parsePbes2(data) {
  const top = derSingle(data);
  const parts = top.tag === 0x30 ? derChildren(top.value) : [];
  if (parts.length !== 2 || parts[0].tag !== 0x30 || parts[1].tag !== 0x04) throw badBackup("not an encrypted PKCS#8 key (EncryptedPrivateKeyInfo)");
  const [schemeOid, schemeParams] = derChildren(parts[0].value);
  if (derOid(schemeOid) !== OID.pbes2) {
    throw new DatafoldAuthError("unsupported_backup", "this encrypted key uses an old PBES1 scheme; convert it with: openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256");
  }
  const [kdf, cipher] = derChildren(schemeParams.value);
  const [kdfOid, kdfParams] = derChildren(kdf.value);
  const kdfName = derOid(kdfOid);
  if (kdfName === OID.scrypt) {
    throw new DatafoldAuthError("unsupported_backup", "this key is encrypted with scrypt, which browsers cannot compute; write it again with PBKDF2 (keytools backup pem, or openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256)");
  }
  if (kdfName !== OID.pbkdf2) throw new DatafoldAuthError("unsupported_backup", "this encrypted key uses an unknown key derivation");
  const kp = derChildren(kdfParams.value);
  if (!kp[0] || kp[0].tag !== 0x04) throw new DatafoldAuthError("unsupported_backup", "PBKDF2 salt must be an OCTET STRING");
  const salt = new Uint8Array(kp[0].value);
  const iterations = checkIterations(derInteger(kp[1]));
  let hash = "SHA-1"; // the RFC 8018 default PRF
  let keyLength = null;
  for (const item of kp.slice(2)) {
    if (item.tag === 0x02) keyLength = derInteger(item);
    else if (item.tag === 0x30) {
      const prf = derOid(derChildren(item.value)[0]);
      if (!PRF_HASHES[prf]) throw new DatafoldAuthError("unsupported_backup", "this encrypted key uses an unsupported PBKDF2 PRF");
      hash = PRF_HASHES[prf];
    }
  }
  const [cipherOid, ivElement] = derChildren(cipher.value);
  const bits = AES_CBC_BITS[derOid(cipherOid)];
  if (!bits) throw new DatafoldAuthError("unsupported_backup", "this encrypted key uses a cipher other than AES-CBC (e.g. 3DES); convert it with: openssl pkcs8 -topk8 -v2 aes-256-cbc");
  if (!ivElement || ivElement.tag !== 0x04 || ivElement.value.length !== 16) throw badBackup("the AES-CBC IV must be 16 bytes");
  if (keyLength !== null && keyLength * 8 !== bits) throw badBackup("the PBKDF2 key length does not match the cipher");
  return { salt, iterations, hash, bits, iv: new Uint8Array(ivElement.value), ciphertext: new Uint8Array(parts[1].value) };
}

/**
 * @param {Uint8Array} der an EncryptedPrivateKeyInfo
 * @param {string} passphrase
 */
async function readEncryptedPkcs8(der, passphrase) {
  const info = parsePbes2(der);
  let aes;
  try {
    aes = await passphraseKey(passphrase, info.salt, info.iterations, info.hash, { name: "AES-CBC", length: info.bits }, ["unwrapKey", "decrypt"]);
  } catch (error) {
    // Chromium has no 192-bit AES keys
    throw new DatafoldAuthError("unsupported_backup", `this browser cannot decrypt aes-${info.bits}-cbc; convert the key with: openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256`, { cause: error });
  }
  const params = { name: "AES-CBC", iv: info.iv };
  let keys;
  try {
    // the decrypted PKCS#8 never reaches script: WebCrypto unwraps it into CryptoKeys
    keys = {
      extractable: await subtle().unwrapKey("pkcs8", info.ciphertext, aes, params, ED25519, true, ["sign"]),
      kept: await subtle().unwrapKey("pkcs8", info.ciphertext, aes, params, ED25519, false, ["sign"]),
    };
  } catch (error) {
    if (!(error && typeof error === "object" && "name" in error && error.name === "DataError")) rethrowCrypto(error);
    // decrypted, but not a PKCS#8 that WebCrypto imports (e.g. v2 with the public key): read it here
    let plain;
    try {
      plain = new Uint8Array(await subtle().decrypt(params, aes, info.ciphertext));
    } catch (inner) {
      rethrowCrypto(inner);
    }
    let seed;
    try {
      seed = seedFromPkcs8(plain);
    } catch {
      throw wrongPassphrase();
    } finally {
      wipe(plain);
    }
    keys = await keysFromSeed(seed);
  }
  const description = `PBES2 / PBKDF2-HMAC-${info.hash.replace("-", "")} ${info.iterations} iterations / aes-${info.bits}-cbc`;
  return { keys, description };
}

/**
 * The encrypted PKCS#8 PEM of docs/formats.md: PBES2 with PBKDF2-HMAC-SHA256
 * and AES-256-CBC, readable by `openssl pkey` and keytools. WebCrypto wraps
 * the key itself (`wrapKey("pkcs8", ..., AES-CBC)`): the PKCS#8 bytes never
 * reach script.
 *
 * @param {CryptoKey} privateKey an extractable Ed25519 private key
 * @param {string} passphrase
 * @param {{iterations?: number, salt?: Uint8Array, iv?: Uint8Array}} [options] salt and iv are for test vectors only
 */
async function pemBackup(privateKey, passphrase, options = {}) {
  const iterations = checkIterations(options.iterations ?? PBKDF2_ITERATIONS);
  const salt = options.salt ?? randomBytes(16);
  const iv = options.iv ?? randomBytes(16);
  if (salt.length !== 16 || iv.length !== 16) throw new TypeError("salt and iv are 16 bytes");
  const aes = await passphraseKey(passphrase, salt, iterations, "SHA-256", { name: "AES-CBC", length: 256 }, ["wrapKey"]);
  const ciphertext = new Uint8Array(await subtle().wrapKey("pkcs8", privateKey, aes, { name: "AES-CBC", iv }));
  const pbkdf2 = der(0x30, oid(OID.pbkdf2), der(0x30, der(0x04, salt), derUint(iterations), der(0x30, oid(OID.hmacSha256), Uint8Array.of(0x05, 0x00))));
  const algorithm = der(0x30, oid(OID.pbes2), der(0x30, pbkdf2, der(0x30, oid(OID.aes256cbc), der(0x04, iv))));
  const body = base64Encode(der(0x30, algorithm, der(0x04, ciphertext)));
  const lines = body.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${lines.join("\n")}\n-----END ENCRYPTED PRIVATE KEY-----\n`;
}

// ------------------------------------------------------------------ DataFold envelopes (JSON and binary, PBKDF2 variant)

const ENVELOPE_FORMAT = "datafold-key-backup";
const MAGIC = utf8("DFKB");
const KDF_SCRYPT = 0x01;
const KDF_PBKDF2 = 0x02;
const CIPHER_AES_256_GCM = 0x01;
const MAX_LABEL_BYTES = 1024;
const MAX_CLIENT_ID_BYTES = 255;

/**
 * @typedef {object} Envelope
 * @property {"pbkdf2-sha256" | "scrypt"} kdf
 * @property {number} iterations
 * @property {string} [scrypt] description of scrypt parameters (read only)
 * @property {Uint8Array} salt
 * @property {Uint8Array} nonce
 * @property {string} keyid
 * @property {number} created
 * @property {string} label
 * @property {string | null} clientId
 * @property {Uint8Array} ciphertext
 * @property {Uint8Array} [kdfBytes] the KDF part of the header as read (scrypt)
 */

/** @param {Envelope} env */
function checkEnvelope(env) {
  if (!/^[A-Za-z0-9_-]{43}$/.test(env.keyid)) throw badBackup("backup keyid is not 43 characters of base64url");
  // The last character has two unused bits: another spelling of the same 32 bytes would still
  // authenticate (the AES-GCM header holds the bytes), so only the canonical one is a keyid.
  try {
    base64urlDecode(env.keyid);
  } catch {
    throw badBackup("backup keyid is not canonical base64url");
  }
  if (!Number.isSafeInteger(env.created) || env.created < 0) throw badBackup("backup creation time is not a non-negative integer");
  if (typeof env.label !== "string" || utf8(env.label).length > MAX_LABEL_BYTES) throw badBackup("backup label is too long");
  if (env.clientId !== null && (typeof env.clientId !== "string" || utf8(env.clientId).length < 1 || utf8(env.clientId).length > MAX_CLIENT_ID_BYTES)) {
    throw badBackup("backup client_id is not a string of 1 to 255 UTF-8 bytes");
  }
  if (env.salt.length < 16 || env.salt.length > 64) throw badBackup("backup salt must be 16 to 64 bytes");
  if (env.nonce.length !== 12) throw badBackup("backup nonce must be 12 bytes");
  if (env.ciphertext.length !== 48) throw badBackup("backup ciphertext must be 48 bytes (32-byte seed + 16-byte tag)");
  if (env.kdf === "pbkdf2-sha256") checkIterations(env.iterations);
  return env;
}

/**
 * The binary header: AES-GCM associated data of both encodings (docs/formats.md).
 * @param {Envelope} env
 */
function envelopeHeader(env) {
  const label = utf8(env.label);
  const clientId = utf8(env.clientId ?? "");
  const view = (/** @type {number} */ size) => new DataView(new ArrayBuffer(size));
  const u16 = (/** @type {number} */ n) => { const v = view(2); v.setUint16(0, n); return new Uint8Array(v.buffer); };
  const kdf = env.kdfBytes ?? (() => { const v = view(5); v.setUint8(0, KDF_PBKDF2); v.setUint32(1, env.iterations); return new Uint8Array(v.buffer); })();
  const created = view(8);
  created.setBigUint64(0, BigInt(env.created));
  return concat(
    MAGIC, Uint8Array.of(1), kdf, Uint8Array.of(env.salt.length), env.salt,
    Uint8Array.of(CIPHER_AES_256_GCM, env.nonce.length), env.nonce, base64urlDecode(env.keyid),
    new Uint8Array(created.buffer), u16(label.length), label, u16(clientId.length), clientId, u16(env.ciphertext.length),
  );
}

/** Python's json.dumps(doc, indent=2) (ASCII only, \u escapes) plus a newline. @param {unknown} doc */
function pythonJson(doc) {
  return JSON.stringify(doc, null, 2).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")) + "\n";
}

/** @param {Envelope} env */
function envelopeJson(env) {
  return pythonJson({
    format: ENVELOPE_FORMAT,
    version: 1,
    kdf: { name: "pbkdf2-sha256", iterations: env.iterations, salt: base64urlEncode(env.salt) },
    cipher: { name: "aes-256-gcm", nonce: base64urlEncode(env.nonce) },
    key: { keyid: env.keyid, label: env.label, created: env.created, client_id: env.clientId },
    ciphertext: base64urlEncode(env.ciphertext),
  });
}

/**
 * @param {Record<string, unknown>} doc
 * @param {string[]} names
 * @param {string} where
 */
function exactMembers(doc, names, where) {
  const keys = Object.keys(doc).sort();
  if (keys.join(",") !== [...names].sort().join(",")) throw badBackup(`${where} has unexpected or missing members`);
}

/**
 * @param {unknown} value
 * @param {string} what
 */
function b64Member(value, what) {
  if (typeof value !== "string") throw badBackup(`backup ${what} is not a string`);
  try {
    return base64urlDecode(value);
  } catch {
    throw badBackup(`backup ${what} is not canonical unpadded base64url`);
  }
}

/**
 * What JSON.parse lets through but docs/formats.md refuses: a repeated member
 * name, or a number that is not an integer. `text` is valid JSON.
 * @param {string} text
 * @returns {string | null}
 */
function strictJsonProblem(text) {
  /** @type {({keys: Set<string>, expectKey: boolean} | null)[]} */
  const stack = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = stack[stack.length - 1];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (top && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1));
        if (top.keys.has(key)) return `duplicate member ${JSON.stringify(key)}`;
        top.keys.add(key);
        top.expectKey = false;
      }
      i = j;
    } else if (c === "{") {
      stack.push({ keys: new Set(), expectKey: true });
    } else if (c === "[") {
      stack.push(null);
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === "," && top) {
      top.expectKey = true;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      let j = i;
      while (j < text.length && /[0-9eE+.-]/.test(text[j])) j++;
      if (/[.eE]/.test(text.slice(i, j))) return `a number that is not an integer (${text.slice(i, j)})`;
      i = j - 1;
    }
  }
  return null;
}

/** @param {string} text @returns {Envelope} */
function parseEnvelopeJson(text) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    throw badBackup("not a valid JSON document (truncated or damaged?)");
  }
  const problem = strictJsonProblem(text);
  if (problem) throw badBackup(`the JSON backup has ${problem}`);
  if (!doc || typeof doc !== "object" || doc.format !== ENVELOPE_FORMAT) throw badBackup(`not a DataFold JSON backup (no "format": "${ENVELOPE_FORMAT}")`);
  if (doc.version !== 1) throw new DatafoldAuthError("unsupported_backup", `unsupported JSON backup version ${JSON.stringify(doc.version)} (this reader knows 1)`);
  exactMembers(doc, ["format", "version", "kdf", "cipher", "key", "ciphertext"], "the backup");
  const { kdf, cipher, key } = doc;
  for (const [name, value] of [["kdf", kdf], ["cipher", cipher], ["key", key]]) {
    if (!value || typeof value !== "object" || Array.isArray(value)) throw badBackup(`backup member "${name}" is not an object`);
  }
  exactMembers(key, ["keyid", "label", "created", "client_id"], '"key"');
  if (kdf.name === "scrypt") {
    throw new DatafoldAuthError("unsupported_backup", `this backup of key ${String(key.keyid)} is encrypted with scrypt, which browsers cannot compute; write a PBKDF2 one with: keytools backup json --kdf pbkdf2 (or keytools backup pem)`);
  }
  if (kdf.name !== "pbkdf2-sha256") throw new DatafoldAuthError("unsupported_backup", `unknown KDF ${JSON.stringify(kdf.name)} in JSON backup`);
  exactMembers(kdf, ["name", "iterations", "salt"], '"kdf"');
  exactMembers(cipher, ["name", "nonce"], '"cipher"');
  if (cipher.name !== "aes-256-gcm") throw new DatafoldAuthError("unsupported_backup", `unknown cipher ${JSON.stringify(cipher.name)} in JSON backup`);
  if (!Number.isInteger(kdf.iterations)) throw badBackup("backup kdf.iterations is not an integer");
  return checkEnvelope({
    kdf: "pbkdf2-sha256",
    iterations: kdf.iterations,
    salt: b64Member(kdf.salt, "kdf.salt"),
    nonce: b64Member(cipher.nonce, "cipher.nonce"),
    keyid: key.keyid,
    created: key.created,
    label: key.label,
    clientId: key.client_id,
    ciphertext: b64Member(doc.ciphertext, "ciphertext"),
  });
}

/** @param {Uint8Array} data @returns {Envelope} */
function parseEnvelopeBinary(data) {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let pos = 4;
  const take = (/** @type {number} */ n) => {
    if (pos + n > data.length) throw badBackup("the binary backup is truncated");
    const out = data.slice(pos, pos + n);
    pos += n;
    return out;
  };
  const u8 = () => take(1)[0];
  const u16 = () => { take(2); return view.getUint16(pos - 2); };
  const u32 = () => { take(4); return view.getUint32(pos - 4); };
  if (u8() !== 1) throw new DatafoldAuthError("unsupported_backup", "unsupported binary backup version (this reader knows 1)");
  const kdfStart = pos;
  const kdfId = u8();
  let iterations = 0;
  if (kdfId === KDF_PBKDF2) iterations = u32();
  else if (kdfId === KDF_SCRYPT) take(9);
  else throw badBackup(`unknown KDF id ${kdfId} in binary backup`);
  const kdfBytes = data.slice(kdfStart, pos);
  const salt = take(u8());
  if (u8() !== CIPHER_AES_256_GCM) throw new DatafoldAuthError("unsupported_backup", "unknown cipher in binary backup");
  const nonce = take(u8());
  const keyid = base64urlEncode(take(32));
  take(8);
  const created = Number(view.getBigUint64(pos - 8));
  let label;
  let clientId;
  try {
    label = strictDecoder.decode(take(u16()));
    clientId = strictDecoder.decode(take(u16())) || null;
  } catch (error) {
    if (error instanceof DatafoldAuthError) throw error;
    throw badBackup("the binary backup has text that is not UTF-8");
  }
  const ciphertext = take(u16());
  if (pos !== data.length) throw badBackup("the binary backup has trailing bytes after the ciphertext");
  if (kdfId === KDF_SCRYPT) {
    throw new DatafoldAuthError("unsupported_backup", `this backup of key ${keyid} is encrypted with scrypt, which browsers cannot compute; write a PBKDF2 one with: keytools backup binary --kdf pbkdf2 (or keytools backup pem)`);
  }
  return checkEnvelope({ kdf: "pbkdf2-sha256", iterations, salt, nonce, keyid, created, label, clientId, ciphertext, kdfBytes });
}

/**
 * @param {Envelope} env
 * @param {string} passphrase
 */
async function openEnvelope(env, passphrase) {
  const aes = await passphraseKey(passphrase, env.salt, env.iterations, "SHA-256", { name: "AES-GCM", length: 256 }, ["decrypt"]);
  let seed;
  try {
    seed = new Uint8Array(await subtle().decrypt({ name: "AES-GCM", iv: env.nonce, additionalData: envelopeHeader(env), tagLength: 128 }, aes, env.ciphertext));
  } catch (error) {
    rethrowCrypto(error);
  }
  if (seed.length !== 32) {
    wipe(seed);
    throw badBackup("the backup does not hold a 32-byte seed");
  }
  return keysFromSeed(seed);
}

/**
 * @param {CryptoKey} privateKey extractable
 * @param {string} keyid
 * @param {string} passphrase
 * @param {BackupOptions} options
 */
async function sealEnvelope(privateKey, keyid, passphrase, options) {
  const env = checkEnvelope({
    kdf: "pbkdf2-sha256",
    iterations: options.iterations ?? PBKDF2_ITERATIONS,
    salt: options.salt ?? randomBytes(16),
    nonce: options.nonce ?? randomBytes(12),
    keyid,
    created: options.created ?? Math.floor(Date.now() / 1000),
    label: options.label ?? "",
    clientId: options.clientId ?? null,
    ciphertext: new Uint8Array(48),
  });
  const aes = await passphraseKey(passphrase, env.salt, env.iterations, "SHA-256", { name: "AES-GCM", length: 256 }, ["encrypt"]);
  const pkcs8 = new Uint8Array(await subtle().exportKey("pkcs8", privateKey));
  const seed = pkcs8.slice(16);
  try {
    if (pkcs8.length !== 48 || hex(pkcs8.subarray(0, 16)) !== hex(PKCS8_V1_PREFIX)) throw badBackup("unexpected PKCS#8 layout from WebCrypto");
    env.ciphertext = new Uint8Array(await subtle().encrypt({ name: "AES-GCM", iv: env.nonce, additionalData: envelopeHeader(env), tagLength: 128 }, aes, seed));
  } finally {
    wipe(pkcs8, seed);
  }
  return env;
}

// ------------------------------------------------------------------ backup export and import

const BACKUP_TYPES = /** @type {const} */ ({
  pem: { extension: "pem", mimeType: "application/x-pem-file" },
  json: { extension: "json", mimeType: "application/json" },
  binary: { extension: "dfkb", mimeType: "application/octet-stream" },
});

/**
 * @param {CryptoKey | CryptoKeyPair} key
 * @returns {Promise<{privateKey: CryptoKey, keyid: string}>}
 */
async function backupSource(key) {
  const pair = /** @type {CryptoKeyPair} */ (key);
  const privateKey = pair && pair.privateKey ? pair.privateKey : /** @type {CryptoKey} */ (key);
  if (!privateKey || privateKey.type !== "private" || privateKey.algorithm.name !== "Ed25519") throw new TypeError("a backup needs an Ed25519 private CryptoKey");
  if (!privateKey.extractable) {
    throw new DatafoldAuthError("not_extractable", "This key is non-extractable: nobody, this page included, can read it to write a backup. Back a key up when it is made (KeyStore.createWithBackup), or keep it passphrase-encrypted.");
  }
  if (pair && pair.publicKey) return { privateKey, keyid: await keyIdOf(pair.publicKey) };
  const jwk = await subtle().exportKey("jwk", privateKey);
  const keyid = await jwkThumbprint({ kty: "OKP", crv: "Ed25519", x: String(jwk.x) });
  jwk.d = "";
  return { privateKey, keyid };
}

/**
 * Write an encrypted backup (docs/formats.md) of an extractable key:
 * `pem` (PBES2 PBKDF2-HMAC-SHA256 / AES-256-CBC; `openssl pkey` reads it),
 * `json` or `binary` (PBKDF2-HMAC-SHA256 / AES-256-GCM envelope with label,
 * created and client id). Default 600,000 PBKDF2 iterations.
 *
 * @param {CryptoKey | CryptoKeyPair} key an extractable private key, or a pair (its public key gives the keyid)
 * @param {string} passphrase
 * @param {BackupOptions} [options]
 * @returns {Promise<Backup>}
 */
export async function exportBackup(key, passphrase, options = {}) {
  await requireEd25519();
  requirePassphrase(passphrase, "a backup");
  const format = options.format ?? "pem";
  if (!(format in BACKUP_TYPES)) throw new TypeError(`unknown backup format ${format} (pem, json or binary)`);
  const { privateKey, keyid } = await backupSource(key);
  /** @type {string | Uint8Array} */
  let data;
  if (format === "pem") {
    data = await pemBackup(privateKey, passphrase, options);
  } else {
    const env = await sealEnvelope(privateKey, keyid, passphrase, options);
    data = format === "json" ? envelopeJson(env) : concat(envelopeHeader(env), env.ciphertext);
  }
  const type = BACKUP_TYPES[format];
  return { format, data, keyid, filename: `datafold-key-${keyid.slice(0, 12)}.${type.extension}`, mimeType: type.mimeType };
}

/**
 * @param {string | ArrayBuffer | ArrayBufferView} data
 * @returns {{bytes: Uint8Array, text: string | null}}
 */
function asInput(data) {
  const bytes = toBytes(data);
  let text = typeof data === "string" ? data : null;
  if (text === null) {
    try {
      text = strictDecoder.decode(bytes);
    } catch {
      text = null;
    }
  }
  return { bytes, text };
}

/**
 * Say what some backup data is, without a passphrase.
 * @param {string | ArrayBuffer | ArrayBufferView} data
 * @returns {BackupKind}
 */
export function identifyBackup(data) {
  const { bytes, text } = asInput(data);
  if (bytes.length >= 4 && hex(bytes.subarray(0, 4)) === hex(MAGIC)) {
    const scrypt = bytes[5] === KDF_SCRYPT;
    return { format: "binary", supported: !scrypt, encrypted: true, description: `DataFold binary backup (${scrypt ? "scrypt: not readable in a browser" : "PBKDF2"})` };
  }
  const trimmed = (text ?? "").trim();
  const pem = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(trimmed);
  if (pem) {
    if (pem[1] === "ENCRYPTED PRIVATE KEY") return { format: "pem", supported: true, encrypted: true, description: "encrypted PKCS#8 PEM" };
    if (pem[1] === "PRIVATE KEY") return { format: "pkcs8", supported: true, encrypted: false, description: "PKCS#8 PEM, NOT encrypted" };
    if (pem[1] === "OPENSSH PRIVATE KEY") return { format: "unknown", supported: false, encrypted: false, description: "an OpenSSH private key: import it with keytools import, then write a backup with keytools backup pem" };
    if (pem[1] === "PUBLIC KEY") return { format: "unknown", supported: false, encrypted: false, description: "a public key, not a private key backup" };
    return { format: "unknown", supported: false, encrypted: false, description: `a PEM of type ${pem[1]}, not an Ed25519 private key backup` };
  }
  if (trimmed.startsWith("{")) {
    try {
      const doc = JSON.parse(trimmed);
      if (doc && doc.format === ENVELOPE_FORMAT) {
        const scrypt = doc.kdf && doc.kdf.name === "scrypt";
        return { format: "json", supported: !scrypt, encrypted: true, description: `DataFold JSON backup (${scrypt ? "scrypt: not readable in a browser" : "PBKDF2"})` };
      }
      if (doc && doc.kty) return { format: "unknown", supported: false, encrypted: false, description: "a JWK, not an encrypted backup" };
    } catch {
      /* fall through */
    }
    return { format: "unknown", supported: false, encrypted: false, description: "JSON that is not a DataFold backup" };
  }
  if (trimmed.startsWith("DataFold key paper backup") || trimmed.startsWith("DataFold key Shamir share")) {
    return { format: "unknown", supported: false, encrypted: false, description: "a DataFold paper or Shamir backup: restore it with keytools restore, then write a PEM backup" };
  }
  return { format: "unknown", supported: false, encrypted: false, description: "not a key backup this page can read (PEM, JSON or binary)" };
}

/**
 * @param {string | ArrayBuffer | ArrayBufferView} data
 * @param {string} passphrase
 */
async function restoreKeys(data, passphrase) {
  await requireEd25519();
  const kind = identifyBackup(data);
  const { bytes, text } = asInput(data);
  /** @type {{extractable: CryptoKey, kept: CryptoKey}} */
  let keys;
  /** @type {{label: string, created: number, clientId: string | null, keyid: string} | null} */
  let info = null;
  let description = kind.description;
  if (kind.format === "pem" || kind.format === "pkcs8") {
    const pem = readPem(text ?? "");
    if (!pem) throw badBackup("no PEM block found");
    if (pem.label === "PRIVATE KEY") {
      keys = await keysFromSeed(seedFromPkcs8(pem.der));
    } else {
      const read = await readEncryptedPkcs8(pem.der, requirePassphrase(passphrase, "this backup"));
      keys = read.keys;
      description = `encrypted PKCS#8 PEM (${read.description})`;
    }
  } else if (kind.format === "json" || kind.format === "binary") {
    const env = kind.format === "json" ? parseEnvelopeJson(text ?? "") : parseEnvelopeBinary(bytes);
    keys = await openEnvelope(env, requirePassphrase(passphrase, "this backup"));
    info = { keyid: env.keyid, label: env.label, created: env.created, clientId: env.clientId };
    description = `DataFold ${kind.format} backup (PBKDF2-HMAC-SHA256 ${env.iterations} iterations / AES-256-GCM)`;
  } else {
    throw new DatafoldAuthError("unsupported_backup", `This is ${kind.description}.`);
  }
  const restored = await finishRestore(keys);
  if (info && info.keyid !== restored.keyid) {
    throw badBackup("the backup is inconsistent: the decrypted key does not have the keyid in its header");
  }
  return { ...restored, format: kind.format, encrypted: kind.encrypted, description, info };
}

/**
 * Read a backup: an encrypted PKCS#8 PEM (keytools, OpenSSL, this module;
 * PBKDF2 with HMAC-SHA-1/256/384/512 and AES-128/192/256-CBC), a DataFold
 * JSON or binary backup with PBKDF2, or an unencrypted PKCS#8 PEM. The key is
 * checked (sign/verify self-test; keyid equal to the one recorded in JSON and
 * binary backups) and returned as a NON-extractable CryptoKey unless
 * `extractable` is true. Errors: `wrong_passphrase`, `unsupported_backup`
 * (scrypt, PBES1, ...), `invalid_backup`, `passphrase_required`.
 *
 * @param {string | ArrayBuffer | ArrayBufferView} data file content
 * @param {string} passphrase
 * @param {{extractable?: boolean}} [options]
 * @returns {Promise<RestoredKey>}
 */
export async function readBackup(data, passphrase, options = {}) {
  const restored = await restoreKeys(data, passphrase);
  const { extractableKey, ...rest } = restored;
  return { ...rest, privateKey: options.extractable ? extractableKey : restored.privateKey };
}

// ------------------------------------------------------------------ passphrase-encrypted storage

/** @param {string} keyid */
function storageAad(keyid) {
  return utf8(`datafold-auth browser key v1 ${keyid}`);
}

/**
 * Wrap a key for storage: PKCS#8 under AES-256-GCM with a PBKDF2-HMAC-SHA256 key
 * (WebCrypto `wrapKey`; the PKCS#8 never reaches script). Also returns the
 * non-extractable copy unwrapped from that very record, for this session.
 * @param {CryptoKey} extractableKey
 * @param {string} keyid
 * @param {string} passphrase
 * @param {number} iterations
 * @returns {Promise<{wrapped: WrappedKey, sessionKey: CryptoKey}>}
 */
async function wrapForStorage(extractableKey, keyid, passphrase, iterations) {
  checkIterations(iterations);
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const kek = await passphraseKey(passphrase, salt, iterations, "SHA-256", { name: "AES-GCM", length: 256 }, ["wrapKey", "unwrapKey"]);
  const params = { name: "AES-GCM", iv: nonce, additionalData: storageAad(keyid) };
  const ciphertext = new Uint8Array(await subtle().wrapKey("pkcs8", extractableKey, kek, params));
  const sessionKey = await subtle().unwrapKey("pkcs8", ciphertext, kek, params, ED25519, false, ["sign"]);
  return { wrapped: { kdf: "pbkdf2-sha256", iterations, salt, cipher: "aes-256-gcm", nonce, ciphertext }, sessionKey };
}

/**
 * @param {WrappedKey} wrapped
 * @param {string} keyid
 * @param {string} passphrase
 * @param {boolean} extractable
 */
async function unwrapFromStorage(wrapped, keyid, passphrase, extractable) {
  const kek = await passphraseKey(passphrase, wrapped.salt, checkIterations(wrapped.iterations), "SHA-256", { name: "AES-GCM", length: 256 }, ["unwrapKey"]);
  try {
    return await subtle().unwrapKey("pkcs8", wrapped.ciphertext, kek, { name: "AES-GCM", iv: wrapped.nonce, additionalData: storageAad(keyid) }, ED25519, extractable, ["sign"]);
  } catch (error) {
    return rethrowCrypto(error);
  }
}

// ------------------------------------------------------------------ IndexedDB key store

const STORE = "keys";
/** Unlocked passphrase-protected keys of this page session (non-extractable CryptoKeys, memory only). */
const sessionKeys = new Map();

/**
 * @param {IDBRequest} request
 * @returns {Promise<any>}
 */
function idbResult(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** @param {unknown} error @param {string} what */
function storageError(error, what) {
  if (error instanceof DatafoldAuthError) return error;
  const name = error && typeof error === "object" && "name" in error ? String(error.name) : "";
  if (name === "ConstraintError") return new DatafoldAuthError("duplicate_key", "This key is already stored in this browser.", { cause: error });
  if (name === "QuotaExceededError") return new DatafoldAuthError("storage_error", "The browser refused to store more data (storage quota).", { cause: error });
  return new DatafoldAuthError("storage_error", `Browser storage failed while ${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

/**
 * @param {StoredRecord} record
 * @param {string} dbName
 * @returns {KeyInfo}
 */
function publicView(record, dbName) {
  const { privateKey, wrapped, ...rest } = record;
  return {
    ...rest,
    extractable: false,
    locked: record.protection === "passphrase" && !sessionKeys.has(`${dbName}\u0000${record.keyid}`),
    iterations: wrapped ? wrapped.iterations : null,
  };
}

/**
 * Keys kept in this browser's IndexedDB (one database per origin).
 *
 * Two protections:
 * - `"non-extractable"` (default): the record holds the non-extractable
 *   `CryptoKey` itself. The browser keeps the key material; script (this
 *   module, the page, or script injected into it) can use the key to sign
 *   while it runs in the page, but cannot read it out.
 * - `"passphrase"`: the record holds the key wrapped with AES-256-GCM under a
 *   PBKDF2-HMAC-SHA256 key (600,000 iterations) from a passphrase. It is
 *   unwrapped once per page session by {@link KeyStore#unlock} into a
 *   non-extractable key held in memory only.
 */
export class KeyStore {
  /**
   * @param {IDBDatabase} db
   * @param {string} name
   */
  constructor(db, name) {
    this.db = db;
    this.name = name;
  }

  /**
   * Open (and create on first use) the key database.
   * @param {{name?: string}} [options] database name (default "datafold-auth")
   * @returns {Promise<KeyStore>}
   */
  static async open(options = {}) {
    const name = options.name ?? "datafold-auth";
    if (typeof indexedDB === "undefined" || !indexedDB) {
      throw new DatafoldAuthError("unsupported_browser", "IndexedDB is not available (private browsing mode, or storage disabled for this site).");
    }
    await requireEd25519();
    const request = indexedDB.open(name, 1);
    request.onupgradeneeded = () => {
      if (!request.result.objectStoreNames.contains(STORE)) request.result.createObjectStore(STORE, { keyPath: "keyid" });
    };
    const db = await new Promise((resolve, reject) => {
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(storageError(request.error, "opening the key database"));
      request.onblocked = () => reject(new DatafoldAuthError("storage_error", "The key database is blocked by another tab of this site; close it and retry."));
    });
    db.onversionchange = () => db.close();
    return new KeyStore(db, name);
  }

  /** Close the database connection. */
  close() {
    this.db.close();
  }

  /**
   * Ask the browser to keep this site's storage when disk space runs low
   * (`navigator.storage.persist()`); otherwise IndexedDB is "best effort" and
   * may be evicted. Resolves to whether storage is persistent.
   * @returns {Promise<boolean>}
   */
  async persist() {
    const storage = globalThis.navigator && globalThis.navigator.storage;
    if (!storage || !storage.persist) return false;
    try {
      return (await storage.persisted()) || (await storage.persist());
    } catch {
      return false;
    }
  }

  /**
   * @param {IDBTransactionMode} mode
   * @param {(store: IDBObjectStore) => IDBRequest} action
   * @param {string} what
   */
  async #run(mode, action, what) {
    try {
      const tx = this.db.transaction(STORE, mode);
      const done = new Promise((resolve, reject) => {
        tx.oncomplete = resolve;
        tx.onabort = () => reject(tx.error);
        tx.onerror = () => reject(tx.error);
      });
      done.catch(() => undefined); // a failed request rejects below; the abort that follows is the same error
      const result = await idbResult(action(tx.objectStore(STORE)));
      await done;
      return result;
    } catch (error) {
      throw storageError(error, what);
    }
  }

  /** @param {string} keyid @returns {Promise<StoredRecord | null>} */
  async #record(keyid) {
    return (await this.#run("readonly", (s) => s.get(keyid), "reading a key")) ?? null;
  }

  /** @param {string} keyid */
  async #require(keyid) {
    const record = await this.#record(keyid);
    if (!record) throw new DatafoldAuthError("key_not_found", `No key ${keyid} in this browser.`);
    return record;
  }

  /** @param {string} keyid */
  #sessionId(keyid) {
    return `${this.name}\u0000${keyid}`;
  }

  /**
   * Every stored key (metadata only), oldest first.
   * @returns {Promise<KeyInfo[]>}
   */
  async list() {
    /** @type {StoredRecord[]} */
    const records = await this.#run("readonly", (s) => s.getAll(), "listing keys");
    return records.sort((a, b) => a.created - b.created || a.keyid.localeCompare(b.keyid)).map((r) => publicView(r, this.name));
  }

  /**
   * @param {string} keyid
   * @returns {Promise<KeyInfo | null>}
   */
  async get(keyid) {
    const record = await this.#record(keyid);
    return record ? publicView(record, this.name) : null;
  }

  /**
   * @param {{privateKey: CryptoKey, extractableKey?: CryptoKey, publicJwk: PublicJwk, keyid: string}} key
   * @param {CreateOptions & {backup?: BackupState | null, created?: number}} options
   * @returns {Promise<KeyInfo>}
   */
  async #store(key, options) {
    const protection = options.protection ?? "non-extractable";
    /** @type {StoredRecord} */
    const record = {
      keyid: key.keyid,
      publicJwk: key.publicJwk,
      label: options.label ?? "",
      clientId: options.clientId ?? null,
      created: options.created ?? Math.floor(Date.now() / 1000),
      protection,
      registration: null,
      backup: options.backup ?? null,
    };
    let sessionKey = null;
    if (protection === "passphrase") {
      if (!key.extractableKey) throw new DatafoldAuthError("not_extractable", "a passphrase-protected copy needs the key while it is still extractable");
      const passphrase = requirePassphrase(options.passphrase, "passphrase-protected storage");
      const made = await wrapForStorage(key.extractableKey, key.keyid, passphrase, options.iterations ?? PBKDF2_ITERATIONS);
      record.wrapped = made.wrapped;
      sessionKey = made.sessionKey;
      await selfTest(sessionKey, key.publicJwk);
    } else if (protection === "non-extractable") {
      if (key.privateKey.extractable) throw new TypeError("only non-extractable keys are stored as CryptoKeys");
      record.privateKey = key.privateKey;
    } else {
      throw new TypeError(`unknown protection ${protection} (non-extractable or passphrase)`);
    }
    await this.#run("readwrite", (s) => (options.overwrite ? s.put(record) : s.add(record)), "storing a key");
    if (sessionKey) sessionKeys.set(this.#sessionId(key.keyid), sessionKey);
    else sessionKeys.delete(this.#sessionId(key.keyid));
    return publicView(record, this.name);
  }

  /**
   * Generate a key in this browser and store it. With protection
   * `"non-extractable"` (default) the key is generated non-extractable and
   * can never be backed up; with `"passphrase"` it is stored wrapped under
   * `passphrase` (and is unlocked for this session).
   *
   * @param {CreateOptions} [options]
   * @returns {Promise<KeyInfo>}
   */
  async create(options = {}) {
    const protection = options.protection ?? "non-extractable";
    if (protection === "passphrase") requirePassphrase(options.passphrase, "passphrase-protected storage");
    const pair = await generateKeyPair({ extractable: protection === "passphrase" });
    const jwk = await publicJwk(pair.publicKey);
    const keyid = await jwkThumbprint(jwk);
    return this.#store({ privateKey: pair.privateKey, extractableKey: pair.privateKey, publicJwk: jwk, keyid }, options);
  }

  /**
   * "Backup at birth": generate an extractable key, write an encrypted backup
   * of it, read that backup back into a NON-extractable key (the proof that
   * the backup restores), store only that copy (or a passphrase-wrapped one)
   * and drop the extractable key. Save `backup.data` (e.g. offer it as a
   * download); then {@link KeyStore#confirmBackup} with the saved file marks
   * the key as backed up.
   *
   * @param {CreateOptions & BackupOptions & {backupPassphrase: string}} options
   * @returns {Promise<{key: KeyInfo, backup: Backup}>}
   */
  async createWithBackup(options) {
    const backupPassphrase = requirePassphrase(options.backupPassphrase, "a backup");
    if (options.protection === "passphrase") requirePassphrase(options.passphrase, "passphrase-protected storage");
    const pair = await generateKeyPair({ extractable: true });
    const created = Math.floor(Date.now() / 1000);
    const backup = await exportBackup(pair, backupPassphrase, { ...options, created, label: options.label ?? "", clientId: options.clientId ?? null });
    const restored = await restoreKeys(backup.data, backupPassphrase);
    if (restored.keyid !== backup.keyid) throw new DatafoldAuthError("self_test_failed", "the backup just written does not restore the key");
    const now = Math.floor(Date.now() / 1000);
    const key = await this.#store(
      { privateKey: restored.privateKey, extractableKey: pair.privateKey, publicJwk: restored.publicJwk, keyid: restored.keyid },
      { ...options, created, backup: { format: backup.format, writtenAt: now, confirmedAt: null } },
    );
    return { key, backup };
  }

  /**
   * Restore a key from a backup (see {@link readBackup}) and store it: the
   * stored copy is non-extractable (or passphrase-wrapped). The record is marked
   * as backed up (the backup it came from exists).
   *
   * @param {string | ArrayBuffer | ArrayBufferView} data
   * @param {string} backupPassphrase
   * @param {CreateOptions} [options] label and clientId default to the backup's (JSON/binary)
   * @returns {Promise<{key: KeyInfo, restored: RestoredKey}>}
   */
  async restore(data, backupPassphrase, options = {}) {
    const restored = await restoreKeys(data, backupPassphrase);
    const now = Math.floor(Date.now() / 1000);
    const key = await this.#store(restored, {
      ...options,
      label: options.label ?? restored.info?.label ?? "",
      clientId: options.clientId ?? restored.info?.clientId ?? null,
      created: restored.info?.created ?? now,
      backup: { format: restored.format, writtenAt: null, confirmedAt: now },
    });
    const { extractableKey, ...rest } = restored;
    return { key, restored: rest };
  }

  /**
   * Check that a saved backup restores this key (decrypts it in memory, compares keyids;
   * nothing is stored) and record the confirmation.
   *
   * @param {string} keyid
   * @param {string | ArrayBuffer | ArrayBufferView} data
   * @param {string} backupPassphrase
   * @returns {Promise<KeyInfo>}
   */
  async confirmBackup(keyid, data, backupPassphrase) {
    const record = await this.#require(keyid);
    const restored = await restoreKeys(data, backupPassphrase);
    if (restored.keyid !== keyid) {
      throw new DatafoldAuthError("backup_mismatch", `This backup holds another key (${restored.keyid}), not ${keyid}.`);
    }
    const now = Math.floor(Date.now() / 1000);
    return this.update(keyid, { backup: { format: restored.format, writtenAt: record.backup?.writtenAt ?? null, confirmedAt: now } });
  }

  /**
   * Write a backup of a passphrase-protected key (non-extractable keys cannot be backed up:
   * reason `not_extractable`).
   *
   * @param {string} keyid
   * @param {string} passphrase the storage passphrase
   * @param {string} backupPassphrase
   * @param {BackupOptions} [options]
   * @returns {Promise<Backup>}
   */
  async exportBackup(keyid, passphrase, backupPassphrase, options = {}) {
    const record = await this.#require(keyid);
    if (record.protection !== "passphrase" || !record.wrapped) {
      throw new DatafoldAuthError("not_extractable", "This key is non-extractable: it cannot be backed up after it was made. Make a new key with a backup, register it, and retire this one.");
    }
    const extractable = await unwrapFromStorage(record.wrapped, keyid, requirePassphrase(passphrase, "unlocking the key"), true);
    const backup = await exportBackup(
      { privateKey: extractable, publicKey: await importPublicJwk(record.publicJwk) },
      backupPassphrase,
      { ...options, label: options.label ?? record.label, clientId: options.clientId ?? record.clientId, created: options.created ?? record.created },
    );
    await this.update(keyid, { backup: { format: backup.format, writtenAt: Math.floor(Date.now() / 1000), confirmedAt: null } });
    return backup;
  }

  /**
   * Unlock a passphrase-protected key for this page session; resolves to its {@link Signer}.
   * A wrong passphrase throws reason `wrong_passphrase`.
   *
   * @param {string} keyid
   * @param {string} passphrase
   * @param {SignerOptions} [options]
   * @returns {Promise<Signer>}
   */
  async unlock(keyid, passphrase, options = {}) {
    const record = await this.#require(keyid);
    if (record.protection !== "passphrase" || !record.wrapped) return this.load(keyid, options);
    const privateKey = await unwrapFromStorage(record.wrapped, keyid, requirePassphrase(passphrase, "unlocking the key"), false);
    await selfTest(privateKey, record.publicJwk);
    sessionKeys.set(this.#sessionId(keyid), privateKey);
    return Signer.create(privateKey, record.publicJwk, options);
  }

  /**
   * Forget the unlocked copy of a passphrase-protected key (all keys without an argument).
   * @param {string} [keyid]
   */
  lock(keyid) {
    if (keyid === undefined) {
      for (const id of Array.from(sessionKeys.keys())) if (id.startsWith(`${this.name}\u0000`)) sessionKeys.delete(id);
    } else {
      sessionKeys.delete(this.#sessionId(keyid));
    }
  }

  /**
   * The {@link Signer} of a stored key. A passphrase-protected key must be
   * unlocked first in this session (else reason `key_locked`).
   *
   * @param {string} keyid
   * @param {SignerOptions} [options]
   * @returns {Promise<Signer>}
   */
  async load(keyid, options = {}) {
    const record = await this.#require(keyid);
    const privateKey = record.protection === "passphrase" ? sessionKeys.get(this.#sessionId(keyid)) : record.privateKey;
    if (!privateKey) throw new DatafoldAuthError("key_locked", "This key is protected by a passphrase: unlock it first.");
    return Signer.create(privateKey, record.publicJwk, options);
  }

  /**
   * Change metadata: label, clientId, registration, backup.
   * @param {string} keyid
   * @param {Partial<Pick<KeyInfo, "label" | "clientId" | "registration" | "backup">>} patch
   * @returns {Promise<KeyInfo>}
   */
  async update(keyid, patch) {
    const record = await this.#require(keyid);
    for (const name of /** @type {const} */ (["label", "clientId", "registration", "backup"])) {
      if (patch[name] !== undefined) /** @type {any} */ (record)[name] = patch[name];
    }
    await this.#run("readwrite", (s) => s.put(record), "updating a key");
    return publicView(record, this.name);
  }

  /**
   * Delete a key from this browser (it cannot be undone; a backup is the only copy left).
   * @param {string} keyid
   */
  async delete(keyid) {
    this.lock(keyid);
    await this.#run("readwrite", (s) => s.delete(keyid), "deleting a key");
  }

  /**
   * Register a stored key at `url` (see {@link register}) and record the
   * outcome. A key the server already has (`duplicate_key`) is not an error:
   * its record is fetched and returned.
   *
   * @param {string} keyid
   * @param {string | URL} url the keys collection, e.g. `${location.origin}/register/keys`
   * @param {RegistrationOptions} [options] clientId defaults to the stored one
   * @returns {Promise<{record: KeyRecord, key: KeyInfo}>}
   */
  async register(keyid, url, options = {}) {
    const signer = await this.load(keyid);
    const info = await this.#require(keyid);
    const clientId = options.clientId ?? info.clientId ?? undefined;
    let record;
    try {
      record = await register(signer, url, { ...options, clientId, label: options.label ?? (info.label || undefined) });
    } catch (error) {
      if (!(error instanceof DatafoldAuthError && error.reason === "duplicate_key")) throw error;
      record = await fetchKeyRecord(url, keyid);
      if (!record) throw error;
    }
    const key = await this.update(keyid, {
      clientId: record.client_id ?? info.clientId,
      registration: { url: String(url), status: record.status, clientId: record.client_id ?? null, checkedAt: Math.floor(Date.now() / 1000) },
    });
    return { record, key };
  }

  /**
   * Ask the server for the key's status (`GET {url}/{keyid}`) and record it:
   * `active`, `pending`, `revoked`, ... or `not_found`.
   *
   * @param {string} keyid
   * @param {string | URL} [url] default: where the key was registered
   * @returns {Promise<KeyInfo>}
   */
  async refreshStatus(keyid, url) {
    const info = await this.#require(keyid);
    const target = url ?? info.registration?.url;
    if (!target) throw new DatafoldAuthError("invalid_request", "This key was never registered; give the registration URL.");
    const record = await fetchKeyRecord(target, keyid);
    return this.update(keyid, {
      registration: { url: String(target), status: record ? record.status : "not_found", clientId: record ? record.client_id : null, checkedAt: Math.floor(Date.now() / 1000) },
    });
  }

  /**
   * Rotate a stored, registered key (protocol.md 7.1): generate the new key
   * and store it here FIRST (so it survives a lost answer), then send the
   * rotation signed by both keys. On success the new key's record says
   * `active` and the old one's `rotated`; sign with the returned `signer`
   * (the old key keeps verifying during the overlap). A refusal deletes the
   * new key again; `rotation_unknown` (the answer is lost and the server
   * cannot be asked) keeps it with status `rotating`: call
   * {@link KeyStore#refreshStatus} on it later (`active` means it happened).
   *
   * Backup at birth, as {@link KeyStore#createWithBackup}: with
   * `backupPassphrase` (and `format`, default `"pem"`) the new key is made
   * through `createWithBackup` and the result carries its `backup` (else
   * `backup` is `null`: a non-extractable new key can never be backed up
   * afterwards). The backup is written before the request is sent; on
   * `rotation_unknown` the error carries it as `error.backup`.
   *
   * @param {string} keyid the current key
   * @param {string | URL} [url] the keys collection (default: where the key was registered)
   * @param {RotationOptions & {protection?: "non-extractable" | "passphrase", passphrase?: string, iterations?: number,
   *   backupPassphrase?: string, format?: "pem" | "json" | "binary"}} [options]
   *   `label`/`expiresAt` are sent to the server when given
   * @returns {Promise<{key: KeyInfo, previous: KeyInfo, record: KeyRecord, signer: Signer, backup: Backup | null}>}
   */
  async rotate(keyid, url, options = {}) {
    const info = await this.#require(keyid);
    const target = url ?? info.registration?.url;
    if (!target) throw new DatafoldAuthError("invalid_request", "This key was never registered; give the registration URL.");
    const signer = await this.load(keyid);
    const clientId = info.registration?.clientId ?? info.clientId ?? null;
    const { backupPassphrase, format, protection, passphrase, iterations, ...wire } = options;
    const made = { label: options.label ?? info.label, clientId, protection, passphrase, iterations };
    const { key: fresh, backup } = backupPassphrase === undefined
      ? { key: await this.create(made), backup: null }
      : await this.createWithBackup({ ...made, backupPassphrase, format });
    const stamp = () => Math.floor(Date.now() / 1000);
    await this.update(fresh.keyid, { registration: { url: String(target), status: "rotating", clientId, checkedAt: stamp() } });
    let result;
    try {
      result = await rotate(signer, await this.load(fresh.keyid), target, wire);
    } catch (error) {
      if (!(error instanceof DatafoldAuthError && error.reason === "rotation_unknown")) await this.delete(fresh.keyid);
      else if (backup) Object.assign(error, { backup });
      throw error;
    }
    const key = await this.update(fresh.keyid, {
      registration: { url: String(target), status: result.record.status, clientId: result.record.client_id ?? clientId, checkedAt: stamp() },
    });
    const previous = await this.update(keyid, {
      registration: { url: String(target), status: result.previous?.status ?? "rotated", clientId: info.registration?.clientId ?? clientId, checkedAt: stamp() },
    });
    return { key, previous, record: result.record, signer: result.signer, backup };
  }

  /**
   * Revoke a stored key on the server as its holder (protocol.md 7.2; final)
   * and record the new status. `options.by`: revoke with another stored key of
   * the same client (a lost device's key from this one).
   *
   * @param {string} keyid
   * @param {string | URL} [url] default: where the key was registered
   * @param {{reason?: string, by?: string}} [options]
   * @returns {Promise<{record: KeyRecord, key: KeyInfo}>}
   */
  async revoke(keyid, url, options = {}) {
    const info = await this.#require(keyid);
    const target = url ?? info.registration?.url;
    if (!target) throw new DatafoldAuthError("invalid_request", "This key was never registered; give the registration URL.");
    const signer = await this.load(options.by ?? keyid);
    const record = await revoke(signer, target, { reason: options.reason, keyid });
    const key = await this.update(keyid, {
      registration: { url: String(target), status: record.status, clientId: record.client_id ?? null, checkedAt: Math.floor(Date.now() / 1000) },
    });
    return { record, key };
  }
}

// ------------------------------------------------------------------ types

/**
 * @typedef {string | number | boolean | Token | SfDecimal | Uint8Array} SfBareItem
 * @typedef {Map<string, SfBareItem> | Record<string, SfBareItem> | [string, SfBareItem][]} SfParams
 * @typedef {[SfBareItem, SfParams]} SfItem
 * @typedef {[SfItem[], SfParams]} SfInnerList
 * @typedef {SfItem | SfInnerList} SfMember
 * @typedef {string | [string, SfParams]} Component
 * @typedef {{kty: "OKP", crv: "Ed25519", x: string}} PublicJwk
 * @typedef {{type?: string, title?: string, status?: number, reason: string, refused_scopes?: string[]}} Problem
 * @typedef {{keyid: string, jwk: PublicJwk, client_id: string, label: string, scopes: string[], status: string,
 *   created_at: number, updated_at: number, expires_at: number | null, fingerprint?: string, replaces?: string | null,
 *   replaced_by?: string | null, rotated_at?: number | null, overlap_until?: number | null}} KeyRecord
 * @typedef {{method?: string, url: string | URL, headers?: HeadersInit, body?: string | ArrayBuffer | ArrayBufferView | null}} SignableRequest
 * @typedef {{method: string, url: URL, fields: Map<string, string[]>, body: Uint8Array}} NormalizedRequest
 * @typedef {{label?: string, tag?: string | null, expiresIn?: number | null, digestAlgorithms?: ("sha-256" | "sha-512")[], fetch?: typeof fetch}} SignerOptions
 * @typedef {{headers: [string, string][], signatureBase: string, created: number, nonce: string, keyid: string}} SignedParts
 * @typedef {{clientId?: string | null, label?: string | null, scopes?: string[] | null, maxRetryWait?: number}} RegistrationOptions
 * @typedef {{label?: string | null, expiresAt?: number | null, now?: number, nonce?: string, newNonce?: string, fetch?: typeof fetch}} RotationOptions
 * @typedef {{url: string, method: "POST", headers: [string, string][], body: string, newSigner: Signer, bases: [string, string]}} SignedRotation
 * @typedef {{signer: Signer, record: KeyRecord, previous: KeyRecord | null}} RotationResult
 * @typedef {{format?: "pem" | "json" | "binary", iterations?: number, label?: string, created?: number, clientId?: string | null,
 *   salt?: Uint8Array, iv?: Uint8Array, nonce?: Uint8Array}} BackupOptions
 * @typedef {{format: "pem" | "json" | "binary", data: string | Uint8Array, keyid: string, filename: string, mimeType: string}} Backup
 * @typedef {{format: "pem" | "pkcs8" | "json" | "binary" | "unknown", supported: boolean, encrypted: boolean, description: string}} BackupKind
 * @typedef {{privateKey: CryptoKey, publicJwk: PublicJwk, keyid: string, format: string, encrypted: boolean, description: string,
 *   info: {keyid: string, label: string, created: number, clientId: string | null} | null}} RestoredKey
 * @typedef {{kdf: "pbkdf2-sha256", iterations: number, salt: Uint8Array, cipher: "aes-256-gcm", nonce: Uint8Array, ciphertext: Uint8Array}} WrappedKey
 * @typedef {{format: string, writtenAt: number | null, confirmedAt: number | null}} BackupState
 * @typedef {{url: string, status: string, clientId: string | null, checkedAt: number}} RegistrationState
 * @typedef {{label?: string, clientId?: string | null, protection?: "non-extractable" | "passphrase", passphrase?: string,
 *   iterations?: number, overwrite?: boolean}} CreateOptions
 * @typedef {{keyid: string, publicJwk: PublicJwk, label: string, clientId: string | null, created: number,
 *   protection: "non-extractable" | "passphrase", registration: RegistrationState | null, backup: BackupState | null,
 *   privateKey?: CryptoKey, wrapped?: WrappedKey}} StoredRecord
 * @typedef {Omit<StoredRecord, "privateKey" | "wrapped"> & {extractable: false, locked: boolean, iterations: number | null}} KeyInfo
 */
