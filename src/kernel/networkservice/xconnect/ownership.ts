// SPDX-License-Identifier: Apache-2.0
/**
 * Netns ownership as the kernel cross-connects see it: a check that runs for each side before
 * anything in the kernel changes. The proof itself (process identities, tokens) is the security
 * package's `netnsOwnership()` (`src/security/networkservice/netnsowner.ts`); this module only
 * states what the cross-connects need, and that there is no default that allows all.
 */
import { type Connection, Param } from "../../../api/index.js";
import { type NetworkServiceElement, passThrough } from "../../../sdk/core/chain.js";
import type { CallContext } from "../../../sdk/core/context.js";
import { invalidArgument } from "../../../sdk/core/errors.js";
import { isReceivedNetns } from "../../../sdk/networkservice/common/recvfd/index.js";
import type { XconnectSide } from "./tag.js";

/** What the {@link NetnsCheck} is asked about. */
export interface NetnsCheckRequest {
  side: XconnectSide;
  /** The mechanism's `inodeURL`, as received. */
  url: string;
  /** The path it resolved to. */
  netns: string;
  connection: Connection;
}

/**
 * Decides whether this connection may use that namespace. It runs for both sides before
 * anything in the kernel changes, and rejects by throwing an NsmError (`PermissionDenied`).
 * Upstream proves ownership by passing the netns fd; here `netnsOwnership()` of
 * `src/security/networkservice/netnsowner.ts` proves it from the process identities.
 */
export type NetnsCheck = (request: NetnsCheckRequest, ctx: CallContext) => Promise<void>;

/**
 * The netns-ownership check of a kernel forwarder: `server` goes before the cross-connects in
 * the server chain (it sees the request as the authorize server passed it), `check` is called by
 * them for each side. `netnsOwnership()` of the security package builds one; the only one that
 * does not check is {@link insecureNetnsOwnership}, chosen explicitly.
 */
export interface NetnsOwnershipCheck {
  readonly server: NetworkServiceElement;
  readonly check: NetnsCheck;
}

/**
 * No ownership check at all: any caller may name any namespace, and every check logs a warning.
 * For insecure mode without the security package and for tests; never a default.
 */
export function insecureNetnsOwnership(): NetnsOwnershipCheck {
  return {
    server: passThrough("insecureNetnsOwnership"),
    check: async (req, ctx) => {
      ctx.log.warn(
        { connId: req.connection.id, side: req.side, netns: req.url },
        "INSECURE: netns ownership not checked: any caller can name any namespace",
      );
    },
  };
}

/** Throws InvalidArgument unless `check` is a function: there is no default that allows all. */
export function requireNetnsCheck(check: NetnsCheck | undefined, who: string): NetnsCheck {
  if (typeof check !== "function") {
    throw invalidArgument(
      `${who}: checkNetns is required (the netns-ownership check; insecureNetnsOwnership().check turns it off explicitly)`,
    );
  }
  return check;
}

/** The ownership check, or InvalidArgument: a kernel forwarder is never built without one. */
export function requireNetnsOwnership(ownership: NetnsOwnershipCheck | undefined, who: string): NetnsOwnershipCheck {
  if (typeof ownership?.check !== "function" || typeof ownership.server?.request !== "function") {
    throw invalidArgument(
      `${who}: the netnsOwnership option is required (insecureNetnsOwnership() turns the check off explicitly)`,
    );
  }
  return ownership;
}

/**
 * Received descriptors as proof of ownership (upstream's way): a side whose `inodeURL` is a
 * descriptor this forwarder received for the call (recvfd's `file:///proc/<own pid>/fd/<n>`,
 * {@link isReceivedNetns}) passes; the first hop after the client or endpoint checked that the
 * descriptor is the sender's own namespace (recvfd `requireSenderNetns`). Any other URL goes to
 * `inner` (the pid-based check for callers that send no descriptor). A caller that names one of
 * this forwarder's descriptors by path without having sent it is not in the received set and
 * meets `inner`, which refuses it. Each accepted side is counted ({@link fdProofCount}) and logged.
 */
export function acceptReceivedNetns(inner: NetnsOwnershipCheck): NetnsOwnershipCheck {
  const received = (ctx: CallContext, url: string | undefined) => url !== undefined && isReceivedNetns(ctx, url);
  return {
    server: {
      name: "acceptReceivedNetns",
      async request(req, ctx, next) {
        const mech = req.connection?.mechanism;
        const url = mech?.parameters[Param.INODE_URL];
        if (!mech || !received(ctx, url)) return inner.server.request(req, ctx, next);
        // The inner element checks the URL form of a pid-named netns: show it one, then restore.
        mech.parameters[Param.INODE_URL] = `file:///proc/${process.pid}/ns/net`;
        let restored = false;
        const restore = () => {
          if (!restored) mech.parameters[Param.INODE_URL] = url as string;
          restored = true;
        };
        try {
          return await inner.server.request(req, ctx, {
            request: (r, c) => {
              restore();
              return next.request(r, c);
            },
            close: (c, x) => next.close(c, x),
          });
        } finally {
          restore();
        }
      },
      close: (conn, ctx, next) => inner.server.close(conn, ctx, next),
    },
    check: async (req, ctx) => {
      if (!received(ctx, req.url)) return inner.check(req, ctx);
      fdProofs.count++;
      ctx.log.info(
        { connId: req.connection.id, side: req.side, netns: req.url },
        "netns ownership proven by a received descriptor",
      );
    },
  };
}

const fdProofs = { count: 0 };

/** How many cross-connect sides were accepted on a received descriptor (process-wide). */
export function fdProofCount(): number {
  return fdProofs.count;
}
