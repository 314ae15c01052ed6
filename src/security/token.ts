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
 */
import { webcrypto, type X509Certificate } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import { compactVerify, SignJWT } from "jose";
import { invalidArgument } from "../sdk/core/errors.js";
import type { X509Source } from "./source.js";
import { spiffeIdOfCertificate, type X509Svid } from "./x509.js";

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
}

const ES256 = { name: "ECDSA", namedCurve: "P-256" } as const;
const signingKeys = new WeakMap<X509Svid, Promise<webcrypto.CryptoKey>>();
const verifyingKeys = new WeakMap<X509Certificate, Promise<webcrypto.CryptoKey>>();

/** The SVID's key as a WebCrypto key, imported once per SVID (jose would convert it on every call). */
function signingKey(svid: X509Svid): Promise<webcrypto.CryptoKey> {
  let key = signingKeys.get(svid);
  if (!key) {
    key = webcrypto.subtle.importKey("pkcs8", svid.privateKey.export({ format: "der", type: "pkcs8" }), ES256, false, [
      "sign",
    ]);
    signingKeys.set(svid, key);
  }
  return key;
}

/** The certificate's public key as a WebCrypto ECDSA P-256 key, imported once per certificate. */
function verifyingKey(cert: X509Certificate): Promise<webcrypto.CryptoKey> {
  let key = verifyingKeys.get(cert);
  if (!key) {
    key = webcrypto.subtle.importKey("spki", cert.publicKey.export({ format: "der", type: "spki" }), ES256, false, [
      "verify",
    ]);
    verifyingKeys.set(cert, key);
  }
  return key;
}

/** A token generator that signs with the current SVID of `source`. */
export function createTokenGenerator(
  source: X509Source,
  options: Readonly<TokenGeneratorOptions> = {},
): TokenGenerator {
  const maxMs = options.maxTokenLifetimeMs ?? DEFAULT_MAX_TOKEN_LIFETIME_MS;
  const now = options.now ?? Date.now;
  return async (peer) => {
    const { svid } = source.current();
    let expiresMs = Math.min(now() + maxMs, svid.notAfter.getTime());
    const jwt = new SignJWT({}).setProtectedHeader({ alg: "ES256", typ: "JWT" }).setSubject(svid.spiffeId);
    if (peer) {
      jwt.setAudience([spiffeIdOfCertificate(peer)]);
      expiresMs = Math.min(expiresMs, new Date(peer.validTo).getTime());
    }
    jwt.setExpirationTime(Math.floor(expiresMs / 1000));
    return { token: await jwt.sign(await signingKey(svid)), expires: new Date(expiresMs) };
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

/**
 * Whether `token` carries a valid ES256 signature by the key of `cert` (Rego's
 * `io.jwt.verify_es256`: the signature only, not the claims).
 */
export async function verifyTokenSignature(token: string, cert: X509Certificate | undefined): Promise<boolean> {
  if (!cert || !token) return false;
  try {
    await compactVerify(token, await verifyingKey(cert), { algorithms: ["ES256"] });
    return true;
  } catch {
    return false;
  }
}
