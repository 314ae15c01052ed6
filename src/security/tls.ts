// SPDX-License-Identifier: Apache-2.0
/**
 * mTLS for grpc-js with X.509-SVIDs that rotate.
 *
 * - {@link serverCredentials}: requires a client certificate that chains to the trust bundle
 *   (Node's TLS verification against the bundle), and rejects calls whose client certificate is
 *   not an SVID of the bundle's trust domain (a server interceptor answers Unauthenticated).
 *   Rotation: the credentials are a grpc-js `ServerCredentials` whose secure-context options
 *   are pushed to the servers using them (`updateSecureContextOptions` →
 *   `http2SecureServer.setSecureContext`), so new handshakes present the new SVID and trust the
 *   new bundle; established connections keep theirs.
 * - {@link channelCredentials}: a grpc-js `ChannelCredentials` whose per-connection connector
 *   does the TLS handshake itself with the SVID current at that moment, verifies the server's
 *   chain against the bundle and its URI SAN (trust domain, and optionally an expected SPIFFE
 *   ID), remembers the server's certificate, and — with a token generator — attaches the per-RPC
 *   token metadata (`nsm-client-token`, `nsm-client-token-expires`) minted for that server
 *   (upstream `token.NewPerRPCCredentials`: `aud` = the server's SPIFFE ID).
 * - {@link secureDialOptions}: both of the above plus the call observer, ready for the `dial`
 *   element and `dialChannel`.
 *
 * `{ insecure: true }` returns plaintext credentials and logs a loud warning: no identity, no
 * tokens, so the authorize elements must have no policies.
 *
 * The channel side implements grpc-js 1.14's `ChannelCredentials._createSecureConnector`
 * (the extension point grpc-js's own TLS credentials use); it is pinned with the grpc-js version.
 */
import type { X509Certificate } from "node:crypto";
import { constants as http2constants } from "node:http2";
import type { Socket } from "node:net";
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import type { AuthContext } from "@grpc/grpc-js/build/src/auth-context.js";
import type { SecureConnector, SecureConnectResult } from "@grpc/grpc-js/build/src/channel-credentials.js";
import type { CallContext } from "../sdk/core/context.js";
import { invalidArgument } from "../sdk/core/errors.js";
import type { Logger } from "../sdk/core/logger.js";
import { silentLogger } from "../sdk/core/logger.js";
import type { DialOptions } from "../sdk/grpc/dial.js";
import { grpcPeerKey } from "../sdk/grpc/service.js";
import { callObserverInterceptor } from "./observe.js";
import type { X509Snapshot, X509Source } from "./source.js";
import { trustDomainOf } from "./spiffeid.js";
import { type TokenGenerator, tokenMetadata } from "./token.js";
import { certificateOfPeer, trySpiffeIdOfCertificate } from "./x509.js";

const INSECURE_WARNING =
  "INSECURE MODE: gRPC without TLS. Peers are not authenticated, no path tokens are sent, " +
  "and authorization policies cannot work. Never use this outside a test.";

/** Options shared by both sides. */
export interface TlsOptions {
  /** Plaintext instead of mTLS (logs a loud warning). @default false */
  readonly insecure?: boolean;
  readonly log?: Logger;
}

function secureContextOptions(s: X509Snapshot): tls.SecureContextOptions {
  return {
    key: s.svid.privateKeyPem,
    cert: s.svid.certificatesPem,
    ca: s.bundle.pem,
    minVersion: "TLSv1.2",
  };
}

/** The auth contexts of recent peers, by the SHA-256 fingerprint of their certificate. */
const recentAuthContexts = new Map<string, AuthContext>();
const RECENT_AUTH_CONTEXTS = 256;

/**
 * The auth context of an earlier call from the same certificate when there is one, else
 * `ctx`. Node builds a new peer certificate object (DER, public key, fingerprints, names) on
 * every read, and a connection's events keep the context of the call that made it: 1000
 * connections from one peer would each hold a copy (and its parsed X.509 certificate, see
 * {@link peerCertificateOf}).
 */
function sharedAuthContext(ctx: AuthContext): AuthContext {
  const key = ctx.sslPeerCertificate?.fingerprint256;
  if (!key) return ctx;
  const known = recentAuthContexts.get(key);
  if (known) return known;
  if (recentAuthContexts.size >= RECENT_AUTH_CONTEXTS) {
    recentAuthContexts.delete(recentAuthContexts.keys().next().value as string);
  }
  recentAuthContexts.set(key, ctx);
  return ctx;
}

/** Why `cert` is not acceptable as a peer of `trustDomain`, or undefined. */
function peerProblem(
  cert: tls.PeerCertificate | undefined,
  trustDomain: string,
  expected?: (id: string) => boolean,
): string | undefined {
  if (!cert?.raw || cert.raw.length === 0) return "the peer presented no certificate";
  const id = trySpiffeIdOfCertificate(cert);
  if (!id) return "the peer certificate is not an X.509-SVID (it needs exactly one spiffe:// URI SAN)";
  const td = trustDomainOf(id);
  if (td !== trustDomain) return `the peer ${id} is not in the trust domain ${trustDomain}`;
  if (expected && !expected(id)) return `the peer ${id} is not the expected peer`;
  return undefined;
}

class SpiffeServerCredentials extends grpc.ServerCredentials {
  readonly #interceptors: grpc.ServerInterceptor[];

  constructor(source: X509Source, log: Logger) {
    super(
      { requestCert: true, rejectUnauthorized: true } as ConstructorParameters<typeof grpc.ServerCredentials>[0],
      secureContextOptions(source.current()),
    );
    source.subscribe((s) => this.updateSecureContextOptions(secureContextOptions(s)));
    const interceptor: grpc.ServerInterceptor = (_method, call) => {
      // The TLS peer does not change during a call: read it once (Node builds a new object, with
      // fingerprints, on every read), for this check and for the handler.
      let authContext: AuthContext | undefined;
      const auth = () => {
        authContext ??= sharedAuthContext(call.getAuthContext());
        return authContext;
      };
      const intercepting = new grpc.ServerInterceptingCall(call, {
        start: (next) => {
          const problem = peerProblem(auth()?.sslPeerCertificate, source.current().bundle.trustDomain);
          if (!problem) {
            next();
            return;
          }
          log.warn({ peer: call.getPeer(), problem }, "rejecting a call from an unacceptable TLS peer");
          next({
            onReceiveMetadata: () => call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: problem }),
          });
        },
      });
      intercepting.getAuthContext = auth;
      return intercepting;
    };
    this.#interceptors = [interceptor];
  }

  override _getInterceptors(): grpc.ServerInterceptor[] {
    return this.#interceptors;
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/**
 * Server credentials from an X.509 source: mTLS with a required client SVID of the bundle's
 * trust domain, following rotations. `{ insecure: true }` (source may be undefined) gives
 * plaintext and logs a loud warning.
 */
export function serverCredentials(source: X509Source | undefined, options: TlsOptions = {}): grpc.ServerCredentials {
  const log = options.log ?? silentLogger;
  if (options.insecure) {
    log.warn(INSECURE_WARNING);
    return grpc.ServerCredentials.createInsecure();
  }
  if (!source) throw invalidArgument("server credentials need an X.509 source (or insecure: true)");
  return new SpiffeServerCredentials(source, log);
}

/** How long a drained connection still takes new streams before it is closed for them. */
const DRAIN_DELAY_MS = 2000;

type ServerSession = import("node:http2").ServerHttp2Session;

/** The HTTP/2 sessions of a grpc-js server (its private map of HTTP/2 servers, grpc-js 1.14). */
function sessionsOf(server: grpc.Server): ServerSession[] | undefined {
  const servers = (server as unknown as { http2Servers?: Map<unknown, { sessions?: Set<ServerSession> }> })
    .http2Servers;
  if (!(servers instanceof Map)) return undefined;
  return [...servers.values()].flatMap((s) => [...(s.sessions ?? [])]);
}

/** Whether a certificate (as a TLS socket reports it) expires within `marginMs`. */
function expiresSoon(cert: tls.PeerCertificate | null | undefined, now: number, marginMs: number): boolean {
  if (!cert?.valid_to) return false;
  const to = Date.parse(cert.valid_to);
  return Number.isFinite(to) && to - now < marginMs;
}

/** Whether either certificate of a session's TLS connection expires within `marginMs`. */
function sessionExpiresSoon(session: ServerSession, now: number, marginMs: number): boolean {
  try {
    const socket = session.socket as unknown;
    if (!(socket instanceof tls.TLSSocket)) return false;
    const local = socket.getCertificate() as tls.PeerCertificate | null;
    return expiresSoon(local, now, marginMs) || expiresSoon(socket.getPeerCertificate(), now, marginMs);
  } catch {
    return false;
  }
}

export interface DrainOptions {
  /** How often to look for connections whose certificates expire soon. @default SVID lifetime / 20, 0.2 s to 5 s */
  readonly sweepMs?: number;
  readonly log?: Logger;
}

/**
 * Keeps the connections of `server` in step with SVID rotations.
 *
 * A TLS connection keeps the certificates of its handshake. Path tokens are always signed with
 * the current SVID (and say which in `x5c`, so peers still verify them), but a token's expiry is
 * bounded by the peer certificate of the connection, so a connection must not outlive its
 * certificates, and a rotation should reach the wire. This drains, the graceful way (RFC 9113
 * §6.8: a first GOAWAY with the highest stream id, so that nothing in flight is refused — clients
 * dialed with `secureDialOptions` retry a refused call transparently — then the final one
 * {@link DRAIN_DELAY_MS} later):
 * - every connection, when `source` (this server) rotates;
 * - a connection whose client or server certificate expires within a tenth of the SVID lifetime
 *   (a client that rotated, or a long-lived connection), found by a periodic sweep.
 * Calls already running finish on the old connection (monitor and watch streams stay open); new
 * calls make a new connection whose handshake presents the current SVIDs of both sides. Returns
 * the function that stops it.
 */
export function drainOnRotation(
  server: grpc.Server,
  source: X509Source | undefined,
  options: Readonly<DrainOptions> = {},
): () => void {
  if (!source) return () => {};
  const log = options.log ?? silentLogger;
  const drained = new WeakSet<ServerSession>();
  const drain = (which: (s: ServerSession) => boolean, why: string) => {
    const sessions = sessionsOf(server);
    if (!sessions) {
      log.warn("cannot drain connections: unknown grpc-js server internals");
      return;
    }
    const open = sessions.filter((x) => !x.closed && !x.destroyed && !drained.has(x) && which(x));
    if (open.length === 0) return;
    for (const session of open) {
      drained.add(session);
      try {
        session.goaway(http2constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1);
      } catch {
        // closed meanwhile
      }
    }
    setTimeout(() => {
      for (const session of open) if (!session.closed && !session.destroyed) session.close();
    }, DRAIN_DELAY_MS).unref();
    log.debug({ connections: open.length, why }, "connections drained");
  };
  const unsubscribe = source.subscribe(() => drain(() => true, "SVID rotated"));
  const svid = source.current().svid;
  const from = Date.parse(svid.certificates[0]?.validFrom ?? "");
  const lifetime = Number.isFinite(from) ? Math.max(1000, svid.notAfter.getTime() - from) : 3_600_000;
  const sweepMs = options.sweepMs ?? Math.min(5000, Math.max(200, Math.floor(lifetime / 20)));
  const marginMs = Math.max(2 * sweepMs, lifetime / 10);
  const timer = setInterval(() => {
    const now = Date.now();
    drain((s) => sessionExpiresSoon(s, now, marginMs), "a certificate expires soon");
  }, sweepMs);
  timer.unref();
  return () => {
    unsubscribe();
    clearInterval(timer);
  };
}

export interface ChannelCredentialsOptions extends TlsOptions {
  /**
   * Accept only this server: a SPIFFE ID, or a predicate over the server's SPIFFE ID.
   * @default any SVID of the bundle's trust domain (upstream `AuthorizeAny`)
   */
  readonly expectedPeer?: string | ((spiffeId: string) => boolean);
  /** Mint per-RPC path tokens for the server with this generator. @default no tokens */
  readonly tokenGenerator?: TokenGenerator;
}

class SpiffeConnector implements SecureConnector {
  #peer: X509Certificate | undefined;
  readonly #callCredentials: grpc.CallCredentials;

  constructor(
    private readonly owner: SpiffeChannelCredentials,
    callCredentials: grpc.CallCredentials,
  ) {
    const gen = owner.tokenGenerator;
    this.#callCredentials = gen
      ? callCredentials.compose(
          grpc.CallCredentials.createFromMetadataGenerator((_options, callback) => {
            gen(this.#peer).then(
              (token) => {
                const md = new grpc.Metadata();
                for (const [k, v] of Object.entries(tokenMetadata(token))) md.set(k, v);
                callback(null, md);
              },
              (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
            );
          }),
        )
      : callCredentials;
  }

  connect(socket: Socket): Promise<SecureConnectResult> {
    return new Promise((resolve, reject) => {
      const snapshot = this.owner.snapshot();
      const tlsSocket = tls.connect(
        {
          socket,
          secureContext: this.owner.secureContext(snapshot),
          ALPNProtocols: ["h2"],
          rejectUnauthorized: true,
          checkServerIdentity: (_host, cert) => {
            const problem = this.owner.peerProblem(cert);
            return problem ? new Error(problem) : undefined;
          },
        },
        () => {
          if (!tlsSocket.authorized) {
            reject(tlsSocket.authorizationError ?? new Error("TLS peer not authorized"));
            tlsSocket.destroy();
            return;
          }
          this.#peer = certificateOfPeer(tlsSocket.getPeerCertificate());
          resolve({ socket: tlsSocket, secure: true });
        },
      );
      tlsSocket.on("error", (err) => {
        this.owner.log.debug({ err: String(err) }, "TLS handshake with the server failed");
        reject(err);
      });
    });
  }

  waitForReady(): Promise<void> {
    return Promise.resolve();
  }

  getCallCredentials(): grpc.CallCredentials {
    return this.#callCredentials;
  }

  destroy(): void {}
}

class SpiffeChannelCredentials extends grpc.ChannelCredentials {
  #context: tls.SecureContext | undefined;
  #version = -1;
  readonly #expected: ((id: string) => boolean) | undefined;

  constructor(
    private readonly source: X509Source,
    readonly tokenGenerator: TokenGenerator | undefined,
    expectedPeer: string | ((id: string) => boolean) | undefined,
    readonly log: Logger,
  ) {
    super();
    this.#expected = typeof expectedPeer === "string" ? (id) => id === expectedPeer : expectedPeer;
  }

  /** The source's current snapshot. */
  snapshot(): X509Snapshot {
    return this.source.current();
  }

  /** The TLS context of a snapshot (the current one is cached until the next source update). */
  secureContext(s: X509Snapshot = this.source.current()): tls.SecureContext {
    if (!this.#context || this.#version !== s.version) {
      this.#context = tls.createSecureContext(secureContextOptions(s));
      this.#version = s.version;
    }
    return this.#context;
  }

  peerProblem(cert: tls.PeerCertificate): string | undefined {
    return peerProblem(cert, this.source.current().bundle.trustDomain, this.#expected);
  }

  _isSecure(): boolean {
    return true;
  }

  _equals(other: grpc.ChannelCredentials): boolean {
    return other === this;
  }

  _createSecureConnector(
    _target: unknown,
    _options: grpc.ChannelOptions,
    callCredentials?: grpc.CallCredentials,
  ): SecureConnector {
    return new SpiffeConnector(this, callCredentials ?? grpc.CallCredentials.createEmpty());
  }
}

/**
 * Channel credentials from an X.509 source: mTLS with the current SVID, the server verified
 * against the bundle and its URI SAN, and (with `tokenGenerator`) per-RPC path tokens minted for
 * that server. `expectedPeer` may be given as the second argument directly.
 * `{ insecure: true }` (source may be undefined) gives plaintext and logs a loud warning.
 */
export function channelCredentials(
  source: X509Source | undefined,
  options: string | ChannelCredentialsOptions = {},
): grpc.ChannelCredentials {
  const o: ChannelCredentialsOptions = typeof options === "string" ? { expectedPeer: options } : options;
  const log = o.log ?? silentLogger;
  if (o.insecure) {
    log.warn(INSECURE_WARNING);
    return grpc.credentials.createInsecure();
  }
  if (!source) throw invalidArgument("channel credentials need an X.509 source (or insecure: true)");
  if (typeof o.expectedPeer === "string") trustDomainOf(o.expectedPeer);
  return new SpiffeChannelCredentials(source, o.tokenGenerator, o.expectedPeer, log);
}

/**
 * Dial options for the `dial` element / `dialChannel`: {@link channelCredentials} plus the
 * call observer the authorize and registry grpcmetadata clients rely on, and transparent
 * retries (for calls refused by a server draining its connections after a rotation).
 */
export function secureDialOptions(
  source: X509Source | undefined,
  options: ChannelCredentialsOptions = {},
): Required<Pick<DialOptions, "credentials" | "channelOptions">> {
  return {
    credentials: channelCredentials(source, options),
    // Transparent retries only (no retry policy is configured): a call that a draining server
    // refused before processing it (REFUSED_STREAM, see `drainOnRotation`) goes again on a new
    // connection.
    channelOptions: { interceptors: [callObserverInterceptor], "grpc.enable_retries": 1 },
  };
}

const peerCerts = new WeakMap<tls.PeerCertificate, X509Certificate>();

/** The TLS peer's leaf certificate of the incoming call carried by `ctx`, if any. */
export function peerCertificateOf(ctx: CallContext): X509Certificate | undefined {
  const raw = ctx.get(grpcPeerKey)?.authContext?.sslPeerCertificate;
  if (!raw) return undefined;
  let cert = peerCerts.get(raw);
  if (!cert) {
    cert = certificateOfPeer(raw);
    if (cert) peerCerts.set(raw, cert);
  }
  return cert;
}

/** The SPIFFE ID of the TLS peer of the incoming call carried by `ctx`, if any. */
export function peerSpiffeIdOf(ctx: CallContext): string | undefined {
  return trySpiffeIdOfCertificate(peerCertificateOf(ctx));
}
