// SPDX-License-Identifier: Apache-2.0
/**
 * CallContext: what travels with one call through a chain.
 *
 * It is the TypeScript counterpart of Go's `context.Context` as the NSM SDK uses it:
 * cancellation and deadline (an `AbortSignal`), a structured logger, and typed values
 * (client URL, client connection, candidates found by discover, begin's event factory...).
 * A CallContext is immutable: `with*` methods return a new one.
 */

import { Code, NsmError } from "./errors.js";
import { type Logger, silentLogger } from "./logger.js";

/** A typed key for a value carried by a {@link CallContext}. */
export interface ContextKey<T> {
  readonly id: symbol;
  readonly defaultValue: T;
}

/** A new key; `description` names it in logs and errors. */
export function createContextKey<T>(defaultValue: T, description: string): ContextKey<T> {
  return { id: Symbol(description), defaultValue };
}

/** What a root {@link CallContext} starts with. */
export interface CallContextInit {
  /** Aborts the call. */
  signal?: AbortSignal;
  /** Absolute deadline in epoch milliseconds. */
  deadline?: number;
  /** The structured logger elements log to. @default silent */
  log?: Logger;
  /**
   * `signal` already aborts when the deadline passes (the caller keeps its own timer and clears
   * it when the call ends): no second timer and no combined signal are made. @default false
   */
  signalHasDeadline?: boolean;
}

/** The signal of every {@link CallContext.retained} context: nothing ever aborts it. */
const neverAborted = new AbortController().signal;

/**
 * The per-call context passed to every element: cancellation and deadline, the structured
 * logger, and typed values ({@link createContextKey}). Immutable: `with…` returns a new one.
 */
export class CallContext {
  /** Aborted when the call is cancelled or its deadline passes. */
  readonly signal: AbortSignal;
  /** Absolute deadline in epoch milliseconds, if the call has one. */
  readonly deadline: number | undefined;
  /** The call's structured logger. */
  readonly log: Logger;
  readonly #values: ReadonlyMap<symbol, unknown>;

  private constructor(
    signal: AbortSignal,
    deadline: number | undefined,
    log: Logger,
    values: ReadonlyMap<symbol, unknown>,
  ) {
    this.signal = signal;
    this.deadline = deadline;
    this.log = log;
    this.#values = values;
  }

  /** A root context. A deadline also aborts the signal when it passes. */
  static create(init: CallContextInit = {}): CallContext {
    let signal = init.signal ?? new AbortController().signal;
    if (init.deadline !== undefined && !(init.signalHasDeadline && init.signal)) {
      signal = AbortSignal.any([signal, AbortSignal.timeout(Math.max(0, init.deadline - Date.now()))]);
    }
    return new CallContext(signal, init.deadline, init.log ?? silentLogger, new Map());
  }

  /** Remaining time in ms before the deadline, or undefined without one. */
  timeoutMs(): number | undefined {
    return this.deadline === undefined ? undefined : Math.max(0, this.deadline - Date.now());
  }

  /** The value of `key` in this context, or its default. */
  get<T>(key: ContextKey<T>): T {
    return this.#values.has(key.id) ? (this.#values.get(key.id) as T) : key.defaultValue;
  }

  /** Whether `key` was set in this context. */
  has(key: ContextKey<unknown>): boolean {
    return this.#values.has(key.id);
  }

  /** A context like this one with `key` set to `value`. */
  with<T>(key: ContextKey<T>, value: T): CallContext {
    const values = new Map(this.#values);
    values.set(key.id, value);
    return new CallContext(this.signal, this.deadline, this.log, values);
  }

  /** A context like this one that logs to `log`. */
  withLog(log: Logger): CallContext {
    return new CallContext(this.signal, this.deadline, log, this.#values);
  }

  /** Adds fields to the logger (e.g. `{ connId }`). */
  withFields(fields: Record<string, unknown>): CallContext {
    return this.withLog(this.log.child(fields));
  }

  /**
   * A context that is cancelled when this one is, or when `signal` aborts, or at `timeoutMs`
   * from now (whichever is first). The values and logger are kept.
   */
  withCancel(options: { signal?: AbortSignal; timeoutMs?: number } = {}): CallContext {
    const signals = [this.signal];
    if (options.signal) signals.push(options.signal);
    let deadline = this.deadline;
    if (options.timeoutMs !== undefined) {
      const d = Date.now() + options.timeoutMs;
      deadline = deadline === undefined ? d : Math.min(deadline, d);
      signals.push(AbortSignal.timeout(options.timeoutMs));
    }
    return new CallContext(AbortSignal.any(signals), deadline, this.log, this.#values);
  }

  /**
   * A context with the same values and logger but a fresh lifetime: used for cleanup after
   * the request's own signal has aborted (Go's `postpone.ContextWithValues`).
   */
  detached(timeoutMs?: number): CallContext {
    const signal = timeoutMs === undefined ? new AbortController().signal : AbortSignal.timeout(timeoutMs);
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    return new CallContext(signal, deadline, this.log, this.#values);
  }

  /**
   * A context to keep after the call (begin keeps one per connection for its later events): the
   * same values and logger, no deadline, and a signal that never aborts, shared by every kept
   * context, so the call's own signals (and what listens to them) are not kept with it. Derive
   * a context with a lifetime from it ({@link detached}, {@link withCancel}) to act on it.
   */
  retained(): CallContext {
    return new CallContext(neverAborted, undefined, this.log, this.#values);
  }

  /** Throws Canceled/DeadlineExceeded if the context is done. */
  throwIfDone(): void {
    if (!this.signal.aborted) return;
    const reason: unknown = this.signal.reason;
    if (reason instanceof NsmError) throw reason;
    const timedOut = reason instanceof DOMException && reason.name === "TimeoutError";
    throw new NsmError(
      timedOut ? "context deadline exceeded" : "context canceled",
      timedOut ? Code.DeadlineExceeded : Code.Canceled,
      { cause: reason },
    );
  }
}

/** A promise that resolves after `ms`, or rejects when `signal` aborts. The timer never outlives the signal. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
