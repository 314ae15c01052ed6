// SPDX-License-Identifier: Apache-2.0
/**
 * KeyedTimers: at most one pending task per key (a registration name, a connection id), each
 * replaced by the next one scheduled for its key, all cancelled when the owner's lifetime ends.
 *
 * It is the scheduler behind every element that acts later on its own: registry expire
 * (unregister at expiry), registry refresh (register again at 2/3 of the lifetime) and the
 * networkservice refresh and timeout elements. A task's `signal` aborts when the task is
 * cancelled or replaced, so work it already started (an event through begin) can tell that it
 * is stale. A task stays current after its timer fired until `done()`, a replacement or a
 * cancel, so that "is something scheduled for this key" also covers work in flight; `retry()`
 * arms its timer again. Delays are clamped to what `setTimeout` accepts (0 … 2^31−1 ms).
 * Written by hand: a map of timers is smaller than any scheduling library.
 */

/** The longest delay `setTimeout` accepts. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ScheduledTask<D> {
  /** What the scheduler was given with the task (e.g. the lifetime a registration asked for). */
  readonly data: D;
  /** Aborts when the task is cancelled, replaced, or the scheduler's lifetime ends. */
  readonly signal: AbortSignal;
  /** Runs the task again after `delayMs`, unless it was cancelled or replaced meanwhile. */
  retry(delayMs: number): void;
  /** Forgets the task if it is still the current one for its key (its work is over). */
  done(): void;
}

export interface KeyedTimersOptions {
  /** The owner's lifetime: when it aborts, every task is cancelled and none is scheduled again. */
  readonly signal?: AbortSignal;
}

const clamp = (ms: number) => Math.min(MAX_TIMER_MS, Math.max(0, Number.isFinite(ms) ? ms : 0));

/**
 * One scheduled task. Its methods live on the prototype and its timer calls one shared function,
 * and its signal is made only when someone asks for it: a scheduler holding a task for each of
 * 1000 connections keeps 1000 small objects and their timers, no closures or AbortControllers.
 */
class Task<K, D> implements ScheduledTask<D> {
  timer: NodeJS.Timeout | undefined;
  cancelled = false;
  #abort: AbortController | undefined;

  constructor(
    readonly entries: Map<K, Task<K, D>>,
    readonly key: K,
    readonly data: D,
    readonly run: (task: ScheduledTask<D>) => void,
  ) {}

  get signal(): AbortSignal {
    if (!this.#abort) {
      this.#abort = new AbortController();
      if (this.cancelled) this.#abort.abort();
    }
    return this.#abort.signal;
  }

  arm(delayMs: number): void {
    this.timer = setTimeout(fire, clamp(delayMs), this);
  }

  retry(delayMs: number): void {
    if (this.cancelled) return;
    clearTimeout(this.timer);
    this.arm(delayMs);
  }

  done(): void {
    if (this.entries.get(this.key) === this) this.entries.delete(this.key);
  }

  cancel(): void {
    this.cancelled = true;
    clearTimeout(this.timer);
    this.#abort?.abort();
  }
}

function fire<K, D>(task: Task<K, D>): void {
  task.timer = undefined;
  if (!task.cancelled) task.run(task);
}

export class KeyedTimers<K, D = undefined> {
  readonly #entries = new Map<K, Task<K, D>>();
  readonly #signal: AbortSignal | undefined;

  constructor(options: KeyedTimersOptions = {}) {
    this.#signal = options.signal;
    this.#signal?.addEventListener("abort", () => this.cancelAll(), { once: true });
  }

  /** Number of current tasks (scheduled or running). */
  get size(): number {
    return this.#entries.size;
  }

  /** The current task for `key`, if any. */
  get(key: K): ScheduledTask<D> | undefined {
    return this.#entries.get(key);
  }

  /**
   * Replaces the task for `key` with `run`, called after `delayMs`. Returns undefined (and
   * schedules nothing) once the owner's lifetime has ended.
   */
  schedule(key: K, delayMs: number, run: (task: ScheduledTask<D>) => void, data: D): ScheduledTask<D> | undefined {
    this.cancel(key);
    if (this.#signal?.aborted) return undefined;
    const task = new Task(this.#entries, key, data, run);
    task.arm(delayMs);
    this.#entries.set(key, task);
    return task;
  }

  /** Cancels the task for `key`: its timer is cleared and its signal aborts. */
  cancel(key: K): void {
    const task = this.#entries.get(key);
    if (!task) return;
    this.#entries.delete(key);
    task.cancel();
  }

  cancelAll(): void {
    for (const key of [...this.#entries.keys()]) this.cancel(key);
  }
}
