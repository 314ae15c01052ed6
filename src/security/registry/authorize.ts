// SPDX-License-Identifier: Apache-2.0
/**
 * authorize (registry, server and client): policy checks on Register and Unregister.
 *
 * Input (upstream `RegistryOpaInput`): `resourceId` = the `sub` of the first path token (the
 * original requester), `resourceName` = the NS/NSE name, `resourcePathIdsMap` = name →
 * `path_ids` of every name registered through this element, `pathSegments`/`index` = the path
 * (server: up to its own segment; client: the whole returned path), `peerCertificate` = the TLS
 * peer. With the default `client_allowed` policy only the identity that registered a name may
 * register it again or unregister it.
 *
 * Server: checks before calling next (calls that did not come over gRPC are not checked);
 * remembers the returned `path_ids` after a Register, forgets the name after an Unregister.
 * Client: calls next (observing the server's certificate), then checks; a first Register that
 * fails the check is unregistered again before the error is returned.
 * With no policies both pass everything through (upstream `authorize.Any()`). Find is never
 * checked.
 * Chain placement: server after updatepath; client before the grpcmetadata client.
 * Failure behaviour: PermissionDenied "no sufficient privileges" (the failing policy is logged).
 */
import type { X509Certificate } from "node:crypto";
import type { CallContext } from "../../sdk/core/context.js";
import { grpcPeerKey } from "../../sdk/grpc/service.js";
import type { RegistryElement } from "../../sdk/registry/core/chain.js";
import type { RegistryKind, RegistryTypes } from "../../sdk/registry/core/kind.js";
import { observeCalls } from "../observe.js";
import { builtinPolicies, DEFAULT_POLICY_MASKS } from "../policy/load.js";
import { checkPolicies, type Policy } from "../policy/policy.js";
import { peerCertificateOf } from "../tls.js";
import { tokenSubject } from "../token.js";
import type { X509Bundle } from "../x509.js";
import { emptyRegistryPath, type RegistryPath, registryPathKey } from "./path.js";

/** name → `path_ids` of the records registered through an authorize element. */
export type ResourcePathIdsMap = Map<string, readonly string[]>;

export interface RegistryAuthorizeOptions {
  /** @default server: common + registry + server; client: common + registry + client */
  readonly policies?: readonly Policy[];
  /** Share it between elements that must agree on owners. @default a private map */
  readonly resourcePathIdsMap?: ResourcePathIdsMap;
  /** This hop's trust bundle (tokens signed by a peer's rotated SVID; see `verifyTokenSignature`). */
  readonly trustBundle?: () => X509Bundle | undefined;
}

function pathIdsOf(rec: object): readonly string[] {
  return [...((rec as { pathIds?: string[] }).pathIds ?? [])];
}

async function check<T extends RegistryTypes>(
  kind: RegistryKind<T>,
  policies: readonly Policy[],
  map: ResourcePathIdsMap,
  name: string,
  path: RegistryPath,
  leftSideOnly: boolean,
  peerCertificate: X509Certificate | undefined,
  ctx: CallContext,
  trustBundle?: () => X509Bundle | undefined,
): Promise<void> {
  const segments =
    leftSideOnly && path.pathSegments.length > 0 ? path.pathSegments.slice(0, path.index + 1) : path.pathSegments;
  await checkPolicies(
    policies,
    {
      index: leftSideOnly && path.pathSegments.length === 0 ? 0 : path.index,
      pathSegments: segments.map((s) => ({ token: s.token })),
      peerCertificate,
      trustBundle: trustBundle?.(),
      resourceId: path.pathSegments.length > 0 ? (tokenSubject(path.pathSegments[0]!.token) ?? "") : "",
      resourceName: name,
      resourcePathIdsMap: Object.fromEntries(map),
      now: new Date(),
    },
    ctx.log,
    `registry ${kind.id}`,
  );
}

/** The registry authorize server for `kind`. */
export function registryAuthorizeServer<T extends RegistryTypes>(
  kind: RegistryKind<T>,
  options: Readonly<RegistryAuthorizeOptions> = {},
): RegistryElement<T> {
  const policies = options.policies ?? builtinPolicies(DEFAULT_POLICY_MASKS.registryServer);
  const map = options.resourcePathIdsMap ?? new Map();
  const checked = async (rec: T["record"], ctx: CallContext): Promise<boolean> => {
    if (policies.length === 0 || !ctx.get(grpcPeerKey)) return false;
    const path = ctx.get(registryPathKey) ?? emptyRegistryPath();
    await check(kind, policies, map, kind.nameOf(rec), path, true, peerCertificateOf(ctx), ctx, options.trustBundle);
    return true;
  };
  return {
    name: "authorize",
    async register(rec, ctx, next) {
      const enforced = await checked(rec, ctx);
      const out = await next.register(rec, ctx);
      if (enforced) map.set(kind.nameOf(out), pathIdsOf(out));
      return out;
    },
    find: (query, ctx, next) => next.find(query, ctx),
    async unregister(rec, ctx, next) {
      if (await checked(rec, ctx)) map.delete(kind.nameOf(rec));
      await next.unregister(rec, ctx);
    },
  };
}

/** The registry authorize client for `kind`. */
export function registryAuthorizeClient<T extends RegistryTypes>(
  kind: RegistryKind<T>,
  options: Readonly<RegistryAuthorizeOptions> = {},
): RegistryElement<T> {
  const policies = options.policies ?? builtinPolicies(DEFAULT_POLICY_MASKS.registryClient);
  const map = options.resourcePathIdsMap ?? new Map();
  return {
    name: "authorizeClient",
    async register(rec, ctx, next) {
      if (policies.length === 0) return next.register(rec, ctx);
      const path = ctx.get(registryPathKey) ?? emptyRegistryPath();
      const inner = ctx.with(registryPathKey, path);
      const { result: out, observation } = await observeCalls(inner, (c) => next.register(rec, c));
      const name = kind.nameOf(out);
      try {
        await check(kind, policies, map, name, path, false, observation.peerCertificate, ctx, options.trustBundle);
      } catch (err) {
        if (!map.has(name)) {
          try {
            await next.unregister(out, inner.detached(5000));
          } catch (unregisterErr) {
            ctx.log.warn(
              { name, err: String(unregisterErr) },
              "cannot unregister a registration that failed authorization",
            );
          }
        }
        throw err;
      }
      map.set(name, pathIdsOf(out));
      return out;
    },
    find: (query, ctx, next) => next.find(query, ctx),
    async unregister(rec, ctx, next) {
      if (policies.length === 0) return next.unregister(rec, ctx);
      const path = ctx.get(registryPathKey) ?? emptyRegistryPath();
      const { observation } = await observeCalls(ctx.with(registryPathKey, path), (c) => next.unregister(rec, c));
      await check(
        kind,
        policies,
        map,
        kind.nameOf(rec),
        path,
        false,
        observation.peerCertificate,
        ctx,
        options.trustBundle,
      );
      map.delete(kind.nameOf(rec));
    },
  };
}
