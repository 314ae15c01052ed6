// SPDX-License-Identifier: Apache-2.0
/**
 * authorize (server and client): policy checks over the connection path.
 *
 * Server (upstream `authorize.NewServer`, default policies `common` + `server`): for a call that
 * came over gRPC, checks the left side of the path (segments 0..index, i.e. up to this hop) with
 * the caller's TLS certificate as `peerCertificate`; in-process calls are not checked. It also
 * records "this SPIFFE ID requested connection <id of the previous segment>" in a
 * {@link SpiffeIdConnectionMap} that the MonitorConnections authorization reads. Begin-driven
 * re-entries (timeout, reselect) reuse the context of a call that was already authorized and
 * are not checked again.
 *
 * Client (upstream `authorize.NewClient`, default policies `common` + `client`): after the next
 * hop answers, checks the whole returned path with the server's TLS certificate (seen by the
 * call observer: dial with `secureDialOptions`). A first Request that fails the check is closed
 * downstream before the error is returned; a refresh that fails is not (the connection stays as
 * it was). Close is checked with the server certificate of the last Request.
 *
 * Chain placement: server in the endpoint chain's `authorize` slot (after updatetoken); client in
 * the client chain's `authorize` slot (after metadata; before trimpath and connect).
 * Failure behaviour: PermissionDenied "no sufficient privileges" (the failing policy is logged);
 * a policy that throws is Internal.
 */
import type { X509Certificate } from "node:crypto";
import type { Connection, PathSegment } from "../../api/index.js";
import type { NetworkServiceElement } from "../../sdk/core/chain.js";
import type { CallContext } from "../../sdk/core/context.js";
import { type GrpcPeer, grpcPeerKey } from "../../sdk/grpc/service.js";
import { createMetadataKey, metadataOf } from "../../sdk/networkservice/common/metadata/index.js";
import { observeCalls } from "../observe.js";
import { builtinPolicies, DEFAULT_POLICY_MASKS } from "../policy/load.js";
import { checkPolicies, type Policy, type PolicyInput, type PolicyPathSegment } from "../policy/policy.js";
import { peerCertificateOf, peerSpiffeIdOf } from "../tls.js";
import type { X509Bundle } from "../x509.js";

/** Which connections each peer (by SPIFFE ID) requested from this hop. */
export class SpiffeIdConnectionMap {
  readonly #map = new Map<string, Set<string>>();

  /** Records `connId` for `spiffeId`; true if it was not recorded yet. */
  add(spiffeId: string, connId: string): boolean {
    let ids = this.#map.get(spiffeId);
    if (!ids) {
      ids = new Set();
      this.#map.set(spiffeId, ids);
    }
    if (ids.has(connId)) return false;
    ids.add(connId);
    return true;
  }

  delete(spiffeId: string, connId: string): void {
    const ids = this.#map.get(spiffeId);
    if (!ids) return;
    ids.delete(connId);
    if (ids.size === 0) this.#map.delete(spiffeId);
  }

  /** Whether `connId` is recorded for `spiffeId`. */
  has(spiffeId: string, connId: string): boolean {
    return this.#map.get(spiffeId)?.has(connId) ?? false;
  }

  /** The connection ids recorded for `spiffeId`. */
  connectionsOf(spiffeId: string): string[] {
    return [...(this.#map.get(spiffeId) ?? [])];
  }

  /** A plain copy (the policy input's `spiffeIdConnectionMap`). */
  toRecord(): Record<string, string[]> {
    return Object.fromEntries([...this.#map].map(([id, ids]) => [id, [...ids]]));
  }
}

function policySegments(segments: readonly PathSegment[]): PolicyPathSegment[] {
  return segments.map((s) => ({
    name: s.name,
    id: s.id,
    token: s.token,
    expires: s.expires ? new Date(Number(s.expires.seconds) * 1000 + Math.floor(s.expires.nanos / 1e6)) : undefined,
  }));
}

/** The policy input for a path check. */
function pathInput(
  conn: Connection,
  upTo: number | undefined,
  peerCertificate: X509Certificate | undefined,
  trustBundle: (() => X509Bundle | undefined) | undefined,
): PolicyInput {
  const segments = conn.path?.pathSegments ?? [];
  return {
    index: conn.path?.index ?? 0,
    pathSegments: policySegments(upTo === undefined ? segments : segments.slice(0, upTo + 1)),
    peerCertificate,
    trustBundle: trustBundle?.(),
    now: new Date(),
  };
}

export interface AuthorizeServerOptions {
  /** @default the built-in `common` + `server` policies */
  readonly policies?: readonly Policy[];
  /** Shared with the MonitorConnections authorization. @default a private map */
  readonly spiffeIdConnectionMap?: SpiffeIdConnectionMap;
  /** This hop's trust bundle (tokens signed by a peer's rotated SVID; see `verifyTokenSignature`). */
  readonly trustBundle?: () => X509Bundle | undefined;
}

/** The authorize server element for the endpoint chain's `authorize` slot. */
export function authorizeServer(options: Readonly<AuthorizeServerOptions> = {}): NetworkServiceElement {
  const policies = options.policies ?? builtinPolicies(DEFAULT_POLICY_MASKS.server);
  const connections = options.spiffeIdConnectionMap ?? new SpiffeIdConnectionMap();
  const authorized = new WeakSet<GrpcPeer>();

  const check = async (conn: Connection, ctx: CallContext) => {
    const peer = ctx.get(grpcPeerKey);
    if (!peer || authorized.has(peer)) return;
    await checkPolicies(
      policies,
      pathInput(conn, conn.path?.index ?? 0, peerCertificateOf(ctx), options.trustBundle),
      ctx.log,
      "networkservice",
    );
  };
  const previousId = (conn: Connection) => {
    const index = conn.path?.index ?? 0;
    return index > 0 ? conn.path?.pathSegments[index - 1]?.id : undefined;
  };

  return {
    name: "authorize",
    async request(req, ctx, next) {
      const conn = req.connection!;
      await check(conn, ctx);
      const spiffeId = peerSpiffeIdOf(ctx);
      const connId = previousId(conn);
      const added = spiffeId !== undefined && connId !== undefined && connections.add(spiffeId, connId);
      try {
        const out = await next.request(req, ctx);
        const peer = ctx.get(grpcPeerKey);
        if (peer) authorized.add(peer);
        return out;
      } catch (err) {
        if (added) connections.delete(spiffeId!, connId!);
        throw err;
      }
    },
    async close(conn, ctx, next) {
      const spiffeId = peerSpiffeIdOf(ctx);
      const connId = previousId(conn);
      if (spiffeId !== undefined && connId !== undefined) connections.delete(spiffeId, connId);
      await check(conn, ctx);
      await next.close(conn, ctx);
    },
  };
}

export interface AuthorizeClientOptions {
  /** @default the built-in `common` + `client` policies */
  readonly policies?: readonly Policy[];
  /** This hop's trust bundle (tokens signed by a peer's rotated SVID; see `verifyTokenSignature`). */
  readonly trustBundle?: () => X509Bundle | undefined;
}

interface ClientState {
  server: X509Certificate | undefined;
}

const clientStateKey = createMetadataKey<ClientState>("authorizeClient");

/**
 * The TLS certificate of the next hop, as the authorize client of this connection saw it on its
 * last successful Request (the server whose token `next_token_signed` verified). Server elements
 * that run the client chain through `connect` may read it after `next` returns.
 */
export function nextHopCertificateOf(ctx: CallContext): X509Certificate | undefined {
  try {
    return metadataOf(ctx, true).load(clientStateKey)?.server;
  } catch {
    return undefined;
  }
}

/** The authorize client element for the client chain's `authorize` slot. */
export function authorizeClient(options: Readonly<AuthorizeClientOptions> = {}): NetworkServiceElement {
  const policies = options.policies ?? builtinPolicies(DEFAULT_POLICY_MASKS.client);
  return {
    name: "authorizeClient",
    requires: ["metadataClient"],
    async request(req, ctx, next) {
      const { result: conn, observation } = await observeCalls(ctx, (c) => next.request(req, c));
      const md = metadataOf(ctx, true);
      try {
        await checkPolicies(
          policies,
          pathInput(conn, undefined, observation.peerCertificate, options.trustBundle),
          ctx.log,
          "networkservice",
        );
      } catch (err) {
        if (!md.load(clientStateKey)) {
          try {
            await next.close(conn, ctx.detached(5000));
          } catch (closeErr) {
            ctx.log.warn(
              { connId: conn.id, err: String(closeErr) },
              "cannot close a connection that failed authorization",
            );
          }
        }
        throw err;
      }
      md.store(clientStateKey, { server: observation.peerCertificate });
      return conn;
    },
    async close(conn, ctx, next) {
      const state = metadataOf(ctx, true).loadAndDelete(clientStateKey);
      await checkPolicies(
        policies,
        pathInput(conn, undefined, state?.server, options.trustBundle),
        ctx.log,
        "networkservice",
      );
      await next.close(conn, ctx);
    },
  };
}
