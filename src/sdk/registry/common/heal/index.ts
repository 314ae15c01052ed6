// SPDX-License-Identifier: Apache-2.0
/**
 * heal (registry client, NSE): registers again as soon as the registry loses the registration.
 *
 * Purpose: refresh keeps a registration alive only at 2/3 of its lifetime (40 s by default);
 * when the registry or the nsmgr restarts, the NSE (or forwarder) would be missing for that
 * long. Upstream's registry heal (`sdk:pkg/registry/common/heal`, reference §5 "nsmgr
 * dies/restarts") closes the gap: after every successful Register this element opens a Find with
 * `watch: true` for its own name, on the same registry connection as the Register. When that
 * stream breaks (it fails, or ends: the nsmgr or the registry went away), or shows the record
 * deleted (the restarted registry lost it, it expired, someone unregistered it), the stored
 * registration is sent again through begin's event factory, so every element after begin
 * (refresh, security, clientinfo, connect…) runs as for a refresh. A failed attempt is retried
 * every `retryIntervalMs` (200 ms) until one succeeds, the record is unregistered or the `signal`
 * option aborts; the Register that succeeds opens the next watch.
 * Chain placement: client chains, right after begin (`requires: ["begin"]`), before refresh
 * (upstream order: begin → … → heal → refresh → … → connect).
 * Per-name state: the open watch and its heal loop, replaced by every successful Register (a
 * refresh or a heal too), and how many watches in a row broke right after opening; cancelled on
 * Unregister and when `signal` aborts.
 * Options: {@link RegistryHealOptions}.
 * Failure behaviour: never fails a Register: the Register's own error is returned as it is, and
 * a watch that cannot be opened counts as broken. Only this element's own cancellation ends a
 * watch quietly: grpc-js reports a server that dies mid-stream as `Canceled`, so unlike
 * upstream a `Canceled` status from the stream is a break too. When watches keep breaking right
 * after they open (a registry that cannot watch), the second break in a row waits
 * `retryIntervalMs` before registering again, each further one twice as long (up to 5 s), so
 * it never becomes a busy loop. The retry timer does not keep the process alive on its own
 * (a process with nothing else left has nothing to keep registered). Breaks are logged
 * (`warn`), failed attempts at `debug`.
 */
import { create } from "@bufbuild/protobuf";
import { NetworkServiceEndpointSchema } from "../../../../api/gen/registry_pb.js";
import type { CallContext } from "../../../core/context.js";
import { invalidArgument } from "../../../core/errors.js";
import type { RegistryElement, RegistryHandler } from "../../core/chain.js";
import { type NseTypes, nseKind } from "../../core/kind.js";
import { type RegistryEventFactory, registryEventFactoryOf } from "../begin/index.js";

/** Upstream's retry interval for registry heal attempts. */
export const DEFAULT_HEAL_RETRY_INTERVAL_MS = 200;

/** The longest wait before registering again after watches that keep breaking at once. */
const MAX_QUICK_BREAK_DELAY_MS = 5_000;

export interface RegistryHealOptions {
  /** The element's lifetime: when it aborts, every watch and heal loop stops. @default never */
  readonly signal?: AbortSignal;
  /** Delay between attempts after a heal Register failed. @default 200 */
  readonly retryIntervalMs?: number;
}

interface Watch {
  /** Ends the watch stream and the heal loop that follows it. */
  readonly stop: AbortController;
  readonly openedAt: number;
}

/** Resolves after `ms`, or false at once when `signal` aborts; the timer never keeps the process alive. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    timer.unref();
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

class Heal implements RegistryElement<NseTypes> {
  readonly name = "heal";
  readonly requires = ["begin"] as const;
  readonly #watches = new Map<string, Watch>();
  /** Per name: how many watches in a row broke within `retryIntervalMs` of opening. */
  readonly #quickBreaks = new Map<string, number>();
  readonly #signal: AbortSignal | undefined;
  readonly #retryMs: number;

  constructor(options: Readonly<RegistryHealOptions>) {
    const retry = options.retryIntervalMs ?? DEFAULT_HEAL_RETRY_INTERVAL_MS;
    if (!Number.isFinite(retry) || retry <= 0) throw invalidArgument(`retryIntervalMs must be positive, got ${retry}`);
    this.#retryMs = retry;
    this.#signal = options.signal;
    this.#signal?.addEventListener("abort", () => this.#stopAll(), { once: true });
  }

  async register(record: NseTypes["record"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    const factory = registryEventFactoryOf<NseTypes>(ctx);
    const resp = await next.register(record, ctx);
    this.#watch(record.name, factory, next, ctx);
    return resp;
  }

  find(query: NseTypes["query"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    return next.find(query, ctx);
  }

  async unregister(record: NseTypes["record"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    this.#stop(record.name);
    this.#quickBreaks.delete(record.name);
    await next.unregister(record, ctx);
  }

  #watch(name: string, factory: RegistryEventFactory<NseTypes>, next: RegistryHandler<NseTypes>, ctx: CallContext) {
    this.#stop(name);
    if (this.#signal?.aborted) return;
    const w: Watch = { stop: new AbortController(), openedAt: Date.now() };
    this.#watches.set(name, w);
    void this.#follow(name, w, factory, next, ctx);
  }

  /** Follows the watch until it breaks, then registers again until that succeeds or stops. */
  async #follow(
    name: string,
    w: Watch,
    factory: RegistryEventFactory<NseTypes>,
    next: RegistryHandler<NseTypes>,
    ctx: CallContext,
  ): Promise<void> {
    const reason = await this.#untilBroken(name, w, next, ctx);
    if (reason === undefined || w.stop.signal.aborted) return;
    ctx.log.warn({ registryName: name, reason }, "registry watch broke: registering again");
    if (!(await this.#backOffQuickBreaks(name, w))) return;
    await this.#registerAgain(name, w, factory, ctx);
  }

  /**
   * The first break is healed at once; breaks in a row right after the watch opened wait, longer
   * each time. False when the watch was stopped while waiting.
   */
  async #backOffQuickBreaks(name: string, w: Watch): Promise<boolean> {
    const quick = Date.now() - w.openedAt < this.#retryMs ? (this.#quickBreaks.get(name) ?? 0) + 1 : 0;
    this.#quickBreaks.set(name, quick);
    if (quick <= 1) return true;
    const wait = Math.min(MAX_QUICK_BREAK_DELAY_MS, this.#retryMs * 2 ** (quick - 2));
    return pause(wait, w.stop.signal);
  }

  /** Registers again every retry interval until that succeeds, or the registration ends or is stopped. */
  async #registerAgain(name: string, w: Watch, factory: RegistryEventFactory<NseTypes>, ctx: CallContext) {
    for (let attempt = 1; ; attempt++) {
      try {
        // Skipped (undefined) when unregistered meanwhile or when a newer Register replaced this
        // watch; on success the re-entered Register has already opened the next watch.
        const out = await factory.register({ signal: w.stop.signal });
        if (out) ctx.log.info({ registryName: name, attempt }, "registration healed");
        return;
      } catch (err) {
        if (w.stop.signal.aborted || factory.state !== "established") return;
        ctx.log.debug({ registryName: name, attempt, err: String(err) }, "registry heal attempt failed");
      }
      if (!(await pause(this.#retryMs, w.stop.signal))) return;
    }
  }

  /** Why the watch broke, or undefined when it was stopped. */
  async #untilBroken(
    name: string,
    w: Watch,
    next: RegistryHandler<NseTypes>,
    ctx: CallContext,
  ): Promise<string | undefined> {
    const watchCtx = ctx.detached().withCancel({ signal: w.stop.signal });
    const query = nseKind.query(create(NetworkServiceEndpointSchema, { name }), true);
    try {
      for await (const resp of next.find(query, watchCtx)) {
        if (resp.deleted && resp.networkServiceEndpoint?.name === name) return "deleted";
      }
      return w.stop.signal.aborted ? undefined : "ended";
    } catch (err) {
      return w.stop.signal.aborted ? undefined : String(err);
    }
  }

  #stop(name: string): void {
    const w = this.#watches.get(name);
    if (!w) return;
    w.stop.abort();
    this.#watches.delete(name);
  }

  #stopAll(): void {
    for (const name of [...this.#watches.keys()]) this.#stop(name);
    this.#quickBreaks.clear();
  }
}

/** Creates the heal element for NSE registry clients. */
export function registryHeal(options: Readonly<RegistryHealOptions> = {}): RegistryElement<NseTypes> {
  return new Heal(options);
}
