// SPDX-License-Identifier: Apache-2.0
/**
 * The HTTPS side of the admission webhook: `POST /mutate` takes an `admission.k8s.io/v1`
 * AdmissionReview and answers it with the review's response (./review.ts); `GET /ready`
 * answers 200. A body that is not JSON, not an AdmissionReview or lacks `request.uid` gets
 * `400` with a one-line reason; a body over 4 MiB gets `413`; any other path `404`.
 * {@link selfSignedCertificate} makes the serving certificate when none is given (a P-256
 * self-signed CA certificate for the service's DNS names and any extra names/IPs, whose PEM is
 * then the caBundle), as upstream's `selfregister` mode does.
 */
import { createPrivateKey, webcrypto } from "node:crypto";
import { createServer, type Server } from "node:https";
import { isIP } from "node:net";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import type { Logger } from "../../sdk/core/logger.js";
import { type AdmissionRequest, type InjectionConfig, type NamespaceAnnotations, reviewAdmission } from "./review.js";

const MAX_BODY = 4 * 1024 * 1024;
const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export interface ServingCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  /** What the MutatingWebhookConfiguration's caBundle holds (PEM). */
  readonly caBundlePem: string;
}

/** A self-signed certificate for `names` (DNS names or IP addresses), valid for one year. */
export async function selfSignedCertificate(commonName: string, names: readonly string[]): Promise<ServingCertificate> {
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
      .toString("hex")
      .replace(/^[89a-f]/, "1"),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 365 * 24 * 3600_000),
    signingAlgorithm: ALGORITHM,
    keys: keys as never,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        names.map((n) => (isIP(n) ? { type: "ip" as const, value: n } : { type: "dns" as const, value: n })),
      ),
    ],
  });
  const keyDer = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const keyPem = createPrivateKey({ key: keyDer, format: "der", type: "pkcs8" }).export({
    format: "pem",
    type: "pkcs8",
  });
  const certPem = cert.toString("pem");
  return { certPem, keyPem: keyPem as string, caBundlePem: certPem };
}

export interface WebhookServerOptions {
  readonly config: InjectionConfig;
  readonly certificate: ServingCertificate;
  readonly namespaceAnnotations: NamespaceAnnotations;
  readonly log: Logger;
}

class BadRequest extends Error {}

/** The AdmissionReview's request, or BadRequest saying why the body is not one. */
export function parseAdmissionReview(body: string): { apiVersion: string; request: AdmissionRequest } {
  let review: unknown;
  try {
    review = JSON.parse(body);
  } catch {
    throw new BadRequest("body is not JSON");
  }
  const r = review as { apiVersion?: unknown; kind?: unknown; request?: Partial<AdmissionRequest> } | null;
  if (!r || typeof r !== "object" || r.kind !== "AdmissionReview") throw new BadRequest("not an AdmissionReview");
  if (typeof r.apiVersion !== "string" || !r.apiVersion.startsWith("admission.k8s.io/")) {
    throw new BadRequest(`unsupported apiVersion ${JSON.stringify(r.apiVersion)}`);
  }
  const req = r.request;
  if (!req || typeof req.uid !== "string" || typeof req.kind?.kind !== "string" || typeof req.operation !== "string") {
    throw new BadRequest("AdmissionReview without request.uid, request.kind or request.operation");
  }
  return { apiVersion: r.apiVersion, request: req as AdmissionRequest };
}

async function readBody(req: import("node:http").IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Creates (does not start) the HTTPS server. */
export function webhookServer(options: WebhookServerOptions): Server {
  const { config, certificate, namespaceAnnotations, log } = options;
  return createServer({ cert: certificate.certPem, key: certificate.keyPem, minVersion: "TLSv1.2" }, (req, res) => {
    const reply = (code: number, body: string, type = "text/plain") => {
      res.writeHead(code, { "content-type": type });
      res.end(body);
    };
    const path = (req.url ?? "").split("?")[0];
    if (req.method === "GET" && path === "/ready") return reply(200, "ok\n");
    if (req.method !== "POST" || path !== "/mutate") return reply(404, "not found\n");
    void (async () => {
      const body = await readBody(req);
      if (body === undefined) return reply(413, "request body too large\n");
      const { apiVersion, request } = parseAdmissionReview(body);
      const response = await reviewAdmission(request, config, namespaceAnnotations);
      log.info(
        {
          uid: request.uid,
          kind: request.kind.kind,
          namespace: request.namespace,
          allowed: response.allowed,
          patched: !!response.patch,
        },
        response.status?.message ?? "admission reviewed",
      );
      reply(200, JSON.stringify({ apiVersion, kind: "AdmissionReview", response }), "application/json");
    })().catch((err: unknown) => {
      if (err instanceof BadRequest) return reply(400, `${err.message}\n`);
      log.error({ err: String(err) }, "admission review failed");
      if (!res.headersSent) reply(500, "internal error\n");
    });
  });
}
