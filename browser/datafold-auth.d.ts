/**
 * Types of datafold-auth.js: Ed25519 keys in WebCrypto and IndexedDB,
 * interoperable encrypted backups, and RFC 9421 signed fetch per the
 * DataFold profile (docs/protocol.md). Guide: docs/browser.md.
 */

export const VERSION: string;
/** Signature label: "df". */
export const LABEL: string;
/** The tag parameter: "datafold". */
export const TAG: string;
/** The alg parameter: "ed25519". */
export const ALGORITHM: string;
/** ["@method", "@authority", "@path", "@query"]. */
export const BASE_COMPONENTS: readonly string[];
/** 600000: PBKDF2-HMAC-SHA256 iterations for backups and passphrase storage. */
export const PBKDF2_ITERATIONS: number;
export const PBKDF2_MIN_ITERATIONS: number;
export const PBKDF2_MAX_ITERATIONS: number;

// ---------------------------------------------------------------- errors

/** An RFC 9457 problem document as the server sends it. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  reason: string;
  /** 403 `scope_not_allowed` from registration: the requested scopes the server refused, as sent. */
  refused_scopes?: string[];
}

/**
 * Every error of the module. `reason` is the server's reason for refused
 * requests (e.g. "digest_mismatch", "duplicate_key") or a client-side code:
 * "unsupported_browser", "wrong_passphrase", "passphrase_required",
 * "invalid_backup", "unsupported_backup", "not_extractable", "key_locked",
 * "key_not_found", "duplicate_key", "backup_mismatch", "storage_error",
 * "self_test_failed", "invalid_key", "invalid_encoding", "invalid_request",
 * "structured_field", "missing_component", "unsupported_component", "http_error".
 */
export class DatafoldAuthError extends Error {
  constructor(reason: string, message: string, options?: { status?: number; problem?: Problem | null; cause?: unknown; retryAfter?: number });
  readonly reason: string;
  /** HTTP status of a server's refusal. */
  readonly status: number | undefined;
  /** The server's problem document, when there was one. */
  readonly problem: Problem | null;
  /** Seconds of the server's Retry-After (429 `rate_limited`, 503). */
  readonly retryAfter: number | undefined;
  /** Set by {@link rotate} when the rotation's outcome is not known or it was not done: the new key, to keep. */
  newSigner?: Signer;
  /** Set by KeyStore.rotate with a backupPassphrase on `rotation_unknown`: the kept new key's backup. */
  backup?: Backup;
}

export class StructuredFieldError extends DatafoldAuthError {
  constructor(message: string);
}

// ---------------------------------------------------------------- support and encodings

export function checkSupport(): Promise<{ ed25519: true; indexedDB: boolean; secureContext: boolean }>;

export type BytesLike = string | ArrayBuffer | ArrayBufferView;

export function utf8(text: string): Uint8Array;
export function toBytes(data: BytesLike | null | undefined): Uint8Array;
export function base64Encode(data: Uint8Array | ArrayBuffer): string;
export function base64Decode(text: string): Uint8Array;
export function base64urlEncode(data: Uint8Array | ArrayBuffer): string;
/** Strict: unpadded, canonical. */
export function base64urlDecode(text: string): Uint8Array;

// ---------------------------------------------------------------- RFC 8941 structured fields

export class Token {
  constructor(value: string);
  readonly value: string;
}
export class SfDecimal {
  constructor(value: number);
  readonly value: number;
}

/** Integer (number), Decimal (SfDecimal, or a non-integral number), String, Token, Byte Sequence, Boolean. */
export type SfBareItem = number | SfDecimal | string | Token | Uint8Array | boolean;
export type SfParams = Map<string, SfBareItem> | Record<string, SfBareItem> | Array<[string, SfBareItem]>;
export type SfItem = [SfBareItem, SfParams];
export type SfInnerList = [SfItem[], SfParams];
export type SfMember = SfItem | SfInnerList;

/** Parsed Items and Inner Lists carry their parameters as a Map. */
export function parseItem(text: string): [SfBareItem, Map<string, SfBareItem>];
export function parseList(text: string): SfMember[];
export function parseDictionary(text: string): Map<string, SfMember>;
export function parseField(value: string | string[], type: "item"): [SfBareItem, Map<string, SfBareItem>];
export function parseField(value: string | string[], type: "list"): SfMember[];
export function parseField(value: string | string[], type: "dictionary"): Map<string, SfMember>;
export function serializeKey(key: string): string;
export function serializeBareItem(value: SfBareItem): string;
export function serializeParams(params: SfParams | undefined): string;
export function serializeItem(item: SfItem): string;
export function serializeInnerList(innerList: SfInnerList): string;
export function serializeList(list: SfMember[]): string;
export function serializeDictionary(dict: Map<string, SfMember> | Record<string, SfMember> | Array<[string, SfMember]>): string;

// ---------------------------------------------------------------- keys

export interface PublicJwk {
  kty: "OKP";
  crv: "Ed25519";
  x: string;
}

/** A non-extractable pair unless `extractable` is true. */
export function generateKeyPair(options?: { extractable?: boolean }): Promise<CryptoKeyPair>;
export function publicJwk(publicKey: CryptoKey): Promise<PublicJwk>;
export function checkPublicJwk(jwk: unknown): PublicJwk;
/** RFC 7638 SHA-256 thumbprint, base64url: the DataFold keyid. */
export function jwkThumbprint(jwk: PublicJwk): Promise<string>;
export function keyIdOf(key: CryptoKey | PublicJwk): Promise<string>;
export function importPublicJwk(jwk: PublicJwk): Promise<CryptoKey>;

// ---------------------------------------------------------------- signing

export type DigestAlgorithm = "sha-256" | "sha-512";
/** A component name such as "@method" or "content-type", or [name, params] e.g. ["signature", {key: "sig1"}]. */
export type Component = string | [string, SfParams];

export interface SignableRequest {
  method?: string;
  /** Absolute, or relative to the page. */
  url: string | URL;
  headers?: HeadersInit;
  body?: BytesLike | null;
}

export function contentDigest(body: BytesLike, algorithms?: DigestAlgorithm[]): Promise<string>;
/** 16 random bytes, base64url. */
export function newNonce(): string;
export function signatureBase(request: SignableRequest, components: Component[], signatureParams: string): string;
export function signMessage(
  privateKey: CryptoKey,
  request: SignableRequest,
  options: { label: string; components: Component[]; params: SfParams },
): Promise<{ signatureInput: string; signature: string; signatureBase: string }>;

export interface SignerOptions {
  /** Default "df". */
  label?: string;
  /** Default "datafold"; null sends no tag. */
  tag?: string | null;
  /** Seconds from created to expires; default 300; null sends no expires. */
  expiresIn?: number | null;
  /** Default ["sha-256"]. */
  digestAlgorithms?: DigestAlgorithm[];
  /** fetch implementation for Signer.fetch (default: globalThis.fetch). */
  fetch?: typeof fetch;
}

export interface SignedParts {
  /** The field lines to add: Content-Digest (with a body), Signature-Input, Signature. */
  headers: Array<[string, string]>;
  signatureBase: string;
  created: number;
  nonce: string;
  keyid: string;
}

export class Signer {
  static create(privateKey: CryptoKey, publicKey: CryptoKey | PublicJwk, options?: SignerOptions): Promise<Signer>;
  readonly privateKey: CryptoKey;
  readonly publicJwk: PublicJwk;
  readonly keyid: string;
  readonly label: string;
  readonly tag: string | null;
  readonly expiresIn: number | null;
  readonly digestAlgorithms: DigestAlgorithm[];
  sign(request: SignableRequest, options?: { now?: number; nonce?: string }): Promise<SignedParts>;
  /** A signed fetch Request (redirect "manual" unless init.redirect is given) and the body bytes that were signed. */
  signedRequest(
    input: RequestInfo | URL,
    init?: RequestInit,
    options?: { now?: number; nonce?: string },
  ): Promise<{ request: Request; signed: SignedParts; body: Uint8Array }>;
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
}

export function signedFetch(signer: Signer, input: RequestInfo | URL, init?: RequestInit): Promise<Response>;

// ---------------------------------------------------------------- registration

export interface RegistrationOptions {
  clientId?: string | null;
  label?: string | null;
  scopes?: string[] | null;
  /** On 429 `rate_limited`, wait up to this many seconds (Retry-After) and sign again (default 0: throw). */
  maxRetryWait?: number;
}

/** The server's key record (docs/protocol.md section 4). */
export interface KeyRecord {
  keyid: string;
  jwk: PublicJwk;
  client_id: string;
  label: string;
  scopes: string[];
  status: "active" | "pending" | "rotated" | "revoked" | "expired" | "suspended" | string;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
  fingerprint?: string;
  replaces?: string | null;
  replaced_by?: string | null;
  rotated_at?: number | null;
  overlap_until?: number | null;
}

export function readProblem(response: Response): Promise<Problem | null>;
export function registrationBody(jwk: PublicJwk, options?: RegistrationOptions): { body: string; headers: Record<string, string> };
export function register(signer: Signer, url: string | URL, options?: RegistrationOptions): Promise<KeyRecord>;
export function fetchKeyRecord(url: string | URL, keyid: string, options?: { fetch?: typeof fetch }): Promise<KeyRecord | null>;
export function retryAfterSeconds(response: Response): number | undefined;
export function describeStatus(status: string): { usable: boolean; text: string };

// ---------------------------------------------------------------- key lifecycle (protocol.md section 7)

export const NEW_KEY_LABEL: "df-new";
export const NEW_KEY_TAG: "datafold-new-key";

export interface RotationOptions {
  /** Sent as the new key's label (default on the server: the current key's). */
  label?: string | null;
  /** Sent as `expires_at` (never later than the current key's). */
  expiresAt?: number | null;
  /** `created` of both signatures, epoch seconds (default: the clock). */
  now?: number;
  /** Nonce of the `df` signature (default: random). */
  nonce?: string;
  /** Nonce of the `df-new` signature (default: random). */
  newNonce?: string;
  fetch?: typeof fetch;
}
export interface SignedRotation {
  url: string;
  method: "POST";
  /** Content-Type, Content-Digest, Signature-Input (`df`, `df-new`), Signature (`df`, `df-new`). */
  headers: [string, string][];
  body: string;
  newSigner: Signer;
  /** The `df` and `df-new` signature bases. */
  bases: [string, string];
}
export interface RotationResult {
  /** Signs with the new key: use it from now on. */
  signer: Signer;
  record: KeyRecord;
  previous: KeyRecord | null;
}

/** The 32-character base32 fingerprint of a keyid, in 8 groups of 4 (protocol.md 7.6). */
export function fingerprint(keyid: string): string;
export function rotationRequest(signer: Signer, newKey: Signer | CryptoKeyPair, url: string | URL, options?: RotationOptions): Promise<SignedRotation>;
export function rotate(signer: Signer, newKey: Signer | CryptoKeyPair, url: string | URL, options?: RotationOptions): Promise<RotationResult>;
export function revoke(signer: Signer, url: string | URL, options?: { reason?: string; keyid?: string }): Promise<KeyRecord>;
export function approve(signer: Signer, url: string | URL, keyid: string): Promise<KeyRecord>;
export function listClientKeys(signer: Signer, url: string | URL, clientId: string): Promise<{ client_id: string; keys: KeyRecord[] }>;

// ---------------------------------------------------------------- backups

export type BackupFormat = "pem" | "json" | "binary";

export interface BackupOptions {
  /** Default "pem". */
  format?: BackupFormat;
  /** PBKDF2 iterations, default 600000 (1000 to 10000000). */
  iterations?: number;
  /** JSON/binary metadata. */
  label?: string;
  created?: number;
  clientId?: string | null;
  /** Fixed values, for test vectors only. */
  salt?: Uint8Array;
  iv?: Uint8Array;
  nonce?: Uint8Array;
}

export interface Backup {
  format: BackupFormat;
  /** PEM and JSON: text; binary: bytes. */
  data: string | Uint8Array;
  keyid: string;
  filename: string;
  mimeType: string;
}

export interface BackupKind {
  format: "pem" | "pkcs8" | "json" | "binary" | "unknown";
  supported: boolean;
  encrypted: boolean;
  description: string;
}

export interface RestoredKey {
  /** Non-extractable unless readBackup(..., {extractable: true}). */
  privateKey: CryptoKey;
  publicJwk: PublicJwk;
  keyid: string;
  format: string;
  encrypted: boolean;
  description: string;
  /** The metadata of JSON and binary backups. */
  info: { keyid: string; label: string; created: number; clientId: string | null } | null;
}

export function exportBackup(key: CryptoKey | CryptoKeyPair, passphrase: string, options?: BackupOptions): Promise<Backup>;
export function identifyBackup(data: BytesLike): BackupKind;
export function readBackup(data: BytesLike, passphrase: string, options?: { extractable?: boolean }): Promise<RestoredKey>;

// ---------------------------------------------------------------- the key store

export type Protection = "non-extractable" | "passphrase";

export interface CreateOptions {
  label?: string;
  clientId?: string | null;
  /** Default "non-extractable". */
  protection?: Protection;
  /** The storage passphrase, for protection "passphrase". */
  passphrase?: string;
  /** PBKDF2 iterations of passphrase storage (default 600000). */
  iterations?: number;
  /** Replace a stored key with the same keyid (restore). */
  overwrite?: boolean;
}

export interface BackupState {
  format: string;
  writtenAt: number | null;
  /** When a saved backup was opened and found to hold this key. */
  confirmedAt: number | null;
}

export interface RegistrationState {
  url: string;
  /** The server's status ("active", "pending", "revoked", ...) or "not_found". */
  status: string;
  clientId: string | null;
  checkedAt: number;
}

/** What the store tells about a key: never the key itself. */
export interface KeyInfo {
  keyid: string;
  publicJwk: PublicJwk;
  label: string;
  clientId: string | null;
  /** Epoch seconds. */
  created: number;
  protection: Protection;
  registration: RegistrationState | null;
  backup: BackupState | null;
  extractable: false;
  /** A passphrase-protected key not unlocked in this page session. */
  locked: boolean;
  iterations: number | null;
}

export class KeyStore {
  static open(options?: { name?: string }): Promise<KeyStore>;
  readonly name: string;
  close(): void;
  /** navigator.storage.persist(): keep the keys when the disk runs low; resolves to whether storage is persistent. */
  persist(): Promise<boolean>;
  list(): Promise<KeyInfo[]>;
  get(keyid: string): Promise<KeyInfo | null>;
  create(options?: CreateOptions): Promise<KeyInfo>;
  createWithBackup(options: CreateOptions & BackupOptions & { backupPassphrase: string }): Promise<{ key: KeyInfo; backup: Backup }>;
  restore(data: BytesLike, backupPassphrase: string, options?: CreateOptions): Promise<{ key: KeyInfo; restored: RestoredKey }>;
  confirmBackup(keyid: string, data: BytesLike, backupPassphrase: string): Promise<KeyInfo>;
  /** Passphrase-protected keys only; non-extractable keys throw "not_extractable". */
  exportBackup(keyid: string, passphrase: string, backupPassphrase: string, options?: BackupOptions): Promise<Backup>;
  unlock(keyid: string, passphrase: string, options?: SignerOptions): Promise<Signer>;
  lock(keyid?: string): void;
  load(keyid: string, options?: SignerOptions): Promise<Signer>;
  update(keyid: string, patch: Partial<Pick<KeyInfo, "label" | "clientId" | "registration" | "backup">>): Promise<KeyInfo>;
  delete(keyid: string): Promise<void>;
  register(keyid: string, url: string | URL, options?: RegistrationOptions): Promise<{ record: KeyRecord; key: KeyInfo }>;
  refreshStatus(keyid: string, url?: string | URL): Promise<KeyInfo>;
  rotate(
    keyid: string,
    url?: string | URL,
    options?: RotationOptions & {
      protection?: "non-extractable" | "passphrase";
      passphrase?: string;
      iterations?: number;
      /** Backup at birth of the new key, as createWithBackup: the result's `backup` (else null). */
      backupPassphrase?: string;
      format?: "pem" | "json" | "binary";
    },
  ): Promise<{ key: KeyInfo; previous: KeyInfo; record: KeyRecord; signer: Signer; backup: Backup | null }>;
  revoke(keyid: string, url?: string | URL, options?: { reason?: string; by?: string }): Promise<{ record: KeyRecord; key: KeyInfo }>;
}
