// SPDX-License-Identifier: Apache-2.0
/**
 * NSM path tokens: ES256 JWTs signed with the workload's X.509-SVID key.
 *
 * Claims (upstream `spiffejwt`): `sub` = own SPIFFE ID; `aud` = [the peer's SPIFFE ID], taken
 * from the peer's TLS certificate (no `aud` without a peer); `exp` = min(now + max token
 * lifetime, own certificate's NotAfter, peer certificate's NotAfter), in whole seconds.
 * Tokens travel as per-RPC metadata `nsm-client-token` with `nsm-client-token-expires` (the
 * expiry as RFC 3339 with nanoseconds, e.g. `2025-01-02T03:04:05.123Z`), and land in
 * `PathSegment.token` / `.expires`.
 *
 * Rotation: the protected header also carries the signing SVID (`x5c`, RFC 7515 §4.1.6). A TLS
 * connection keeps the certificates of its handshake, so after a rotation a hop may sign with a
 * newer SVID than the one its peer saw; {@link verifyTokenSignature} then accepts the token when
 * the `x5c` certificate is a valid SVID of the trust bundle with the same SPIFFE ID as the peer's
 * certificate (upstream verifiers ignore `x5c` and check the peer certificate only).
 */
import { sign as cryptoSign, verify as cryptoVerify, type KeyObject, X509Certificate } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import { invalidArgument } from "../sdk/core/errors.js";
import type { X509Source } from "./source.js";
import { spiffeIdOfCertificate, trySpiffeIdOfCertificate, type X509Bundle, type X509Svid } from "./x509.js";

/** Metadata key of the caller's token. */
export const TOKEN_METADATA_KEY = "nsm-client-token";
/** Metadata key of the token's expiry (RFC 3339 with nanoseconds). */
export const TOKEN_EXPIRES_METADATA_KEY = "nsm-client-token-expires";
/** NSM_MAX_TOKEN_LIFETIME default: 10 minutes. */
export const DEFAULT_MAX_TOKEN_LIFETIME_MS = 10 * 60_000;

/** A minted token and its expiry. */
export interface Token {
  readonly token: string;
  readonly expires: Date;
}

/**
 * Mints a token for talking to `peer` (the TLS peer's leaf certificate; undefined when there is
 * none, e.g. an in-process call). Go's `token.GeneratorFunc`.
 */
export type TokenGenerator = (peer: X509Certificate | undefined) => Promise<Token>;

export interface TokenGeneratorOptions {
  /** NSM_MAX_TOKEN_LIFETIME; may be negative (tests of expiry). @default 600000 (10 min) */
  readonly maxTokenLifetimeMs?: number;
  /** Clock in epoch ms. @default Date.now */
  readonly now?: () => number;
  /**
   * Hand out the same token for the same peer and SVID for this long, instead of signing anew
   * for every call (0: always sign). Its expiry is then up to this much earlier than a new
   * token's would be. @default 1/100 of the max lifetime, at most 5 s (0 for a negative one)
   */
  readonly reuseMs?: number;
}

const publicKeys = new WeakMap<X509Certificate, KeyObject>();

/** The certificate's public key, extracted once per certificate. */
function publicKeyOf(cert: X509Certificate): KeyObject {
  let key = publicKeys.get(cert);
  if (!key) {
    key = cert.publicKey;
    publicKeys.set(cert, key);
  }
  return key;
}

const certIds = new WeakMap<X509Certificate, string>();

function idOf(cert: X509Certificate): string {
  let id = certIds.get(cert);
  if (id === undefined) {
    id = spiffeIdOfCertificate(cert);
    certIds.set(cert, id);
  }
  return id;
}

/** JWS ES256 (RFC 7515/7518): P-256 ECDSA over SHA-256, signature as r‖s (64 bytes). */
const ES256_OPTIONS = { dsaEncoding: "ieee-p1363" } as const;

const headers = new WeakMap<X509Svid, string>();

/** The encoded protected header of tokens signed by `svid` (with its leaf certificate as `x5c`). */
function headerOf(svid: X509Svid): string {
  let v = headers.get(svid);
  if (v === undefined) {
    const x5c = [svid.certificates[0]!.raw.toString("base64")];
    v = Buffer.from(JSON.stringify({ alg: "ES256", typ: "JWT", x5c })).toString("base64url");
    headers.set(svid, v);
  }
  return v;
}

/** A token generator that signs with the current SVID of `source`. */
export function createTokenGenerator(
  source: X509Source,
  options: Readonly<TokenGeneratorOptions> = {},
): TokenGenerator {
  const maxMs = options.maxTokenLifetimeMs ?? DEFAULT_MAX_TOKEN_LIFETIME_MS;
  const now = options.now ?? Date.now;
  const reuseMs = options.reuseMs ?? (maxMs > 0 ? Math.min(5000, Math.floor(maxMs / 100)) : 0);
  const noPeer = {};
  const recent = new WeakMap<object, { svid: X509Svid; token: Token; at: number }>();
  return async (peer) => {
    const { svid } = source.current();
    const t = now();
    const last = reuseMs > 0 ? recent.get(peer ?? noPeer) : undefined;
    if (last && last.svid === svid && t - last.at < reuseMs && last.token.expires.getTime() > t) return last.token;
    let expiresMs = Math.min(t + maxMs, svid.notAfter.getTime());
    const claims: Record<string, unknown> = { sub: svid.spiffeId };
    if (peer) {
      claims.aud = [idOf(peer)];
      expiresMs = Math.min(expiresMs, Date.parse(peer.validTo));
    }
    claims.exp = Math.floor(expiresMs / 1000);
    const input = `${headerOf(svid)}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
    const signature = cryptoSign("sha256", Buffer.from(input), { key: svid.privateKey, ...ES256_OPTIONS });
    const token: Token = { token: `${input}.${signature.toString("base64url")}`, expires: new Date(expiresMs) };
    if (reuseMs > 0) recent.set(peer ?? noPeer, { svid, token, at: t });
    return token;
  };
}

/** Go's time.RFC3339Nano layout for a UTC instant: fraction without trailing zeros, `Z`. */
export function formatRfc3339Nano(date: Date): string {
  const iso = date.toISOString(); // 2006-01-02T15:04:05.000Z
  const [head, frac] = [iso.slice(0, 19), iso.slice(20, 23).replace(/0+$/, "")];
  return frac ? `${head}.${frac}Z` : `${head}Z`;
}

/** An instant with nanosecond precision, as a protobuf Timestamp holds it. */
export interface PreciseTime {
  readonly seconds: bigint;
  readonly nanos: number;
}

const RFC3339_RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Parses RFC 3339 (any fraction up to nanoseconds, `Z` or an offset); InvalidArgument otherwise. */
export function parseRfc3339Nano(value: string): PreciseTime {
  const m = RFC3339_RE.exec(value);
  if (!m) throw invalidArgument(`"${value}" is not an RFC 3339 time`);
  const [, y, mo, d, h, mi, s, frac, , sign, oh, om] = m;
  let seconds = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000;
  if (!Number.isFinite(seconds) || Number(mo) > 12 || Number(d) > 31 || Number(h) > 23 || Number(mi) > 59) {
    throw invalidArgument(`"${value}" is not an RFC 3339 time`);
  }
  if (sign) seconds -= (sign === "+" ? 1 : -1) * (Number(oh) * 3600 + Number(om) * 60);
  return { seconds: BigInt(seconds), nanos: frac ? Number(frac.padEnd(9, "0")) : 0 };
}

/** The per-RPC metadata for a token. */
export function tokenMetadata(token: Token): Record<string, string> {
  return { [TOKEN_METADATA_KEY]: token.token, [TOKEN_EXPIRES_METADATA_KEY]: formatRfc3339Nano(token.expires) };
}

/** A token read from incoming metadata. */
export interface IncomingToken {
  readonly token: string;
  readonly expires: PreciseTime;
}

function single(md: grpc.Metadata, key: string): string {
  const values = md.get(key);
  if (values.length !== 1) throw invalidArgument(`metadata "${key}" has ${values.length} values, expected 1`);
  return String(values[0]);
}

/** The caller's token from incoming metadata; InvalidArgument when missing, repeated or malformed. */
export function tokenFromMetadata(md: grpc.Metadata): IncomingToken {
  const token = single(md, TOKEN_METADATA_KEY);
  return { token, expires: parseRfc3339Nano(single(md, TOKEN_EXPIRES_METADATA_KEY)) };
}

/** JWT claims as this library reads them (unverified). */
export interface TokenClaims {
  readonly sub?: unknown;
  readonly aud?: unknown;
  readonly exp?: unknown;
  readonly [claim: string]: unknown;
}

const B64URL_RE = /^[A-Za-z0-9_-]*={0,2}$/;

function decodePart(part: string): Record<string, unknown> {
  if (!B64URL_RE.test(part)) throw invalidArgument("a JWT part is not base64url");
  const value: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidArgument("a JWT part is not a JSON object");
  }
  return value as Record<string, unknown>;
}

const claimsCache = new Map<string, TokenClaims | Error>();
const CLAIMS_CACHE_MAX = 1024;

/**
 * The claims of a JWS-compact JWT without verifying it (Rego's `io.jwt.decode`): three
 * base64url parts whose first two are JSON objects. Anything else is InvalidArgument.
 */
export function decodeTokenClaims(token: string): TokenClaims {
  const cached = claimsCache.get(token);
  if (cached instanceof Error) throw cached;
  if (cached) return cached;
  let result: TokenClaims | Error;
  try {
    const parts = token.split(".");
    if (parts.length !== 3) throw invalidArgument("a JWT has three dot-separated parts");
    decodePart(parts[0]!);
    result = decodePart(parts[1]!);
    if (!B64URL_RE.test(parts[2]!)) throw invalidArgument("the JWT signature is not base64url");
  } catch (err) {
    result = err instanceof Error ? err : invalidArgument(String(err));
  }
  if (claimsCache.size >= CLAIMS_CACHE_MAX) claimsCache.delete(claimsCache.keys().next().value!);
  claimsCache.set(token, result);
  if (result instanceof Error) throw result;
  return result;
}

/** The `sub` claim of a token (unverified), or undefined when the token has none. */
export function tokenSubject(token: string): string | undefined {
  try {
    const sub = decodeTokenClaims(token).sub;
    return typeof sub === "string" ? sub : undefined;
  } catch {
    return undefined;
  }
}

const goodHeaders = new Map<string, boolean>();

/** Whether an encoded protected header is one this verifier accepts: `alg` ES256, no `crit`. */
function acceptableHeader(encoded: string): boolean {
  let ok = goodHeaders.get(encoded);
  if (ok === undefined) {
    try {
      const h = JSON.parse(Buffer.from(encoded, "base64url").toString("utf8")) as Record<string, unknown>;
      ok = typeof h === "object" && h !== null && h.alg === "ES256" && h.crit === undefined;
    } catch {
      ok = false;
    }
    if (goodHeaders.size >= 256) goodHeaders.delete(goodHeaders.keys().next().value!);
    goodHeaders.set(encoded, ok);
  }
  return ok;
}

const verifiedTokens = new WeakMap<X509Certificate, Map<string, boolean>>();

/** {@link signedBy}, remembered per certificate (a hop sees the same tokens again: reuse, Close). */
function verified(token: string, cert: X509Certificate): boolean {
  let seen = verifiedTokens.get(cert);
  if (!seen) {
    seen = new Map();
    verifiedTokens.set(cert, seen);
  }
  let ok = seen.get(token);
  if (ok === undefined) {
    ok = signedBy(token, cert);
    if (seen.size >= 256) seen.delete(seen.keys().next().value!);
    seen.set(token, ok);
  }
  return ok;
}

/** Whether `token` (JWS compact) carries a valid ES256 signature by `cert`'s key. */
function signedBy(token: string, cert: X509Certificate): boolean {
  const parts = token.split(".");
  if (parts.length !== 3 || !acceptableHeader(parts[0]!)) return false;
  const signature = Buffer.from(parts[2]!, "base64url");
  if (signature.length !== 64) return false;
  try {
    return cryptoVerify(
      "sha256",
      Buffer.from(`${parts[0]}.${parts[1]}`),
      { key: publicKeyOf(cert), ...ES256_OPTIONS },
      signature,
    );
  } catch {
    return false;
  }
}

const x5cCerts = new Map<string, X509Certificate | null>();

/** The certificate of a token's `x5c` header (first entry), or undefined. */
function x5cCertificate(token: string): X509Certificate | undefined {
  const dot = token.indexOf(".");
  if (dot <= 0) return undefined;
  let header: { x5c?: unknown };
  try {
    header = JSON.parse(Buffer.from(token.slice(0, dot), "base64url").toString("utf8")) as { x5c?: unknown };
  } catch {
    return undefined;
  }
  const first = Array.isArray(header.x5c) ? header.x5c[0] : undefined;
  if (typeof first !== "string") return undefined;
  let cert = x5cCerts.get(first);
  if (cert === undefined) {
    try {
      cert = new X509Certificate(Buffer.from(first, "base64"));
    } catch {
      cert = null;
    }
    if (x5cCerts.size >= 256) x5cCerts.delete(x5cCerts.keys().next().value!);
    x5cCerts.set(first, cert);
  }
  return cert ?? undefined;
}

const chained = new WeakMap<X509Certificate, WeakSet<X509Certificate>>();

/** Whether `leaf` was signed by one of the bundle's CA certificates. */
function issuedByBundle(leaf: X509Certificate, bundle: X509Bundle): boolean {
  for (const ca of bundle.certificates) {
    let ok = chained.get(ca);
    if (ok?.has(leaf)) return true;
    if (leaf.checkIssued(ca) && leaf.verify(ca.publicKey)) {
      if (!ok) {
        ok = new WeakSet();
        chained.set(ca, ok);
      }
      ok.add(leaf);
      return true;
    }
  }
  return false;
}

/**
 * Whether `token` carries a valid ES256 signature by the key of `cert` (Rego's
 * `io.jwt.verify_es256`: the signature only, not the claims). With the verifier's trust
 * `bundle`, a token signed by a rotated SVID of the same identity also passes: its `x5c`
 * certificate must be issued by the bundle, valid now, and name the same SPIFFE ID as `cert`.
 */
export async function verifyTokenSignature(
  token: string,
  cert: X509Certificate | undefined,
  bundle?: X509Bundle,
): Promise<boolean> {
  if (!cert || !token) return false;
  if (verified(token, cert)) return true;
  if (!bundle) return false;
  const signer = x5cCertificate(token);
  if (!signer || signer === cert) return false;
  const id = trySpiffeIdOfCertificate(signer);
  if (!id || id !== trySpiffeIdOfCertificate(cert)) return false;
  const now = Date.now();
  if (now < Date.parse(signer.validFrom) || now > Date.parse(signer.validTo)) return false;
  if (!issuedByBundle(signer, bundle)) return false;
  return verified(token, signer);
}
