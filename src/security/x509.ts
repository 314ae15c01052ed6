// SPDX-License-Identifier: Apache-2.0
/**
 * X.509-SVIDs and trust bundles as this library holds them, and the encodings they travel in.
 *
 * - The Workload API carries certificate chains and bundles as DER certificates back to back
 *   ({@link splitDerCertificates}); TLS wants PEM ({@link toPem}).
 * - An X.509-SVID's identity is its one `URI:spiffe://…` subject alternative name
 *   ({@link spiffeIdOfCertificate}); a leaf with none, or with several, is not an SVID.
 * Certificates are node:crypto `X509Certificate` objects (parsing and verification in core).
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import type { PeerCertificate } from "node:tls";
import { invalidArgument } from "../sdk/core/errors.js";
import { spiffeIdProblem, trustDomainOf } from "./spiffeid.js";

/** One X.509-SVID: the identity, its certificate chain (leaf first) and private key. */
export interface X509Svid {
  readonly spiffeId: string;
  /** Leaf first, then intermediates (never the root). */
  readonly certificates: readonly X509Certificate[];
  readonly privateKey: KeyObject;
  /** The chain as PEM (for TLS contexts). */
  readonly certificatesPem: string;
  /** The private key as PKCS#8 PEM. */
  readonly privateKeyPem: string;
  /** The leaf's expiry. */
  readonly notAfter: Date;
  /** Optional operator hint from the Workload API. */
  readonly hint?: string;
}

/** The CA certificates of one trust domain. */
export interface X509Bundle {
  readonly trustDomain: string;
  readonly certificates: readonly X509Certificate[];
  /** All certificates as PEM (for TLS `ca`). */
  readonly pem: string;
}

/** DER → PEM (`CERTIFICATE` by default). */
export function toPem(der: Uint8Array, label = "CERTIFICATE"): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Reads the length of the DER element at `offset`; returns [header length, content length]. */
function derLength(buf: Uint8Array, offset: number): [number, number] {
  const first = buf[offset + 1];
  if (first === undefined) throw invalidArgument("truncated DER certificate");
  if (first < 0x80) return [2, first];
  const n = first & 0x7f;
  if (n === 0 || n > 4) throw invalidArgument("unsupported DER length encoding");
  let len = 0;
  for (let i = 0; i < n; i++) {
    const b = buf[offset + 2 + i];
    if (b === undefined) throw invalidArgument("truncated DER certificate");
    len = len * 256 + b;
  }
  return [2 + n, len];
}

/** Splits DER certificates stored back to back (Workload API `x509_svid` and `bundle`). */
export function splitDerCertificates(data: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  while (offset < data.length) {
    if (data[offset] !== 0x30) throw invalidArgument("DER data does not start with a certificate SEQUENCE");
    const [header, length] = derLength(data, offset);
    const end = offset + header + length;
    if (end > data.length) throw invalidArgument("truncated DER certificate");
    out.push(Buffer.from(data.subarray(offset, end)));
    offset = end;
  }
  return out;
}

/** Parses DER certificates stored back to back. */
export function parseDerCertificates(data: Uint8Array): X509Certificate[] {
  return splitDerCertificates(data).map((der) => new X509Certificate(der));
}

/** The URI SANs of a certificate (node's `subjectAltName` text; quoted values are unquoted). */
function uriSans(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const out: string[] = [];
  // Node quotes a value containing a separator as a JSON string: URI:"a, b".
  const re = /(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (let m = re.exec(subjectAltName); m; m = re.exec(subjectAltName)) {
    const raw = m[1]!;
    out.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
  }
  return out;
}

const idCache = new Map<string, string | Error>();
const ID_CACHE_MAX = 512;

/**
 * The SPIFFE ID of an X.509-SVID: its single `spiffe://` URI SAN. A certificate with no URI
 * SAN, several, or an invalid one is InvalidArgument (it is not an SVID).
 */
export function spiffeIdOfCertificate(cert: X509Certificate | PeerCertificate): string {
  const key = cert instanceof X509Certificate ? cert.fingerprint256 : cert.fingerprint256;
  const cached = idCache.get(key);
  if (typeof cached === "string") return cached;
  if (cached) throw cached;
  const sans = uriSans(cert instanceof X509Certificate ? cert.subjectAltName : cert.subjectaltname);
  let result: string | Error;
  if (sans.length !== 1) {
    result = invalidArgument(`the certificate has ${sans.length} URI SANs; an X.509-SVID has exactly one`, {
      reason: "not-an-svid",
    });
  } else {
    const problem = spiffeIdProblem(sans[0]!);
    result = problem
      ? invalidArgument(`the certificate's URI SAN "${sans[0]}" is not a SPIFFE ID: ${problem}`, {
          reason: "not-an-svid",
        })
      : sans[0]!;
  }
  if (idCache.size >= ID_CACHE_MAX) idCache.delete(idCache.keys().next().value!);
  idCache.set(key, result);
  if (typeof result === "string") return result;
  throw result;
}

/** The SPIFFE ID of a certificate, or undefined if it is not an SVID. */
export function trySpiffeIdOfCertificate(cert: X509Certificate | PeerCertificate | undefined): string | undefined {
  if (!cert) return undefined;
  try {
    return spiffeIdOfCertificate(cert);
  } catch {
    return undefined;
  }
}

const peerCache = new Map<string, X509Certificate>();
const PEER_CACHE_MAX = 256;

/**
 * A node:crypto certificate from a TLS peer certificate (its `raw` DER). Parsed certificates are
 * cached by their DER (grpc-js hands out a new PeerCertificate object per call, and parsing costs
 * more than the rest of a call's security work).
 */
export function certificateOfPeer(peer: PeerCertificate | undefined): X509Certificate | undefined {
  if (!peer?.raw || peer.raw.length === 0) return undefined;
  const key = peer.raw.toString("base64");
  let cert = peerCache.get(key);
  if (!cert) {
    cert = new X509Certificate(peer.raw);
    if (peerCache.size >= PEER_CACHE_MAX) peerCache.delete(peerCache.keys().next().value!);
    peerCache.set(key, cert);
  }
  return cert;
}

/** Builds a bundle from certificates (all must be CA certificates). */
export function createBundle(trustDomain: string, certificates: readonly X509Certificate[]): X509Bundle {
  return { trustDomain, certificates, pem: certificates.map((c) => c.toString()).join("") };
}

/**
 * Builds an SVID from its DER chain and PKCS#8 DER key (the Workload API form), checking that
 * the leaf's URI SAN is `spiffeId` when given and that the key belongs to the leaf.
 */
export function svidFromDer(chainDer: Uint8Array, keyDer: Uint8Array, spiffeId?: string, hint?: string): X509Svid {
  const certificates = parseDerCertificates(chainDer);
  const leaf = certificates[0];
  if (!leaf) throw invalidArgument("the X.509-SVID has no certificate");
  const id = spiffeIdOfCertificate(leaf);
  if (spiffeId !== undefined && spiffeId !== id) {
    throw invalidArgument(`the X.509-SVID says ${spiffeId} but its certificate is for ${id}`);
  }
  const privateKey = createPrivateKey({ key: Buffer.from(keyDer), format: "der", type: "pkcs8" });
  if (!leaf.checkPrivateKey(privateKey)) throw invalidArgument(`the private key does not belong to the SVID of ${id}`);
  return {
    spiffeId: id,
    certificates,
    privateKey,
    certificatesPem: certificates.map((c) => c.toString()).join(""),
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }) as string,
    notAfter: new Date(leaf.validTo),
    hint: hint || undefined,
  };
}

/** The DER chain of an SVID, back to back (Workload API `x509_svid`). */
export function svidChainDer(svid: X509Svid): Buffer {
  return Buffer.concat(svid.certificates.map((c) => c.raw));
}

/** The PKCS#8 DER of an SVID's key (Workload API `x509_svid_key`). */
export function svidKeyDer(svid: X509Svid): Buffer {
  return svid.privateKey.export({ format: "der", type: "pkcs8" }) as Buffer;
}

/** The DER certificates of a bundle, back to back (Workload API `bundle`). */
export function bundleDer(bundle: X509Bundle): Buffer {
  return Buffer.concat(bundle.certificates.map((c) => c.raw));
}

/** The trust domain of an SVID. */
export function trustDomainOfSvid(svid: X509Svid): string {
  return trustDomainOf(svid.spiffeId);
}

/**
 * Verifies that `leaf` (with optional `intermediates`) chains to a certificate of `bundle` and is
 * valid at `now`: each link is checked with `checkIssued` and a signature verification. Used
 * where Node's TLS stack does not verify for us (token policies, Workload API sanity checks).
 */
export function chainsToBundle(
  leaf: X509Certificate,
  bundle: X509Bundle,
  intermediates: readonly X509Certificate[] = [],
  now: Date = new Date(),
): boolean {
  const inTime = (c: X509Certificate) => new Date(c.validFrom) <= now && now <= new Date(c.validTo);
  let cur = leaf;
  const pool = [...intermediates];
  for (let depth = 0; depth < 8; depth++) {
    if (!inTime(cur)) return false;
    const root = bundle.certificates.find((r) => cur.checkIssued(r) && cur.verify(r.publicKey));
    if (root) return inTime(root);
    const i = pool.findIndex((c) => c.ca && cur.checkIssued(c) && cur.verify(c.publicKey));
    if (i < 0) return false;
    cur = pool.splice(i, 1)[0]!;
  }
  return false;
}
