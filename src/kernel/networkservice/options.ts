// SPDX-License-Identifier: Apache-2.0
/** Options of the kernel cross-connect elements. */
import type { Connection } from "../../api/index.js";
import { type NetworkServiceElement, passThrough } from "../../sdk/core/chain.js";
import type { CallContext } from "../../sdk/core/context.js";
import { invalidArgument } from "../../sdk/core/errors.js";
import type { KernelApi } from "../api.js";
import type { Reconciler } from "./reconcile.js";
import { checkTagOwner, DEFAULT_TAG_OWNER, type XconnectSide } from "./tag.js";

/** Closing downstream after a failed first Request gets this long. */
export const DEFAULT_CLEANUP_TIMEOUT_MS = 5000;

/** Written to `net.ipv4.ping_group_range` in both pod namespaces (upstream `pinggrouprange`). */
export const PING_GROUP_RANGE = "0 2147483647";

/** What the {@link NetnsCheck} hook is asked about. */
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

export interface KernelXconnectServerOptions {
  /** The kernel to program (netlink in production, the fake in unit tests). */
  kernel: KernelApi;
  /** See {@link NetnsCheck}. Required: `insecureNetnsOwnership().check` is the explicit way to turn it off. */
  checkNetns: NetnsCheck;
  /** Deadline for closing downstream after a failed first Request, in ms. @default 5000 */
  cleanupTimeoutMs?: number;
  /**
   * The forwarder's name, written into every tag (`tag.ts`): links of other owners are never
   * adopted or deleted. @default "forwarder"
   */
  owner?: string;
  /** Told about every connection Requested, so that its links of an earlier life are not swept. @default none */
  reconciler?: Reconciler;
}

export interface ResolvedOptions {
  readonly kernel: KernelApi;
  readonly checkNetns: NetnsCheck;
  readonly cleanupTimeoutMs: number;
  readonly owner: string;
  readonly reconciler: Reconciler | undefined;
}

export function resolveOptions(options: Readonly<KernelXconnectServerOptions>): ResolvedOptions {
  if (!options?.kernel) throw invalidArgument("kernelXconnectServer: the kernel option is required");
  const timeout = options.cleanupTimeoutMs ?? DEFAULT_CLEANUP_TIMEOUT_MS;
  if (!Number.isInteger(timeout) || timeout <= 0) {
    throw invalidArgument(`kernelXconnectServer: cleanupTimeoutMs must be a positive integer, got ${timeout}`);
  }
  const owner = options.owner ?? DEFAULT_TAG_OWNER;
  checkTagOwner(owner);
  return {
    kernel: options.kernel,
    checkNetns: requireNetnsCheck(options.checkNetns, "kernelXconnectServer"),
    cleanupTimeoutMs: timeout,
    owner,
    reconciler: options.reconciler,
  };
}
