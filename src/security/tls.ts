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
import type { Socket } from "node:net";
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import type { SecureConnector, SecureConnectResult } from "@grpc/grpc-js/build/src/channel-credentials.js";
import { grpcPeerKey } from "../api/grpc.js";
import type { CallContext } from "../sdk/core/context.js";
import { invalidArgument } from "../sdk/core/errors.js";
import type { DialOptions } from "../sdk/tools/grpcurl.js";
import type { Logger } from "../sdk/tools/logger.js";
import { silentLogger } from "../sdk/tools/logger.js";
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
    const interceptor: grpc.ServerInterceptor = (_method, call) =>
      new grpc.ServerInterceptingCall(call, {
        start: (next) => {
          const problem = peerProblem(call.getAuthContext()?.sslPeerCertificate, source.current().bundle.trustDomain);
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
      const tlsSocket = tls.connect(
        {
          socket,
          secureContext: this.owner.secureContext(),
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

  /** The TLS context of the current SVID and bundle (rebuilt after each source update). */
  secureContext(): tls.SecureContext {
    const s = this.source.current();
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
 * call observer the authorize and registry grpcmetadata clients rely on.
 */
export function secureDialOptions(
  source: X509Source | undefined,
  options: ChannelCredentialsOptions = {},
): Required<Pick<DialOptions, "credentials" | "channelOptions">> {
  return {
    credentials: channelCredentials(source, options),
    channelOptions: { interceptors: [callObserverInterceptor] },
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
