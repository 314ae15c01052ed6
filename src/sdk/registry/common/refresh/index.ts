// SPDX-License-Identifier: Apache-2.0
/**
 * refresh (registry client, NSE): registers again before the registration expires.
 *
 * Purpose: the registry gives every NSE registration an `expiration_time` (expire, 1 min by
 * default); an NSE that is alive keeps its record by registering again at 2/3 of the remaining
 * lifetime (reference §5), until it unregisters or the `signal` option aborts. A refresh that
 * fails is retried every `retryIntervalMs` (200 ms) until one succeeds, the NSE unregisters or
 * the signal aborts. A refresh re-sends the original request through begin's event factory,
 * so every element after begin (clientinfo, connect…) runs again. If the caller asked for an
 * `expiration_time`, each refresh asks for the same lifetime again from the time it is sent, and
 * so does any other event that replays the stored registration (heal), instead of the time left.
 * Chain placement: client chains, after begin (`requires: ["begin"]`; registryClient puts heal
 * between them).
 * Per-name state: the scheduled refresh (timer and cancel signal) and the requested lifetime.
 * Cancelled on Unregister and when `signal` aborts; replaced by every successful Register.
 * Options: {@link RegistryRefreshOptions}.
 * Failure behaviour: a failed Register by the caller is returned and schedules nothing. A
 * registration returned without `expiration_time` is not refreshed. Failed refreshes are
 * logged (`warn`) and retried.
 */
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { CallContext } from "../../../core/context.js";
import { invalidArgument } from "../../../core/errors.js";
import { KeyedTimers, type ScheduledTask } from "../../../tools/timers.js";
import type { RegistryElement, RegistryHandler } from "../../core/chain.js";
import { type NseTypes, nseKind } from "../../core/kind.js";
import { isRegistryEvent, type RegistryEventFactory, registryEventFactoryOf } from "../begin/index.js";

/** Upstream's retry interval for failed registry refreshes. */
export const DEFAULT_REFRESH_RETRY_INTERVAL_MS = 200;

export interface RegistryRefreshOptions {
  /** The element's lifetime: when it aborts, no more refreshes are sent. @default never */
  readonly signal?: AbortSignal;
  /** Delay between attempts after a refresh failed. @default 200 */
  readonly retryIntervalMs?: number;
}

class Refresh implements RegistryElement<NseTypes> {
  readonly name = "refresh";
  readonly requires = ["begin"] as const;
  /** Per name: the next refresh, with the lifetime the caller asked for (re-applied on every refresh). */
  readonly #scheduled: KeyedTimers<string, number | undefined>;
  readonly #retryMs: number;

  constructor(options: Readonly<RegistryRefreshOptions>) {
    const retry = options.retryIntervalMs ?? DEFAULT_REFRESH_RETRY_INTERVAL_MS;
    if (!Number.isFinite(retry) || retry <= 0) throw invalidArgument(`retryIntervalMs must be positive, got ${retry}`);
    this.#retryMs = retry;
    this.#scheduled = new KeyedTimers({ signal: options.signal });
  }

  async register(record: NseTypes["record"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    const factory = registryEventFactoryOf<NseTypes>(ctx);
    const previous = this.#scheduled.get(record.name);
    // An event (this element's refresh, a heal) replays the stored registration, whose
    // expiration_time is the one asked for the first time: ask for the lifetime again from now.
    const replay = previous !== undefined && isRegistryEvent(ctx);
    const requestedLifetimeMs = replay
      ? previous.data
      : record.expirationTime
        ? Math.max(0, timestampMs(record.expirationTime) - Date.now())
        : undefined;
    let out = record;
    if (replay && requestedLifetimeMs !== undefined) {
      out = nseKind.cloneRecord(record);
      out.expirationTime = timestampFromMs(Date.now() + requestedLifetimeMs);
    }
    const resp = await next.register(out, ctx);
    if (resp.expirationTime) {
      this.#schedule(record.name, factory, timestampMs(resp.expirationTime), requestedLifetimeMs, ctx);
    }
    return resp;
  }

  find(query: NseTypes["query"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    return next.find(query, ctx);
  }

  async unregister(record: NseTypes["record"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    this.#scheduled.cancel(record.name);
    await next.unregister(record, ctx);
  }

  #schedule(
    name: string,
    factory: RegistryEventFactory<NseTypes>,
    expiresAt: number,
    requestedLifetimeMs: number | undefined,
    ctx: CallContext,
  ): void {
    const attempt = (task: ScheduledTask<number | undefined>) => {
      factory.register({ signal: task.signal }).then(
        // On success the re-entered Register has already scheduled the next refresh.
        () => {},
        (err: unknown) => {
          if (task.signal.aborted) return;
          ctx.log.warn({ registryName: name, err: String(err) }, "registry refresh failed, retrying");
          task.retry(this.#retryMs);
        },
      );
    };
    this.#scheduled.schedule(name, ((expiresAt - Date.now()) * 2) / 3, attempt, requestedLifetimeMs);
  }
}

/** Creates the refresh element for NSE registry clients. */
export function registryRefresh(options: Readonly<RegistryRefreshOptions> = {}): RegistryElement<NseTypes> {
  return new Refresh(options);
}
