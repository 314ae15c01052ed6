// SPDX-License-Identifier: Apache-2.0
/**
 * begin (registry): serializes the events of one registration and lets later elements re-enter.
 *
 * Purpose: the one place that orders work per record name. A Register, an Unregister and the
 * events fired later by expire (Unregister when the lifetime passes) and refresh (Register
 * again before it passes) run one at a time, in arrival order, for each name. An event
 * re-enters the chain right after begin, so every element after it (setregistrationtime,
 * localbypass, memory…) sees the expiry or refresh as an ordinary call; an element that must
 * tell the two apart (refresh keeps the caller's requested lifetime) asks {@link isRegistryEvent}.
 * Chain placement: after security and validation, before every element that keeps per-name
 * state or fires events (expire and refresh declare `requires: ["begin"]`).
 * Per-name state: the last successful registration (as requested), the record the chain
 * returned for it, and the context of that call (its values are reused by events, with a fresh
 * deadline). Forgotten after Unregister and after a failed first Register.
 * Options: none.
 * Failure behaviour: a Register with an empty name is InvalidArgument. An Unregister of a name
 * that this begin does not know does nothing (as upstream: there is nothing to unregister).
 * An event for a registration that is gone, or whose `signal` has aborted by the time it runs,
 * is skipped.
 */
import type { CallContext } from "../../../core/context.js";
import { createContextKey } from "../../../core/context.js";
import { Code, invalidArgument, NsmError } from "../../../core/errors.js";
import type { RegistryElement, RegistryHandler } from "../../core/chain.js";
import type { RegistryKind, RegistryTypes } from "../../core/kind.js";

/**
 * Lifecycle of one registration as seen by begin.
 * - `registering`: the first Register is running;
 * - `established`: a Register succeeded and no Unregister happened since;
 * - `unregistered`: Unregister ran, or the first Register failed; the entry is forgotten.
 */
export type RegistrationState = "registering" | "established" | "unregistered";

export interface RegistryEventOptions {
  /** The event is skipped if this signal has aborted by the time the event runs. */
  signal?: AbortSignal;
  /** Deadline of the event. @default the deadline duration of the last Register, or 15 s */
  timeoutMs?: number;
}

export interface RegistryRegisterEventOptions<R> extends RegistryEventOptions {
  /** Changes the stored registration before it is sent (the change is kept on success). */
  update?: (registration: R) => void;
}

/** Lets an element fire a Register or Unregister for its record later, from right after begin. */
export interface RegistryEventFactory<T extends RegistryTypes> {
  readonly state: RegistrationState;
  /** Registers the stored registration again. Resolves to undefined when skipped. */
  register(options?: RegistryRegisterEventOptions<T["record"]>): Promise<T["record"] | undefined>;
  /** Unregisters the record the chain last returned. Resolves to false when skipped. */
  unregister(options?: RegistryEventOptions): Promise<boolean>;
}

/** The default deadline of events when the original Register had none. */
export const DEFAULT_REGISTRY_EVENT_TIMEOUT_MS = 15_000;

const eventFactoryKey = createContextKey<RegistryEventFactory<any> | undefined>(undefined, "registryEventFactory");

const eventKey = createContextKey<boolean>(false, "registryEvent");

/** The event factory of the registration being handled (set by begin). */
export function registryEventFactoryOf<T extends RegistryTypes>(ctx: CallContext): RegistryEventFactory<T> {
  const f = ctx.get(eventFactoryKey);
  if (!f) {
    throw new NsmError("no registry begin element earlier in the chain", Code.FailedPrecondition, {
      reason: "chain-order",
    });
  }
  return f as RegistryEventFactory<T>;
}

/**
 * Whether this call is an event fired through the event factory (a refresh, a heal or an
 * expiry replaying the stored registration) rather than a call made by begin's caller.
 */
export function isRegistryEvent(ctx: CallContext): boolean {
  return ctx.get(eventKey);
}

const RETRY = Symbol("retry");

class Registration<T extends RegistryTypes> implements RegistryEventFactory<T> {
  state: RegistrationState = "registering";
  registration: T["record"] | undefined;
  response: T["record"] | undefined;
  ctx: CallContext | undefined;
  next: RegistryHandler<T> | undefined;
  eventTimeoutMs = DEFAULT_REGISTRY_EVENT_TIMEOUT_MS;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly owner: Begin<T>,
  ) {}

  /** Runs `fn` after everything queued before it for this name. */
  serial<X>(fn: () => Promise<X>): Promise<X> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  eventContext(timeoutMs: number | undefined): CallContext {
    return this.ctx!.detached(timeoutMs ?? this.eventTimeoutMs)
      .with(eventFactoryKey, this)
      .with(eventKey, true);
  }

  register(options: RegistryRegisterEventOptions<T["record"]> = {}): Promise<T["record"] | undefined> {
    return this.serial(async () => {
      if (this.state !== "established" || options.signal?.aborted) return undefined;
      const registration = this.owner.kind.cloneRecord(this.registration!);
      options.update?.(registration);
      const resp = await this.next!.register(registration, this.eventContext(options.timeoutMs));
      this.registration = registration;
      this.response = this.owner.kind.cloneRecord(resp);
      return resp;
    });
  }

  unregister(options: RegistryEventOptions = {}): Promise<boolean> {
    return this.serial(async () => {
      if (this.state !== "established" || options.signal?.aborted) return false;
      this.owner.forget(this);
      await this.next!.unregister(this.owner.kind.cloneRecord(this.response!), this.eventContext(options.timeoutMs));
      return true;
    });
  }
}

class Begin<T extends RegistryTypes> implements RegistryElement<T> {
  readonly name = "begin";
  readonly #entries = new Map<string, Registration<T>>();

  constructor(readonly kind: RegistryKind<T>) {}

  forget(entry: Registration<T>): void {
    entry.state = "unregistered";
    if (this.#entries.get(entry.name) === entry) this.#entries.delete(entry.name);
  }

  async register(record: T["record"], ctx: CallContext, next: RegistryHandler<T>): Promise<T["record"]> {
    const name = this.kind.nameOf(record);
    if (!name) throw invalidArgument(`${this.kind.recordTypeName}.name must not be empty`);
    for (;;) {
      let entry = this.#entries.get(name);
      if (!entry) {
        entry = new Registration(name, this);
        this.#entries.set(name, entry);
      }
      const current = entry;
      const out = await current.serial(() => this.#registerNow(current, record, ctx, next));
      if (out !== RETRY) return out;
    }
  }

  async #registerNow(
    entry: Registration<T>,
    record: T["record"],
    ctx: CallContext,
    next: RegistryHandler<T>,
  ): Promise<T["record"] | typeof RETRY> {
    // An Unregister queued ahead of us forgot this entry: start over with a fresh one.
    if (this.#entries.get(entry.name) !== entry) return RETRY;
    let resp: T["record"];
    try {
      resp = await next.register(record, ctx.with(eventFactoryKey, entry));
    } catch (err) {
      if (entry.state !== "established") this.forget(entry);
      throw err;
    }
    entry.registration = this.kind.cloneRecord(record);
    entry.response = this.kind.cloneRecord(resp);
    entry.state = "established";
    entry.ctx = ctx;
    entry.next = next;
    if (ctx.deadline !== undefined) entry.eventTimeoutMs = Math.max(1000, ctx.deadline - Date.now());
    return resp;
  }

  find(query: T["query"], ctx: CallContext, next: RegistryHandler<T>): AsyncIterable<T["response"]> {
    return next.find(query, ctx);
  }

  async unregister(record: T["record"], ctx: CallContext, next: RegistryHandler<T>): Promise<void> {
    const entry = this.#entries.get(this.kind.nameOf(record));
    if (!entry) return;
    await entry.serial(async () => {
      if (entry.state !== "established" || this.#entries.get(entry.name) !== entry) return;
      this.forget(entry);
      await next.unregister(record, ctx.with(eventFactoryKey, entry));
    });
  }
}

/** Creates the registry begin element for `kind` (`nsKind` or `nseKind`). */
export function registryBegin<T extends RegistryTypes>(kind: RegistryKind<T>): RegistryElement<T> {
  return new Begin(kind);
}
