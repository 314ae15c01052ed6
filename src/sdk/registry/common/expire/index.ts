// SPDX-License-Identifier: Apache-2.0
/**
 * expire (registry, NSE): gives every registration a lifetime and unregisters it when it passes.
 *
 * Purpose: an NSE that stops refreshing (it died, its node is gone) disappears from the
 * registry by itself. On Register the record gets `expiration_time` = the earliest of: the
 * time the caller asked for (if set), the security layer's token expiry (if any, see
 * {@link RegistryExpireOptions.tokenExpiresAtMs}) and now + `expirationMs` (upstream §5: default 1 min).
 * If the rest of the chain returns an even earlier time (a remote registry), that one is used.
 * An Unregister is scheduled for that moment; it runs through begin's event factory, so every
 * element after begin (setregistrationtime, localbypass, memory…) sees it and watchers get a
 * `deleted` event.
 * Chain placement: after begin (`requires: ["begin"]`), before the storage or the connection
 * to a remote registry.
 * Per-name state: one timer per registered name; replaced on every Register, cancelled on
 * Unregister and when the `signal` option aborts.
 * Options: {@link RegistryExpireOptions}.
 * Failure behaviour: a failed Register schedules nothing (an existing schedule stays). A
 * failed expiry Unregister is logged (`warn`); the registration is forgotten by begin anyway.
 */
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { CallContext } from "../../../core/context.js";
import { invalidArgument } from "../../../core/errors.js";
import { KeyedTimers, MAX_TIMER_MS } from "../../../tools/timers.js";
import type { RegistryElement, RegistryHandler } from "../../core/chain.js";
import { type NseTypes, nseKind } from "../../core/kind.js";
import { type RegistryEventFactory, registryEventFactoryOf } from "../begin/index.js";

/** Upstream's default NSE lifetime in the registry (1 minute). */
export const DEFAULT_NSE_EXPIRATION_MS = 60_000;

export interface RegistryExpireOptions {
  /** The lifetime given to a registration. @default 60000 (upstream `defaultExpiration`, 1 min) */
  readonly expirationMs?: number;
  /** The element's own lifetime: when it aborts, every scheduled expiry is cancelled. @default never */
  readonly signal?: AbortSignal;
  /**
   * The place for the security layer (a later issue): returns the earliest expiry, in epoch
   * ms, of the path tokens of this call (own and peer token), or undefined when there are
   * none. Upstream takes min(token expiry, peer token expiry, now + expiration). @default none
   */
  readonly tokenExpiresAtMs?: (ctx: CallContext) => number | undefined;
}

class Expire implements RegistryElement<NseTypes> {
  readonly name = "expire";
  readonly requires = ["begin"] as const;
  readonly #scheduled: KeyedTimers<string>;
  readonly #expirationMs: number;
  readonly #tokenExpiresAtMs: ((ctx: CallContext) => number | undefined) | undefined;

  constructor(options: Readonly<RegistryExpireOptions>) {
    const ms = options.expirationMs ?? DEFAULT_NSE_EXPIRATION_MS;
    if (!Number.isFinite(ms) || ms <= 0 || ms > MAX_TIMER_MS) {
      throw invalidArgument(`expirationMs must be in (0, ${MAX_TIMER_MS}], got ${ms}`);
    }
    this.#expirationMs = ms;
    this.#scheduled = new KeyedTimers({ signal: options.signal });
    this.#tokenExpiresAtMs = options.tokenExpiresAtMs;
  }

  async register(record: NseTypes["record"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    const factory = registryEventFactoryOf<NseTypes>(ctx);
    let expiresAt = Date.now() + this.#expirationMs;
    const tokenExpiry = this.#tokenExpiresAtMs?.(ctx);
    if (tokenExpiry !== undefined) expiresAt = Math.min(expiresAt, tokenExpiry);
    if (record.expirationTime) expiresAt = Math.min(expiresAt, timestampMs(record.expirationTime));
    const out = nseKind.cloneRecord(record);
    out.expirationTime = timestampFromMs(expiresAt);
    const resp = await next.register(out, ctx);
    if (resp.expirationTime) expiresAt = Math.min(expiresAt, timestampMs(resp.expirationTime));
    this.#schedule(record.name, factory, expiresAt, ctx);
    return resp;
  }

  find(query: NseTypes["query"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    return next.find(query, ctx);
  }

  async unregister(record: NseTypes["record"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    this.#scheduled.cancel(record.name);
    await next.unregister(record, ctx);
  }

  #schedule(name: string, factory: RegistryEventFactory<NseTypes>, expiresAt: number, ctx: CallContext): void {
    // The task stays current until the Unregister event has run: a Register queued before that
    // event replaces the task and aborts its signal, so begin skips the stale expiry.
    this.#scheduled.schedule(
      name,
      expiresAt - Date.now(),
      (task) => {
        factory.unregister({ signal: task.signal }).then(
          (ran) => {
            task.done();
            if (ran) ctx.log.debug({ registryName: name }, "registration expired");
          },
          (err: unknown) => {
            task.done();
            ctx.log.warn({ registryName: name, err: String(err) }, "unregister on expiry failed");
          },
        );
      },
      undefined,
    );
  }
}

/** Creates the expire element for the NSE registry. */
export function registryExpire(options: Readonly<RegistryExpireOptions> = {}): RegistryElement<NseTypes> {
  return new Expire(options);
}
