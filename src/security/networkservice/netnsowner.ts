// SPDX-License-Identifier: Apache-2.0
/**
 * netns ownership: a forwarder wires only network namespaces that the requesting side
 * demonstrably owns.
 *
 * Upstream proves ownership by passing the namespace fd over the unix socket. Here a KERNEL
 * mechanism names its namespace as `file:///proc/<pid>/ns/net` with the sender's own pid, and the
 * forwarder proves the claim from root-only local facts:
 * 1. the URL must be exactly that form (anything else — `/var/run/netns/x`, another file, `..` —
 *    is InvalidArgument before anything is created);
 * 2. `<pid>` is resolved to a SPIFFE ID with the same resolver the identity provider uses
 *    (process identity file → process tree, start time checked), never from what the process
 *    says about itself; a process with no identity (pid 1, a stranger, a dead pid) is
 *    PermissionDenied;
 * 3. that ID must be the identity of the side that asked:
 *    - client side: the `sub` of the token of the hop before this forwarder's nsmgr (path
 *      segment index − 2: the NSC, or in a composition the passthrough endpoint that asked) in the
 *      Request as this forwarder received it, after its authorize server passed (every hop verified its predecessor's
 *      signature, and `tokens_chained` links segment 0 to the NSC's TLS identity);
 *    - endpoint side: the `sub` of the next hop's token (the last segment on a local path: the
 *      NSE), which must also be the SPIFFE ID of the TLS certificate the forwarder's authorize
 *      client verified it against (`next_token_signed`); a downstream hop could write any `sub`
 *      into the path it returns, but not present another pod's certificate.
 * A mismatch is PermissionDenied, logged with the URL, the owner and the requester.
 *
 * Use: {@link netnsOwnership} gives a server element to put before the kernel cross-connect (it
 * rejects a badly formed client URL before the request goes on, and records the verified
 * requester) and the `checkNetns` hook for `kernelXconnectServer`. In insecure mode there are no
 * identities: the URL form is still checked, ownership is not, and every connection logs a loud
 * warning.
 */
import { type Connection, MechanismType, Param } from "../../api/index.js";
import type { NetworkServiceElement } from "../../sdk/core/chain.js";
import { type CallContext, createContextKey } from "../../sdk/core/context.js";
import { invalidArgument, type NsmError, permissionDenied } from "../../sdk/core/errors.js";
import type { Logger } from "../../sdk/core/logger.js";
import { tokenSubject } from "../token.js";
import type { ResolveIdentity } from "../workloadapi/server.js";
import { trySpiffeIdOfCertificate } from "../x509.js";
import { nextHopCertificateOf } from "./authorize.js";

/** What the forwarder's `checkNetns` hook is asked (the shape of the kernel package's request). */
export interface NetnsOwnerCheckRequest {
  readonly side: "client" | "endpoint";
  /** The mechanism's `inodeURL`, as received. */
  readonly url: string;
  /** The path it resolved to. */
  readonly netns: string;
  readonly connection: Connection;
}

export interface NetnsOwnershipOptions {
  /** pid → SPIFFE ID (e.g. `processIdentityResolver(NSM_PROCESS_IDENTITIES)`). Required unless insecure. */
  readonly resolveIdentity?: ResolveIdentity;
  /** No identities: check the URL form only and warn loudly per connection. @default false */
  readonly insecure?: boolean;
  readonly log?: Logger;
}

export interface NetnsOwnership {
  /** Goes before the kernel cross-connect in the forwarder's server elements. */
  readonly server: NetworkServiceElement;
  /** The `checkNetns` hook of `kernelXconnectServer`. */
  check(request: NetnsOwnerCheckRequest, ctx: CallContext): Promise<void>;
}

const PROC_NETNS_URL = /^file:\/\/\/proc\/([1-9][0-9]{0,9})\/ns\/net$/;
const PROC_NETNS_PATH = /^\/proc\/([1-9][0-9]{0,9})\/ns\/net$/;

function formProblem(url: string): NsmError {
  return invalidArgument(
    `netns URL ${JSON.stringify(url)} is not accepted: name your own network namespace as file:///proc/<your pid>/ns/net`,
    { reason: "netns-url-form" },
  );
}

/**
 * The pid named by a netns URL of the only accepted form, `file:///proc/<pid>/ns/net`;
 * InvalidArgument for anything else.
 */
export function netnsUrlPid(url: string): number {
  const m = PROC_NETNS_URL.exec(url);
  if (!m) throw formProblem(url);
  return Number(m[1]);
}

/**
 * The requester verified by this hop's authorize server: `sub` of the token of the hop before
 * this forwarder's nsmgr (segment `index - 2`: the NSC on a plain path, the previous endpoint of a
 * passthrough composition), else segment 0's.
 */
const requesterKey = createContextKey<string | undefined>(undefined, "netnsOwner.requester");

function requesterOf(conn: Connection | undefined): string | undefined {
  const index = conn?.path?.index ?? 0;
  const token = conn?.path?.pathSegments[index >= 2 ? index - 2 : 0]?.token;
  return token ? tokenSubject(token) : undefined;
}

/** The netns-ownership check of a forwarder (see the module doc). */
export function netnsOwnership(options: Readonly<NetnsOwnershipOptions>): NetnsOwnership {
  const insecure = options.insecure === true;
  const resolve = options.resolveIdentity;

  const expectedOwner = (req: NetnsOwnerCheckRequest, ctx: CallContext): string => {
    const conn = req.connection;
    if (req.side === "client") {
      const id = ctx.get(requesterKey) ?? requesterOf(conn);
      if (!id) throw permissionDenied("netns ownership: the path has no token naming the client");
      return id;
    }
    const index = conn.path?.index ?? 0;
    const token = conn.path?.pathSegments[index + 1]?.token;
    const sub = token ? tokenSubject(token) : undefined;
    if (!sub) throw permissionDenied("netns ownership: the path has no token naming the endpoint");
    const cert = nextHopCertificateOf(ctx);
    const certId = trySpiffeIdOfCertificate(cert);
    if (cert && certId !== sub) {
      ctx.log.error(
        { connId: conn.id, tokenSub: sub, tlsPeer: certId },
        "the endpoint's token is not its TLS identity",
      );
      throw permissionDenied(`netns ownership: the endpoint's token names ${sub}, its certificate ${certId}`);
    }
    return sub;
  };

  const check = async (req: NetnsOwnerCheckRequest, ctx: CallContext): Promise<void> => {
    const m = PROC_NETNS_PATH.exec(req.netns);
    if (!m || !PROC_NETNS_URL.test(req.url)) throw formProblem(req.url);
    const pid = Number(m[1]);
    if (insecure) {
      ctx.log.warn(
        { connId: req.connection.id, side: req.side, netns: req.url },
        "INSECURE MODE: netns ownership NOT verified (no identities): any caller can name any process's namespace",
      );
      return;
    }
    if (!resolve) {
      ctx.log.error({ connId: req.connection.id, netns: req.url }, "netns ownership cannot be verified: no resolver");
      throw permissionDenied("netns ownership cannot be verified: this forwarder has no process identities");
    }
    const expected = expectedOwner(req, ctx);
    const owner = await resolve(pid);
    if (owner === undefined || owner !== expected) {
      ctx.log.error(
        { connId: req.connection.id, side: req.side, netns: req.url, owner: owner ?? "(none)", requester: expected },
        "netns ownership check failed: the namespace is not the requester's",
      );
      throw permissionDenied(
        `netns ${req.url} is not owned by the ${req.side} (${expected}): ${owner === undefined ? "its process has no identity" : `it belongs to ${owner}`}`,
        { reason: "netns-not-owned" },
      );
    }
  };

  const server: NetworkServiceElement = {
    name: "netnsOwner",
    async request(req, ctx, next) {
      const mech = req.connection?.mechanism;
      if (mech?.type === MechanismType.KERNEL) netnsUrlPid(mech.parameters[Param.INODE_URL] ?? "");
      const requester = requesterOf(req.connection);
      return next.request(req, requester ? ctx.with(requesterKey, requester) : ctx);
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };

  if (!insecure && !resolve) {
    options.log?.warn("netns ownership cannot be verified (no process identities): KERNEL connections will be refused");
  }
  return { server, check };
}
