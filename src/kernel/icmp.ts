// SPDX-License-Identifier: Apache-2.0
/**
 * ICMP echo without a process: the NSC's data-plane liveness check (upstream cmd-nsc's kernel
 * liveness check) sends its echoes through the addon (`native/src/icmp.cc`) instead of running
 * iputils `ping` per address every interval.
 *
 * Each echo opens an ICMP datagram socket (IPPROTO_ICMP / IPPROTO_ICMPV6, allowed in pod netns
 * by the forwarder's `net.ipv4.ping_group_range`; a raw socket when that is refused and the caller
 * is root) inside the given netns, on a throwaway native thread, binds it to the source address,
 * sends one echo request and waits for its reply up to the timeout; the JS thread never blocks.
 * Node has no ICMP sockets, hence the addon.
 */
import type { Connection } from "../api/index.js";
import type { Logger } from "../sdk/core/logger.js";
import { livenessTargets } from "../sdk/tools/liveness.js";
import { loadNativeBinding, type NativeBinding } from "./native.js";

/** The addon's echo (native/src/icmp.cc). */
interface IcmpBinding {
  icmpEcho(nsPath: string, src: string, dst: string, timeoutMs: number, sequence: number): Promise<boolean>;
}

/** Options of {@link icmpEcho}. */
export interface IcmpEchoOptions {
  /** Source address (bound before sending). @default the kernel's choice */
  src?: string;
  /** Wait for the reply at most this long. @default 1000 */
  timeoutMs?: number;
  /** The netns to send from. @default this process's (`/proc/self/ns/net`) */
  nsPath?: string;
  /** Resolves false at once when aborted (the native wait ends by its timeout). */
  signal?: AbortSignal;
  /** @internal tests */
  binding?: NativeBinding;
}

let sequence = 0;

/** `echo`, or false as soon as `signal` aborts (the listener goes when either settles). */
function untilAborted(echo: Promise<boolean>, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(false);
    signal.addEventListener("abort", onAbort, { once: true });
    echo.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Sends one ICMP (IPv4) or ICMPv6 echo request to `dst`; resolves true iff its reply came within
 * the timeout. Not sendable (no route, link down, source address gone) resolves false. Rejects
 * (Error with `code`, `syscall`) when the netns or the socket cannot be opened, or on a bad address.
 */
export function icmpEcho(dst: string, options: IcmpEchoOptions = {}): Promise<boolean> {
  const binding = (options.binding ?? loadNativeBinding()) as unknown as IcmpBinding;
  const { signal } = options;
  if (signal?.aborted) return Promise.resolve(false);
  sequence = (sequence + 1) & 0xffff;
  const echo = binding.icmpEcho(
    options.nsPath ?? "/proc/self/ns/net",
    options.src ?? "",
    dst,
    Math.max(1, Math.round(options.timeoutMs ?? 1000)),
    sequence,
  );
  return signal ? untilAborted(echo, signal) : echo;
}

/**
 * A heal liveness check echoing every target of the connection (each destination address from
 * the source address of its family) in parallel, from the netns at `nsPath` (default: this
 * process's, as the NSC runs in its pod's): alive iff all answer before the timeout and before
 * `signal` aborts. A connection without addresses cannot be checked and counts as alive; an echo
 * that cannot be sent at all (netns gone, socket refused) counts as not alive, and is logged
 * (`log`, once per error code). Loads the addon at once, so a missing addon fails when the check
 * is made, not on every tick.
 */
export function icmpLivenessCheck(
  options: { timeoutMs?: number; nsPath?: string; log?: Logger; binding?: NativeBinding } = {},
) {
  const binding = options.binding ?? loadNativeBinding();
  const reported = new Set<string>();
  const failed = (err: Error & { code?: string }): false => {
    const code = err.code ?? "EUNKNOWN";
    if (!reported.has(code)) {
      reported.add(code);
      options.log?.warn({ err: err.message, code }, "liveness check cannot send ICMP echoes: counting as not alive");
    }
    return false;
  };
  return async (conn: Connection, signal: AbortSignal): Promise<boolean> => {
    const targets = livenessTargets(conn);
    if (targets.length === 0) return true;
    const results = await Promise.all(
      targets.map((t) =>
        icmpEcho(t.dst, { src: t.src, timeoutMs: options.timeoutMs, nsPath: options.nsPath, signal, binding }).catch(
          failed,
        ),
      ),
    );
    return results.every(Boolean);
  };
}
