// SPDX-License-Identifier: Apache-2.0
/** Options of the kernel cross-connect elements. */
import type { Connection } from "../../api/index.js";
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
 * HOOK(netns-ownership): decides whether this connection may use that namespace. It runs for
 * both sides before anything in the kernel changes, and rejects by throwing an NsmError
 * (`PermissionDenied`). Upstream proves ownership by passing the netns fd; here the check is
 * still to be written (a later issue).
 */
export type NetnsCheck = (request: NetnsCheckRequest, ctx: CallContext) => Promise<void>;

export interface KernelXconnectServerOptions {
  /** The kernel to program (netlink in production, the fake in unit tests). */
  kernel: KernelApi;
  /** See {@link NetnsCheck}. @default allows every namespace (no ownership check yet) */
  checkNetns?: NetnsCheck;
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

const allowAll: NetnsCheck = async () => {};

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
    checkNetns: options.checkNetns ?? allowAll,
    cleanupTimeoutMs: timeout,
    owner,
    reconciler: options.reconciler,
  };
}
