// SPDX-License-Identifier: Apache-2.0
/**
 * The embedded certificate authority: one trust domain, P-256 keys, short-lived X.509-SVIDs.
 *
 * It stands in for a SPIRE server in the local runtime and in tests. The CA certificate is
 * self-signed (basic constraints CA, key usage keyCertSign/cRLSign, URI SAN
 * `spiffe://<trust domain>`); SVIDs follow the X.509-SVID profile: exactly one URI SAN (the
 * SPIFFE ID), not a CA, key usage digitalSignature/keyEncipherment/keyAgreement, extended key
 * usage serverAuth+clientAuth, subject and authority key identifiers, and a `notBefore` 30 s in
 * the past to absorb clock skew. The CA does not rotate itself (default lifetime one year);
 * persist it with {@link CertificateAuthority.export} and {@link loadCa}.
 *
 * @peculiar/x509 (with reflect-metadata) is loaded on first use: it is most of the module-loading
 * time of every role that imports the security barrel (~0.6 s of ~1 s on a loaded machine), and
 * only a CA needs it.
 */
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from "node:crypto";
import type * as X509Lib from "@peculiar/x509";
import { invalidArgument } from "../sdk/core/errors.js";
import { checkTrustDomain, parseSpiffeId, trustDomainId } from "./spiffeid.js";
import { createBundle, spiffeIdOfCertificate, svidFromDer, type X509Bundle, type X509Svid } from "./x509.js";

let loading: Promise<typeof X509Lib> | undefined;

/** @peculiar/x509, loaded once, using Node's WebCrypto. */
function x509Lib(): Promise<typeof X509Lib> {
  loading ??= (async () => {
    await import("reflect-metadata");
    const lib = await import("@peculiar/x509");
    lib.cryptoProvider.set(webcrypto as never);
    return lib;
  })();
  return loading;
}

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** Default lifetime of the CA certificate: one year. */
export const DEFAULT_CA_TTL_MS = 365 * 24 * 3600_000;
/** Default lifetime of an issued X.509-SVID: one hour. */
export const DEFAULT_SVID_TTL_MS = 3600_000;
/** How far `notBefore` is put in the past, for peers whose clocks lag. */
const BACKDATE_MS = 30_000;

export interface CreateCaOptions {
  /** The trust domain, e.g. `nsm.local`. Required. */
  readonly trustDomain: string;
  /** Lifetime of the CA certificate. @default 1 year */
  readonly ttlMs?: number;
  /** Default lifetime of issued SVIDs. @default 1 h */
  readonly svidTtlMs?: number;
}

export interface IssueOptions {
  /** Lifetime of this SVID. @default the CA's `svidTtlMs` */
  readonly ttlMs?: number;
  /** Issue time. @default now */
  readonly now?: Date;
}

/** A CA that issues X.509-SVIDs for one trust domain. */
export interface CertificateAuthority {
  readonly trustDomain: string;
  /** The CA certificate (the only member of the bundle). */
  readonly certificate: X509Certificate;
  /** The trust bundle to hand to workloads. */
  readonly bundle: X509Bundle;
  /** Default SVID lifetime. */
  readonly svidTtlMs: number;
  /** Issues an SVID for `spiffeId` (which must be in this trust domain) with a fresh P-256 key. */
  issue(spiffeId: string, options?: IssueOptions): Promise<X509Svid>;
  /** The CA certificate and PKCS#8 key as PEM, for {@link loadCa}. Keep the key secret. */
  export(): { certificatePem: string; privateKeyPem: string };
}

function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive
  if (b[0] === 0) b[0] = 1;
  return b.toString("hex");
}

class Ca implements CertificateAuthority {
  readonly certificate: X509Certificate;
  readonly bundle: X509Bundle;

  constructor(
    readonly trustDomain: string,
    private readonly x509: typeof X509Lib,
    private readonly caCert: X509Lib.X509Certificate,
    private readonly caKey: webcrypto.CryptoKey,
    readonly svidTtlMs: number,
  ) {
    this.certificate = new X509Certificate(Buffer.from(caCert.rawData));
    this.bundle = createBundle(trustDomain, [this.certificate]);
  }

  async issue(spiffeId: string, options: IssueOptions = {}): Promise<X509Svid> {
    const { trustDomain } = parseSpiffeId(spiffeId);
    if (trustDomain !== this.trustDomain) {
      throw invalidArgument(`cannot issue ${spiffeId}: this CA serves the trust domain ${this.trustDomain}`);
    }
    const ttlMs = options.ttlMs ?? this.svidTtlMs;
    if (!(ttlMs > 0)) throw invalidArgument(`SVID lifetime must be positive, got ${ttlMs} ms`);
    const now = options.now ?? new Date();
    const x509 = this.x509;
    const notAfter = new Date(Math.min(now.getTime() + ttlMs, this.caCert.notAfter.getTime()));
    const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: "O=SPIFFE",
      issuer: this.caCert.subject,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter,
      signingAlgorithm: ALGORITHM,
      publicKey: keys.publicKey as never,
      signingKey: this.caKey as never,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.keyAgreement,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: "url", value: spiffeId }], false),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
        await x509.AuthorityKeyIdentifierExtension.create(this.caCert),
      ],
    });
    const keyDer = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
    return svidFromDer(new Uint8Array(cert.rawData), new Uint8Array(keyDer), spiffeId);
  }

  export(): { certificatePem: string; privateKeyPem: string } {
    return { certificatePem: this.certificate.toString(), privateKeyPem: this.#keyPem! };
  }

  #keyPem: string | undefined;
  setKeyPem(pem: string): this {
    this.#keyPem = pem;
    return this;
  }
}

/** Creates a CA with a new P-256 key and a self-signed certificate for `trustDomain`. */
export async function createCa(options: Readonly<CreateCaOptions>): Promise<CertificateAuthority> {
  const trustDomain = checkTrustDomain(options.trustDomain);
  const ttlMs = options.ttlMs ?? DEFAULT_CA_TTL_MS;
  const svidTtlMs = options.svidTtlMs ?? DEFAULT_SVID_TTL_MS;
  if (!(ttlMs > 0) || !(svidTtlMs > 0)) throw invalidArgument("CA and SVID lifetimes must be positive");
  const x509 = await x509Lib();
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `O=SPIFFE, CN=${trustDomain}`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + ttlMs),
    signingAlgorithm: ALGORITHM,
    keys: keys as never,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: trustDomainId(trustDomain) }], false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
    ],
  });
  const keyDer = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const keyPem = createPrivateKey({ key: keyDer, format: "der", type: "pkcs8" }).export({
    format: "pem",
    type: "pkcs8",
  }) as string;
  return new Ca(trustDomain, x509, cert, keys.privateKey, svidTtlMs).setKeyPem(keyPem);
}

export interface LoadCaOptions {
  /** The CA certificate (PEM), as {@link CertificateAuthority.export} wrote it. */
  readonly certificatePem: string;
  /** The CA's PKCS#8 private key (PEM). */
  readonly privateKeyPem: string;
  /** Default lifetime of issued SVIDs. @default 1 h */
  readonly svidTtlMs?: number;
}

/** Loads a CA saved with {@link CertificateAuthority.export}; its trust domain comes from its URI SAN. */
export async function loadCa(options: Readonly<LoadCaOptions>): Promise<CertificateAuthority> {
  const x509 = await x509Lib();
  const cert = new x509.X509Certificate(options.certificatePem);
  const nodeCert = new X509Certificate(Buffer.from(cert.rawData));
  if (!nodeCert.ca) throw invalidArgument("the certificate is not a CA certificate");
  const id = spiffeIdOfCertificate(nodeCert);
  const { trustDomain, path } = parseSpiffeId(id);
  if (path !== "") throw invalidArgument(`a CA certificate names a trust domain, not ${id}`);
  const keyDer = createPrivateKey(options.privateKeyPem).export({ format: "der", type: "pkcs8" }) as Buffer;
  const key = await webcrypto.subtle.importKey("pkcs8", keyDer, ALGORITHM, false, ["sign"]);
  if (!nodeCert.checkPrivateKey(createPrivateKey(options.privateKeyPem))) {
    throw invalidArgument("the private key does not belong to the CA certificate");
  }
  return new Ca(trustDomain, x509, cert, key, options.svidTtlMs ?? DEFAULT_SVID_TTL_MS).setKeyPem(
    options.privateKeyPem,
  );
}
