// SPDX-License-Identifier: Apache-2.0
/**
 * Test helpers for the security tests (never imported by production code): a throwaway PKI,
 * gRPC servers on unix sockets in temp dirs, and a logger that records what it is given.
 */
import "reflect-metadata";
import { createPrivateKey, webcrypto, X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as x509 from "@peculiar/x509";
import { MonitorConnection, type MonitorScopeSelector } from "../api/index.js";
import { CallContext } from "../sdk/core/context.js";
import { Code, NsmError } from "../sdk/core/errors.js";
import type { Logger, LogLevel } from "../sdk/core/logger.js";
import { grpcDefinition, grpcPeerKey } from "../sdk/grpc/service.js";
import { type CertificateAuthority, createCa } from "./ca.js";
import type { MonitorConnectionServiceImpl } from "./networkservice/monitor.js";
import { createCaX509Source, type X509Source } from "./source.js";
import type { X509Svid } from "./x509.js";

/** A CA and the sources issued from it, closed together. */
export interface TestPki {
  readonly ca: CertificateAuthority;
  readonly trustDomain: string;
  /** `spiffe://<trust domain>/<name>` */
  id(name: string): string;
  /** A rotating in-process source for `spiffe://<td>/<name>`. */
  source(name: string, options?: { ttlMs?: number }): Promise<X509Source>;
  close(): void;
}

export async function createTestPki(trustDomain = "test.nsm"): Promise<TestPki> {
  const ca = await createCa({ trustDomain });
  const sources: X509Source[] = [];
  return {
    ca,
    trustDomain,
    id: (name) => `spiffe://${trustDomain}/${name}`,
    async source(name, options = {}) {
      const s = await createCaX509Source(ca, `spiffe://${trustDomain}/${name}`, options);
      sources.push(s);
      return s;
    },
    close: () => {
      for (const s of sources) s.close();
    },
  };
}

/** A temp dir removed by the returned cleanup. */
export function tempDir(prefix = "nsm-sec-"): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Binds `server` on a unix socket in `dir`; resolves to the NSM URL (`unix:///…`). */
export async function bindUnix(server: grpc.Server, credentials: grpc.ServerCredentials, dir: string, name = "s.sock") {
  const path = join(dir, name);
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(`unix://${path}`, credentials, (err, port) => (err ? reject(err) : resolve(port))),
  );
  return `unix://${path}`;
}

/** Stops a server at once. */
export function stopServer(server: grpc.Server): void {
  server.forceShutdown();
}

export interface LogRecord {
  readonly level: LogLevel;
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

/** A logger that keeps every record (all levels enabled except trace). */
export function recordingLogger(
  records: LogRecord[] = [],
  bindings: Record<string, unknown> = {},
): Logger & {
  records: LogRecord[];
} {
  const at =
    (level: LogLevel) =>
    (a: Record<string, unknown> | string, b?: string): void => {
      if (typeof a === "string") records.push({ level, fields: { ...bindings }, msg: a });
      else records.push({ level, fields: { ...bindings, ...a }, msg: b ?? "" });
    };
  return {
    records,
    trace: () => {},
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: (more) => recordingLogger(records, { ...bindings, ...more }),
    isLevelEnabled: (level) => level !== "trace",
    level: "debug",
  };
}

/**
 * Serves MonitorConnection on `server` like the endpoint does, but ends a failed stream with its
 * status (grpc-js `emit("error")`): `addService`'s stream pump currently loses the status of a
 * stream that fails before its first message (reported with this issue).
 */
export function serveMonitorConnection(server: grpc.Server, impl: MonitorConnectionServiceImpl): void {
  server.addService(grpcDefinition(MonitorConnection), {
    monitorConnections: (call: grpc.ServerWritableStream<MonitorScopeSelector, unknown>) => {
      const ac = new AbortController();
      call.on("cancelled", () => ac.abort());
      const ctx = CallContext.create({ signal: ac.signal }).with(grpcPeerKey, {
        address: call.getPeer(),
        metadata: call.metadata,
        authContext: call.getAuthContext(),
        responseHeaders: new grpc.Metadata(),
      });
      void streamEvents(call, () => impl.monitorConnections(call.request, ctx), ac.signal);
    },
  });
}

/** Writes the events to the call until they end (then ends it), fail (the error's status) or `signal` aborts. */
async function streamEvents(
  call: grpc.ServerWritableStream<MonitorScopeSelector, unknown>,
  events: () => AsyncIterable<unknown>,
  signal: AbortSignal,
): Promise<void> {
  try {
    for await (const event of events()) {
      if (signal.aborted) break;
      call.write(event);
    }
    if (!call.cancelled) call.end();
  } catch (err) {
    const e = NsmError.from(err, Code.Internal);
    if (!call.cancelled) call.emit("error", { code: e.code, details: e.rawMessage, metadata: new grpc.Metadata() });
  }
}

/**
 * An SVID-like certificate signed by `ca` with any URI SANs (none, several, another trust
 * domain): what a misbehaving CA could issue, for testing the URI SAN checks.
 */
export async function issueUnchecked(ca: CertificateAuthority, uris: readonly string[]): Promise<X509Svid> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const caKeyDer = createPrivateKey(ca.export().privateKeyPem).export({ format: "der", type: "pkcs8" });
  const caKey = await webcrypto.subtle.importKey("pkcs8", caKeyDer, alg, false, ["sign"]);
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const issuer = new x509.X509Certificate(ca.certificate.raw);
  const cert = await x509.X509CertificateGenerator.create({
    subject: "O=SPIFFE",
    issuer: issuer.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3600_000),
    signingAlgorithm: alg,
    publicKey: keys.publicKey as never,
    signingKey: caKey as never,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      ...(uris.length > 0
        ? [new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: "url" as const, value })))]
        : []),
      await x509.AuthorityKeyIdentifierExtension.create(issuer),
    ],
  });
  const leaf = new X509Certificate(Buffer.from(cert.rawData));
  const privateKey = createPrivateKey({
    key: Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey)),
    format: "der",
    type: "pkcs8",
  });
  return {
    spiffeId: uris[0] ?? "",
    certificates: [leaf],
    privateKey,
    certificatesPem: leaf.toString(),
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }) as string,
    notAfter: new Date(leaf.validTo),
  };
}
